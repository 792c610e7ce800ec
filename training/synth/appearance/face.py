"""The face tile's albedo (`make_face_texture`): masks and fields of the face's features in UV space, built once
per texture size (`face_geometry`), then per person skin colour, redness, freckles, moles, creases, lips, stubble,
brows, lash lines and makeup painted over them."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import special

from core.facemodel import FaceModel, load_facemodel
from core.layouts import load_layout
from training.synth.appearance.scalp import HeadFrame, Skin3D, hair_alpha, hair_grain, head_frame, make_skin3d
from training.synth.appearance.skin import REDDEN, SkinParams
from training.synth.appearance.uv import (bbox, blob, box_grid, check_size, closed_curve, curve_field, dense_curve,
                                          polygon_mask, rasterize, smoothstep, to_uint8)
from training.synth.noise import fractal_noise, line_kernel, noise_bank, window

logger = logging.getLogger(__name__)


@dataclass
class FaceGeometry:
    size: int
    low: int
    lm: np.ndarray                  # (68, 2) landmark pixel coords at `size`
    px_per_cm: float
    skin3d: Skin3D
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


def _face_ear_mask(size: int) -> np.ndarray:
    """The ears in the face tile: the side lobes of the UV layout (u < 0.1 or u > 0.9, v 0.44..0.685)."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size
    u, v = np.meshgrid(g, 1 - g)
    side = np.minimum(u, 1 - u)
    return smoothstep(0.105, 0.09, side) * smoothstep(0.435, 0.45, v) * smoothstep(0.69, 0.675, v)


