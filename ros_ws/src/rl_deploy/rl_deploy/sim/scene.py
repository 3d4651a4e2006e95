"""Load and validate a scene file (YAML) into a `SceneSpec`.

Bad scenes stop here with a ConfigError naming the problem: unknown classes, overlapping or
misplaced objects, a robot without a camera, out-of-range values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from rl_deploy.errors import ConfigError
from rl_deploy.sim.fields import Fields
from rl_deploy.sim.layout import check_nominal_layout
from rl_deploy.sim.spec import (
    FLOOR,
    FURNITURE_KINDS,
    OBJECT_SHAPES,
    ArmSpec,
    BaseSpec,
    CameraSpec,
    FurnitureSpec,
    JointSpec,
    ObjectClassSpec,
    ObjectSpec,
    PoseSourceSpec,
    Rgba,
    RobotSpec,
    RoomSpec,
    SceneSpec,
    StartSpec,
    TaskSpec,
    TopicsSpec,
)

DEPTH_ENCODINGS = ("16UC1", "32FC1")


def load_scene(path: str | Path, known_classes: Iterable[str] | None = None) -> SceneSpec:
    """Read a scene YAML. `known_classes` (e.g. a detector's labels) bounds the object classes."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read scene {path}: {err}") from err
    try:
        return parse_scene(document, known_classes)
    except ConfigError as err:
        raise ConfigError(f"scene {path}: {err}") from err


def parse_scene(document: Any, known_classes: Iterable[str] | None = None) -> SceneSpec:
    root = Fields(document, "")
    classes = root.texts("classes")
    if len(set(classes)) != len(classes) or len(classes) > 254:
        raise ConfigError(f"classes must be unique and at most 254, got {list(classes)}")
    object_classes = _object_classes(root.section("object_classes"))
    furniture = tuple(_furniture(item) for item in root.sections("furniture"))
    scene = SceneSpec(
        name=root.text("name"),
        classes=classes,
        object_classes=object_classes,
        room=_room(root.section("room")),
        furniture=furniture,
        objects=tuple(_object(item) for item in root.sections("objects")),
        robot=_robot(root.section("robot")),
        task=_task(root.section("task")),
        pose_source=_pose_source(root.section("pose_source")),
        topics=_topics(root.section("topics", {})),
        timestep_s=root.number("timestep_s", 0.005, low=1e-4, high=0.05),
    )
    root.finish()
    _check_references(scene, set(known_classes) if known_classes is not None else None)
    check_nominal_layout(scene)
    return scene


def _check_references(scene: SceneSpec, known: set[str] | None) -> None:
    for class_name in scene.object_classes:
        if class_name not in scene.classes:
            raise ConfigError(
                f"object_classes.{class_name}: unknown class {class_name!r}, "
                f"not in the class table {list(scene.classes)}"
            )
    names = [f.name for f in scene.furniture] + [o.name for o in scene.objects]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates or FLOOR in names:
        raise ConfigError(f"furniture and object names must be unique and not {FLOOR!r}")
    supports = {f.name: f for f in scene.furniture}
    for obj in scene.objects:
        where = f"object {obj.name!r}"
        if obj.class_name not in scene.classes or obj.class_name not in scene.object_classes:
            raise ConfigError(
                f"{where}: unknown class {obj.class_name!r}; the scene knows "
                f"{sorted(scene.object_classes)}"
            )
        if known is not None and obj.class_name not in known:
            raise ConfigError(
                f"{where}: unknown class {obj.class_name!r}; expected one of {sorted(known)}"
            )
        if obj.support != FLOOR and obj.support not in supports:
            raise ConfigError(f"{where}: unknown support {obj.support!r}")
        _check_fits_level(scene, obj)
    if not scene.objects:
        raise ConfigError("a scene needs at least one object")
    for support in scene.task.target_supports:
        if support != FLOOR and support not in supports:
            raise ConfigError(f"task.target_supports: unknown support {support!r}")
    if not any(obj.support in scene.task.target_supports for obj in scene.objects):
        raise ConfigError(f"no object stands on task.target_supports {scene.task.target_supports}")


def _check_fits_level(scene: SceneSpec, obj: ObjectSpec) -> None:
    if obj.support == FLOOR:
        if obj.level != 0:
            raise ConfigError(f"object {obj.name!r}: level must be 0 on the floor")
        return
    levels = scene.furniture_named(obj.support).levels_m
    if obj.level >= len(levels):
        raise ConfigError(f"object {obj.name!r}: {obj.support!r} has no level {obj.level}")
    height = scene.object_classes[obj.class_name].height_m
    if obj.level + 1 < len(levels) and levels[obj.level] + height >= levels[obj.level + 1]:
        raise ConfigError(
            f"object {obj.name!r} ({height} m tall) does not fit under the next level of "
            f"{obj.support!r}"
        )


def _rgba(fields: Fields, name: str, default: Any) -> Rgba:
    r, g, b, a = fields.numbers(name, 4, default, low=0.0)
    return (min(r, 1.0), min(g, 1.0), min(b, 1.0), min(a, 1.0))


def _object_classes(fields: Fields) -> dict[str, ObjectClassSpec]:
    result: dict[str, ObjectClassSpec] = {}
    for class_name in fields.names():
        item = fields.section(class_name)
        shape = item.text("shape")
        if shape not in OBJECT_SHAPES:
            raise ConfigError(f"{item.key('shape')} must be one of {OBJECT_SHAPES}, got {shape!r}")
        result[class_name] = ObjectClassSpec(
            name=class_name,
            shape=shape,
            radius_m=item.number("radius_m", low=0.01, high=0.5),
            height_m=item.number("height_m", low=0.01, high=1.0),
            rgba=_rgba(item, "rgba", [0.8, 0.2, 0.2, 1.0]),
        )
        item.finish()
    fields.finish()
    return result


def _room(fields: Fields) -> RoomSpec:
    size_x, size_y = fields.numbers("size_m", 2, low=1.0)
    room = RoomSpec(
        size_x_m=size_x,
        size_y_m=size_y,
        wall_height_m=fields.number("wall_height_m", 1.5, low=0.1, high=5.0),
        wall_thickness_m=fields.number("wall_thickness_m", 0.1, low=0.01, high=1.0),
        floor_rgba=_rgba(fields, "floor_rgba", [0.55, 0.5, 0.45, 1.0]),
        wall_rgba=_rgba(fields, "wall_rgba", [0.85, 0.85, 0.8, 1.0]),
    )
    fields.finish()
    return room


def _furniture(fields: Fields) -> FurnitureSpec:
    kind = fields.text("kind")
    if kind not in FURNITURE_KINDS:
        raise ConfigError(f"{fields.key('kind')} must be one of {FURNITURE_KINDS}, got {kind!r}")
    x, y = fields.numbers("position_m", 2)
    length, depth, height = fields.numbers("size_m", 3, low=0.05)
    levels = fields.numbers("levels_m", None, [], low=0.0)
    levels = tuple(sorted({*levels, height}))
    if levels[0] <= 0.0:
        raise ConfigError(f"{fields.key('levels_m')} must be above the floor, got {levels}")
    item = FurnitureSpec(
        name=fields.text("name"),
        kind=kind,
        x_m=x,
        y_m=y,
        yaw_rad=math.radians(fields.number("yaw_deg", 0.0, low=-360.0, high=360.0)),
        length_m=length,
        depth_m=depth,
        height_m=height,
        levels_m=levels,
        rgba=_rgba(fields, "rgba", [0.6, 0.45, 0.3, 1.0]),
    )
    fields.finish()
    return item


def _object(fields: Fields) -> ObjectSpec:
    x, y = fields.numbers("position_m", 2)
    obj = ObjectSpec(
        name=fields.text("name"),
        class_name=fields.text("class"),
        support=fields.text("support", FLOOR),
        level=fields.integer("level", 0, minimum=0),
        x_m=x,
        y_m=y,
        yaw_rad=math.radians(fields.number("yaw_deg", 0.0, low=-360.0, high=360.0)),
    )
    fields.finish()
    return obj


def _joint(fields: Fields, default_name: str) -> JointSpec:
    lower, upper = fields.numbers("range", 2)
    joint = JointSpec(
        name=fields.text("name", default_name),
        lower=lower,
        upper=upper,
        default=fields.number("default", (lower + upper) / 2, low=lower, high=upper),
        max_velocity=fields.number("max_velocity", low=1e-3, high=100.0),
    )
    if lower >= upper:
        raise ConfigError(f"{fields.key('range')} must be increasing, got {[lower, upper]}")
    fields.finish()
    return joint


def _robot(fields: Fields) -> RobotSpec:
    name = fields.text("name")
    if not fields.has("camera"):
        raise ConfigError(
            f"robot {name!r} has no camera (robot.camera): the policy sees through it"
        )
    robot = RobotSpec(
        name=name,
        base=_base(fields.section("base")),
        camera=_camera(fields.section("camera")),
        arm=_arm(fields.section("arm")),
    )
    fields.finish()
    return robot


def _base(fields: Fields) -> BaseSpec:
    base = BaseSpec(
        radius_m=fields.number("radius_m", low=0.05, high=1.0),
        height_m=fields.number("height_m", low=0.05, high=1.0),
        mass_kg=fields.number("mass_kg", low=0.1, high=1000.0),
        wheel_radius_m=fields.number("wheel_radius_m", low=0.01, high=0.5),
        wheel_separation_m=fields.number("wheel_separation_m", low=0.05, high=2.0),
        max_linear_mps=fields.number("max_linear_mps", low=0.01, high=10.0),
        max_angular_rps=fields.number("max_angular_rps", low=0.01, high=10.0),
        max_linear_accel_mps2=fields.number("max_linear_accel_mps2", low=0.01, high=100.0),
        max_angular_accel_rps2=fields.number("max_angular_accel_rps2", low=0.01, high=100.0),
        cmd_timeout_s=fields.number("cmd_timeout_s", 0.5, low=0.01, high=10.0),
        odom_rate_hz=fields.number("odom_rate_hz", 30.0, low=0.1, high=1000.0),
    )
    fields.finish()
    return base


def _camera(fields: Fields) -> CameraSpec:
    x, y, z = fields.numbers("position_m", 3)
    min_depth, max_depth = fields.numbers("depth_range_m", 2, [0.1, 10.0], low=0.0)
    encoding = fields.text("depth_encoding", "16UC1")
    if encoding not in DEPTH_ENCODINGS:
        raise ConfigError(
            f"{fields.key('depth_encoding')} must be one of {DEPTH_ENCODINGS}, got {encoding!r}"
        )
    if not 0 < min_depth < max_depth:
        raise ConfigError(f"{fields.key('depth_range_m')} must be 0 < min < max")
    camera = CameraSpec(
        name=fields.text("name", "head_camera"),
        frame_id=fields.text("frame_id", "camera_color_optical_frame"),
        width=fields.integer("width", minimum=8),
        height=fields.integer("height", minimum=8),
        hfov_rad=math.radians(fields.number("hfov_deg", low=10.0, high=170.0)),
        x_m=x,
        y_m=y,
        z_m=z,
        pitch_rad=math.radians(fields.number("pitch_down_deg", low=-89.0, high=89.0)),
        rate_hz=fields.number("rate_hz", 15.0, low=0.1, high=120.0),
        min_depth_m=min_depth,
        max_depth_m=max_depth,
        depth_encoding=encoding,
    )
    fields.finish()
    return camera


def _arm(fields: Fields) -> ArmSpec:
    arm = ArmSpec(
        lift=_joint(fields.section("lift"), "joint_lift"),
        extension=_joint(fields.section("extension"), "joint_arm"),
        wrist_yaw=_joint(fields.section("wrist_yaw"), "joint_wrist_yaw"),
        gripper=_joint(fields.section("gripper"), "joint_gripper_finger"),
        ee_reach_m=fields.number("ee_reach_m", low=0.0, high=2.0),
        ee_drop_m=fields.number("ee_drop_m", low=0.0, high=0.5),
        joint_state_rate_hz=fields.number("joint_state_rate_hz", 30.0, low=0.1, high=1000.0),
    )
    names = [joint.name for joint in arm.joints]
    if len(set(names)) != len(names):
        raise ConfigError(f"robot.arm joint names must be unique, got {names}")
    fields.finish()
    return arm


def _task(fields: Fields) -> TaskSpec:
    start = fields.section("start")
    low, high = start.numbers("distance_m", 2, low=0.0)
    if low > high:
        raise ConfigError(f"{start.key('distance_m')} must be [min, max], got {[low, high]}")
    start_spec = StartSpec(
        min_distance_m=low,
        max_distance_m=high,
        max_bearing_rad=math.radians(start.number("max_bearing_deg", 10.0, low=0.0, high=180.0)),
    )
    start.finish()
    task = TaskSpec(
        success_distance_m=fields.number("success_distance_m", low=0.01, high=2.0),
        target_supports=fields.texts("target_supports", [FLOOR]),
        max_episode_s=fields.number("max_episode_s", low=0.1, high=3600.0),
        control_rate_hz=fields.number("control_rate_hz", 10.0, low=0.1, high=1000.0),
        randomize_objects=fields.flag("randomize_objects", True),
        color_jitter=fields.number("color_jitter", 0.0, low=0.0, high=1.0),
        start=start_spec,
    )
    fields.finish()
    return task


def _pose_source(fields: Fields) -> PoseSourceSpec:
    spec = PoseSourceSpec(
        rate_hz=fields.number("rate_hz", 10.0, low=0.1, high=1000.0),
        noise_xy_m=fields.number("noise_xy_m", 0.0, low=0.0, high=10.0),
        noise_yaw_rad=math.radians(fields.number("noise_yaw_deg", 0.0, low=0.0, high=180.0)),
        drift_xy_m_per_sqrt_s=fields.number("drift_xy_m_per_sqrt_s", 0.0, low=0.0, high=10.0),
        drift_yaw_rad_per_sqrt_s=math.radians(
            fields.number("drift_yaw_deg_per_sqrt_s", 0.0, low=0.0, high=180.0)
        ),
        latency_s=fields.number("latency_s", 0.0, low=0.0, high=10.0),
    )
    fields.finish()
    return spec


def _topics(fields: Fields) -> TopicsSpec:
    defaults = TopicsSpec()
    values = {
        name: fields.text(name, getattr(defaults, name)) for name in TopicsSpec.__dataclass_fields__
    }
    fields.finish()
    return TopicsSpec(**values)
