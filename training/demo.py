"""The main job on the bundled defaults: track a sample clip through the add-on's batch path and report.

    python -m training.demo [--out out/demo] [--frames 90]

1. Renders the sample clip with per-frame ground truth (the synthetic engine, fixed seed: same clip every time).
2. Runs the Blender add-on's batch pipeline on it (`blender_addon/batch.py`, the code path of `blender -b -P`),
   with the bundled default model: tracking, rig, .blend, landmark preview video, results arrays.
3. Prints a one-screen summary of accuracy against the clip's ground truth.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core import geometry
from core.layouts import load_layout
from core.paths import REPO_DIR
from training import metrics

log = logging.getLogger("training.demo")
SAMPLE_SEED = 7


def sample_clip_paths(out: Path) -> tuple[Path, Path]:
    """Where the sample clip and its ground truth are in `out`: `moving_<seed>_000.mp4/.npz`."""
    return out / f"moving_{SAMPLE_SEED}_000.mp4", out / f"moving_{SAMPLE_SEED}_000.npz"


def render_sample_clip(out: Path, frames: int, size: int) -> tuple[Path, Path]:
    """The sample clip and its ground truth (`sample_clip_paths`), rendered once for a frame count and size."""
    video, truth = sample_clip_paths(out)
    if not (video.is_file() and truth.is_file() and _clip_matches(truth, frames, size)):
        subprocess.run([sys.executable, "-m", "training.synth", "sequence", "--out", str(out), "--num", "1",
                        "--frames", str(frames), "--kind", "moving", "--seed", str(SAMPLE_SEED), "--size", str(size)],
                       check=True, cwd=REPO_DIR)
    return video, truth


def _clip_matches(truth_npz: Path, frames: int, size: int) -> bool:
    """Whether a clip already written has `frames` frames of `size` px (its principal point is the frame centre)."""
    with np.load(truth_npz) as d:
        K = d["K"]
    return len(K) == frames and bool(np.allclose(K[:, :2, 2], size / 2))


def demo_outputs(out: Path) -> dict[str, Path]:
    """What the demo writes in `out`: the .blend, the preview video, the tracking results and the check image."""
    return {"blend": out / "demo.blend", "preview": out / "preview.mp4", "results": out / "tracking.npz",
            "check": out / "check.png"}


def track_clip(video: Path, out: Path, model: str = "") -> int:
    """The add-on's batch pipeline on `video`, writing `demo_outputs(out)`; its exit status."""
    paths = demo_outputs(out)
    command = [sys.executable, str(REPO_DIR / "blender_addon" / "batch.py"), "--", str(video),
               "--output", str(paths["blend"]), "--preview", str(paths["preview"]), "--results", str(paths["results"]),
               "--check", str(paths["check"]), "--overwrite"]  # the demo's own outputs, rewritten every run
    if model:
        command += ["--model", model]
    env = dict(os.environ, BLENDER_USER_RESOURCES=os.environ.get("BLENDER_USER_RESOURCES", str(out / "blender_user")))
    return subprocess.run(command, cwd=REPO_DIR, env=env).returncode


def summarise(results_npz: Path, truth_npz: Path) -> str:
    """Accuracy of the tracked clip against its ground truth, as a few lines of text."""
    from training.synth.sequences import load_sequence

    with np.load(results_npz) as d:
        tracked = {key: d[key] for key in d.files}  # each array read once
    truth = load_sequence(truth_npz)
    layout = load_layout(str(tracked["layout"]))
    found = tracked["has_face"].astype(bool)
    gt_2d = np.stack([f.truth(layout).points_2d for f in truth])
    lines = [f"frames: {len(found)}, face found in {found.sum()} ({100 * found.mean():.0f}%)"]
    if found.any():
        pred, gt = tracked["landmarks_2d"][found], gt_2d[found]
        inter_ocular = metrics.inter_ocular_distance(gt, layout.name)
        nme = metrics.nme(pred, gt, inter_ocular)
        jitter = metrics.jitter(pred, gt, inter_ocular)  # over the frames with a face
        pose = [geometry.rotation_angle_deg(r, f.R) for r, f, ok in zip(tracked["R"], truth, found) if ok]
        focal = [100 * abs(k[0, 0] - f.K[0, 0]) / f.K[0, 0] for k, f, ok in zip(tracked["K"], truth, found) if ok]
        lines += [f"landmark NME (inter-ocular): mean {np.mean(nme):.3f}, median {np.median(nme):.3f}",
                  f"jitter of the error (first difference, inter-ocular): {jitter:.4f}",
                  f"head rotation error: mean {np.mean(pose):.1f} deg, median {np.median(pose):.1f} deg",
                  f"focal length error: median {np.median(focal):.1f}%"]
        lines.append(expression_summary(tracked, truth, layout, found))
    return "\n".join(lines)


def expression_summary(tracked, truth, layout, found: np.ndarray) -> str:  # noqa: ANN001
    """Error of the ARKit expression weights the rig keys (core.solve, as the add-on does) against the truth."""
    from core.solve import solve_shot

    shot = solve_shot(tracked["landmarks_3d"][found], layout)
    gt = np.stack([f.expression for f, ok in zip(truth, found) if ok])
    error = np.abs(shot.expressions - gt)
    # Shapes the clip actually uses (peak weight over 0.2) say more than the many that stay near zero.
    used = gt.max(axis=0) > 0.2
    return (f"expression weights (57 ICT shapes, 0..1): mean abs error {np.nanmean(error):.3f}, "
            f"on the {used.sum()} shapes the clip uses {np.nanmean(error[:, used]):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--size", type=int, default=384, help="clip width and height")
    parser.add_argument("--model", default="", help="ONNX model (default: the bundled one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    video, truth = render_sample_clip(out, args.frames, args.size)
    status = track_clip(video, out, args.model)
    if status != 0:
        log.error("the add-on's batch pipeline failed (exit status %d)", status)
        return status
    paths = demo_outputs(out)
    print("\n== Infinite Landmarks demo ==")
    print(f"clip: {video}\nblend: {paths['blend']}\npreview: {paths['preview']}\n"
          f"check (rig over footage): {paths['check']}")
    print(summarise(paths["results"], truth))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
