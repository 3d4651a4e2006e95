"""The MuJoCo simulator host: steps a scene and speaks CDR on the stack's topics.

It publishes camera images and info, joint states, odometry, tf and a SLAM-like pose at their
rates on a monotonic sim clock, and takes Twist / JointTrajectory / Float64MultiArray bytes (or
core commands). The same object runs in-process with the pipeline and inside a ROS 2 node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from transforms3d.quaternions import mat2quat

from rl_deploy.codec.typestore import (
    CAMERA_INFO,
    CLOCK,
    IMAGE,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    ODOMETRY,
    POSE_WITH_COVARIANCE_STAMPED,
    TF_MESSAGE,
    TWIST,
)
from rl_deploy.command import ArmTarget, BaseVelocity, Command
from rl_deploy.errors import DecodeError
from rl_deploy.geometry import Pose2D
from rl_deploy.io import Output
from rl_deploy.sim import messages
from rl_deploy.sim.commands import arm_target_from_cdr, base_velocity_from_cdr
from rl_deploy.sim.layout import EpisodeLayout, camera_axes, sample_layout
from rl_deploy.sim.pose_source import SlamPoseModel
from rl_deploy.sim.render import CameraFrame, CameraRenderer
from rl_deploy.sim.robot_model import BASE_LINK
from rl_deploy.sim.spec import SceneSpec
from rl_deploy.sim.world import SimWorld

MAP_FRAME, ODOM_FRAME = "map", "odom"
_NS_PER_S = 1_000_000_000
_POSE_SEED_OFFSET = 7_919  # the pose noise stream differs from the layout stream of a seed


@dataclass(frozen=True)
class HostOptions:
    camera: bool = True  # False: no camera topics at all (command and odometry tests, speed)
    rgb: bool = True  # render and publish colour (the detector needs it; gt masks do not)
    segmentation: bool = True  # publish the class-id mask (mono8) of ground truth
    start_time_ns: int = _NS_PER_S  # sim clock at the first reset; 0 reads as "no stamp" in ROS
    # Faults for drift and robustness tests; the published camera_info and tf stay nominal.
    depth_noise_std_m: float = 0.0  # Gaussian noise on every valid depth pixel
    camera_pitch_offset_rad: float = 0.0  # the real mount looks this much further down


@dataclass(frozen=True)
class EpisodeStatus:
    seed: int
    target_class: str
    elapsed_s: float
    success: bool  # the end effector came within task.success_distance_m of a target object
    timed_out: bool  # task.max_episode_s passed first
    collisions: int  # contact onsets between the robot and anything but target objects
    ee_distance_m: float  # now, to the nearest object of the target class
    path_length_m: float  # distance the base travelled
    start_distance_m: float  # base_link to the target object at the start

    @property
    def done(self) -> bool:
        return self.success or self.timed_out


class _Schedule:
    """Due times k * period after the episode origin, without accumulating rounding."""

    def __init__(self, rate_hz: float) -> None:
        self.period_ns = _NS_PER_S / rate_hz
        self.origin_ns = 0
        self.count = 0

    def restart(self, origin_ns: int) -> None:
        self.origin_ns, self.count = origin_ns, 0

    @property
    def due_ns(self) -> int:
        return self.origin_ns + round(self.count * self.period_ns)

    def take(self, now_ns: int) -> bool:
        if self.due_ns > now_ns:
            return False
        while self.due_ns <= now_ns:
            self.count += 1
        return True


class MujocoSimHost:
    """Seeded episodes (`reset`), time (`step`), commands in, CDR outputs back."""

    def __init__(self, scene: SceneSpec, options: HostOptions | None = None) -> None:
        self.scene = scene
        self.options = options or HostOptions()
        self.world = SimWorld(
            _with_camera_pitch_offset(scene, self.options.camera_pitch_offset_rad)
        )
        camera = scene.robot.camera
        self.renderer = CameraRenderer(self.world.model, scene, camera.width, camera.height)
        self._noise_rng = np.random.default_rng(0)
        self._pose_model = SlamPoseModel(scene.pose_source, seed=0)
        self._timestep_ns = round(self.world.timestep_s * _NS_PER_S)
        self._camera = _Schedule(camera.rate_hz)
        self._joints = _Schedule(scene.robot.arm.joint_state_rate_hz)
        self._odom = _Schedule(scene.robot.base.odom_rate_hz)
        self._pose = _Schedule(scene.pose_source.rate_hz)
        self._now_ns = self.options.start_time_ns
        self._origin_ns = self._now_ns
        self._last_cmd_ns = self._now_ns
        self._start_pose = Pose2D(0.0, 0.0, 0.0)
        self._map_to_odom = Pose2D(0.0, 0.0, 0.0)
        self._path_m = 0.0
        self._last_xy = (0.0, 0.0)
        self._success = False
        self._start_distance_m = 0.0
        self.layout: EpisodeLayout | None = None
        self.last_frame: CameraFrame | None = None

    # --- episodes -------------------------------------------------------------------------
    def reset(self, seed: int) -> EpisodeLayout:
        """Start an episode laid out by `seed`. The clock keeps running (ROS time never jumps
        back); odom restarts at the start pose, which is also where `map` and `odom` agree."""
        layout = sample_layout(self.scene, seed)
        self.world.reset(layout)
        if self.layout is not None:
            # One tick apart, so no stamp is shared by the end of one episode and the next start.
            self._now_ns += self._timestep_ns
        self._origin_ns = self._now_ns
        for schedule in (self._camera, self._joints, self._odom, self._pose):
            schedule.restart(self._origin_ns)
        self._pose_model.reset(seed + _POSE_SEED_OFFSET)
        self._noise_rng = np.random.default_rng(seed + 2 * _POSE_SEED_OFFSET)
        self._start_pose = layout.start_pose
        self._map_to_odom = layout.start_pose
        self._pose_model.record(self._now_ns, layout.start_pose)
        self._last_cmd_ns = self._now_ns
        self._path_m = 0.0
        self._last_xy = (layout.start_pose.x, layout.start_pose.y)
        self._success = False
        target = layout.object_xy[layout.target_index]
        self._start_distance_m = math.hypot(
            float(target[0]) - layout.start_pose.x, float(target[1]) - layout.start_pose.y
        )
        self.last_frame = None
        self.layout = layout
        return layout

    @property
    def now_ns(self) -> int:
        return self._now_ns

    def status(self) -> EpisodeStatus:
        layout = self._require_layout()
        elapsed_s = (self._now_ns - self._origin_ns) / _NS_PER_S
        return EpisodeStatus(
            seed=layout.seed,
            target_class=layout.target_class,
            elapsed_s=elapsed_s,
            success=self._success,
            timed_out=not self._success and elapsed_s >= self.scene.task.max_episode_s,
            collisions=self.world.collisions,
            ee_distance_m=self.world.target_distance(),
            path_length_m=self._path_m,
            start_distance_m=self._start_distance_m,
        )

    # --- commands -------------------------------------------------------------------------
    def apply(self, command: Command) -> None:
        self.apply_base(command.base)
        if command.arm is not None:
            self.apply_arm(command.arm)

    def apply_base(self, velocity: BaseVelocity) -> None:
        """Differential drive: linear_y is ignored, as a real diff-drive controller does."""
        self.world.set_base_command(velocity.linear_x, velocity.angular_z)
        self._last_cmd_ns = self._now_ns

    def apply_arm(self, target: ArmTarget) -> None:
        unknown = [name for name in target.names if name not in self.world.arm_joint_names]
        if unknown:
            raise DecodeError(
                f"arm command names unknown joint(s) {unknown}; the robot has "
                f"{list(self.world.arm_joint_names)}"
            )
        self.world.set_arm_targets(target.names, target.positions)

    def handle(self, topic: str, data: bytes | memoryview, msgtype: str | None = None) -> None:
        """Apply a command message (CDR bytes) that arrived on `topic`; DecodeError if bad."""
        topics = self.scene.topics
        if topic == topics.cmd_vel:
            velocity = base_velocity_from_cdr(data, msgtype)
            self.apply_base(velocity)  # a non-finite one stops the base (SimWorld), at once
            if not all(
                map(math.isfinite, (velocity.linear_x, velocity.linear_y, velocity.angular_z))
            ):
                raise DecodeError(f"base command is not finite: {velocity}; the base is stopped")
        elif topic == topics.arm_command:
            self.apply_arm(arm_target_from_cdr(data, self.world.arm_joint_names, msgtype))
        else:
            raise DecodeError(f"the simulator takes no commands on {topic!r}")

    # --- time -----------------------------------------------------------------------------
    def step(self, dt_s: float) -> list[Output]:
        """Advance by dt_s (whole physics steps, at least one); outputs in time order."""
        self._require_layout()
        end_ns = self._now_ns + max(1, round(dt_s * _NS_PER_S / self._timestep_ns)) * (
            self._timestep_ns
        )
        outputs: list[Output] = []
        while True:
            outputs.extend(self._due_outputs())
            if self._now_ns >= end_ns:
                break
            next_due = min(s.due_ns for s in (self._camera, self._joints, self._odom, self._pose))
            until_ns = min(end_ns, max(next_due, self._now_ns + self._timestep_ns))
            self._advance(-(-(until_ns - self._now_ns) // self._timestep_ns))
        outputs.append(messages.clock(self.scene.topics.clock, self._now_ns))
        return outputs

    def _advance(self, substeps: int) -> None:
        if self._now_ns - self._last_cmd_ns > self.scene.robot.base.cmd_timeout_s * _NS_PER_S:
            self.world.set_base_command(0.0, 0.0)
        self.world.step(substeps)
        self._now_ns += substeps * self._timestep_ns
        truth = self.world.base_pose()
        self._pose_model.record(self._now_ns, truth)
        self._path_m += math.hypot(truth.x - self._last_xy[0], truth.y - self._last_xy[1])
        self._last_xy = (truth.x, truth.y)
        if self.world.target_distance() <= self.scene.task.success_distance_m:
            self._success = True

    def _due_outputs(self) -> list[Output]:
        outputs: list[Output] = []
        now = self._now_ns
        if self._joints.take(now):
            outputs.append(
                messages.joint_state(
                    self.scene.topics.joint_states,
                    now,
                    self.world.arm_joint_names,
                    self.world.joint_positions(),
                    self.world.joint_velocities(),
                )
            )
        if self._odom.take(now):
            outputs.extend(self._odometry(now))
        if self._pose.take(now):
            outputs.extend(self._localisation(now))
        if self._camera.take(now) and self.options.camera:
            outputs.extend(self._camera_outputs(now))
        return outputs

    def _odometry(self, now: int) -> list[Output]:
        topics = self.scene.topics
        odom_pose = self.world.base_pose().relative_to(self._start_pose)
        linear, angular = self.world.base_twist()
        return [
            messages.odometry(
                topics.odom,
                now,
                (ODOM_FRAME, BASE_LINK),
                odom_pose,
                linear_mps=linear,
                angular_rps=angular,
            ),
            messages.tf_message(
                topics.tf, [messages.planar_transform(now, ODOM_FRAME, BASE_LINK, odom_pose)]
            ),
        ]

    def _localisation(self, now: int) -> list[Output]:
        topics, spec = self.scene.topics, self.scene.pose_source
        stamp_ns, estimate = self._pose_model.estimate(now)
        # map -> odom such that map -> odom -> base_link equals the estimate, as AMCL does.
        odom_then = self._pose_model.truth_at(stamp_ns).relative_to(self._start_pose)
        self._map_to_odom = estimate.compose(Pose2D(0.0, 0.0, 0.0).relative_to(odom_then))
        std_xy = math.hypot(spec.noise_xy_m, spec.drift_xy_m_per_sqrt_s)
        std_yaw = math.hypot(spec.noise_yaw_rad, spec.drift_yaw_rad_per_sqrt_s)
        return [
            messages.pose_with_covariance(
                topics.pose,
                stamp_ns,
                MAP_FRAME,
                estimate,
                messages.planar_covariance(max(std_xy, 1e-3), max(std_yaw, 1e-3)),
            ),
            messages.tf_message(
                topics.tf,
                [messages.planar_transform(stamp_ns, MAP_FRAME, ODOM_FRAME, self._map_to_odom)],
            ),
        ]

    def _camera_outputs(self, now: int) -> list[Output]:
        topics, camera = self.scene.topics, self.scene.robot.camera
        frame = self.renderer.render(self.world.data, rgb=self.options.rgb)
        depth_m, class_u8 = frame.depth_m, frame.class_u8
        assert depth_m is not None and class_u8 is not None
        if self.options.depth_noise_std_m > 0:
            noise = self._noise_rng.normal(0.0, self.options.depth_noise_std_m, depth_m.shape)
            noisy = np.where(depth_m > 0, np.maximum(depth_m + noise, 1e-3), 0.0)
            depth_m = noisy.astype(np.float32)
            frame = replace(frame, depth_m=depth_m)
        self.last_frame = frame
        frame_id = camera.frame_id
        outputs = []
        if frame.rgb_u8 is not None:
            outputs.append(messages.image(topics.rgb, frame.rgb_u8, "rgb8", now, frame_id))
        outputs.append(messages.camera_info(topics.camera_info, now, camera))
        outputs.append(
            messages.depth_image(topics.depth, depth_m, camera.depth_encoding, now, frame_id)
        )
        outputs.append(messages.camera_info(topics.depth_camera_info, now, camera))
        if self.options.segmentation:
            outputs.append(messages.image(topics.segmentation, class_u8, "mono8", now, frame_id))
        return outputs

    def command_topics(self) -> dict[str, str]:
        """Topics `handle` accepts, with their default message type (for subscriptions)."""
        topics = self.scene.topics
        return {topics.cmd_vel: TWIST, topics.arm_command: JOINT_TRAJECTORY}

    def output_topics(self) -> dict[str, str]:
        """Every topic `step` or `static_outputs` may publish, with its message type."""
        topics = self.scene.topics
        types = {
            topics.clock: CLOCK,
            topics.joint_states: JOINT_STATE,
            topics.odom: ODOMETRY,
            topics.tf: TF_MESSAGE,
            topics.tf_static: TF_MESSAGE,
            topics.pose: POSE_WITH_COVARIANCE_STAMPED,
        }
        if self.options.camera:
            types |= {
                topics.camera_info: CAMERA_INFO,
                topics.depth_camera_info: CAMERA_INFO,
                topics.depth: IMAGE,
            }
            if self.options.rgb:
                types[topics.rgb] = IMAGE
            if self.options.segmentation:
                types[topics.segmentation] = IMAGE
        return types

    def static_outputs(self) -> list[Output]:
        """/tf_static: base_link -> camera optical frame (publish once, transient local)."""
        camera = self.scene.robot.camera
        rotation = mat2quat(camera_axes(camera).T)  # columns: optical axes in base_link
        transform = messages.transform(
            self._now_ns,
            BASE_LINK,
            camera.frame_id,
            (camera.x_m, camera.y_m, camera.z_m),
            (float(rotation[0]), float(rotation[1]), float(rotation[2]), float(rotation[3])),
        )
        return [messages.tf_message(self.scene.topics.tf_static, [transform])]

    def render(self, *, rgb: bool = True) -> CameraFrame:
        """The head camera now, at full resolution (reports, image strips)."""
        return self.renderer.render(self.world.data, rgb=rgb)

    def _require_layout(self) -> EpisodeLayout:
        if self.layout is None:
            raise RuntimeError("call reset(seed) before stepping the simulator")
        return self.layout

    def close(self) -> None:
        self.renderer.close()


def _with_camera_pitch_offset(scene: SceneSpec, offset_rad: float) -> SceneSpec:
    """The scene as built physically: the camera tilted by `offset_rad` from its nominal mount."""
    if offset_rad == 0.0:
        return scene
    camera = replace(scene.robot.camera, pitch_rad=scene.robot.camera.pitch_rad + offset_rad)
    return replace(scene, robot=replace(scene.robot, camera=camera))
