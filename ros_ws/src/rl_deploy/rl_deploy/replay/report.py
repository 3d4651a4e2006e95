"""A one-file HTML report of a replay: commands, trajectory, latency and what the policy saw."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")  # headless: no display on robots or CI
import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rl_deploy.replay.runner import ReplayResult

STAGES_SHOWN = ("observation", "inference", "decode", "safety", "encode", "total")


def write_report(result: ReplayResult, path: str | Path) -> Path:
    """Write `path` (HTML with embedded PNG plots) and return it."""
    path = Path(path)
    sections = [
        ("Commands", _commands_figure(result)),
        ("Base trajectory (map frame)", _trajectory_figure(result)),
        ("Per-stage latency", _latency_figure(result)),
        ("What the policy saw: depth with target mask", _frames_figure(result)),
    ]
    body = "\n".join(
        f"<h2>{html.escape(title)}</h2>\n<img alt='{html.escape(title)}' src='{_png(fig)}'>"
        for title, fig in sections
        if fig is not None
    )
    summary = html.escape(json.dumps(result.summary, indent=2))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>rl_deploy replay</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:1em}</style></head><body>"
        f"<h1>rl_deploy replay: {html.escape(str(result.summary.get('bag', '')))}</h1>"
        f"{body}<h2>Summary</h2><pre>{summary}</pre></body></html>\n"
    )
    return path


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _times_s(result: ReplayResult) -> np.ndarray:
    if not result.ticks:
        return np.zeros(0)
    t0 = result.ticks[0].now_ns
    return np.array([(t.now_ns - t0) / 1e9 for t in result.ticks])


def _commands_figure(result: ReplayResult) -> Figure | None:
    if not result.ticks:
        return None
    t_s = _times_s(result)
    fig, (ax_lin, ax_ang) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    ax_lin.plot(t_s, [r.command.base.linear_x for r in result.ticks], label="linear x")
    ax_lin.set_ylabel("m/s")
    ax_ang.plot(t_s, [r.command.base.angular_z for r in result.ticks], color="tab:orange")
    ax_ang.set_ylabel("rad/s")
    ax_ang.set_xlabel("bag time (s)")
    zeroed = np.array([r.zero_reason is not None for r in result.ticks])
    for ax in (ax_lin, ax_ang):
        ax.fill_between(
            t_s,
            0,
            1,
            where=zeroed,
            transform=ax.get_xaxis_transform(),
            color="red",
            alpha=0.15,
            label="zero command (safety)",
        )
        ax.grid(alpha=0.3)
    ax_lin.legend(loc="upper right")
    return fig


def _trajectory_figure(result: ReplayResult) -> Figure | None:
    poses = [(r.pose.x, r.pose.y) for r in result.ticks if r.pose is not None]
    if not poses:
        return None
    xy = np.array(poses)
    fig, ax = plt.subplots(figsize=(5, 5))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(len(xy)), cmap="viridis", s=8)
    ax.plot(xy[0, 0], xy[0, 1], "k^", label="start")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend()
    fig.colorbar(points, ax=ax, label="control step")
    return fig


def _latency_figure(result: ReplayResult) -> Figure | None:
    stages = [s for s in STAGES_SHOWN if any(s in r.stage_ms for r in result.ticks)]
    if not stages:
        return None
    fig, axes = plt.subplots(1, len(stages), figsize=(3 * len(stages), 3))
    for ax, stage in zip(np.atleast_1d(axes), stages, strict=True):
        values = [r.stage_ms[stage] for r in result.ticks if stage in r.stage_ms]
        ax.hist(values, bins=30, color="tab:blue")
        ax.set_title(f"{stage}\np50 {np.median(values):.2f} ms")
        ax.set_xlabel("ms")
    return fig


def _frames_figure(result: ReplayResult) -> Figure | None:
    if not result.frames:
        return None
    fig, axes = plt.subplots(1, len(result.frames), figsize=(3 * len(result.frames), 2.6))
    for ax, (t_s, depth_m, mask_u8) in zip(np.atleast_1d(axes), result.frames, strict=True):
        ax.imshow(depth_m, cmap="gray_r", vmin=0, vmax=5)
        overlay = np.zeros((*mask_u8.shape, 4))
        overlay[mask_u8 > 0] = (1.0, 0.1, 0.1, 0.6)
        ax.imshow(overlay)
        ax.set_title(f"t = {t_s:.1f} s")
        ax.axis("off")
    return fig
