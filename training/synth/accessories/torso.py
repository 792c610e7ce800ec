"""The torso (`sample_torso`): neck extension, shoulders and upper chest hanging from the ICT neck's lowest ring,
in clothes (crew, v-neck, shirt or hoodie with its hood) whose textures leave the skin bare above the neckline."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synth.accessories.head import NECK_BASE_AZ, NECK_BASE_Y, Topology, azimuth
from training.synth.accessories.mesh import grid_triangles, normalize, part, sweep
from training.synth.accessories.options import pick
from training.synth.parts import MeshPart

COLLARS = ("crew", "vneck", "shirt", "hoodie")

TORSO_COLUMNS = 48
# Clothing textures map u to the azimuth (about AXIS_Z, as the skin shells) and v to the height in the body frame.
CLOTH_Y_TOP, CLOTH_Y_BOTTOM = -6.0, -58.0
CLOTH_COLORS = ((0.05, 0.05, 0.06), (0.8, 0.8, 0.78), (0.12, 0.16, 0.3), (0.35, 0.05, 0.06), (0.2, 0.3, 0.18),
                (0.45, 0.45, 0.47), (0.55, 0.42, 0.25), (0.1, 0.3, 0.45), (0.6, 0.5, 0.1), (0.4, 0.2, 0.35))


@dataclass(frozen=True)
class _TorsoShape:
    half_width: float      # shoulders, cm
    half_depth: float      # chest to back, cm
    exponent: float        # superellipse cross-section
    slope_deg: float       # shoulder slope from the neck
    bottom: float          # y of the cut at the bottom


def _cloth_uv(points: np.ndarray) -> np.ndarray:
    return np.stack([(azimuth(points) + 180.0) / 360.0,
                     (points[:, 1] - CLOTH_Y_BOTTOM) / (CLOTH_Y_TOP - CLOTH_Y_BOTTOM)], 1)


def _torso_geometry(head_vertices: np.ndarray, topo: Topology, shape: _TorsoShape
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (rows x columns grid + bottom centre), triangles and uv of the body below the ICT neck ring."""
    ring = head_vertices[topo.neck_ring]
    centre = ring.mean(axis=0)
    ring_theta = np.arctan2(ring[:, 0], ring[:, 2] - centre[2])
    order = np.argsort(ring_theta)
    theta = np.linspace(-np.pi, np.pi, TORSO_COLUMNS + 1)           # last column duplicates the first (UV seam)
    ring_r = np.hypot(ring[:, 0], ring[:, 2] - centre[2])
    r0 = np.interp(theta, ring_theta[order], ring_r[order], period=2 * np.pi)
    y0 = np.interp(theta, ring_theta[order], ring[order, 1], period=2 * np.pi)
    n = shape.exponent
    big_r = (np.abs(np.sin(theta) / shape.half_width) ** n + np.abs(np.cos(theta) / shape.half_depth) ** n) ** (-1 / n)
    big_r = np.maximum(big_r, r0 + 1.0)
    # Meridian per column in the (radius, y) plane: a neck extension up inside the ICT neck, the ring (just
    # outside the ICT skin, where the collar shell ends), a Bezier out along the shoulder slope, then down.
    slope = np.tan(np.radians(shape.slope_deg))
    span = big_r - r0
    p0 = np.stack([r0 + 0.3, y0], 1)
    p1 = np.stack([r0 + 0.7 * span, y0 - 0.7 * span * slope], 1)
    p2 = np.stack([big_r + 0.5, y0 - span * slope - 0.5], 1)
    p3 = np.stack([big_r, y0 - span * slope - 5.0], 1)
    t = np.linspace(0, 1, 10)[:, None, None]
    curve = (1 - t) ** 3 * p0 + 3 * t * (1 - t) ** 2 * p1 + 3 * t ** 2 * (1 - t) * p2 + t ** 3 * p3
    top = np.stack([r0 - 0.8, y0 + 2.0], 1)[None]
    drop = np.linspace(0, 1, 5)[1:, None]
    straight = np.stack([np.broadcast_to(big_r * 0.97, (4, len(theta))),
                         p3[None, :, 1] + drop * (shape.bottom - p3[None, :, 1])], -1)
    meridian = np.concatenate([top, curve, straight])                 # (rows, columns, 2)
    verts = np.stack([meridian[..., 0] * np.sin(theta), meridian[..., 1],
                      centre[2] + meridian[..., 0] * np.cos(theta)], -1)
    rows, cols = verts.shape[:2]
    tris = grid_triangles(rows, cols)
    last = (rows - 1) * cols + np.arange(cols - 1)
    cap = np.stack([np.full(cols - 1, rows * cols), last + 1, last], 1)
    verts = np.concatenate([verts.reshape(-1, 3), [[0.0, shape.bottom, centre[2]]]])
    uv = _cloth_uv(verts)
    uv[np.arange(rows) * cols, 0] = 0.0                               # the seam columns, exactly
    uv[np.arange(rows) * cols + cols - 1, 0] = 1.0
    uv[-1, 0] = 0.5
    return verts, np.concatenate([tris, cap]).astype(np.int32), uv


