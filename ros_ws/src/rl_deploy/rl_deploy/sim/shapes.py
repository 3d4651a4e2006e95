"""Primitive parts (boxes, cylinders, spheres) of objects, furniture and walls.

MJCF and SDF are written from the same parts, so both simulators see the same geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

from rl_deploy.sim.layout import SHELF_PANEL_M
from rl_deploy.sim.spec import FurnitureSpec, ObjectClassSpec, Rgba, RoomSpec

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Part:
    """One primitive. Sizes are MJCF-style halves: box (hx, hy, hz), cylinder (r, half length)."""

    name: str
    kind: str  # "box" | "cylinder" | "sphere"
    size: tuple[float, ...]
    pos: Vec3  # centre in the owner's frame
    rgba: Rgba
    collides: bool = True  # False: visual only (labelled in segmentation all the same)

    def full_size(self) -> tuple[float, ...]:
        """SDF sizes: box full extents, cylinder (radius, length), sphere (radius,)."""
        if self.kind == "box":
            return tuple(2.0 * half for half in self.size)
        if self.kind == "cylinder":
            return (self.size[0], 2.0 * self.size[1])
        return self.size


def _shade(rgba: Rgba, factor: float) -> Rgba:
    return (rgba[0] * factor, rgba[1] * factor, rgba[2] * factor, rgba[3])


def object_parts(spec: ObjectClassSpec) -> list[Part]:
    """Parts of one object, origin at the centre of its base (on the support surface)."""
    r, h, rgba = spec.radius_m, spec.height_m, spec.rgba
    if spec.shape == "cup":
        handle = (0.012, 0.006, 0.3 * h)
        return [
            Part("body", "cylinder", (r, h / 2), (0.0, 0.0, h / 2), rgba),
            Part("handle", "box", handle, (r + handle[0], 0.0, h / 2), rgba, collides=False),
        ]
    if spec.shape == "bottle":
        body, neck = 0.65 * h, 0.35 * h
        return [
            Part("body", "cylinder", (r, body / 2), (0.0, 0.0, body / 2), rgba),
            Part("neck", "cylinder", (0.4 * r, neck / 2), (0.0, 0.0, body + neck / 2), rgba),
        ]
    if spec.shape == "bowl":
        # A dark disc on the rim reads as the hollow inside in RGB.
        return [
            Part("body", "cylinder", (r, h / 2), (0.0, 0.0, h / 2), rgba),
            Part("inside", "cylinder", (0.85 * r, 0.002), (0.0, 0.0, h), _shade(rgba, 0.5), False),
        ]
    if spec.shape == "box":
        return [Part("body", "box", (r, r, h / 2), (0.0, 0.0, h / 2), rgba)]
    return [Part("body", "cylinder", (r, h / 2), (0.0, 0.0, h / 2), rgba)]


def furniture_parts(item: FurnitureSpec) -> list[Part]:
    """Parts in the furniture's own frame: origin at the footprint centre on the floor."""
    half_l, half_d, height, rgba = item.length_m / 2, item.depth_m / 2, item.height_m, item.rgba
    if item.kind == "table":
        top, leg = 0.015, 0.02
        leg_half_h = (height - 2 * top) / 2
        legs = [
            Part(
                f"leg{i}",
                "box",
                (leg, leg, leg_half_h),
                (sx * (half_l - 2 * leg), sy * (half_d - 2 * leg), leg_half_h),
                rgba,
            )
            for i, (sx, sy) in enumerate(((1, 1), (-1, 1), (-1, -1), (1, -1)))
        ]
        return [Part("top", "box", (half_l, half_d, top), (0.0, 0.0, height - top), rgba), *legs]
    panel = SHELF_PANEL_M / 2
    parts = [
        Part(
            "side_left",
            "box",
            (panel, half_d, height / 2),
            (-half_l + panel, 0.0, height / 2),
            rgba,
        ),
        Part(
            "side_right",
            "box",
            (panel, half_d, height / 2),
            (half_l - panel, 0.0, height / 2),
            rgba,
        ),
        Part(
            "back",
            "box",
            (half_l - 2 * panel, panel, height / 2),
            (0.0, half_d - panel, height / 2),
            rgba,
        ),
    ]
    board_half = (half_l - 2 * panel, half_d - panel, panel)
    for index, level in enumerate(item.levels_m):
        parts.append(Part(f"board{index}", "box", board_half, (0.0, -panel, level - panel), rgba))
    return parts


def wall_parts(room: RoomSpec) -> list[Part]:
    """Four walls around the interior, in the world frame."""
    half_x, half_y = room.size_x_m / 2, room.size_y_m / 2
    t, half_h = room.wall_thickness_m / 2, room.wall_height_m / 2
    rgba = room.wall_rgba
    return [
        Part("wall_north", "box", (half_x + 2 * t, t, half_h), (0.0, half_y + t, half_h), rgba),
        Part("wall_south", "box", (half_x + 2 * t, t, half_h), (0.0, -half_y - t, half_h), rgba),
        Part("wall_east", "box", (t, half_y, half_h), (half_x + t, 0.0, half_h), rgba),
        Part("wall_west", "box", (t, half_y, half_h), (-half_x - t, 0.0, half_h), rgba),
    ]
