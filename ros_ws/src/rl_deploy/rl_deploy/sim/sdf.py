"""Write the Gazebo (gz sim) world and robot model (SDF 1.9) of a scene.

The world holds the layout of one seed, the same one MuJoCo's `reset(seed)` builds; the robot
carries an RGB-D and a semantic segmentation camera, a DiffDrive base, a joint state publisher,
a trajectory controller for the arm and a ground-truth odometry publisher.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace

from rl_deploy.geometry import Pose2D
from rl_deploy.sim.layout import EpisodeLayout, sample_layout
from rl_deploy.sim.robot_model import BASE_LINK, LinkDef, robot_links
from rl_deploy.sim.shapes import Part, furniture_parts, object_parts, wall_parts
from rl_deploy.sim.spec import SceneSpec

SDF_VERSION = "1.9"
GZ_TOPICS = {  # gz transport topics the robot's sensors and systems use (bridge.py maps them)
    "camera": "camera",  # rgbd_camera: camera/image, camera/depth_image, camera/camera_info
    "segmentation": "segmentation",  # segmentation/labels_map, segmentation/colored_map
    "cmd_vel": "cmd_vel",
    "odom": "odom",
    "tf": "tf",
    "joint_states": "joint_states",
    "arm_command": "arm_controller/joint_trajectory",
    "ground_truth": "ground_truth/odom",
    "clock": "clock",
}
WHEEL_WIDTH_M = 0.03
CASTER_RADIUS_M = 0.025
_SYSTEM = "gz::sim::systems::"


def _fmt(*values: float) -> str:
    return " ".join(f"{value:.6g}" for value in values)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _pose(
    parent: ET.Element, xyz: tuple[float, float, float], rpy: tuple[float, ...] = (0, 0, 0)
) -> None:
    _text(parent, "pose", _fmt(*xyz, *rpy))


def _geometry(parent: ET.Element, part: Part) -> None:
    geometry = ET.SubElement(parent, "geometry")
    size = part.full_size()
    if part.kind == "box":
        _text(ET.SubElement(geometry, "box"), "size", _fmt(*size))
    elif part.kind == "cylinder":
        cylinder = ET.SubElement(geometry, "cylinder")
        _text(cylinder, "radius", _fmt(size[0]))
        _text(cylinder, "length", _fmt(size[1]))
    else:
        _text(ET.SubElement(geometry, "sphere"), "radius", _fmt(size[0]))


def _part(link: ET.Element, part: Part, *, frictionless: bool = False) -> None:
    if part.collides:
        collision = ET.SubElement(link, "collision", name=f"{part.name}_collision")
        _pose(collision, part.pos)
        _geometry(collision, part)
        if frictionless:  # casters slide; only the driven wheels grip
            ode = ET.SubElement(
                ET.SubElement(ET.SubElement(collision, "surface"), "friction"), "ode"
            )
            _text(ode, "mu", "0")
            _text(ode, "mu2", "0")
    visual = ET.SubElement(link, "visual", name=f"{part.name}_visual")
    _pose(visual, part.pos)
    _geometry(visual, part)
    material = ET.SubElement(visual, "material")
    r, g, b, a = part.rgba
    _text(material, "ambient", _fmt(r, g, b, a))
    _text(material, "diffuse", _fmt(r, g, b, a))
    _text(material, "specular", "0.1 0.1 0.1 1")


def _plugin(parent: ET.Element, short: str, system: str, values: dict[str, str]) -> ET.Element:
    plugin = ET.SubElement(
        parent, "plugin", filename=f"gz-sim-{short}-system", name=_SYSTEM + system
    )
    for key, value in values.items():
        _text(plugin, key, value)
    return plugin


def _inertial(
    link: ET.Element,
    mass_kg: float,
    half: tuple[float, float, float],
    centre: tuple[float, float, float],
) -> None:
    inertial = ET.SubElement(link, "inertial")
    _pose(inertial, centre)
    _text(inertial, "mass", _fmt(mass_kg))
    inertia = ET.SubElement(inertial, "inertia")
    hx, hy, hz = half
    for key, value in (
        ("ixx", mass_kg * (hy**2 + hz**2) / 3),
        ("iyy", mass_kg * (hx**2 + hz**2) / 3),
        ("izz", mass_kg * (hx**2 + hy**2) / 3),
        ("ixy", 0.0),
        ("ixz", 0.0),
        ("iyz", 0.0),
    ):
        _text(inertia, key, _fmt(value))


def _static_model(
    parent: ET.Element, name: str, pose: Pose2D, parts: list[Part], *, z: float = 0.0, label: int
) -> None:
    """A static model; `label` > 0 tags its visuals for the segmentation camera."""
    model = ET.SubElement(parent, "model", name=name)
    _text(model, "static", "true")
    _pose(model, (pose.x, pose.y, z), (0.0, 0.0, pose.yaw))
    link = ET.SubElement(model, "link", name="link")
    for part in parts:
        _part(link, part)
    if label:
        _plugin(model, "label", "Label", {"label": str(label)})


def scene_to_world_sdf(scene: SceneSpec, seed: int = 0) -> str:
    """The world of `seed`'s layout, with the robot inline at its start pose."""
    layout = sample_layout(scene, seed)
    root = ET.Element("sdf", version=SDF_VERSION)
    world = ET.SubElement(root, "world", name=scene.name)
    physics = ET.SubElement(world, "physics", name="default", type="ignored")
    _text(physics, "max_step_size", _fmt(scene.timestep_s))
    _text(physics, "real_time_factor", "1")
    _plugin(world, "physics", "Physics", {})
    _plugin(world, "user-commands", "UserCommands", {})
    _plugin(world, "scene-broadcaster", "SceneBroadcaster", {})
    _plugin(world, "sensors", "Sensors", {"render_engine": "ogre2"})
    scene_element = ET.SubElement(world, "scene")
    _text(scene_element, "ambient", "0.4 0.4 0.4 1")
    _text(scene_element, "background", "0.7 0.7 0.7 1")
    _text(scene_element, "shadows", "false")
    light = ET.SubElement(world, "light", type="directional", name="sun")
    _text(light, "cast_shadows", "false")
    _pose(light, (0.0, 0.0, 4.0))
    _text(light, "diffuse", "0.8 0.8 0.8 1")
    _text(light, "direction", "0.3 0.2 -1")
    _ground(world, scene)
    _static_model(world, "walls", Pose2D(0, 0, 0), wall_parts(scene.room), label=0)
    for item in scene.furniture:
        _static_model(
            world,
            item.name,
            Pose2D(item.x_m, item.y_m, item.yaw_rad),
            furniture_parts(item),
            label=scene.class_id(item.kind),
        )
    _objects(world, scene, layout)
    world.append(robot_model_element(scene, layout.start_pose))
    ET.indent(root)
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _ground(world: ET.Element, scene: SceneSpec) -> None:
    size = max(scene.room.size_x_m, scene.room.size_y_m) + 4.0
    model = ET.SubElement(world, "model", name="ground_plane")
    _text(model, "static", "true")
    link = ET.SubElement(model, "link", name="link")
    for tag in ("collision", "visual"):
        element = ET.SubElement(link, tag, name=tag)
        plane = ET.SubElement(ET.SubElement(element, "geometry"), "plane")
        _text(plane, "normal", "0 0 1")
        _text(plane, "size", _fmt(size, size))
        if tag == "visual":
            material = ET.SubElement(element, "material")
            _text(material, "ambient", _fmt(*scene.room.floor_rgba))
            _text(material, "diffuse", _fmt(*scene.room.floor_rgba))


