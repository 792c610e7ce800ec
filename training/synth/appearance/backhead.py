"""The back-head tile's albedo (`make_backhead_texture`): scalp and neck skin with painted short hair, and the
dark mouth and eye sockets that share the tile."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from core.facemodel import load_facemodel
from training.synth.appearance.scalp import Skin3D, hair_alpha, hair_grain, head_frame, make_skin3d
from training.synth.appearance.skin import REDDEN, SkinParams
from training.synth.appearance.uv import MATERIAL_TILES, check_size, rasterize, smoothstep, to_uint8, uv_islands
from training.synth.noise import fractal_noise, noise_bank, window

# ICT vertex ranges of the parts that share M_BackHead (README of the packed model).
_MOUTH_SOCKET = (11248, 13294)
_EYE_SOCKETS = (13294, 14062)


@dataclass
class _BackGeometry:
    size: int
    low: int
    skin3d: Skin3D
    region: np.ndarray       # full-res int8: 0 skin, 1 mouth socket, 2 eye socket, 3 skin behind the ears
    depth: np.ndarray        # full-res 0..1 darkness with depth inside the sockets


@functools.lru_cache(maxsize=4)
def _back_geometry(size: int) -> _BackGeometry:
    model = load_facemodel()
    frame = head_frame()
    sel = np.flatnonzero(model.material_mask("M_BackHead"))
    tris = model.triangles[sel]
    kind = np.zeros(len(sel), np.float32)
    kind[(tris[:, 0] >= _MOUTH_SOCKET[0]) & (tris[:, 0] < _MOUTH_SOCKET[1])] = 1
    kind[(tris[:, 0] >= _EYE_SOCKETS[0]) & (tris[:, 0] < _EYE_SOCKETS[1])] = 2
    # Two small islands at mid-height far out to the sides are skin behind the ears: no hair there.
    islands = uv_islands(model.triangle_uv[sel])
    for k in np.unique(islands):
        members = islands == k
        if members.sum() < 0.05 * len(sel) and np.abs(model.neutral[tris[members]][..., 0]).mean() > 5.5:
            kind[members & (kind == 0)] = 3
    values = np.concatenate([model.neutral[tris], np.repeat(kind[:, None, None], 3, 1)], -1)
    uv = model.uv[model.triangle_uv[sel]] - np.array([MATERIAL_TILES["M_BackHead"], 0], np.float32)
    out, _ = rasterize(uv, values, size)
    pos, region = out[..., :3], np.round(out[..., 3]).astype(np.int8)
    low = max(size // 2, 32)  # the hair edge covers much of this tile: a finer colour grid keeps it smooth
    # Deeper into the mouth is darker: a renderer without occlusion would otherwise light the throat.
    depth = np.where(region == 1, smoothstep(9.5, 5.0, pos[..., 2]), 0.5).astype(np.float32)
    return _BackGeometry(size=size, low=low, skin3d=make_skin3d(pos, region == 3, low, frame), region=region,
                         depth=depth)


def make_backhead_texture(params: SkinParams, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Albedo of the M_BackHead tile (u 1..2): scalp/neck skin and short hair, mouth and eye sockets.

    (size, size, 3) uint8 RGB, row 0 is v = 1; sample at (u - 1, 1 - v), or at (u, 1 - v) with repeat wrapping.
    """
    check_size(size)
    g = _back_geometry(size)
    bank = noise_bank(size)
    skin = np.asarray(params.skin_rgb, np.float32)
    mott = fractal_noise(rng, g.low, (3, 6, 12))
    blotch = fractal_noise(rng, g.low, (8, 16))
    img = skin * (1 + (0.015 + 0.03 * params.mottling) * mott)[..., None]
    img *= 1 - (params.redness * 0.5 * g.skin3d.ear)[..., None] * REDDEN
    hair = hair_alpha(params, g.skin3d, blotch)
    img += hair[..., None] * (np.asarray(params.hair_rgb, np.float32) * (1 + 0.1 * mott[..., None]) - img)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    detail = 1 + (0.015 + 0.035 * params.pores) * (1 - 0.4 * (params.tone - 1) / 9) * window(
        rng, bank["pores"], (size, size))
    if params.scalp_hair > 0:
        hair_grain(detail, hair, rng, bank)
    img *= detail[..., None]
    mouth = np.asarray(params.gums_rgb, np.float32) * 0.75 * (1 - 0.85 * g.depth[..., None])
    socket = skin * np.array([0.45, 0.3, 0.3], np.float32)
    img = np.where((g.region == 1)[..., None], mouth, np.where((g.region == 2)[..., None], socket, img))
    return to_uint8(img)
