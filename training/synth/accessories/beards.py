"""Beards and moustaches (`sample_beard`): offset shells over regions derived from the head's own iBUG-68
landmarks, kept off the lips and the mouth opening."""
from __future__ import annotations

import cv2
import numpy as np

from training.synth.accessories.hair_colors import hair_rgb, strand_texture
from training.synth.accessories.head import Topology
from training.synth.accessories.mesh import part, smoothstep
from training.synth.parts import MeshPart

BEARD_STYLES = ("goatee", "moustache", "full", "chin_strap", "circle")
BEARD_STYLE_WEIGHTS = (0.2, 0.2, 0.35, 0.1, 0.15)


def _lip_distance(points: np.ndarray, polygons: list[np.ndarray], reach: float, cell: float = 0.04) -> np.ndarray:
    """Signed frontal distance (cm, < 0 inside) of (N, 2) points to the union of lip polygons, from distance
    transforms of a raster around the mouth; points farther than `reach` from the mouth's box get `reach` (a lower
    bound). The result errs on the near side by a cell."""
    allp = np.concatenate(polygons)
    lo = allp.min(axis=0) - reach
    size = np.ceil((allp.max(axis=0) + reach - lo) / cell).astype(int) + 1
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round((p - lo) / cell).astype(np.int32) for p in polygons], 1)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    ij = np.round((points - lo) / cell).astype(int)
    in_box = ((ij >= 0) & (ij < size)).all(axis=1)
    i, j = ij[in_box, 0], ij[in_box, 1]
    out = np.full(len(points), reach)
    out[in_box] = np.where(mask[j, i] > 0, -inside[j, i] - 1.0, outside[j, i] - 1.0) * cell
    return np.minimum(out, reach)


def _polyline_distance(points: np.ndarray, polyline: np.ndarray, closed: bool = False) -> np.ndarray:
    """Distance of (N, D) points to a (P, D) polyline."""
    a = polyline if closed else polyline[:-1]
    b = np.roll(polyline, -1, axis=0) if closed else polyline[1:]
    ab = b - a
    t = np.clip(np.einsum("npd,pd->np", points[:, None, :] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-12),
                0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None, :] - nearest, axis=2).min(axis=1)


def _beard_field(style: str, rng: np.random.Generator, pos: np.ndarray, az: np.ndarray,
                 lm: np.ndarray) -> np.ndarray:
    """Signed distance into the beard region, roughly cm (> 0: beard), from the head's own iBUG-68 landmarks."""
    u = rng.uniform
    x, y = pos[:, 0], pos[:, 1]
    nose_y = lm[31:36, 1].mean()
    mouth_x = 0.5 * (lm[48, 0] + lm[54, 0])
    mouth_half = 0.5 * abs(lm[54, 0] - lm[48, 0])
    corner_y = 0.5 * (lm[48, 1] + lm[54, 1])
    ax = np.abs(x - mouth_x)
    # Jaw contour height as a function of |x| (each side from its own landmarks).
    right, left = lm[8::-1], lm[8:17]
    jaw_y = np.where(x < 0, np.interp(-x, -right[:, 0], right[:, 1]), np.interp(x, left[:, 0], left[:, 1]))
    jaw_end_x = 0.5 * (abs(lm[0, 0]) + abs(lm[16, 0]))
    jaw_end_y = 0.5 * (lm[0, 1] + lm[16, 1])

    def moustache(droop: float, ext: float) -> np.ndarray:
        return np.minimum.reduce([nose_y - 0.3 - y, mouth_half + ext - ax, y - (corner_y - droop)])

    def goatee(half_width: float, under: float) -> np.ndarray:
        return np.minimum.reduce([half_width - ax, lm[57, 1] + 0.4 - y, y - (lm[8, 1] - under)])

    if style == "moustache":
        g = moustache(u(-0.3, 1.2), u(0.1, 0.8))
    elif style == "goatee":
        g = goatee(mouth_half * u(0.5, 1.1), u(0.5, 2.0))
    elif style == "circle":
        ext = u(0.2, 0.7)
        g = np.maximum(moustache(u(1.0, 2.5), ext), goatee(mouth_half + ext, u(0.5, 2.0)))
    elif style == "chin_strap":
        line = np.concatenate([lm[0:1] + [0.2, u(1.0, 2.5), -0.8], lm[0:17], lm[16:17] + [-0.2, 0, 0]])
        line[-1, 1] = line[0, 1]
        line[-1, 0] = -line[0, 0]
        line[-1, 2] = line[0, 2]
        g = u(0.8, 1.6) - _polyline_distance(pos, line)
    else:  # full
        a_x, a_y = mouth_half + u(0.4, 1.2), nose_y - u(0.0, 0.8)
        b_x, b_y = jaw_end_x + 0.4, jaw_end_y + u(-0.5, 1.8)
        cheek_y = np.interp(ax, [0.0, a_x, b_x], [nose_y - 0.3, a_y, b_y])
        neck_drop = u(1.5, 4.0)
        g = np.minimum(cheek_y - y, y - (jaw_y - neck_drop))
    return np.minimum(g, (84.0 - np.abs(az)) * 0.1)


def sample_beard(rng: np.random.Generator, style: str, head_vertices: np.ndarray, landmarks: np.ndarray,
                 topo: Topology, color_key: tuple[str, int]) -> MeshPart | None:
    shell = topo.beard
    base = head_vertices[shell.src]
    normals = shell.normals(base)
    # Beards never cover the lips, let alone the mouth opening: stay outside the outer and the inner lip contours
    # (with extreme shapes the inner contour can poke out of the outer one). Only vertices near the mouth need
    # exact distances; the rest are far outside.
    lips = [landmarks[48:60, :2], landmarks[60:68, :2]]
    lip_margin = rng.uniform(0.1, 0.3)
    reach = 1.5
    lip_distance = _lip_distance(base[:, :2], lips, reach)
    field = np.minimum(_beard_field(style, rng, base, shell.az, landmarks),
                       np.where(lip_distance >= reach, 10.0, lip_distance) - lip_margin)
    thickness = rng.uniform(0.2, 0.6) if style in ("moustache", "chin_strap") else rng.uniform(0.3, 1.5)
    ramp = rng.uniform(0.6, 1.2)
    offset = normals * (0.03 + thickness * smoothstep(field / ramp))[:, None]
    positions = base + offset
    corners = shell.triangles
    keep = field[corners].max(axis=1) > 0
    # The offset moves vertices sideways too. A triangle whose corners all stay farther from the lips (in a frontal
    # view) than its longest edge cannot touch them; drop the others.
    clearance = (lip_distance - np.linalg.norm(offset[:, :2], axis=1))[corners].min(axis=1)
    xy = positions[corners][..., :2]
    longest = np.linalg.norm(xy - np.roll(xy, 1, axis=1), axis=2).max(axis=1)
    keep &= clearance > longest
    if not keep.any():
        return None
    # u follows the azimuth, not x: the sides of the jaw face sideways and would stretch an x-mapped texture.
    uv = np.stack([np.clip((shell.az + 95.0) / 190.0, 0, 1), np.clip((field + 0.3) / 2.5, 0, 1)], 1)
    return part("beard", positions, corners[keep], normals, uv=uv, color=tuple(hair_rgb(color_key)),
                texture=strand_texture("beard", color_key), specular=0.1, shininess=10.0)
