"""Write the MuJoCo model (MJCF XML) of a scene: room, furniture, objects and the robot.

Objects are mocap bodies (static for physics, moved at each reset); the base moves on planar
joints driven by velocity servos, the arm by position servos; shadows are off for speed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from rl_deploy.sim.robot_model import BASE_LINK, EE_SITE, LinkDef, ee_offset, robot_links
from rl_deploy.sim.shapes import Part, furniture_parts, object_parts, wall_parts
from rl_deploy.sim.spec import SceneSpec

OBJECT_PREFIX = "object/"
FURNITURE_PREFIX = "furniture/"
BASE_JOINTS = ("base_x", "base_y", "base_yaw")  # world-frame planar joints of base_link
ROBOT_CLASS, WORLD_CLASS, VISUAL_CLASS = "robot", "world", "visual"
# Collision bits: the robot collides with the world; neither collides with itself; the floor
# plane collides with nothing (the base has no vertical freedom).
_ROBOT_BITS = ("2", "1")
_WORLD_BITS = ("1", "2")
_NEAR_CLIP_M = 0.01
_BASE_KV = 40.0  # N per m/s of velocity error, per kg of base mass
_YAW_KV = 60.0  # N m per rad/s
_ARM_KP = {"prismatic": 4000.0, "revolute": 50.0}


def _fmt(*values: float) -> str:
    return " ".join(f"{value:.6g}" for value in values)


def _geom(parent: ET.Element, name: str, part: Part, default_class: str) -> None:
    ET.SubElement(
        parent,
        "geom",
        {"class": default_class if part.collides else VISUAL_CLASS},
        name=name,
        type=part.kind,
        size=_fmt(*part.size),
        pos=_fmt(*part.pos),
        rgba=_fmt(*part.rgba),
    )


def scene_to_mjcf(scene: SceneSpec) -> str:
    """The MJCF document of a scene at its nominal layout."""
    root = ET.Element("mujoco", model=scene.name)
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    ET.SubElement(root, "option", timestep=f"{scene.timestep_s:g}", integrator="implicitfast")
    extent = max(scene.room.size_x_m, scene.room.size_y_m) / 2 + 2.0
    ET.SubElement(root, "statistic", extent=f"{extent:g}", center="0 0 0.5")
    _visual(root, scene, extent)
    _assets(root, scene)
    _defaults(root)
    world = ET.SubElement(root, "worldbody")
    ET.SubElement(
        world,
        "light",
        name="sun",
        directional="true",
        pos="0 0 4",
        dir="0.3 0.2 -1",
        castshadow="false",
        diffuse="0.6 0.6 0.6",
    )
    ET.SubElement(
        world,
        "geom",
        name="floor",
        type="plane",
        material="floor",
        contype="0",
        conaffinity="0",
        size=_fmt(extent, extent, extent),  # grid spacing: one quad, cheap for llvmpipe
    )
    for part in wall_parts(scene.room):
        _geom(world, part.name, part, WORLD_CLASS)
    for item in scene.furniture:
        body = ET.SubElement(
            world,
            "body",
            name=FURNITURE_PREFIX + item.name,
            pos=_fmt(item.x_m, item.y_m, 0.0),
            euler=_fmt(0.0, 0.0, item.yaw_rad),
        )
        for part in furniture_parts(item):
            _geom(body, f"{FURNITURE_PREFIX}{item.name}/{part.name}", part, WORLD_CLASS)
    for obj in scene.objects:
        body = ET.SubElement(
            world,
            "body",
            name=OBJECT_PREFIX + obj.name,
            mocap="true",
            pos=_fmt(obj.x_m, obj.y_m, scene.support_height_m(obj)),
            euler=_fmt(0.0, 0.0, obj.yaw_rad),
        )
        for part in object_parts(scene.object_classes[obj.class_name]):
            _geom(body, f"{OBJECT_PREFIX}{obj.name}/{part.name}", part, WORLD_CLASS)
    _robot(world, scene)
    _actuators(root, scene)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _visual(root: ET.Element, scene: SceneSpec, extent: float) -> None:
    camera = scene.robot.camera
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "global", offwidth=str(camera.width), offheight=str(camera.height))
    ET.SubElement(visual, "quality", shadowsize="0")
    far = math.hypot(scene.room.size_x_m, scene.room.size_y_m) + 2 * extent
    ET.SubElement(visual, "map", znear=f"{_NEAR_CLIP_M / extent:.6g}", zfar=f"{far / extent:.6g}")
    ET.SubElement(visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.45 0.45 0.45")


def _assets(root: ET.Element, scene: SceneSpec) -> None:
    asset = ET.SubElement(root, "asset")
    r, g, b, _ = scene.room.floor_rgba
    ET.SubElement(
        asset,
        "texture",
        name="floor",
        type="2d",
        builtin="checker",
        width="256",
        height="256",
        rgb1=_fmt(r, g, b),
        rgb2=_fmt(0.85 * r, 0.85 * g, 0.85 * b),
    )
    ET.SubElement(asset, "material", name="floor", texture="floor", texrepeat="8 8")


def _defaults(root: ET.Element) -> None:
    default = ET.SubElement(root, "default")
    for name, (contype, conaffinity) in ((ROBOT_CLASS, _ROBOT_BITS), (WORLD_CLASS, _WORLD_BITS)):
        ET.SubElement(
            ET.SubElement(default, "default", {"class": name}),
            "geom",
            contype=contype,
            conaffinity=conaffinity,
            friction="0.8 0.01 0.001",
        )
    ET.SubElement(
        ET.SubElement(default, "default", {"class": VISUAL_CLASS}),
        "geom",
        contype="0",
        conaffinity="0",
        mass="0",
    )


def _robot(world: ET.Element, scene: SceneSpec) -> None:
    robot = scene.robot
    bodies: dict[str, ET.Element] = {}
    for link in robot_links(robot):
        parent = world if link.parent is None else bodies[link.parent]
        body = ET.SubElement(parent, "body", name=link.name, pos=_fmt(*link.pos))
        if link.parent is not None:
            body.set("gravcomp", "1")  # the real lift and telescope hold their position
        bodies[link.name] = body
        _inertial(body, link)
        if link.name == BASE_LINK:
            for name, kind, axis in zip(
                BASE_JOINTS, ("slide", "slide", "hinge"), _AXES, strict=True
            ):
                ET.SubElement(body, "joint", name=name, type=kind, axis=axis, damping="0")
            _camera(body, scene)
        if link.joint is not None:
            spec = link.joint.spec
            ET.SubElement(
                body,
                "joint",
                name=link.joint.name,
                type="slide" if link.joint.kind == "prismatic" else "hinge",
                axis=_fmt(*link.joint.axis),
                range=_fmt(spec.lower, spec.upper),
                ref="0",
                damping="5",
                armature="0.05",
            )
        for part in link.parts:
            _geom(body, f"{link.name}/{part.name}", part, ROBOT_CLASS)
        if link.name == "wrist_link":
            ET.SubElement(body, "site", name=EE_SITE, pos=_fmt(*ee_offset(robot)), size="0.01")


_AXES = ("1 0 0", "0 1 0", "0 0 1")


def _inertial(body: ET.Element, link: LinkDef) -> None:
    # A solid box around the main part is close enough: only the base dynamics matter here.
    main = link.parts[0]
    half = main.size if main.kind == "box" else (main.size[0], main.size[0], main.size[-1])
    inertia = [
        link.mass_kg * (half[1] ** 2 + half[2] ** 2) / 3,
        link.mass_kg * (half[0] ** 2 + half[2] ** 2) / 3,
        link.mass_kg * (half[0] ** 2 + half[1] ** 2) / 3,
    ]
    ET.SubElement(
        body, "inertial", pos=_fmt(*main.pos), mass=f"{link.mass_kg:g}", diaginertia=_fmt(*inertia)
    )


def _camera(body: ET.Element, scene: SceneSpec) -> None:
    camera = scene.robot.camera
    sin_p, cos_p = math.sin(camera.pitch_rad), math.cos(camera.pitch_rad)
    # MuJoCo cameras look along -z with +y up: right = -y of the base, up tilted forward.
    ET.SubElement(
        body,
        "camera",
        name=camera.name,
        pos=_fmt(camera.x_m, camera.y_m, camera.z_m),
        xyaxes=_fmt(0.0, -1.0, 0.0, sin_p, 0.0, cos_p),
        fovy=f"{math.degrees(camera.vfov_rad):.6g}",
    )


def _actuators(root: ET.Element, scene: SceneSpec) -> None:
    robot = scene.robot
    actuator = ET.SubElement(root, "actuator")
    base_kv = _BASE_KV * robot.base.mass_kg
    for joint, kv in zip(BASE_JOINTS, (base_kv, base_kv, _YAW_KV), strict=True):
        ET.SubElement(actuator, "velocity", name=joint, joint=joint, kv=f"{kv:g}")
    for link in robot_links(robot):
        if link.joint is None or link.joint.mirror:
            continue
        kp = _ARM_KP[link.joint.kind]
        ET.SubElement(
            actuator,
            "position",
            name=link.joint.name,
            joint=link.joint.name,
            kp=f"{kp:g}",
            dampratio="1",
            ctrlrange=_fmt(link.joint.spec.lower, link.joint.spec.upper),
        )
    gripper = robot.arm.gripper.name
    equality = ET.SubElement(root, "equality")
    ET.SubElement(equality, "joint", joint1=f"{gripper}_right", joint2=gripper)
