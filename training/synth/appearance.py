"""Appearance of synthetic faces: skin, makeup and eye albedo textures in ICT UV space, material colours, backgrounds.

UV layout of ICT-FaceKit Light (measured from the mesh): UVs are UDIM-like, one unit tile along u per material
group (`MATERIAL_TILES`): M_Face u 0..1, M_BackHead 1..2, M_GumsTongue 2..3, M_Teeth 3..4, M_LacrimalFluid 4..6,
M_EyeLashes 6..7, while the scleras, irises, eye blend and eye occlusion each fill their own 0..1 square.

- Face tile: an upright frontal "photo" of the face filling the square: forehead at the top (v = 1), neck at the
  bottom, the subject's right side on the left (u < 0.5), ears at the left/right edges (v 0.45..0.68), eyes at
  v ~ 0.72 (nearly closed slits), brows ~ 0.80, nose tip ~ 0.60, mouth ~ 0.42, chin ~ 0.28. It is two islands (the
  inner face and an outer ring) that meet without a gap. About 24 texels per cm at 512 in the central face.
- Back-head tile: the scalp (crown near (0.5, 0.85), running down to the nape at v ~ 0.3), the neck (band along the
  bottom), the mouth socket (top-left), both eye sockets (top-right) and two small skin pieces at the ears.
- Iris: a disc of radius 0.5 about (0.5, 0.5), r_uv ~ 0.66 * r_cm, with the pupil hole at r_uv 0.09; the corners hold
  the inside of the eye (pupil tube, back of the iris). Sclera: a disc about (0.5, 0.5) whose centre is the front
  (the cornea bulge, covering the iris out to r_uv ~ 0.15) and whose rim is the back of the eyeball.

Texture convention: row 0 of a returned image is v = 1 (the usual top-down image order) and column 0 is u = tile;
a renderer samples pixel ((u - tile) * size, (1 - v) * size), i.e. texture coordinate (u - tile, 1 - v) (or
(u, 1 - v) with repeat wrapping).
Colours are display (sRGB-like) albedos in 0..1, the values a surface has under unit, frontal light.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage, special
from scipy.interpolate import CubicSpline
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.facemodel import FaceModel, load_facemodel
from core.layouts import load_layout

logger = logging.getLogger(__name__)

RGB = tuple[float, float, float]

MATERIAL_TILES: dict[str, int] = {
    "M_Face": 0, "M_BackHead": 1, "M_GumsTongue": 2, "M_Teeth": 3, "M_LacrimalFluid": 4, "M_EyeLashes": 6,
    "M_ScleraLeft": 0, "M_ScleraRight": 0, "M_IrisLeft": 0, "M_IrisRight": 0, "M_EyeBlend": 0, "M_EyeOcclusion": 0,
}
TRANSPARENT_MATERIALS = ("M_LacrimalFluid", "M_EyeBlend", "M_EyeOcclusion")

# ICT vertex ranges of the parts that share M_BackHead (README of the packed model).
_MOUTH_SOCKET = (11248, 13294)
_EYE_SOCKETS = (13294, 14062)

# Skin albedo over the range of human skin, lightest (1) to darkest (10), in CIELAB. A Monk-like 10-step scale,
# but placed on in-vivo skin colourimetry (L* ~ 22..76, a* 8..15, b* 10..25) rather than on the Monk swatches,
# which are display orbs and far too pale and grey at both ends to serve as albedo.
_SKIN_LAB = np.array([
    [76, 11, 15], [71, 12, 18], [66, 13, 21], [60, 13.5, 24], [54, 14, 25],
    [47, 14, 25], [40, 13, 22], [33, 12, 18], [27, 10, 14], [22, 8, 10]], np.float32)

_HAIR = {  # name: (rgb, weight for light skin, weight for dark skin)
    "black": ((0.05, 0.04, 0.04), 0.12, 0.55), "dark_brown": ((0.14, 0.09, 0.07), 0.25, 0.30),
    "brown": ((0.27, 0.17, 0.11), 0.20, 0.06), "light_brown": ((0.42, 0.29, 0.18), 0.12, 0.01),
    "dark_blonde": ((0.55, 0.42, 0.27), 0.09, 0.0), "blonde": ((0.74, 0.61, 0.41), 0.08, 0.0),
    "auburn": ((0.40, 0.16, 0.07), 0.06, 0.0), "grey": ((0.50, 0.49, 0.48), 0.05, 0.05),
    "white": ((0.82, 0.81, 0.78), 0.03, 0.03),
}
_IRIS = {  # name: (outer rgb, inner rgb, weight for light skin, weight for dark skin)
    "brown": ((0.30, 0.17, 0.08), (0.22, 0.11, 0.05), 0.36, 0.95),
    "hazel": ((0.36, 0.34, 0.17), (0.42, 0.25, 0.09), 0.15, 0.04),
    "green": ((0.28, 0.40, 0.26), (0.42, 0.36, 0.14), 0.10, 0.005),
    "blue": ((0.30, 0.45, 0.62), (0.46, 0.56, 0.64), 0.29, 0.003),
    "grey": ((0.46, 0.51, 0.54), (0.50, 0.50, 0.44), 0.10, 0.002),
}
_LIPSTICK = [(0.62, 0.06, 0.10), (0.42, 0.04, 0.09), (0.84, 0.42, 0.50), (0.66, 0.42, 0.38), (0.46, 0.10, 0.26),
             (0.88, 0.40, 0.31), (0.40, 0.20, 0.15), (0.30, 0.09, 0.18), (0.75, 0.25, 0.35)]
_EYESHADOW = [(0.40, 0.28, 0.20), (0.55, 0.45, 0.38), (0.62, 0.48, 0.30), (0.70, 0.45, 0.50), (0.40, 0.22, 0.36),
              (0.18, 0.16, 0.17), (0.35, 0.38, 0.45), (0.75, 0.62, 0.40), (0.25, 0.35, 0.30)]
_BLUSH = [(0.90, 0.45, 0.50), (0.92, 0.55, 0.45), (0.85, 0.40, 0.35), (0.70, 0.35, 0.35)]


@dataclass(frozen=True)
class SkinParams:
    """Everything that decides a person's surface appearance; colours are sRGB-like albedos in 0..1."""

    tone: float                 # 1 (lightest) .. 10 (darkest), continuous Monk-like scale
    skin_rgb: RGB               # base skin albedo
    redness: float              # 0..1: cheeks, nose, ears
    mottling: float             # 0..1: low-frequency unevenness
    pores: float                # 0..1: fine texture
    freckles: float             # 0..1, zero for most people
    moles: int
    age: float                  # 0..1: crease depth, under-eye darkness, forehead lines
    lip_rgb: RGB
    lipstick: bool
    hair_rgb: RGB
    scalp_hair: float           # 0 = bald; otherwise density of the short hair painted on the scalp
    hairline_cm: float          # front hairline height above the brows
    temple_recess_cm: float     # receding temples
    sideburn_cm: float          # sideburn length below the ear top
    brow_rgb: RGB
    brow_thickness_cm: float    # at the widest (inner third) point
    brow_density: float         # 0..1
    stubble: float              # 0..1 (1 = dense short beard)
    stubble_rgb: RGB
    eyeshadow: float            # 0 = none
    eyeshadow_rgb: RGB
    eyeliner: float             # 0 = none, else thickness scale
    eyeliner_wing: float        # 0 = none, else wing length scale
    blush: float                # 0 = none
    blush_rgb: RGB
    eyelash_rgb: RGB
    iris_kind: str              # brown / hazel / green / blue / grey
    iris_rgb: RGB               # outer iris
    iris_inner_rgb: RGB         # collarette, around the pupil
    pupil: float                # pupil radius / iris radius
    limbal_ring: float          # 0..1 darkening of the iris rim
    sclera_rgb: RGB
    teeth_rgb: RGB
    gums_rgb: RGB
    iris_seed: int              # makes the iris texture a function of the params alone

    @property
    def albedo(self) -> RGB:
        """The base skin colour (same as `skin_rgb`), for consumers that only want one skin colour."""
        return self.skin_rgb


# ----------------------------------------------------------------------------------------------- colour helpers

def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    lab = np.asarray(lab, np.float32).reshape(1, -1, 3)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0], 0, 1)


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    rgb = np.clip(np.asarray(rgb, np.float32), 0, 1).reshape(1, -1, 3)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0]


def _rgb(c: np.ndarray | Sequence[float]) -> RGB:
    c = np.clip(np.asarray(c, float).reshape(3), 0, 1)
    return (round(float(c[0]), 4), round(float(c[1]), 4), round(float(c[2]), 4))


