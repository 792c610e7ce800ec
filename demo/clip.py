"""The demo's sample clip and its tracking: the clip rendered once by the synthetic engine (fixed seed, so the same
clip every time) and the Blender add-on's batch pipeline run on it, writing the files `demo_outputs` names."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.paths import REPO_DIR

SAMPLE_SEED = 7


def sample_clip_paths(out: Path) -> tuple[Path, Path]:
    """Where the sample clip and its ground truth are in `out`: `moving_<seed>_000.mp4/.npz`."""
    return out / f"moving_{SAMPLE_SEED}_000.mp4", out / f"moving_{SAMPLE_SEED}_000.npz"


def render_sample_clip(out: Path, frames: int, size: int) -> tuple[Path, Path]:
    """The sample clip and its ground truth (`sample_clip_paths`), rendered once for a frame count and size."""
    video, truth = sample_clip_paths(out)
    if not (video.is_file() and truth.is_file() and _clip_matches(truth, frames, size)):
        subprocess.run([sys.executable, "-m", "training.synth", "sequence", "--out", str(out), "--num", "1",
                        "--frames", str(frames), "--kind", "moving", "--seed", str(SAMPLE_SEED), "--size", str(size),
                        "--overwrite"],  # the demo's own clip, for another frame count or size
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
