"""Build the shipped random-weight policy models (seeded) with their policy cards.

    python models/recipes/make_policies.py            # writes models/ovmm_nav.onnx and .yaml
    python models/recipes/make_policies.py --check    # rebuilds in a temp dir, compares bytes

example_reach is trained, not generated: models/recipes/train_example_reach.py.

Graphs are written with onnx.helper (no torch). The training statistics in the cards are
placeholders computed from synthetic observations run through the real ObservationBuilder.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from rl_deploy.geometry import Pose2D
from rl_deploy.policy import (
    CARD_METADATA_KEY,
    ObservationBuilder,
    Policy,
    RawObservation,
    load_card,
    parse_card,
)

MODELS_DIR = Path(__file__).resolve().parents[1]
OPSET = 17  # LSTM, Squeeze-with-axes-input; run by onnxruntime >= 1.13 (Jetson builds too)
IR_VERSION = 8
STATS_SAMPLES = 48  # synthetic observations behind the placeholder statistics
OVMM_HIDDEN = 128  # LSTM hidden size (HomeRobot OVMM uses 512; smaller keeps the file small)
STRETCH_JOINTS = [
    "joint_arm_l0",
    "joint_arm_l1",
    "joint_arm_l2",
    "joint_arm_l3",
    "joint_lift",
    "joint_wrist_yaw",
    "joint_wrist_pitch",
    "joint_wrist_roll",
    "joint_head_pan",
    "joint_head_tilt",
]
OVMM_ARM_JOINTS = [  # the 7 joints OVMM's reduced arm action moves (telescoping arm as l0)
    "joint_arm_l0",
    "joint_lift",
    "joint_wrist_yaw",
    "joint_wrist_pitch",
    "joint_wrist_roll",
    "joint_head_pan",
    "joint_head_tilt",
]
DEPTH_RESIZE = {"mode": "shortest_edge", "size": 120, "crop": "center", "interpolation": "area"}
MASK_RESIZE = {"mode": "shortest_edge", "size": 120, "crop": "center", "interpolation": "nearest"}


class Graph:
    """Nodes and seeded initializers of one ONNX graph."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        # LeCun-normal scale keeps activations of a random network in a useful range.
        values = self.rng.standard_normal(shape) / math.sqrt(fan_in)
        return self.const(name, values.astype(np.float32))

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def conv(self, name: str, x: str, channels: tuple[int, int], kernel: int, stride: int) -> str:
        c_in, c_out = channels
        w = self.weight(f"{name}.weight", (c_out, c_in, kernel, kernel), c_in * kernel * kernel)
        b = self.const(f"{name}.bias", np.zeros(c_out, np.float32))
        pad = kernel // 2
        y = self.op("Conv", [x, w, b], name, strides=[stride, stride], pads=[pad] * 4)
        return self.op("Relu", [y], f"{name}.relu")

    def dense(
        self, name: str, x: str, sizes: tuple[int, int], act: str | None = None, *, out: str = ""
    ) -> str:
        """Gemm (+ activation); `out` names the final tensor (default: derived from `name`)."""
        n_in, n_out = sizes
        w = self.weight(f"{name}.weight", (n_in, n_out), n_in)
        b = self.const(f"{name}.bias", np.zeros(n_out, np.float32))
        y = self.op("Gemm", [x, w, b], out if out and not act else name)
        return self.op(act, [y], out or f"{name}.{act.lower()}") if act else y

    def model(
        self,
        name: str,
        inputs: list[tuple[str, list[int]]],
        outputs: list[tuple[str, list[int]]],
        doc: str,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
            self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="rl_deploy make_policies",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def visual_encoder(g: Graph, image: str, channels: int, widths: list[int], out: int) -> str:
    """Three strided convs over a 120x160 frame, then a dense layer on the 8x10 feature map."""
    x = g.conv("enc.conv1", image, (channels, widths[0]), 5, 4)  # 30x40
    x = g.conv("enc.conv2", x, (widths[0], widths[1]), 3, 2)  # 15x20
    x = g.conv("enc.conv3", x, (widths[1], widths[2]), 3, 2)  # 8x10
    x = g.op("Flatten", [x], "enc.flat", axis=1)
    return g.dense("enc.fc", x, (widths[2] * 8 * 10, out), "Relu")


# --- ovmm_nav -----------------------------------------------------------------------------------


def ovmm_nav_card() -> dict[str, Any]:
    hidden = [2, 1, OVMM_HIDDEN]
    forward_m, turn_rad = 0.25, math.radians(30.0)  # OVMM's displacement per step at a = 1
    rate_hz = 1.0
    return {
        "name": "ovmm_nav",
        "version": "0.1.0",
        "onnx": "ovmm_nav.onnx",
        "control_rate_hz": rate_hz,
        "joint_names": STRETCH_JOINTS,
        "target_classes": ["object"],
        "inputs": [
            {
                "name": "head_depth",
                "source": "depth",
                "shape": [1, 1, 120, 160],
                "dtype": "float32",
                "resize": DEPTH_RESIZE,
                "depth": {
                    "invalid_values": [0.0, 65.535],
                    "fill_m": 0.0,
                    "min_m": 0.0,
                    "max_m": 10.0,
                    "scale": 0.1,
                },
            },
            {
                "name": "ovmm_nav_goal_segmentation",
                "source": "mask",
                "shape": [1, 2, 120, 160],
                "dtype": "float32",
                "classes": ["object", "start_receptacle"],
                "resize": MASK_RESIZE,
            },
            {"name": "joint", "source": "joints", "shape": [1, 10], "dtype": "float32"},
            {
                "name": "robot_start_gps",
                "source": "relative_pose",
                "shape": [1, 2],
                "dtype": "float32",
                "components": ["x", "y"],
            },
            {
                "name": "robot_start_compass",
                "source": "relative_pose",
                "shape": [1, 1],
                "dtype": "float32",
                "components": ["yaw"],
            },
            {
                "name": "prev_actions",
                "source": "prev_action",
                "shape": [1, 10],
                "dtype": "float32",
            },
            {"name": "not_done_masks", "source": "not_done", "shape": [1, 1], "dtype": "float32"},
        ],
        "recurrent": [
            {
                "input": "rnn_hidden_states",
                "output": "rnn_hidden_states_out",
                "shape": list(hidden),
                "dtype": "float32",
                "reset": "episode_start",
            },
            {
                "input": "rnn_cell_states",
                "output": "rnn_cell_states_out",
                "shape": list(hidden),
                "dtype": "float32",
                "reset": "episode_start",
            },
        ],
        "outputs": [
            {"name": "base_vel", "shape": [1, 2], "dtype": "float32"},
            {"name": "arm_action", "shape": [1, 7], "dtype": "float32"},
            {"name": "grip_action", "shape": [1, 1], "dtype": "float32"},
        ],
        "decoding": {
            "base": {
                "type": "continuous",
                "output": "base_vel",
                "fields": ["linear_x", "angular_z"],
                "indices": [0, 1],
                # displacement per step x control rate = velocity held for one period
                "scale": [forward_m * rate_hz, round(turn_rad * rate_hz, 7)],
                "clip": [
                    [-forward_m * rate_hz, forward_m * rate_hz],
                    [-round(turn_rad * rate_hz, 7), round(turn_rad * rate_hz, 7)],
                ],
                "deadband": [0.1 * forward_m * rate_hz, round(0.1 * turn_rad * rate_hz, 7)],
            },
            "arm": {
                "type": "continuous",
                "output": "arm_action",
                "mode": "delta",
                "joints": OVMM_ARM_JOINTS,
                "indices": list(range(7)),
                "scale": 0.1,  # m or rad per step at a = 1
                "clip": [-0.1, 0.1],
            },
        },
    }


def ovmm_nav_graph() -> onnx.ModelProto:
    g = Graph(seed=20240602)
    hidden = OVMM_HIDDEN
    image = g.op("Concat", ["head_depth", "ovmm_nav_goal_segmentation"], "image", axis=1)
    visual = visual_encoder(g, image, 3, [16, 32, 16], 128)
    compass = g.op(
        "Concat",
        [
            g.op("Cos", ["robot_start_compass"], "compass.cos"),
            g.op("Sin", ["robot_start_compass"], "compass.sin"),
        ],
        "compass",
        axis=1,
    )
    prev = g.dense("prev_action_embed", "prev_actions", (10, 32), "Relu")
    x = g.op("Concat", [visual, "joint", "robot_start_gps", compass, prev], "features", axis=1)
    n_features = 128 + 10 + 2 + 2 + 32
    seq = g.op("Unsqueeze", [x, g.const("axis0", np.array([0], np.int64))], "lstm.x")
    # not_done = 0 zeroes the carried state, as habitat's recurrent encoders do.
    h = g.op("Mul", ["rnn_hidden_states", "not_done_masks"], "lstm.h0")
    c = g.op("Mul", ["rnn_cell_states", "not_done_masks"], "lstm.c0")
    h_out, c_out = [], []
    n_in = n_features
    for layer in range(2):
        index = g.const(f"lstm{layer}.index", np.array([layer], np.int64))
        h0 = g.op("Gather", [h, index], f"lstm{layer}.h0", axis=0)  # (1, 1, H)
        c0 = g.op("Gather", [c, index], f"lstm{layer}.c0", axis=0)
        w = g.weight(f"lstm{layer}.W", (1, 4 * hidden, n_in), n_in)
        r = g.weight(f"lstm{layer}.R", (1, 4 * hidden, hidden), hidden)
        b = g.const(f"lstm{layer}.B", np.zeros((1, 8 * hidden), np.float32))
        outs = [f"lstm{layer}.y", f"lstm{layer}.y_h", f"lstm{layer}.y_c"]
        g.nodes.append(
            helper.make_node(
                "LSTM", [seq, w, r, b, "", h0, c0], outs, name=f"lstm{layer}", hidden_size=hidden
            )
        )
        seq = g.op(
            "Squeeze",
            [outs[0], g.const(f"axis1.{layer}", np.array([1], np.int64))],
            f"lstm{layer}.seq",
        )  # (1, 1, H): next layer's input sequence
        h_out.append(outs[1])
        c_out.append(outs[2])
        n_in = hidden
    g.op("Concat", h_out, "rnn_hidden_states_out", axis=0)
    g.op("Concat", c_out, "rnn_cell_states_out", axis=0)
    features = g.op("Squeeze", [h_out[-1], g.const("axis0b", np.array([0], np.int64))], "head.x")
    for name, size in (("base_vel", 2), ("arm_action", 7), ("grip_action", 1)):
        g.dense(name, features, (hidden, size))
    state = [2, 1, hidden]
    return g.model(
        "ovmm_nav",
        [
            ("head_depth", [1, 1, 120, 160]),
            ("ovmm_nav_goal_segmentation", [1, 2, 120, 160]),
            ("joint", [1, 10]),
            ("robot_start_gps", [1, 2]),
            ("robot_start_compass", [1, 1]),
            ("prev_actions", [1, 10]),
            ("not_done_masks", [1, 1]),
            ("rnn_hidden_states", state),
            ("rnn_cell_states", state),
        ],
        [
            ("base_vel", [1, 2]),
            ("arm_action", [1, 7]),
            ("grip_action", [1, 1]),
            ("rnn_hidden_states_out", state),
            ("rnn_cell_states_out", state),
        ],
        "HomeRobot OVMM-style navigation skill: CNN + 2-layer LSTM, random weights.",
    )


# --- synthetic observations and placeholder statistics ------------------------------------------


def synthetic_episode(rng: np.random.Generator, card: dict[str, Any]) -> Iterator[RawObservation]:
    """A short random walk in a box room seen by a 640x480 depth camera, with blob masks."""
    rows, cols = np.mgrid[0:480, 0:640].astype(np.float32)
    n_joints = len(card["joint_names"])
    classes = {cls for spec in card["inputs"] for cls in spec.get("classes", [])}
    classes |= set(card["target_classes"])
    pose = Pose2D(float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)))
    for _ in range(STATS_SAMPLES // 4):
        wall_m = rng.uniform(1.0, 12.0)
        floor_m = 1.3 / np.maximum((rows - 240.0) / 480.0, 1e-3)  # camera 1.3 m above the floor
        depth = np.where(rows > 250, np.minimum(floor_m, wall_m), wall_m).astype(np.float32)
        depth[rng.random(depth.shape) < 0.02] = 0.0  # dropouts
        masks = {}
        for name in sorted(classes):
            cy, cx, r = rng.uniform(0, 480), rng.uniform(0, 640), rng.uniform(10, 80)
            masks[name] = (((rows - cy) ** 2 + (cols - cx) ** 2) < r * r).astype(np.uint8)
        yield RawObservation(
            depth_m=depth,
            masks=masks,
            joints=rng.uniform(-1.0, 1.0, n_joints).astype(np.float32),
            pose=pose,
            target_class=card["target_classes"][0],
        )
        step = Pose2D(float(rng.uniform(0, 0.3)), 0.0, float(rng.uniform(-0.5, 0.5)))
        pose = pose.compose(step)


def placeholder_statistics(card: dict[str, Any], seed: int) -> dict[str, dict[str, Any]]:
    """Per-input statistics of synthetic observations (scalar for images, per element else)."""
    parsed = parse_card(card, MODELS_DIR)
    builder = ObservationBuilder(parsed)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {spec.name: [] for spec in parsed.inputs}
    while len(samples[parsed.inputs[0].name]) < STATS_SAMPLES:
        builder.reset()
        for raw in synthetic_episode(rng, card):
            for name, value in builder.build(raw).items():
                samples[name].append(value[0])
            builder.record_action(rng.uniform(-1, 1, parsed.action_size).astype(np.float32))
    stats = {}
    for spec in parsed.inputs:
        data = np.stack(samples[spec.name]).astype(np.float64)
        axis = None if spec.image is not None else 0
        std = np.maximum(data.std(axis=axis), 1e-3)  # floor: a constant element still divides
        stats[spec.name] = {
            key: _rounded(value)
            for key, value in (
                ("mean", data.mean(axis=axis)),
                ("std", std),
                ("min", data.min(axis=axis)),
                ("max", data.max(axis=axis)),
            )
        }
    return stats


def _rounded(value: np.ndarray) -> float | list[float]:
    values = [float(f"{item:.6g}") for item in np.atleast_1d(value)]
    return values[0] if np.ndim(value) == 0 else values


# --- writing ------------------------------------------------------------------------------------

HEADER = """\
# Policy card of {name}: {what}.
# Generated by models/recipes/make_policies.py; format documented in models/README.md.
# Units: metres, radians, seconds. Statistics are PLACEHOLDERS computed from the recipe's
# synthetic observations, not from training data.
"""

RECIPES: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[], onnx.ModelProto], str]] = {
    "ovmm_nav": (
        ovmm_nav_card,
        ovmm_nav_graph,
        f"OVMM-style navigation, random weights, LSTM hidden {OVMM_HIDDEN} (OVMM: 512)",
    ),
}


