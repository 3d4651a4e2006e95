"""The example_reach actor-critic in PyTorch and its export to the card's fixed ONNX contract.

The ONNX graph is written with onnx.helper from the trained weights (no exporter in the loop),
so it holds exactly the actor: normalisation, CNN, MLP and the final clip to [-1, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

OPSET = 17  # as the other shipped policies: runs on onnxruntime >= 1.13 (Jetson builds too)
IR_VERSION = 8
HEIGHT, WIDTH = 120, 160
VECTOR_INPUTS = (("pose", 3), ("joints", 3), ("prev_action", 5))
VECTOR_SIZE = sum(size for _, size in VECTOR_INPUTS)
ACTION_SIZE = 5
FEATURES = 128
POOL = 4  # average-pool 120x160 to 30x40 first: a CPU-trainable network (masks become soft)
# (out channels, kernel, stride) of the three convolutions: 30x40 -> 28x38 -> 13x18 -> 6x8
CONVS = ((16, 3, 1), (32, 3, 2), (32, 3, 2))
FLAT = 32 * 6 * 8


def coordinate_planes() -> np.ndarray:
    """(1, 2, H, W) x and y pixel coordinates in [-1, 1]: lets the CNN read where a mask is."""
    ys, xs = np.meshgrid(
        np.linspace(-1.0, 1.0, HEIGHT), np.linspace(-1.0, 1.0, WIDTH), indexing="ij"
    )
    return np.stack([xs, ys])[np.newaxis].astype(np.float32)


class ReachActorCritic(nn.Module):
    """Shared CNN encoder; the actor reads it, the critic reads a detached copy (the encoder
    learns from the policy loss only, so fitting values never disturbs the actor's features)."""

    def __init__(self, normaliser: dict[str, np.ndarray], init_log_std: float = -1.0) -> None:
        super().__init__()
        channels = 4  # depth, target mask, x, y
        layers: list[nn.Module] = [nn.AvgPool2d(POOL)]
        for out_channels, kernel, stride in CONVS:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels = out_channels
        self.cnn = nn.Sequential(*layers, nn.Flatten(), nn.Linear(FLAT, FEATURES), nn.ReLU())
        width = FEATURES + VECTOR_SIZE
        self.actor = nn.Sequential(
            nn.Linear(width, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, 5)
        )
        self.critic = nn.Sequential(
            nn.Linear(width, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 1)
        )
        self.log_std = nn.Parameter(torch.full((ACTION_SIZE,), init_log_std))
        for name in ("depth_mean", "depth_std", "vector_mean", "vector_std"):
            self.register_buffer(name, torch.as_tensor(normaliser[name], dtype=torch.float32))
        self.register_buffer("coords", torch.from_numpy(coordinate_planes()))

    def features(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoder features (B, 128), normalised vector inputs (B, 11))."""
        depth = (obs["depth"] - self.depth_mean) / self.depth_std
        batch = depth.shape[0]
        image = torch.cat([depth, obs["target_mask"], self.coords.expand(batch, -1, -1, -1)], 1)
        vector = torch.cat([obs[name] for name, _ in VECTOR_INPUTS], 1)
        return self.cnn(image), (vector - self.vector_mean) / self.vector_std

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(action mean (B, 5), value (B,))."""
        encoded, vector = self.features(obs)
        mean = self.actor(torch.cat([encoded, vector], 1))
        value = self.critic(torch.cat([encoded.detach(), vector], 1)).squeeze(1)
        return mean, value

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        encoded, vector = self.features(obs)
        return self.critic(torch.cat([encoded, vector], 1)).squeeze(1)


def to_onnx(net: ReachActorCritic, doc: str) -> onnx.ModelProto:
    """The deterministic actor as an ONNX graph with the card's input and output names."""
    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []

    def const(name: str, value: Any) -> str:
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        weights.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def op(op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def dense(name: str, x: str, layer: nn.Linear) -> str:
        w, b = const(f"{name}.weight", layer.weight), const(f"{name}.bias", layer.bias)
        return op("Gemm", [x, w, b], name, transB=1)

    depth = op("Div", [op("Sub", ["depth", const("depth_mean", net.depth_mean)], "depth.centred"),
                       const("depth_std", net.depth_std)], "depth.normalised")  # fmt: skip
    x = op("Concat", [depth, "target_mask", const("coords", net.coords)], "image", axis=1)
    x = op("AveragePool", [x], "pool", kernel_shape=[POOL, POOL], strides=[POOL, POOL])
    convs = [layer for layer in net.cnn if isinstance(layer, nn.Conv2d)]
    for index, conv in enumerate(convs):
        name = f"cnn.conv{index}"
        w, b = const(f"{name}.weight", conv.weight), const(f"{name}.bias", conv.bias)
        stride = int(conv.stride[0])
        x = op("Relu", [op("Conv", [x, w, b], name, strides=[stride, stride])], f"{name}.relu")
    x = op("Flatten", [x], "cnn.flat", axis=1)
    fc = next(layer for layer in net.cnn if isinstance(layer, nn.Linear))
    encoded = op("Relu", [dense("cnn.fc", x, fc)], "cnn.fc.relu")
    vector = op("Concat", [name for name, _ in VECTOR_INPUTS], "vector", axis=1)
    vector = op("Sub", [vector, const("vector_mean", net.vector_mean)], "vector.centred")
    vector = op("Div", [vector, const("vector_std", net.vector_std)], "vector.normalised")
    x = op("Concat", [encoded, vector], "actor.in", axis=1)
    linears = [layer for layer in net.actor if isinstance(layer, nn.Linear)]
    for index, layer in enumerate(linears[:-1]):
        x = op("Tanh", [dense(f"actor.fc{index}", x, layer)], f"actor.fc{index}.tanh")
    mean = dense("actor.mean", x, linears[-1])
    # The environment clips what it executes and feeds the clipped action back as prev_action.
    op("Clip", [mean, const("action.low", np.float32(-1.0)), const("action.high", np.float32(1.0))],
       "action")  # fmt: skip
    inputs = [
        helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, HEIGHT, WIDTH]),
        helper.make_tensor_value_info("target_mask", TensorProto.FLOAT, [1, 1, HEIGHT, WIDTH]),
    ] + [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, s]) for n, s in VECTOR_INPUTS]
    graph = helper.make_graph(
        nodes,
        "example_reach",
        inputs,
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, ACTION_SIZE])],
        weights,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="rl_deploy train_example_reach",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model
