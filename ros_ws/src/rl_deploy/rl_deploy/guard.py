"""command_guard's logic: the last hop to the robot, in a process of its own.

Zero when the policy goes quiet or the e-stop is set, teleop before policy, and the robot
profile's hard velocity, acceleration and joint limits on whatever gets through.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rl_deploy import codec
from rl_deploy.codec.typestore import (
    BOOL,
    DIAGNOSTIC_ARRAY,
    FLOAT64_MULTI_ARRAY,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    TWIST,
    TWIST_STAMPED,
)
from rl_deploy.command import ArmTarget, BaseVelocity, Command
from rl_deploy.errors import ConfigError, DecodeError, RlDeployError
from rl_deploy.io import Output
from rl_deploy.log import RateLimitedLog, diagnostics_due
from rl_deploy.safety import SafetyFilter, SafetyLimits
from rl_deploy.settings import MAX_TIMEOUT_S, setting
from rl_deploy.sync import JointStates, Stamped

logger = logging.getLogger(__name__)

Source = Literal["policy", "teleop", "quiet", "estop"]
ArmCommandType = Literal["joint_trajectory", "float64_multi_array"]
ARM_MSGTYPES: dict[str, str] = {
    "joint_trajectory": JOINT_TRAJECTORY,
    "float64_multi_array": FLOAT64_MULTI_ARRAY,
}

_NS = 1_000_000_000


@dataclass(frozen=True)
class GuardConfig:
    """How the guard decides; limits come from the robot profile and are never widened."""

    limits: SafetyLimits  # from the robot profile
    period_s: float = setting(0.02, "s between two outputs (zero or not).")
    input_timeout_s: float = setting(
        0.15,
        "s (at most 5); a policy command older than this gives zero. Keep it below two policy "
        "periods minus period_s.",
    )
    teleop_timeout_s: float = setting(
        0.5, "s (at most 5); teleop has priority while its last message is this fresh."
    )
    joints_timeout_s: float = setting(
        0.5, "s (at most 5); arm targets need a joint measurement this fresh."
    )

    def __post_init__(self) -> None:
        for key in ("period_s", "input_timeout_s", "teleop_timeout_s", "joints_timeout_s"):
            value = getattr(self, key)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{key} must be a finite number > 0, got {value!r}")
            if key != "period_s" and value > MAX_TIMEOUT_S:
                raise ConfigError(f"{key} must be at most {MAX_TIMEOUT_S} s, got {value!r}")
        if self.input_timeout_s < self.period_s:
            raise ConfigError(
                f"input_timeout_s ({self.input_timeout_s}) must be at least period_s "
                f"({self.period_s}): the guard would zero between two of its own ticks"
            )


@dataclass(frozen=True)
class GuardDecision:
    """What to send to the base this tick and why."""

    base: BaseVelocity
    source: Source
    clamped: bool  # True when a limit changed the requested velocity


@dataclass
class GuardCounters:
    """Totals since start, reported on /diagnostics."""

    quiet_ticks: int = 0
    estop_ticks: int = 0
    clamped_ticks: int = 0
    rejected_base: int = 0  # non-finite twists
    rejected_arm: int = 0  # non-finite, unknown joints, no fresh measurement or e-stop
    forwarded_arm: int = 0


ESTOP_TOPIC, ESTOP_OPERATOR = "topic", "operator"


class CommandGuard:
    """Pure state machine behind the command_guard node; the clock is passed in (ns)."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self.counters = GuardCounters()
        self.estop_sources: set[str] = set()  # who has the e-stop engaged
        self._policy: Stamped[BaseVelocity] | None = None  # stamped with its arrival
        self._teleop: Stamped[BaseVelocity] | None = None
        # Only joints with limits can be commanded, so only theirs are kept.
        self._joints = JointStates(config.limits.joints)
        # Speed and acceleration limits at the guard's own rate; it remembers the last output.
        self._base_filter = SafetyFilter(config.limits, config.period_s)

    @property
    def estop(self) -> bool:
        return bool(self.estop_sources)

    def set_estop(self, engaged: bool, source: str = ESTOP_TOPIC) -> None:
        """Engaged: zero now and until released; released: resume from zero.

        Each source releases only its own stop: an e-stop topic repeating `false` does not undo
        the operator's. The operator's release (ESTOP_OPERATOR, the node's service) ends
        every stop, as a reset button does; a source still saying stop engages it again.
        """
        if engaged:
            self.estop_sources.add(source)
        elif source == ESTOP_OPERATOR:
            self.estop_sources.clear()
        else:
            self.estop_sources.discard(source)

    def on_policy(self, velocity: BaseVelocity, now_ns: int) -> None:
        """A non-finite twist drops the source at once instead of keeping its last command."""
        self._policy = Stamped(velocity, now_ns, now_ns) if self._accept(velocity) else None

    def on_teleop(self, velocity: BaseVelocity, now_ns: int) -> None:
        """A non-finite twist from the operator is a zero one: the robot stands still until
        teleop has been quiet for its timeout, rather than going back to the policy at once."""
        held = velocity if self._accept(velocity) else BaseVelocity()
        self._teleop = Stamped(held, now_ns, now_ns)

    def on_joints(
        self, positions: Mapping[str, float], now_ns: int, stamp_ns: int | None = None
    ) -> None:
        """Measured positions of some joints (drivers publish their own share); the others
        keep their last value. `stamp_ns`: the header stamp, `now_ns` when not given."""
        self._joints.update(positions, now_ns if stamp_ns is None else stamp_ns, now_ns)

    def drop_joints(self, names: Iterable[str] | None = None) -> None:
        """Forget these joints' measurements (None: all): arm targets for them are refused
        until they are measured again."""
        self._joints.drop(names)

    def source(self, now_ns: int) -> Source:
        self._forget_future(now_ns)
        if self.estop:
            return "estop"
        if self._teleop is not None and self._teleop.fresh(
            now_ns, self.config.teleop_timeout_s * _NS
        ):
            return "teleop"
        if self._policy is not None and self._policy.fresh(
            now_ns, self.config.input_timeout_s * _NS
        ):
            return "policy"
        return "quiet"

    def step(self, now_ns: int) -> GuardDecision:
        """One tick: pick the source, then clamp speed and acceleration against the last output.

        Quiet and e-stop give an exact zero at once (no deceleration ramp): the robot's own
        controller brakes, and a ramp would keep a runaway command alive for its length.
        """
        source = self.source(now_ns)
        if source in ("quiet", "estop"):
            self.reset_ramp()
            if source == "quiet":
                self.counters.quiet_ticks += 1
            else:
                self.counters.estop_ticks += 1
            return GuardDecision(base=BaseVelocity(), source=source, clamped=False)
        chosen = self._teleop if source == "teleop" else self._policy
        assert chosen is not None  # source() only names a source that has a message
        wanted = chosen.value
        limited = self._base_filter.apply(Command(base=wanted), None).base
        clamped = limited != wanted
        if clamped:
            self.counters.clamped_ticks += 1
        return GuardDecision(base=limited, source=source, clamped=clamped)

    def reset_ramp(self) -> None:
        """The next command accelerates from standstill."""
        self._base_filter.zero(None, ())

    def limit_arm(self, target: ArmTarget, duration_s: float, now_ns: int) -> ArmTarget | None:
        """Clamp an arm target to the joint ranges and to max_velocity over `duration_s`.

        None (nothing is forwarded, the controller holds) under e-stop, for non-finite
        targets, for joints the robot profile has no limits for, and without a fresh
        joint measurement to step from.
        """
        self._forget_future(now_ns)
        if (
            self.estop
            or not target.is_finite()
            or any(name not in self.config.limits.joints for name in target.names)
            or not self._measured(target.names, now_ns)
        ):
            self.counters.rejected_arm += 1
            return None
        # The controller gets `duration_s` to reach the target; never less than one tick.
        horizon_s = duration_s if math.isfinite(duration_s) else 0.0
        horizon_s = max(horizon_s, self.config.period_s)
        joints = self._joints.positions()
        limited = SafetyFilter(self.config.limits, horizon_s).apply(Command(arm=target), joints)
        if limited.arm is None:  # a joint of the target is missing from the measurement
            self.counters.rejected_arm += 1
            return None
        self.counters.forwarded_arm += 1
        return limited.arm

    def _measured(self, names: tuple[str, ...], now_ns: int) -> bool:
        """Every joint of `names` has a measurement, and the oldest of them is fresh."""
        oldest = self._joints.oldest(names)
        return oldest is not None and oldest.fresh(now_ns, self.config.joints_timeout_s * _NS)

    def _forget_future(self, now_ns: int) -> None:
        """Drop inputs from before the clock went back (sim reset, bag loop): they must not
        come back to life when it gets there again."""
        if self._policy is not None and self._policy.after(now_ns):
            self._policy = None
        if self._teleop is not None and self._teleop.after(now_ns):
            self._teleop = None
        self._joints.drop_after(now_ns)

    def _accept(self, velocity: BaseVelocity) -> bool:
        if velocity.is_finite():
            return True
        self.counters.rejected_base += 1
        return False


