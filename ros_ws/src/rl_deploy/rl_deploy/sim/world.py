"""MuJoCo physics of a scene: episode resets, differential-drive base, arm servos, contacts.

Commands are rate-limited the way the robot's drivers do it (base acceleration, joint speed),
so the in-process simulator, the DDS host and the training environment move identically.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import numpy.typing as npt

from rl_deploy.geometry import Pose2D
from rl_deploy.sim.layout import EpisodeLayout
from rl_deploy.sim.mjcf import BASE_JOINTS, OBJECT_PREFIX, scene_to_mjcf
from rl_deploy.sim.robot_model import BASE_LINK, EE_SITE
from rl_deploy.sim.spec import SceneSpec

# Contacts with a body closer together than this are one collision (pushing chatters on and off).
COLLISION_DEBOUNCE_S = 0.5


def _step_towards(current: float, target: float, max_step: float) -> float:
    return current + min(max(target - current, -max_step), max_step)


class SimWorld:
    """One MuJoCo model and data for a scene; `step` advances physics by whole timesteps."""

    def __init__(self, scene: SceneSpec) -> None:
        self.scene = scene
        self.model = mujoco.MjModel.from_xml_string(scene_to_mjcf(scene))
        self.data = mujoco.MjData(self.model)
        model = self.model
        self.timestep_s = float(model.opt.timestep)
        arm = scene.robot.arm
        self.arm_joint_names: tuple[str, ...] = tuple(j.name for j in arm.joints)
        self._arm_specs = arm.joints
        self._arm_qpos = np.array([model.joint(n).qposadr[0] for n in self.arm_joint_names])
        self._arm_qvel = np.array([model.joint(n).dofadr[0] for n in self.arm_joint_names])
        self._arm_act = np.array([model.actuator(n).id for n in self.arm_joint_names])
        self._base_qpos = np.array([model.joint(n).qposadr[0] for n in BASE_JOINTS])
        self._base_qvel = np.array([model.joint(n).dofadr[0] for n in BASE_JOINTS])
        self._base_act = np.array([model.actuator(n).id for n in BASE_JOINTS])
        self._ee_site = model.site(EE_SITE).id
        self._mocap = [model.body(OBJECT_PREFIX + obj.name).mocapid[0] for obj in scene.objects]
        object_bodies = [model.body(OBJECT_PREFIX + obj.name).id for obj in scene.objects]
        self._object_geoms = [np.flatnonzero(model.geom_bodyid == body) for body in object_bodies]
        robot_root = model.body(BASE_LINK).id
        self._robot_body = np.array(
            [model.body_rootid[b] == robot_root for b in range(model.nbody)], dtype=bool
        )
        self.layout: EpisodeLayout | None = None
        self.collisions = 0
        self._last_touch_s: dict[int, float] = {}  # body id -> sim time of its latest contact
        self._allowed_bodies: set[int] = set()
        self._base_cmd = (0.0, 0.0)  # commanded (linear m/s, angular rad/s)
        self._base_setpoint = [0.0, 0.0]  # after acceleration limits
        self._arm_target = np.zeros(len(self.arm_joint_names))
        self._arm_setpoint = np.zeros(len(self.arm_joint_names))

    # --- episode --------------------------------------------------------------------------
    def reset(self, layout: EpisodeLayout) -> None:
        """Place objects and the robot as `layout` says; arm at its defaults, everything still."""
        model, data, scene = self.model, self.data, self.scene
        mujoco.mj_resetData(model, data)
        for index, obj in enumerate(scene.objects):
            x, y = layout.object_xy[index]
            yaw = layout.object_yaw[index]
            data.mocap_pos[self._mocap[index]] = (x, y, scene.support_height_m(obj))
            data.mocap_quat[self._mocap[index]] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
            for geom in self._object_geoms[index]:
                if model.geom_contype[geom]:  # visual-only details keep their shade
                    model.geom_rgba[geom] = layout.object_rgba[index]
        start = layout.start_pose
        data.qpos[self._base_qpos] = (start.x, start.y, start.yaw)
        defaults = np.array([spec.default for spec in self._arm_specs])
        data.qpos[self._arm_qpos] = defaults
        data.qpos[model.joint(f"{scene.robot.arm.gripper.name}_right").qposadr[0]] = defaults[-1]
        self._arm_target = defaults.copy()
        self._arm_setpoint = defaults.copy()
        data.ctrl[self._arm_act] = defaults
        self._base_cmd = (0.0, 0.0)
        self._base_setpoint = [0.0, 0.0]
        self.collisions = 0
        self._last_touch_s = {}
        # Touching an object of the target class is the task, not a collision.
        self._allowed_bodies = {
            model.body(OBJECT_PREFIX + obj.name).id
            for obj in scene.objects
            if obj.class_name == layout.target_class
        }
        self.layout = layout
        mujoco.mj_forward(model, data)

    def place_robot(self, pose: Pose2D, arm_positions: npt.ArrayLike | None = None) -> None:
        """Teleport the base (and set the arm joints, in `arm_joint_names` order) at rest: for
        rendering views (detector data), not for episodes, which only move by commands."""
        data = self.data
        data.qpos[self._base_qpos] = (pose.x, pose.y, pose.yaw)
        if arm_positions is not None:
            positions = np.asarray(arm_positions, dtype=np.float64).reshape(-1)
            lows = [spec.lower for spec in self._arm_specs]
            highs = [spec.upper for spec in self._arm_specs]
            data.qpos[self._arm_qpos] = np.clip(positions, lows, highs)
        data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, data)

    # --- commands -------------------------------------------------------------------------
    def set_base_command(self, linear_mps: float, angular_rps: float) -> None:
        base = self.scene.robot.base
        if not (math.isfinite(linear_mps) and math.isfinite(angular_rps)):
            linear_mps = angular_rps = 0.0  # a driver never acts on NaN
        self._base_cmd = (
            min(max(linear_mps, -base.max_linear_mps), base.max_linear_mps),
            min(max(angular_rps, -base.max_angular_rps), base.max_angular_rps),
        )

    def set_arm_targets(self, names: tuple[str, ...], positions: npt.ArrayLike) -> None:
        """Joint position targets by name (a subset is fine); clamped to the joint ranges."""
        values = np.asarray(positions, dtype=np.float64).reshape(-1)
        for name, value in zip(names, values, strict=True):
            index = self.arm_joint_names.index(name)
            spec = self._arm_specs[index]
            if math.isfinite(value):
                self._arm_target[index] = min(max(float(value), spec.lower), spec.upper)

    # --- time -----------------------------------------------------------------------------
    def step(self, substeps: int) -> None:
        base = self.scene.robot.base
        dt = self.timestep_s
        model, data = self.model, self.data
        for _ in range(substeps):
            setpoint = self._base_setpoint
            setpoint[0] = _step_towards(
                setpoint[0], self._base_cmd[0], base.max_linear_accel_mps2 * dt
            )
            setpoint[1] = _step_towards(
                setpoint[1], self._base_cmd[1], base.max_angular_accel_rps2 * dt
            )
            yaw = data.qpos[self._base_qpos[2]]
            # Differential drive: velocity along the heading only, nothing sideways.
            data.ctrl[self._base_act] = (
                setpoint[0] * math.cos(yaw),
                setpoint[0] * math.sin(yaw),
                setpoint[1],
            )
            for index, spec in enumerate(self._arm_specs):
                self._arm_setpoint[index] = _step_towards(
                    self._arm_setpoint[index], self._arm_target[index], spec.max_velocity * dt
                )
            data.ctrl[self._arm_act] = self._arm_setpoint
            mujoco.mj_step(model, data)
            if data.ncon:
                self._count_collisions()

    def _count_collisions(self) -> None:
        """Count contact onsets between the robot and anything but target-class objects."""
        bodies = self.model.geom_bodyid[self.data.contact.geom[: self.data.ncon]]
        robot = self._robot_body[bodies]
        others = np.where(robot[:, 0], bodies[:, 1], bodies[:, 0])[robot[:, 0] ^ robot[:, 1]]
        now_s = float(self.data.time)
        for body in {int(b) for b in others} - self._allowed_bodies:
            last_s = self._last_touch_s.get(body)
            if last_s is None or now_s - last_s > COLLISION_DEBOUNCE_S:
                self.collisions += 1
            self._last_touch_s[body] = now_s

    # --- state ----------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        return float(self.data.time)

    def base_pose(self) -> Pose2D:
        """Ground-truth base_link pose in the world (map) frame."""
        x, y, yaw = self.data.qpos[self._base_qpos]
        return Pose2D(float(x), float(y), math.atan2(math.sin(yaw), math.cos(yaw)))

    def base_twist(self) -> tuple[float, float]:
        """Measured (linear m/s along the heading, angular rad/s)."""
        vx, vy, wz = self.data.qvel[self._base_qvel]
        yaw = self.data.qpos[self._base_qpos[2]]
        return float(vx * math.cos(yaw) + vy * math.sin(yaw)), float(wz)

    def joint_positions(self) -> npt.NDArray[np.float64]:
        """(len(arm_joint_names),) m or rad."""
        return np.array(self.data.qpos[self._arm_qpos], dtype=np.float64)

    def joint_velocities(self) -> npt.NDArray[np.float64]:
        return np.array(self.data.qvel[self._arm_qvel], dtype=np.float64)

    def ee_position(self) -> npt.NDArray[np.float64]:
        """(3,) end-effector point in the world frame, m."""
        return np.array(self.data.site_xpos[self._ee_site], dtype=np.float64)

    def object_centres(self) -> npt.NDArray[np.float64]:
        """(K, 3) centre of each object (mid-height), world frame."""
        centres = np.array(self.data.mocap_pos[self._mocap], dtype=np.float64)
        for index, obj in enumerate(self.scene.objects):
            centres[index, 2] += self.scene.object_classes[obj.class_name].height_m / 2
        return centres

    def target_distance(self) -> float:
        """End effector to the nearest object of the episode's target class, m."""
        if self.layout is None:
            raise RuntimeError("reset the world before asking for the target distance")
        target = self.layout.target_class
        mask = np.array([obj.class_name == target for obj in self.scene.objects])
        offsets = self.object_centres()[mask] - self.ee_position()
        return float(np.min(np.linalg.norm(offsets, axis=1)))
