"""Training data: synthetic samples and real datasets as torch Datasets, weighted mixing, sampling and collation.

    ds = build_mix("synthetic:root=data/synth,style=mix,weight=3;300w:root=/data/300W,weight=1", image_size=256)
    sampler = MixSampler(ds, seed=0)              # data order = f(seed, epoch); distributed via rank/world
    loader = DataLoader(ds, batch_size=16, sampler=sampler, collate_fn=collate)

Every item is a dict of tensors (Q queries):
    image (3, H, W) float [0, 1]      queries, normals (Q, 3) canonical cm / unit    style_id () long
    targets_2d (Q, 2) px              visibility (Q,) 0/1 any cause (frame, self, occluders)
    valid (Q,) 1 where the 2D target exists (0 for NaN points and for face-free negatives)
    self_visible (Q,) 0/1 not hidden by the head itself: the 3D head's visibility target (see losses.py)
    points_3d (Q, 3) canonical cm     has_3d, has_vis, has_camera, is_face () float flags
    K, R, t (3, 3), (3, 3), (3,)      box (4,) x0 y0 x1 y1 of the face     crop_box (4,) box (jittered) for a
                                                                            detector without STN to crop by
`collate` pads the queries to the batch's largest Q and adds `mask` (B, Q).

Styles of a synthetic sample (`style=`): `canonical` asks for the iBUG-68 points plus a random subset of the
`dense` layout, with the fixed-surface targets (2D, 3D, visibility). `ibug2d` / `aflw3d` ask for ibug68 and
`wflw` for wflw98, with the targets that dataset's annotators would have clicked (`target_style_*`): those
points are not fixed surface points, so their 3D and visibility targets are masked (has_3d = has_vis = 0); the
camera still applies. `mix` picks a style per item (MIX_STYLES), so the semantic correction sees the
inconsistencies it exists to absorb. Negatives: with probability `negatives` the image is replaced by a
face-free background (BackgroundBank), or (share `headless`) by the sample's body without its face on one, or
(share `shapes`) by flat geometric shapes on a flat background (a grey square on black is not a face), and
every landmark target is masked (is_face = 0). Scene augmentations (training.compositing): `zoom_out` shrinks
the person onto a fresh background (down to `zoom_min` times its size; K follows), `distractors` pastes
skin-toned blobs away from the face, `letterbox` shows a band of the image between black bars (a wide frame in
the square model input); `zoom_anywhere` is the share of shrunk persons placed at any height, not on the bottom
edge (for the face finder, `training.train_finder`).

Synthetic augmentation is photometric only (plus a jittered `crop_box`): a geometric warp would invalidate K.
Real datasets have no camera, so they are also rotated and mirrored (RealDataset). Randomness of an item comes from its key: the sampler passes
(index, draw seed), so an item is a pure function of (seed, epoch, position) whatever the number of workers.
"""
from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data import Dataset, Sampler

from core.layouts import SEMANTICS, available_layouts, load_layout
from training import compositing

log = logging.getLogger(__name__)

STYLE_LAYOUTS = {"canonical": "ibug68", "ibug2d": "ibug68", "aflw3d": "ibug68", "wflw": "wflw98"}
MIX_STYLES = {"canonical": 0.4, "ibug2d": 0.2, "aflw3d": 0.2, "wflw": 0.2}
MIX_PROBABILITIES = np.array(list(MIX_STYLES.values())) / sum(MIX_STYLES.values())
DENSE_LAYOUT = "dense"
# Options of a synthetic spec; a real dataset's spec takes weight, image_size, augment, limit, val_fraction,
# context, rotate and mirror, and passes the rest to its reader (training.datasets). val_fraction (either kind)
# replaces the config's share held out of that dataset.
SYNTHETIC_OPTIONS = ("root", "style", "weight", "image_size", "queries", "negatives", "augment", "limit", "val_fraction",
                     "zoom_out",
                     "zoom_min", "distractors", "headless", "letterbox", "zoom_anywhere", "shapes")

