"""Command line of the synthetic data engine.

    python -m training.synth generate --out data/synth --num 10000 --seed 0 --shard 0/4
    python -m training.synth sheet --out docs/images/synth_contact_sheet.png --num 64
    python -m training.synth sequence --out data/sequences --num 2 --frames 120 --kind moving
    python -m training.synth bench --num 100

Sample `i` of a seed is the same on every machine and in every shard split: `--shard k/N` renders the indices
i with i % N == k, so N machines together render exactly the `--num` samples one machine would.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.outputs import OutputError, OutputPlan, write_image

log = logging.getLogger("training.synth")


def parse_shard(spec: str) -> tuple[int, int]:
    """'k/N' -> (k, N) with 0 <= k < N."""
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like k/N (e.g. 0/4), not '{spec}'") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {spec}: the shard index must be in 0..{max(n - 1, 0)} for {n} shards "
                         f"(shards are numbered from 0)")
    return k, n


def _engine(args):
    from training.synth.scene import EngineConfig, SyntheticEngine

    config = EngineConfig(width=args.size, height=args.size, accessories=not args.no_accessories,
                          effects_strength=args.effects, supersample=args.supersample)
    return SyntheticEngine(seed=args.seed, config=config)


def cmd_generate(args) -> None:
    from training.synth.sample import training_targets

    k, n = parse_shard(args.shard)
    engine = _engine(args)
    out = Path(args.out)
    indices = range(k, args.num, n)
    stems = []
    for i in tqdm(indices, desc=f"shard {k}/{n}", unit="sample"):
        stem = f"sample_{i:07d}"
        stems.append(stem)
        if (out / f"{stem}.npz").is_file():  # an interrupted run picks up where it stopped
            continue
        sample = engine.sample(i)
        sample.save(out, stem, image_format=args.format, targets=training_targets(sample, engine.model))
    manifest = {"seed": args.seed, "num": args.num, "shard": [k, n], "size": args.size, "samples": stems,
                "accessories": not args.no_accessories, "effects": args.effects}
    (out / f"manifest_{k}of{n}.json").write_text(json.dumps(manifest))
    log.info("wrote %d samples to %s", len(stems), out)


def cmd_sheet(args) -> None:
    from core.layouts import load_layout
    from core.overlay import contact_sheet, draw_landmarks
    from training.synth.styles import get_style, style_points

    sheet_path = OutputPlan(overwrite=args.overwrite).file(args.out, "--out")  # before the rendering
    engine = _engine(args)
    style = get_style(args.style)
    layout = load_layout(style.layout)
    tiles = []
    for i in tqdm(range(args.num), desc="contact sheet", unit="sample"):
        sample = engine.sample(i)
        verts = sample.vertices(engine.model)
        truth = sample.truth(layout, engine.model, verts)
        points = style_points(style, verts, sample.K, sample.R, sample.t, engine.model)
        tiles.append(draw_landmarks(sample.image, points, truth.visibility, layout.contours, radius=1))
    sheet = contact_sheet(tiles, columns=int(np.ceil(np.sqrt(args.num))))
    write_image(sheet_path, sheet)
    log.info("wrote %s (%d samples, style %s: green visible, red hidden)", args.out, args.num, style.name)


def cmd_sequence(args) -> None:
    from training.synth.sequences import render_sequence, write_sequence

    plan = OutputPlan(overwrite=args.overwrite)
    names = [f"{args.kind}_{args.seed}_{i:03d}" for i in range(args.num)]
    for name in names:  # every clip's files checked before the first is rendered
        for suffix in (".mp4", ".npz"):
            plan.file(Path(args.out) / f"{name}{suffix}", "--out")
    engine = _engine(args)
    for i, name in enumerate(names):
        frames = render_sequence(engine, i, args.frames, args.kind)
        path = write_sequence(frames, Path(args.out), name)
        log.info("wrote %s (%d frames)", path, len(frames))


def cmd_bench(args) -> None:
    engine = _engine(args)
    engine.fill_skin_bank()
    engine.sample(0)  # warm-up: GL context, caches, background photos
    start = time.perf_counter()
    for i in range(1, args.num + 1):
        engine.sample(i)
    per_sample = (time.perf_counter() - start) / args.num

    cores = len(os.sched_getaffinity(0))
    print(f"synthetic engine: {1 / per_sample:.1f} samples/s in one process at {args.size}x{args.size} "
          f"({per_sample * 1000:.1f} ms/sample, accessories={'off' if args.no_accessories else 'on'}, "
          f"supersample={args.supersample}, LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'all')}, "
          f"machine has {cores} cores)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--size", type=int, default=256, help="image width and height in pixels")
    common.add_argument("--no-accessories", action="store_true", help="bald heads, no glasses/hands")
    common.add_argument("--effects", type=float, default=1.0, help="camera effects strength (0 = clean)")
    common.add_argument("--supersample", type=int, default=2, help="anti-aliasing: render at this many times the size")
    p = sub.add_parser("generate", parents=[common], help="write samples (image + npz ground truth)")
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=int, required=True, help="samples in the whole dataset (all shards)")
    p.add_argument("--shard", default="0/1", help="k/N: render every N-th sample starting at k")
    p.add_argument("--format", choices=["jpg", "png"], default="jpg")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("sheet", parents=[common], help="contact sheet PNG with ground truth drawn")
    p.add_argument("--out", default="docs/images/synth_contact_sheet.png")
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--style", default="canonical", help="annotation style to draw (canonical, ibug2d, aflw3d, wflw)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=cmd_sheet)
    p = sub.add_parser("sequence", parents=[common], help="video clips with per-frame ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=int, default=1)
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--kind", choices=["moving", "static"], default="moving")
    p.add_argument("--overwrite", action="store_true", help="replace clips of the same names already in --out")
    p.set_defaults(func=cmd_sequence)
    p = sub.add_parser("bench", parents=[common], help="print rendering throughput")
    p.add_argument("--num", type=int, default=100)
    p.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, OutputError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
