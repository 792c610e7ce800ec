"""The frl layout: the Face Research Lab 189-point template placed on the surface from annotated photos (FRL
London and Canada, DeBruine & Jones 2017, CC BY 4.0). A scaled orthographic camera is fitted to each photo at the
points FRL shares with ibug68 and wflw98, every template point is cast onto the neutral mesh through it, and the
per-photo positions are combined; points that miss the face or spread too far are left out."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from core import geometry
from core.facemodel import FaceModel, load_facemodel
from core.layouts import Layout, closest_surface_point, load_layout
from core.paths import REPO_DIR

log = logging.getLogger(__name__)

# FRL London photos with 189-point .tem templates (DeBruine & Jones 2017, CC BY 4.0), and the template's names.
FRL_ROOT = REPO_DIR.parent / "shared" / "realfaces" / "frl_ccby"
FRL_NAMES_FILE = "frl_template_points.csv"
# FRL template points that are also points of a built-in layout: they fit each photo's camera. FRL's left and
# right are the image's, so its left eye is the subject's right eye (iBUG 36-39, x < 0 on the ICT face).
FRL_ANCHORS: dict[int, tuple[str, int]] = {
    18: ("ibug68", 36), 22: ("ibug68", 39), 23: ("ibug68", 42), 27: ("ibug68", 45),   # eye corners
    87: ("ibug68", 48), 93: ("ibug68", 54), 90: ("ibug68", 51), 106: ("ibug68", 57),  # mouth corners, lip middles
    55: ("ibug68", 33), 129: ("ibug68", 8),                                          # under the nose, chin
    0: ("wflw98", 96), 1: ("wflw98", 97),                                            # pupils
}
FRL_OUTER_EYE_CORNERS = (18, 27)
# Surfaces a photo's points are cast onto, in groups. A layout point is snapped onto the group that most of its
# casts hit; a point cast mostly into the mouth is not a surface point of the closed-mouth neutral face.
FRL_SURFACES: dict[str, tuple[str, ...]] = {
    "skin": ("M_Face", "M_BackHead"),
    "eye": ("M_ScleraLeft", "M_ScleraRight", "M_IrisLeft", "M_IrisRight"),
    "mouth": ("M_Teeth", "M_GumsTongue"),
}
FRL_MIN_HIT_SHARE = 0.5      # a point must land on the mesh in at least this share of the photos
FRL_POSE_SD_DEG = 5.0        # prior deviation of yaw and pitch in these frontal studio photos
FRL_MAX_SPREAD_CM = 1.5      # median distance of the per-photo positions to the placed point


@dataclass(frozen=True)
class WeakCamera:
    """Scaled orthographic camera: pixel = scale * (R @ X)[:2] + centre, depth (R @ X)[2] (larger is farther)."""

    scale: float
    R: np.ndarray
    centre: np.ndarray

    def project(self, points: np.ndarray) -> np.ndarray:
        return self.scale * (np.asarray(points) @ self.R.T)[:, :2] + self.centre

    def depth(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) @ self.R.T)[:, 2]


def fit_weak_camera(points_3d: np.ndarray, points_2d: np.ndarray, pose_sd_deg: float | None = None,
                    point_sd_cm: float = 0.3) -> WeakCamera:
    """Least-squares scaled orthographic camera of canonical points (K, 3) onto pixels (K, 2), starting frontal.

    With `pose_sd_deg`, yaw and pitch have a zero-mean normal prior of that deviation against point residuals of
    `point_sd_cm` on the face: without it, a face whose proportions differ from the canonical face's is
    explained by turning the head (yaw narrows the face, pitch shortens it) instead of by the residuals.
    """
    points_3d, points_2d = np.asarray(points_3d, float), np.asarray(points_2d, float)
    spread = np.linalg.norm(points_2d - points_2d.mean(0), axis=1).mean()
    scale0 = spread / np.linalg.norm(points_3d[:, :2] - points_3d[:, :2].mean(0), axis=1).mean()
    centre0 = points_2d.mean(0) - scale0 * (points_3d @ geometry.FRONTAL.T)[:, :2].mean(0)

    def camera(params: np.ndarray) -> WeakCamera:
        return WeakCamera(float(np.exp(params[3])), geometry.pose_to_rotation(*params[:3]), params[4:6])

    def residuals(params: np.ndarray) -> np.ndarray:
        r = (camera(params).project(points_3d) - points_2d).ravel() / (point_sd_cm * scale0)
        return r if pose_sd_deg is None else np.r_[r, params[:2] / pose_sd_deg]

    return camera(least_squares(residuals, np.r_[0.0, 0.0, 0.0, np.log(scale0), centre0]).x)


def cast_onto_mesh(pixels: np.ndarray, camera: WeakCamera, vertices: np.ndarray,
                   triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The front-most triangle under each pixel (M, 2) in the camera's view, as (rows of `triangles`, -1 where
    none; barycentric (M, 3)): the ray test of a scaled orthographic camera."""
    corners = camera.project(vertices)[triangles]                          # (T, 3, 2)
    depth = camera.depth(vertices)[triangles]                              # (T, 3)
    centroids = corners.mean(1)
    reach = float(np.linalg.norm(corners - centroids[:, None], axis=2).max())
    balls = cKDTree(centroids).query_ball_point(pixels, reach + 1e-9)
    rows = np.repeat(np.arange(len(pixels)), [len(b) for b in balls])
    cand = np.concatenate([np.asarray(b, int) for b in balls])
    a, b, c = corners[cand, 0], corners[cand, 1], corners[cand, 2]
    e1, e2, p = b - a, c - a, pixels[rows] - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (p[:, 0] * e2[:, 1] - p[:, 1] * e2[:, 0]) / det
        w = (e1[:, 0] * p[:, 1] - e1[:, 1] * p[:, 0]) / det
    bary = np.stack([1 - v - w, v, w], 1)
    inside = (np.abs(det) > 1e-12) & (bary >= 0).all(1)
    z = np.where(inside, (bary * depth[cand]).sum(1), np.inf)
    hit_tri = np.full(len(pixels), -1)
    hit_bary = np.zeros((len(pixels), 3))
    order = np.lexsort((z, rows))
    first = order[np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1]] if len(order) else order
    first = first[np.isfinite(z[first])]
    hit_tri[rows[first]], hit_bary[rows[first]] = cand[first], bary[first]
    return hit_tri, hit_bary


