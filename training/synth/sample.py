"""One synthetic sample and its ground truth for any layout: 2D projections, canonical 3D points, visibility.

Visibility is read from the rendered depth and part-id buffers, so it covers self-occlusion (the nose hiding the
far cheek), accessories (hair, glasses, hands) and the image border, for points of any layout, after the fact.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core import geometry
from core.facemodel import FaceModel, load_facemodel
from core.layouts import Layout

# Points whose buffer depth is nearer than the point by more than this (cm) are hidden. Landmarks lie on the
# surface, so the buffer depth there equals theirs up to rasterisation; 0.5 cm absorbs grazing angles.
OCCLUSION_TOLERANCE_CM = 0.5


@dataclass
class LandmarkTruth:
    """Ground truth of one layout on one sample; arrays in the layout's order."""

    points_2d: np.ndarray          # (N, 2) pixels
    points_3d: np.ndarray          # (N, 3) canonical cm, this identity and expression (unposed)
    queries: np.ndarray            # (N, 3) canonical cm on the neutral face: what the detector is asked for
    depth: np.ndarray              # (N,) camera z, cm
    in_frame: np.ndarray           # (N,) bool
    self_visible: np.ndarray       # (N,) bool: not hidden by the head itself
    unoccluded: np.ndarray         # (N,) bool: not hidden by hair, glasses, hands...

    @property
    def visibility(self) -> np.ndarray:
        return (self.in_frame & self.self_visible & self.unoccluded).astype(np.float32)


@dataclass
class Sample:
    image: np.ndarray              # (H, W, 3) uint8 RGB
    identity: np.ndarray
    expression: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    depth: np.ndarray              # (H, W) float32 (float16 from a clip) camera z of the nearest surface, inf if empty
    part_id: np.ndarray            # (H, W) int16, -1 where empty
    head_depth: np.ndarray         # (H, W) float32 (float16 from a clip) camera z of the head alone (no hair, hands...)
    occluder_ids: tuple[int, ...] = ()
    tags: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def vertices(self, model: FaceModel | None = None) -> np.ndarray:
        return (model or load_facemodel()).vertices(self.identity, self.expression)

    def truth(self, layout: Layout, model: FaceModel | None = None, vertices: np.ndarray | None = None) -> LandmarkTruth:
        model = model or load_facemodel()
        verts = vertices if vertices is not None else self.vertices(model)
        points_3d = layout.points(verts, model.triangles)
        cam = geometry.to_camera(points_3d, self.R, self.t)
        uv = geometry.project(cam, self.K)
        in_frame, self_visible, unoccluded = point_visibility(cam[:, 2], uv, self.depth, self.part_id,
                                                              self.occluder_ids, self.head_depth)
        return LandmarkTruth(points_2d=uv.astype(np.float32), points_3d=points_3d.astype(np.float32),
                             queries=layout.points(model.neutral, model.triangles).astype(np.float32),
                             depth=cam[:, 2].astype(np.float32), in_frame=in_frame, self_visible=self_visible,
                             unoccluded=unoccluded)

    def save(self, folder: Path, stem: str, image_format: str = "jpg",
             targets: dict[str, np.ndarray] | None = None) -> Path:
        """Write `stem.jpg|png` and `stem.npz` (everything else, plus `target_*` arrays from
        `training_targets` if given); returns the npz path."""
        folder.mkdir(parents=True, exist_ok=True)
        image_path = folder / f"{stem}.{image_format}"
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
        if not cv2.imwrite(str(image_path), cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {image_path}")
        npz_path = folder / f"{stem}.npz"
        partial = folder / f"{stem}.npz.partial"  # renamed when complete: a killed run leaves no broken npz
        with open(partial, "wb") as f:
            np.savez_compressed(
                f, image_file=image_path.name, identity=self.identity, expression=self.expression, K=self.K,
                R=self.R, t=self.t, depth=self.depth.astype(np.float16), head_depth=self.head_depth.astype(np.float16),
                part_id=self.part_id.astype(np.int16), occluder_ids=np.array(self.occluder_ids, int),
                tags=json.dumps(self.tags, default=_jsonable),
                **{f"target_{k}": v for k, v in (targets or {}).items()})
        os.replace(partial, npz_path)
        return npz_path

    @classmethod
    def load(cls, npz_path: Path) -> "Sample":
        npz_path = Path(npz_path)
        with np.load(npz_path) as data:
            image_path = npz_path.parent / str(data["image_file"])
            bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise OSError(f"could not read the image {image_path} of sample {npz_path}")
            return cls(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), identity=data["identity"],
                       expression=data["expression"], K=data["K"], R=data["R"], t=data["t"],
                       depth=data["depth"].astype(np.float32), part_id=data["part_id"],
                       head_depth=data["head_depth"].astype(np.float32),
                       occluder_ids=tuple(int(i) for i in data["occluder_ids"]), tags=json.loads(str(data["tags"])))


# What a training sample carries, precomputed at generation so data loading stays cheap.
TRAINING_LAYOUTS = ("ibug68", "wflw98", "dense")
TRAINING_STYLES = ("ibug2d", "aflw3d", "wflw")


def training_targets(sample: Sample, model: FaceModel | None = None) -> dict[str, np.ndarray]:
    """Per layout `<layout>_2d` (N, 2), `<layout>_vis` (N,) uint8, `<layout>_3d` (N, 3) float16 canonical cm; per
    annotation style `style_<name>_2d`; and `box` (x0, y0, x1, y1) around the iBUG-68 points."""
    from core.layouts import load_layout
    from training.synth.styles import get_style, style_points

    model = model or load_facemodel()
    verts = sample.vertices(model)
    out: dict[str, np.ndarray] = {}
    for name in TRAINING_LAYOUTS:
        truth = sample.truth(load_layout(name), model, verts)
        out[f"{name}_2d"] = truth.points_2d
        out[f"{name}_vis"] = truth.visibility.astype(np.uint8)
        out[f"{name}_3d"] = truth.points_3d.astype(np.float16)
    for name in TRAINING_STYLES:
        out[f"style_{name}_2d"] = style_points(get_style(name), verts, sample.K, sample.R, sample.t, model)
    pts = out["ibug68_2d"]
    out["box"] = np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)
    return out


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def point_visibility(z: np.ndarray, uv: np.ndarray, depth: np.ndarray, part_id: np.ndarray,
                     occluder_ids: tuple[int, ...], head_depth: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify points (camera z and pixel positions) against depth buffers of the same image size.

    Self-occlusion is read from the head-only depth (hair in front of a hidden cheek must not hide the fact that
    the nose hides it too); occlusion by accessories from the full depth and part ids.
    """
    h, w = depth.shape
    in_frame = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (z > 0)
    col = np.clip(np.floor(uv[:, 0]).astype(int), 0, w - 1)
    row = np.clip(np.floor(uv[:, 1]).astype(int), 0, h - 1)
    behind_head = head_depth[row, col] < z - OCCLUSION_TOLERANCE_CM
    by_occluder = (depth[row, col] < z - OCCLUSION_TOLERANCE_CM) & np.isin(part_id[row, col], occluder_ids)
    # Outside the frame we cannot tell from the buffers; treat as not hidden (in_frame carries that fact).
    self_visible = ~behind_head | ~in_frame
    unoccluded = ~by_occluder | ~in_frame
    return in_frame, self_visible, unoccluded