def _objects(world: ET.Element, scene: SceneSpec, layout: EpisodeLayout) -> None:
    for index, obj in enumerate(scene.objects):
        x, y = (float(v) for v in layout.object_xy[index])
        spec = scene.object_classes[obj.class_name]
        rgba = tuple(float(v) for v in layout.object_rgba[index])
        parts = [
            Part(
                p.name,
                p.kind,
                p.size,
                p.pos,
                (rgba[0], rgba[1], rgba[2], rgba[3]) if p.collides else p.rgba,
                p.collides,
            )
            for p in object_parts(spec)
        ]
        _static_model(
            world,
            obj.name,
            Pose2D(x, y, float(layout.object_yaw[index])),
            parts,
            z=scene.support_height_m(obj),
            label=scene.class_id(obj.class_name),
        )


def scene_to_robot_sdf(scene: SceneSpec) -> str:
    """The robot alone (a model file, for spawning into another world)."""
    root = ET.Element("sdf", version=SDF_VERSION)
    root.append(robot_model_element(scene, Pose2D(0.0, 0.0, 0.0)))
    ET.indent(root)
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def robot_model_element(scene: SceneSpec, pose: Pose2D) -> ET.Element:
    robot = scene.robot
    model = ET.Element("model", name=robot.name)
    _pose(model, (pose.x, pose.y, 0.0), (0.0, 0.0, pose.yaw))
    links = robot_links(robot)
    for link in links:
        _link(model, link)
    _wheels(model, scene)
    _camera(model, scene)
    _systems(model, scene, links)
    return model


