"""Programmatic renders of the example scene with exact instance masks, for detector training.

OpenCV draws a textured wall and floor, receptacles (table, shelf), targets (cup, bottle, bowl)
and unlabelled distractors; painter's order gives each instance its exact visible mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

SCENE_CLASSES: tuple[str, ...] = ("cup", "bottle", "bowl", "table", "shelf")
TARGET_CLASSES: tuple[str, ...] = ("cup", "bottle", "bowl")
MIN_VISIBLE_PX = 24  # instances hidden below this many pixels get no label

Rgb = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Rng = np.random.Generator
Colour = tuple[int, int, int]  # RGB, 0..255


@dataclass(frozen=True)
class Instance:
    """One labelled object in a render."""

    class_id: int  # index into SCENE_CLASSES
    mask: Mask  # (H, W) visible pixels


@dataclass(frozen=True)
class Scene:
    """A rendered RGB frame and its labelled instances."""

    rgb: Rgb  # (H, W, 3) uint8, RGB order
    instances: tuple[Instance, ...]


@dataclass
class _Layer:
    class_id: int | None  # None: an unlabelled distractor
    mask: Mask  # (H, W) pixels drawn by this object before occlusion


def _colour(rng: Rng, lo: int = 30, hi: int = 230) -> tuple[int, int, int]:
    r, g, b = rng.integers(lo, hi, size=3)
    return int(r), int(g), int(b)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(c * factor, 0, 255)) for c in colour)
    return r, g, b


def _texture(rng: Rng, height: int, width: int) -> Rgb:
    """A surface texture: plain, noise, stripes, checker or planks, with random colours."""
    base = np.array(_colour(rng), dtype=np.float32)
    other = np.array(_colour(rng), dtype=np.float32)
    kind = rng.integers(0, 5)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        weight = np.zeros((height, width), np.float32)
    elif kind == 1:
        small = rng.random((max(2, height // 16), max(2, width // 16))).astype(np.float32)
        weight = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) * 0.6
    elif kind == 2:
        period = float(rng.uniform(6, 40))
        weight = (np.sin(xx * 2 * np.pi / period) > 0).astype(np.float32) * 0.5
    elif kind == 3:
        cell = int(rng.integers(10, 48))
        weight = (((xx // cell) + (yy // cell)) % 2).astype(np.float32) * 0.7
    else:
        plank = int(rng.integers(12, 40))
        grain = np.sin(xx * 0.3 + np.sin(yy * 0.05) * 3.0) * 0.15 + 0.15
        weight = grain + ((yy // plank) % 2) * 0.2
    weight = np.clip(weight, 0.0, 1.0)[..., None]
    image = base * (1 - weight) + other * weight
    image += rng.normal(0, rng.uniform(0, 8), size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _background(rng: Rng, height: int, width: int) -> tuple[Rgb, int]:
    """Wall above a perspective floor; returns the image and the horizon row."""
    horizon = int(height * rng.uniform(0.25, 0.6))
    image = _texture(rng, height, width)
    floor = _texture(rng, height, width * 2)
    # Perspective: the floor texture narrows toward the horizon.
    squeeze = rng.uniform(0.2, 0.45) * width
    src = np.array([[0, 0], [width * 2, 0], [width * 2, height], [0, height]], np.float32)
    dst = np.array(
        [[squeeze, horizon], [width - squeeze, horizon], [width, height], [0, height]], np.float32
    )
    dst[:2, 0] = [-width * 0.5 + squeeze, width * 1.5 - squeeze]
    warp = cv2.getPerspectiveTransform(src, dst)
    floor_view = cv2.warpPerspective(floor, warp, (width, height), borderMode=cv2.BORDER_REFLECT)
    image[horizon:] = floor_view[horizon:]
    # Skirting board between wall and floor.
    cv2.line(image, (0, horizon), (width, horizon), _colour(rng, 0, 255), int(rng.integers(1, 5)))
    return image, horizon


def _polygon(image: Rgb, mask: Mask, points: list[tuple[float, float]], colour: Colour) -> None:
    pts = np.round(np.array(points)).astype(np.int32)
    cv2.fillPoly(image, [pts], colour, lineType=cv2.LINE_AA)
    layer = mask.view(np.uint8)
    cv2.fillPoly(layer, [pts], 1)


def _ellipse(
    image: Rgb, mask: Mask, centre: tuple[float, float], axes: tuple[float, float], colour: Colour
) -> None:
    c = (round(centre[0]), round(centre[1]))
    a = (max(1, round(axes[0])), max(1, round(axes[1])))
    cv2.ellipse(image, c, a, 0, 0, 360, colour, -1, lineType=cv2.LINE_AA)
    cv2.ellipse(mask.view(np.uint8), c, a, 0, 0, 360, 1, -1)


def _cylinder_body(
    image: Rgb, mask: Mask, cx: float, span_y: tuple[float, float], *, half_w: float, colour: Colour
) -> None:
    """A vertical cylinder side, shaded left to right for a 3-D look."""
    top, bottom = span_y
    x0, x1 = round(cx - half_w), round(cx + half_w)
    y0, y1 = round(top), round(bottom)
    if x1 <= x0 or y1 <= y0:
        return
    base = np.array(colour, dtype=np.float32)
    u = np.linspace(-1.0, 1.0, x1 - x0, dtype=np.float32)
    shade = 0.55 + 0.55 * np.sqrt(np.clip(1 - u**2, 0, 1)) - 0.15 * u
    strip = np.clip(base[None, :] * shade[:, None], 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    ys, ye, xs, xe = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if ye <= ys or xe <= xs:
        return
    image[ys:ye, xs:xe] = strip[None, xs - x0 : xe - x0]
    mask[ys:ye, xs:xe] = True
    # Round bottom edge of the cylinder.
    _ellipse(image, mask, (cx, bottom), (half_w, half_w * 0.25), _shade(colour, 0.8))


def _draw_cup(image: Rgb, mask: Mask, rng: Rng, *, cx: float, base_y: float, size: float) -> None:
    colour = _colour(rng)
    half_w, height = size * 0.32, size * rng.uniform(0.7, 1.0)
    top = base_y - height
    handle_side = rng.choice([-1.0, 1.0])
    hx = cx + handle_side * half_w
    handle_axes = (round(size * 0.18), round(height * 0.28))
    centre = (round(hx), round(top + height * 0.45))
    thickness = max(2, round(size * 0.07))
    cv2.ellipse(image, centre, handle_axes, 0, 0, 360, _shade(colour, 0.8), thickness, cv2.LINE_AA)
    cv2.ellipse(mask.view(np.uint8), centre, handle_axes, 0, 0, 360, 1, thickness)
    _cylinder_body(image, mask, cx, (top, base_y), half_w=half_w, colour=colour)
    _ellipse(image, mask, (cx, top), (half_w, half_w * 0.3), _shade(colour, 0.45))


def _draw_bottle(
    image: Rgb, mask: Mask, rng: Rng, *, cx: float, base_y: float, size: float
) -> None:
    colour = _colour(rng)
    half_w, height = size * 0.2, size * rng.uniform(1.1, 1.6)
    shoulder = base_y - height * 0.62
    neck_top = base_y - height * 0.92
    _cylinder_body(image, mask, cx, (shoulder, base_y), half_w=half_w, colour=colour)
    _polygon(
        image,
        mask,
        [
            (cx - half_w, shoulder + 1),
            (cx - half_w * 0.4, neck_top + height * 0.12),
            (cx + half_w * 0.4, neck_top + height * 0.12),
            (cx + half_w, shoulder + 1),
        ],
        _shade(colour, 0.9),
    )
    _cylinder_body(
        image, mask, cx, (neck_top, neck_top + height * 0.13), half_w=half_w * 0.4, colour=colour
    )
    cap_top = base_y - height
    _cylinder_body(
        image, mask, cx, (cap_top, neck_top + 1), half_w=half_w * 0.45, colour=_colour(rng)
    )


def _draw_bowl(image: Rgb, mask: Mask, rng: Rng, *, cx: float, base_y: float, size: float) -> None:
    colour = _colour(rng)
    half_w, depth = size * 0.55, size * rng.uniform(0.3, 0.45)
    rim_y = base_y - depth
    centre = (round(cx), round(rim_y))
    axes = (round(half_w), round(depth))
    cv2.ellipse(image, centre, axes, 0, 0, 180, colour, -1, cv2.LINE_AA)
    cv2.ellipse(mask.view(np.uint8), centre, axes, 0, 0, 180, 1, -1)
    _ellipse(image, mask, (cx, rim_y), (half_w, half_w * 0.28), _shade(colour, 1.25))
    _ellipse(image, mask, (cx, rim_y + 1), (half_w * 0.85, half_w * 0.2), _shade(colour, 0.55))


def _draw_table(
    image: Rgb, mask: Mask, rng: Rng, span_x: tuple[float, float], top_y: float
) -> float:
    """A table whose top spans [x0, x1] at `top_y`; returns the row objects stand on."""
    x0, x1 = span_x
    colour = _colour(rng)
    width = x1 - x0
    depth = width * rng.uniform(0.15, 0.3)
    leg_h = width * rng.uniform(0.4, 0.7)
    leg_w = max(3.0, width * 0.04)
    for lx in (x0 + leg_w, x1 - 2 * leg_w):
        _polygon(
            image,
            mask,
            [(lx, top_y), (lx + leg_w, top_y), (lx + leg_w, top_y + leg_h), (lx, top_y + leg_h)],
            _shade(colour, 0.6),
        )
    inset = width * 0.08
    _polygon(
        image,
        mask,
        [(x0 + inset, top_y - depth), (x1 - inset, top_y - depth), (x1, top_y), (x0, top_y)],
        colour,
    )
    apron = max(3.0, width * 0.05)
    _polygon(
        image,
        mask,
        [(x0, top_y), (x1, top_y), (x1, top_y + apron), (x0, top_y + apron)],
        _shade(colour, 0.7),
    )
    return top_y - depth * 0.4


def _draw_shelf(
    image: Rgb, mask: Mask, rng: Rng, span_x: tuple[float, float], span_y: tuple[float, float]
) -> list[float]:
    """A shelf unit over [x0, x1] x [top, bottom]; returns the rows objects stand on."""
    (x0, x1), (top_y, bottom_y) = span_x, span_y
    colour = _colour(rng)
    board = max(3.0, (x1 - x0) * 0.04)
    side = max(3.0, (x1 - x0) * 0.05)
    back = _shade(colour, 0.5)
    _polygon(image, mask, [(x0, top_y), (x1, top_y), (x1, bottom_y), (x0, bottom_y)], back)
    n_boards = int(rng.integers(2, 5))
    rows = list(np.linspace(top_y + board, bottom_y, n_boards + 1)[1:])
    for row in [top_y + board, *rows]:
        _polygon(image, mask, [(x0, row - board), (x1, row - board), (x1, row), (x0, row)], colour)
    for sx in (x0, x1 - side):
        _polygon(
            image,
            mask,
            [(sx, top_y), (sx + side, top_y), (sx + side, bottom_y), (sx, bottom_y)],
            _shade(colour, 0.85),
        )
    return [float(r - board) for r in rows]


def _draw_distractor(
    image: Rgb, mask: Mask, rng: Rng, *, cx: float, base_y: float, size: float
) -> None:
    colour = _colour(rng)
    kind = rng.integers(0, 3)
    if kind == 0:  # a box
        w, h = size * rng.uniform(0.5, 1.2), size * rng.uniform(0.4, 1.0)
        _polygon(
            image,
            mask,
            [
                (cx - w / 2, base_y - h),
                (cx + w / 2, base_y - h),
                (cx + w / 2, base_y),
                (cx - w / 2, base_y),
            ],
            colour,
        )
        _polygon(
            image,
            mask,
            [
                (cx - w / 2, base_y - h),
                (cx + w / 2, base_y - h),
                (cx + w / 3, base_y - h * 1.2),
                (cx - w * 0.6, base_y - h * 1.2),
            ],
            _shade(colour, 1.3),
        )
    elif kind == 1:  # a ball
        r = size * rng.uniform(0.2, 0.45)
        _ellipse(image, mask, (cx, base_y - r), (r, r), colour)
    else:  # a flat book or plate seen edge-on
        w = size * rng.uniform(0.6, 1.3)
        _polygon(
            image,
            mask,
            [
                (cx - w / 2, base_y - size * 0.12),
                (cx + w / 2, base_y - size * 0.12),
                (cx + w / 2, base_y),
                (cx - w / 2, base_y),
            ],
            colour,
        )


class _Drawer(Protocol):
    def __call__(
        self, image: Rgb, mask: Mask, rng: Rng, *, cx: float, base_y: float, size: float
    ) -> None: ...


_TARGET_DRAWERS: dict[str, _Drawer] = {
    "cup": _draw_cup,
    "bottle": _draw_bottle,
    "bowl": _draw_bowl,
}


def render_scene(rng: Rng, width: int, height: int) -> Scene:
    """Render one random scene of `width` x `height` pixels with its visible instance masks."""
    image, horizon = _background(rng, height, width)
    layers: list[_Layer] = []

    def new_layer(class_id: int | None) -> _Layer:
        layer = _Layer(class_id, np.zeros((height, width), np.bool_))
        layers.append(layer)
        return layer

    scale = width / 320.0
    supports: list[tuple[float, float, float]] = []  # (x0, x1, row) surfaces to stand on
    floor_span = height - horizon
    for _ in range(int(rng.integers(0, 3))):
        receptacle = "table" if rng.random() < 0.55 else "shelf"
        bottom = horizon + floor_span * rng.uniform(0.1, 0.9)
        w = width * rng.uniform(0.3, 0.7) * (0.6 + 0.4 * (bottom - horizon) / max(floor_span, 1))
        x0 = rng.uniform(-0.15 * w, width - 0.85 * w)
        layer = new_layer(SCENE_CLASSES.index(receptacle))
        canvas = image.copy()
        if receptacle == "table":
            top_y = bottom - w * rng.uniform(0.4, 0.7)
            row = _draw_table(canvas, layer.mask, rng, (x0, x0 + w), top_y)
            supports.append((x0 + w * 0.1, x0 + w * 0.9, row))
        else:
            top_y = max(-0.1 * height, bottom - w * rng.uniform(0.9, 1.6))
            for row in _draw_shelf(canvas, layer.mask, rng, (x0, x0 + w), (top_y, bottom)):
                supports.append((x0 + w * 0.12, x0 + w * 0.88, row))
        image[layer.mask] = canvas[layer.mask]

    n_objects = int(rng.integers(0, 6))
    for index in range(n_objects + int(rng.integers(0, 3))):
        is_target = index < n_objects
        if supports and rng.random() < 0.6:
            sx0, sx1, row = supports[int(rng.integers(0, len(supports)))]
            cx, base_y = rng.uniform(sx0, sx1), row
            size = (sx1 - sx0) * rng.uniform(0.12, 0.3)
        else:
            base_y = horizon + floor_span * rng.uniform(0.05, 1.0)
            cx = rng.uniform(0, width)
            size = scale * rng.uniform(12, 60) * (0.5 + (base_y - horizon) / max(floor_span, 1))
        size = float(np.clip(size, 6 * scale, 0.45 * height))
        name = str(rng.choice(TARGET_CLASSES)) if is_target else None
        layer = new_layer(None if name is None else SCENE_CLASSES.index(name))
        canvas = image.copy()
        drawer = _TARGET_DRAWERS[name] if name is not None else _draw_distractor
        drawer(canvas, layer.mask, rng, cx=cx, base_y=base_y, size=size)
        image[layer.mask] = canvas[layer.mask]

    instances = _visible_instances(layers)
    image = _photometric(rng, image)
    return Scene(rgb=image, instances=instances)


def _visible_instances(layers: list[_Layer]) -> tuple[Instance, ...]:
    """Each labelled layer minus everything drawn after it (drawing order = occlusion order)."""
    if not layers:
        return ()
    covered = np.zeros_like(layers[0].mask)
    instances: list[Instance] = []
    for layer in reversed(layers):
        visible = layer.mask & ~covered
        covered |= layer.mask
        if layer.class_id is not None and int(visible.sum()) >= MIN_VISIBLE_PX:
            instances.append(Instance(layer.class_id, visible))
    return tuple(reversed(instances))


def _photometric(rng: Rng, image: Rgb) -> Rgb:
    """Lighting, sensor noise and blur, so colour alone does not identify a class."""
    out = image.astype(np.float32)
    out = out * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
    w = image.shape[1]
    gx = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(1.0, 1.25), w, dtype=np.float32)
    out *= gx[None, :, None]
    out += rng.normal(0, rng.uniform(0, 6), size=out.shape)
    rgb = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        rgb = np.asarray(cv2.GaussianBlur(rgb, (3, 3), 0), np.uint8)
    return rgb
