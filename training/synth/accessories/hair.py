"""Hair for one head (`sample_hair`): a cap (the skull offset along its normals inside the hairline),
alpha-textured sheets (fringes, bob and long curtains, as slabs with thickness) and cards (loose and face-framing
locks) hanging with gravity outside the head and torso, and sometimes a bun."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synth.accessories.hair_colors import hair_rgb, strand_texture
from training.synth.accessories.hairline import HairlineParams, hair_field, sample_hairline
from training.synth.accessories.head import AXIS_Z, SKIN_END, Topology, radial_bins, radial_lookup, radial_map
from training.synth.accessories.mesh import frame_from_axis, grid_triangles, lathe, merge, normalize, part, smoothstep
from training.synth.parts import MeshPart

HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "bun", "receding")
HAIR_STYLE_WEIGHTS = (0.15, 0.12, 0.24, 0.18, 0.18, 0.06, 0.07)


@dataclass
class _Cap:
    positions: np.ndarray     # (K,) shell vertices (all, including unused), offset
    normals: np.ndarray
    field: np.ndarray         # hair field per shell vertex, cm
    triangles: np.ndarray     # used triangles


def _hair_cap(head_vertices: np.ndarray, topo: Topology, hl: HairlineParams, color_key: tuple[str, int]
              ) -> tuple[MeshPart, _Cap]:
    shell = topo.cap
    base = head_vertices[shell.src].astype(np.float64)
    normals = shell.normals(base)
    field = hair_field(shell.az, shell.lat, shell.radius, shell.ear, hl)
    # Volume grows from the hairline up; the floor keeps even the hairline off the skin (no z-fighting).
    offset = 0.04 + hl.thickness * smoothstep(field / hl.ramp)
    positions = base + normals * offset[:, None]
    used = field[shell.triangles].max(axis=1) > 0
    tris = shell.triangles[used]
    v = np.clip((field + 1.0) / 12.0, 0.0, 1.0)  # rows below v = 1/12 (outside the hairline) are transparent
    uv = np.stack([np.clip(shell.u, 0, 1), v], 1)
    cap_part = part("hair_cap", positions, tris, normals, uv=uv, color=tuple(hair_rgb(color_key)),
                    texture=strand_texture("cap", color_key), specular=0.15, shininess=12.0)
    return cap_part, _Cap(positions=positions, normals=normals, field=field, triangles=tris)


def _hair_bun(rng: np.random.Generator, cap: _Cap, topo: Topology, color_key: tuple[str, int]) -> MeshPart:
    shell = topo.cap
    target_az = rng.uniform(150, 180) * rng.choice([-1, 1])
    target_lat = rng.uniform(15.0, 55.0)
    score = np.abs((shell.az - target_az + 180) % 360 - 180) / 30 + np.abs(shell.lat - target_lat) / 10
    i = int(np.argmin(score))
    radius = rng.uniform(2.8, 4.2)
    verts, tris, uv = lathe(np.stack([radius * np.sin(np.linspace(0, np.pi, 11)),
                                      -radius * np.cos(np.linspace(0, np.pi, 11))], 1), 20)
    verts[:, 1] *= rng.uniform(0.75, 0.95)
    # Orient the bun's pole along the cap normal and seat it half sunk into the cap.
    n = cap.normals[i]
    R = frame_from_axis(n)
    verts = verts @ R.T + cap.positions[i] + n * radius * 0.45
    uv[:, 1] = 0.3 + 0.7 * uv[:, 1]  # stay clear of the transparent hairline rows
    return part("hair_bun", verts, tris, uv=uv, color=tuple(hair_rgb(color_key)),
                texture=strand_texture("cap", color_key), specular=0.15, shininess=12.0)


def _hang_paths(roots: np.ndarray, root_normals: np.ndarray, lengths: np.ndarray, drift: np.ndarray,
                rmap: np.ndarray, clearance: np.ndarray, segments: int = 16,
                stiffness: np.ndarray | float = 0.5) -> np.ndarray:
    """(C, segments+1, 3) strand paths hanging from `roots` under gravity, kept outside the radial map.

    A strand leaves the scalp away from the crown and bends down; where it would enter the head (or the torso)
    it is pushed out radially and slides along the surface instead.
    """
    c = len(roots)
    down = np.array([0.0, -1.0, 0.0])
    radial = normalize(np.concatenate([roots[:, :1], np.zeros((c, 1)), roots[:, 2:] - AXIS_Z], 1))
    start = down + 0.4 * radial
    d = normalize(start - np.sum(start * root_normals, 1, keepdims=True) * root_normals)
    seg = (lengths / segments)[:, None]
    stiffness = np.broadcast_to(stiffness, (c,))[:, None]
    points = [roots + root_normals * 0.05]
    for k in range(segments):
        t = (k + 1) / segments
        d = normalize(d + (1 - stiffness * (1 - t)) * 0.45 * down + drift)
        p = points[-1] + d * seg
        r = np.hypot(p[:, 0], p[:, 2] - AXIS_Z)
        need = radial_lookup(rmap, p) + clearance * (0.4 + 0.6 * t)
        pushed = r < need
        scale = np.where(pushed, need / np.maximum(r, 1e-6), 1.0)
        p[:, 0] *= scale
        p[:, 2] = AXIS_Z + (p[:, 2] - AXIS_Z) * scale
        # A pushed strand slides along the surface: drop the inward part of its direction, keep the rest.
        out = normalize(np.stack([p[:, 0], np.zeros(c), p[:, 2] - AXIS_Z], 1))
        inward = np.minimum(np.sum(d * out, 1, keepdims=True), 0.0)
        d = np.where(pushed[:, None], normalize(d - inward * out), d)
        points.append(p)
    return np.stack(points, 1)


def _card_mesh(paths: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strips along each path, 3 vertices across (the middle one bulges outwards), tapering to the tip."""
    c, n = paths.shape[:2]
    tangent = normalize(np.gradient(paths, axis=1))
    out = normalize(np.concatenate([paths[..., :1], np.zeros_like(paths[..., :1]), paths[..., 2:] - AXIS_Z], -1))
    side = normalize(np.cross(tangent, out))
    out = normalize(np.cross(side, tangent))
    t = np.linspace(0, 1, n)[None, :, None]
    half = widths[:, None, None] / 2 * (1 - 0.55 * t)
    verts = np.stack([paths - side * half, paths + out * half * 0.35, paths + side * half], 2)
    tris = (grid_triangles(n, 3)[None] + (np.arange(c) * n * 3)[:, None, None]).reshape(-1, 3)
    u = np.broadcast_to(np.array([0.0, 0.5, 1.0]), (c, n, 3))
    v = np.broadcast_to(1 - t, (c, n, 3))
    return verts.reshape(-1, 3), tris, np.stack([u, v], -1).reshape(-1, 2)


