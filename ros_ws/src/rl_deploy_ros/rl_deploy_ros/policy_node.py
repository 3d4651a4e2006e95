"""policy_node: depth, masks, joint states and pose in; base and arm commands out.

Parameters → PipelineConfig → raw subscriptions feed the core; a timer at the card's control
rate runs `Pipeline.tick` and publishes what it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from rl_deploy.config import PipelineConfig
from rl_deploy.errors import RlDeployError
from rl_deploy.io import Output
from rl_deploy.pipeline import Pipeline
from rl_deploy_ros import host
from rl_deploy_ros.params import core_mapping, policy_specs

SPECS = policy_specs()


def build_config(values: dict[str, Any]) -> PipelineConfig:
    """Parameters → the core's config; ConfigError names the key at fault."""
    host.check_qos(values)
    base_dir = host.base_dir_for(values["policy.card"], values["base_dir"])
    return PipelineConfig.from_mapping(core_mapping(values), base_dir=base_dir)


class PolicyNode(LifecycleNode):
    def __init__(self, name: str = "policy_node", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        host.declare(self, SPECS, build_config, configured=lambda: self._topics is not None)
        self.pipeline: Pipeline | None = None
        # stack_node: which inputs another node of this process feeds (no DDS subscription),
        # those chosen at configure, and whether that node runs a detector here (the policy
        # then takes one thread).
        self.fed_directly: Callable[[str], bool] = lambda topic: False
        self.direct_inputs: frozenset[str] = frozenset()
        self.detector_in_process = False
        self._config: PipelineConfig | None = None
        self._topics: host.RawTopics | None = None
        self._timer: Any = None
        self._active = False
        # stack_node feeds masks from the perception node's thread while the timer ticks here.
        self._lock = threading.Lock()

    def _load_pipeline(self, config: PipelineConfig) -> Pipeline:
        return Pipeline.from_config(config, detector_in_process=self.detector_in_process)

    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    @host.logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = host.values(self, SPECS)
        try:
            self._config = build_config(values)
            self.pipeline = self._load_pipeline(self._config)
        except RlDeployError as err:
            return host.failure(self, err)
        qos = {
            k: host.qos_profile(values[f"ros.qos.{k}"], f"ros.qos.{k}") for k in ("camera", "state")
        }
        inputs, topics = self.pipeline.subscriptions, self.pipeline.config.topics
        self.direct_inputs = frozenset(topic for topic in inputs if self.fed_directly(topic))
        subscriptions = {t: msgtype for t, msgtype in inputs.items() if t not in self.direct_inputs}
        try:
            self._topics = host.RawTopics(
                self,
                subscriptions,
                self.pipeline.publications,
                self._on_message,
                input_qos=lambda msgtype: qos[host.camera_or_state(msgtype)],
                output_qos=host.qos_profile(values["ros.qos.output"], "ros.qos.output"),
                input_qos_of={
                    topics.tf_static: host.LATCHED_INPUT_QOS,
                    topics.estop: host.qos_profile(values["ros.qos.estop"], "ros.qos.estop"),
                },
            )
        except RlDeployError as err:  # an input's message package is missing
            self._free()  # the model's session with it
            return host.failure(self, err)
        return TransitionCallbackReturn.SUCCESS

    @host.logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.pipeline is None:  # freed on deactivate: load the model again
            assert self._config is not None
            try:
                self.pipeline = self._load_pipeline(self._config)
            except RlDeployError as err:
                return host.failure(self, err)
        self.pipeline.reset_episode()
        self._timer = self.create_timer(self.pipeline.control_period_ns / 1e9, self._tick)
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_exit()
        self._active = False
        self._free()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        self.direct_inputs = frozenset()
        with self._lock:
            if self._topics is not None:
                self._topics.destroy()
                self._topics = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_exit()
        return self.on_cleanup(state)

    def on_exit(self) -> None:
        """The last command is a zero (host.run calls this on SIGINT and SIGTERM too)."""
        with self._lock:
            if self._active and self.pipeline is not None and self._topics is not None:
                self._active = False  # and the last: no tick or fed frame publishes after it
                self._topics.publish(self.pipeline.zero_outputs(self._now_ns()))
                self._topics.flush()

    def _free(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        with self._lock:
            # Dropping the pipeline frees the ONNX Runtime session it holds.
            self.pipeline = None

    def feed(self, topic: str, data: bytes) -> None:
        """One message in, from a subscription or from another node of the same process
        (on that node's thread); topics the pipeline does not read are ignored."""
        with self._lock:
            if self._active and self.pipeline is not None:
                self.publish(self.pipeline.feed(topic, data, self._now_ns()))

    def _on_message(self, topic: str, data: bytes) -> None:
        self.feed(topic, data)

    def publish(self, outputs: list[Output]) -> None:
        if self._topics is not None:
            self._topics.publish(outputs)

    def _tick(self) -> None:
        with self._lock:
            if self._active and self.pipeline is not None:
                # The camera-sized debug mask costs a frame's encoding: only for a listener.
                mask_topic = self.pipeline.config.topics.mask_out
                listened = self._topics is not None and self._topics.listened(mask_topic)
                self.pipeline.publish_target_mask = listened
                # The command is published first; what reports on the step follows.
                self.publish(self.pipeline.tick(self._now_ns(), self.publish))


def main(args: list[str] | None = None) -> int:
    return host.run(lambda: [PolicyNode()], args)
