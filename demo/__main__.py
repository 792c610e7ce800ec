"""The main job on the bundled defaults: track a sample clip through the add-on's batch path and report.

    python -m demo [--out out/demo] [--frames 90]

1. Renders the sample clip with per-frame ground truth (the synthetic engine, fixed seed: same clip every time).
2. Runs the Blender add-on's batch pipeline on it (`blender_addon/batch.py`, the code path of `blender -b -P`),
   with the bundled default model: tracking, rig, .blend, landmark preview video, results arrays.
3. Prints a one-screen summary of accuracy against the clip's ground truth.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from demo.clip import demo_outputs, render_sample_clip, track_clip
from demo.summary import summarise

log = logging.getLogger("demo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
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