Key = int | tuple[int, int]


@functools.lru_cache(maxsize=None)
def layout_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Canonical points (N, 3) cm and unit normals (N, 3) of a layout (cached: the face model is loaded once)."""
    layout = load_layout(name)
    return layout.canonical_points(), layout.canonical_normals()


@functools.lru_cache(maxsize=1)
def background_bank():
    from training.synth.backgrounds import BackgroundBank

    return BackgroundBank()


def item_rng(seed: int, key: Key) -> tuple[int, np.random.Generator]:
    """(index, generator) of a key: a plain index (fixed randomness, for validation) or (index, draw seed)."""
    if isinstance(key, (tuple, list)):
        index, draw = int(key[0]), int(key[1])
        return index, np.random.default_rng([seed, index, draw])
    return int(key), np.random.default_rng([seed, int(key)])


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 in [0, 1] with jittered exposure, colour, contrast, saturation, gamma, blur and
    noise. Gain, contrast and saturation are one affine colour map (cv2.transform) and gamma a table, on uint8:
    in float32 numpy this function cost more than reading the sample."""
    gain = rng.uniform(0.7, 1.3) * rng.uniform(0.9, 1.1, 3)
    contrast = rng.uniform(0.7, 1.3)
    saturation = 0.0 if rng.random() < 0.1 else rng.uniform(0.6, 1.4)
    mean = float((np.array(cv2.mean(image)[:3]) * gain).mean())
    # x -> S (k G x + (1 - k) mean): gain G, contrast k about the mean, saturation S about the channels' mean.
    to_grey = np.full((3, 3), 1 / 3)
    colour = (to_grey + saturation * (np.eye(3) - to_grey)) @ (contrast * np.diag(gain))
    affine = np.concatenate([colour, np.full((3, 1), (1 - contrast) * mean)], axis=1)
    img = cv2.transform(image, affine)
    gamma_table = (np.arange(256, dtype=np.float32) / 255) ** np.float32(rng.uniform(0.8, 1.25))
    img = cv2.LUT(img, gamma_table)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.5:
        noise = np.empty_like(img)
        cv2.setRNGSeed(int(rng.integers(2 ** 31)))  # OpenCV's generator is ~20x faster than numpy's here
        cv2.randn(noise, 0.0, float(rng.uniform(0.005, 0.03)))
        img += noise
    return np.clip(img, 0, 1, out=img)


def jitter_box(box: np.ndarray, rng: np.random.Generator, shift: float = 0.05, scale: float = 0.1) -> np.ndarray:
    """A box moved by ~shift of its side and scaled by ~exp(scale): what an imperfect face detector gives."""
    centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
    centre = centre + rng.normal(0, shift, 2) * size.max()
    size = size * math.exp(rng.normal(0, scale))
    return np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float32)


def grow_box(box: np.ndarray, margin: float) -> np.ndarray:
    """(x0, y0, x1, y1) grown on every side by `margin` times its longer side."""
    grow = margin * float(max(box[2] - box[0], box[3] - box[1]))
    return np.asarray(box, np.float64) + np.array([-grow, -grow, grow, grow])


def points_box(points: np.ndarray) -> np.ndarray:
    finite = points[np.isfinite(points).all(1)]
    if len(finite) == 0:
        raise ValueError("no finite landmark to make a face box from")
    return np.concatenate([finite.min(0), finite.max(0)]).astype(np.float32)


def split_indices(n: int, split: str, val_fraction: float) -> np.ndarray:
    """Deterministic held-out split: the last ceil(n * val_fraction) items are `val` (at least one if n > 1)."""
    if split == "all":
        return np.arange(n)
    n_val = min(n - 1, math.ceil(n * val_fraction)) if n > 1 and val_fraction > 0 else 0
    if split == "train":
        return np.arange(n - n_val)
    if split == "val":
        return np.arange(n - n_val, n)
    raise ValueError(f"split must be train, val or all, got {split!r}")


