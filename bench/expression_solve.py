"""The rig's expression solve on tracked synthetic clips: from the 3D points alone against with the 2D points too.

    python -m bench.expression_solve [--clips data/sequences/moving_4_000.mp4 ...] [--model default]

Each clip (a video with its ground-truth .npz beside it, as `training.synth sequence` writes them) is tracked as
the add-on tracks footage (`core.runtime.track.track`, default settings), then solved twice: `core.solve.solve_shot`
on the predicted canonical 3D points, and `core.solve.solve_tracked` as the rig solves (with the 2D points). Per
clip it prints, on the shapes the clip uses (peak weight over 0.2), the mean absolute weight error of a neutral face
(all weights 0: what a solve that reads nothing scores), of each solve, and the mean correlation of each solve's
weights with the truth over those shapes; the head rotation error of the tracker's pose and of the solve's fitted
pose; and the solve's seconds. Prints a markdown table and writes nothing. Clips to use, made once:

    .venv/bin/python -m training.synth sequence --out data/sequences --num 2 --kind moving --seed 4
    .venv/bin/python -m training.synth sequence --out data/tune_sequences --num 4 --frames 90 --kind moving \
        --seed 11 --size 384
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from core import geometry
from core.runtime.session import LandmarkModel
from core.runtime.track import TrackingSettings, track
from core.solve import solve_shot, solve_tracked

DEFAULT_CLIPS = ("data/tune_sequences", "data/sequences")


def _clips(paths: list[str]) -> list[Path]:
    """Moving clips: the videos given, or those in the folders given, that have their ground truth beside them."""
    found: list[Path] = []
    for path in map(Path, paths):
        videos = sorted(path.glob("moving_*.mp4")) if path.is_dir() else [path]
        found += [v for v in videos if v.with_suffix(".npz").is_file()]
    return found


def _correlation(truth: np.ndarray, solved: np.ndarray, used: np.ndarray) -> float:
    """Mean over the used shapes of the correlation of solved and true weights (0 where a solve is constant)."""
    return float(np.mean([np.corrcoef(truth[:, j], solved[:, j])[0, 1] if np.nanstd(solved[:, j]) > 1e-9 else 0.0
                          for j in np.flatnonzero(used)]))


def measure(video: Path, model: LandmarkModel) -> dict[str, float]:
    from training.synth.sequences import load_sequence

    shot = track(video, TrackingSettings(), model=model)
    frames = load_sequence(video.with_suffix(".npz"))
    truth = np.stack([f.expression for f in frames])
    true_R = np.stack([f.R for f in frames])
    ok = shot.usable
    if not ok.any():
        raise SystemExit(f"{video}: no face tracked on any frame; check the model and the clip")
    used = truth[ok].max(0) > 0.2
    only_3d = solve_shot(shot.landmarks_3d, shot.layout, valid=ok)
    tracked = solve_tracked(shot.landmarks_3d, shot.layout, ok, shot.landmarks_2d, shot.K, shot.R, shot.t,
                            shot.semantics)
    fitted_R, _ = tracked.model_pose(shot.R, shot.t)

    def error(weights: np.ndarray) -> float:
        return float(np.abs(weights[ok] - truth[ok])[:, used].mean())

    return {"frames": int(ok.sum()), "shapes": int(used.sum()), "neutral": float(truth[ok][:, used].mean()),
            "error_3d": error(only_3d.expressions), "corr_3d": _correlation(truth[ok], only_3d.expressions[ok], used),
            "error_2d": error(tracked.expressions), "corr_2d": _correlation(truth[ok], tracked.expressions[ok], used),
            "pose_tracker": float(np.mean([geometry.rotation_angle_deg(a, b) for a, b in zip(shot.R[ok], true_R[ok])])),
            "pose_solve": float(np.mean([geometry.rotation_angle_deg(a, b) for a, b in zip(fitted_R[ok], true_R[ok])])),
            "seconds": tracked.seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS), help="moving clips, or folders of them")
    parser.add_argument("--model", default=None, help="ONNX model name or path (default: the bundled default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    clips = _clips(args.clips)
    if not clips:
        parser.error(f"no moving clip with its ground truth (.npz) in {', '.join(args.clips)}: make them with the "
                     "commands in this module's docstring")
    model = LandmarkModel(args.model)
    print("| clip | frames | shapes used | neutral face | 3D points: error / corr. | with 2D points: error / corr. "
          "| pose: tracker / solve (deg) | solve (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for video in clips:
        m = measure(video, model)
        rows.append(m)
        print(f"| {video.name} | {m['frames']} | {m['shapes']} | {m['neutral']:.3f} | {m['error_3d']:.3f} / "
              f"{m['corr_3d']:.2f} | {m['error_2d']:.3f} / {m['corr_2d']:.2f} | {m['pose_tracker']:.1f} / "
              f"{m['pose_solve']:.1f} | {m['seconds']:.1f} |", flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print(f"| mean | | | {mean['neutral']:.3f} | {mean['error_3d']:.3f} / {mean['corr_3d']:.2f} | "
          f"{mean['error_2d']:.3f} / {mean['corr_2d']:.2f} | {mean['pose_tracker']:.1f} / {mean['pose_solve']:.1f} "
          f"| {mean['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