def _jitter(rng: np.random.Generator, color: Sequence[float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(color) * rng.uniform(1 - amount, 1 + amount, 3), 0, 1)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# ------------------------------------------------------------------------------------------------------ sampling

def sample_skin(rng: np.random.Generator) -> SkinParams:
    """Draw one person's appearance: tone uniform over the full 1..10 range, features conditioned on it."""
    tone = float(rng.uniform(1, 10))
    dark = (tone - 1) / 9
    i = min(int(tone - 1), 8)
    lab = _SKIN_LAB[i] + (tone - 1 - i) * (_SKIN_LAB[i + 1] - _SKIN_LAB[i])
    # Undertone: pink (a*) versus olive/golden (b*) at the same lightness.
    lab = lab + np.array([rng.normal(0, 1.5), rng.normal(0, 2.0), rng.normal(0, 2.5)], np.float32)
    skin = _lab_to_rgb(lab)[0]

    masculine = rng.random() < 0.5
    age = float(rng.beta(1.6, 2.4))
    redness = float(rng.beta(2, 3) * (1 - 0.6 * dark))
    freckles = float(rng.uniform(0.2, 1.0)) if rng.random() < 0.35 * (1 - dark) ** 3 + 0.02 else 0.0

    hair_names = list(_HAIR)
    weights = np.array([(1 - dark) * _HAIR[n][1] + dark * _HAIR[n][2] for n in hair_names])
    hair_name = hair_names[rng.choice(len(hair_names), p=weights / weights.sum())]
    if rng.random() < 0.5 * age ** 2:
        hair_name = "grey" if rng.random() < 0.7 else "white"
    hair = _jitter(rng, _HAIR[hair_name][0], 0.12)
    # Brows are usually a little darker than the scalp hair (and stay darker when the hair greys).
    brow = hair * rng.uniform(0.7, 0.95) if hair_name not in ("grey", "white") else hair * rng.uniform(0.45, 0.8)
    bald_p = (0.05 + 0.3 * age) if masculine else 0.01
    scalp_hair = 0.0 if rng.random() < bald_p else float(rng.uniform(0.6, 1.0))

    stubble = 0.0
    if masculine and rng.random() < 0.55:
        stubble = float(np.clip(rng.beta(1.3, 1.6), 0.08, 1.0))

    makeup = rng.random() < (0.03 if masculine else 0.5)
    eyeshadow = float(rng.uniform(0.3, 0.9)) if makeup and rng.random() < 0.6 else 0.0
    eyeliner = float(rng.uniform(0.6, 1.6)) if makeup and rng.random() < 0.6 else 0.0
    wing = float(rng.uniform(0.4, 1.0)) if eyeliner and rng.random() < 0.4 else 0.0
    blush = float(rng.uniform(0.2, 0.6)) if makeup and rng.random() < 0.6 else 0.0
    lipstick = makeup and rng.random() < 0.5

    if lipstick:
        lip = _jitter(rng, _LIPSTICK[rng.integers(len(_LIPSTICK))], 0.12)
    else:
        # Darker skin has more pigmented, browner lips; lighter skin pinker ones.
        lip_lab = _rgb_to_lab(skin)[0] + np.array([rng.uniform(-14, -3) * (1 - 0.4 * dark),
                                                   rng.uniform(8, 20) * (1 - 0.55 * dark),
                                                   rng.uniform(-6, 2) - 3 * dark], np.float32)
        lip = _lab_to_rgb(lip_lab)[0]

    iris_names = list(_IRIS)
    light = (1 - dark) ** 2  # light eyes become rare quickly as skin darkens
    weights = np.array([light * _IRIS[n][2] + (1 - light) * _IRIS[n][3] for n in iris_names])
    iris_name = iris_names[rng.choice(len(iris_names), p=weights / weights.sum())]
    shade = rng.uniform(0.7, 1.25)  # brown spans near-black to light amber
    iris_outer = _jitter(rng, np.asarray(_IRIS[iris_name][0]) * shade, 0.1)
    iris_inner = _jitter(rng, np.asarray(_IRIS[iris_name][1]) * shade, 0.1)

    sclera = np.array([0.92, 0.89, 0.85]) * rng.uniform(0.8, 1.0) * np.array(
        [1.0, rng.uniform(0.95, 1.0), rng.uniform(0.9, 1.0)])
    teeth = (np.array([0.94, 0.92, 0.86]) + rng.beta(2, 3) * np.array([-0.12, -0.18, -0.30])) * rng.uniform(0.85, 1)
    gums = _jitter(rng, (0.78, 0.38, 0.40), 0.08) * (1 - 0.3 * dark * rng.random())
    eyelash = hair * 0.35 if (hair_name in ("blonde", "dark_blonde", "white", "grey") and not makeup) else \
        np.full(3, rng.uniform(0.02, 0.07))

    return SkinParams(
        tone=round(tone, 3), skin_rgb=_rgb(skin), redness=round(redness, 3),
        mottling=round(float(rng.uniform(0.2, 1.0)), 3), pores=round(float(rng.uniform(0.2, 1.0)), 3),
        freckles=round(freckles, 3), moles=int(rng.poisson(1.0)), age=round(age, 3),
        lip_rgb=_rgb(lip), lipstick=bool(lipstick), hair_rgb=_rgb(hair), scalp_hair=round(scalp_hair, 3),
        hairline_cm=round(float(rng.uniform(3.8, 5.8)), 2),
        temple_recess_cm=round(float(rng.uniform(0, 3.0) * age if masculine else rng.uniform(0, 0.8)), 2),
        sideburn_cm=round(float(rng.uniform(1.0, 3.0) if masculine else rng.uniform(0.3, 2.0)), 2),
        brow_rgb=_rgb(brow),
        brow_thickness_cm=round(float(rng.uniform(0.75, 1.25) if masculine else rng.uniform(0.5, 1.0)), 3),
        brow_density=round(float(rng.uniform(0.45, 1.0)), 3),
        stubble=round(stubble, 3), stubble_rgb=_rgb(hair * rng.uniform(0.6, 0.9)),
        eyeshadow=round(eyeshadow, 3), eyeshadow_rgb=_rgb(_jitter(rng, _EYESHADOW[rng.integers(len(_EYESHADOW))], 0.1)),
        eyeliner=round(eyeliner, 3), eyeliner_wing=round(wing, 3),
        blush=round(blush, 3), blush_rgb=_rgb(_jitter(rng, _BLUSH[rng.integers(len(_BLUSH))], 0.08)),
        eyelash_rgb=_rgb(eyelash), iris_kind=iris_name, iris_rgb=_rgb(iris_outer), iris_inner_rgb=_rgb(iris_inner),
        pupil=round(float(rng.uniform(0.22, 0.42)), 3), limbal_ring=round(float(rng.uniform(0.2, 0.7)), 3),
        sclera_rgb=_rgb(sclera), teeth_rgb=_rgb(teeth), gums_rgb=_rgb(gums),
        iris_seed=int(rng.integers(2**31)),
    )


# ---------------------------------------------------------------------------------------------------- UV geometry

def _rasterize(uv_tris: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate per-corner `values` (T, 3, C) over triangles `uv_tris` (T, 3, 2) into a (size, size, C) map.

    Texels no triangle covers take the nearest covered texel's value, so that filtering never reads garbage.
    """
    pts = np.stack([uv_tris[..., 0] * size - 0.5, (1 - uv_tris[..., 1]) * size - 0.5], -1)
    ids = np.full((size, size), -1, np.int32)
    for i, tri in enumerate(np.round(pts * 16).astype(np.int32)):
        cv2.fillConvexPoly(ids, tri, i, cv2.LINE_8, 4)
    covered = ids >= 0
    rows, cols = np.nonzero(covered)
    t = ids[rows, cols]
    a, b, c = pts[t, 0], pts[t, 1], pts[t, 2]
    v0, v1, v2 = b - a, c - a, np.stack([cols, rows], -1) - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    w = np.clip(np.stack([1 - w1 - w2, w1, w2], -1), 0, 1)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-9)
    out = np.zeros((size, size, values.shape[-1]), np.float32)
    out[rows, cols] = np.einsum("nk,nkc->nc", w, values[t])
    _, (ir, ic) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return out[ir, ic], covered


def _uv_islands(tri_uv: np.ndarray) -> np.ndarray:
    """Connected UV island label per triangle (triangles sharing a UV index are connected)."""
    n = int(tri_uv.max()) + 1
    rows = np.concatenate([tri_uv[:, 0], tri_uv[:, 1]])
    cols = np.concatenate([tri_uv[:, 1], tri_uv[:, 2]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels[tri_uv[:, 0]]


def _blob(shape: tuple[int, int], center: np.ndarray, radii: tuple[float, float]) -> np.ndarray:
    """Axis-aligned Gaussian bump (1 at `center`, pixel coords x, y) with 1-sigma `radii`."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    u, v = (xx - center[0]) / radii[0], (yy - center[1]) / radii[1]
    return np.exp(-0.5 * (u * u + v * v)).astype(np.float32)


def _dense_curve(points: np.ndarray, n: int = 48, extend: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Smooth curve through `points` (M, 2), parametrised 0..1 by chord length, optionally extrapolated."""
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    spline = CubicSpline(d / d[-1], points, bc_type="natural")
    return spline(np.linspace(-extend[0], 1 + extend[1], n)).astype(np.float32)


def _closed_curve(points: np.ndarray, n: int = 96) -> np.ndarray:
    """Smooth closed curve through `points` (M, 2), as a polygon of n vertices."""
    closed = np.concatenate([points, points[:1]])
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))]
    return CubicSpline(d, closed, bc_type="periodic")(np.linspace(0, d[-1], n, endpoint=False)).astype(np.float32)


def _curve_field(curve: np.ndarray, xs: np.ndarray, ys: np.ndarray, t_range: tuple[float, float] = (0.0, 1.0)
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance to a polyline, the curve parameter of the closest point, and the side (+1 left of travel)."""
    p = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float32)[:, None, :]
    a, b = curve[None, :-1], curve[None, 1:]
    ab = b - a
    s = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    closest = a + s[..., None] * ab
    dist = np.linalg.norm(p - closest, axis=-1)
    k = dist.argmin(1)
    idx = np.arange(len(p))
    t = (k + s[idx, k]) / (len(curve) - 1)
    cross = ab[0, k, 0] * (p[idx, 0, 1] - a[0, k, 1]) - ab[0, k, 1] * (p[idx, 0, 0] - a[0, k, 0])
    shape = xs.shape
    return (dist[idx, k].reshape(shape), (t_range[0] + t * (t_range[1] - t_range[0])).reshape(shape),
            np.sign(cross).reshape(shape))


def _line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A centred, normalised line kernel (odd size), for directional blur."""
    size = length | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    d = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))]) * (length / 2)
    cv2.line(k, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))), 1.0, 1,
             cv2.LINE_AA)
    return k / k.sum()


def _bbox(points: np.ndarray, margin: float, size: int) -> tuple[slice, slice]:
    lo = np.floor(points.min(0) - margin).astype(int)
    hi = np.ceil(points.max(0) + margin).astype(int) + 1
    lo, hi = np.clip(lo, 0, size), np.clip(hi, 0, size)
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _box_grid(box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[box[0], box[1]]
    return xs.astype(np.float32), ys.astype(np.float32)


def _gauss_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blurred white noise with unit standard deviation."""
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return n / n.std()


@dataclass(frozen=True)
class _HeadFrame:
    """3D reference heights (cm, canonical neutral face) used to place hair and beard."""

    y_brow: float
    y_eye: float
    y_nose: float
    y_mouth: float
    y_chin: float
    z_center: float


@dataclass
class _Skin3D:
    """Per-texel 3D quantities a tile shares with the other skin tile, at the low (colour) resolution."""

    y: np.ndarray       # height (cm)
    phi: np.ndarray     # azimuth about the vertical head axis, degrees, 0 = front, 180 = back
    ear: np.ndarray     # 0..1 ear mask


@dataclass
class _FaceGeometry:
    size: int
    low: int
    lm: np.ndarray                  # (68, 2) landmark pixel coords at `size`
    px_per_cm: float
    skin3d: _Skin3D
    redness: np.ndarray             # low-res maps, 0..1
    periorbital: np.ndarray
    eyeshadow: np.ndarray
    cheeks: np.ndarray
    freckle_zone: np.ndarray
    freckle_box: tuple[slice, slice]
    freckle_full: np.ndarray        # full-res freckle zone inside freckle_box
    canthus: np.ndarray
    beard_low: np.ndarray
    beard_box: tuple[slice, slice]  # full-res beard mask in its box
    beard: np.ndarray
    lips_box: tuple[slice, slice]
    lips: np.ndarray                # soft lip mask in lips_box
    lip_lower: np.ndarray           # 0..1 lower-lip weight in lips_box
    lip_line: np.ndarray            # darkening towards the mouth line and corners, in lips_box
    lip_grain: np.ndarray           # vertical lip lines, unit std, in lips_box
    brows: list[dict]               # per brow: box, signed distance (+ above), width/arch profiles, ends, streak
    eyes: list[dict]                # per eye: box, up_d, wing_d, wing_s, lashes, liner_width, liner_along
    creases: np.ndarray             # full-res, always-present folds (nasolabial, lid crease, ...)
    age_lines: np.ndarray           # full-res, forehead/glabella/crow's feet lines
    face_region: np.ndarray         # low-res mask of the front of the face (for moles)
    face_region_cdf: np.ndarray     # its flattened cumulative distribution, for drawing mole positions


def _landmark_uv(model: FaceModel) -> np.ndarray:
    layout = load_layout("ibug68")
    corners = model.uv[model.triangle_uv[layout.triangles]]
    return np.einsum("nk,nkd->nd", layout.barycentric, corners).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _head_frame() -> _HeadFrame:
    p = load_layout("ibug68").canonical_points(load_facemodel())
    return _HeadFrame(y_brow=float(p[17:27, 1].mean()), y_eye=float(p[36:48, 1].mean()),
                      y_nose=float(p[33, 1]), y_mouth=float(p[[48, 54], 1].mean()), y_chin=float(p[8, 1]),
                      z_center=0.8)  # depth of the skull's vertical axis, midway between forehead and occiput


def _skin3d(pos: np.ndarray, ear: np.ndarray, low: int, frame: _HeadFrame) -> _Skin3D:
    """Height, azimuth and ear mask at low resolution from full-resolution texel position and ear maps."""
    small = cv2.resize(pos, (low, low), interpolation=cv2.INTER_AREA)
    phi = np.degrees(np.arctan2(np.abs(small[..., 0]), small[..., 2] - frame.z_center)).astype(np.float32)
    return _Skin3D(y=small[..., 1].astype(np.float32), phi=phi,
                   ear=cv2.resize(ear.astype(np.float32), (low, low), interpolation=cv2.INTER_AREA))


def _face_ear_mask(size: int) -> np.ndarray:
    """The ears in the face tile: the side lobes of the UV layout (u < 0.1 or u > 0.9, v 0.44..0.685)."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size
    u, v = np.meshgrid(g, 1 - g)
    side = np.minimum(u, 1 - u)
    return _smoothstep(0.105, 0.09, side) * _smoothstep(0.435, 0.45, v) * _smoothstep(0.69, 0.675, v)


def _beard_mask(pos: np.ndarray, frame: _HeadFrame, lips_keepout: np.ndarray) -> np.ndarray:
    """Where a beard grows, from texel 3D positions: below a cheek line, above the neck, in front of the ears."""
    x, y, z = pos[..., 0], pos[..., 1], pos[..., 2]
    ax = np.abs(x)
    # Upper boundary: along the nose base for the moustache, down the nasolabial fold, then up the cheek to the
    # sideburn in front of the ear.
    top = np.interp(ax, [0.0, 1.4, 2.3, 3.2, 4.6, 5.8, 6.6, 9.0],
                    [frame.y_nose - 0.15, frame.y_nose - 0.25, frame.y_nose - 1.0, frame.y_nose - 1.4,
                     frame.y_nose - 0.8, frame.y_eye - 2.8, frame.y_eye - 0.5, frame.y_eye - 0.5])
    neck = frame.y_chin - np.interp(ax, [0, 3, 6], [3.2, 2.6, 1.0])
    phi = np.degrees(np.arctan2(ax, z - frame.z_center))
    m = (_smoothstep(0.0, 0.6, top - y) * _smoothstep(0.0, 1.2, y - neck) * _smoothstep(78, 68, phi))
    return (m * (1 - lips_keepout)).astype(np.float32)


def _polygon_mask(shape: tuple[int, int], points: np.ndarray, blur: float) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    cv2.fillPoly(m, [np.round(points * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(m, (0, 0), blur) if blur > 0 else m


@functools.lru_cache(maxsize=4)
def _face_geometry(size: int) -> _FaceGeometry:
    """Masks and fields of the face tile at one texture size, computed once per process."""
    model = load_facemodel()
    frame = _head_frame()
    sel = model.material_mask("M_Face")
    pos, _ = _rasterize(model.uv[model.triangle_uv[sel]], model.neutral[model.triangles[sel]], size)
    low = max(size // 4, 32)
    f = low / size
    uv = _landmark_uv(model)
    lm = np.stack([uv[:, 0] * size - 0.5, (1 - uv[:, 1]) * size - 0.5], -1)
    lm3 = load_layout("ibug68").canonical_points(model)
    eye_r, eye_l = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(eye_l - eye_r))
    px_per_cm = iod / float(np.linalg.norm(lm3[36:42].mean(0) - lm3[42:48].mean(0)))
    lo = (low, low)

    def blobs(specs: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
        out = np.zeros(lo, np.float32)
        for center, rx, ry in specs:
            out = np.maximum(out, _blob(lo, center * f, (rx * iod * f, ry * iod * f)))
        return out

    skin3d = _skin3d(pos, _face_ear_mask(size), low, frame)
    down = np.array([0.0, 1.0])
    out_r, out_l = np.array([-1.0, 0.0]), np.array([1.0, 0.0])  # image-left is the subject's right
    cheek_r = eye_r + 0.62 * iod * down + 0.05 * iod * out_r
    cheek_l = eye_l + 0.62 * iod * down + 0.05 * iod * out_l
    redness = np.maximum.reduce([
        blobs([(lm[30], 0.13, 0.16), (lm[31], 0.08, 0.07), (lm[35], 0.08, 0.07)]),
        0.8 * blobs([(cheek_r, 0.26, 0.2), (cheek_l, 0.26, 0.2)]),
        0.5 * blobs([(lm[8] - 0.12 * iod * down, 0.2, 0.12), (lm[27] - 0.5 * iod * down, 0.35, 0.15)]),
        0.9 * skin3d.ear])
    periorbital = blobs([(eye_r + 0.14 * iod * down, 0.2, 0.06), (eye_l + 0.14 * iod * down, 0.2, 0.06),
                         (eye_r - 0.06 * iod * down, 0.19, 0.05), (eye_l - 0.06 * iod * down, 0.19, 0.05),
                         (lm[39] + 0.06 * iod * out_l, 0.07, 0.08), (lm[42] + 0.06 * iod * out_r, 0.07, 0.08)])
    eyeshadow = blobs([(eye_r - 0.1 * iod * down + 0.04 * iod * out_r, 0.24, 0.085),
                       (eye_l - 0.1 * iod * down + 0.04 * iod * out_l, 0.24, 0.085)])
    cheeks = blobs([(cheek_r + 0.05 * iod * out_r, 0.22, 0.15), (cheek_l + 0.05 * iod * out_l, 0.22, 0.15)])
    freckle_zone = np.maximum(blobs([(lm[29], 0.55, 0.3)]), 0.6 * blobs([(lm[27] - 0.7 * iod * down, 0.6, 0.25)]))
    canthus = blobs([(lm[39], 0.035, 0.02), (lm[42], 0.035, 0.02)])
    face_region = blobs([(lm[30], 0.95, 1.15)])
    zone_full = cv2.resize(freckle_zone, (size, size), interpolation=cv2.INTER_LINEAR)
    rows, cols = np.nonzero(zone_full > 0.05)
    freckle_box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))

    # Lips: outer polygon, split into upper and lower lip at the mouth line.
    lips_box = _bbox(lm[48:60], 0.12 * iod, size)
    origin = np.array([lips_box[1].start, lips_box[0].start], np.float32)
    bshape = (lips_box[0].stop - lips_box[0].start, lips_box[1].stop - lips_box[1].start)
    outline = _closed_curve(lm[48:60]) - origin
    lips = _polygon_mask(bshape, outline, size / 420)
    upper_pts = np.concatenate([_dense_curve(lm[48:55], 48), _dense_curve(lm[[64, 63, 62, 61, 60]], 24)])
    upper = _polygon_mask(bshape, upper_pts - origin, size / 300)
    lip_lower = np.clip(1 - upper, 0, 1)
    inner = np.concatenate([lm[60:68], lm[[60]]]) - origin
    xs, ys = _box_grid((slice(0, bshape[0]), slice(0, bshape[1])))
    d_line, _, _ = _curve_field(_dense_curve(inner, 64), xs, ys)
    corners = np.maximum(_blob(bshape, lm[48] - origin, (0.05 * iod, 0.035 * iod)),
                         _blob(bshape, lm[54] - origin, (0.05 * iod, 0.035 * iod)))
    lip_line = np.clip(np.exp(-d_line / (0.02 * iod)) + 0.8 * corners, 0, 1).astype(np.float32)
    grain_rng = np.random.default_rng(7)
    lip_grain = cv2.filter2D(grain_rng.standard_normal(bshape).astype(np.float32), -1,
                             _line_kernel(max(int(size / 60), 3), 90))
    lip_grain /= lip_grain.std()
    keepout = np.zeros((size, size), np.float32)
    keepout[lips_box] = np.clip(lips * 1.6, 0, 1)
    keepout = cv2.GaussianBlur(keepout, (0, 0), size / 200)

    beard_full = _beard_mask(pos, frame, keepout)
    rows, cols = np.nonzero(beard_full > 0.01)
    beard_box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    beard_low = cv2.resize(beard_full, lo, interpolation=cv2.INTER_AREA)

    brows = []
    brow_rng = np.random.default_rng(11)
    for ids, outward in (([21, 20, 19, 18, 17], -1.0), ([22, 23, 24, 25, 26], 1.0)):
        pts = lm[ids]
        box = _bbox(pts, 0.22 * iod, size)
        xs, ys = _box_grid(box)
        curve = _dense_curve(pts, 48, (0.04, 0.06))
        dist, t, side = _curve_field(curve, xs, ys, (-0.04, 1.06))
        # Hairs near the nose point up, the rest lie along the brow towards its tail.
        tangent = np.degrees(np.arctan2(*(pts[-1] - pts[0])[::-1]))
        noise = brow_rng.standard_normal(xs.shape).astype(np.float32)
        length = max(int(size / 55), 3)
        up = cv2.filter2D(noise, -1, _line_kernel(length, -90 + 15 * outward))
        along = cv2.filter2D(noise, -1, _line_kernel(length, tangent - 8 * outward))
        w = _smoothstep(0.12, 0.35, t)
        streak = cv2.GaussianBlur((1 - w) * up / up.std() + w * along / along.std(), (0, 0), size / 1000)
        # Widest over the inner third, tapering towards the tail.
        brows.append(dict(box=box, signed=side * (-outward) * dist,
                          width=np.interp(t, [-0.04, 0.08, 0.3, 0.7, 1.06], [0.35, 0.9, 1.0, 0.75, 0.3]),
                          arch=np.sin(np.pi * np.clip(t, 0, 1)),
                          ends=_smoothstep(-0.04, 0.1, t) * _smoothstep(1.06, 0.92, t),
                          streak=special.ndtr(streak / streak.std())))

    eyes = []
    for upper_ids, lower_ids, outward in (([39, 38, 37, 36], [39, 40, 41, 36], out_r),
                                          ([42, 43, 44, 45], [42, 47, 46, 45], out_l)):
        box = _bbox(lm[upper_ids], 0.3 * iod, size)
        xs, ys = _box_grid(box)
        up_d, up_t, up_side = _curve_field(_dense_curve(lm[upper_ids], 32, (0.0, 0.0)), xs, ys)
        lo_d, lo_t, _ = _curve_field(_dense_curve(lm[lower_ids], 32, (0.0, 0.0)), xs, ys)
        corner = lm[upper_ids[-1]]
        wing_end = corner + 0.13 * iod * outward - 0.06 * iod * down
        wing_d, wing_s, _ = _curve_field(np.stack([corner, wing_end]).astype(np.float32), xs, ys)
        # The side sign depends on the travel direction; make "above the lid" positive.
        above = (up_side if np.mean(up_side[ys < lm[upper_ids][:, 1].min() - 3]) > 0 else -up_side) > 0
        # Lash lines: thicker towards the outer corner, mostly above the upper lid; a fainter lower line.
        along = _smoothstep(-0.02, 0.15, up_t) * _smoothstep(1.05, 0.9, up_t)
        w_up = 0.06 * px_per_cm * (0.6 + 0.8 * up_t)
        upper = _smoothstep(w_up + 0.05 * px_per_cm, w_up * 0.3, up_d) * along * np.where(above, 1.0, 0.6)
        lower = 0.45 * _smoothstep(0.05 * px_per_cm, 0.01 * px_per_cm, lo_d) * _smoothstep(0.2, 0.6, lo_t)
        eyes.append(dict(box=box, up_d=up_d, wing_d=wing_d, wing_s=wing_s,
                         lashes=np.maximum(0.85 * upper, lower).astype(np.float32),
                         liner_width=(0.5 + 0.7 * up_t).astype(np.float32),
                         liner_along=(above * _smoothstep(-0.05, 0.2, up_t)).astype(np.float32)))

    creases = np.zeros((size, size), np.float32)
    age_lines = np.zeros((size, size), np.float32)
    th = max(int(round(size / 256)), 1)

    def draw(img: np.ndarray, pts: np.ndarray, weight: float, thickness: int = th) -> None:
        curve = _dense_curve(np.asarray(pts, np.float32), 24)
        cv2.polylines(img, [np.round(curve * 16).astype(np.int32)], False, weight, thickness, cv2.LINE_AA, 4)

    for side_ids, outward in (((31, 48, 39, 36), out_r), ((35, 54, 42, 45), out_l)):
        nose, mouth, inner, outer = (lm[i] for i in side_ids)
        draw(creases, [nose + 0.09 * iod * outward - 0.02 * iod * down,
                       mouth + 0.13 * iod * outward - 0.06 * iod * down,
                       mouth + 0.17 * iod * outward + 0.14 * iod * down], 1.0, th + 1)         # nasolabial fold
        lid_mid = (inner + outer) / 2
        draw(creases, [inner - 0.03 * iod * down, lid_mid - 0.085 * iod * down,
                       outer - 0.05 * iod * down + 0.04 * iod * outward], 0.9)                 # upper lid crease
        draw(creases, [inner + 0.06 * iod * down, lid_mid + 0.13 * iod * down,
                       outer + 0.07 * iod * down + 0.05 * iod * outward], 0.45)                # under-eye
        for k in range(3):                                                                    # crow's feet
            a = np.radians(-30 + 28 * k)
            start = outer + (0.1 + 0.02 * k) * iod * outward
            draw(age_lines, [start, start + 0.06 * iod * (np.cos(a) * outward + np.sin(a) * down),
                             start + 0.12 * iod * (np.cos(a * 1.3) * outward + np.sin(a * 1.3) * down)], 0.35)
    draw(creases, [lm[59] + 0.08 * iod * down, lm[57] + 0.12 * iod * down, lm[55] + 0.08 * iod * down], 0.5, th + 1)
    brow_top = lm[17:27, 1].min()
    for k, dy in enumerate((0.18, 0.32, 0.47)):                                               # forehead lines
        y0 = brow_top - dy * iod
        xs_ = np.linspace(lm[18, 0], lm[25, 0], 5)
        wave = np.array([0, -0.015, 0.01, -0.015, 0]) * iod * (1 + k)
        draw(age_lines, np.stack([xs_, y0 + wave + 0.04 * iod * np.abs(np.linspace(-1, 1, 5)) ** 2], -1), 0.8)
    for dx in (-0.04, 0.04):                                                                  # glabella
        x0 = (lm[21, 0] + lm[22, 0]) / 2 + dx * iod
        draw(age_lines, [[x0, lm[21, 1] + 0.02 * iod], [x0 + dx * 0.3 * iod, lm[21, 1] - 0.08 * iod],
                         [x0 + dx * 0.6 * iod, lm[21, 1] - 0.16 * iod]], 0.6)
    creases = cv2.GaussianBlur(creases, (0, 0), size / 220)
    age_lines = cv2.GaussianBlur(age_lines, (0, 0), size / 450)

    logger.debug("face UV geometry at %d px built", size)
    return _FaceGeometry(size=size, low=low, lm=lm, px_per_cm=px_per_cm, skin3d=skin3d, redness=redness,
                         periorbital=periorbital, eyeshadow=eyeshadow, cheeks=cheeks, freckle_zone=freckle_zone,
                         freckle_box=freckle_box, freckle_full=zone_full[freckle_box],
                         canthus=canthus, beard_low=beard_low, beard_box=beard_box, beard=beard_full[beard_box],
                         lips_box=lips_box, lips=lips, lip_lower=lip_lower, lip_line=lip_line, lip_grain=lip_grain,
                         brows=brows, eyes=eyes, creases=creases, age_lines=age_lines, face_region=face_region,
                         face_region_cdf=np.cumsum(face_region.ravel()) / face_region.sum())


@functools.lru_cache(maxsize=4)
def _noise_bank(size: int) -> dict[str, np.ndarray]:
    """Fixed noise fields twice the texture size; per-sample noise is a random window into them (no copy)."""
    rng = np.random.default_rng(1234)
    n = 2 * size
    s = size / 512
    fine = _gauss_field(rng, (n, n), 0.7 * s) + 0.5 * _gauss_field(rng, (n, n), 2.5 * s)
    return {
        "pores": (fine / fine.std()).astype(np.float32),                                   # unit std
        "stubble": special.ndtr(_unit(cv2.filter2D(_gauss_field(rng, (n, n), max(0.5 * s, 0.4)), -1,
                                                   _line_kernel(max(int(4 * s), 3), 100)))).astype(np.float32),
        "spots": special.ndtr(_gauss_field(rng, (n, n), 1.6 * s)).astype(np.float32),      # uniform 0..1
        "hair": special.ndtr(_unit(cv2.filter2D(_gauss_field(rng, (n, n), 0.6 * s), -1,
                                                _line_kernel(max(int(7 * s), 3), 80)))).astype(np.float32),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / x.std()


def _window(rng: np.random.Generator, field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    r = int(rng.integers(field.shape[0] - shape[0] + 1))
    c = int(rng.integers(field.shape[1] - shape[1] + 1))
    return field[r:r + shape[0], c:c + shape[1]]


def _fractal_noise(rng: np.random.Generator, size: int, cells: Sequence[int] = (3, 6, 12, 24),
                   falloff: float = 0.6) -> np.ndarray:
    """Smooth value noise summed over octaves, roughly unit std, (size, size) float32."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for c in cells:
        out += amp * cv2.resize(rng.standard_normal((c + 1, c + 1)).astype(np.float32), (size, size),
                                interpolation=cv2.INTER_CUBIC)
        total += amp * amp
        amp *= falloff
    return out / np.sqrt(total)


def _hair_alpha(params: SkinParams, s3: _Skin3D, jitter: np.ndarray) -> np.ndarray:
    """Painted short-hair coverage from texel height/azimuth: hairline, temples, sideburns, around ears, nape."""
    if params.scalp_hair <= 0:
        return np.zeros_like(s3.y)
    frame = _head_frame()
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
    a = _smoothstep(-0.1, 0.7, s3.y - h + 0.2 * jitter) * (1 - s3.ear)
    # Where the hairline height changes fast with azimuth (temples, sideburns) the edge would be a hard step.
    return cv2.GaussianBlur((a * params.scalp_hair).astype(np.float32), (0, 0), s3.y.shape[0] / 160)


def _check_size(size: int) -> None:
    if size < 64 or size % 4:
        raise ValueError(f"texture size must be a multiple of 4 and at least 64, got {size}")


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(img, alpha=255.0)


# ------------------------------------------------------------------------------------------------------- textures

def make_face_texture(params: SkinParams, rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """Albedo of the M_Face tile (u 0..1), (size, size, 3) uint8 RGB; row 0 is v = 1, so sample at (u, 1 - v).

    Colour fields are mixed at a quarter of the resolution and upsampled; fine detail (pores, creases, brow hairs,
    stubble, lash lines, lips) is added at full resolution from precomputed fields, only inside each feature's box.
    """
    _check_size(size)
    g = _face_geometry(size)
    bank = _noise_bank(size)
    skin = np.asarray(params.skin_rgb, np.float32)
    dark = (params.tone - 1) / 9

    # --- low resolution: colour
    mott = _fractal_noise(rng, g.low, (3, 6, 12, 24))
    blotch = _fractal_noise(rng, g.low, (8, 16, 32))
    lum = 1 + (0.015 + 0.03 * params.mottling) * mott
    red = np.clip(params.redness * g.redness * (0.6 + 0.25 * blotch) + 0.05 * params.mottling * np.maximum(blotch, 0),
                  0, 1)
    img = skin * lum[..., None] * (1 - red[..., None] * _REDDEN)
    img *= 1 - ((0.25 + 0.5 * params.age) * (1 - 0.5 * dark) * g.periorbital)[..., None] * _DARK_CIRCLES
    img += (0.35 * g.canthus)[..., None] * (_CARUNCLE - img)
    if params.freckles > 0:  # freckled skin is warmer overall, not only in the spots
        img *= 1 - (0.5 * params.freckles * g.freckle_zone)[..., None] * np.array([0.0, 0.05, 0.1], np.float32)
    if params.stubble > 0:  # the shaved-beard shadow under the skin: strong for dark hair, none for white
        darkness = 1 - float(np.mean(params.stubble_rgb))
        shade = ((0.2 + 0.4 * params.stubble) * darkness * g.beard_low)[..., None]
        img += shade * (np.asarray(params.stubble_rgb, np.float32) * 0.6 + np.array([0.03, 0.04, 0.06]) - img)
    if params.blush > 0:
        target = np.asarray(params.blush_rgb, np.float32) * (0.55 + 0.5 * float(skin.mean()))
        img += (0.6 * params.blush * g.cheeks)[..., None] * (target - img)
    if params.eyeshadow > 0:
        img += (0.8 * params.eyeshadow * g.eyeshadow)[..., None] * (np.asarray(params.eyeshadow_rgb, np.float32) - img)
    hair = _hair_alpha(params, g.skin3d, blotch)
    img += hair[..., None] * (np.asarray(params.hair_rgb, np.float32) * (1 + 0.1 * mott[..., None]) - img)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)

    # --- full resolution: luminance detail, then features
    amp = (0.015 + 0.035 * params.pores) * (1 - 0.4 * dark)
    detail = cv2.addWeighted(_window(rng, bank["pores"], (size, size)), amp, g.creases, -(0.08 + 0.1 * params.age), 1.0)
    cv2.scaleAdd(g.age_lines, -0.2 * params.age ** 1.5, detail, dst=detail)
    if params.freckles > 0:
        box = g.freckle_box
        spots = _window(rng, bank["spots"], g.freckle_full.shape)
        detail[box] *= 1 - (0.3 * params.freckles) * g.freckle_full * _smoothstep(
            0.985 - 0.06 * params.freckles, 0.995, spots)
    if params.scalp_hair > 0:
        _hair_grain(detail, hair, rng, bank)
    img *= detail[..., None]

    for _ in range(params.moles):
        k = min(int(np.searchsorted(g.face_region_cdf, rng.random())), g.face_region.size - 1)
        cy, cx = divmod(int(k), g.low)
        center = np.array([cx + rng.random(), cy + rng.random()]) * size / g.low
        radius = rng.uniform(0.05, 0.15) * g.px_per_cm
        color = skin * rng.uniform(0.45, 0.75) * np.array([1.0, 0.88, 0.82])
        cv2.circle(img, tuple(int(c) for c in np.round(center * 16)), max(int(radius * 16), 8),
                   tuple(float(c) for c in color), -1, cv2.LINE_AA, 4)
    _paint_lips(img, params, rng, g)
    if params.stubble > 0:
        _paint_stubble(img, params, rng, g, bank)
    _paint_brows(img, params, rng, g)
    _paint_eyes(img, params, g)
    return _to_uint8(img)


_REDDEN = np.array([0.0, 0.2, 0.17], np.float32)        # redness lowers green and blue
_DARK_CIRCLES = np.array([0.10, 0.14, 0.08], np.float32)  # brown-purple under the eyes
_CARUNCLE = np.array([0.75, 0.38, 0.38], np.float32)


def _paint_lips(img: np.ndarray, params: SkinParams, rng: np.random.Generator, g: _FaceGeometry) -> None:
    region = img[g.lips_box]
    lip = np.asarray(params.lip_rgb, np.float32)
    shade = (1 - 0.35 * g.lip_line + 0.08 * g.lip_lower) * (1 + 0.05 * g.lip_grain)
    if params.lipstick:
        target = lip * shade[..., None]
        alpha = np.clip(g.lips * 1.15, 0, 1) * rng.uniform(0.8, 1.0)
    else:
        # Natural lips keep the skin's texture: tint by the lip/skin ratio.
        target = region * (lip / np.maximum(np.asarray(params.skin_rgb, np.float32), 0.02)) * shade[..., None]
        alpha = g.lips * rng.uniform(0.75, 1.0)
    region += alpha[..., None] * (target - region)


def _paint_stubble(img: np.ndarray, params: SkinParams, rng: np.random.Generator, g: _FaceGeometry,
                   bank: dict[str, np.ndarray]) -> None:
    region = img[g.beard_box]
    hairs = _window(rng, bank["stubble"], g.beard.shape)
    ragged = _window(rng, bank["spots"], g.beard.shape)
    density = 0.2 + 0.6 * params.stubble
    extent = rng.uniform(0.0, 0.5)  # how far the beard reaches up the cheeks and down the neck
    alpha = (_smoothstep(extent, extent + 0.35, g.beard + 0.3 * (ragged - 0.5))
             * _smoothstep(1 - density, 1 - density + 0.2, hairs) * (0.45 + 0.45 * params.stubble))
    region += alpha[..., None] * (np.asarray(params.stubble_rgb, np.float32) - region)


def _paint_brows(img: np.ndarray, params: SkinParams, rng: np.random.Generator, g: _FaceGeometry) -> None:
    color = np.asarray(params.brow_rgb, np.float32)
    half = 0.5 * params.brow_thickness_cm * g.px_per_cm
    soft = 0.16 * g.px_per_cm
    arch = rng.uniform(-0.2, 0.2)
    for brow in g.brows:
        width = half * brow["width"]
        # Centred slightly above the landmark line, with a random arch.
        offset = np.abs(brow["signed"] - (0.15 + arch * brow["arch"]) * half)
        core = _smoothstep(width + soft, width - soft, offset)
        fringe = _smoothstep(width + 3 * soft, width, offset)
        hairs = brow["streak"]
        alpha = brow["ends"] * (core * (0.35 + 0.55 * params.brow_density * (0.4 + 0.6 * hairs))
                                + 0.3 * params.brow_density * fringe * _smoothstep(0.6, 0.9, hairs))
        region = img[brow["box"]]
        region += alpha[..., None] * (color * (0.9 + 0.2 * hairs)[..., None] - region)


def _paint_eyes(img: np.ndarray, params: SkinParams, g: _FaceGeometry) -> None:
    """Lash lines (always: ICT's lash cards are not drawn opaque), plus eyeliner and its wing when worn."""
    lash = np.asarray(params.eyelash_rgb, np.float32)
    px = g.px_per_cm
    for eye in g.eyes:
        region = img[eye["box"]]
        alpha = eye["lashes"]
        if params.eyeliner > 0:
            w = params.eyeliner * 0.07 * px * eye["liner_width"]
            liner = _smoothstep(w + 0.03 * px, w, eye["up_d"]) * eye["liner_along"]
            if params.eyeliner_wing > 0:
                ww = params.eyeliner * 0.07 * px * (1.1 - eye["wing_s"])
                liner = np.maximum(liner, _smoothstep(ww + 0.02 * px, ww, eye["wing_d"])
                                   * (eye["wing_s"] < params.eyeliner_wing))
            alpha = np.maximum(alpha, 0.92 * liner)
        region += alpha[..., None] * (lash - region)


def _hair_grain(detail: np.ndarray, hair_low: np.ndarray, rng: np.random.Generator, bank: dict[str, np.ndarray]
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
    grain = _window(rng, bank["hair"], alpha.shape)
    detail[box] *= 1 + 0.3 * (grain - 0.5) * alpha


@dataclass
class _BackGeometry:
    size: int
    low: int
    skin3d: _Skin3D
    region: np.ndarray       # full-res int8: 0 skin, 1 mouth socket, 2 eye socket, 3 skin behind the ears
    depth: np.ndarray        # full-res 0..1 darkness with depth inside the sockets


@functools.lru_cache(maxsize=4)
def _back_geometry(size: int) -> _BackGeometry:
    model = load_facemodel()
    frame = _head_frame()
    sel = np.flatnonzero(model.material_mask("M_BackHead"))
    tris = model.triangles[sel]
    kind = np.zeros(len(sel), np.float32)
    kind[(tris[:, 0] >= _MOUTH_SOCKET[0]) & (tris[:, 0] < _MOUTH_SOCKET[1])] = 1
    kind[(tris[:, 0] >= _EYE_SOCKETS[0]) & (tris[:, 0] < _EYE_SOCKETS[1])] = 2
    # Two small islands at mid-height far out to the sides are skin behind the ears: no hair there.
    islands = _uv_islands(model.triangle_uv[sel])
    for k in np.unique(islands):
        members = islands == k
        if members.sum() < 0.05 * len(sel) and np.abs(model.neutral[tris[members]][..., 0]).mean() > 5.5:
            kind[members & (kind == 0)] = 3
    values = np.concatenate([model.neutral[tris], np.repeat(kind[:, None, None], 3, 1)], -1)
    uv = model.uv[model.triangle_uv[sel]] - np.array([MATERIAL_TILES["M_BackHead"], 0], np.float32)
    out, _ = _rasterize(uv, values, size)
    pos, region = out[..., :3], np.round(out[..., 3]).astype(np.int8)
    low = max(size // 2, 32)  # the hair edge covers much of this tile: a finer colour grid keeps it smooth
    # Deeper into the mouth is darker: a renderer without occlusion would otherwise light the throat.
    depth = np.where(region == 1, _smoothstep(9.5, 5.0, pos[..., 2]), 0.5).astype(np.float32)
    return _BackGeometry(size=size, low=low, skin3d=_skin3d(pos, region == 3, low, frame), region=region, depth=depth)


def make_backhead_texture(params: SkinParams, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Albedo of the M_BackHead tile (u 1..2): scalp/neck skin and short hair, mouth and eye sockets.

    (size, size, 3) uint8 RGB, row 0 is v = 1; sample at (u - 1, 1 - v), or at (u, 1 - v) with repeat wrapping.
    """
    _check_size(size)
    g = _back_geometry(size)
    bank = _noise_bank(size)
    skin = np.asarray(params.skin_rgb, np.float32)
    mott = _fractal_noise(rng, g.low, (3, 6, 12))
    blotch = _fractal_noise(rng, g.low, (8, 16))
    img = skin * (1 + (0.015 + 0.03 * params.mottling) * mott)[..., None]
    img *= 1 - (params.redness * 0.5 * g.skin3d.ear)[..., None] * _REDDEN
    hair = _hair_alpha(params, g.skin3d, blotch)
    img += hair[..., None] * (np.asarray(params.hair_rgb, np.float32) * (1 + 0.1 * mott[..., None]) - img)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    detail = 1 + (0.015 + 0.035 * params.pores) * (1 - 0.4 * (params.tone - 1) / 9) * _window(
        rng, bank["pores"], (size, size))
    if params.scalp_hair > 0:
        _hair_grain(detail, hair, rng, bank)
    img *= detail[..., None]
    mouth = np.asarray(params.gums_rgb, np.float32) * 0.75 * (1 - 0.85 * g.depth[..., None])
    socket = skin * np.array([0.45, 0.3, 0.3], np.float32)
    img = np.where((g.region == 1)[..., None], mouth, np.where((g.region == 2)[..., None], socket, img))
    return _to_uint8(img)


@dataclass
class _EyeGeometry:
    rho_sclera: np.ndarray   # texel distance from the eye axis / iris radius
    rho_iris: np.ndarray
    iris_inside: np.ndarray  # texels of the iris disc proper (the rest is the inside of the eye)
    theta_bin: np.ndarray    # angular bin 0..ANGLE_BINS-1 (same for both textures)


_ANGLE_BINS = 256


@functools.lru_cache(maxsize=4)
def _eye_geometry(size: int) -> _EyeGeometry:
    """Radial maps of the eye textures: how far from the eye's axis, relative to the iris radius, each texel is."""
    model = load_facemodel()

    def radial(material: str, front_only: bool) -> tuple[np.ndarray, np.ndarray, float]:
        sel = model.material_mask(material)
        xyz = model.neutral[model.triangles[sel]].reshape(-1, 3)
        uv = model.uv[model.triangle_uv[sel]].reshape(-1, 2)
        r_uv = np.linalg.norm(uv - 0.5, axis=1)
        keep = r_uv < 0.5
        if front_only:
            keep &= xyz[:, 2] > xyz[:, 2].max() - 0.5
        return r_uv[keep], xyz[keep], float(r_uv[keep].max())

    r_iris, xyz_iris, _ = radial("M_IrisLeft", True)
    center = xyz_iris.mean(0)
    _, _, vt = np.linalg.svd(xyz_iris - center)
    axis = vt[2] * np.sign(vt[2][2])

    def off_axis(xyz: np.ndarray) -> np.ndarray:
        d = xyz - center
        return np.linalg.norm(d - np.outer(d @ axis, axis), axis=1)

    iris_radius = off_axis(xyz_iris).max()
    r_scl, xyz_scl, _ = radial("M_ScleraLeft", False)
    front = (xyz_scl - center) @ axis > -0.6  # the front hemisphere, where r_uv grows with the off-axis radius
    grid = (np.arange(size) + 0.5) / size
    uu, vv = np.meshgrid(grid, 1 - grid)
    r_tex = np.hypot(uu - 0.5, vv - 0.5)

    def mapping(r: np.ndarray, rho: np.ndarray) -> np.ndarray:
        order = np.argsort(r)
        r, rho = r[order], np.maximum.accumulate(rho[order])
        # Beyond the measured front part the texel is far round the back of the eye: clearly not iris.
        return np.where(r_tex > r[-1], rho[-1] + (r_tex - r[-1]) * 10, np.interp(r_tex, r, rho)).astype(np.float32)

    rho_sclera = mapping(r_scl[front], off_axis(xyz_scl[front]) / iris_radius)
    rho_iris = mapping(r_iris, off_axis(xyz_iris) / iris_radius)
    theta = np.arctan2(vv - 0.5, uu - 0.5)
    theta_bin = ((theta / (2 * np.pi) + 0.5) * _ANGLE_BINS).astype(np.int32) % _ANGLE_BINS
    return _EyeGeometry(rho_sclera=rho_sclera, rho_iris=rho_iris, iris_inside=r_tex < 0.5, theta_bin=theta_bin)


def _eye_color(params: SkinParams, rho: np.ndarray, theta_bin: np.ndarray, angular: np.ndarray,
               radial: np.ndarray) -> np.ndarray:
    outer = np.asarray(params.iris_rgb, np.float32)
    inner = np.asarray(params.iris_inner_rgb, np.float32)
    p = params.pupil
    streak = angular[theta_bin]
    ring = np.interp(rho, np.linspace(0, 1.2, len(radial)), radial)
    mix = _smoothstep(p + 0.12, p + 0.4, rho + 0.08 * streak)
    iris = inner + mix[..., None] * (outer - inner)
    iris *= (1 + 0.28 * streak + 0.12 * ring)[..., None]
    iris *= (1 - params.limbal_ring * _smoothstep(0.72, 1.0, rho))[..., None]
    iris += _smoothstep(p + 0.04, p - 0.01, rho)[..., None] * (0.015 - iris)          # pupil
    sclera = np.asarray(params.sclera_rgb, np.float32) * (1 - 0.06 * _smoothstep(1.6, 3.0, rho))[..., None]
    sclera += (0.08 * _smoothstep(1.4, 2.5, rho) * np.clip(0.5 + 0.5 * streak, 0, 1))[..., None] * (
        np.array([0.8, 0.45, 0.45], np.float32) - sclera)                                # faint vessels
    edge = _smoothstep(1.03, 0.97, rho)[..., None]
    return sclera + edge * (iris - sclera)


def make_eye_textures(params: SkinParams, size: int = 128) -> dict[str, np.ndarray]:
    """Iris and sclera albedo, {"iris": ..., "sclera": ...}, (size, size, 3) uint8, row 0 is v = 1.

    Both share one pattern drawn from `params.iris_seed`. The sclera texture carries the iris under its cornea
    bulge too (for renderers that draw the sclera opaque); the iris texture is black outside its disc (the pupil
    tube and the back of the iris).
    """
    return _eye_textures(params, size, with_sclera=True)


def _eye_textures(params: SkinParams, size: int, with_sclera: bool) -> dict[str, np.ndarray]:
    g = _eye_geometry(size)
    rng = np.random.default_rng(params.iris_seed)
    angular = ndimage.gaussian_filter1d(rng.standard_normal(_ANGLE_BINS).astype(np.float32), 1.0, mode="wrap") * 0.7
    angular += ndimage.gaussian_filter1d(rng.standard_normal(_ANGLE_BINS).astype(np.float32), 6.0, mode="wrap") * 2
    angular /= angular.std()
    radial = ndimage.gaussian_filter1d(rng.standard_normal(64).astype(np.float32), 2.0)
    radial /= radial.std() + 1e-6
    iris = _eye_color(params, g.rho_iris, g.theta_bin, angular, radial)
    out = {"iris": _to_uint8(np.where(g.iris_inside[..., None], iris, np.float32(0.015)))}
    if with_sclera:
        out["sclera"] = _to_uint8(_eye_color(params, g.rho_sclera, g.theta_bin, angular, radial))
    return out


def material_colors(params: SkinParams) -> dict[str, RGB | np.ndarray | None]:
    """Albedo per ICT material: an RGB tuple, a small texture (irises, (128, 128, 3) uint8), or None for
    ICT's transparent helper layers (lacrimal fluid, eye blend, eye occlusion) that a renderer should skip.

    The face and back-head entries are the mean skin colour, a fallback for `make_face_texture` /
    `make_backhead_texture`.
    """
    iris = _eye_textures(params, 128, with_sclera=False)["iris"]
    colors: dict[str, RGB | np.ndarray | None] = {
        "M_Face": params.skin_rgb, "M_BackHead": params.skin_rgb, "M_GumsTongue": params.gums_rgb,
        "M_Teeth": params.teeth_rgb, "M_ScleraLeft": params.sclera_rgb, "M_ScleraRight": params.sclera_rgb,
        "M_IrisLeft": iris, "M_IrisRight": iris, "M_EyeLashes": params.eyelash_rgb,
    }
    colors.update({name: None for name in TRANSPARENT_MATERIALS})
    return colors


def material_textures(params: SkinParams, rng: np.random.Generator, face_size: int = 512, back_size: int = 256,
                      eye_size: int = 128) -> dict[str, np.ndarray]:
    """All textured materials at once: M_Face, M_BackHead, and the scleras and irises."""
    eyes = make_eye_textures(params, eye_size)
    return {"M_Face": make_face_texture(params, rng, face_size),
            "M_BackHead": make_backhead_texture(params, rng, back_size),
            "M_ScleraLeft": eyes["sclera"], "M_ScleraRight": eyes["sclera"],
            "M_IrisLeft": eyes["iris"], "M_IrisRight": eyes["iris"]}


# ---------------------------------------------------------------------------------------------------- backgrounds

# Natural photos shipped with scikit-image and opencv-doc. Each was looked at: excluded are images with people or
# faces (astronaut, camera, lfw_subset, coins with heads, lena, messi5, basketball*, the left*/right* calibration
# shots, box_in_scene, graf*, baboon), drawings and synthetic test patterns, and tiny images.
SKIMAGE_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
                  "brick.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png")
OPENCV_DATA_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_PHOTOS = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "board.jpg", "building.jpg", "butterfly.jpg",
                 "chicky_512.png", "ela_original.jpg", "fruits.jpg", "home.jpg", "leuvenA.jpg",
                 "licenseplate_motion.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg",
                 "starry_night.jpg", "stuff.jpg")


def default_photo_paths() -> list[Path]:
    """The bundled photo list, whether or not the files exist (missing ones are skipped when loading)."""
    paths = []
    try:
        import skimage

        paths += [Path(skimage.__file__).parent / "data" / name for name in SKIMAGE_PHOTOS]
    except ImportError:
        logger.warning("scikit-image is not installed: its sample photos are not used as backgrounds")
    paths += [OPENCV_DATA_DIR / name for name in OPENCV_PHOTOS]
    return paths


def _load_photo(path: Path, max_side: int) -> np.ndarray | None:
    from PIL import Image  # pillow comes with matplotlib; unlike libpng via cv2 it does not warn about ICC chunks

    try:
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        logger.warning("background photo %s skipped: %s", path, exc)
        return None
    scale = max_side / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def _random_color(rng: np.random.Generator, saturation: float | None = None) -> np.ndarray:
    """A colour as found in scenes: mostly muted, the full range of lightness."""
    import colorsys

    s = rng.beta(1.2, 2.5) if saturation is None else saturation
    return np.array(colorsys.hsv_to_rgb(rng.random(), s, rng.uniform(0.12, 0.95)), np.float32)


class BackgroundBank:
    """Backgrounds for compositing: random crops of natural photos (loaded once) and procedural scenes.

    `sample(rng, width, height)` returns (height, width, 3) uint8 RGB. With no readable photos it falls back to
    procedural backgrounds only.
    """

    def __init__(self, photo_paths: Sequence[str | Path] | None = None, max_side: int = 800,
                 procedural_fraction: float = 0.4) -> None:
        paths = default_photo_paths() if photo_paths is None else [Path(p) for p in photo_paths]
        self.photos: list[np.ndarray] = []
        self._grey: list[bool] = []  # grey textures (brick, gravel, moon) get a random tint when sampled
        for path in paths:
            if not path.is_file():
                logger.warning("background photo %s not found, skipped", path)
                continue
            img = _load_photo(path, max_side)
            if img is not None:
                self.photos.append(img)
                self._grey.append(bool(np.abs(img.astype(np.int16) - img[..., :1]).max() <= 2))
        self.procedural_fraction = procedural_fraction if self.photos else 1.0
        if not self.photos:
            logger.warning("no background photos available: using procedural backgrounds only")
        self._generators = (_gradient_background, _noise_background, _blob_background, _room_background,
                            _stripe_background, _bokeh_background, _shelf_background)

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        if rng.random() < self.procedural_fraction:
            img = _to_uint8(self._generators[rng.integers(len(self._generators))](rng, width, height))
            tint = None
        else:
            img, tint = self._photo_crop(rng, width, height)
        return _jitter_background(rng, img, tint)

    def _photo_crop(self, rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray | None]:
        k = int(rng.integers(len(self.photos)))
        photo = self.photos[k]
        ph, pw = photo.shape[:2]
        aspect = width / height
        cw = min(pw, ph * aspect) * rng.uniform(0.3, 1.0)
        ch = cw / aspect
        x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
        crop = photo[int(y0):int(y0 + ch) + 1, int(x0):int(x0 + cw) + 1]
        interp = cv2.INTER_AREA if crop.shape[1] > width else cv2.INTER_LINEAR
        img = cv2.resize(crop, (width, height), interpolation=interp)
        if rng.random() < 0.5:
            img = cv2.flip(img, 1)
        return img, (0.7 + 0.6 * _random_color(rng, 0.3)) if self._grey[k] else None


def _jitter_background(rng: np.random.Generator, img: np.ndarray, tint: np.ndarray | None = None) -> np.ndarray:
    """Exposure, contrast, saturation and colour cast (one 3x4 colour matrix), gamma (a lookup table) and, often,
    defocus, since backgrounds behind a face are usually soft. uint8 in and out."""
    gain, contrast, saturation = rng.uniform(0.6, 1.3), rng.uniform(0.7, 1.3), rng.uniform(0.4, 1.4)
    cast = np.diag(rng.uniform(0.9, 1.1, 3) * (1 if tint is None else tint))
    mean = np.array(cv2.mean(img)[:3])
    luma = np.array([[0.299, 0.587, 0.114]])
    sat = saturation * np.eye(3) + (1 - saturation) * np.ones((3, 1)) @ luma
    matrix = cast @ sat
    transform = np.hstack([matrix * contrast * gain, (matrix @ ((1 - contrast) * gain * mean))[:, None]])
    img = cv2.transform(img, transform)
    lut = np.clip(255 * (np.arange(256) / 255.0) ** rng.uniform(0.8, 1.25) + 0.5, 0, 255).astype(np.uint8)
    img = cv2.LUT(img, lut)
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 4.0) * min(img.shape[:2]) / 256)
    return img


def _gradient_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * xx / w + np.sin(a) * yy / h)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy) / max(w, h)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    c0, c1 = _random_color(rng), _random_color(rng)
    img = c0 + t[..., None] * (c1 - c0)
    return img * (1 + 0.05 * cv2.resize(_fractal_noise(rng, 64, (2, 4, 8)), (w, h)))[..., None]


