"""The ICT head as the accessories see it: skull coordinates (azimuth, latitude, distance outside the ears), the
skin-following shells (hair cap, beard, clothes collar) and other vertex sets, the neck anchor of the body frame,
and a radial clearance map that keeps hanging hair outside the head and body. Shells use a fixed subset of ICT
vertices with region coordinates taken on the neutral mesh (so regions stick to the skin through identity and
expression); `topology` builds them once per process and a sample only moves vertices and recomputes normals."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.sparse

from core.facemodel import FaceModel, HEAD_AND_NECK_VERTICES
from training.synth.accessories.hairline import HairlineParams, hair_field
from training.synth.accessories.mesh import normalize

log = logging.getLogger(__name__)

SKIN_END = HEAD_AND_NECK_VERTICES.stop   # ICT face + head-and-neck vertices; later ids are sockets, teeth, eyes
EYELASH_VERTICES = slice(25351, 26719)
AXIS_Z = 0.5                             # vertical axis (x=0, z=AXIS_Z) through the skull for azimuths, cm
HEAD_CENTER = np.array([0.0, 4.0, AXIS_Z])  # centre for hairline latitudes (ICT neutral skull), cm
EAR_CENTER = np.array([8.3, 1.3, -0.4])  # ICT neutral ear (x mirrored for the right ear), cm
EAR_RADII = np.array([1.8, 3.1, 2.1])

# Height of the base of the ICT neutral neck (where a crew neckline sits) against |azimuth|.
NECK_BASE_AZ = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0)
NECK_BASE_Y = (-15.5, -15.0, -14.0, -12.8, -11.8, -12.0, -11.5)


def azimuth(points: np.ndarray) -> np.ndarray:
    """Degrees about the skull's vertical axis: 0 in front (+Z), +90 at the subject's left (+X), +-180 behind."""
    return np.degrees(np.arctan2(points[..., 0], points[..., 2] - AXIS_Z))


@dataclass(frozen=True)
class Shell:
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
        return normalize(self.incidence @ fn)[self.unique].astype(np.float32)


@dataclass(frozen=True)
class Topology:
    neck_ring: np.ndarray       # ordered vertex ids of the neck's lowest (open) boundary loop
    cap: Shell
    beard: Shell
    front_ids: np.ndarray       # skin + eyelash vertices of the upper face, for the glasses depth field
    temple_ids: tuple[np.ndarray, np.ndarray]  # (right, left) skin vertices beside the head where arms run
    ear_ids: tuple[np.ndarray, np.ndarray]     # (right, left) ear vertices
    collar: Shell               # lower neck, which clothes may cover
    skin_bins: np.ndarray       # (SKIN_END,) flat radial-map bin of each neutral skin vertex


_TOPOLOGIES: dict[str, Topology] = {}


def _ear_distance(points: np.ndarray) -> np.ndarray:
    c = EAR_CENTER * np.array([1.0, 1.0, 1.0])
    q = points.copy()
    q[:, 0] = np.abs(q[:, 0])
    return (np.linalg.norm((q - c) / EAR_RADII, axis=1) - 1.0) * 2.0


def _latitude(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = points - HEAD_CENTER
    radius = np.linalg.norm(d, axis=-1)
    return np.degrees(np.arcsin(np.clip(d[..., 1] / np.maximum(radius, 1e-9), -1, 1))), radius


def _make_shell(neutral: np.ndarray, skin_tris: np.ndarray, keep: np.ndarray, seam: bool) -> Shell:
    tris = skin_tris[keep[skin_tris].all(axis=1)]
    src, local = np.unique(tris, return_inverse=True)
    local = local.reshape(-1, 3)
    rows = local.reshape(-1)
    incidence = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, np.repeat(np.arange(len(local)), 3))),
                                        shape=(len(src), len(local)))
    unique = np.arange(len(src))
    az = azimuth(neutral[src])
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
    return Shell(src=src, unique=unique, triangles=local.astype(np.int32), incidence=incidence, az=azimuth(p),
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


def topology(model: FaceModel) -> Topology:
    key = f"{model.path}:{model.num_vertices}"
    topo = _TOPOLOGIES.get(key)
    if topo is not None:
        return topo
    neutral = model.neutral.astype(np.float64)
    skin_material = model.material_mask("M_Face", "M_BackHead")
    skin_tris = model.triangles[skin_material & (model.triangles < SKIN_END).all(axis=1)]
    skin = neutral[:SKIN_END]
    az = azimuth(skin)
    ring = _neck_loop(skin_tris, neutral)

    # The cap may cover anything above the lowest hairline any style draws; the beard anything below the eyes.
    keep_cap = np.zeros(SKIN_END, bool)
    lat, radius = _latitude(skin)
    keep_cap[:] = hair_field(az, lat, radius, _ear_distance(skin), HairlineParams.widest()) > -1.5
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
    topo = Topology(neck_ring=ring, cap=cap, beard=beard, front_ids=front_ids,
                    temple_ids=(np.flatnonzero(beside & (skin[:, 0] < -4)), np.flatnonzero(beside & (skin[:, 0] > 4))),
                    ear_ids=(np.flatnonzero(is_ear & (skin[:, 0] < 0)), np.flatnonzero(is_ear & (skin[:, 0] > 0))),
                    collar=_make_shell(neutral, skin_tris, skin[:, 1] < np.interp(abs_az, NECK_BASE_AZ, NECK_BASE_Y)
                                       + 0.8, seam=True),
                    skin_bins=radial_bins(skin))
    _TOPOLOGIES[key] = topo
    log.debug("accessory topology: cap %d verts / %d tris, beard %d / %d, neck ring %d", len(cap.src),
              len(cap.triangles), len(beard.src), len(beard.triangles), len(ring))
    return topo


def neck_anchor(model: FaceModel, vertices: np.ndarray) -> np.ndarray:
    """Pivot of the body frame: centroid of the ICT neck's lowest ring of vertices (canonical cm)."""
    return np.asarray(vertices, np.float64)[topology(model).neck_ring].mean(axis=0)


