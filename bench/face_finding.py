"""How well `LandmarkModel.predict` finds the face on its own, by face size, on held-out synthetic images.

    python -m bench.face_finding [--model assets/models/default.onnx] [--num 200] [--scenes]
                                 [--frame H W] [--max-crop-zoom N]

For each image: the share of faces found (mean point error under 10% of the ground-truth face box) with the
full-frame start only (`search="never"`), with `predict`'s default (`"auto"`: the multi-start search when unsure),
and from the crop around the true landmarks (plus one refinement: what a perfect spatial transformer would
give, the detector's own limit). The gap between the first two and the last is what finding the face costs.
`--scenes` composites the images first as training does (training.compositing: 70% of the faces shrunk onto a
fresh background down to 0.15x, skin-toned distractors on half of them, 30% letterboxed), which is closer to real
frames: small faces in wide, padded frames.
`--frame H W` pastes each image, pixel for pixel, at the centre of a larger frame (over a smooth random texture):
the same face in high-resolution footage, its camera unchanged (the render's principal point is the frame's
centre). There the model input shows it several times smaller; `--max-crop-zoom 1` reads the runs on known crops
(refinement, "landmark crop") from that input instead of the frame (LandmarkModel's max_crop_zoom).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.paths import REPO_DIR
from core.runtime.images import fit_geometry
from core.runtime.session import DEFAULT_MODEL_PATH, MAX_CROP_ZOOM, LandmarkModel, landmark_prior

log = logging.getLogger(__name__)

FOUND_BELOW = 0.1  # mean point error / face box side
SIZE_BINS = ((0, 30), (30, 50), (50, 80), (80, 130), (130, 10_000))  # face box side, px of the 256 px input
MODES = ("never", "auto", "landmark crop")


def pasted(image: np.ndarray, frame_hw: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`image` at the centre of a frame of `frame_hw` filled with a smooth random texture; (frame, image's offset)."""
    h, w = frame_hw
    if h < image.shape[0] or w < image.shape[1]:
        raise ValueError(f"--frame {h} {w} is smaller than the {image.shape[0]}x{image.shape[1]} test images")
    coarse = np.random.default_rng(seed).integers(0, 256, (max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8)
    frame = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    y, x = (h - image.shape[0]) // 2, (w - image.shape[1]) // 2
    frame[y:y + image.shape[0], x:x + image.shape[1]] = image
    return frame, np.array([x, y], np.float64)


def face_finding(model: LandmarkModel, data: Path, num: int, scenes: bool, seed: int = 123,
                 frame_hw: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(face box sides (n,), errors (n, len(MODES))) on the first `num` samples of `data`; face box sides in px of
    the model input."""
    from training.data import SyntheticDataset  # torch: only here, the runtime above needs none

    ds = SyntheticDataset(data, style="canonical", queries_per_image=68, negatives=0.0, augment=scenes,
                          image_size=model.input_hw[0], seed=seed, zoom_out=0.7, zoom_min=0.15, distractors=0.5,
                          letterbox=0.3)
    sizes, errors = [], []
    for i in tqdm(range(min(num, len(ds))), desc="face finding", unit="image"):
        item = ds[i]
        image = (item["image"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        truth = item["targets_2d"].numpy()[:68].astype(np.float64)
        if frame_hw is not None:
            image, offset = pasted(image, frame_hw, seed + i)
            truth = truth + offset
        fit = fit_geometry(image.shape[:2], model.input_hw)
        size = max(float(np.ptp(truth, 0).max()), 1.0)
        crop = model.predict(image, prior_theta=landmark_prior(fit.to_input(truth), model.input_hw, model.crop_scale))
        faces = [model.predict(image, search="never"), model.predict(image, search="auto"),
                 model.predict(image, prior_theta=crop.theta)]
        sizes.append(size * fit.scale)
        errors.append([np.linalg.norm(f.landmarks_2d - truth, axis=1).mean() / size for f in faces])
    return np.array(sizes), np.array(errors)


def report(sizes: np.ndarray, errors: np.ndarray) -> list[str]:
    """Markdown table: found rate per mode and face size bin."""
    lines = ["| Face box (px of 256) | Images | " + " | ".join(f"found, {m}" for m in MODES) + " |",
             "|---|---:|" + "---:|" * len(MODES)]
    bins = [(f"{lo}-{hi}" if hi < 10_000 else f"{lo}+", (sizes >= lo) & (sizes < hi)) for lo, hi in SIZE_BINS]
    for label, sel in bins + [("all", np.ones_like(sizes, bool))]:
        if sel.any():
            found = (errors[sel] < FOUND_BELOW).mean(0)
            lines.append(f"| {label} | {sel.sum()} | " + " | ".join(f"{100 * f:.0f}%" for f in found) + " |")
    lines.append(f"| median error / face box | {len(sizes)} | "
                 + " | ".join(f"{100 * e:.1f}%" for e in np.median(errors, 0)) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--data", type=Path, default=REPO_DIR / "data" / "synth_test")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--scenes", action="store_true", help="composite small faces, distractors, letterboxes")
    parser.add_argument("--frame", type=int, nargs=2, metavar=("H", "W"),
                        help="paste each image at the centre of a frame of this size")
    parser.add_argument("--max-crop-zoom", type=int, default=MAX_CROP_ZOOM,
                        help=f"LandmarkModel's max_crop_zoom (default {MAX_CROP_ZOOM}; 1: crops from the model input)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = LandmarkModel(args.model, threads=1, max_crop_zoom=args.max_crop_zoom)
        sizes, errors = face_finding(model, args.data, args.num, args.scenes,
                                     frame_hw=tuple(args.frame) if args.frame else None)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    print("\n".join(report(sizes, errors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
