"""What every rl_deploy node shares: parameters, QoS strings, raw CDR topics and `main`.

Only rclpy APIs present in both Humble and Jazzy are used here.
"""

from __future__ import annotations

import array
import functools
import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import rclpy
import rclpy.exceptions
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.duration import Duration
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    SingleThreadedExecutor,
)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from rl_deploy.errors import ConfigError, RlDeployError
from rl_deploy.io import Output
from rl_deploy_ros.params import ParamSpec

PACKAGE = "rl_deploy_ros"
# What a latched publisher (/tf_static) sent before this node started reaches it only with a
# transient-local reader; tf2's listener reads /tf_static with these settings.
LATCHED_INPUT_QOS = QoSProfile(
    depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)
FLUSH_S = 0.3  # longest a stopping node waits for its last messages' acknowledgements
SIGNAL_POLL_S = 0.1  # longest the main thread waits before it runs a signal's handler

_TYPES = {
    "bool": Parameter.Type.BOOL,
    "integer": Parameter.Type.INTEGER,
    "double": Parameter.Type.DOUBLE,
    "string": Parameter.Type.STRING,
    "bool[]": Parameter.Type.BOOL_ARRAY,
    "integer[]": Parameter.Type.INTEGER_ARRAY,
    "double[]": Parameter.Type.DOUBLE_ARRAY,
    "string[]": Parameter.Type.STRING_ARRAY,
}
_CAMERA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
_CAMERA_TYPES += ("sensor_msgs/msg/CameraInfo",)


