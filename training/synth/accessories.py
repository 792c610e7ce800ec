"""Accessories for synthetic heads: hair, beards, glasses, torso and hand-held occluders, as `MeshPart`s.

The ICT head is bald and ends at the neck (it has ears). These generators add what real faces have around them:
- hair: a cap (the skull offset along its normals inside a randomised hairline), alpha-textured sheets (fringes,
  bob and long curtains, as slabs with thickness) and cards (loose and face-framing locks) hanging with gravity
  outside the head and torso, and sometimes a bun;
- beards and moustaches: offset shells over regions derived from the iBUG-68 landmarks of the given head;
- glasses: swept rims, bridge and temples placed from the eye and nose-bridge landmarks, optional lenses;
- a torso (neck extension, shoulders, upper chest) in clothes, hanging from the ICT neck's lowest ring;
- occluders in camera space: a hand, a microphone, a mug or a phone in front of the face.

Shells that follow the skin (hair cap, beard) use a fixed subset of ICT vertices, so topology and per-vertex region
coordinates (taken on the neutral mesh, so regions stick to the skin through identity and expression) are built
once per process by `_topology`; a sample only moves vertices, recomputes normals and draws thresholds.
Strand textures are procedural and cached per process. Units: cm; frames are described in `parts.py`.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, fields

import cv2
import numpy as np
import scipy.ndimage
import scipy.sparse

from core import geometry
from core.facemodel import FaceModel, HEAD_AND_NECK_VERTICES
from core.layouts import load_layout
from training.synth.parts import MeshPart

log = logging.getLogger(__name__)

SKIN_END = HEAD_AND_NECK_VERTICES.stop   # ICT face + head-and-neck vertices; later ids are sockets, teeth, eyes
EYELASH_VERTICES = slice(25351, 26719)
AXIS_Z = 0.5                             # vertical axis (x=0, z=AXIS_Z) through the skull for azimuths, cm
HEAD_CENTER = np.array([0.0, 4.0, AXIS_Z])  # centre for hairline latitudes (ICT neutral skull), cm
EAR_CENTER = np.array([8.3, 1.3, -0.4])  # ICT neutral ear (x mirrored for the right ear), cm
EAR_RADII = np.array([1.8, 3.1, 2.1])

HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "bun", "receding")
HAIR_STYLE_WEIGHTS = (0.15, 0.12, 0.24, 0.18, 0.18, 0.06, 0.07)
# Albedo (linear-ish RGB) per hair colour name; a sample scales it by a small brightness jitter.
HAIR_COLORS: dict[str, tuple[float, float, float]] = {
    "black": (0.025, 0.022, 0.02), "dark_brown": (0.07, 0.045, 0.03), "brown": (0.17, 0.1, 0.055),
    "blonde": (0.55, 0.42, 0.24), "red": (0.38, 0.13, 0.05), "grey": (0.36, 0.35, 0.34),
    "white": (0.72, 0.71, 0.68), "dyed_pink": (0.65, 0.2, 0.4), "dyed_blue": (0.1, 0.22, 0.55),
    "dyed_purple": (0.3, 0.12, 0.45),
}
HAIR_COLOR_WEIGHTS = (0.3, 0.25, 0.16, 0.1, 0.05, 0.07, 0.03, 0.013, 0.013, 0.014)
NATURAL_COLORS = ("black", "dark_brown", "brown", "blonde", "red", "grey", "white")
BRIGHTNESS_LEVELS = (0.8, 1.0, 1.25)
BEARD_STYLES = ("goatee", "moustache", "full", "chin_strap", "circle")
BEARD_STYLE_WEIGHTS = (0.2, 0.2, 0.35, 0.1, 0.15)
GLASSES_SHAPES = ("rect", "round", "cateye", "aviator")
COLLARS = ("crew", "vneck", "shirt", "hoodie")
OCCLUDERS = ("hand", "microphone", "mug", "phone")
OCCLUDER_WEIGHTS = (0.5, 0.15, 0.15, 0.2)


@dataclass(frozen=True)
class AccessoryParams:
    """Probabilities and optional forced choices for `sample_accessories` (None: drawn at random)."""

    p_beard: float = 0.3
    p_glasses: float = 0.25
    p_sunglasses: float = 0.2        # of the glasses: ~5% of all samples
    p_lens: float = 0.6              # clear or tinted lenses in (non-sun) glasses
    p_torso: float = 1.0
    hair_style: str | None = None    # one of HAIR_STYLES
    hair_color: str | None = None    # one of HAIR_COLORS
    beard_style: str | None = None   # one of BEARD_STYLES, or "none"
    glasses: str | None = None       # one of GLASSES_SHAPES, "sunglasses", or "none"
    collar: str | None = None        # one of COLLARS

    @classmethod
    def coerce(cls, params: AccessoryParams | dict | None) -> AccessoryParams:
        if params is None:
            return cls()
        if isinstance(params, cls):
            return params
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"unknown accessory parameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**params)


# ----------------------------------------------------------------------------------------------------------------
# Mesh helpers


def _grid_triangles(rows: int, cols: int, wrap_cols: bool = False, wrap_rows: bool = False) -> np.ndarray:
    """Two triangles per cell of a row-major rows x cols vertex grid; wrap joins last to first column/row."""
    return _grid_triangles_cached(rows, cols, wrap_cols, wrap_rows).copy()


@functools.lru_cache(maxsize=256)
def _grid_triangles_cached(rows: int, cols: int, wrap_cols: bool, wrap_rows: bool) -> np.ndarray:
    nc = cols if wrap_cols else cols - 1
    nr = rows if wrap_rows else rows - 1
    r, c = np.meshgrid(np.arange(nr), np.arange(nc), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    lower = ((r + 1) % rows) * cols
    d = lower + c
    e = lower + (c + 1) % cols
    return np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3),
                           np.stack([b, d, e], -1).reshape(-1, 3)]).astype(np.int32)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _lathe(profile: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface of revolution about +Y of a (P, 2) profile of (radius, y); returns vertices, triangles, uv.

    A profile that starts and ends at radius 0 gives a closed surface; a repeated profile point gives a crease.
    """
    angles = np.linspace(0, 2 * np.pi, segments + 1)  # the duplicated seam column carries u = 1
    r, y = profile[:, 0:1], profile[:, 1:2]
    verts = np.stack([r * np.cos(angles), np.broadcast_to(y, (len(profile), segments + 1)),
                      r * np.sin(angles)], -1).reshape(-1, 3)
    tris = _grid_triangles(len(profile), segments + 1)
    seg = np.linalg.norm(np.diff(profile, axis=0), axis=1)
    v = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-9)
    uv = np.stack(np.meshgrid(angles / (2 * np.pi), 1 - v), -1).reshape(-1, 2)
    return verts, tris, uv


def _capsule_profile(radius: float, length: float, rings: int = 4, tip_radius: float | None = None) -> np.ndarray:
    """(radius, y) profile of a capsule along +Y from y=0 to y=length (tapering to tip_radius)."""
    r1 = radius if tip_radius is None else tip_radius
    a = np.linspace(-np.pi / 2, 0, rings + 1)
    bottom = np.stack([radius * np.cos(a), radius + radius * np.sin(a)], 1)
    a = np.linspace(0, np.pi / 2, rings + 1)
    top = np.stack([r1 * np.cos(a), length - r1 + r1 * np.sin(a)], 1)
    return np.concatenate([bottom, top])


