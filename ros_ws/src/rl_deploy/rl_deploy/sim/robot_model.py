"""The Stretch-like robot as a tree of links, joints and parts, derived from a `RobotSpec`.

MJCF and SDF both walk this tree; only how the base moves differs (planar joints in MuJoCo,
wheels driven by the DiffDrive system in Gazebo).
"""

from __future__ import annotations

from dataclasses import dataclass

from rl_deploy.sim.shapes import Part, Vec3
from rl_deploy.sim.spec import JointSpec, RobotSpec

BASE_LINK = "base_link"
EE_SITE = "ee"
MAST_X_M = -0.04  # mast centre behind base_link: the arm slides through the carriage ahead of it
GRIPPER_LENGTH_M = 0.15  # wrist axis to end-effector point
BASE_CLEARANCE_M = 0.03  # base shell bottom above the floor (wheels and casters below)
_BODY_RGBA = (0.15, 0.15, 0.17, 1.0)
_TRIM_RGBA = (0.75, 0.75, 0.78, 1.0)
_ACCENT_RGBA = (0.9, 0.55, 0.1, 1.0)


@dataclass(frozen=True)
class JointDef:
    name: str
    kind: str  # "prismatic" | "revolute"
    axis: Vec3  # in the child link frame
    spec: JointSpec  # limits, default, speed
    mirror: bool = False  # second finger: moves opposite to the first, same command


@dataclass(frozen=True)
class LinkDef:
    name: str
    parent: str | None
    pos: Vec3  # child origin in the parent frame at joint position 0
    joint: JointDef | None  # None: rigidly attached (or the root)
    mass_kg: float
    parts: tuple[Part, ...]


def robot_links(robot: RobotSpec) -> list[LinkDef]:
    """Links in parent-before-child order, base_link first (origin on the floor)."""
    base, arm, camera = robot.base, robot.arm, robot.camera
    shell_half = (base.height_m - BASE_CLEARANCE_M) / 2
    mast_top = camera.z_m - 0.06
    mast_half = (mast_top - base.height_m) / 2
    wrist_x0 = arm.ee_reach_m - GRIPPER_LENGTH_M
    drop = arm.ee_drop_m
    finger_z = -drop
    finger_y = 0.01  # finger inner face from the centre line when closed
    return [
        LinkDef(
            BASE_LINK,
            None,
            (0.0, 0.0, 0.0),
            None,
            base.mass_kg,
            (
                Part(
                    "shell",
                    "cylinder",
                    (base.radius_m, shell_half),
                    (0.0, 0.0, BASE_CLEARANCE_M + shell_half),
                    _BODY_RGBA,
                ),
                Part(
                    "mast",
                    "box",
                    (0.03, 0.03, mast_half),
                    (MAST_X_M, 0.0, base.height_m + mast_half),
                    _TRIM_RGBA,
                ),
                Part(
                    "head",
                    "box",
                    (0.04, 0.09, 0.03),
                    (camera.x_m - 0.04, camera.y_m, camera.z_m),
                    _BODY_RGBA,
                ),
            ),
        ),
        LinkDef(
            "lift_link",
            BASE_LINK,
            (0.0, 0.0, 0.0),
            JointDef(arm.lift.name, "prismatic", (0.0, 0.0, 1.0), arm.lift),
            1.0,
            (Part("carriage", "box", (0.035, 0.05, 0.04), (0.005, 0.0, 0.0), _TRIM_RGBA),),
        ),
        LinkDef(
            "arm_link",
            "lift_link",
            (wrist_x0, 0.0, 0.0),
            JointDef(arm.extension.name, "prismatic", (1.0, 0.0, 0.0), arm.extension),
            1.0,
            (Part("telescope", "box", (0.2, 0.025, 0.02), (-0.2, 0.0, 0.0), _BODY_RGBA),),
        ),
        LinkDef(
            "wrist_link",
            "arm_link",
            (0.0, 0.0, 0.0),
            JointDef(arm.wrist_yaw.name, "revolute", (0.0, 0.0, 1.0), arm.wrist_yaw),
            0.3,
            (
                Part("drop", "box", (0.015, 0.015, drop / 2), (0.0, 0.0, -drop / 2), _BODY_RGBA),
                Part("palm", "box", (0.03, 0.045, 0.015), (0.03, 0.0, finger_z), _ACCENT_RGBA),
            ),
        ),
        _finger("left_finger_link", arm.gripper, finger_y, finger_z, mirror=False),
        _finger("right_finger_link", arm.gripper, -finger_y, finger_z, mirror=True),
    ]


def _finger(name: str, gripper: JointSpec, y: float, z: float, *, mirror: bool) -> LinkDef:
    side = -1.0 if mirror else 1.0
    joint_name = f"{gripper.name}_right" if mirror else gripper.name
    return LinkDef(
        name,
        "wrist_link",
        (0.06, y, z),
        JointDef(joint_name, "prismatic", (0.0, side, 0.0), gripper, mirror=mirror),
        0.05,
        (Part("pad", "box", (0.045, 0.005, 0.012), (0.045, side * 0.005, 0.0), _ACCENT_RGBA),),
    )


def ee_offset(robot: RobotSpec) -> Vec3:
    """End-effector point in the wrist link frame."""
    return (GRIPPER_LENGTH_M, 0.0, -robot.arm.ee_drop_m)


def camera_mount(robot: RobotSpec) -> tuple[Vec3, float]:
    """Camera position in base_link and its downward pitch (rad)."""
    camera = robot.camera
    return (camera.x_m, camera.y_m, camera.z_m), camera.pitch_rad