def _sheet_mesh(paths: np.ndarray, thickness: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A slab of hair through neighbouring paths (columns in order): inner and outer curtains joined at the sides.

    Seen edge-on (side hair in a frontal view) a single curtain would be a line; the slab shows its thickness.
    """
    c, n = paths.shape[:2]
    out = normalize(np.concatenate([paths[..., :1], np.zeros_like(paths[..., :1]), paths[..., 2:] - AXIS_Z], -1))
    grow = thickness * smoothstep(np.linspace(0, 1, n) / 0.3)[None, :, None]
    inner = paths.transpose(1, 0, 2)                       # (n, c, 3): rows along the strands
    outer = (paths + out * grow).transpose(1, 0, 2)
    u, v = np.meshgrid(np.linspace(0, 1, c), 1 - np.linspace(0, 1, n))
    grid_uv = np.stack([u, v], -1).reshape(-1, 2)
    meshes, uvs = [(inner.reshape(-1, 3), grid_triangles(n, c)), (outer.reshape(-1, 3), grid_triangles(n, c))], \
        [grid_uv, grid_uv]
    for col in (0, c - 1):
        edge = np.stack([inner[:, col], outer[:, col]], 1)  # (n, 2, 3)
        meshes.append((edge.reshape(-1, 3), grid_triangles(n, 2)))
        eu, ev = np.meshgrid([0.0, 0.04], 1 - np.linspace(0, 1, n))
        uvs.append(np.stack([eu, ev], -1).reshape(-1, 2))
    verts, tris = merge(meshes)
    return verts, tris, np.concatenate(uvs)


def _sheet_roots(cap: _Cap, topo: Topology, az_values: np.ndarray, field_target: np.ndarray | float) -> np.ndarray:
    """Cap vertex nearest to each (azimuth, hair field) target: the root row of a sheet."""
    field_target = np.broadcast_to(np.asarray(field_target, float), az_values.shape)
    near = np.flatnonzero((cap.field > field_target.min() - 1.5) & (cap.field < field_target.max() + 1.5)
                          & (topo.cap.u < 1.0))
    if len(near) == 0:
        near = np.flatnonzero(cap.field > 0)
    daz = np.abs((topo.cap.az[near][None, :] - az_values[:, None] + 180.0) % 360.0 - 180.0)
    score = np.radians(daz) * 9.0 + np.abs(cap.field[near][None, :] - field_target[:, None])
    return near[np.argmin(score, axis=1)]


def _choose_roots(rng: np.random.Generator, cap: _Cap, topo: Topology, count: int, az_range: tuple[float, float],
                  field_range: tuple[float, float]) -> np.ndarray:
    """Random cap vertices with |azimuth| in az_range and hair field in field_range."""
    a = np.abs(topo.cap.az)
    ok = (a >= az_range[0]) & (a <= az_range[1]) & (cap.field >= field_range[0]) & (cap.field <= field_range[1])
    candidates = np.flatnonzero(ok & (topo.cap.u < 1.0))
    if len(candidates) == 0:
        return candidates
    return rng.choice(candidates, size=min(count, len(candidates)), replace=False)


def _smooth_noise(rng: np.random.Generator, x: np.ndarray, amplitude: float, waves: int = 3) -> np.ndarray:
    """Sum of a few random low-frequency sines over x in [0, 1]."""
    out = np.zeros_like(x, dtype=float)
    for k in range(1, waves + 1):
        out += rng.uniform(-1, 1) / k * np.sin(np.pi * k * x * rng.uniform(0.8, 1.6) + rng.uniform(0, 2 * np.pi))
    return amplitude * out


def _wrap_az(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


@dataclass
class _StrandGroup:
    """Roots and hanging parameters of one sheet (a slab through its roots in order) or one set of loose cards."""

    kind: str                  # "sheet" | "cards"
    roots: np.ndarray          # cap vertex indices
    lengths: np.ndarray
    drift: np.ndarray          # (n, 3) per-step pull besides gravity
    clearance: float
    stiffness: float = 0.5
    size: np.ndarray | float = 0.0   # slab thickness (sheet) or card widths (cards)


def _hair_strands(rng: np.random.Generator, style: str, cap: _Cap, topo: Topology, rmap: np.ndarray,
                  brow_y: float, color_key: tuple[str, int]) -> list[MeshPart]:
    """Fringe, side and back sheets and loose cards for the styles that have hair hanging from the cap."""
    u = rng.uniform
    groups: list[_StrandGroup] = []

    def sheet(az_values, field_target, bottom_y, drift, clearance, stiffness=0.5, noise=1.5, thickness=0.0):
        idx = _sheet_roots(cap, topo, az_values, field_target)
        x = np.linspace(0, 1, len(idx))
        lengths = np.maximum(cap.positions[idx, 1] - bottom_y + _smooth_noise(rng, x, noise), 1.0) * 1.1
        groups.append(_StrandGroup("sheet", idx, lengths, np.broadcast_to(drift, (len(idx), 3)), clearance,
                                   stiffness, thickness))

    def loose(idx, bottom_y, drift, widths, clearance):
        if len(idx):
            lengths = (np.maximum(cap.positions[idx, 1] - bottom_y, 1.5) * u(1.0, 1.15)
                       + rng.uniform(-1.5, 1.5, len(idx)))
            groups.append(_StrandGroup("cards", idx, lengths, drift, clearance, 0.5, widths))

    p_fringe = {"short": 0.25, "medium": 0.5, "long": 0.45}.get(style, 0.0)
    if rng.random() < p_fringe:
        # Fringe: a sheet from the front hairline ending between mid-forehead and the upper eyelids.
        half = u(28, 50)
        az = np.linspace(-half, half, int(half / 2.5))
        drift = np.array([u(-0.08, 0.08), 0.0, 0.0])
        sheet(az, u(1.2, 3.0), brow_y + u(-2.2, 1.8), drift, u(0.25, 0.6), stiffness=0.8, noise=0.8,
              thickness=u(0.2, 0.5))
    if style in ("medium", "long"):
        bottom = u(-9.0, -2.0) if style == "medium" else u(-34.0, -16.0)
        side_field, back_field = u(2.0, 4.0), u(6.0, 10.0)
        thickness = u(0.8, 1.6) if style == "medium" else u(1.2, 2.5)

        def root_field(az):  # roots high on the back of the head, near the hairline at the sides
            return side_field + (back_field - side_field) * smoothstep((np.abs(az) - 70.0) / 60.0)

        if style == "medium":
            side = u(55, 70)
            az = _wrap_az(np.linspace(side, 360 - side, int((360 - 2 * side) / 6)))
            sheet(az, root_field(az), bottom, np.zeros(3), u(0.3, 0.8), thickness=thickness)
        else:
            # Long hair parts at the shoulders: side curtains fall in front of them, the back curtain behind.
            front = u(55, 68)
            for sign in (-1, 1):
                az = sign * np.linspace(front, 100, 7)
                sheet(az, root_field(az), bottom + u(0, 6), np.array([0.0, 0.0, 0.05]), u(0.3, 0.8),
                      thickness=thickness)
            az = _wrap_az(np.linspace(96, 264, 30))
            sheet(az, root_field(az), bottom, np.array([0.0, 0.0, -0.04]), u(0.3, 0.8), thickness=thickness)
        # Loose cards over the curtains break up their silhouette.
        idx = _choose_roots(rng, cap, topo, int(rng.integers(8, 20)), (60, 180), (2.0, 7.0))
        forward = np.where(np.abs(topo.cap.az[idx]) < 100, 0.05, -0.04)
        drift = np.stack([np.zeros(len(idx)), np.zeros(len(idx)), forward], 1)
        loose(idx, bottom, drift, rng.uniform(2.0, 3.5, len(idx)), u(0.6, 1.0))
        # Face-framing locks from the front hairline down past the cheeks and jaw.
        idx = _choose_roots(rng, cap, topo, int(rng.integers(4, 12)), (25, 62), (0.8, 3.0))
        lock_bottom = max(bottom, u(-14.0, -6.0))
        side_drift = np.sign(cap.positions[idx, 0])[:, None] * np.array([0.04, 0.0, 0.0]) + [0.0, 0.0, 0.02]
        loose(idx, lock_bottom, side_drift, rng.uniform(1.6, 2.8, len(idx)), u(0.25, 0.6))
    if not groups:
        return []

    # One vectorised hanging pass for every strand of every group.
    roots = np.concatenate([g.roots for g in groups])
    counts = [len(g.roots) for g in groups]
    per_root = lambda values: np.concatenate([np.broadcast_to(v, (n,)) for v, n in zip(values, counts)])  # noqa: E731
    paths = _hang_paths(cap.positions[roots], cap.normals[roots], np.concatenate([g.lengths for g in groups]),
                        np.concatenate([g.drift for g in groups]), rmap, per_root([g.clearance for g in groups]),
                        stiffness=per_root([g.stiffness for g in groups]))
    sheets, cards = [], []
    for g, p in zip(groups, np.split(paths, np.cumsum(counts)[:-1])):
        if g.kind == "sheet":
            sheets.append(_sheet_mesh(p, float(g.size)))
        else:
            cards.append(_card_mesh(p, np.asarray(g.size)))
    parts = []
    color = tuple(hair_rgb(color_key))
    for name, meshes, kind in (("hair_sheets", sheets, "sheet"), ("hair_cards", cards, "card")):
        if meshes:
            verts, tris = merge([(v, t) for v, t, _ in meshes])
            parts.append(part(name, verts, tris, uv=np.concatenate([uv for _, _, uv in meshes]), color=color,
                              texture=strand_texture(kind, color_key), specular=0.15, shininess=12.0,
                              double_sided=True))
    return parts


def sample_hair(rng: np.random.Generator, style: str, head_vertices: np.ndarray, landmarks: np.ndarray,
                topo: Topology, body_parts: list[MeshPart], color_key: tuple[str, int]) -> list[MeshPart]:
    """The cap, bun and hanging strands of one of HAIR_STYLES ("bald": none), in the head frame.

    `body_parts` (the torso, in the body frame at its neutral pose) are what hanging hair must stay outside of,
    besides the head and the cap.
    """
    if style == "bald":
        return []
    hairline = sample_hairline(rng, style)
    cap_part, cap = _hair_cap(head_vertices, topo, hairline, color_key)
    parts = [cap_part]
    if style == "bun":
        parts.append(_hair_bun(rng, cap, topo, color_key))
    if style in ("short", "medium", "long"):
        # Hair must stay outside the head, its cap and (at the neutral body pose) the torso.
        groups = [(head_vertices[:SKIN_END], topo.skin_bins), (cap.positions, radial_bins(cap.positions))]
        groups += [(t.vertices, radial_bins(t.vertices)) for t in body_parts]
        brow_y = float(landmarks[17:27, 1].mean())
        parts += _hair_strands(rng, style, cap, topo, radial_map(groups), brow_y, color_key)
    return parts