def _link(model: ET.Element, link: LinkDef) -> None:
    element = ET.SubElement(model, "link", name=link.name)
    if link.parent is not None:
        # Poses chain through parents, at every joint's zero position.
        _text(element, "pose", _fmt(*link.pos, 0, 0, 0)).set("relative_to", link.parent)
    main = link.parts[0]
    half = main.size if main.kind == "box" else (main.size[0], main.size[0], main.size[-1])
    _inertial(element, link.mass_kg, (half[0], half[1], half[2]), main.pos)
    for part in link.parts:
        _part(element, part)
    if link.name == BASE_LINK:
        caster_x = main.size[0] - CASTER_RADIUS_M - 0.02  # inside the shell's rim
        for name, sign in (("caster_front", 1.0), ("caster_back", -1.0)):
            centre = (sign * caster_x, 0.0, CASTER_RADIUS_M)
            caster = Part(name, "sphere", (CASTER_RADIUS_M,), centre, (0.1, 0.1, 0.1, 1.0))
            _part(element, caster, frictionless=True)
    if link.joint is not None:
        joint = ET.SubElement(model, "joint", name=link.joint.name, type=link.joint.kind)
        _text(joint, "parent", link.parent or BASE_LINK)
        _text(joint, "child", link.name)
        axis = ET.SubElement(joint, "axis")
        _text(axis, "xyz", _fmt(*link.joint.axis))
        limit = ET.SubElement(axis, "limit")
        spec = link.joint.spec
        _text(limit, "lower", _fmt(spec.lower))
        _text(limit, "upper", _fmt(spec.upper))
        _text(limit, "velocity", _fmt(spec.max_velocity))
        _text(limit, "effort", "200" if link.joint.kind == "prismatic" else "20")
        dynamics = ET.SubElement(axis, "dynamics")
        _text(dynamics, "damping", "5")


def _wheels(model: ET.Element, scene: SceneSpec) -> None:
    base = scene.robot.base
    for side, sign in (("left", 1.0), ("right", -1.0)):
        link = ET.SubElement(model, "link", name=f"{side}_wheel_link")
        _text(
            link,
            "pose",
            _fmt(0.0, sign * base.wheel_separation_m / 2, base.wheel_radius_m, -math.pi / 2, 0, 0),
        ).set("relative_to", BASE_LINK)
        wheel = Part(
            "wheel",
            "cylinder",
            (base.wheel_radius_m, WHEEL_WIDTH_M / 2),
            (0.0, 0.0, 0.0),
            (0.05, 0.05, 0.05, 1.0),
        )
        _inertial(
            link,
            0.5,
            (base.wheel_radius_m, base.wheel_radius_m, WHEEL_WIDTH_M / 2),
            (0.0, 0.0, 0.0),
        )
        _part(link, wheel)
        joint = ET.SubElement(model, "joint", name=f"{side}_wheel_joint", type="revolute")
        _text(joint, "parent", BASE_LINK)
        _text(joint, "child", f"{side}_wheel_link")
        axis = ET.SubElement(joint, "axis")
        _text(axis, "xyz", "0 0 1")
        limit = ET.SubElement(axis, "limit")
        _text(limit, "lower", "-1e16")
        _text(limit, "upper", "1e16")