def _to_tensors(item: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in item.items():
        if key == "style_id":
            out[key] = torch.tensor(int(value), dtype=torch.long)
        elif isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        else:
            out[key] = torch.tensor(float(value), dtype=torch.float32)
    return out


def _empty_targets(q: int) -> dict[str, np.ndarray]:
    return {"targets_2d": np.zeros((q, 2), np.float32), "visibility": np.zeros(q, np.float32),
            "valid": np.zeros(q, np.float32), "self_visible": np.zeros(q, np.float32),
            "points_3d": np.zeros((q, 3), np.float32)}


class SyntheticDataset(Dataset):
    """Samples written by `python -m training.synth generate` (see the module docstring for styles/negatives).

    `image_size` resizes frames (the long side; a non-square frame is padded at the bottom/right) and scales K
    with them, so the camera stays valid. `queries_per_image` is the total number of canonical-style queries
    (the 68 iBUG points plus random dense points); other styles ask for their layout's points.
    """

    def __init__(self, root: str | Path, style: str = "canonical", queries_per_image: int = 256,
                 negatives: float = 0.05, augment: bool = True, image_size: int | None = None, seed: int = 0,
                 split: str = "all", val_fraction: float = 0.05, limit: int | None = None, zoom_out: float = 0.0,
                 distractors: float = 0.0, headless: float = 0.0, zoom_min: float = compositing.ZOOM_RANGE[0],
                 letterbox: float = 0.0, zoom_anywhere: float = 0.0, shapes: float = 0.0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"synthetic data folder {self.root} does not exist; make it with "
                                    f"`python -m training.synth generate --out {self.root} --num N`")
        if style != "mix" and style not in STYLE_LAYOUTS:
            raise ValueError(f"unknown synthetic style {style!r}; valid: {', '.join(STYLE_LAYOUTS)}, mix")
        # Only complete samples: the image is written before the npz, so an npz with its image is finished
        # (a generator may still be writing into this folder).
        files = [p for p in sorted(self.root.glob("sample_*.npz")) if p.with_suffix(".jpg").is_file()
                 or p.with_suffix(".png").is_file()]
        files = files[:limit] if limit else files
        self.files = [files[i] for i in split_indices(len(files), split, val_fraction)]
        if not self.files:
            raise ValueError(f"no samples (sample_*.npz with its image) in {self.root} for split {split!r}")
        self.style = style
        self.queries_per_image = queries_per_image
        self.negatives = negatives
        self.augment = augment
        self.image_size = image_size
        self.seed = seed
        # Scene augmentations (training.compositing), with augment only: shares of faces shrunk onto a fresh
        # background (down to zoom_min times its size), of images given skin-toned distractors, of negatives made of
        # the body without the face, and of images letterboxed as a wide frame is; of the shrunk persons placed at
        # any height (compositing.zoom_out's `anywhere`).
        self.zoom_out = zoom_out
        self.zoom_min = zoom_min
        self.zoom_anywhere = zoom_anywhere
        self.letterbox = letterbox
        self.distractors = distractors
        self.headless = headless
        # Off by default so that a resumed run draws the same random numbers as before.
        self.shapes = shapes

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"SyntheticDataset({str(self.root)!r}, style={self.style}, samples={len(self)})"

    def __getitem__(self, key: Key) -> dict[str, torch.Tensor]:
        index, rng = item_rng(self.seed, key)
        path = self.files[index]
        style = self.style
        if style == "mix":
            style = str(rng.choice(list(MIX_STYLES), p=MIX_PROBABILITIES))
        negative = rng.random() < self.negatives
        # Which points of which precomputed layouts this item asks for.
        layout = STYLE_LAYOUTS[style]
        names, rows = [layout], [np.arange(len(layout_arrays(layout)[0]))]
        if style == "canonical":
            num_dense = len(layout_arrays(DENSE_LAYOUT)[0])
            extra = min(num_dense, max(0, self.queries_per_image - len(rows[0])))
            names.append(DENSE_LAYOUT)
            rows.append(np.sort(rng.choice(num_dense, extra, replace=False)))
        with np.load(path) as data:
            image_path = path.parent / str(data["image_file"])
            K, R, t = data["K"].astype(np.float32), data["R"].astype(np.float32), data["t"].astype(np.float32)
            box = data["target_box"].astype(np.float32)
            part_id = data["part_id"] if self.augment and (self.zoom_out or self.headless) else None
            q = sum(len(r) for r in rows)
            targets = _empty_targets(q) if negative else self._targets(data, names, rows, style, R, t)
        queries_all = np.concatenate([layout_arrays(n)[0][r] for n, r in zip(names, rows)])
        normals_all = np.concatenate([layout_arrays(n)[1][r] for n, r in zip(names, rows)])
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"could not read the image {image_path} of sample {path}")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        if negative:
            face_free = None
            if part_id is not None and self.headless and rng.random() < self.headless:
                face_free = compositing.headless(image, part_id, grow_box(box, 0.25),
                                                 background_bank().sample(rng, w, h))
            if face_free is None and self.shapes and rng.random() < self.shapes:
                face_free = compositing.flat_shapes(h, w, rng)
            image = face_free if face_free is not None else background_bank().sample(rng, w, h)
        elif part_id is not None and self.zoom_out and rng.random() < self.zoom_out:
            image, A = compositing.zoom_out(image, part_id, background_bank().sample(rng, w, h), rng,
                                            scale_range=(self.zoom_min, compositing.ZOOM_RANGE[1]),
                                            anywhere=bool(self.zoom_anywhere) and rng.random() < self.zoom_anywhere)
            K, targets["targets_2d"], box = _moved(A, K, targets["targets_2d"], box)
        if self.augment and self.distractors and rng.random() < self.distractors:
            image = compositing.paste_distractors(image, rng, keep_out=None if negative else grow_box(box, 0.15))
        if self.augment and self.letterbox and rng.random() < self.letterbox:
            # A negative's band is anywhere (its box is not a face's).
            banded = compositing.letterbox(image, np.array([0, 0, 1, 1.0]) if negative else box, rng)
            if banded is not None:
                image, A = banded
                K, targets["targets_2d"], box = _moved(A, K, targets["targets_2d"], box)
        if self.image_size and max(h, w) != self.image_size:
            image, scale = _resize_pad(image, self.image_size)
            K = np.diag([scale, scale, 1.0]).astype(np.float32) @ K
            targets["targets_2d"] = targets["targets_2d"] * scale
            box = box * scale
        image = photometric(image, rng) if self.augment else image.astype(np.float32) / 255.0
        crop_box = jitter_box(box, rng) if self.augment else box
        canonical = style == "canonical" and not negative
        targets["targets_2d"] = np.nan_to_num(targets["targets_2d"])
        item = {"image": image.transpose(2, 0, 1), "queries": queries_all, "normals": normals_all, **targets,
                "has_3d": float(canonical), "has_vis": float(canonical), "has_camera": float(not negative),
                "is_face": float(not negative), "style_id": SEMANTICS[style], "box": box, "crop_box": crop_box,
                "K": K, "R": R, "t": t}
        return _to_tensors(item)

    @staticmethod
    def _targets(data: Any, names: list[str], rows: list[np.ndarray], style: str, R: np.ndarray, t: np.ndarray
                 ) -> dict[str, np.ndarray]:
        from training.synth.sample import point_visibility

        def gather(kind: str) -> np.ndarray:
            return np.concatenate([data[f"target_{n}_{kind}"][r] for n, r in zip(names, rows)]).astype(np.float32)

        pts2d, pts3d, vis = gather("2d"), gather("3d"), gather("vis")
        self_visible = np.zeros_like(vis)
        if style == "canonical":
            # Self-occlusion alone, from the head-only depth: the 3D head's facing visibility cannot know about
            # hands or hair, so it is trained on what the head geometry decides.
            z = (pts3d @ R.T + t)[:, 2]
            _, self_vis, _ = point_visibility(
                z, pts2d, data["depth"].astype(np.float32), data["part_id"],
                tuple(int(i) for i in data["occluder_ids"]), data["head_depth"].astype(np.float32))
            self_visible = self_vis.astype(np.float32)
        else:
            pts2d = data[f"target_style_{style}_2d"].astype(np.float32)
        return {"targets_2d": pts2d, "visibility": vis, "valid": np.isfinite(pts2d).all(1).astype(np.float32),
                "self_visible": self_visible, "points_3d": pts3d}


