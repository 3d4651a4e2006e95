"""Headless camera rendering: RGB, metric depth and class/instance masks from one MuJoCo camera.

Depth and segmentation come from a single pass (MuJoCo's segmentation pass also fills the depth
buffer); RGB is a second pass, skipped when not asked for (training renders no RGB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt

from rl_deploy.errors import ConfigError
from rl_deploy.sim.mjcf import FURNITURE_PREFIX, OBJECT_PREFIX
from rl_deploy.sim.spec import SceneSpec


def _gl_context_class() -> Any:
    """The offscreen GL context named by MUJOCO_GL (EGL by default), chosen here rather than
    by mujoco's import so that importing mujoco before this package still renders headless."""
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.gl_context import GLContext
    return GLContext


@dataclass(frozen=True)
class CameraFrame:
    """One rendered camera frame; arrays not asked for are None."""

    rgb_u8: npt.NDArray[np.uint8] | None  # (H, W, 3)
    depth_m: npt.NDArray[np.float32] | None  # (H, W) z-depth in metres, 0 = no valid return
    class_u8: npt.NDArray[np.uint8] | None  # (H, W) class id from the scene's table, 0 = none
    instance_u8: npt.NDArray[np.uint8] | None  # (H, W) object index + 1, 0 = not an object


@dataclass(frozen=True)
class GeomLabels:
    """Per-geom lookup tables, indexed by geom id + 1 (index 0 = background)."""

    class_ids: npt.NDArray[np.uint8]  # (ngeom + 1,)
    instance_ids: npt.NDArray[np.uint8]  # (ngeom + 1,)


def geom_labels(model: mujoco.MjModel, scene: SceneSpec) -> GeomLabels:
    """Class and instance ids of every geom, from the names the MJCF writer gave them."""
    class_ids = np.zeros(model.ngeom + 1, dtype=np.uint8)
    instance_ids = np.zeros(model.ngeom + 1, dtype=np.uint8)
    object_index = {obj.name: index for index, obj in enumerate(scene.objects)}
    furniture_kind = {item.name: item.kind for item in scene.furniture}
    for geom_id in range(model.ngeom):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, geom_id) or ""
        owner = name.split("/")[1] if name.count("/") >= 2 else ""
        if name.startswith(OBJECT_PREFIX) and owner in object_index:
            index = object_index[owner]
            class_ids[geom_id + 1] = scene.class_id(scene.objects[index].class_name)
            instance_ids[geom_id + 1] = index + 1
        elif name.startswith(FURNITURE_PREFIX) and owner in furniture_kind:
            class_ids[geom_id + 1] = scene.class_id(furniture_kind[owner])
    return GeomLabels(class_ids, instance_ids)


class CameraRenderer:
    """Offscreen renderer of one named camera at a fixed resolution."""

    def __init__(
        self,
        model: mujoco.MjModel,
        scene: SceneSpec,
        width: int,
        height: int,
        camera_name: str | None = None,
    ) -> None:
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ConfigError(
                f"render size {width}x{height} exceeds the model's offscreen buffer "
                f"{model.vis.global_.offwidth}x{model.vis.global_.offheight}"
            )
        name = camera_name or scene.robot.camera.name
        camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if camera_id < 0:
            raise ConfigError(f"camera {name!r} is not in the model")
        self.width, self.height = width, height
        self._model = model
        self._min_depth_m = scene.robot.camera.min_depth_m
        self._max_depth_m = scene.robot.camera.max_depth_m
        self._labels = geom_labels(model, scene)
        self._gl = _gl_context_class()(width, height)
        self._gl.make_current()
        self._context: mujoco.MjrContext | None = mujoco.MjrContext(
            model, mujoco.mjtFontScale.mjFONTSCALE_100
        )
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = camera_id
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._seg_rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._depth_raw = np.empty((height, width), dtype=np.float32)

    def render(
        self, data: mujoco.MjData, *, rgb: bool = True, depth_and_masks: bool = True
    ) -> CameraFrame:
        if self._context is None:
            raise RuntimeError("render after close")
        self._gl.make_current()
        mujoco.mjv_updateScene(
            self._model,
            data,
            self._option,
            None,
            self._camera,
            mujoco.mjtCatBit.mjCAT_ALL,
            self._scene,
        )
        depth_m = class_u8 = instance_u8 = rgb_u8 = None
        if depth_and_masks:
            depth_m, class_u8, instance_u8 = self._render_depth_and_masks()
        if rgb:
            rgb_u8 = np.empty((self.height, self.width, 3), dtype=np.uint8)
            mujoco.mjr_render(self._rect, self._scene, self._context)
            mujoco.mjr_readPixels(rgb_u8, None, self._rect, self._context)
            rgb_u8 = np.ascontiguousarray(rgb_u8[::-1])  # OpenGL rows run bottom-up
        return CameraFrame(rgb_u8, depth_m, class_u8, instance_u8)

    def _render_depth_and_masks(
        self,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        flags = self._scene.flags
        saved = flags.copy()
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        try:
            mujoco.mjr_render(self._rect, self._scene, self._context)
            mujoco.mjr_readPixels(self._seg_rgb, self._depth_raw, self._rect, self._context)
        finally:
            np.copyto(flags, saved)
        seg_rgb = self._seg_rgb[::-1]
        # Each drawn geom is painted with its scene index + 1 spread over R, G, B.
        segid = seg_rgb[..., 0].astype(np.int32)
        if self._scene.ngeom >= 255:
            segid |= (seg_rgb[..., 1].astype(np.int32) << 8) | (
                seg_rgb[..., 2].astype(np.int32) << 16
            )
        lut_geom = np.zeros(self._scene.ngeom + 1, dtype=np.int64)  # segid -> geom id + 1
        for geom in self._scene.geoms[: self._scene.ngeom]:
            if geom.segid >= 0 and geom.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                lut_geom[geom.segid + 1] = geom.objid + 1
        geom_plus_one = lut_geom[segid]
        class_u8 = self._labels.class_ids[geom_plus_one]
        instance_u8 = self._labels.instance_ids[geom_plus_one]
        depth_m = self._linear_depth(self._depth_raw[::-1])
        depth_m[(segid == 0) | (depth_m < self._min_depth_m) | (depth_m > self._max_depth_m)] = 0.0
        return depth_m, class_u8, instance_u8

    def _linear_depth(self, raw: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        # Undo the reversed-Z perspective projection MuJoCo renders with (eye-space z, metres).
        extent = self._model.stat.extent
        near = np.float32(self._model.vis.map.znear * extent)
        far = np.float32(self._model.vis.map.zfar * extent)
        c_coef = -(far + near) / (far - near)
        d_coef = -(np.float32(2.0) * far * near) / (far - near)
        c_coef = np.float32(-0.5) * c_coef - np.float32(0.5)
        d_coef = np.float32(-0.5) * d_coef
        return (d_coef / (raw.astype(np.float64) + c_coef)).astype(np.float32)

    def close(self) -> None:
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
            self._gl.free()
