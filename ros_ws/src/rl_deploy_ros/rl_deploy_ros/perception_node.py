"""perception_node: RGB (+ aligned depth, camera info) in; per-class target masks, detections,
the label map and an optional debug overlay out, all carrying the RGB frame's header."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from rl_deploy import codec
from rl_deploy.codec.typestore import CAMERA_INFO, DIAGNOSTIC_ARRAY, IMAGE
from rl_deploy.config import config_from_mapping
from rl_deploy.errors import RlDeployError
from rl_deploy.io import Output
from rl_deploy.perception.step import PerceptionConfig, PerceptionStep
from rl_deploy_ros import host
from rl_deploy_ros.params import core_mapping, perception_specs

SPECS = perception_specs()
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_PERIOD_S = 1.0


def build_config(values: dict[str, Any]) -> PerceptionConfig:
    """Parameters → the core's config; ConfigError names the key at fault."""
    host.check_qos(values)
    mapping = core_mapping(values)
    model = host.resolve_path(mapping["detector"]["model"], values["base_dir"])
    mapping["detector"]["model"] = str(model)
    return config_from_mapping(PerceptionConfig, mapping)


class PerceptionNode(LifecycleNode):
    def __init__(self, name: str = "perception_node", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        host.declare(self, SPECS, build_config, configured=lambda: self._topics is not None)
        self.step: PerceptionStep | None = None
        # Extra consumers of every output in this process (stack_node's policy).
        self.listeners: list[Callable[[list[Output]], None]] = []
        self._config: PerceptionConfig | None = None
        self._topics: host.RawTopics | None = None
        self._timer: Any = None
        self._active = False
        self._dropped_reported = 0

    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    @host.logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = host.values(self, SPECS)
        try:
            self._config = build_config(values)
            self.step = PerceptionStep(self._config)
        except (RlDeployError, TypeError, ValueError) as err:
            return host.failure(self, err)
        topics = self._config.topics
        inputs = {topics.rgb: IMAGE, topics.depth: IMAGE, topics.camera_info: CAMERA_INFO}
        qos = {k: host.qos_profile(values[f"ros.qos.{k}"], k) for k in ("camera", "state")}
        self._topics = host.RawTopics(
            self,
            {topic: msgtype for topic, msgtype in inputs.items() if topic},
            {**self.step.output_types(), DIAGNOSTICS_TOPIC: DIAGNOSTIC_ARRAY},
            self._on_message,
            input_qos=lambda msgtype: qos[host.camera_or_state(msgtype)],
            output_qos=host.qos_profile(values["ros.qos.output"], "ros.qos.output"),
            latched=[topics.label_info],
        )
        self.get_logger().info(f"detector on {self.step.provider}: {self.step.target_classes}")
        return TransitionCallbackReturn.SUCCESS

    @host.logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.step is None:  # freed on deactivate: load the model again
            assert self._config is not None
            try:
                self.step = PerceptionStep(self._config)
            except RlDeployError as err:
                return host.failure(self, err)
        result = super().on_activate(state)
        self._active = True
        self._publish([self.step.label_info(self._now_ns())])
        self._timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._diagnostics)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._free()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        if self._topics is not None:
            self._topics.destroy()
            self._topics = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self.on_cleanup(state)

    def _free(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self.step = None  # frees the ONNX Runtime session

    def _on_message(self, topic: str, data: bytes) -> None:
        if self._active and self.step is not None:
            self._publish(self.step.feed(topic, data, self._now_ns()))

    def _publish(self, outputs: list[Output]) -> None:
        if self._topics is not None:
            self._topics.publish(outputs)
        for listener in self.listeners:
            listener(outputs)

    def _diagnostics(self) -> None:
        if self.step is None or self._topics is None:
            return
        stats = self.step.stats
        # WARN while frames are being dropped, OK again once they stop.
        total_dropped = sum(stats.dropped.values())
        dropped, self._dropped_reported = total_dropped - self._dropped_reported, total_dropped
        status = codec.DiagnosticStatusData(
            name="rl_deploy: perception",
            level=codec.DiagnosticLevel.WARN if dropped else codec.DiagnosticLevel.OK,
            message=f"{dropped} frames dropped since the last report" if dropped else "running",
            values={
                "provider": self.step.provider,
                "frames": str(stats.frames),
                "instances": str(stats.instances),
                "last_step_ms": f"{stats.last_step_ms:.2f}",
                **{f"last_{stage}_ms": f"{ms:.2f}" for stage, ms in stats.last_stage_ms.items()},
                **{f"dropped {topic}": str(n) for topic, n in stats.dropped.items()},
            },
        )
        array = codec.diagnostic_array(self._now_ns(), [status])
        data = codec.encode(array, DIAGNOSTIC_ARRAY)
        self._topics.publish([Output(DIAGNOSTICS_TOPIC, DIAGNOSTIC_ARRAY, data)])


def main(args: list[str] | None = None) -> int:
    return host.run(lambda: [PerceptionNode()], args)