def _moved(A: np.ndarray, K: np.ndarray, points: np.ndarray, box: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K, 2D points and box after the image moved by A (2, 3): a uniform scale A[0, 0] and a shift A[:, 2]."""
    K = (np.vstack([A, [0.0, 0.0, 1.0]]) @ K).astype(np.float32)
    points = (points * A[0, 0] + A[:, 2]).astype(np.float32)
    box = (box.reshape(2, 2) * A[0, 0] + A[:, 2]).reshape(4).astype(np.float32)
    return K, points, box


def _resize_pad(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Scale the long side to `size` (area filter when shrinking) and pad to a square at the bottom/right."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), image.dtype)
    out[:nh, :nw] = resized
    return out, scale


class RealDataset(Dataset):
    """A real dataset reader (training.datasets) as training items.

    The frame is cropped to a square of `context` times the landmarks' box side around the face (randomly
    shifted and scaled with `augment`, and rotated by a normal angle of `rotate` degrees' deviation), padded with
    black where it leaves the image, and resized to `image_size`; the points follow. A share `mirror` of the
    items is mirrored, with the queries mirrored in canonical space (x -> -x). The box the detector crops by
    (`crop_box`) is jittered like a synthetic sample's. No camera and no 3D ground truth (has_camera = has_3d = 0); visibility
    annotations (where a dataset has them) only weight the landmark loss, they do not train the 3D head's
    visibility (has_vis = 0: annotated occlusion is mostly by objects, which facing cannot explain).
    """

    def __init__(self, spec_or_reader: Any, image_size: int = 256, context: float = 2.0, augment: bool = True,
                 seed: int = 0, split: str = "all", val_fraction: float = 0.05, limit: int | None = None,
                 rotate: float = 0.0, mirror: float = 0.0) -> None:
        from training.datasets import open_dataset

        self.reader = open_dataset(spec_or_reader) if isinstance(spec_or_reader, str) else spec_or_reader
        name = spec_or_reader if isinstance(spec_or_reader, str) else repr(self.reader)
        if len(self.reader) == 0:
            raise ValueError(f"dataset {name} has no samples")
        first = self.reader[0]
        if first.layout not in available_layouts():
            raise ValueError(f"dataset {name}: its layout {first.layout!r} has no canonical layout file in "
                             f"assets/layouts (available: {', '.join(available_layouts())}), so it cannot be "
                             f"queried; leave it out of the mix or add a layout for it")
        if first.semantics not in SEMANTICS:
            raise ValueError(f"dataset {name}: semantics {first.semantics!r} has no style id in "
                             f"core.layouts.SEMANTICS ({', '.join(SEMANTICS)})")
        self.layout = first.layout
        self.style_id = SEMANTICS[first.semantics]
        n = min(len(self.reader), limit) if limit else len(self.reader)
        self.indices = split_indices(n, split, val_fraction)
        self.image_size = image_size
        self.context = context
        self.augment = augment
        self.seed = seed
        # With augment: the rotation's standard deviation (degrees) and the share of mirrored items.
        self.rotate = rotate
        self.mirror = mirror

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"RealDataset({self.reader!r}, layout={self.layout}, samples={len(self)})"

    def __getitem__(self, key: Key) -> dict[str, torch.Tensor]:
        index, rng = item_rng(self.seed, key)
        sample = self.reader[int(self.indices[index])]
        if sample.layout != self.layout:
            raise ValueError(f"{sample.image_path}: layout {sample.layout!r}, but this dataset's is {self.layout!r}")
        image = sample.load_image()
        points = sample.landmarks.astype(np.float64)
        box = points_box(points)
        centre, side = (box[:2] + box[2:]) / 2, float((box[2:] - box[:2]).max()) * self.context
        angle = 0.0
        if self.augment:
            centre = centre + rng.normal(0, 0.05, 2) * side
            side *= math.exp(rng.normal(0, 0.1))
            angle = math.radians(float(np.clip(rng.normal(0, self.rotate), -3 * self.rotate, 3 * self.rotate)))
        size = self.image_size
        scale = size / max(side, 1e-3)
        # Shrink by area first so the bilinear warp never skips pixels (aliasing on large frames); a resize maps
        # corner-origin coordinates by the same factor.
        pre = np.ones(2)
        if scale < 0.5:
            h, w = image.shape[:2]
            image = cv2.resize(image, (max(1, round(w * 2 * scale)), max(1, round(h * 2 * scale))),
                               interpolation=cv2.INTER_AREA)
            pre = np.array([image.shape[1] / w, image.shape[0] / h])
        # p_out = A (p - centre) + size / 2 in our corner-origin pixels, A = scale x rotation; cv2 puts pixel
        # centres at integers, hence the half-pixel terms.
        A = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        b = size / 2 - A @ centre
        A_small = A / pre  # columns divided: the warp reads the shrunk image
        M = np.concatenate([A_small, (b + A_small @ [0.5, 0.5] - 0.5)[:, None]], axis=1)
        crop = cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        pts = points @ A.T + b
        queries, normals = layout_arrays(self.layout)
        if self.augment and rng.random() < self.mirror:
            # The mirror image of a face is a face whose canonical points are mirrored (x -> -x): with 3D queries,
            # no left/right index table is needed.
            crop = np.ascontiguousarray(crop[:, ::-1])
            pts = pts * [-1.0, 1.0] + [size, 0.0]
            queries, normals = queries * [-1.0, 1.0, 1.0], normals * [-1.0, 1.0, 1.0]
        valid = np.isfinite(pts).all(1)
        out_box = points_box(pts)
        img = photometric(crop, rng) if self.augment else crop.astype(np.float32) / 255.0
        crop_box = jitter_box(out_box, rng) if self.augment else out_box
        vis = np.where(valid, np.nan_to_num(sample.visibility.astype(np.float32)), 0)
        item = {"image": img.transpose(2, 0, 1), "queries": queries.astype(np.float32),
                "normals": normals.astype(np.float32),
                "targets_2d": np.nan_to_num(pts).astype(np.float32), "visibility": vis,
                "valid": valid.astype(np.float32), "self_visible": np.zeros(len(pts), np.float32),
                "points_3d": np.zeros((len(pts), 3), np.float32), "has_3d": 0.0, "has_vis": 0.0,
                "has_camera": 0.0, "is_face": 1.0, "style_id": self.style_id, "box": out_box,
                "crop_box": crop_box, "K": np.eye(3, dtype=np.float32),
                "R": np.eye(3, dtype=np.float32), "t": np.zeros(3, np.float32)}
        return _to_tensors(item)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'name:key=value,key=value' -> (name, {key: value}) with the values as strings."""
    name, _, options = spec.strip().partition(":")
    name = name.strip().lower()
    if not name:
        raise ValueError(f"dataset spec {spec!r} has no name; expected e.g. 'synthetic:root=data/synth'")
    kwargs: dict[str, str] = {}
    for option in filter(None, (o.strip() for o in options.split(","))):
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad option {option!r} in dataset spec {spec!r}: expected key=value")
        kwargs[key.strip()] = value.strip()
    return name, kwargs


def make_dataset(spec: str, image_size: int | None = 256, queries_per_image: int = 256, negatives: float = 0.05,
                 augment: bool = True, seed: int = 0, split: str = "all", val_fraction: float = 0.05
                 ) -> Dataset:
    """One dataset from a spec: `synthetic:root=PATH[,style=mix][,negatives=0.1][,queries=128][,limit=N]` or a
    real dataset `NAME:root=PATH[,reader options][,context=2.0][,rotate=DEG][,mirror=P][,limit=N]` (NAME in
    training.datasets.DATASETS); either kind takes `val_fraction=F`, its own held-out share.

    Options in the spec override the keyword defaults; `weight` is accepted and ignored here (see build_mix).
    """
    name, options = parse_spec(spec)
    options.pop("weight", None)
    common = {"augment": augment, "seed": seed, "split": split, "val_fraction": val_fraction}
    limit = int(options.pop("limit")) if "limit" in options else None
    if "val_fraction" in options:
        common["val_fraction"] = float(options.pop("val_fraction"))
    if "augment" in options:
        common["augment"] = bool(yaml.safe_load(options.pop("augment")))
    if "image_size" in options:
        image_size = int(options.pop("image_size"))
    if name == "synthetic":
        unknown = set(options) - set(SYNTHETIC_OPTIONS)
        if unknown:
            raise ValueError(f"synthetic dataset spec {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(SYNTHETIC_OPTIONS)}")
        if "root" not in options:
            raise ValueError(f"dataset spec {spec!r} needs root=PATH")
        return SyntheticDataset(options["root"], style=options.get("style", "canonical"),
                                queries_per_image=int(options.get("queries", queries_per_image)),
                                negatives=float(options.get("negatives", negatives)), image_size=image_size,
                                limit=limit, zoom_out=float(options.get("zoom_out", 0.0)),
                                zoom_min=float(options.get("zoom_min", compositing.ZOOM_RANGE[0])),
                                distractors=float(options.get("distractors", 0.0)),
                                headless=float(options.get("headless", 0.0)),
                                shapes=float(options.get("shapes", 0.0)),
                                letterbox=float(options.get("letterbox", 0.0)),
                                zoom_anywhere=float(options.get("zoom_anywhere", 0.0)), **common)
    from training.datasets import DATASETS

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} in spec {spec!r}; valid names: synthetic, {', '.join(DATASETS)}")
    context = float(options.pop("context", 2.0))
    geometric = {key: float(options.pop(key)) for key in ("rotate", "mirror") if key in options}
    for key in ("queries", "negatives"):
        if options.pop(key, None) is not None:
            log.warning("dataset spec %r: option %r applies to synthetic data only; ignored", spec, key)
    reader_spec = f"{name}:" + ",".join(f"{k}={v}" for k, v in options.items())
    return RealDataset(reader_spec, image_size=image_size or 256, context=context, limit=limit, **geometric, **common)


