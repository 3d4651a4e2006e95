"""stack_node: perception_node and policy_node in one process.

The detector's masks reach the policy as a function call instead of a DDS hop; everything else
(topics, parameters, lifecycle services) is as with the two separate nodes. Each node has an
executor and a thread of its own (host.spin_all): a detector step longer than the control period
must not delay the policy's timer (ONNX Runtime releases the GIL while it runs).
"""

from __future__ import annotations

from rclpy.lifecycle import LifecycleNode

from rl_deploy.io import Output
from rl_deploy_ros import host
from rl_deploy_ros.perception_node import PerceptionNode
from rl_deploy_ros.policy_node import PolicyNode


def connect(perception: PerceptionNode, policy: PolicyNode) -> None:
    """Feed the policy every perception output it subscribes to, skipping DDS for those."""

    def mask_topics() -> set[str]:
        step = perception.step
        return set(step.mask_topics.values()) if step is not None else set()

    def forward(outputs: list[Output]) -> None:
        direct = mask_topics()
        for output in outputs:
            if output.topic in direct:
                policy.feed(output.topic, output.data)

    policy.direct_topics = mask_topics
    policy.detector_in_process = True
    perception.listeners.append(forward)


def make_stack() -> list[LifecycleNode]:
    perception, policy = PerceptionNode(), PolicyNode()
    connect(perception, policy)
    # Perception starts first, so the policy knows which masks it will be handed.
    return [perception, policy]


def main(args: list[str] | None = None) -> int:
    return host.run(make_stack, args, thread_per_node=True)
