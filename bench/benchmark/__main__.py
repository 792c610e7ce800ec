"""Benchmark our detector against MediaPipe FaceLandmarker and dlib, offline, in one command.

    python -m bench.benchmark [--model assets/models/default.onnx] [--limit N] --out docs/benchmarks [--overwrite]

writes docs/benchmarks.md and PNGs under docs/benchmarks/. Sections (bench/README.md has the definitions):
  1. accuracy on the held-out synthetic test set (data/synth_test, iBUG-68), with CED plot, pose/focal/visibility;
  2. real photographs (skimage's astronaut and camera, matplotlib's grace_hopper): overlays and agreement between
     methods;
  3. temporal stability (jitter) on the synthetic clips and on the real stills under a known smooth warp;
  4. speed: ms per 640x480 and per 1280x720 frame, all methods in the same run, pinned to one CPU core.
The peers run in their own environment (.venv-peers, scripts/setup_peers.sh) through bench/peers.py as a
subprocess; without it the report covers our model only and says so. An existing report or a non-empty --out
folder is refused before any work unless --overwrite is given (the sections of bench.realfaces and
bench.long_takes in the report it replaces are kept).
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from bench.benchmark import inputs, report, runs, scoring
from core.layouts import load_layout
from core.outputs import OVERWRITE_FLAG, OutputError, OutputPlan
from core.paths import ASSETS_DIR, REPO_DIR

log = logging.getLogger("bench.benchmark")


def benchmark(model_path: Path, limit: int | None, out_dir: Path, report_path: Path, command: str) -> Path:
    """Run the four parts and write their pictures into `out_dir` and the report to `report_path` (both checked
    by the caller); returns the report's path. `command`: how the report says it was made."""
    from core.runtime.session import LandmarkModel

    rel = os.path.relpath(out_dir, report_path.parent)
    contours = load_layout("ibug68").contours
    # One intra-op thread: the "1 thread where configurable" condition of the speed test, and gentle on the CPU.
    model = LandmarkModel(model_path, threads=1)
    log.info("model %s", model)
    data = inputs.load_inputs(limit)
    # Peers, all in one worker run (their speed is measured in its own runs, pinned to one core).
    peers = runs.run_peer_tasks(data)

    # 1. Accuracy on the synthetic test set.
    synth_runs = runs.synth_runs(model, data.synth.images)
    synth_scores = scoring.synth_scores(data.synth, synth_runs, peers, model.has_3d)
    ced_path = report.synth_ced(synth_scores.acc, out_dir / "ced_synth.png", len(data.synth.paths))
    report.synth_examples(out_dir / "synth_examples.png", data.synth, synth_runs.ours, peers, contours)

    # 2. Real photographs.
    photo_runs = {name: runs.photo_run(model, image) for name, image in data.photos.items()}
    for name, run in photo_runs.items():
        report.photo_picture(out_dir / f"photo_{name}.png", name, data.photos[name], run, peers, contours)
    agreement = scoring.photo_agreement(photo_runs, peers)

    # 3. Temporal stability.
    stability = scoring.stability(runs.stability_runs(model, data, peers), data)

    # 4. Speed.
    speed, loads = runs.measure_speed(model, data.speed_frames)

    lines = report.report_lines(command, model, data, synth_scores, agreement, stability, speed, loads, peers, rel,
                                ced_path)
    report.write_doc(report_path, lines)
    log.info("wrote %s", report_path)
    return report_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ASSETS_DIR / "models" / "default.onnx")
    parser.add_argument("--limit", type=int, default=None, help="first N synthetic test images only")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks",
                        help="folder for the PNGs; the report is written next to it as <out>.md")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="replace an existing report <out>.md (keeping its real-face and long-take sections) "
                             "and write into an existing, non-empty --out folder; needed to rerun into docs/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    plan = OutputPlan([args.model], args.overwrite)
    try:
        report_path = plan.file(args.out.with_suffix(".md"), "--out")
        out_dir = plan.folder(args.out, "--out")
    except OutputError as exc:
        log.error("%s", exc)
        return 2
    command = "python -m bench.benchmark " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    benchmark(args.model, args.limit, out_dir, report_path, command.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