def _noise_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Fractal colour noise mapped through a random 3-colour palette (foliage, stone, fabric-like)."""
    n = max(w, h)
    cells = (2, 4, 8, 16, 32) if rng.random() < 0.5 else (3, 6, 12, 24, 48)
    t = _fractal_noise(rng, n, cells, falloff=rng.uniform(0.4, 0.65))[:h, :w]
    t = special.ndtr(t * rng.uniform(0.8, 2.0))
    stops = np.stack([_random_color(rng) for _ in range(3)])
    img = np.stack([np.interp(t, [0, 0.5, 1], stops[:, k]) for k in range(3)], -1).astype(np.float32)
    return img * (1 + 0.08 * _fractal_noise(rng, n, (32, 64))[:h, :w, None])


def _blob_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Heavily blurred colour shapes; drawn and blurred at low resolution, since only low frequencies survive."""
    lw, lh = max(w // 4, 16), max(h // 4, 16)
    img = np.empty((lh, lw, 3), np.float32)
    img[:] = _random_color(rng)
    for _ in range(rng.integers(5, 25)):
        center = (int(rng.uniform(0, lw)), int(rng.uniform(0, lh)))
        axes = (int(rng.uniform(0.05, 0.4) * lw), int(rng.uniform(0.05, 0.4) * lh))
        cv2.ellipse(img, center, axes, rng.uniform(0, 180), 0, 360, tuple(float(c) for c in _random_color(rng)), -1,
                    cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.02, 0.12) * max(lw, lh))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def _quad_on_wall(wall: np.ndarray, s0: float, s1: float, t0: float, t1: float) -> np.ndarray:
    """Sub-quad of a wall quad (corners: near-top, far-top, far-bottom, near-bottom) in its own coordinates."""
    def point(s: float, t: float) -> np.ndarray:
        top = wall[0] + s * (wall[1] - wall[0])
        bottom = wall[3] + s * (wall[2] - wall[3])
        return top + t * (bottom - top)
    return np.array([point(s0, t0), point(s1, t0), point(s1, t1), point(s0, t1)])


