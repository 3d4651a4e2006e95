"""Floor-plan geometry of a scene: footprint overlap checks and seeded episode layouts.

Shared by scene validation (the nominal layout) and every simulator reset (sampled layouts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rl_deploy.errors import ConfigError
from rl_deploy.geometry import Pose2D, wrap_angle
from rl_deploy.sim.spec import FLOOR, CameraSpec, FurnitureSpec, ObjectSpec, SceneSpec

CLEARANCE_M = 0.02  # gap kept between footprints so nothing starts in contact
ROBOT_CLEARANCE_M = 0.08  # gap around the base at the start pose
SHELF_PANEL_M = 0.02  # shelf side/back panel thickness, also used by the generators
_PLACE_TRIES = 200
_LAYOUT_TRIES = 50


@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class Rect:
    """Oriented rectangle on the floor plane."""

    x: float
    y: float
    yaw: float
    half_x: float
    half_y: float

    def to_local(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.x, y - self.y
        cos_y, sin_y = math.cos(self.yaw), math.sin(self.yaw)
        return cos_y * dx + sin_y * dy, -sin_y * dx + cos_y * dy

    def to_world(self, u: float, v: float) -> tuple[float, float]:
        cos_y, sin_y = math.cos(self.yaw), math.sin(self.yaw)
        return self.x + cos_y * u - sin_y * v, self.y + sin_y * u + cos_y * v

    def corners(self) -> list[tuple[float, float]]:
        return [self.to_world(sx * self.half_x, sy * self.half_y) for sx, sy in _SIGNS]


_SIGNS = ((1, 1), (-1, 1), (-1, -1), (1, -1))


def circle_hits_rect(circle: Circle, rect: Rect, margin: float = 0.0) -> bool:
    u, v = rect.to_local(circle.x, circle.y)
    nearest_u = min(max(u, -rect.half_x), rect.half_x)
    nearest_v = min(max(v, -rect.half_y), rect.half_y)
    return math.hypot(u - nearest_u, v - nearest_v) < circle.radius + margin


def circle_inside_rect(circle: Circle, rect: Rect, margin: float = 0.0) -> bool:
    u, v = rect.to_local(circle.x, circle.y)
    inset = circle.radius + margin
    return abs(u) <= rect.half_x - inset and abs(v) <= rect.half_y - inset


def circles_overlap(a: Circle, b: Circle, margin: float = 0.0) -> bool:
    return math.hypot(a.x - b.x, a.y - b.y) < a.radius + b.radius + margin


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Separating-axis test on the four edge normals."""
    for rect in (a, b):
        for axis_yaw in (rect.yaw, rect.yaw + math.pi / 2):
            axis = (math.cos(axis_yaw), math.sin(axis_yaw))
            proj_a = [axis[0] * x + axis[1] * y for x, y in a.corners()]
            proj_b = [axis[0] * x + axis[1] * y for x, y in b.corners()]
            if max(proj_a) <= min(proj_b) or max(proj_b) <= min(proj_a):
                return False
    return True


def room_rect(scene: SceneSpec) -> Rect:
    return Rect(0.0, 0.0, 0.0, scene.room.size_x_m / 2, scene.room.size_y_m / 2)


def furniture_rect(item: FurnitureSpec) -> Rect:
    return Rect(item.x_m, item.y_m, item.yaw_rad, item.length_m / 2, item.depth_m / 2)


def support_rect(item: FurnitureSpec) -> Rect:
    """Where objects may stand on a piece of furniture (inside a shelf's panels)."""
    if item.kind == "shelf":
        # Panels at both ends and at the back (+y): the usable board is shifted to the front.
        return Rect(
            *_shift(item, 0.0, -SHELF_PANEL_M / 2),
            item.yaw_rad,
            item.length_m / 2 - SHELF_PANEL_M,
            item.depth_m / 2 - SHELF_PANEL_M / 2,
        )
    return furniture_rect(item)


def _shift(item: FurnitureSpec, u: float, v: float) -> tuple[float, float]:
    return furniture_rect(item).to_world(u, v)


@dataclass(frozen=True)
class EpisodeLayout:
    """Everything a reset samples from a seed."""

    seed: int
    object_xy: npt.NDArray[np.float64]  # (K, 2) m, world frame, scene.objects order
    object_yaw: npt.NDArray[np.float64]  # (K,) rad
    object_rgba: npt.NDArray[np.float64]  # (K, 4) colour after jitter
    target_index: int  # the object the start pose faces
    target_class: str  # success counts for any object of this class
    start_pose: Pose2D  # base_link in the world (map) frame