# Radial clearance map: for hair cards, the largest distance from the skull axis of anything in an (azimuth, y) bin

RMAP_AZ_BINS = 60
RMAP_Y0, RMAP_Y_BINS = -60.0, 80


def radial_bins(points: np.ndarray) -> np.ndarray:
    a = ((azimuth(points) + 180.0) / 360.0 * RMAP_AZ_BINS).astype(int) % RMAP_AZ_BINS
    y = np.clip((points[:, 1] - RMAP_Y0).astype(int), 0, RMAP_Y_BINS - 1)
    return a * RMAP_Y_BINS + y


def radial_map(groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(az bins, y bins) max radius over (points, flat bins) groups, dilated so sparse meshes leave no holes."""
    rmap = np.zeros(RMAP_AZ_BINS * RMAP_Y_BINS)
    for points, bins in groups:
        np.maximum.at(rmap, bins, np.hypot(points[:, 0], points[:, 2] - AXIS_Z))
    rmap = rmap.reshape(RMAP_AZ_BINS, RMAP_Y_BINS)
    # Fill bins that sparse meshes leave empty from their neighbours; keep measured bins as they are (dilating
    # everything would push hair off steep parts of the skull).
    filled = scipy.ndimage.maximum_filter(rmap, size=3, mode=("wrap", "nearest"))
    return np.where(rmap > 0, rmap, filled)


def radial_lookup(rmap: np.ndarray, points: np.ndarray) -> np.ndarray:
    a = ((azimuth(points) + 180.0) / 360.0 * RMAP_AZ_BINS).astype(int) % RMAP_AZ_BINS
    y = np.clip((points[..., 1] - RMAP_Y0).astype(int), 0, RMAP_Y_BINS - 1)
    return rmap[a, y]
