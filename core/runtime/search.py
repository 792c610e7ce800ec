"""How the runtime finds the face in an image it has no prior for: where the STN starts, and which run it keeps.

`find_face` starts the STN from the whole frame and refines on the crop around the landmarks it finds; when that
face is not sure (mode "auto"), or always (mode "always"), it starts the STN again from tiers of crops over the
image (`search_priors`) and keeps the face most of the starts agree on (`_consensus`). The graph runs themselves
are the session's (`core.runtime.session.LandmarkModel.predict` passes them in): this module only decides which
runs to make and compares their outputs, in model-input space.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .images import ImageFit

Outputs = dict[str, np.ndarray]  # graph outputs by name: one row per run, or one run's row

SEARCH_MODES = ("auto", "always", "never")
# The search's starts besides the full frame: grids of crops over the image's part of the input (not its
# padding). Run once from the full frame, the STN (or a model's face finder) can settle on a face-like distractor
# (a round badge), or miss a face a few pixels wide; from a crop near the face it converges. Starts that agree on a
# face win (see _consensus). The tiers run in turn, each only when the faces found so far are not sure: (crop side
# over the input's longer side, largest step between crops over their side), at most SEARCH_GRID_MAX crops along
# an axis. On a square frame both are 3x3 grids; on a 4:3 or 16:9 frame fewer half-side crops cover the image
# (3x2, 3x1), which finds as many faces as grids over the whole input with fewer starts (bench.face_finding
# --frame 720 1280). A tier of quarter-side crops found no more faces, and running the top row of half-side crops
# first (faces are often high in a frame) lost faces.
SEARCH_TIERS = ((0.5, 0.75), (0.75, 0.25))
SEARCH_GRID_MAX = 3
# "auto" keeps the full-frame start when it and its refinement are both at least this confident and their
# landmark boxes overlap by this much: on held-out synthetic images that is as accurate as always searching, and
# only a minority of them are searched.
SURE_CONFIDENCE = 0.8
SURE_OVERLAP = 0.5
# A refinement's crop comes from the last run's landmarks; another refinement follows while that crop still moves
# (overlap under this with the crop the last run saw), up to MAX_REFINEMENTS: on held-out renders a second one
# finds more faces, most of all small faces in large frames, while a portrait's crop is steady after one.
STEADY_CROP_OVERLAP = 0.85
MAX_REFINEMENTS = 2


def full_frame_theta(input_hw: tuple[int, int]) -> np.ndarray:
    """(1, 2, 3) float32 theta of the square crop of side max(H, W) centred on the frame (stn.full_frame_theta)."""
    h, w = input_hw
    side = max(h, w)
    return np.array([[[side / w, 0.0, 0.0], [0.0, side / h, 0.0]]], np.float32)


def _grid_centres(lo: float, hi: float, side: float, step: float) -> np.ndarray:
    """Centres of up to SEARCH_GRID_MAX crops of `side` spread over [lo, hi] (one axis), at most `step` * side
    apart; one crop in the middle when the extent is under 1.25 sides."""
    extent = hi - lo
    if extent - side < 0.25 * side:
        return np.array([(lo + hi) / 2])
    count = min(SEARCH_GRID_MAX, int(np.ceil((extent - side) / (step * side))) + 1)
    return np.linspace(lo + side / 2, hi - side / 2, count)


def search_priors(input_hw: tuple[int, int], fit: ImageFit | None = None) -> list[np.ndarray]:
    """The search's batches of STN starting crops (K, 2, 3) float32 in model-input space: the full frame with the
    first tier's crops, then one batch per further tier. `fit`: where the image lies in the input (None: all of it)."""
    h, w = input_hw
    x0, y0 = (0.0, 0.0) if fit is None else fit.offset
    x1, y1 = (w, h) if fit is None else (x0 + fit.scale * fit.original_hw[1], y0 + fit.scale * fit.original_hw[0])
    batches = []
    for frac, step in SEARCH_TIERS:
        side = frac * max(h, w)
        priors = [np.array([[side / w, 0, 2 * cx / w - 1], [0, side / h, 2 * cy / h - 1]], np.float32)
                  for cy in _grid_centres(y0, y1, side, step) for cx in _grid_centres(x0, x1, side, step)]
        batches.append(np.stack(priors))
    batches[0] = np.concatenate([full_frame_theta(input_hw), batches[0]])
    return batches


