"""Long takes: peak memory of the readers of a clip's ground truth, by clip length.

    python -m bench.long_takes [--frames 300 1000 3000] [--out out/long_takes] [--size 384]
                               [--checkpoint assets/models/default.pt] [--overwrite]

For each frame count the demo's sample clip is made and tracked as `python -m demo --frames N --out <out>/<N>`
makes it (`demo.clip.render_sample_clip` and `track_clip`). A non-empty `<out>/<N>` is refused before any work
unless --overwrite is given; with it, a clip and tracking results already there are reused when they match. Then
two steps each run in a fresh Python process, so that their peaks are not mixed: the demo's accuracy summary
(`demo.summary.summarise`) and `training.evaluate --sequences <out>/<N>` (the model run frame by frame as a
tracker would, then the temporal metrics). Each process reports its peak resident set (`ru_maxrss`) and its peak
before the step (after its imports); the difference is the step's own. Prints a markdown table; the figures are in
docs/benchmarks.md, section "Long takes" (`bench.benchmark` keeps it).
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from core.outputs import OVERWRITE_FLAG, OutputError, OutputPlan
from core.paths import REPO_DIR

log = logging.getLogger(__name__)

STEPS = ("summary", "evaluate")
SECTION_TITLE = "## Long takes"  # its section of docs/benchmarks.md, written by hand from this command's table
DEFAULT_CHECKPOINT = REPO_DIR / "assets" / "models" / "default.pt"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _step(step: str, clip_dir: Path, checkpoint: Path) -> Callable[[], int]:
    """The step as a function returning an exit status, its modules imported (their memory is not the step's)."""
    if step == "summary":
        from core import solve  # noqa: F401  (imported by summarise, as the next one)
        from demo.clip import demo_outputs, sample_clip_paths
        from demo.summary import summarise
        from training.synth import sequences  # noqa: F401

        def summary() -> int:
            print(summarise(demo_outputs(clip_dir)["results"], sample_clip_paths(clip_dir)[1]))
            return 0
        return summary
    if step == "evaluate":
        from training import evaluate

        return lambda: evaluate.main(["--checkpoint", str(checkpoint), "--sequences", str(clip_dir),
                                      "--out", str(clip_dir / "evaluate"), "--overwrite"])
    raise ValueError(f"step must be one of {STEPS}, not {step!r}")


def run_step(step: str, clip_dir: Path, checkpoint: Path) -> dict[str, float]:
    """Run one step in this process: {"before_mb", "peak_mb", "seconds"} (peak resident set before and after)."""
    function = _step(step, clip_dir, checkpoint)
    before = _peak_rss_mb()
    start = time.perf_counter()
    status = function()
    if status != 0:
        raise RuntimeError(f"step {step} failed on {clip_dir} (exit status {status})")
    return {"before_mb": before, "peak_mb": _peak_rss_mb(), "seconds": time.perf_counter() - start}


def measure(step: str, clip_dir: Path, checkpoint: Path) -> dict[str, float]:
    """`run_step` in a fresh Python process; its figures (the process's last line of output, JSON)."""
    command = [sys.executable, "-m", "bench.long_takes", "--step", step, "--clip-dir", str(clip_dir),
               "--checkpoint", str(checkpoint)]
    done = subprocess.run(command, cwd=REPO_DIR, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare_clip(clip_dir: Path, frames: int, size: int) -> None:
    """The demo's sample clip of `frames` frames and its tracking results in `clip_dir`, made as the demo does."""
    from demo.clip import demo_outputs, render_sample_clip, track_clip

    clip_dir.mkdir(parents=True, exist_ok=True)
    video, _ = render_sample_clip(clip_dir, frames, size)
    results = demo_outputs(clip_dir)["results"]
    if not (results.is_file() and results.stat().st_mtime >= video.stat().st_mtime):
        status = track_clip(video, clip_dir)
        if status != 0:
            raise RuntimeError(f"the add-on's batch pipeline failed on {video} (exit status {status})")


def table(rows: list[tuple[int, dict[str, dict[str, float]]]]) -> str:
    """Markdown table: per frame count and step, the peak resident set, the step's own part of it, the time."""
    head = ["frames"] + [f"{step} {what}" for step in STEPS for what in ("peak MB", "step MB", "s")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for frames, result in rows:
        cells = [str(frames)]
        for step in STEPS:
            r = result[step]
            cells += [f"{r['peak_mb']:.0f}", f"{r['peak_mb'] - r['before_mb']:.0f}", f"{r['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_takes", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument("--out", type=Path, default=Path("out/long_takes"))
    parser.add_argument("--size", type=int, default=384, help="clip width and height (the demo's default)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="model for training.evaluate")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="write into existing, non-empty <out>/<N> folders (reusing a clip and tracking results "
                             "there that match, replacing the rest)")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)  # internal: one measurement
    parser.add_argument("--clip-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.step:
        result = run_step(args.step, args.clip_dir.resolve(), args.checkpoint.resolve())
        print(json.dumps(result))
        return 0

    plan = OutputPlan([args.checkpoint], args.overwrite)
    try:
        clip_dirs = [plan.folder(args.out / str(frames), "--out") for frames in args.frames]
    except OutputError as exc:
        log.error("%s", exc)
        return 2
    rows = []
    for frames, clip_dir in tqdm(list(zip(args.frames, clip_dirs)), desc="clip lengths", unit="clip"):
        prepare_clip(clip_dir, frames, args.size)
        result = {}
        for step in STEPS:
            result[step] = measure(step, clip_dir, args.checkpoint.resolve())
            log.info("%d frames, %s: peak %.0f MB (%.0f MB before the step), %.1f s", frames, step,
                     result[step]["peak_mb"], result[step]["before_mb"], result[step]["seconds"])
        rows.append((frames, result))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