def declare(
    node: LifecycleNode,
    specs: Sequence[ParamSpec],
    validate: Callable[[dict[str, Any]], None],
    configured: Callable[[], bool] = lambda: False,
) -> None:
    """Declare every spec; later `ros2 param set` calls are checked by `validate` first.

    Values from the params file are checked on configure, where all of them are known (one
    at a time they could contradict a default that the same file also overrides). A refused
    value leaves the node as it was: whatever `validate` raises becomes the reason, the node
    keeps running. `use_sim_time` may change only while not `configured`: the timers made at
    configure and activate run on the clock of that moment, and would stop with the other.
    """
    for spec in specs:
        kind = _TYPES[spec.kind]
        descriptor = ParameterDescriptor(description=spec.description, type=kind.value)
        # An empty list has no element type: declare the type alone (read back as the default).
        default = kind if spec.default == [] else spec.default
        try:
            node.declare_parameter(spec.name, default, descriptor)
        except rclpy.exceptions.InvalidParameterTypeException as err:
            if spec.kind != "string":
                raise
            # `protos_on_demand: off` in a params file: rcl's YAML reads it as a boolean.
            raise ConfigError(
                f"{err}; {spec.name} is a string: quote the value in the params file "
                "(unquoted, YAML reads on / off / yes / no as booleans)"
            ) from err

    names = {spec.name for spec in specs}

    def on_set(parameters: list[Parameter]) -> SetParametersResult:
        if configured() and any(p.name == "use_sim_time" for p in parameters):
            reason = "use_sim_time can change only while the node is unconfigured (cleanup first)"
            return SetParametersResult(successful=False, reason=reason)
        # rclpy's own parameters (use_sim_time) are not the config's: validate only ours.
        ours = {p.name: _plain(p.value) for p in parameters if p.name in names}
        merged = {**values(node, specs), **ours}
        try:
            validate(merged)
        except (RlDeployError, ValueError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        except Exception as err:  # a refusal, never a dead node (OSError: a 300-char path)
            return SetParametersResult(successful=False, reason=f"{type(err).__name__}: {err}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def values(node: LifecycleNode, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Current values by dotted name; arrays as lists."""
    read = {}
    for spec in specs:
        try:
            read[spec.name] = node.get_parameter(spec.name).value
        except rclpy.exceptions.ParameterUninitializedException:
            read[spec.name] = spec.default  # an empty list declared by type only
    return {name: _plain(value) for name, value in read.items()}


def _plain(value: Any) -> Any:
    """Numeric arrays come as array.array (and tuples); the core wants plain lists."""
    return list(value) if isinstance(value, tuple | list | array.array) else value


def qos_profile(text: str, parameter: str) -> QoSProfile:
    """ "preset[:depth]" → QoSProfile; presets: sensor_data, reliable, best_effort,
    transient_local, system_default. Errors name the parameter."""
    preset, _, depth_text = text.partition(":")
    try:
        depth = int(depth_text) if depth_text else None
    except ValueError as err:
        raise ConfigError(f"{parameter}: depth {depth_text!r} is not an integer") from err
    if depth is not None and depth < 1:
        raise ConfigError(f"{parameter}: depth must be >= 1, got {depth}")
    if preset == "sensor_data":
        profile = QoSProfile(**_fields(qos_profile_sensor_data))
    elif preset == "system_default":
        profile = QoSProfile(**_fields(qos_profile_system_default))
    elif preset in ("reliable", "best_effort", "transient_local"):
        profile = QoSProfile(
            depth=10,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if preset == "best_effort"
            else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL
            if preset == "transient_local"
            else DurabilityPolicy.VOLATILE,
        )
    else:
        raise ConfigError(
            f"{parameter}: unknown QoS {preset!r}; use sensor_data, reliable, best_effort, "
            "transient_local or system_default, optionally with :depth"
        )
    if depth is not None:
        profile.depth = depth
    return profile


def check_qos(values: Mapping[str, Any]) -> None:
    """Every ros.qos.* value parses; ConfigError names the first that does not."""
    for key, value in values.items():
        if key.startswith("ros.qos."):
            qos_profile(value, key)


def _fields(profile: QoSProfile) -> dict[str, Any]:
    return {
        "history": profile.history,
        "depth": profile.depth,
        "reliability": profile.reliability,
        "durability": profile.durability,
    }


def camera_or_state(msgtype: str) -> str:
    """Which input QoS parameter a message type falls under."""
    return "camera" if msgtype in _CAMERA_TYPES else "state"


def message_class(msgtype: str) -> type | None:
    """The rclpy class of "pkg/msg/Name", or None when that package is not installed."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return None


def resolve_path(path: str, base_dir: str = "") -> Path:
    """Absolute as given; relative: under `base_dir_for`."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else base_dir_for(path, base_dir) / candidate


def base_dir_for(relative: str, base_dir: str = "") -> Path:
    """Where relative paths are taken from: `base_dir` when set, else the working directory
    when `relative` exists there (a source checkout), else the installed package share."""
    if base_dir:
        return Path(base_dir)
    try:
        here = Path(relative).exists()
    except OSError as err:  # a name longer than the file system allows
        raise ConfigError(f"cannot look for {relative[:80]!r}: {err.strerror}") from err
    return Path.cwd() if here else share_dir()


def share_dir() -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(PACKAGE))
    except PackageNotFoundError:
        return Path.cwd()


class RawTopics:
    """Raw CDR subscriptions and lifecycle publishers for a core step's topic maps.

    Inputs get `input_qos` of their message type, or the QoS `input_qos_of` names for their
    topic (/tf_static latched, the e-stop's own); outputs get `output_qos`, or a latched QoS
    when listed in `latched`. An input whose message package is missing is a ConfigError
    (inside a `logged` transition it fails the transition with the message); a missing output
    is left off with a warning.
    """

    def __init__(
        self,
        node: LifecycleNode,
        subscriptions: Mapping[str, str],
        publications: Mapping[str, str],
        on_message: Callable[[str, bytes], None],
        *,
        input_qos: Callable[[str], QoSProfile],
        output_qos: QoSProfile,
        latched: Iterable[str] = (),
        input_qos_of: Mapping[str, QoSProfile] | None = None,
    ) -> None:
        self._node = node
        self._subscriptions = []
        self._publishers: dict[str, Any] = {}
        self.missing: list[str] = []  # outputs this ROS installation cannot carry
        classes = {topic: message_class(msgtype) for topic, msgtype in subscriptions.items()}
        unavailable = [f"{t} ({subscriptions[t]})" for t, cls in classes.items() if cls is None]
        if unavailable:  # inputs that could never arrive: refuse to start
            raise ConfigError(f"message packages of these inputs are not installed: {unavailable}")
        input_qos_of = input_qos_of or {}
        for topic, cls in classes.items():
            callback = _bind(on_message, topic)
            qos = input_qos_of.get(topic) or input_qos(subscriptions[topic])
            self._subscriptions.append(
                node.create_subscription(cls, topic, callback, qos, raw=True)
            )
        latched_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for topic, msgtype in publications.items():
            cls = message_class(msgtype)
            if cls is None:
                self.missing.append(f"{topic} ({msgtype})")
                continue
            qos = latched_qos if topic in latched else output_qos
            self._publishers[topic] = node.create_lifecycle_publisher(cls, topic, qos)
        if self.missing:
            node.get_logger().warning(
                f"message packages not installed, these outputs are off: {self.missing}"
            )

    def publish(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            publisher = self._publishers.get(output.topic)
            if publisher is not None:
                publisher.publish(output.data)

    def flush(self, timeout_s: float = FLUSH_S) -> None:
        """Wait until every reliable reader has acknowledged what was published (at most
        `timeout_s`): a last command must reach the wire before the node goes."""
        for publisher in self._publishers.values():
            publisher.wait_for_all_acked(Duration(nanoseconds=round(timeout_s * 1e9)))

    def listened(self, topic: str) -> bool:
        """Whether any subscriber is matched with the publisher of `topic` now."""
        publisher = self._publishers.get(topic)
        return publisher is not None and publisher.get_subscription_count() > 0

    def destroy(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        for publisher in self._publishers.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self._subscriptions, self._publishers = [], {}


def _bind(on_message: Callable[[str, bytes], None], topic: str) -> Callable[[bytes], None]:
    return lambda data: on_message(topic, data)


def failure(node: LifecycleNode, err: Exception) -> TransitionCallbackReturn:
    node.get_logger().error(str(err))
    return TransitionCallbackReturn.FAILURE


Transition = Callable[[Any, LifecycleState], TransitionCallbackReturn]


def logged(callback: Transition) -> Transition:
    """Wrap a transition callback so that an unexpected exception is logged with its traceback
    (rclpy would otherwise turn it into a failed transition without a word)."""

    @functools.wraps(callback)
    def wrapper(node: Any, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return callback(node, state)
        except Exception:
            node.get_logger().error(f"{callback.__name__} raised:\n{traceback.format_exc()}")
            return TransitionCallbackReturn.FAILURE

    return wrapper


def run(
    make_nodes: Callable[[], list[LifecycleNode]],
    args: list[str] | None = None,
    *,
    thread_per_node: bool = False,
) -> int:
    """`main` of the nodes: init, autostart in order, spin until SIGINT or SIGTERM.

    `thread_per_node`: each node gets an executor and a thread of its own, so that one node's
    long callback (the detector; ONNX Runtime releases the GIL) does not hold back another
    node's control timer. On a signal every executor stops, then each node's `on_exit` (if it
    has one) still publishes: rclpy's own handlers would shut the context down first, so a
    guard could not leave the robot a zero. Returns 1 when start-up fails (bad parameter, model
    or profile), 0 otherwise.
    """
    init_interruptible(args)
    nodes: list[LifecycleNode] = []
    executors: list[Executor] = []
    try:
        nodes = make_nodes()
        if not all(autostart(node) for node in nodes):
            return 1
        groups = [[node] for node in nodes] if thread_per_node else [nodes]
        executors = [SingleThreadedExecutor() for _ in groups]
        for executor, group in zip(executors, groups, strict=True):
            for node in group:
                executor.add_node(node)
        spin_all(executors)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RlDeployError, rclpy.exceptions.ParameterException) as err:
        print(f"{PACKAGE}: {err}", file=sys.stderr)
        return 1
    finally:
        for executor in executors:  # spin_all has stopped them: no callback runs after this
            executor.shutdown()
        for node in nodes:
            last_words = getattr(node, "on_exit", None)
            if last_words is not None and rclpy.ok():
                last_words()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def init_interruptible(args: list[str] | None = None) -> None:
    """rclpy.init with SIGINT and SIGTERM raising KeyboardInterrupt in the main thread (once),
    rather than rclpy's handlers shutting the context down under a sleeping or publishing node:
    `ros2 launch` escalates SIGINT to SIGTERM, and a node must stop on either, cleanly."""
    rclpy.init(
        args=args if args is not None else sys.argv,
        signal_handler_options=SignalHandlerOptions.NO,
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second signal must not cut the nodes' last words short.
    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, signal.SIG_IGN)
    raise KeyboardInterrupt


def spin_all(executors: Sequence[Executor]) -> None:
    """Spin each executor on a thread of its own until the context shuts down or a signal
    interrupts the main thread, which only waits; a callback that raises on any of them stops
    them all and is re-raised here. Every thread has stopped when this returns, and the context
    is left as it was: the nodes can still publish their last words.

    Not rclpy's MultiThreadedExecutor: in stack_node its dispatch thread took 30-76 % of a core
    while the detector's callbacks ran (py-spy: in its submit loop), and on 2 cores the policy's
    timer then missed up to a third of its ticks. The executors wait without a timeout (rclpy
    makes a timer for each wait that has one); Python runs signal handlers on the main thread
    only, between bytecodes, so that one polls.
    """
    stop = threading.Event()
    done = [Future() for _ in executors]
    failures: list[BaseException] = []

    def spin(executor: Executor, finished: Future) -> None:
        try:
            executor.spin_until_future_complete(finished)
        except ExternalShutdownException:
            pass
        except BaseException as err:  # handed to the main thread
            failures.append(err)
        finally:
            stop.set()

    threads = [
        threading.Thread(target=spin, args=(executor, finished), name=f"executor-{i}", daemon=True)
        for i, (executor, finished) in enumerate(zip(executors, done, strict=True))
    ]
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(SIGNAL_POLL_S) and rclpy.ok():
            pass
    finally:
        for finished in done:  # wakes its executor, whose spin then ends
            finished.set_result(None)
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]


def autostart(node: LifecycleNode) -> bool:
    """Configure and activate when the autostart parameter says so; False if either fails."""
    if not node.get_parameter("ros.autostart").value:
        return True
    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().error(f"autostart: {transition.__name__} failed")
            return False
    return True