def _beard_mask(pos: np.ndarray, frame: HeadFrame, lips_keepout: np.ndarray) -> np.ndarray:
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
    m = (smoothstep(0.0, 0.6, top - y) * smoothstep(0.0, 1.2, y - neck) * smoothstep(78, 68, phi))
    return (m * (1 - lips_keepout)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def face_geometry(size: int) -> FaceGeometry:
    """Masks and fields of the face tile at one texture size, computed once per process."""
    model = load_facemodel()
    frame = head_frame()
    sel = model.material_mask("M_Face")
    pos, _ = rasterize(model.uv[model.triangle_uv[sel]], model.neutral[model.triangles[sel]], size)
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
            out = np.maximum(out, blob(lo, center * f, (rx * iod * f, ry * iod * f)))
        return out

    skin3d = make_skin3d(pos, _face_ear_mask(size), low, frame)
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
    lips_box = bbox(lm[48:60], 0.12 * iod, size)
    origin = np.array([lips_box[1].start, lips_box[0].start], np.float32)
    bshape = (lips_box[0].stop - lips_box[0].start, lips_box[1].stop - lips_box[1].start)
    outline = closed_curve(lm[48:60]) - origin
    lips = polygon_mask(bshape, outline, size / 420)
    upper_pts = np.concatenate([dense_curve(lm[48:55], 48), dense_curve(lm[[64, 63, 62, 61, 60]], 24)])
    upper = polygon_mask(bshape, upper_pts - origin, size / 300)
    lip_lower = np.clip(1 - upper, 0, 1)
    inner = np.concatenate([lm[60:68], lm[[60]]]) - origin
    xs, ys = box_grid((slice(0, bshape[0]), slice(0, bshape[1])))
    d_line, _, _ = curve_field(dense_curve(inner, 64), xs, ys)
    corners = np.maximum(blob(bshape, lm[48] - origin, (0.05 * iod, 0.035 * iod)),
                         blob(bshape, lm[54] - origin, (0.05 * iod, 0.035 * iod)))
    lip_line = np.clip(np.exp(-d_line / (0.02 * iod)) + 0.8 * corners, 0, 1).astype(np.float32)
    grain_rng = np.random.default_rng(7)
    lip_grain = cv2.filter2D(grain_rng.standard_normal(bshape).astype(np.float32), -1,
                             line_kernel(max(int(size / 60), 3), 90))
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
        box = bbox(pts, 0.22 * iod, size)
        xs, ys = box_grid(box)
        curve = dense_curve(pts, 48, (0.04, 0.06))
        dist, t, side = curve_field(curve, xs, ys, (-0.04, 1.06))
        # Hairs near the nose point up, the rest lie along the brow towards its tail.
        tangent = np.degrees(np.arctan2(*(pts[-1] - pts[0])[::-1]))
        noise = brow_rng.standard_normal(xs.shape).astype(np.float32)
        length = max(int(size / 55), 3)
        up = cv2.filter2D(noise, -1, line_kernel(length, -90 + 15 * outward))
        along = cv2.filter2D(noise, -1, line_kernel(length, tangent - 8 * outward))
        w = smoothstep(0.12, 0.35, t)
        streak = cv2.GaussianBlur((1 - w) * up / up.std() + w * along / along.std(), (0, 0), size / 1000)
        # Widest over the inner third, tapering towards the tail.
        brows.append(dict(box=box, signed=side * (-outward) * dist,
                          width=np.interp(t, [-0.04, 0.08, 0.3, 0.7, 1.06], [0.35, 0.9, 1.0, 0.75, 0.3]),
                          arch=np.sin(np.pi * np.clip(t, 0, 1)),
                          ends=smoothstep(-0.04, 0.1, t) * smoothstep(1.06, 0.92, t),
                          streak=special.ndtr(streak / streak.std())))

    eyes = []
    for upper_ids, lower_ids, outward in (([39, 38, 37, 36], [39, 40, 41, 36], out_r),
                                          ([42, 43, 44, 45], [42, 47, 46, 45], out_l)):
        box = bbox(lm[upper_ids], 0.3 * iod, size)
        xs, ys = box_grid(box)
        up_d, up_t, up_side = curve_field(dense_curve(lm[upper_ids], 32, (0.0, 0.0)), xs, ys)
        lo_d, lo_t, _ = curve_field(dense_curve(lm[lower_ids], 32, (0.0, 0.0)), xs, ys)
        corner = lm[upper_ids[-1]]
        wing_end = corner + 0.13 * iod * outward - 0.06 * iod * down
        wing_d, wing_s, _ = curve_field(np.stack([corner, wing_end]).astype(np.float32), xs, ys)
        # The side sign depends on the travel direction; make "above the lid" positive.
        above = (up_side if np.mean(up_side[ys < lm[upper_ids][:, 1].min() - 3]) > 0 else -up_side) > 0
        # Lash lines: thicker towards the outer corner, mostly above the upper lid; a fainter lower line.
        along = smoothstep(-0.02, 0.15, up_t) * smoothstep(1.05, 0.9, up_t)
        w_up = 0.06 * px_per_cm * (0.6 + 0.8 * up_t)
        upper = smoothstep(w_up + 0.05 * px_per_cm, w_up * 0.3, up_d) * along * np.where(above, 1.0, 0.6)
        lower = 0.45 * smoothstep(0.05 * px_per_cm, 0.01 * px_per_cm, lo_d) * smoothstep(0.2, 0.6, lo_t)
        eyes.append(dict(box=box, up_d=up_d, wing_d=wing_d, wing_s=wing_s,
                         lashes=np.maximum(0.85 * upper, lower).astype(np.float32),
                         liner_width=(0.5 + 0.7 * up_t).astype(np.float32),
                         liner_along=(above * smoothstep(-0.05, 0.2, up_t)).astype(np.float32)))

    creases = np.zeros((size, size), np.float32)
    age_lines = np.zeros((size, size), np.float32)
    th = max(int(round(size / 256)), 1)

    def draw(img: np.ndarray, pts: np.ndarray, weight: float, thickness: int = th) -> None:
        curve = dense_curve(np.asarray(pts, np.float32), 24)
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
    return FaceGeometry(size=size, low=low, lm=lm, px_per_cm=px_per_cm, skin3d=skin3d, redness=redness,
                        periorbital=periorbital, eyeshadow=eyeshadow, cheeks=cheeks, freckle_zone=freckle_zone,
                        freckle_box=freckle_box, freckle_full=zone_full[freckle_box],
                        canthus=canthus, beard_low=beard_low, beard_box=beard_box, beard=beard_full[beard_box],
                        lips_box=lips_box, lips=lips, lip_lower=lip_lower, lip_line=lip_line, lip_grain=lip_grain,
                        brows=brows, eyes=eyes, creases=creases, age_lines=age_lines, face_region=face_region,
                        face_region_cdf=np.cumsum(face_region.ravel()) / face_region.sum())


def make_face_texture(params: SkinParams, rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """Albedo of the M_Face tile (u 0..1), (size, size, 3) uint8 RGB; row 0 is v = 1, so sample at (u, 1 - v).

    Colour fields are mixed at a quarter of the resolution and upsampled; fine detail (pores, creases, brow hairs,
    stubble, lash lines, lips) is added at full resolution from precomputed fields, only inside each feature's box.
    """
    check_size(size)
    g = face_geometry(size)
    bank = noise_bank(size)
    skin = np.asarray(params.skin_rgb, np.float32)
    dark = (params.tone - 1) / 9

    # --- low resolution: colour
    mott = fractal_noise(rng, g.low, (3, 6, 12, 24))
    blotch = fractal_noise(rng, g.low, (8, 16, 32))
    lum = 1 + (0.015 + 0.03 * params.mottling) * mott
    red = np.clip(params.redness * g.redness * (0.6 + 0.25 * blotch) + 0.05 * params.mottling * np.maximum(blotch, 0),
                  0, 1)
    img = skin * lum[..., None] * (1 - red[..., None] * REDDEN)
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
    hair = hair_alpha(params, g.skin3d, blotch)
    img += hair[..., None] * (np.asarray(params.hair_rgb, np.float32) * (1 + 0.1 * mott[..., None]) - img)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)

    # --- full resolution: luminance detail, then features
    amp = (0.015 + 0.035 * params.pores) * (1 - 0.4 * dark)
    detail = cv2.addWeighted(window(rng, bank["pores"], (size, size)), amp, g.creases, -(0.08 + 0.1 * params.age), 1.0)
    cv2.scaleAdd(g.age_lines, -0.2 * params.age ** 1.5, detail, dst=detail)
    if params.freckles > 0:
        box = g.freckle_box
        spots = window(rng, bank["spots"], g.freckle_full.shape)
        detail[box] *= 1 - (0.3 * params.freckles) * g.freckle_full * smoothstep(
            0.985 - 0.06 * params.freckles, 0.995, spots)
    if params.scalp_hair > 0:
        hair_grain(detail, hair, rng, bank)
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
    return to_uint8(img)


_DARK_CIRCLES = np.array([0.10, 0.14, 0.08], np.float32)  # brown-purple under the eyes
_CARUNCLE = np.array([0.75, 0.38, 0.38], np.float32)


def _paint_lips(img: np.ndarray, params: SkinParams, rng: np.random.Generator, g: FaceGeometry) -> None:
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


def _paint_stubble(img: np.ndarray, params: SkinParams, rng: np.random.Generator, g: FaceGeometry,
                   bank: dict[str, np.ndarray]) -> None:
    region = img[g.beard_box]
    hairs = window(rng, bank["stubble"], g.beard.shape)
    ragged = window(rng, bank["spots"], g.beard.shape)
    density = 0.2 + 0.6 * params.stubble
    extent = rng.uniform(0.0, 0.5)  # how far the beard reaches up the cheeks and down the neck
    alpha = (smoothstep(extent, extent + 0.35, g.beard + 0.3 * (ragged - 0.5))
             * smoothstep(1 - density, 1 - density + 0.2, hairs) * (0.45 + 0.45 * params.stubble))
    region += alpha[..., None] * (np.asarray(params.stubble_rgb, np.float32) - region)


def _paint_brows(img: np.ndarray, params: SkinParams, rng: np.random.Generator, g: FaceGeometry) -> None:
    color = np.asarray(params.brow_rgb, np.float32)
    half = 0.5 * params.brow_thickness_cm * g.px_per_cm
    soft = 0.16 * g.px_per_cm
    arch = rng.uniform(-0.2, 0.2)
    for brow in g.brows:
        width = half * brow["width"]
        # Centred slightly above the landmark line, with a random arch.
        offset = np.abs(brow["signed"] - (0.15 + arch * brow["arch"]) * half)
        core = smoothstep(width + soft, width - soft, offset)
        fringe = smoothstep(width + 3 * soft, width, offset)
        hairs = brow["streak"]
        alpha = brow["ends"] * (core * (0.35 + 0.55 * params.brow_density * (0.4 + 0.6 * hairs))
                                + 0.3 * params.brow_density * fringe * smoothstep(0.6, 0.9, hairs))
        region = img[brow["box"]]
        region += alpha[..., None] * (color * (0.9 + 0.2 * hairs)[..., None] - region)


def _paint_eyes(img: np.ndarray, params: SkinParams, g: FaceGeometry) -> None:
    """Lash lines (always: ICT's lash cards are not drawn opaque), plus eyeliner and its wing when worn."""
    lash = np.asarray(params.eyelash_rgb, np.float32)
    px = g.px_per_cm
    for eye in g.eyes:
        region = img[eye["box"]]
        alpha = eye["lashes"]
        if params.eyeliner > 0:
            w = params.eyeliner * 0.07 * px * eye["liner_width"]
            liner = smoothstep(w + 0.03 * px, w, eye["up_d"]) * eye["liner_along"]
            if params.eyeliner_wing > 0:
                ww = params.eyeliner * 0.07 * px * (1.1 - eye["wing_s"])
                liner = np.maximum(liner, smoothstep(ww + 0.02 * px, ww, eye["wing_d"])
                                   * (eye["wing_s"] < params.eyeliner_wing))
            alpha = np.maximum(alpha, 0.92 * liner)
        region += alpha[..., None] * (lash - region)