def _camera(model: ET.Element, scene: SceneSpec) -> None:
    camera = scene.robot.camera
    link = ET.SubElement(model, "link", name="camera_link")
    _text(link, "pose", _fmt(camera.x_m, camera.y_m, camera.z_m, 0.0, camera.pitch_rad, 0.0)).set(
        "relative_to", BASE_LINK
    )
    _inertial(link, 0.1, (0.02, 0.05, 0.02), (0.0, 0.0, 0.0))
    for sensor_type, name, topic in (
        ("rgbd_camera", camera.name, GZ_TOPICS["camera"]),
        ("segmentation", f"{camera.name}_segmentation", GZ_TOPICS["segmentation"]),
    ):
        sensor = ET.SubElement(link, "sensor", name=name, type=sensor_type)
        _text(sensor, "always_on", "true")
        _text(sensor, "update_rate", _fmt(camera.rate_hz))
        _text(sensor, "topic", topic)
        element = ET.SubElement(sensor, "camera", name=name)
        if sensor_type == "segmentation":
            _text(element, "segmentation_type", "semantic")
        _text(element, "horizontal_fov", _fmt(camera.hfov_rad))
        image = ET.SubElement(element, "image")
        _text(image, "width", str(camera.width))
        _text(image, "height", str(camera.height))
        if sensor_type == "rgbd_camera":
            _text(image, "format", "R8G8B8")
        clip = ET.SubElement(element, "clip")
        _text(clip, "near", "0.02")
        _text(clip, "far", "50")
        if sensor_type == "rgbd_camera":
            depth_clip = ET.SubElement(ET.SubElement(element, "depth_camera"), "clip")
            _text(depth_clip, "near", _fmt(camera.min_depth_m))
            _text(depth_clip, "far", _fmt(camera.max_depth_m))
    joint = ET.SubElement(model, "joint", name="camera_joint", type="fixed")
    _text(joint, "parent", BASE_LINK)
    _text(joint, "child", "camera_link")


def _systems(model: ET.Element, scene: SceneSpec, links: list[LinkDef]) -> None:
    base, arm, spec = scene.robot.base, scene.robot.arm, scene.pose_source
    _plugin(
        model,
        "diff-drive",
        "DiffDrive",
        {
            "left_joint": "left_wheel_joint",
            "right_joint": "right_wheel_joint",
            "wheel_separation": _fmt(base.wheel_separation_m),
            "wheel_radius": _fmt(base.wheel_radius_m),
            "max_linear_acceleration": _fmt(base.max_linear_accel_mps2),
            "min_linear_acceleration": _fmt(-base.max_linear_accel_mps2),
            "max_angular_acceleration": _fmt(base.max_angular_accel_rps2),
            "min_angular_acceleration": _fmt(-base.max_angular_accel_rps2),
            "max_linear_velocity": _fmt(base.max_linear_mps),
            "min_linear_velocity": _fmt(-base.max_linear_mps),
            "max_angular_velocity": _fmt(base.max_angular_rps),
            "min_angular_velocity": _fmt(-base.max_angular_rps),
            "topic": GZ_TOPICS["cmd_vel"],
            "odom_topic": GZ_TOPICS["odom"],
            "tf_topic": GZ_TOPICS["tf"],
            "frame_id": "odom",
            "child_frame_id": BASE_LINK,
            "odom_publish_frequency": _fmt(base.odom_rate_hz),
        },
    )
    joint_names = [
        link.joint.name for link in links if link.joint is not None and not link.joint.mirror
    ]
    publisher = _plugin(
        model, "joint-state-publisher", "JointStatePublisher", {"topic": GZ_TOPICS["joint_states"]}
    )
    for name in joint_names:
        _text(publisher, "joint_name", name)
    controller = _plugin(
        model,
        "joint-trajectory-controller",
        "JointTrajectoryController",
        {"topic": GZ_TOPICS["arm_command"]},
    )
    gripper_right = replace(arm.gripper, name=f"{arm.gripper.name}_right")
    for joint in (arm.lift, arm.extension, arm.wrist_yaw, arm.gripper, gripper_right):
        prismatic = joint is not arm.wrist_yaw
        _text(controller, "joint_name", joint.name)
        _text(controller, "initial_position", _fmt(joint.default))
        _text(controller, "position_p_gain", "2000" if prismatic else "40")
        _text(controller, "position_i_gain", "50" if prismatic else "1")
        _text(controller, "position_d_gain", "100" if prismatic else "2")
        _text(controller, "position_cmd_max", "200" if prismatic else "20")
        _text(controller, "position_cmd_min", "-200" if prismatic else "-20")
    _plugin(
        model,
        "odometry-publisher",
        "OdometryPublisher",
        {
            "odom_frame": "map",
            "robot_base_frame": BASE_LINK,
            "odom_topic": GZ_TOPICS["ground_truth"],
            "tf_topic": "ground_truth/tf",
            "odom_publish_frequency": _fmt(spec.rate_hz),
            "dimensions": "2",
        },
    )