def _age_s(stamp_ns: int, now_ns: int) -> float:
    return (now_ns - stamp_ns) / _NS


@dataclass(frozen=True)
class GuardTopics:
    """Topic names of the guard; relative names resolve in the node's namespace."""

    cmd_vel_in: str = "cmd_vel_in"  # the policy's twist
    teleop: str = "cmd_vel_teleop"  # a joystick or keyboard twist, takes priority
    estop: str = "estop"  # std_msgs/Bool, true engages
    joint_states: str = "joint_states"
    arm_in: str = "arm_command_in"
    cmd_vel_out: str = "cmd_vel"
    arm_out: str = "arm_command"
    diagnostics: str = "/diagnostics"


@dataclass(frozen=True)
class GuardIO:
    """Message forms on the wire: Twist or TwistStamped, trajectory or forward-controller array."""

    topics: GuardTopics = GuardTopics()  # wiring: remapped by the host, not a setting
    stamped_in: bool = setting(False, "Policy and teleop inputs are TwistStamped.")
    stamped_out: bool = setting(
        False, "Publish TwistStamped (the Jazzy diff_drive_controller takes it)."
    )
    arm_command_type: ArmCommandType = setting(
        "joint_trajectory",
        "joint_trajectory or float64_multi_array, for the arm input and output alike.",
    )
    arm_joint_names: tuple[str, ...] = setting(
        (), "Joint order of float64_multi_array arm commands."
    )
    frame_id: str = setting("base_link", "frame_id of stamped outputs.")
    diagnostics_period_s: float = setting(1.0, "s between two /diagnostics messages.")

    def __post_init__(self) -> None:
        if self.arm_command_type == "float64_multi_array" and not self.arm_joint_names:
            raise ConfigError(
                "arm_joint_names must name the joints of float64_multi_array commands"
            )
        period_s = self.diagnostics_period_s
        if not math.isfinite(period_s) or period_s <= 0:
            raise ConfigError(f"diagnostics_period_s must be a finite number > 0, got {period_s!r}")