def _superellipsoid(radii: np.ndarray, e_lat: float, e_lon: float, n_lat: int = 10,
                    n_lon: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Superellipsoid centred at 0 with half-axes `radii` (x, y, z); y is the pole axis."""
    def spow(c, e):
        return np.sign(c) * np.abs(c) ** e

    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 1)[:, None]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)[None, :]
    cl = spow(np.cos(lat), e_lat)
    verts = np.stack([radii[0] * cl * spow(np.cos(lon), e_lon),
                      np.broadcast_to(radii[1] * spow(np.sin(lat), e_lat), (n_lat + 1, n_lon)),
                      radii[2] * cl * spow(np.sin(lon), e_lon)], -1).reshape(-1, 3)
    return verts, _grid_triangles(n_lat + 1, n_lon, wrap_cols=True)


def _sweep(path: np.ndarray, normal: np.ndarray, binormal: np.ndarray, profile: np.ndarray,
           closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Tube along `path` (P, 3) with a (Q, 2) cross-section in the (normal, binormal) frame; open ends are capped."""
    verts = (path[:, None, :] + profile[None, :, 0, None] * normal[:, None, :]
             + profile[None, :, 1, None] * binormal[:, None, :]).reshape(-1, 3)
    p, q = len(path), len(profile)
    tris = _grid_triangles(p, q, wrap_cols=True, wrap_rows=closed)
    if not closed:
        ring = np.arange(q)
        start, end = len(verts), len(verts) + 1
        caps = [np.stack([np.full(q, start), (ring + 1) % q, ring], 1),
                np.stack([np.full(q, end), (p - 1) * q + ring, (p - 1) * q + (ring + 1) % q], 1)]
        verts = np.concatenate([verts, path[[0, -1]]])
        tris = np.concatenate([tris, *caps]).astype(np.int32)
    return verts, tris


def _merge(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    verts, tris, offset = [], [], 0
    for v, t in meshes:
        verts.append(v)
        tris.append(t + offset)
        offset += len(v)
    return np.concatenate(verts).astype(np.float32), np.concatenate(tris).astype(np.int32)


def _part(name: str, vertices: np.ndarray, triangles: np.ndarray, normals: np.ndarray | None = None,
          **kwargs) -> MeshPart:
    vertices = np.ascontiguousarray(vertices, np.float32)
    triangles = np.ascontiguousarray(triangles, np.int32)
    if normals is None:
        normals = geometry.vertex_normals(vertices, triangles)
    uv = kwargs.pop("uv", None)
    if uv is not None:
        uv = np.clip(uv, 0.0, 1.0).astype(np.float32)
    return MeshPart(name=name, vertices=vertices, triangles=triangles, normals=np.asarray(normals, np.float32),
                    uv=uv, **kwargs)


def _rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rodrigues rotation matrix about `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _azimuth(points: np.ndarray) -> np.ndarray:
    """Degrees about the skull's vertical axis: 0 in front (+Z), +90 at the subject's left (+X), +-180 behind."""
    return np.degrees(np.arctan2(points[..., 0], points[..., 2] - AXIS_Z))


def _skin_rgb(skin) -> tuple[float, float, float]:
    """Accept None (a mid tone), an RGB triple or array (0..1 or 0..255), or an object with an albedo attribute
    (skin_rgb as in `appearance.SkinParams`, albedo, albedo_rgb, base_color, color, rgb)."""
    if skin is None:
        return (0.6, 0.42, 0.33)
    for attr in ("skin_rgb", "albedo", "albedo_rgb", "base_color", "color", "rgb"):
        if hasattr(skin, attr):
            skin = getattr(skin, attr)
            break
    try:
        rgb = np.asarray(skin, float).reshape(-1)[:3]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"skin must be an RGB triple or have an albedo-like attribute, got {type(skin).__name__}"
                        ) from exc
    if rgb.shape != (3,):
        raise TypeError(f"skin must give 3 colour channels, got {rgb.shape}")
    if rgb.max() > 1.5:
        rgb = rgb / 255.0
    return tuple(float(c) for c in np.clip(rgb, 0, 1))


# ----------------------------------------------------------------------------------------------------------------
# Per-process precomputation


@dataclass(frozen=True)
class _Shell:
    """A skin-following shell: a vertex subset of the head (with UV-seam duplicates) and its triangles."""

    src: np.ndarray          # (K,) head vertex id per shell vertex
    unique: np.ndarray       # (K,) index of each shell vertex among the distinct head vertices (seams share)
    triangles: np.ndarray    # (T, 3) into the K shell vertices
    incidence: scipy.sparse.csr_matrix  # (distinct vertices, T), for normals that agree across UV seams
    az: np.ndarray           # (K,) neutral azimuth, degrees
    lat: np.ndarray          # (K,) neutral latitude about HEAD_CENTER, degrees
    radius: np.ndarray       # (K,) neutral distance from HEAD_CENTER, cm (turns degrees into cm)
    ear: np.ndarray          # (K,) neutral distance outside the ear ellipsoid, roughly cm
    u: np.ndarray            # (K,) texture u from the azimuth (seam-safe)

    def normals(self, positions: np.ndarray) -> np.ndarray:
        v = positions[self.triangles]
        fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        return _normalize(self.incidence @ fn)[self.unique].astype(np.float32)


@dataclass(frozen=True)
class _Topology:
    neck_ring: np.ndarray       # ordered vertex ids of the neck's lowest (open) boundary loop
    cap: _Shell
    beard: _Shell
    front_ids: np.ndarray       # skin + eyelash vertices of the upper face, for the glasses depth field
    temple_ids: tuple[np.ndarray, np.ndarray]  # (right, left) skin vertices beside the head where arms run
    ear_ids: tuple[np.ndarray, np.ndarray]     # (right, left) ear vertices
    collar: _Shell              # lower neck, which clothes may cover
    skin_bins: np.ndarray       # (SKIN_END,) flat radial-map bin of each neutral skin vertex


_TOPOLOGIES: dict[str, _Topology] = {}


def _ear_distance(points: np.ndarray) -> np.ndarray:
    c = EAR_CENTER * np.array([1.0, 1.0, 1.0])
    q = points.copy()
    q[:, 0] = np.abs(q[:, 0])
    return (np.linalg.norm((q - c) / EAR_RADII, axis=1) - 1.0) * 2.0


def _latitude(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = points - HEAD_CENTER
    radius = np.linalg.norm(d, axis=-1)
    return np.degrees(np.arcsin(np.clip(d[..., 1] / np.maximum(radius, 1e-9), -1, 1))), radius


def _make_shell(neutral: np.ndarray, skin_tris: np.ndarray, keep: np.ndarray, seam: bool) -> _Shell:
    tris = skin_tris[keep[skin_tris].all(axis=1)]
    src, local = np.unique(tris, return_inverse=True)
    local = local.reshape(-1, 3)
    rows = local.reshape(-1)
    incidence = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, np.repeat(np.arange(len(local)), 3))),
                                        shape=(len(src), len(local)))
    unique = np.arange(len(src))
    az = _azimuth(neutral[src])
    u = (az + 180.0) / 360.0
    if seam:
        # Triangles straddling the back (az = +-180) would interpolate u across the whole texture: give their
        # negative-azimuth corners duplicates with u = 1.
        corner_az = az[local]
        straddle = corner_az.max(1) - corner_az.min(1) > 180
        fix = straddle[:, None] & (corner_az < 0)
        dup_of = np.unique(local[fix])
        new_index = np.full(len(src), -1)
        new_index[dup_of] = len(src) + np.arange(len(dup_of))
        local = np.where(fix, new_index[local], local)
        src = np.concatenate([src, src[dup_of]])
        unique = np.concatenate([unique, dup_of])
        u = np.concatenate([u, np.ones(len(dup_of))])
    p = neutral[src]
    lat, radius = _latitude(p)
    return _Shell(src=src, unique=unique, triangles=local.astype(np.int32), incidence=incidence, az=_azimuth(p),
                  lat=lat, radius=radius, ear=_ear_distance(p), u=u)


def _neck_loop(triangles: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Vertex ids of the lowest boundary loop (the neck's bottom ring), in order. Other loops: mouth, eyes."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    adjacency: dict[int, list[int]] = {}
    for a, b in unique[counts == 1]:
        adjacency.setdefault(int(a), []).append(int(b))
        adjacency.setdefault(int(b), []).append(int(a))
    seen: set[int] = set()
    loops: list[list[int]] = []
    for start in adjacency:
        if start in seen:
            continue
        loop, current = [start], start
        seen.add(start)
        while True:
            nxt = [n for n in adjacency[current] if n not in seen]
            if not nxt:
                break
            current = nxt[0]
            seen.add(current)
            loop.append(current)
        loops.append(loop)
    return np.array(min(loops, key=lambda loop: neutral[loop, 1].mean()))


def _topology(model: FaceModel) -> _Topology:
    key = f"{model.path}:{model.num_vertices}"
    topo = _TOPOLOGIES.get(key)
    if topo is not None:
        return topo
    neutral = model.neutral.astype(np.float64)
    skin_material = model.material_mask("M_Face", "M_BackHead")
    skin_tris = model.triangles[skin_material & (model.triangles < SKIN_END).all(axis=1)]
    skin = neutral[:SKIN_END]
    az = _azimuth(skin)
    ring = _neck_loop(skin_tris, neutral)

    # The cap may cover anything above the lowest hairline any style draws; the beard anything below the eyes.
    keep_cap = np.zeros(SKIN_END, bool)
    lat, radius = _latitude(skin)
    keep_cap[:] = _hair_field(az, lat, radius, _ear_distance(skin), _HairlineParams.widest()) > -1.5
    cap = _make_shell(neutral, skin_tris, keep_cap, seam=True)
    abs_az = np.abs(az)
    keep_beard = (((skin[:, 1] < 1.0) & (abs_az < 92)) | ((abs_az > 50) & (abs_az < 92) & (skin[:, 1] < 6.5)))
    keep_beard &= (skin[:, 1] > -13.0) & (_ear_distance(skin) > -0.3)
    beard = _make_shell(neutral, skin_tris, keep_beard, seam=False)

    upper = (skin[:, 1] > -3) & (skin[:, 1] < 10) & (skin[:, 2] > 3) & (np.abs(skin[:, 0]) < 9.5)
    front_ids = np.concatenate([np.flatnonzero(upper), np.arange(EYELASH_VERTICES.start, EYELASH_VERTICES.stop)])
    ear = _ear_distance(skin)
    beside = (skin[:, 1] > -1) & (skin[:, 1] < 9) & (skin[:, 2] > -5) & (skin[:, 2] < 10) & (ear > 0.4)
    is_ear = (ear < 0) & (np.abs(skin[:, 0]) > 7.6)
    topo = _Topology(neck_ring=ring, cap=cap, beard=beard, front_ids=front_ids,
                     temple_ids=(np.flatnonzero(beside & (skin[:, 0] < -4)), np.flatnonzero(beside & (skin[:, 0] > 4))),
                     ear_ids=(np.flatnonzero(is_ear & (skin[:, 0] < 0)), np.flatnonzero(is_ear & (skin[:, 0] > 0))),
                     collar=_make_shell(neutral, skin_tris, skin[:, 1] < np.interp(abs_az, NECK_BASE_AZ, NECK_BASE_Y)
                                        + 0.8, seam=True),
                     skin_bins=_radial_bins(skin))
    _TOPOLOGIES[key] = topo
    log.debug("accessory topology: cap %d verts / %d tris, beard %d / %d, neck ring %d", len(cap.src),
              len(cap.triangles), len(beard.src), len(beard.triangles), len(ring))
    return topo


def neck_anchor(model: FaceModel, vertices: np.ndarray) -> np.ndarray:
    """Pivot of the body frame: centroid of the ICT neck's lowest ring of vertices (canonical cm)."""
    return np.asarray(vertices, np.float64)[_topology(model).neck_ring].mean(axis=0)


# ----------------------------------------------------------------------------------------------------------------
# Radial clearance map: for hair cards, the largest distance from the skull axis of anything in an (azimuth, y) bin

RMAP_AZ_BINS = 60
RMAP_Y0, RMAP_Y_BINS = -60.0, 80


def _radial_bins(points: np.ndarray) -> np.ndarray:
    a = ((_azimuth(points) + 180.0) / 360.0 * RMAP_AZ_BINS).astype(int) % RMAP_AZ_BINS
    y = np.clip((points[:, 1] - RMAP_Y0).astype(int), 0, RMAP_Y_BINS - 1)
    return a * RMAP_Y_BINS + y


def _radial_map(groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(az bins, y bins) max radius over (points, flat bins) groups, dilated so sparse meshes leave no holes."""
    rmap = np.zeros(RMAP_AZ_BINS * RMAP_Y_BINS)
    for points, bins in groups:
        np.maximum.at(rmap, bins, np.hypot(points[:, 0], points[:, 2] - AXIS_Z))
    rmap = rmap.reshape(RMAP_AZ_BINS, RMAP_Y_BINS)
    # Fill bins that sparse meshes leave empty from their neighbours; keep measured bins as they are (dilating
    # everything would push hair off steep parts of the skull).
    filled = scipy.ndimage.maximum_filter(rmap, size=3, mode=("wrap", "nearest"))
    return np.where(rmap > 0, rmap, filled)


def _radial_lookup(rmap: np.ndarray, points: np.ndarray) -> np.ndarray:
    a = ((_azimuth(points) + 180.0) / 360.0 * RMAP_AZ_BINS).astype(int) % RMAP_AZ_BINS
    y = np.clip((points[..., 1] - RMAP_Y0).astype(int), 0, RMAP_Y_BINS - 1)
    return rmap[a, y]


# ----------------------------------------------------------------------------------------------------------------
# Procedural strand textures (cached per process; rows are stored image-style, row 0 = v 1)


def _color_key(rng: np.random.Generator, name: str | None) -> tuple[str, int]:
    names = list(HAIR_COLORS)
    if name is None:
        name = names[rng.choice(len(names), p=HAIR_COLOR_WEIGHTS)]
    elif name not in HAIR_COLORS:
        raise ValueError(f"unknown hair colour {name!r}; known: {names}")
    return name, int(rng.integers(len(BRIGHTNESS_LEVELS)))


def _nearest_color_key(rgb) -> tuple[str, int]:
    """The natural palette colour and brightness level closest to an RGB albedo (textures stay cached)."""
    rgb = np.asarray(rgb, float)
    keys = [(n, k) for n in NATURAL_COLORS for k in range(len(BRIGHTNESS_LEVELS))]
    return min(keys, key=lambda key: float(np.sum((_hair_rgb(key) - rgb) ** 2)))


def _hair_rgb(key: tuple[str, int]) -> np.ndarray:
    return np.clip(np.array(HAIR_COLORS[key[0]]) * BRIGHTNESS_LEVELS[key[1]], 0, 1)


@functools.lru_cache(maxsize=128)
def _strand_texture(kind: str, key: tuple[str, int]) -> np.ndarray:
    """RGBA strand texture for a hair colour. kind: "cap" (v: 0 at the hairline -> 1 inside; u around the head),
    "card" (v: 1 at the root -> 0 at the tip; u across the card) or "beard" (like "cap", shorter, curlier)."""
    rng = np.random.default_rng(("cap", "card", "sheet", "beard").index(kind))  # one pattern per kind
    if kind in ("card", "sheet"):
        h, w = (256, 128) if kind == "card" else (256, 512)
        clump = np.repeat(rng.random(w // 2), 2)                               # strands two texels wide
        strand_len = 0.7 + 0.3 * np.sqrt(rng.random(w))
        edge = np.minimum(np.arange(w), w - 1 - np.arange(w)) / (w / 2)
        if kind == "card":  # ragged, thinner edges
            strand_len *= np.where(rng.random(w) < 0.8 * (1 - edge) ** 1.5, rng.uniform(0.2, 0.8, w), 1.0)
        v = 1 - (np.arange(h)[:, None] + 0.5) / h                              # 1 at the root (row 0)
        alpha = (1 - v) < strand_len[None, :]
        alpha &= rng.random(w)[None, :] > 0.06                                 # a few gaps between strands
        lum = 0.7 + 0.55 * clump[None, :] + 0.06 * rng.standard_normal((h, w))
        lum = lum * (0.85 + 0.15 * v)                                          # tips a little darker
    else:
        h, w = (256, 512) if kind == "cap" else (128, 256)
        v = 1 - (np.arange(h)[:, None] + 0.5) / h
        tip = rng.uniform(0.1, 0.16 if kind == "cap" else 0.3, w)[None, :]
        alpha = v > tip                                                       # jagged strand tips at the edge
        lum = 0.7 + 0.55 * scipy.ndimage.uniform_filter1d(rng.random(w), 3, mode="wrap")[None, :]
        lum = lum * (1 + 0.08 * rng.standard_normal((h, w)))
        if kind == "beard":
            alpha &= rng.random((h, w)) > 0.12
            lum = lum * (0.8 + 0.4 * rng.random((h, w)))
    rgb = np.clip(_hair_rgb(key)[None, None, :] * lum[..., None], 0, 1)
    tex = np.empty((h, w, 4), np.uint8)
    tex[..., :3] = (rgb * 255 + 0.5).astype(np.uint8)
    tex[..., 3] = np.where(np.broadcast_to(alpha, (h, w)), 255, 0)
    tex.flags.writeable = False
    return tex


# ----------------------------------------------------------------------------------------------------------------
# Hair


@dataclass(frozen=True)
class _HairlineParams:
    """Hairline latitudes (degrees about HEAD_CENTER, neutral head) at control azimuths, and the cap's volume.

    Latitudes rather than heights keep the field well defined over the crown (a receding hairline stays a line).
    """

    front: float = 45.0        # forehead hairline at the centre (brows are near 11 degrees)
    recess: float = 0.0        # extra latitude at the temples (M-shaped receding hairline)
    temple: float = 30.0       # where the hairline turns down at the side of the forehead
    sideburn: float = -8.0     # bottom of the sideburn, in front of the ear
    behind_ear: float = -18.0
    nape: float = -57.0
    ear_margin: float = 0.5    # cm of skin kept bare around the ear
    wobble: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # (amplitude deg, phase) pairs along the azimuth
    thickness: float = 1.0     # cap offset at full volume, cm
    ramp: float = 2.0          # cm above the hairline to reach full volume

    @classmethod
    def widest(cls) -> _HairlineParams:
        """A hairline below every sampled one: the cap's candidate vertices."""
        return cls(front=34.0, temple=20.0, sideburn=-24.0, behind_ear=-32.0, nape=-66.0, ear_margin=-0.3)

    def latitude(self, abs_az: np.ndarray) -> np.ndarray:
        knots = (0, 22, 40, 58, 70, 80, 95, 118, 140, 180)
        lats = (self.front, self.front + 0.6 * self.recess, self.front + self.recess - 2.0, self.temple,
                0.5 * (self.temple + self.sideburn) + 5.0, self.sideburn, self.sideburn,
                self.behind_ear, self.nape + 2.0, self.nape)
        lat = np.interp(abs_az, knots, lats)
        a = np.radians(abs_az)
        for k, (amp, phase) in enumerate(zip(self.wobble[0::2], self.wobble[1::2])):
            lat = lat + amp * np.sin((k + 3) * a + phase)
        return lat


def _hair_field(az: np.ndarray, lat: np.ndarray, radius: np.ndarray, ear: np.ndarray,
                p: _HairlineParams) -> np.ndarray:
    """Signed distance above the hairline along the skull, roughly cm: > 0 inside the hair."""
    above = np.radians(lat - p.latitude(np.abs(az))) * radius
    return np.minimum(above, (ear - p.ear_margin) * 1.5)


def _sample_hairline(rng: np.random.Generator, style: str) -> _HairlineParams:
    u = rng.uniform
    front = u(38.0, 50.0)
    p = dict(front=front, temple=front - u(10.0, 18.0), sideburn=u(-18.0, 0.0), behind_ear=u(-25.0, -12.0),
             nape=u(-61.0, -54.0), ear_margin=u(0.2, 0.9),
             wobble=tuple(x for _ in range(3) for x in (u(0.5, 2.0), u(0, 2 * np.pi))))
    if style == "buzz":
        p.update(thickness=u(0.15, 0.35), ramp=u(0.4, 0.8), sideburn=u(-8.0, 2.0), nape=u(-56.0, -50.0))
    elif style == "short":
        p.update(thickness=u(0.5, 1.1), ramp=u(1.0, 2.5))
    elif style == "receding":
        front = u(50.0, 58.0)
        p.update(front=front, recess=u(3.0, 10.0), temple=front - u(8.0, 16.0), thickness=u(0.2, 0.8),
                 ramp=u(0.8, 2.0))
    elif style == "bun":
        p.update(thickness=u(0.4, 0.9), ramp=u(1.0, 2.0), nape=u(-57.0, -52.0))
    elif style == "medium":
        p.update(thickness=u(1.0, 1.8), ramp=u(2.0, 3.5), nape=u(-62.0, -57.0))
    else:  # long
        p.update(thickness=u(1.0, 2.0), ramp=u(2.0, 4.0), nape=u(-64.0, -58.0), behind_ear=u(-28.0, -18.0))
    return _HairlineParams(**p)


@dataclass
class _Cap:
    positions: np.ndarray     # (K,) shell vertices (all, including unused), offset
    normals: np.ndarray
    field: np.ndarray         # hair field per shell vertex, cm
    triangles: np.ndarray     # used triangles


def _hair_cap(head_vertices: np.ndarray, topo: _Topology, hl: _HairlineParams, color_key: tuple[str, int]
              ) -> tuple[MeshPart, _Cap]:
    shell = topo.cap
    base = head_vertices[shell.src].astype(np.float64)
    normals = shell.normals(base)
    field = _hair_field(shell.az, shell.lat, shell.radius, shell.ear, hl)
    # Volume grows from the hairline up; the floor keeps even the hairline off the skin (no z-fighting).
    offset = 0.04 + hl.thickness * _smoothstep(field / hl.ramp)
    positions = base + normals * offset[:, None]
    used = field[shell.triangles].max(axis=1) > 0
    tris = shell.triangles[used]
    v = np.clip((field + 1.0) / 12.0, 0.0, 1.0)  # rows below v = 1/12 (outside the hairline) are transparent
    uv = np.stack([np.clip(shell.u, 0, 1), v], 1)
    part = _part("hair_cap", positions, tris, normals, uv=uv, color=tuple(_hair_rgb(color_key)),
                 texture=_strand_texture("cap", color_key), specular=0.15, shininess=12.0)
    return part, _Cap(positions=positions, normals=normals, field=field, triangles=tris)


def _hair_bun(rng: np.random.Generator, cap: _Cap, topo: _Topology, color_key: tuple[str, int]) -> MeshPart:
    shell = topo.cap
    target_az = rng.uniform(150, 180) * rng.choice([-1, 1])
    target_lat = rng.uniform(15.0, 55.0)
    score = np.abs((shell.az - target_az + 180) % 360 - 180) / 30 + np.abs(shell.lat - target_lat) / 10
    i = int(np.argmin(score))
    radius = rng.uniform(2.8, 4.2)
    verts, tris, uv = _lathe(np.stack([radius * np.sin(np.linspace(0, np.pi, 11)),
                                       -radius * np.cos(np.linspace(0, np.pi, 11))], 1), 20)
    verts[:, 1] *= rng.uniform(0.75, 0.95)
    # Orient the bun's pole along the cap normal and seat it half sunk into the cap.
    n = cap.normals[i]
    R = _frame_from_axis(n)
    verts = verts @ R.T + cap.positions[i] + n * radius * 0.45
    uv[:, 1] = 0.3 + 0.7 * uv[:, 1]  # stay clear of the transparent hairline rows
    return _part("hair_bun", verts, tris, uv=uv, color=tuple(_hair_rgb(color_key)),
                 texture=_strand_texture("cap", color_key), specular=0.15, shininess=12.0)


def _frame_from_axis(axis: np.ndarray) -> np.ndarray:
    """Rotation whose +Y column is `axis`."""
    y = _normalize(np.asarray(axis, float))
    helper = np.array([1.0, 0.0, 0.0]) if abs(y[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    x = _normalize(np.cross(helper, y))
    z = np.cross(x, y)
    return np.stack([x, y, z], 1)


def _hang_paths(roots: np.ndarray, root_normals: np.ndarray, lengths: np.ndarray, drift: np.ndarray,
                rmap: np.ndarray, clearance: np.ndarray, segments: int = 16,
                stiffness: np.ndarray | float = 0.5) -> np.ndarray:
    """(C, segments+1, 3) strand paths hanging from `roots` under gravity, kept outside the radial map.

    A strand leaves the scalp away from the crown and bends down; where it would enter the head (or the torso)
    it is pushed out radially and slides along the surface instead.
    """
    c = len(roots)
    down = np.array([0.0, -1.0, 0.0])
    radial = _normalize(np.concatenate([roots[:, :1], np.zeros((c, 1)), roots[:, 2:] - AXIS_Z], 1))
    start = down + 0.4 * radial
    d = _normalize(start - np.sum(start * root_normals, 1, keepdims=True) * root_normals)
    seg = (lengths / segments)[:, None]
    stiffness = np.broadcast_to(stiffness, (c,))[:, None]
    points = [roots + root_normals * 0.05]
    for k in range(segments):
        t = (k + 1) / segments
        d = _normalize(d + (1 - stiffness * (1 - t)) * 0.45 * down + drift)
        p = points[-1] + d * seg
        r = np.hypot(p[:, 0], p[:, 2] - AXIS_Z)
        need = _radial_lookup(rmap, p) + clearance * (0.4 + 0.6 * t)
        pushed = r < need
        scale = np.where(pushed, need / np.maximum(r, 1e-6), 1.0)
        p[:, 0] *= scale
        p[:, 2] = AXIS_Z + (p[:, 2] - AXIS_Z) * scale
        # A pushed strand slides along the surface: drop the inward part of its direction, keep the rest.
        out = _normalize(np.stack([p[:, 0], np.zeros(c), p[:, 2] - AXIS_Z], 1))
        inward = np.minimum(np.sum(d * out, 1, keepdims=True), 0.0)
        d = np.where(pushed[:, None], _normalize(d - inward * out), d)
        points.append(p)
    return np.stack(points, 1)


def _card_mesh(paths: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strips along each path, 3 vertices across (the middle one bulges outwards), tapering to the tip."""
    c, n = paths.shape[:2]
    tangent = _normalize(np.gradient(paths, axis=1))
    out = _normalize(np.concatenate([paths[..., :1], np.zeros_like(paths[..., :1]), paths[..., 2:] - AXIS_Z], -1))
    side = _normalize(np.cross(tangent, out))
    out = _normalize(np.cross(side, tangent))
    t = np.linspace(0, 1, n)[None, :, None]
    half = widths[:, None, None] / 2 * (1 - 0.55 * t)
    verts = np.stack([paths - side * half, paths + out * half * 0.35, paths + side * half], 2)
    tris = (_grid_triangles(n, 3)[None] + (np.arange(c) * n * 3)[:, None, None]).reshape(-1, 3)
    u = np.broadcast_to(np.array([0.0, 0.5, 1.0]), (c, n, 3))
    v = np.broadcast_to(1 - t, (c, n, 3))
    return verts.reshape(-1, 3), tris, np.stack([u, v], -1).reshape(-1, 2)


def _sheet_mesh(paths: np.ndarray, thickness: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A slab of hair through neighbouring paths (columns in order): inner and outer curtains joined at the sides.

    Seen edge-on (side hair in a frontal view) a single curtain would be a line; the slab shows its thickness.
    """
    c, n = paths.shape[:2]
    out = _normalize(np.concatenate([paths[..., :1], np.zeros_like(paths[..., :1]), paths[..., 2:] - AXIS_Z], -1))
    grow = thickness * _smoothstep(np.linspace(0, 1, n) / 0.3)[None, :, None]
    inner = paths.transpose(1, 0, 2)                       # (n, c, 3): rows along the strands
    outer = (paths + out * grow).transpose(1, 0, 2)
    u, v = np.meshgrid(np.linspace(0, 1, c), 1 - np.linspace(0, 1, n))
    grid_uv = np.stack([u, v], -1).reshape(-1, 2)
    meshes, uvs = [(inner.reshape(-1, 3), _grid_triangles(n, c)), (outer.reshape(-1, 3), _grid_triangles(n, c))], \
        [grid_uv, grid_uv]
    for col in (0, c - 1):
        edge = np.stack([inner[:, col], outer[:, col]], 1)  # (n, 2, 3)
        meshes.append((edge.reshape(-1, 3), _grid_triangles(n, 2)))
        eu, ev = np.meshgrid([0.0, 0.04], 1 - np.linspace(0, 1, n))
        uvs.append(np.stack([eu, ev], -1).reshape(-1, 2))
    verts, tris = _merge(meshes)
    return verts, tris, np.concatenate(uvs)


def _sheet_roots(cap: _Cap, topo: _Topology, az_values: np.ndarray, field_target: np.ndarray | float) -> np.ndarray:
    """Cap vertex nearest to each (azimuth, hair field) target: the root row of a sheet."""
    field_target = np.broadcast_to(np.asarray(field_target, float), az_values.shape)
    near = np.flatnonzero((cap.field > field_target.min() - 1.5) & (cap.field < field_target.max() + 1.5)
                          & (topo.cap.u < 1.0))
    if len(near) == 0:
        near = np.flatnonzero(cap.field > 0)
    daz = np.abs((topo.cap.az[near][None, :] - az_values[:, None] + 180.0) % 360.0 - 180.0)
    score = np.radians(daz) * 9.0 + np.abs(cap.field[near][None, :] - field_target[:, None])
    return near[np.argmin(score, axis=1)]


def _choose_roots(rng: np.random.Generator, cap: _Cap, topo: _Topology, count: int, az_range: tuple[float, float],
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


def _hair_strands(rng: np.random.Generator, style: str, cap: _Cap, topo: _Topology, rmap: np.ndarray,
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
            return side_field + (back_field - side_field) * _smoothstep((np.abs(az) - 70.0) / 60.0)

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
    color = tuple(_hair_rgb(color_key))
    for name, meshes, kind in (("hair_sheets", sheets, "sheet"), ("hair_cards", cards, "card")):
        if meshes:
            verts, tris = _merge([(v, t) for v, t, _ in meshes])
            parts.append(_part(name, verts, tris, uv=np.concatenate([uv for _, _, uv in meshes]), color=color,
                               texture=_strand_texture(kind, color_key), specular=0.15, shininess=12.0,
                               double_sided=True))
    return parts


# ----------------------------------------------------------------------------------------------------------------
# Beards


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


def _beard(rng: np.random.Generator, style: str, head_vertices: np.ndarray, landmarks: np.ndarray,
           topo: _Topology, color_key: tuple[str, int]) -> MeshPart | None:
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
    offset = normals * (0.03 + thickness * _smoothstep(field / ramp))[:, None]
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
    return _part("beard", positions, corners[keep], normals, uv=uv, color=tuple(_hair_rgb(color_key)),
                 texture=_strand_texture("beard", color_key), specular=0.1, shininess=10.0)


# ----------------------------------------------------------------------------------------------------------------
# Glasses


def _lens_outline(shape: str, rng: np.random.Generator, n: int = 40) -> np.ndarray:
    """(n, 2) lens outline around its centre, cm: x towards the temple, y up."""
    u = rng.uniform
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(phi), np.sin(phi)
    if shape == "round":
        w = u(1.8, 2.4)
        h, e = w * u(0.88, 1.0), 2.0
    elif shape == "cateye":
        w, h, e = u(2.3, 2.8), u(1.6, 2.0), u(2.6, 3.5)
    elif shape == "aviator":
        w, h, e = u(2.5, 3.0), u(2.1, 2.5), 2.4
    else:  # rect
        w, h, e = u(2.2, 2.8), u(1.4, 2.0), u(3.5, 6.0)
    x = w * np.sign(c) * np.abs(c) ** (2 / e)
    y = h * np.sign(s) * np.abs(s) ** (2 / e)
    if shape == "cateye":  # upper outer corner swept up
        y = y + u(0.3, 0.6) * np.clip(x / w, 0, 1) ** 2 * (y > -0.3 * h)
    elif shape == "aviator":  # teardrop: the lower half bulges towards the nose
        y = np.where(y < 0, y * 1.1, y * 0.85)
        x = x - 0.35 * np.clip(-y / h, 0, 1) * w * 0.4
    return np.stack([x, y], 1)


def _outline_normals(outline: np.ndarray) -> np.ndarray:
    t = np.roll(outline, -1, axis=0) - np.roll(outline, 1, axis=0)
    n = _normalize(np.stack([t[:, 1], -t[:, 0]], 1))
    return np.where(np.sum(n * (outline - outline.mean(0)), 1, keepdims=True) < 0, -n, n)


def _depth_field(points: np.ndarray, cell: float = 0.5) -> tuple[np.ndarray, float, float]:
    """Max z per (x, y) cell of the face front: (grid, x0, y0). Lets glasses clear brows, lashes, nose, cheeks."""
    x0, y0 = -11.0, -5.0
    ix = np.clip(((points[:, 0] - x0) / cell).astype(int), 0, 43)
    iy = np.clip(((points[:, 1] - y0) / cell).astype(int), 0, 35)
    grid = np.full(44 * 36, -np.inf)
    np.maximum.at(grid, ix * 36 + iy, points[:, 2])
    grid = scipy.ndimage.maximum_filter(grid.reshape(44, 36), size=3, mode="nearest")
    return grid, x0, y0


def _depth_lookup(field: tuple[np.ndarray, float, float], points: np.ndarray, cell: float = 0.5) -> np.ndarray:
    grid, x0, y0 = field
    ix = np.clip(((points[:, 0] - x0) / cell).astype(int), 0, grid.shape[0] - 1)
    iy = np.clip(((points[:, 1] - y0) / cell).astype(int), 0, grid.shape[1] - 1)
    return grid[ix, iy]


def _glasses(rng: np.random.Generator, shape: str, sunglasses: bool, head_vertices: np.ndarray,
             landmarks: np.ndarray, topo: _Topology, p_lens: float) -> list[MeshPart]:
    u = rng.uniform
    lm = landmarks
    eye_r, eye_l = lm[36:42].mean(0), lm[42:48].mean(0)
    x_axis = _normalize(eye_l - eye_r)
    up = _normalize(np.array([0.0, 1.0, 0.0]) - x_axis[1] * x_axis)
    fwd = np.cross(x_axis, up)
    mid = 0.5 * (eye_l + eye_r)
    half_pd = 0.5 * np.linalg.norm(eye_l - eye_r) * u(1.0, 1.08)
    outline = _lens_outline(shape, rng)
    normals2d = _outline_normals(outline)
    wrap, tilt = np.radians(u(3, 10)), np.radians(u(4, 12))
    metal = (not sunglasses and rng.random() < 0.45) or (sunglasses and shape == "aviator")
    dy = u(-0.3, 0.25)

    def place(points2d: np.ndarray, side: float, forward: np.ndarray | float = 0.0) -> np.ndarray:
        """Lens-local (x to the temple, y up) -> head frame, before the frame's depth is chosen."""
        a, b = points2d[:, 0:1], points2d[:, 1:2]
        centre = mid + side * half_pd * x_axis + dy * up
        return (centre + side * a * np.cos(wrap) * x_axis - a * np.sin(wrap) * fwd + b * up
                + (b * np.sin(tilt) + forward) * fwd)

    # Depth: the frame's back clears the face (lashes, brows, nose bridge, cheeks) by a few millimetres.
    field = _depth_field(head_vertices[topo.front_ids])
    probe = np.concatenate([place(outline * s, side) for side in (-1, 1) for s in (1.0, 0.6, 0.2)])
    depth = np.max(_depth_lookup(field, probe) - probe[:, 2]) + u(0.35, 0.7)

    def to_frame(points: np.ndarray) -> np.ndarray:
        return points + depth * fwd

    rim_r = u(0.05, 0.09)
    if metal:
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        rim_profile = np.stack([rim_r * np.cos(a), rim_r * np.sin(a)], 1)
        arm_profile = rim_profile
        bridge_profile = rim_profile
    else:
        width, thick = u(0.3, 0.7), u(0.3, 0.55)
        rim_profile = np.array([[-0.05, -thick / 2], [width, -thick / 2], [width + 0.05, 0], [width, thick / 2],
                                [-0.05, thick / 2], [-0.1, 0]])
        arm_h, arm_t = u(0.25, 0.5), u(0.12, 0.2)
        arm_profile = np.array([[-arm_h / 2, -arm_t / 2], [arm_h / 2, -arm_t / 2], [arm_h / 2, arm_t / 2],
                                [-arm_h / 2, arm_t / 2]])
        bridge_profile = np.array([[-0.25, -thick / 2], [0.25, -thick / 2], [0.25, thick / 2], [-0.25, thick / 2]])
    meshes, lenses = [], []
    for side in (-1.0, 1.0):
        rim = to_frame(place(outline, side))
        n3 = place(normals2d, side) - place(np.zeros_like(normals2d), side)
        plane_n = np.cross(n3[0], n3[len(n3) // 4])
        plane_n = _normalize(plane_n * np.sign(plane_n @ fwd))
        binormal = np.broadcast_to(plane_n, rim.shape)
        meshes.append(_sweep(rim, _normalize(n3), binormal, rim_profile, closed=True))
        centre = to_frame(place(np.zeros((1, 2)), side))[0]
        lens = np.concatenate([centre[None] + plane_n * 0.12, rim - (rim - centre) * 0.03])
        fan = np.stack([np.zeros(len(rim), int), 1 + np.arange(len(rim)), 1 + (np.arange(len(rim)) + 1) % len(rim)],
                       1)
        lens_uv = np.concatenate([[[0.5, 0.5]], 0.5 + 0.5 * outline / np.abs(outline).max(0)])
        lenses.append((lens, fan, lens_uv))
        # Temple arm: from the hinge back along the side of the head to the ear, bending down behind it.
        hinge_i = int(np.argmax(outline[:, 0] + 0.3 * outline[:, 1]))
        hinge = rim[hinge_i] - fwd * 0.2
        arm = _temple_path(hinge, side, head_vertices, topo, u(1.5, 3.0))
        tangent = _normalize(np.gradient(arm, axis=0))
        normal = _normalize(np.array([0.0, 1.0, 0.0]) - tangent[:, 1:2] * tangent)
        meshes.append(_sweep(arm, normal, np.cross(tangent, normal), arm_profile, closed=False))
    # Bridge over the nose between the inner upper rims.
    inner_r = to_frame(place(outline[np.argmin(outline[:, 0] - 0.4 * outline[:, 1])][None], -1.0))[0]
    inner_l = to_frame(place(outline[np.argmin(outline[:, 0] - 0.4 * outline[:, 1])][None], 1.0))[0]
    t = np.linspace(0, 1, 9)[:, None]
    apex = 0.5 * (inner_r + inner_l) + up * u(0.0, 0.35) + fwd * 0.1
    bridge = (1 - t) ** 2 * inner_r + 2 * t * (1 - t) * apex + t ** 2 * inner_l
    tangent = _normalize(np.gradient(bridge, axis=0))
    meshes.append(_sweep(bridge, np.broadcast_to(up, bridge.shape), np.cross(tangent, up), bridge_profile,
                         closed=False))

    if metal:
        color = [(0.6, 0.6, 0.62), (0.55, 0.42, 0.2), (0.04, 0.04, 0.04), (0.2, 0.2, 0.22)][rng.integers(4)]
        specular, shininess = 0.7, 60.0
    else:
        color = [(0.03, 0.03, 0.03), (0.18, 0.09, 0.04), (0.35, 0.05, 0.05), (0.08, 0.12, 0.3),
                 (0.5, 0.45, 0.4)][rng.integers(5)]
        specular, shininess = 0.35, 40.0
    verts, tris = _merge(meshes)
    parts = [_part("glasses_frame", verts, tris, color=tuple(color), specular=specular, shininess=shininess)]
    if sunglasses or rng.random() < p_lens:
        if sunglasses:
            tint, alpha = np.array([0.03, 0.03, 0.035]) + rng.uniform(0, 0.06, 3), 245
        elif rng.random() < 0.25:
            tint, alpha = np.array([0.45, 0.35, 0.25]) * u(0.5, 1.0), 110
        else:
            tint, alpha = np.array([0.85, 0.9, 0.92]), 70
        texture = np.empty((4, 4, 4), np.uint8)
        texture[..., :3] = np.clip(tint * 255, 0, 255).astype(np.uint8)
        texture[..., 3] = alpha
        verts, tris = _merge([(v, t) for v, t, _ in lenses])
        # Clear and tinted lenses (alpha < 0.5) are for a renderer that blends them; the cut-out renderer drops
        # them, which is right for landmark visibility. Sunglasses are opaque and hide the eyes.
        parts.append(_part("glasses_lens", verts, tris, uv=np.concatenate([uv for _, _, uv in lenses]),
                           color=tuple(float(c) for c in tint), texture=texture, specular=0.8, shininess=120.0,
                           occludes_landmarks=bool(sunglasses), double_sided=True))
    return parts


def _temple_path(hinge: np.ndarray, side: float, head_vertices: np.ndarray, topo: _Topology,
                 drop: float) -> np.ndarray:
    """Arm from the hinge back over the ear's root, bending down behind the ear, just outside the head."""
    k = 0 if side < 0 else 1
    ear_z = head_vertices[topo.ear_ids[k], 2].mean()
    zs = np.linspace(hinge[2], ear_z - 1.5, 10)
    ys = np.interp(zs, [ear_z - 1.5, ear_z, hinge[2]], [hinge[1] - drop, hinge[1] - 0.3, hinge[1]])
    cand = head_vertices[topo.temple_ids[k]]
    near = (np.abs(cand[None, :, 1] - ys[:, None]) < 0.8) & (np.abs(cand[None, :, 2] - zs[:, None]) < 0.7)
    width = np.where(near, np.abs(cand[None, :, 0]), 0.0).max(axis=1)
    # Arms spread towards the back (never pinch inwards) until their tip tucks in behind the ear.
    x = np.maximum.accumulate(np.maximum(abs(hinge[0]), width + 0.25))
    x[-1] -= 0.3
    return np.stack([side * x, ys, zs], 1)


# ----------------------------------------------------------------------------------------------------------------
# Torso

TORSO_COLUMNS = 48
# Clothing textures map u to the azimuth (about AXIS_Z, as the skin shells) and v to the height in the body frame.
CLOTH_Y_TOP, CLOTH_Y_BOTTOM = -6.0, -58.0
# Height of the base of the ICT neutral neck (where a crew neckline sits) against |azimuth|.
NECK_BASE_AZ = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0)
NECK_BASE_Y = (-15.5, -15.0, -14.0, -12.8, -11.8, -12.0, -11.5)
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
    return np.stack([(_azimuth(points) + 180.0) / 360.0,
                     (points[:, 1] - CLOTH_Y_BOTTOM) / (CLOTH_Y_TOP - CLOTH_Y_BOTTOM)], 1)


def _torso_geometry(head_vertices: np.ndarray, topo: _Topology, shape: _TorsoShape
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
    tris = _grid_triangles(rows, cols)
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


def _torso(rng: np.random.Generator, head_vertices: np.ndarray, topo: _Topology, skin_rgb: tuple[float, float, float],
           collar: str | None) -> list[MeshPart]:
    u = rng.uniform
    shape = _TorsoShape(half_width=u(17.5, 25.0), half_depth=u(10.0, 13.0), exponent=u(2.4, 3.6),
                        slope_deg=u(8, 22), bottom=u(-55.0, -45.0))
    collar = _pick(rng, collar, COLLARS, (0.45, 0.2, 0.2, 0.15), "collar")
    neckline = _neckline(rng, collar)
    body_texture, shell_texture, base = _cloth_textures(rng, collar, skin_rgb, neckline)
    verts, tris, uv = _torso_geometry(head_vertices, topo, shape)
    parts = [_part("torso", verts, tris, uv=uv, color=tuple(base), texture=body_texture, specular=0.05,
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
    parts.append(_part("torso_collar", positions, shell.triangles[used], normals, uv=shell_uv, color=tuple(base),
                       texture=shell_texture, specular=0.05, shininess=8.0, frame="body"))
    if collar == "hoodie":
        parts.append(_hood(rng, head_vertices, topo, tuple(base)))
    return parts


def _hood(rng: np.random.Generator, head_vertices: np.ndarray, topo: _Topology, color: tuple) -> MeshPart:
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
    tangent = _normalize(np.gradient(path, axis=0))
    normal = _normalize(np.cross(tangent, [0.0, 1.0, 0.0]))
    a = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    profile = np.stack([radius * 1.3 * np.cos(a), radius * 0.7 * np.sin(a)], 1)
    verts, tris = _sweep(path, normal, np.cross(tangent, normal), profile, closed=False)
    return _part("hood", verts, tris, color=color, specular=0.05, shininess=8.0, frame="body")


# ----------------------------------------------------------------------------------------------------------------
# Occluders (camera frame)


def _capsule_between(a: np.ndarray, b: np.ndarray, radius: float, tip: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    length = float(np.linalg.norm(b - a))
    verts, tris, _ = _lathe(_capsule_profile(radius, max(length, 2 * radius), tip_radius=tip), 10)
    return verts @ _frame_from_axis(b - a).T + a, tris


def _hand(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A hand in its own frame (fingers along +y, palm facing +z, palm centre at 0); returns vertices, triangles
    and the points to aim at the face (palm centre, middle of the fingers)."""
    u = rng.uniform
    scale = u(0.85, 1.1)
    palm_w, palm_h, palm_t = 4.2 * scale, 5.0 * scale, 1.4 * scale
    palm, palm_tris = _superellipsoid(np.array([palm_w, palm_h, palm_t]), 0.5, 0.4, 8, 14)
    meshes = [(palm, palm_tris)]
    curl = u(0, 60)
    spread = u(0, 8)
    lengths = np.array([4.2, 4.7, 4.5, 3.6]) * scale
    for i, x in enumerate(np.linspace(-0.72, 0.72, 4) * palm_w):
        base = np.array([x, palm_h * 0.85, 0.0])
        direction = _rotation([0, 0, 1], (x / palm_w) * -spread) @ np.array([0.0, 1.0, 0.0])
        bend_axis = np.array([1.0, 0.0, 0.0])
        mid = base + direction * lengths[i] * 0.55
        d2 = _rotation(bend_axis, curl) @ direction
        tip = mid + d2 * lengths[i] * 0.5
        r = 0.85 * scale * (0.9 if i == 3 else 1.0)
        meshes.append(_capsule_between(base, mid, r))
        meshes.append(_capsule_between(mid, tip, r * 0.92, r * 0.8))
    thumb_base = np.array([-palm_w * 0.85, -palm_h * 0.25, 0.3])
    thumb_mid = thumb_base + _rotation([0, 0, 1], u(20, 50)) @ np.array([0.0, 1.0, 0.0]) * 3.2 * scale
    thumb_tip = thumb_mid + _rotation([0, 0, 1], u(10, 40)) @ np.array([0.0, 1.0, 0.3]) * 2.8 * scale
    meshes.append(_capsule_between(thumb_base, thumb_mid, 1.0 * scale))
    meshes.append(_capsule_between(thumb_mid, thumb_tip, 0.9 * scale, 0.8 * scale))
    # Wrist stub so the hand does not end in mid-air at the palm's edge.
    meshes.append(_capsule_between(np.array([0.0, -palm_h * 0.6, 0.0]), np.array([0.0, -palm_h * 2.6, -0.5]),
                                   2.6 * scale))
    verts, tris = _merge(meshes)
    aims = np.array([[0.0, 0.0, 0.0], [0.0, palm_h + 2.5 * scale, 0.0]])
    return verts, tris, aims


def _microphone(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray, tuple, float]]:
    u = rng.uniform
    head_r = u(2.4, 3.2)
    length = u(14.0, 19.0)
    handle = np.array([[0.0, -length], [1.2, -length], [1.3, -length + 0.4], [1.9, -head_r * 0.6],
                       [1.2, -head_r * 0.3], [0.0, -head_r * 0.3]])
    hv, ht, _ = _lathe(handle, 14)
    a = np.linspace(-np.pi / 2, np.pi / 2, 9)
    sv, st, _ = _lathe(np.stack([head_r * np.cos(a), head_r * np.sin(a)], 1), 16)
    return [("microphone", hv, ht, (0.03, 0.03, 0.035), 0.5),
            ("microphone", sv, st, tuple(np.full(3, u(0.2, 0.45))), 0.6)]


def _mug(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u = rng.uniform
    r, h, wall = u(3.6, 4.6), u(8.0, 11.0), 0.35
    profile = np.array([[0.0, 0.0], [r - 0.3, 0.0], [r, 0.3], [r, h], [r - wall, h], [r - wall, 0.6], [0.0, 0.6]])
    verts, tris, _ = _lathe(profile, 24)
    t = np.linspace(-np.pi / 2 * 0.9, np.pi / 2 * 0.9, 10)
    hr = u(2.2, 3.0)
    path = np.stack([r - 0.2 + hr * 0.8 * np.cos(t), h / 2 + hr * np.sin(t), np.zeros_like(t)], 1)
    tangent = _normalize(np.gradient(path, axis=0))
    a = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    handle = _sweep(path, np.broadcast_to([0.0, 0.0, 1.0], path.shape), np.cross(tangent, [0.0, 0.0, 1.0]),
                    np.stack([0.5 * np.cos(a), 0.35 * np.sin(a)], 1), closed=False)
    return _merge([(verts - [0, h / 2, 0], tris), (handle[0] - [0, h / 2, 0], handle[1])])


def _phone(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    u = rng.uniform
    return _superellipsoid(np.array([u(3.5, 4.0), u(7.2, 8.2), u(0.4, 0.5)]), 0.15, 0.25, 10, 24)


def _random_rotation(rng: np.random.Generator, max_tilt: float) -> np.ndarray:
    """In-plane roll of any angle, tilts about the camera's x and y axes up to max_tilt degrees."""
    return (_rotation([0, 0, 1], rng.uniform(-180, 180)) @ _rotation([1, 0, 0], rng.uniform(-max_tilt, max_tilt))
            @ _rotation([0, 1, 0], rng.uniform(-max_tilt, max_tilt)))


# ----------------------------------------------------------------------------------------------------------------
# Public API


def _pick(rng: np.random.Generator, forced: str | None, options: tuple[str, ...], weights, what: str) -> str:
    if forced is not None:
        if forced not in options:
            raise ValueError(f"unknown {what} {forced!r}; known: {options}")
        return forced
    return options[rng.choice(len(options), p=weights)]


def sample_accessories(rng: np.random.Generator, head_vertices: np.ndarray, model: FaceModel,
                       params: AccessoryParams | dict | None = None, skin=None) -> list[MeshPart]:
    """Random torso, hair, beard and glasses for one head (ICT vertices in the canonical frame, cm).

    `params` sets probabilities or forces choices (`AccessoryParams` or a dict of its fields). `skin` (an RGB
    triple, or `appearance.SkinParams`) colours the torso's bare neck and chest, the hand of an occluder; from
    SkinParams the hair also takes its colour (`hair_rgb`) and baldness (`scalp_hair == 0`). Deterministic in
    the rng state. Hair, beard and glasses are in the head frame; the torso and its collar in the body frame.
    """
    p = AccessoryParams.coerce(params)
    topo = _topology(model)
    head_vertices = np.asarray(head_vertices, np.float64)
    landmarks = load_layout("ibug68").points(head_vertices, model.triangles)
    parts: list[MeshPart] = []

    style = _pick(rng, p.hair_style, HAIR_STYLES, HAIR_STYLE_WEIGHTS, "hair style")
    hair_key = _color_key(rng, p.hair_color)
    # Agree with the face texture when the appearance says so: its painted scalp hair and hair colour.
    if p.hair_color is None and getattr(skin, "hair_rgb", None) is not None:
        hair_key = _nearest_color_key(skin.hair_rgb)
    if p.hair_style is None and getattr(skin, "scalp_hair", None) == 0:
        style = "bald"
    if rng.random() < p.p_torso:
        parts += _torso(rng, head_vertices, topo, _skin_rgb(skin), p.collar)
    if style != "bald":
        hairline = _sample_hairline(rng, style)
        cap_part, cap = _hair_cap(head_vertices, topo, hairline, hair_key)
        parts.append(cap_part)
        if style == "bun":
            parts.append(_hair_bun(rng, cap, topo, hair_key))
        if style in ("short", "medium", "long"):
            # Hair must stay outside the head, its cap and (at the neutral body pose) the torso.
            groups = [(head_vertices[:SKIN_END], topo.skin_bins), (cap.positions, _radial_bins(cap.positions))]
            groups += [(t.vertices, _radial_bins(t.vertices)) for t in parts if t.frame == "body"]
            brow_y = float(landmarks[17:27, 1].mean())
            parts += _hair_strands(rng, style, cap, topo, _radial_map(groups), brow_y, hair_key)

    beard_style = p.beard_style
    if beard_style is None:
        beard_style = _pick(rng, None, BEARD_STYLES, BEARD_STYLE_WEIGHTS, "") if rng.random() < p.p_beard else "none"
    if beard_style != "none":
        _pick(rng, beard_style, BEARD_STYLES, None, "beard style")
        beard_key = hair_key if rng.random() < 0.8 else (NATURAL_COLORS[rng.integers(len(NATURAL_COLORS))], 1)
        beard = _beard(rng, beard_style, head_vertices, landmarks, topo, beard_key)
        if beard is not None:
            parts.append(beard)

    glasses = p.glasses
    if glasses is None:
        glasses = "none"
        if rng.random() < p.p_glasses:
            glasses = "sunglasses" if rng.random() < p.p_sunglasses else _pick(rng, None, GLASSES_SHAPES,
                                                                                (0.45, 0.25, 0.15, 0.15), "")
    if glasses != "none":
        sunglasses = glasses == "sunglasses"
        shape = _pick(rng, None, GLASSES_SHAPES, (0.3, 0.2, 0.15, 0.35), "") if sunglasses else \
            _pick(rng, glasses, GLASSES_SHAPES, None, "glasses shape")
        parts += _glasses(rng, shape, sunglasses, head_vertices, landmarks, topo, p.p_lens)
    return parts


def sample_occluder(rng: np.random.Generator, face_center_cam: np.ndarray, face_size_cm: float, skin=None,
                    probability: float = 0.2) -> list[MeshPart]:
    """With `probability`, a hand, microphone, mug or phone between the camera and the face (camera frame, cm).

    `face_center_cam` is the face's centre in OpenCV camera coordinates (x right, y down, z forward) and
    `face_size_cm` its size; the occluder covers part of the mouth, chin, a cheek or an eye.
    """
    if rng.random() >= probability:
        return []
    u = rng.uniform
    kind = OCCLUDERS[rng.choice(len(OCCLUDERS), p=OCCLUDER_WEIGHTS)]
    size = float(face_size_cm)
    region = rng.choice(["mouth", "chin", "cheek", "eye"], p=[0.4, 0.25, 0.25, 0.1])
    offset = {"mouth": (0.0, 0.3), "chin": (0.0, 0.48), "cheek": (rng.choice([-1, 1]) * 0.3, 0.1),
              "eye": (rng.choice([-1, 1]) * 0.22, -0.12)}[region]
    target = np.asarray(face_center_cam, float) + np.array([offset[0] + u(-0.06, 0.06), offset[1] + u(-0.06, 0.06),
                                                            0.0]) * [size, size, 0]
    target[2] -= u(5.5, 13.0)  # in front of the nose, towards the camera
    parts = []
    if kind == "hand":
        verts, tris, aims = _hand(rng)
        R = _rotation([0, 0, 1], 180 + u(-100, 100)) @ _rotation([1, 0, 0], u(-35, 35)) @ \
            _rotation([0, 1, 0], 180 * rng.integers(2) + u(-30, 30))
        aim = aims[rng.integers(len(aims))]
        skin_rgb = np.array(_skin_rgb(skin)) * u(0.9, 1.05)
        parts.append(_part("hand", verts @ R.T + target - R @ aim, tris, color=tuple(np.clip(skin_rgb, 0, 1)),
                           specular=0.1, shininess=16.0, frame="camera"))
    elif kind == "microphone":
        handle_dir = _normalize(np.array([u(-0.6, 0.6), 1.0, u(-0.9, -0.2)]))
        R = _frame_from_axis(-handle_dir)
        for name, verts, tris, color, spec in _microphone(rng):
            parts.append(_part(name, verts @ R.T + target, tris, color=color, specular=spec, shininess=40.0,
                               frame="camera"))
    elif kind == "mug":
        verts, tris = _mug(rng)
        R = _frame_from_axis(_normalize(np.array([u(-0.3, 0.3), -1.0, u(-0.2, 0.9)]))) @ \
            _rotation([0, 1, 0], u(0, 360))
        color = CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))]
        parts.append(_part("mug", verts @ R.T + target, tris, color=color, specular=0.4, shininess=50.0,
                           frame="camera"))
    else:
        verts, tris = _phone(rng)
        R = _random_rotation(rng, 40.0)
        color = (0.03, 0.03, 0.035) if rng.random() < 0.6 else CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))]
        parts.append(_part("phone", verts @ R.T + target, tris, color=color, specular=0.5, shininess=60.0,
                           frame="camera"))
    return parts