def object_circle(scene: SceneSpec, obj: ObjectSpec, x: float, y: float) -> Circle:
    return Circle(x, y, scene.object_classes[obj.class_name].radius_m)


def check_nominal_layout(scene: SceneSpec) -> None:
    """Raise ConfigError naming the first misplaced or overlapping item of the nominal layout."""
    room = room_rect(scene)
    for index, item in enumerate(scene.furniture):
        rect = furniture_rect(item)
        if not all(circle_inside_rect(Circle(x, y, 0.0), room) for x, y in rect.corners()):
            raise ConfigError(f"furniture {item.name!r} sticks out of the room")
        for earlier in scene.furniture[:index]:
            if rects_overlap(rect, furniture_rect(earlier)):
                raise ConfigError(f"furniture {item.name!r} overlaps furniture {earlier.name!r}")
    for index, obj in enumerate(scene.objects):
        problem = _placement_problem(scene, obj, obj.x_m, obj.y_m)
        if problem:
            raise ConfigError(f"object {obj.name!r} at ({obj.x_m}, {obj.y_m}): {problem}")
        mine = object_circle(scene, obj, obj.x_m, obj.y_m)
        for other in scene.objects[:index]:
            same_surface = (other.support, other.level) == (obj.support, obj.level)
            theirs = object_circle(scene, other, other.x_m, other.y_m)
            if same_surface and circles_overlap(mine, theirs):
                raise ConfigError(f"object {obj.name!r} overlaps object {other.name!r}")


def _placement_problem(scene: SceneSpec, obj: ObjectSpec, x: float, y: float) -> str:
    circle = object_circle(scene, obj, x, y)
    if obj.support == FLOOR:
        if not circle_inside_rect(circle, room_rect(scene), CLEARANCE_M):
            return "outside the room"
        for item in scene.furniture:
            if circle_hits_rect(circle, furniture_rect(item), CLEARANCE_M):
                return f"overlaps furniture {item.name!r}"
        return ""
    if not circle_inside_rect(circle, support_rect(scene.furniture_named(obj.support))):
        return f"does not fit on {obj.support!r}"
    return ""


def sample_layout(scene: SceneSpec, seed: int) -> EpisodeLayout:
    """A seeded layout: objects re-placed (if the task randomises them), a target, a start pose."""
    rng = np.random.default_rng(seed)
    for _ in range(_LAYOUT_TRIES):
        object_xy, object_yaw = _sample_objects(scene, rng)
        candidates = [
            index
            for index, obj in enumerate(scene.objects)
            if obj.support in scene.task.target_supports
        ]
        target_index = int(candidates[rng.integers(len(candidates))])
        start = _sample_start(scene, rng, object_xy, target_index)
        if start is not None:
            return EpisodeLayout(
                seed=seed,
                object_xy=object_xy,
                object_yaw=object_yaw,
                object_rgba=_jitter_colours(scene, rng),
                target_index=target_index,
                target_class=scene.objects[target_index].class_name,
                start_pose=start,
            )
    raise ConfigError(
        f"scene {scene.name!r}: no start pose found for seed {seed} within task.start "
        f"(distance {scene.task.start.min_distance_m}-{scene.task.start.max_distance_m} m) "
        "that keeps the target in view and the robot clear of obstacles"
    )