class GuardStep:
    """The guard on CDR bytes: `feed` each message, `tick` every period, publish the outputs."""

    def __init__(self, config: GuardConfig, io: GuardIO) -> None:
        self.guard = CommandGuard(config)
        self.io = io
        twist_in = TWIST_STAMPED if io.stamped_in else TWIST
        arm_type = ARM_MSGTYPES[io.arm_command_type]
        topics = io.topics
        self._handlers: dict[str, tuple[str, Callable[[Any, int], list[Output]]]] = {
            topics.cmd_vel_in: (twist_in, self._on_policy),
            topics.teleop: (twist_in, self._on_teleop),
            topics.estop: (BOOL, self._on_estop),
            topics.joint_states: (JOINT_STATE, self._on_joints),
            topics.arm_in: (arm_type, self._on_arm),
        }
        self._last_arm_ns: int | None = None
        self._next_diagnostics_ns: int | None = None
        self.decode_errors: dict[str, int] = {}
        self._log = RateLimitedLog(logger)

    @property
    def subscriptions(self) -> dict[str, str]:
        return {topic: msgtype for topic, (msgtype, _) in self._handlers.items()}

    @property
    def publications(self) -> dict[str, str]:
        topics = self.io.topics
        return {
            topics.cmd_vel_out: TWIST_STAMPED if self.io.stamped_out else TWIST,
            topics.arm_out: ARM_MSGTYPES[self.io.arm_command_type],
            topics.diagnostics: DIAGNOSTIC_ARRAY,
        }

    def feed(self, topic: str, data: bytes | memoryview, now_ns: int) -> list[Output]:
        """Take one message; never raises. A bad policy twist drops that input at once, a bad
        teleop twist holds a zero one (CommandGuard.on_teleop), a bad e-stop message engages the
        e-stop."""
        handler = self._handlers.get(topic)
        if handler is None:
            return []
        msgtype, on_message = handler
        msg: Any = None
        try:
            msg = codec.decode(data, msgtype)
            return on_message(msg, now_ns)
        except RlDeployError as err:
            self.decode_errors[topic] = self.decode_errors.get(topic, 0) + 1
            self._log.warning(topic, f"dropped message on {topic}: {err}")
            # Garbage on a twist input is taken as a non-finite twist is.
            if topic == self.io.topics.cmd_vel_in:
                self.guard.on_policy(BaseVelocity(math.nan), now_ns)
            elif topic == self.io.topics.teleop:
                self.guard.on_teleop(BaseVelocity(math.nan), now_ns)
            elif topic == self.io.topics.joint_states:
                # As in the pipeline: a bad message voids the joints it names, which may be what
                # it garbled, not the other drivers'; unreadable names void them all.
                self.guard.drop_joints(None if msg is None else [str(n) for n in msg.name])
            elif topic == self.io.topics.estop:  # it may have said stop: held until a false
                self.set_estop(True)
            return []

    def set_estop(self, engaged: bool, source: str = ESTOP_TOPIC) -> None:
        was = self.guard.estop
        self.guard.set_estop(engaged, source)
        if self.guard.estop != was:
            logger.warning("e-stop %s by the %s", "engaged" if engaged else "released", source)
        elif not engaged and was:
            held = sorted(self.guard.estop_sources)
            logger.warning("e-stop release by the %s: still engaged by the %s", source, held)

    def tick(self, now_ns: int) -> list[Output]:
        """One output period: the base command, and health every diagnostics period."""
        decision = self.guard.step(now_ns)
        return [self._twist_output(decision.base, now_ns), *self._diagnostics(now_ns, decision)]

    def zero(self, now_ns: int) -> list[Output]:
        """A zero base command to send as the node stops; the next ramp starts from zero."""
        self.guard.reset_ramp()
        return [self._twist_output(BaseVelocity(), now_ns)]

    def _twist_output(self, base: BaseVelocity, now_ns: int) -> Output:
        topic = self.io.topics.cmd_vel_out
        msgtype = self.publications[topic]
        if self.io.stamped_out:
            message = codec.twist_stamped(base, now_ns, self.io.frame_id)
        else:
            message = codec.twist(base)
        return Output(topic, msgtype, codec.encode(message, msgtype))

    def _twist(self, msg: Any) -> BaseVelocity:
        body = msg.twist if self.io.stamped_in else msg
        return BaseVelocity(
            linear_x=float(body.linear.x),
            linear_y=float(body.linear.y),
            angular_z=float(body.angular.z),
        )

    def _on_policy(self, msg: Any, now_ns: int) -> list[Output]:
        self.guard.on_policy(self._twist(msg), now_ns)
        return []

    def _on_teleop(self, msg: Any, now_ns: int) -> list[Output]:
        self.guard.on_teleop(self._twist(msg), now_ns)
        return []

    def _on_estop(self, msg: Any, _now_ns: int) -> list[Output]:
        self.set_estop(bool(msg.data))
        return []

    def _on_joints(self, msg: Any, now_ns: int) -> list[Output]:
        positions = codec.named_positions(msg, self.guard.config.limits.joints)
        self.guard.on_joints(positions, now_ns, codec.stamp_to_ns(msg.header.stamp))
        return []

    def _on_arm(self, msg: Any, now_ns: int) -> list[Output]:
        """Limit and forward one arm command at once (arm commands are not re-sent per tick)."""
        stamp_ns, frame_id = now_ns, self.io.frame_id
        if self.io.arm_command_type == "joint_trajectory":
            if len(msg.points) != 1:
                raise DecodeError(
                    f"the guard forwards single-point trajectories, got {len(msg.points)} points"
                )
            point = msg.points[0]
            target = ArmTarget(
                names=tuple(str(name) for name in msg.joint_names),
                positions=np.asarray(point.positions, dtype=np.float64),
            )
            if target.positions.shape != (len(target.names),):
                raise DecodeError(
                    f"trajectory point has {target.positions.size} positions "
                    f"for joints {list(target.names)}"
                )
            stamp_ns, frame_id = codec.stamp_to_ns(msg.header.stamp), msg.header.frame_id
            duration_s = codec.duration_to_ns(point.time_from_start) / _NS
            if 0 < stamp_ns < now_ns:
                # Started in the past, the controller reaches the point in what is left: limit
                # over that, and hand it on as starting on receipt.
                duration_s = (stamp_ns - now_ns) / _NS + duration_s
                stamp_ns = codec.TRAJECTORY_STARTS_ON_RECEIPT
        else:
            target = ArmTarget(
                names=self.io.arm_joint_names, positions=np.asarray(msg.data, dtype=np.float64)
            )
            if target.positions.shape != (len(target.names),):
                raise DecodeError(
                    f"arm command has {target.positions.size} values "
                    f"for arm_joint_names {list(target.names)}"
                )
            # A forward controller jumps at once: allow the motion since the previous command.
            since_s = _age_s(self._last_arm_ns, now_ns) if self._last_arm_ns else 0.0
            duration_s = min(since_s, self.guard.config.input_timeout_s)
        self._last_arm_ns = now_ns
        limited = self.guard.limit_arm(target, duration_s, now_ns)
        if limited is None:
            return []
        topic, msgtype = self.io.topics.arm_out, ARM_MSGTYPES[self.io.arm_command_type]
        if self.io.arm_command_type == "joint_trajectory":
            horizon_ns = round(max(duration_s, self.guard.config.period_s) * _NS)
            message = codec.joint_trajectory(limited, stamp_ns, frame_id, horizon_ns)
        else:
            message = codec.float64_multi_array(limited.positions)
        return [Output(topic, msgtype, codec.encode(message, msgtype))]

    def _diagnostics(self, now_ns: int, decision: GuardDecision) -> list[Output]:
        period_ns = round(self.io.diagnostics_period_s * _NS)
        if not diagnostics_due(self._next_diagnostics_ns, now_ns, period_ns):
            return []
        self._next_diagnostics_ns = now_ns + period_ns
        messages = {
            "policy": "forwarding the policy",
            "teleop": "teleop has priority",
            "quiet": "no fresh command: publishing zero",
            "estop": "e-stop engaged: publishing zero",
        }
        counters = self.guard.counters
        values = {
            "source": decision.source,
            "estop": str(self.guard.estop).lower(),
            "linear_x": f"{decision.base.linear_x:.3f}",
            "angular_z": f"{decision.base.angular_z:.3f}",
            **{key: str(value) for key, value in vars(counters).items()},
            **{f"decode_errors {k}": str(v) for k, v in self.decode_errors.items()},
        }
        level = (
            codec.DiagnosticLevel.OK if decision.source == "policy" else codec.DiagnosticLevel.WARN
        )
        status = codec.DiagnosticStatusData(
            name="rl_deploy: command_guard",
            level=level,
            message=messages[decision.source],
            values=values,
        )
        array = codec.diagnostic_array(now_ns, [status])
        return [
            Output(
                self.io.topics.diagnostics, DIAGNOSTIC_ARRAY, codec.encode(array, DIAGNOSTIC_ARRAY)
            )
        ]