def _box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the bounding boxes of two point sets (N, 2)."""
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(np.ptp(a, 0)) + np.prod(np.ptp(b, 0))) - inter
    return inter / union if union > 0 else 0.0


def _crop_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the boxes of two crops' (2, 3) corners (normalised input coordinates)."""
    corners = np.array([[-1, -1, 1], [1, -1, 1], [-1, 1, 1], [1, 1, 1]], np.float64)
    return _box_overlap(corners @ np.asarray(a, np.float64).T, corners @ np.asarray(b, np.float64).T)


def _is_sure(first: Outputs, refined: Outputs) -> bool:
    """Whether a start (the full frame, or the search's first batch) found its face: the start's run and its
    refinement both confident, and their landmarks on the same face."""
    points = first["points_2d"], refined["points_2d"]
    return (min(float(first["confidence"]), float(refined["confidence"])) >= SURE_CONFIDENCE
            and all(np.isfinite(p).all() for p in points) and _box_overlap(*points) >= SURE_OVERLAP)


def _consensus(points_2d: np.ndarray, confidence: np.ndarray) -> int:
    """Index of the run whose face most other runs found too (confidence-weighted votes), times its confidence."""
    centres = points_2d.mean(1)
    sizes = (points_2d.max(1) - points_2d.min(1)).max(-1)
    close = np.linalg.norm(centres[:, None] - centres[None], axis=-1) < 0.25 * sizes[:, None]
    votes = close.astype(np.float64) @ confidence
    return int(np.argmax(votes * confidence))


def find_face(stn_runs: Callable[[np.ndarray | None], Outputs], crop_run: Callable[[np.ndarray], Outputs],
              landmark_crop: Callable[[Outputs], np.ndarray | None], input_hw: tuple[int, int], fit: ImageFit,
              mode: str = "auto", refine: int = MAX_REFINEMENTS) -> tuple[Outputs, bool]:
    """The run that found the face in an image without a prior, and whether the search ran for it.

    `stn_runs(priors)`: the graph's outputs, one row per STN start in `priors` (K, 2, 3) (None: the full frame
    alone); `crop_run(theta)`: one run on the crop `theta` (2, 3) as is; `landmark_crop(run)`: the crop around a
    run's landmarks, None when it found no face. `mode` is one of SEARCH_MODES: "never" keeps the full-frame start,
    "always" searches, "auto" searches when the full-frame start is not sure (`_is_sure`). `refine`: at most this
    many refinements of a start's run, each on the crop around the last run's landmarks, the second and later ones
    only while that crop still moves (STEADY_CROP_OVERLAP).
    """
    def refined(out: Outputs) -> Outputs:
        last_prior = None
        for _ in range(refine):
            prior = landmark_crop(out)
            if prior is None:
                break
            if last_prior is not None and _crop_overlap(last_prior, prior) >= STEADY_CROP_OVERLAP:
                break  # the crop stopped moving
            out, last_prior = crop_run(prior), prior
        return out

    def searched(full_frame_run: Outputs | None = None) -> Outputs:
        """The search; `full_frame_run`: the full-frame start's run when it was made already (not run again)."""
        runs: Outputs = {}
        for batch in search_priors(input_hw, fit):
            if not runs and full_frame_run is not None:  # the first batch starts with the full frame
                batch_runs = stn_runs(batch[1:])
                batch_runs = {name: np.concatenate([full_frame_run[name][None], value])
                              for name, value in batch_runs.items()}
            else:
                batch_runs = stn_runs(batch)
            runs = {name: np.concatenate([runs[name], value]) if runs else value
                    for name, value in batch_runs.items()}
            best = {name: value[_consensus(runs["points_2d"], runs["confidence"])] for name, value in runs.items()}
            out = refined(best)
            if _is_sure(best, out):
                break
        return out

    if mode == "always":
        return searched(), True
    first = {name: value[0] for name, value in stn_runs(None).items()}
    # A start below SURE_CONFIDENCE is unsure whatever its refinement finds: search without refining it.
    unsure = mode == "auto" and float(first["confidence"]) < SURE_CONFIDENCE
    out = first if unsure else refined(first)
    if mode == "auto" and (unsure or not _is_sure(first, out)):
        return searched(first), True
    return out, False