def _sample_objects(
    scene: SceneSpec, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    count = len(scene.objects)
    xy = np.array([[obj.x_m, obj.y_m] for obj in scene.objects], dtype=np.float64).reshape(count, 2)
    yaw = np.array([obj.yaw_rad for obj in scene.objects], dtype=np.float64)
    if not scene.task.randomize_objects:
        return xy, yaw
    for index, obj in enumerate(scene.objects):
        xy[index] = _place_object(scene, rng, obj, xy, index)
        yaw[index] = rng.uniform(-math.pi, math.pi)
    return xy, yaw


def _place_object(
    scene: SceneSpec,
    rng: np.random.Generator,
    obj: ObjectSpec,
    placed_xy: npt.NDArray[np.float64],
    index: int,
) -> tuple[float, float]:
    area = (
        room_rect(scene)
        if obj.support == FLOOR
        else support_rect(scene.furniture_named(obj.support))
    )
    for _ in range(_PLACE_TRIES):
        u = float(rng.uniform(-area.half_x, area.half_x))
        v = float(rng.uniform(-area.half_y, area.half_y))
        x, y = area.to_world(u, v)
        if _placement_problem(scene, obj, x, y):
            continue
        mine = object_circle(scene, obj, x, y)
        if any(
            (other.support, other.level) == (obj.support, obj.level)
            and circles_overlap(mine, object_circle(scene, other, *placed_xy[k]), CLEARANCE_M)
            for k, other in enumerate(scene.objects[:index])
        ):
            continue
        return x, y
    raise ConfigError(f"object {obj.name!r}: no free place found on {obj.support!r}")


def _sample_start(
    scene: SceneSpec,
    rng: np.random.Generator,
    object_xy: npt.NDArray[np.float64],
    target_index: int,
) -> Pose2D | None:
    start = scene.task.start
    target = scene.objects[target_index]
    target_x, target_y = (float(v) for v in object_xy[target_index])
    target_z = scene.support_height_m(target) + scene.object_classes[target.class_name].height_m / 2
    robot = scene.robot
    for _ in range(_PLACE_TRIES):
        distance = float(rng.uniform(start.min_distance_m, start.max_distance_m))
        approach = float(rng.uniform(-math.pi, math.pi))
        bearing = float(rng.uniform(-start.max_bearing_rad, start.max_bearing_rad))
        x = target_x - distance * math.cos(approach)
        y = target_y - distance * math.sin(approach)
        pose = Pose2D(x, y, approach - bearing)
        if not robot_clear(scene, object_xy, Circle(x, y, robot.base.radius_m)):
            continue
        if in_view(robot.camera, pose, (target_x, target_y, target_z), margin_px=8.0):
            return Pose2D(x, y, wrap_angle(pose.yaw))
    return None


def robot_clear(scene: SceneSpec, object_xy: npt.NDArray[np.float64], base: Circle) -> bool:
    if not circle_inside_rect(base, room_rect(scene), ROBOT_CLEARANCE_M):
        return False
    if any(circle_hits_rect(base, furniture_rect(f), ROBOT_CLEARANCE_M) for f in scene.furniture):
        return False
    return not any(
        obj.support == FLOOR
        and circles_overlap(base, object_circle(scene, obj, *object_xy[k]), ROBOT_CLEARANCE_M)
        for k, obj in enumerate(scene.objects)
    )


def camera_axes(camera: CameraSpec) -> npt.NDArray[np.float64]:
    """Rows: optical x (right), y (down), z (forward) of the camera, in base_link."""
    cos_p, sin_p = math.cos(camera.pitch_rad), math.sin(camera.pitch_rad)
    return np.array([[0.0, -1.0, 0.0], [-sin_p, 0.0, -cos_p], [cos_p, 0.0, -sin_p]])


def project(
    camera: CameraSpec, base: Pose2D, point: tuple[float, float, float]
) -> tuple[float, float, float]:
    """(u px, v px, depth m) of a world point in the full-resolution image of the camera."""
    local = Pose2D(point[0], point[1], 0.0).relative_to(base)
    offset = np.array([local.x - camera.x_m, local.y - camera.y_m, point[2] - camera.z_m])
    x_cam, y_cam, z_cam = camera_axes(camera) @ offset
    fx, fy, cx, cy = camera.intrinsics(camera.width, camera.height)
    if z_cam <= 1e-6:
        return math.nan, math.nan, float(z_cam)
    return float(fx * x_cam / z_cam + cx), float(fy * y_cam / z_cam + cy), float(z_cam)


def in_view(
    camera: CameraSpec, base: Pose2D, point: tuple[float, float, float], margin_px: float
) -> bool:
    u, v, depth = project(camera, base, point)
    return (
        camera.min_depth_m < depth < camera.max_depth_m
        and margin_px <= u <= camera.width - 1 - margin_px
        and margin_px <= v <= camera.height - 1 - margin_px
    )


def _jitter_colours(scene: SceneSpec, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    rgba = np.array(
        [scene.object_classes[obj.class_name].rgba for obj in scene.objects], dtype=np.float64
    ).reshape(len(scene.objects), 4)
    jitter = scene.task.color_jitter
    if jitter > 0:
        rgba[:, :3] = np.clip(rgba[:, :3] + rng.uniform(-jitter, jitter, (len(rgba), 3)), 0, 1)
    return rgba