@dataclass(frozen=True)
class FRLPhoto:
    """One annotated FRL photo: its template points (189, 2), pixels, and the camera fitted to the anchors."""

    annotation: Path
    points: np.ndarray
    camera: WeakCamera


def frl_template_names(root: Path = FRL_ROOT) -> list[str]:
    """The FRL template's point names by index, from `frl_template_points.csv` (columns index, name)."""
    with open(root / FRL_NAMES_FILE, newline="") as handle:
        rows = {int(row["index"]): row["name"] for row in csv.DictReader(handle)}
    return [rows[i] for i in range(len(rows))]


def _frl_anchor_points(model: FaceModel) -> np.ndarray:
    """Canonical positions of the FRL_ANCHORS (from the built-in layout files), in FRL_ANCHORS order."""
    return np.array([load_layout(name).canonical_points(model)[i] for name, i in FRL_ANCHORS.values()], float)


def fit_frl_photos(root: Path = FRL_ROOT, model: FaceModel | None = None) -> list[FRLPhoto]:
    """Every annotated FRL photo under `root` with a scaled orthographic camera fitted to the anchor points."""
    from training.datasets.common import annotations_with_images
    from training.datasets.frl import FRL_TEMPLATE_POINTS, parse_tem

    model = model or load_facemodel()
    anchors = _frl_anchor_points(model)
    photos = []
    for tem, _ in annotations_with_images(root, sorted(root.rglob("*.tem")), "frl", ".tem"):
        points = parse_tem(tem)
        if len(points) != FRL_TEMPLATE_POINTS:
            raise ValueError(f"{tem}: expected the {FRL_TEMPLATE_POINTS}-point FRL template, found {len(points)}")
        photos.append(FRLPhoto(tem, points, fit_weak_camera(anchors, points[list(FRL_ANCHORS)], FRL_POSE_SD_DEG)))
    return photos


def _frl_contours(template_lines: list[list[int]], kept: list[int]) -> dict[str, list[int]]:
    """The template's drawing lines over the kept points (layout indices), split where a point was left out."""
    where = {frl: i for i, frl in enumerate(kept)}
    contours: dict[str, list[int]] = {}
    for k, line in enumerate(template_lines):
        pieces: list[list[int]] = [[]]
        for frl in line:
            if frl in where:
                pieces[-1].append(where[frl])
            elif pieces[-1]:
                pieces.append([])
        for j, piece in enumerate(p for p in pieces if len(set(p)) >= 2):
            contours[f"line{k}" + (f"_{j}" if j else "")] = piece
    return contours


