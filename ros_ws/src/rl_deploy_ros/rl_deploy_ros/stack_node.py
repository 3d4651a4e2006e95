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
    """Feed the policy the perception node's masks by function call instead of over DDS.

    Which of its inputs come this way the policy decides once, at its configure, from the
    perception node's mask prefix (a parameter, set before either configures). Forwarding only
    those topics means a mask never arrives twice, whichever node a lifecycle manager
    configures first.
    """

    def from_perception(topic: str) -> bool:
        prefix = perception.get_parameter("topics.masks").value
        return topic.startswith(f"{prefix}/")

    def forward(outputs: list[Output]) -> None:
        direct = policy.direct_inputs
        for output in outputs:
            if output.topic in direct:
                policy.feed(output.topic, output.data)

    policy.fed_directly = from_perception
    policy.detector_in_process = True
    perception.listeners.append(forward)


def make_stack() -> list[LifecycleNode]:
    perception, policy = PerceptionNode(), PolicyNode()
    connect(perception, policy)
    return [perception, policy]


def main(args: list[str] | None = None) -> int:
    return host.run(make_stack, args, thread_per_node=True)