def _room_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A box room in one-point perspective: back wall, side walls, floor, ceiling, a window, a door, frames."""
    img = np.zeros((h, w, 3), np.float32)
    vp = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.3, 0.7) * h])
    half = np.array([rng.uniform(0.12, 0.4) * w, rng.uniform(0.12, 0.4) * h])
    b = np.array([vp - half, [vp[0] + half[0], vp[1] - half[1]], vp + half, [vp[0] - half[0], vp[1] + half[1]]])
    c = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    wall = _random_color(rng)
    floor = _random_color(rng)
    ceiling, floor_quad = np.array([c[0], c[1], b[1], b[0]]), np.array([c[3], c[2], b[2], b[3]])
    # Side walls as (near-top, far-top, far-bottom, near-bottom), the order _quad_on_wall expects.
    left, right = np.array([c[0], b[0], b[3], c[3]]), np.array([c[1], b[1], b[2], c[2]])

    def fill(quad: np.ndarray, color: np.ndarray) -> None:
        cv2.fillConvexPoly(img, np.round(quad * 16).astype(np.int32), tuple(float(x) for x in np.clip(color, 0, 1)),
                           cv2.LINE_AA, 4)

    fill(ceiling, wall * 1.1)
    fill(left, wall * rng.uniform(0.6, 0.95))
    fill(right, wall * rng.uniform(0.6, 0.95))
    fill(floor_quad, floor)
    if rng.random() < 0.5:  # floor boards converging to the vanishing point (the back wall covers their ends)
        for x in np.linspace(0, w, rng.integers(6, 20)):
            cv2.line(img, (int(x * 16), h * 16), (int(vp[0] * 16), int(vp[1] * 16)),
                     tuple(float(v) for v in floor * 0.75), 1, cv2.LINE_AA, 4)
    fill(b, wall)
    if rng.random() < 0.6:  # a bright window on the back wall
        x0, y0 = rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.3)
        fill(b[0] + (b[2] - b[0]) * np.array([[x0, y0], [x0 + 0.4, y0], [x0 + 0.4, y0 + 0.5], [x0, y0 + 0.5]]),
             np.full(3, rng.uniform(0.75, 1.0)) * (0.85 + 0.15 * _random_color(rng)))
    side_wall = left if rng.random() < 0.5 else right
    if rng.random() < 0.6:  # a door
        s0 = rng.uniform(0.2, 0.6)
        fill(_quad_on_wall(side_wall, s0, s0 + 0.25, 0.25, 1.0), _random_color(rng) * 0.8)
    for _ in range(rng.integers(0, 4)):  # frames and posters
        s0, t0 = rng.uniform(0.05, 0.7), rng.uniform(0.15, 0.5)
        fill(_quad_on_wall(side_wall, s0, s0 + rng.uniform(0.1, 0.25), t0, t0 + rng.uniform(0.1, 0.25)),
             _random_color(rng))
    light = 1 + 0.25 * cv2.resize(_fractal_noise(rng, 32, (2, 4)), (w, h))
    return cv2.GaussianBlur(img * light[..., None], (0, 0), 0.6)


def _stripe_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Stripes, checks or blinds, seen in perspective."""
    n = 256
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    period = rng.uniform(8, 60)
    phase = (xx / period) % 1.0
    colors = [_random_color(rng) for _ in range(rng.integers(2, 4))]
    idx = np.minimum((phase * len(colors)).astype(int), len(colors) - 1)
    if rng.random() < 0.3:  # checks
        idx = (idx + ((yy / period) % 1.0 * len(colors)).astype(int)) % len(colors)
    plane = np.stack(colors)[idx]
    src = np.float32([[0, 0], [n, 0], [n, n], [0, n]])
    dst = np.float32([[rng.uniform(-0.4, 0.2) * w, rng.uniform(-0.4, 0.2) * h],
                      [rng.uniform(0.8, 1.4) * w, rng.uniform(-0.4, 0.2) * h],
                      [rng.uniform(0.8, 1.4) * w, rng.uniform(0.8, 1.4) * h],
                      [rng.uniform(-0.4, 0.2) * w, rng.uniform(0.8, 1.4) * h]])
    angle = rng.uniform(0, 180)
    rot = cv2.getRotationMatrix2D((n / 2, n / 2), angle, 1.0)
    plane = cv2.warpAffine(plane, rot, (n, n), borderMode=cv2.BORDER_REFLECT)
    img = cv2.warpPerspective(plane, cv2.getPerspectiveTransform(src, dst), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    return img * (1 + 0.15 * cv2.resize(_fractal_noise(rng, 32, (2, 4)), (w, h)))[..., None]


def _bokeh_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Out-of-focus lights: soft discs added over a dark, blurred base."""
    img = _blob_background(rng, w, h) * rng.uniform(0.2, 0.7)
    base = _random_color(rng, rng.uniform(0.2, 0.8))
    for _ in range(rng.integers(15, 80)):
        r = rng.uniform(0.02, 0.12) * max(w, h)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0, y0 = max(int(cx - r) - 1, 0), max(int(cy - r) - 1, 0)
        x1, y1 = min(int(cx + r) + 2, w), min(int(cy + r) + 2, h)
        if x1 <= x0 or y1 <= y0:
            continue
        disc = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        color = np.clip(base + rng.normal(0, 0.15, 3), 0, 1) * rng.uniform(0.15, 0.5)
        cv2.circle(disc, (int((cx - x0) * 16), int((cy - y0) * 16)), int(r * 16), tuple(float(c) for c in color), -1,
                   cv2.LINE_AA, 4)
        img[y0:y1, x0:x1] += disc
    return cv2.GaussianBlur(img, (0, 0), 0.004 * max(w, h) + 0.5)


def _shelf_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Bookshelves or cupboards: rows of coloured vertical rectangles, slightly skewed."""
    n = 256
    img = np.empty((n, n, 3), np.float32)
    wood = _random_color(rng, 0.4) * 0.7
    img[:] = wood
    y = 0.0
    while y < n:
        row_h = rng.uniform(30, 70)
        x = 0.0
        while x < n:
            bw = rng.uniform(3, 14)
            top = y + rng.uniform(2, row_h * 0.35)
            cv2.rectangle(img, (int(x), int(top)), (int(x + bw), int(y + row_h - 4)),
                          tuple(float(c) for c in _random_color(rng)), -1)
            x += bw + rng.uniform(0, 2)
        cv2.rectangle(img, (0, int(y + row_h - 4)), (n, int(y + row_h)), tuple(float(c) for c in wood * 0.8), -1)
        y += row_h
    m = cv2.getRotationMatrix2D((n / 2, n / 2), rng.uniform(-8, 8), rng.uniform(1.0, 1.6))
    img = cv2.warpAffine(img, m, (n, n), borderMode=cv2.BORDER_REFLECT)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
