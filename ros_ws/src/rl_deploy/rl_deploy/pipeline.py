"""The one pipeline every host runs: CDR messages in, CDR commands out, on the host's clock.

Hosts (rclpy nodes, bag replay, the simulator harness) call `feed` for each message and `tick`
at the control rate. Decoding happens on arrival (cheap, zero-copy), all heavy work in `tick`,
so frames the controller never uses cost almost nothing; a host that passes its publish to
`tick` gets the command out before the step's reporting is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.codec.template import CommandEncoder, MaskImageEncoder
from rl_deploy.codec.typestore import (
    BOOL,
    DIAGNOSTIC_ARRAY,
    FLOAT64_MULTI_ARRAY,
    IMAGE,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    ODOMETRY,
    POSE_STAMPED,
    POSE_WITH_COVARIANCE_STAMPED,
    TF_MESSAGE,
    TWIST,
    TWIST_STAMPED,
)
from rl_deploy.command import Command
from rl_deploy.config import PipelineConfig
from rl_deploy.depth import DepthImage
from rl_deploy.drift import DriftMonitor, drift_status
from rl_deploy.errors import ConfigError, DecodeError, RlDeployError, StaleInputError
from rl_deploy.geometry import Pose2D
from rl_deploy.io import Output
from rl_deploy.log import RateLimitedLog, diagnostics_due
from rl_deploy.mask_sources import LazyMask, make_mask_source
from rl_deploy.perception.runner import YoloSegRunner
from rl_deploy.policy import Policy, RawObservation
from rl_deploy.safety import SafetyFilter, SafetyLimits, load_robot_limits
from rl_deploy.sync import (
    FrameBuffer,
    JointStates,
    Stamped,
    is_repeat,
    match_newest,
    unmatched_reason,
)

logger = logging.getLogger(__name__)

POSE_SOURCE_MSGTYPES = {
    "amcl": POSE_WITH_COVARIANCE_STAMPED,
    "pose_stamped": POSE_STAMPED,
    "odometry": ODOMETRY,
    "tf": TF_MESSAGE,
}
ARM_MSGTYPES = {
    "joint_trajectory": JOINT_TRAJECTORY,
    "float64_multi_array": FLOAT64_MULTI_ARRAY,
}

Publish = Callable[[list[Output]], None]  # a host's: sends the outputs on their topics
ZERO_REASONS = ("estop", "stale", "no_frames", "invalid_input", "policy_error", "nonfinite")


@dataclass
class PipelineStats:
    """Counters since start; what `summary.json` and `/diagnostics` report."""

    messages_in: dict[str, int] = field(default_factory=dict)
    decode_errors: dict[str, int] = field(default_factory=dict)
    ticks: int = 0
    commands_out: int = 0
    zero_commands: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ZERO_REASONS, 0))


@dataclass(frozen=True)
class TickRecord:
    """What one control step did, for reports and tests."""

    now_ns: int
    stamp_ns: int  # header stamp carried by the outputs
    command: Command  # what was sent, after safety
    zero_reason: str | None  # one of ZERO_REASONS, None when the policy drove
    detail: str  # human-readable cause of a zero command
    stage_ms: Mapping[str, float]  # per-stage wall time of this step
    pose: Pose2D | None  # base pose used (map frame)
    target_mask: LazyMask | None  # the policy's target mask, made whole on request
    depth: DepthImage | None  # depth frame used, as the camera sent it

    @property
    def mask_u8(self) -> npt.NDArray[np.uint8] | None:
        """The target mask at camera resolution, {0, 1} (made on first access)."""
        return None if self.target_mask is None else self.target_mask.whole

    @property
    def depth_m(self) -> npt.NDArray[np.float32] | None:
        """The depth frame used, in metres (converted on first access)."""
        return None if self.depth is None else self.depth.metres


@dataclass(frozen=True)
class _Step:
    """What the policy made of one frame set, or why it could not be used."""

    zero_reason: str | None  # one of ZERO_REASONS; None: the command drives
    detail: str
    command: Command
    target_mask: LazyMask | None = None
    feeds: Mapping[str, npt.NDArray[np.generic]] | None = None  # network inputs, for drift


@dataclass(frozen=True)
class _FrameSet:
    """Inputs of one control step, matched and checked for age."""

    depth: Stamped[DepthImage]
    partners: Mapping[str, Stamped[Any]]  # the mask source's frames matched with depth
    joints: Mapping[str, float]
    pose: Pose2D


def load_policy(config: PipelineConfig, detector_in_process: bool = False) -> Policy:
    """The card's policy on the config's providers and threads, its model checked against any
    pinned sha256."""
    return Policy.load(
        config.resolve(config.policy.card),
        providers=config.policy.providers,
        intra_op_threads=policy_threads(config, detector_in_process),
        expected_sha256=config.policy.sha256 or None,
    )


def policy_threads(config: PipelineConfig, detector_in_process: bool = False) -> int | None:
    """policy.intra_op_threads resolved: a count, or None for onnxruntime's default.

    `detector_in_process`: a detector runs in this process outside the pipeline (stack_node).
    """
    threads = config.policy.intra_op_threads
    if threads == -1:  # measured: see PolicyConfig.intra_op_threads
        beside_detector = detector_in_process or config.masks.source == "detector"
        return 1 if beside_detector else None
    return threads or None


class Pipeline:
    """Matches inputs, builds the observation, runs the policy and makes the command safe."""

    def __init__(
        self,
        config: PipelineConfig,
        policy: Policy,
        limits: SafetyLimits,
        detector: YoloSegRunner | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        card = policy.card
        self.control_period_ns = round(1e9 / card.control_rate_hz)
        self.safety = SafetyFilter(limits, self.control_period_ns / 1e9)
        arm = card.decoding.arm
        self.arm_joint_names: tuple[str, ...] = arm.targets if arm is not None else ()
        limits.require_joints(self.arm_joint_names)
        self.target_class = config.policy.target_class or card.target_classes[0]
        if self.target_class not in card.target_classes:
            raise ConfigError(
                f"policy.target_class {self.target_class!r} is not one of the card's "
                f"target_classes {list(card.target_classes)}"
            )
        self._mask_source = make_mask_source(config, self._needed_classes(), detector)
        self.stats = PipelineStats()
        self.drift = DriftMonitor(card, config.drift)  # live inputs vs the card's statistics
        self.last_tick: TickRecord | None = None
        # The target mask on topics.mask_out (debugging) is a frame-sized message each step:
        # hosts turn it off while nobody listens; replay and tests keep it.
        self.publish_target_mask = True
        self._log = RateLimitedLog(logger)
        self._depth: FrameBuffer[DepthImage] = FrameBuffer()
        self._joints = JointStates((*card.joint_names, *self.arm_joint_names))
        self._pose: Stamped[Pose2D] | None = None
        self._tf = codec.TransformTree()
        self._tf_stamp_ns: int | None = None  # of the map→base chain behind self._pose
        # What the card counts as no reading, besides 0 and non-finite values (65.535 m).
        self._depth_sentinels = tuple(
            sorted(
                {v for spec in card.inputs if spec.depth for v in spec.depth.invalid_values} - {0.0}
            )
        )
        self._estop = False
        self._episode_started = False
        self._next_diagnostics_ns: int | None = None
        self._handlers = self._make_handlers()
        self._commands = CommandEncoder(
            self.publications[config.topics.cmd_vel],
            ARM_MSGTYPES[config.arm_command_type],
            config.frames.base,
            self.arm_joint_names,
            self.control_period_ns,
        )
        self._mask_images = MaskImageEncoder()

    @classmethod
    def from_config(cls, config: PipelineConfig, detector_in_process: bool = False) -> Pipeline:
        """Load the card, its model and the robot profile; any problem is one clear error.

        `detector_in_process`: as policy_threads."""
        limits = load_robot_limits(config.resolve(config.robot_profile))
        return cls(config, load_policy(config, detector_in_process), limits)

    def _needed_classes(self) -> tuple[str, ...]:
        """The target class and every class a mask input of the card asks for."""
        classes = [self.target_class]
        for spec in self.policy.card.inputs:
            if spec.source == "mask":
                classes.extend(spec.classes)
        return tuple(dict.fromkeys(classes))

    # ---------------------------------------------------------------- topics

    @property
    def subscriptions(self) -> dict[str, str]:
        """Topic → message type of every input this pipeline consumes."""
        return {topic: msgtype for topic, (msgtype, _) in self._handlers.items()}

    @property
    def publications(self) -> dict[str, str]:
        topics = self.config.topics
        return {
            topics.cmd_vel: TWIST_STAMPED if self.config.cmd_vel_stamped else TWIST,
            topics.arm_command: ARM_MSGTYPES[self.config.arm_command_type],
            topics.mask_out: IMAGE,
            topics.diagnostics: DIAGNOSTIC_ARRAY,
        }

    def _make_handlers(self) -> dict[str, tuple[str, Callable[[Any, int], None]]]:
        topics = self.config.topics
        handlers: dict[str, tuple[str, Callable[[Any, int], None]]] = {
            topics.depth: (IMAGE, self._on_depth),
            topics.joint_states: (JOINT_STATE, self._on_joints),
            topics.pose: (POSE_SOURCE_MSGTYPES[self.config.pose_source], self._on_pose),
            topics.estop: (BOOL, self._on_estop),
        }
        if self.config.pose_source == "tf":
            handlers[topics.tf_static] = (POSE_SOURCE_MSGTYPES["tf"], self._on_tf_static)
        handlers.update(self._mask_source.handlers)
        return handlers

    # ---------------------------------------------------------------- input

    def feed(self, topic: str, data: bytes | memoryview, now_ns: int) -> list[Output]:
        """Take one message. Never raises: bad input is counted, logged, and stops the robot."""
        handler = self._handlers.get(topic)
        if handler is None:
            return []
        msgtype, on_message = handler
        self.stats.messages_in[topic] = self.stats.messages_in.get(topic, 0) + 1
        msg: Any = None
        try:
            msg = codec.decode_input(data, msgtype)
            on_message(msg, now_ns)
        except RlDeployError as err:
            self.stats.decode_errors[topic] = self.stats.decode_errors.get(topic, 0) + 1
            self._log.warning(topic, f"dropped message on {topic}: {err}")
            self._invalidate(topic, msg)
        return []

    def _invalidate(self, topic: str, msg: Any) -> None:
        """`msg`: the refused message, None when its bytes did not decode."""
        # Garbage on a stream means its last good value no longer describes the world.
        topics = self.config.topics
        if topic == topics.depth:
            self._depth.clear()
        elif topic in self._mask_source.buffers:
            self._mask_source.buffers[topic].clear()
        elif topic == topics.joint_states:
            # A bad message voids the joints it names, which may be what it garbled; the other
            # drivers' joints are not its to void. Any needed joint gone zeros the command until
            # its driver sends a good message; unreadable names void them all.
            self._joints.drop(None if msg is None else [str(name) for name in msg.name])
        elif topic in (topics.pose, topics.tf_static):
            self._pose = None
        elif topic == topics.estop:  # it may have said stop: held until a readable false
            self.set_estop(True)

    def _on_depth(self, frame: codec.ImageFrame, now_ns: int) -> None:
        depth = frame.depth()  # a view: metres only where they are needed
        self._depth.push(Stamped(depth, frame.stamp_ns, now_ns, frame.frame_id))

    def _on_joints(self, msg: Any, now_ns: int) -> None:
        positions = codec.named_positions(msg, self._joints.wanted)
        self._joints.update(positions, codec.stamp_to_ns(msg.header.stamp), now_ns)

    def _on_pose(self, msg: Any, now_ns: int) -> None:
        if self.config.pose_source == "tf":
            self._on_tf(msg, now_ns, static=False)
            return
        pose = codec.pose_from_message(msg, POSE_SOURCE_MSGTYPES[self.config.pose_source])
        frame, fixed = str(msg.header.frame_id).lstrip("/"), self.config.frames.map
        # A localisation pose (amcl, SLAM) is in the fixed frame; one in another frame (odom,
        # a second publisher on the topic) would move the episode's origin. Odometry is in its
        # own odom frame by definition and is taken as it comes.
        if self.config.pose_source != "odometry" and frame and frame != fixed:
            raise DecodeError(
                f"pose frame_id {frame!r} is not frames.map {fixed!r}: a pose in another frame "
                "cannot be compared with the episode's start (set frames.map if it is yours)"
            )
        stamp_ns = codec.stamp_to_ns(msg.header.stamp)
        if not is_repeat(stamp_ns, self._pose, pose):
            self._pose = Stamped(pose, stamp_ns, now_ns)

    def _on_tf_static(self, msg: Any, now_ns: int) -> None:
        self._on_tf(msg, now_ns, static=True)

    def _on_tf(self, msg: Any, now_ns: int, *, static: bool) -> None:
        if self._tf.update(msg, static=static):  # its stamps went back: the pose is from before
            self._pose, self._tf_stamp_ns = None, None
        frames = self.config.frames
        try:
            pose = self._tf.lookup(frames.map, frames.base)
            stamp_ns = self._tf.latest_stamp_ns(frames.map, frames.base)
        except StaleInputError:
            return  # the chain is not complete yet; staleness handles a chain that never is
        # /tf also carries links off the chain (arm, sensors), and the chain's stamp is its
        # oldest moving link's: the value follows every update (fast odometry under a slow
        # map→odom), but only a newer chain makes it fresher, or a frozen map→base would stay
        # fresh while anything else publishes.
        held = self._pose
        if held is None or self._tf_stamp_ns is None or stamp_ns > self._tf_stamp_ns:
            self._tf_stamp_ns = stamp_ns
            self._pose = Stamped(pose, stamp_ns, now_ns)
        else:
            self._pose = Stamped(pose, held.stamp_ns, held.arrival_ns)

    def _on_estop(self, msg: Any, _now_ns: int) -> None:
        self.set_estop(bool(msg.data))

    def set_estop(self, engaged: bool) -> None:
        if engaged and not self._estop:
            logger.warning("e-stop engaged: commands are zero until it is released")
        self._estop = engaged

    def reset_episode(self) -> None:
        """The next step starts a new episode: recurrent state and start pose are taken anew."""
        self._episode_started = False

    # ---------------------------------------------------------------- control step

    def tick(self, now_ns: int, publish: Publish | None = None) -> list[Output]:
        """One control step: a command (zero when anything is wrong) and, periodically, health.

        With `publish`, the command goes to it as soon as it is made, and what only reports on
        the step (drift statistics, the debug mask, diagnostics) is done after and returned:
        none of it delays the robot. Without, everything is returned, the command first.
        """
        t_start = time.perf_counter()
        self.stats.ticks += 1
        self._forget_future(now_ns)
        stage_ms: dict[str, float] = {}
        inputs = self._check_inputs(now_ns)
        depth: DepthImage | None = None
        if isinstance(inputs, _FrameSet):
            step = self._run_policy(inputs, stage_ms)
            stamp_ns, frame_id = inputs.depth.stamp_ns, inputs.depth.frame_id
            depth = inputs.depth.value
        else:
            step = _Step(*inputs, Command())
            stamp_ns, frame_id = now_ns, self.config.frames.base

        t_safety = time.perf_counter()
        joints_now = self._joints.positions()
        zero_reason, detail = step.zero_reason, step.detail
        if zero_reason is None:
            command = self.safety.apply(step.command, joints_now)
        else:
            command = self.safety.zero(self._arm_measured(now_ns), self.arm_joint_names)
        stage_ms["safety"] = (time.perf_counter() - t_safety) * 1e3

        t_encode = time.perf_counter()
        outputs = self._encode(command, stamp_ns)
        if publish is not None:
            publish(outputs)
            outputs = []
        t_sent = time.perf_counter()
        stage_ms["encode"] = (t_sent - t_encode) * 1e3
        stage_ms["to_command"] = (t_sent - t_start) * 1e3

        if zero_reason is not None:
            self.stats.zero_commands[zero_reason] += 1
            self._log.warning(f"zero:{zero_reason}", f"zero command ({zero_reason}): {detail}")
        if step.feeds:
            self.drift.update(step.feeds)
        if step.target_mask is not None and self.publish_target_mask:
            outputs.append(self._mask_output(step.target_mask, stamp_ns, frame_id))
        outputs += self._diagnostics(now_ns, zero_reason, detail)
        t_end = time.perf_counter()
        stage_ms["after_command"] = (t_end - t_sent) * 1e3
        stage_ms["total"] = (t_end - t_start) * 1e3
        self.stats.commands_out += 1
        self.last_tick = TickRecord(
            now_ns=now_ns,
            stamp_ns=stamp_ns,
            command=command,
            zero_reason=zero_reason,
            detail=detail,
            stage_ms=stage_ms,
            pose=self._pose.value if self._pose else None,
            target_mask=step.target_mask,
            depth=depth,
        )
        return outputs

    def _run_policy(self, inputs: _FrameSet, stage_ms: dict[str, float]) -> _Step:
        """Masks, then the policy: its command, or why it cannot be used."""
        depth = inputs.depth.value
        valid = depth.valid_fraction(self._depth_sentinels)
        if valid < self.config.depth_min_valid_fraction:
            sentinels = self._depth_sentinels
            extra = f", not the card's invalid_values {list(sentinels)} m" if sentinels else ""
            detail = f"depth frame has {valid:.1%} valid pixels (finite, > 0{extra})"
            return _Step("invalid_input", detail, Command())
        t_masks = time.perf_counter()
        try:
            masks = self._mask_source.masks(inputs.partners, depth)
            target_mask = masks[self.target_class]
            if self.publish_target_mask:  # made whole anyway: the policy then reads it there
                target_mask.whole  # noqa: B018
        except RlDeployError as err:
            return _Step("invalid_input", str(err), Command())
        stage_ms["masks"] = (time.perf_counter() - t_masks) * 1e3
        raw = RawObservation(
            depth_m=depth,
            masks=masks,
            joints=np.array([inputs.joints[name] for name in self.policy.card.joint_names]),
            pose=inputs.pose,
            target_class=self.target_class,
        )
        try:
            if not self._episode_started:
                self.policy.reset(inputs.pose)
                self._episode_started = True
            step = self.policy.step(raw)
        except RlDeployError as err:
            return _Step("policy_error", str(err), Command(), target_mask)
        stage_ms.update(step.timings_ms)
        if not step.command.is_finite():
            detail = f"policy produced a non-finite command {step.command}"
            # Its action (fed back as prev_action) and recurrent state are non-finite too: kept,
            # they would make every later step non-finite. The next step starts a new episode.
            self.reset_episode()
            return _Step("nonfinite", detail, Command(), target_mask, step.feeds)
        return _Step(None, "", step.command, target_mask, step.feeds)

    def _forget_future(self, now_ns: int) -> None:
        """Inputs from before the clock went back (sim reset, bag loop; sync.CLOCK_STEP_NS) are
        dropped, or they would look fresh again once the clock gets back there."""
        went_back = self._depth.drop_after(now_ns)
        for buffer in self._mask_source.buffers.values():
            went_back = buffer.drop_after(now_ns) or went_back
        went_back = self._joints.drop_after(now_ns) or went_back
        if self._pose is not None and self._pose.after(now_ns):
            self._pose, went_back = None, True
        if went_back:
            self._log.warning("clock", "time went back: dropped the inputs that arrived after now")
            # The tree's links are from before too: kept, the next /tf would rebuild the old
            # pose from them and make it the new episode's start.
            self._tf.clear(keep_static=True)
            self._tf_stamp_ns = None
            self.reset_episode()

    def _check_inputs(self, now_ns: int) -> _FrameSet | tuple[str, str]:
        """The matched inputs of this step, or why it must send zero: (reason, detail)."""
        if self._estop:
            return "estop", "e-stop engaged"
        wrong = self._check_joints(now_ns) or self._check_pose(now_ns)
        if wrong is not None:
            return wrong
        timeouts = self.config.timeouts
        slop_ns = round(self.config.sync_slop_s * 1e9)
        others = self._mask_source.buffers
        matched = match_newest(self._depth, others, slop_ns)
        if matched is None:
            return "no_frames", unmatched_reason(self.config.topics.depth, self._depth, others)
        depth, partners = matched
        frames = (depth, *partners.values())
        if not all(frame.fresh(now_ns, timeouts.camera_s * 1e9) for frame in frames):
            age_s = max(frame.age_ns(now_ns) for frame in frames) / 1e9
            return "stale", f"newest camera frame set is {age_s:.3f} s old"
        assert self._pose is not None  # _check_pose
        return _FrameSet(depth, partners, self._joints.positions(), self._pose.value)

    def _check_joints(self, now_ns: int) -> tuple[str, str] | None:
        """Why the joint states cannot be used this step, or None: every needed joint has a
        value and the oldest of them is fresh."""
        topic, timeout_ns = self.config.topics.joint_states, self.config.timeouts.joints_s * 1e9
        missing = self._joints.missing()
        if missing:
            return "invalid_input", f"no {', '.join(missing)} on {topic} yet"
        oldest = self._joints.oldest()
        if oldest is None or oldest.fresh(now_ns, timeout_ns):  # None: the card needs none
            return None
        stale = ", ".join(self._joints.stale(now_ns, timeout_ns))
        return "stale", f"{stale} on {topic}: {oldest.age_ns(now_ns) / 1e9:.3f} s old"

    def _check_pose(self, now_ns: int) -> tuple[str, str] | None:
        topic, pose = self.config.topics.pose, self._pose
        if pose is None:
            return "invalid_input", f"no valid message on {topic}"
        if not pose.fresh(now_ns, self.config.timeouts.pose_s * 1e9):
            return "stale", f"{topic} is {pose.age_ns(now_ns) / 1e9:.3f} s old"
        return None

    # ---------------------------------------------------------------- output

    def zero_outputs(self, now_ns: int) -> list[Output]:
        """A zero command, the arm held where it is measured: a stopping host's last word, so
        that the guard forwards a stop at once instead of the last command until its timeout."""
        return self._encode(
            self.safety.zero(self._arm_measured(now_ns), self.arm_joint_names), now_ns
        )

    def _arm_measured(self, now_ns: int) -> dict[str, float] | None:
        """The joint positions, when every arm joint's is fresh: an arm held at an old
        measurement would be sent back to where it was."""
        oldest = self._joints.oldest(self.arm_joint_names)
        if oldest is None or not oldest.fresh(now_ns, self.config.timeouts.joints_s * 1e9):
            return None
        return self._joints.positions()

    def _encode(self, command: Command, stamp_ns: int) -> list[Output]:
        topics, commands = self.config.topics, self._commands
        outputs = [
            Output(topics.cmd_vel, commands.twist_type, commands.base(command.base, stamp_ns))
        ]
        if command.arm is not None:
            # Stamp 0: a trajectory controller starts it on receipt, so it gets the whole period
            # the step was limited over. The camera stamp would be a start time in the past,
            # and the motion would be run that much faster.
            data = commands.arm(command.arm, codec.TRAJECTORY_STARTS_ON_RECEIPT)
            outputs.append(Output(topics.arm_command, commands.arm_type, data))
        return outputs

    def _mask_output(self, target_mask: LazyMask, stamp_ns: int, frame_id: str) -> Output:
        data = self._mask_images.encode(target_mask.whole, stamp_ns, frame_id)
        return Output(self.config.topics.mask_out, IMAGE, data)

    def _diagnostics(self, now_ns: int, zero_reason: str | None, detail: str) -> list[Output]:
        period_ns = round(self.config.diagnostics_period_s * 1e9)
        if not diagnostics_due(self._next_diagnostics_ns, now_ns, period_ns):
            return []
        self._next_diagnostics_ns = now_ns + period_ns
        level = codec.DiagnosticLevel.OK if zero_reason is None else codec.DiagnosticLevel.WARN
        values = {
            "ticks": str(self.stats.ticks),
            "provider": self.policy.runner.provider,
            "intra_op_threads": str(self.policy.runner.intra_op_threads or "default"),
            "target_mask": "published" if self.publish_target_mask else "off: no listener",
            **{f"zero_{k}": str(v) for k, v in self.stats.zero_commands.items()},
            **{f"decode_errors {k}": str(v) for k, v in self.stats.decode_errors.items()},
        }
        status = codec.DiagnosticStatusData(
            name="rl_deploy: pipeline",
            level=level,
            message="running" if zero_reason is None else f"zero command: {detail}",
            hardware_id=self.policy.card.name,
            values=values,
        )
        statuses = [status]
        if self.drift.inputs:
            statuses.append(drift_status(self.drift, self.policy.card.name))
        array = codec.diagnostic_array(now_ns, statuses)
        topic = self.config.topics.diagnostics
        return [Output(topic, DIAGNOSTIC_ARRAY, codec.encode(array, DIAGNOSTIC_ARRAY))]
