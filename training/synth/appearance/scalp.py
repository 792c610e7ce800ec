"""What the two skin tiles (face and back of the head) share: the head's reference heights, each texel's height,
azimuth and ear mask, and the short scalp hair painted from them (coverage and strand grain)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from core.facemodel import load_facemodel
from core.layouts import load_layout
from training.synth.appearance.skin import SkinParams
from training.synth.appearance.uv import smoothstep
from training.synth.noise import window


@dataclass(frozen=True)
class HeadFrame:
    """3D reference heights (cm, canonical neutral face) used to place hair and beard."""

    y_brow: float
    y_eye: float
    y_nose: float
    y_mouth: float
    y_chin: float
    z_center: float


@dataclass
class Skin3D:
    """Per-texel 3D quantities a tile shares with the other skin tile, at the low (colour) resolution."""

    y: np.ndarray       # height (cm)
    phi: np.ndarray     # azimuth about the vertical head axis, degrees, 0 = front, 180 = back
    ear: np.ndarray     # 0..1 ear mask


@functools.lru_cache(maxsize=1)
def head_frame() -> HeadFrame:
    p = load_layout("ibug68").canonical_points(load_facemodel())
    return HeadFrame(y_brow=float(p[17:27, 1].mean()), y_eye=float(p[36:48, 1].mean()),
                     y_nose=float(p[33, 1]), y_mouth=float(p[[48, 54], 1].mean()), y_chin=float(p[8, 1]),
                     z_center=0.8)  # depth of the skull's vertical axis, midway between forehead and occiput


def make_skin3d(pos: np.ndarray, ear: np.ndarray, low: int, frame: HeadFrame) -> Skin3D:
    """Height, azimuth and ear mask at low resolution from full-resolution texel position and ear maps."""
    small = cv2.resize(pos, (low, low), interpolation=cv2.INTER_AREA)
    phi = np.degrees(np.arctan2(np.abs(small[..., 0]), small[..., 2] - frame.z_center)).astype(np.float32)
    return Skin3D(y=small[..., 1].astype(np.float32), phi=phi,
                  ear=cv2.resize(ear.astype(np.float32), (low, low), interpolation=cv2.INTER_AREA))


def hair_alpha(params: SkinParams, s3: Skin3D, jitter: np.ndarray) -> np.ndarray:
    """Painted short-hair coverage from texel height/azimuth: hairline, temples, sideburns, around ears, nape."""
    if params.scalp_hair <= 0:
        return np.zeros_like(s3.y)
    frame = head_frame()
    front = frame.y_brow + params.hairline_cm
    ear_top = frame.y_eye + 0.25
    nape = frame.y_mouth - 1.2
    # Azimuth knots (degrees): front, receding corners, temple, sideburn (in front of the ear, which spans about
    # 85..106), over the ear, behind it, nape.
    r = params.temple_recess_cm
    h = np.interp(s3.phi, [0, 27, 40, 50, 57, 62, 76, 82, 106, 122, 145, 180],
                  [front, front + 0.3 * r, front + r, frame.y_brow + 2.5 + 0.5 * r, frame.y_eye + 1.5,
                   ear_top - params.sideburn_cm, ear_top - params.sideburn_cm, ear_top + 0.3, ear_top + 0.3,
                   nape + 1.5, nape + 0.4, nape])
    a = smoothstep(-0.1, 0.7, s3.y - h + 0.2 * jitter) * (1 - s3.ear)
    # Where the hairline height changes fast with azimuth (temples, sideburns) the edge would be a hard step.
    return cv2.GaussianBlur((a * params.scalp_hair).astype(np.float32), (0, 0), s3.y.shape[0] / 160)


def hair_grain(detail: np.ndarray, hair_low: np.ndarray, rng: np.random.Generator, bank: dict[str, np.ndarray]
               ) -> None:
    """Strand-like light/dark grain where hair is painted, at full resolution, inside the hair's bounding box."""
    rows = np.flatnonzero(hair_low.max(1) > 0.01)
    cols = np.flatnonzero(hair_low.max(0) > 0.01)
    if rows.size == 0:
        return
    scale = detail.shape[0] // hair_low.shape[0]
    sub = hair_low[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    box = (slice(rows[0] * scale, (rows[-1] + 1) * scale), slice(cols[0] * scale, (cols[-1] + 1) * scale))
    alpha = cv2.resize(sub, (sub.shape[1] * scale, sub.shape[0] * scale), interpolation=cv2.INTER_LINEAR)
    grain = window(rng, bank["hair"], alpha.shape)
    detail[box] *= 1 + 0.3 * (grain - 0.5) * alpha