def build(name: str, out_dir: Path) -> list[Path]:
    make_card, make_graph, what = RECIPES[name]
    card = make_card()
    stats = placeholder_statistics(card, seed=len(name))
    for spec in card["inputs"]:
        spec["statistics"] = stats[spec["name"]]
    text = HEADER.format(name=name, what=what) + yaml.safe_dump(
        card, sort_keys=False, default_flow_style=None, width=100
    )
    parse_card(text, out_dir)  # the text must parse to a valid card before anything is written
    model = make_graph()
    helper.set_model_props(model, {CARD_METADATA_KEY: text})
    onnx_path, card_path = out_dir / card["onnx"], out_dir / f"{name}.yaml"
    onnx_path.write_bytes(model.SerializeToString())
    card_path.write_text(text, encoding="utf-8")
    return [onnx_path, card_path]


def smoke_test(card_path: Path) -> None:
    """Load through the runtime path and take two steps; outputs must be finite."""
    policy = Policy.load(card_path, providers=["CPUExecutionProvider"])
    card_dict = yaml.safe_load(card_path.read_text(encoding="utf-8"))
    policy.reset()
    for raw in list(synthetic_episode(np.random.default_rng(0), card_dict))[:2]:
        step = policy.step(raw)
        if not all(np.isfinite(value).all() for value in step.outputs.values()):
            raise SystemExit(f"{card_path.name}: non-finite outputs {step.outputs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="output directory")
    parser.add_argument("--check", action="store_true", help="rebuild and compare with --out")
    parser.add_argument("names", nargs="*", default=sorted(RECIPES), help="models to build")
    args = parser.parse_args(argv)
    if not args.check:
        for name in args.names:
            paths = build(name, args.out)
            smoke_test(paths[1])
            load_card(paths[1])
            for path in paths:
                print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            for fresh in build(name, Path(tmp)):
                committed = args.out / fresh.name
                if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
                    stale.append(str(committed))
    if stale:
        print(f"out of date (rerun the recipe): {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"up to date: {', '.join(args.names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
