"""The HTML page of a closed-loop run: summary, then per episode a top-down trajectory plot and
an image strip of what the stack saw (RGB, depth, the target mask the policy got)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl

mpl.use("Agg")  # headless: no display on robots or CI
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Polygon, Rectangle

from rl_deploy.replay.report import _png
from rl_deploy.sim.layout import furniture_rect

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from rl_deploy.sim.closed_loop import EpisodeResult
    from rl_deploy.sim.spec import SceneSpec


def write_sim_report(
    results: list[EpisodeResult], summary: dict[str, Any], scene: SceneSpec, path: str | Path
) -> Path:
    """Write `path` (one HTML file with embedded PNGs) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sections = []
    for result in results:
        outcome = "reached" if result.success else "failed"
        title = (
            f"seed {result.seed}: {result.target_class}, {outcome} in {result.elapsed_s:.1f} s, "
            f"path {result.path_length_m:.2f} m, SPL {result.spl:.2f}, "
            f"{result.collisions} collision(s)"
        )
        images = [_png(_trajectory_figure(result, scene))]
        if result.snapshots:
            images.append(_png(_strip_figure(result)))
        tags = "".join(f"<img alt='episode {result.seed}' src='{src}'>" for src in images)
        sections.append(f"<h2>{html.escape(title)}</h2><div class='row'>{tags}</div>")
    text = html.escape(json.dumps(summary, indent=2))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>rl_deploy sim</title>"
        "<style>body{font-family:sans-serif;max-width:1300px;margin:auto}"
        ".row{display:flex;gap:1em;align-items:flex-start}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:1em}</style></head><body>"
        f"<h1>rl_deploy sim: mode {html.escape(str(summary.get('mode')))}</h1>"
        f"<pre>{text}</pre>{''.join(sections)}</body></html>\n"
    )
    return path


def _trajectory_figure(result: EpisodeResult, scene: SceneSpec) -> Figure:
    fig, ax = plt.subplots(figsize=(4.6, 4))
    _draw_room(ax, scene)
    for index, (x, y) in enumerate(result.object_xy):
        name = scene.objects[index].class_name
        is_target_class = name == result.target_class
        ax.plot(
            x,
            y,
            "*" if index == result.target_index else "o",
            color="tab:red" if is_target_class else "tab:gray",
            markersize=12 if index == result.target_index else 6,
        )
    xy = result.trajectory_xy
    ax.plot(xy[:, 0], xy[:, 1], color="tab:blue", linewidth=1.5, label="base (ground truth)")
    ax.plot(xy[0, 0], xy[0, 1], "k^", label="start")
    ax.plot(xy[-1, 0], xy[-1, 1], "ks", markersize=4, label="end")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, map)")
    ax.set_ylabel("y (m, map)")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"target: {result.target_class} (red star)", fontsize=9)
    return fig


def _draw_room(ax: Axes, scene: SceneSpec) -> None:
    half_x, half_y = scene.room.size_x_m / 2, scene.room.size_y_m / 2
    ax.add_patch(
        Rectangle((-half_x, -half_y), 2 * half_x, 2 * half_y, fill=False, edgecolor="black")
    )
    for item in scene.furniture:
        corners = furniture_rect(item).corners()
        ax.add_patch(Polygon(corners, closed=True, color="tan", alpha=0.6))
        ax.text(item.x_m, item.y_m, item.name, fontsize=7, ha="center", va="center")
    ax.set_xlim(-half_x - 0.1, half_x + 0.1)
    ax.set_ylim(-half_y - 0.1, half_y + 0.1)


def _strip_figure(result: EpisodeResult) -> Figure:
    shots = result.snapshots
    fig, axes = plt.subplots(3, len(shots), figsize=(2.0 * len(shots), 4.6), squeeze=False)
    for column, shot in enumerate(shots):
        top, middle, bottom = axes[:, column]
        top.imshow(shot.rgb_u8)
        top.set_title(f"t = {shot.t_s:.1f} s", fontsize=8)
        middle.imshow(np.where(shot.depth_m > 0, shot.depth_m, np.nan), cmap="viridis_r")
        bottom.imshow(shot.mask_u8, cmap="gray", vmin=0, vmax=1)
        for ax in (top, middle, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("RGB", fontsize=8)
    axes[1, 0].set_ylabel("depth", fontsize=8)
    axes[2, 0].set_ylabel("target mask", fontsize=8)
    fig.tight_layout()
    return fig
