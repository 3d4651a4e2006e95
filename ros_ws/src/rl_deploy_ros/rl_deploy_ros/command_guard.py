"""command_guard: the last hop to the robot, a process apart from the policy.

Zero when the policy goes quiet or the e-stop is set; teleop first; the robot's hard limits.
"""

from __future__ import annotations

from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import SetBool

from rl_deploy.config import config_from_mapping
from rl_deploy.errors import RlDeployError
from rl_deploy.guard import ESTOP_OPERATOR, GuardConfig, GuardIO, GuardStep
from rl_deploy.safety import load_robot_limits
from rl_deploy_ros import host
from rl_deploy_ros.params import field_values, guard_specs

SPECS = guard_specs()


def build_step(values: dict[str, Any]) -> GuardStep:
    """Parameters → the core guard; ConfigError names the parameter at fault."""
    for key in ("ros.qos.input", "ros.qos.output", "ros.qos.estop"):
        host.qos_profile(values[key], key)
    limits = load_robot_limits(host.resolve_path(values["robot_profile"]))
    config = config_from_mapping(GuardConfig, field_values(GuardConfig, values), limits=limits)
    return GuardStep(config, config_from_mapping(GuardIO, field_values(GuardIO, values)))


class CommandGuardNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("command_guard", **kwargs)
        host.declare(self, SPECS, build_step, configured=lambda: self._topics is not None)
        self._step: GuardStep | None = None
        # An engaged e-stop outlives cleanup: a reconfigured guard must not release it.
        self._estop_sources: set[str] = set()
        self._topics: host.RawTopics | None = None
        self._timer: Any = None
        self._service: Any = None

    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    @host.logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = host.values(self, SPECS)
        try:
            self._step = build_step(values)
        except RlDeployError as err:
            return host.failure(self, err)
        for source in self._estop_sources:
            self._step.set_estop(True, source)
        input_qos = host.qos_profile(values["ros.qos.input"], "ros.qos.input")
        self._topics = host.RawTopics(
            self,
            self._step.subscriptions,
            self._step.publications,
            self._on_message,
            input_qos=lambda _msgtype: input_qos,
            output_qos=host.qos_profile(values["ros.qos.output"], "ros.qos.output"),
            input_qos_of={
                self._step.io.topics.estop: host.qos_profile(
                    values["ros.qos.estop"], "ros.qos.estop"
                )
            },
        )
        self._service = self.create_service(SetBool, "~/set_estop", self._on_set_estop)
        self.get_logger().info(
            f"guarding with {values['robot_profile']}: zero after "
            f"{values['input_timeout_s']} s without a command"
        )
        return TransitionCallbackReturn.SUCCESS

    @host.logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self._step is not None
        self._timer = self.create_timer(self._step.guard.config.period_s, self._tick)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_exit()
        self._cancel_timer()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_exit()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_exit(self) -> None:
        """Leave the base stopped: the last thing this node says is a zero command (host.run
        calls this on SIGINT and SIGTERM too)."""
        if self._step is not None and self._topics is not None:
            self._topics.publish(self._step.zero(self._now_ns()))
            self._topics.flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def _release(self) -> None:
        if self._step is not None:
            self._estop_sources = set(self._step.guard.estop_sources)
        self._cancel_timer()
        if self._topics is not None:
            self._topics.destroy()
        if self._service is not None:
            self.destroy_service(self._service)
        self._step, self._topics, self._service = None, None, None

    def _on_message(self, topic: str, data: bytes) -> None:
        # Inputs count while inactive too: an e-stop must hold whatever the state.
        if self._step is not None and self._topics is not None:
            self._topics.publish(self._step.feed(topic, data, self._now_ns()))

    def _tick(self) -> None:
        if self._step is not None and self._topics is not None:
            self._topics.publish(self._step.tick(self._now_ns()))

    def _on_set_estop(self, request: Any, response: Any) -> Any:
        if self._step is None:
            response.success, response.message = False, "command_guard is not configured"
            return response
        self._step.set_estop(bool(request.data), ESTOP_OPERATOR)
        response.success = True
        response.message = "e-stop engaged" if request.data else "e-stop released"
        return response


def main(args: list[str] | None = None) -> int:
    return host.run(lambda: [CommandGuardNode()], args)