class MixedDataset(Dataset):
    """Several datasets as one index space, each with a sampling weight (total share of the draws)."""

    def __init__(self, datasets: Sequence[Dataset], weights: Sequence[float]) -> None:
        if not datasets or len(datasets) != len(weights):
            raise ValueError("MixedDataset needs one weight per dataset and at least one dataset")
        if any(w <= 0 for w in weights):
            raise ValueError(f"dataset weights must be > 0, got {list(weights)}")
        self.datasets = list(datasets)
        self.weights = [float(w) for w in weights]
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __repr__(self) -> str:
        return "MixedDataset(" + "; ".join(f"{d!r} x{w:g}" for d, w in zip(self.datasets, self.weights)) + ")"

    def locate(self, index: int) -> tuple[int, int]:
        d = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return d, index - int(self.offsets[d])

    def __getitem__(self, key: Key) -> dict[str, torch.Tensor]:
        index = int(key[0]) if isinstance(key, (tuple, list)) else int(key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range ({len(self)} items)")
        d, local = self.locate(index)
        return self.datasets[d][(local, int(key[1])) if isinstance(key, (tuple, list)) else local]

    def item_probabilities(self) -> torch.Tensor:
        """(len,) probability of each item: a dataset's weight share spread evenly over its items."""
        total = sum(self.weights)
        return torch.cat([torch.full((len(d),), w / total / len(d), dtype=torch.float64)
                          for d, w in zip(self.datasets, self.weights)])


def build_mix(specs: str | Sequence[str], **kwargs: Any) -> MixedDataset:
    """Datasets from `spec;spec;...` (or a list of specs), each with an optional `weight=` (default 1).

    `synthetic:root=data/synth,weight=3;300w:root=/data/300W,weight=1` draws 3 synthetic items per 300W item,
    whatever the datasets' sizes. Keyword arguments are make_dataset's defaults.
    """
    if isinstance(specs, str):
        specs = [s for s in specs.split(";") if s.strip()]
    if not specs:
        raise ValueError("no dataset spec given (expected e.g. 'synthetic:root=data/synth')")
    datasets, weights = [], []
    for spec in specs:
        _, options = parse_spec(spec)
        weights.append(float(options.get("weight", 1.0)))
        datasets.append(make_dataset(spec, **kwargs))
        log.info("dataset %s: %d items, weight %g", datasets[-1], len(datasets[-1]), weights[-1])
    return MixedDataset(datasets, weights)


class MixSampler(Sampler):
    """Keys (index, draw seed) for one epoch, a pure function of (seed, epoch): a permutation for one dataset,
    weighted draws with replacement for a mix. With `world` > 1, rank r takes every world-th key of the same
    global order (what DistributedSampler does, plus weights). `set_epoch(epoch, skip)` also skips the first
    `skip` keys of this rank, to resume in the middle of an epoch."""

    def __init__(self, dataset: MixedDataset, seed: int = 0, epoch_size: int | None = None, rank: int = 0,
                 world: int = 1) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch_size = int(epoch_size or len(dataset))
        self.rank, self.world = rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.epoch_size // self.world

    def keys(self) -> list[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        single = len(self.dataset.datasets) == 1
        if single and self.epoch_size <= len(self.dataset):
            order = torch.randperm(len(self.dataset), generator=g)[:self.epoch_size]
        else:
            order = torch.multinomial(self.dataset.item_probabilities(), self.epoch_size, replacement=True,
                                      generator=g)
        draws = torch.randint(0, 2**62, (self.epoch_size,), generator=g)
        n = len(self) * self.world
        return list(zip(order[:n].tolist(), draws[:n].tolist()))[self.rank::self.world]

    def __iter__(self):
        return iter(self.keys()[self.skip:])


PER_QUERY = ("queries", "normals", "targets_2d", "visibility", "valid", "self_visible", "points_3d")


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items; per-query arrays are zero-padded to the batch's largest Q and `mask` (B, Q) marks real
    queries (padded queries also have valid = 0)."""
    q = max(int(item["queries"].shape[0]) for item in items)
    batch: dict[str, torch.Tensor] = {}
    for key in items[0]:
        if key in PER_QUERY:
            padded = []
            for item in items:
                value = item[key]
                pad = [0, 0] * (value.dim() - 1) + [0, q - value.shape[0]]
                padded.append(torch.nn.functional.pad(value, pad))
            batch[key] = torch.stack(padded)
        else:
            batch[key] = torch.stack([item[key] for item in items])
    batch["mask"] = torch.stack([(torch.arange(q) < item["queries"].shape[0]).float() for item in items])
    return batch