def _neckline(rng: np.random.Generator, collar: str) -> np.ndarray:
    """Neckline height (body frame, cm) for 256 azimuths from -180 to 180 degrees."""
    az = (np.arange(256) + 0.5) / 256 * 360.0 - 180.0
    front = np.cos(np.radians(az) / 2) ** 2
    depth = rng.uniform(0.0, 0.8) + rng.uniform(0.0, 1.5) * front
    if collar in ("vneck", "shirt"):
        half = rng.uniform(18, 35)
        depth = depth + rng.uniform(4.0, 11.0) * np.clip(1 - np.abs(az) / half, 0, 1)
    return np.interp(np.abs(az), NECK_BASE_AZ, NECK_BASE_Y) - depth


def _cloth_textures(rng: np.random.Generator, collar: str, skin_rgb: tuple[float, float, float],
                    neckline: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body texture (skin above the neckline), collar-shell texture (transparent above it), base colour.

    Built as a map of palette indices (base, pattern, rib, string, skin) with a per-row brightness wobble.
    """
    h, w = 200, 256
    base = np.clip(np.array(CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))]) * rng.uniform(0.7, 1.2), 0, 1)
    other = np.array(CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))])
    y = CLOTH_Y_TOP - (np.arange(h)[:, None] + 0.5) / h * (CLOTH_Y_TOP - CLOTH_Y_BOTTOM)  # row 0 = top
    az = (np.arange(w)[None, :] + 0.5) / w * 360.0 - 180.0
    ids = np.zeros((h, w), np.intp)
    pattern = rng.random()
    if pattern < 0.25:  # horizontal stripes
        period = rng.uniform(1.5, 6.0)
        ids[:] = ((y % period) < period * rng.uniform(0.3, 0.6))
        pattern_color = other
    elif pattern < 0.35:  # checks
        period = rng.uniform(2.0, 5.0)
        ids[:] = ((az / 360 * 90) % period < period / 3) | ((y % period) < period / 3)
        pattern_color = 0.6 * base + 0.4 * other
    else:
        pattern_color = base
    band = rng.uniform(0.6, 1.5)
    ids[(y <= neckline[None]) & (y > neckline[None] - band)] = 2
    rib_color = ((np.array([0.85, 0.85, 0.83]) if rng.random() < 0.5 else base * 1.15) if collar == "shirt"
                 else base * rng.uniform(0.7, 0.9))
    if collar == "hoodie":  # drawstrings
        for sign in (-1, 1):
            ids[(np.abs(az - sign * 7) < 0.7) & (y < neckline[None]) & (y > neckline[None] - rng.uniform(12, 20))] = 3
    skin = y > neckline[None]
    ids[skin] = 4
    palette = np.array([base, pattern_color, rib_color, [0.85, 0.85, 0.85], skin_rgb])
    rows = np.clip(palette[None] * (1 + 0.04 * rng.standard_normal((h, 1, 1))), 0, 1)
    rows[:, 4] = skin_rgb
    rows = (rows * 255 + 0.5).astype(np.uint8)                                # (h, 5, 3)
    body = rows[np.arange(h)[:, None], ids]
    shell = np.empty((h, w, 4), np.uint8)
    shell[..., :3] = body
    shell[..., 3] = np.where(skin, 0, 255)
    return body, shell, base


def sample_torso(rng: np.random.Generator, head_vertices: np.ndarray, topo: Topology,
                 skin_rgb: tuple[float, float, float], collar: str | None) -> list[MeshPart]:
    u = rng.uniform
    shape = _TorsoShape(half_width=u(17.5, 25.0), half_depth=u(10.0, 13.0), exponent=u(2.4, 3.6),
                        slope_deg=u(8, 22), bottom=u(-55.0, -45.0))
    collar = pick(rng, collar, COLLARS, (0.45, 0.2, 0.2, 0.15), "collar")
    neckline = _neckline(rng, collar)
    body_texture, shell_texture, base = _cloth_textures(rng, collar, skin_rgb, neckline)
    verts, tris, uv = _torso_geometry(head_vertices, topo, shape)
    parts = [part("torso", verts, tris, uv=uv, color=tuple(base), texture=body_texture, specular=0.05,
                  shininess=8.0, frame="body")]
    # Clothes also cover the lower ICT neck (its flare over the shoulders) up to the neckline: an offset shell.
    shell = topo.collar
    skin_pos = head_vertices[shell.src]
    normals = shell.normals(skin_pos)
    positions = skin_pos + normals * 0.3
    line = np.interp(shell.az, np.linspace(-180, 180, 256), neckline)
    used = (positions[:, 1] < line + 0.5)[shell.triangles].any(axis=1)
    shell_uv = _cloth_uv(positions)
    shell_uv[:, 0] = shell.u
    parts.append(part("torso_collar", positions, shell.triangles[used], normals, uv=shell_uv, color=tuple(base),
                      texture=shell_texture, specular=0.05, shininess=8.0, frame="body"))
    if collar == "hoodie":
        parts.append(_hood(rng, head_vertices, topo, tuple(base)))
    return parts


def _hood(rng: np.random.Generator, head_vertices: np.ndarray, topo: Topology, color: tuple) -> MeshPart:
    """A hoodie's hood lying folded on the shoulders behind the neck: a flattened tube along the ring's back."""
    ring = head_vertices[topo.neck_ring]
    centre = ring.mean(axis=0)
    theta_ring = np.arctan2(ring[:, 0], ring[:, 2] - centre[2])
    order = np.argsort(theta_ring)
    theta = np.radians(np.linspace(rng.uniform(55, 80), 360 - rng.uniform(55, 80), 24))
    theta = (theta + np.pi) % (2 * np.pi) - np.pi
    radius = rng.uniform(2.0, 3.0)
    r = np.interp(theta, theta_ring[order], np.hypot(ring[order, 0], ring[order, 2] - centre[2]),
                  period=2 * np.pi) + radius * 0.8
    y = np.interp(theta, theta_ring[order], ring[order, 1], period=2 * np.pi) + radius * 0.4
    path = np.stack([r * np.sin(theta), y, centre[2] + r * np.cos(theta)], 1)
    tangent = normalize(np.gradient(path, axis=0))
    normal = normalize(np.cross(tangent, [0.0, 1.0, 0.0]))
    a = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    profile = np.stack([radius * 1.3 * np.cos(a), radius * 0.7 * np.sin(a)], 1)
    verts, tris = sweep(path, normal, np.cross(tangent, normal), profile, closed=False)
    return part("hood", verts, tris, color=color, specular=0.05, shininess=8.0, frame="body")