def frl_reprojection_errors(layout: Layout, photos: list[FRLPhoto], template_indices: list[int],
                            model: FaceModel | None = None) -> np.ndarray:
    """Per photo and layout point, the distance between the layout point seen by the photo's camera and its
    annotation, as a fraction of the annotated outer-eye-corner distance: (photos, N)."""
    points = layout.canonical_points(model).astype(np.float64)
    errors = []
    for photo in photos:
        iod = np.linalg.norm(photo.points[FRL_OUTER_EYE_CORNERS[0]] - photo.points[FRL_OUTER_EYE_CORNERS[1]])
        errors.append(np.linalg.norm(photo.camera.project(points) - photo.points[template_indices], axis=1) / iod)
    return np.array(errors)


def build_frl(root: Path = FRL_ROOT) -> Layout:
    """FRL 189-point template points placed on the surface from annotated photos.

    Each photo's camera is fitted to the points FRL shares with ibug68/wflw98 (FRL_ANCHORS); every template
    point is cast onto the neutral mesh seen by that camera (front-most triangle under it), giving one canonical
    position per photo. A point's position is the coordinate-wise median over the photos, snapped to the closest
    point of the surface group (skin or eye) most casts hit. Points that miss the mesh in most photos, land in
    the mouth, or whose per-photo positions spread too far (median distance to the placed point) are left out.
    """
    from training.datasets.frl import parse_tem_template_lines

    model = load_facemodel()
    verts = model.neutral.astype(np.float64)
    names = frl_template_names(root)
    photos = fit_frl_photos(root, model)
    group_names = list(FRL_SURFACES)
    masks = {g: np.any([model.material_mask(m) for m in mats], axis=0) for g, mats in FRL_SURFACES.items()}
    cast_rows = np.flatnonzero(np.any(list(masks.values()), axis=0))
    group_of = np.full(len(model.triangles), -1)
    for g, name in enumerate(group_names):
        group_of[masks[name]] = g

    n = len(names)
    positions = np.full((len(photos), n, 3), np.nan)
    groups = np.full((len(photos), n), -1)
    for k, photo in enumerate(photos):
        hit, bary = cast_onto_mesh(photo.points, photo.camera, verts, model.triangles[cast_rows])
        landed = hit >= 0
        rows = cast_rows[hit[landed]]
        positions[k, landed] = np.einsum("nk,nkd->nd", bary[landed], verts[model.triangles[rows]])
        groups[k, landed] = group_of[rows]

    kept, tris, barys, dropped = [], [], [], {}
    for i in range(n):
        landed = groups[:, i] >= 0
        share = landed.mean()
        if share < FRL_MIN_HIT_SHARE:
            dropped[i] = f"on the mesh in {share:.0%} of the photos"
            continue
        group = int(np.bincount(groups[landed, i]).argmax())
        if group_names[group] == "mouth":
            dropped[i] = "cast into the mouth"
            continue
        samples = positions[groups[:, i] == group, i]
        tri, bary = closest_surface_point(np.median(samples, 0), verts, model.triangles, masks[group_names[group]])
        placed = bary[0] @ verts[model.triangles[tri[0]]]
        spread = float(np.median(np.linalg.norm(samples - placed, axis=1)))
        log.info("frl %3d %-60s %-4s on mesh %4.0f%%  spread %.2f cm", i, names[i], group_names[group],
                 100 * share, spread)
        if spread > FRL_MAX_SPREAD_CM:
            dropped[i] = f"spread {spread:.2f} cm"
            continue
        kept.append(i)
        tris.append(int(tri[0]))
        barys.append(bary[0])
    for i, why in dropped.items():
        log.info("frl %3d %-60s left out: %s", i, names[i], why)

    layout = Layout("frl", np.array(tris), np.array(barys, np.float32),
                    names=tuple(f"{i}: {names[i]}" for i in kept),
                    contours=_frl_contours(parse_tem_template_lines(photos[0].annotation), kept),
                    description=f"Face Research Lab 189-point template (webmorph .tem): the {len(kept)} points on "
                                f"the face surface, placed from {len(photos)} FRL London and Canada photos "
                                f"(DeBruine & Jones 2017, CC BY 4.0); each name starts with the point's template "
                                f"index. Left and right in the names are the image's (see "
                                f"assets/layouts/README.md).")
    errors = frl_reprojection_errors(layout, photos, kept, model)
    log.info("frl: %d of %d template points kept (at most %.1f cm spread, on the mesh in >= %.0f%% of %d photos); "
             "anchor-camera reprojection error %.2f%% of the outer-eye-corner distance (median %.2f%%)",
             len(kept), n, FRL_MAX_SPREAD_CM, 100 * FRL_MIN_HIT_SHARE, len(photos), 100 * errors.mean(),
             100 * np.median(errors))
    return layout
