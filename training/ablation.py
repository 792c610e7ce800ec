"""The paper's ablation at a scale this CPU affords: train and evaluate the four configurations, write the report.

    python -m training.ablation --train data/synth_train --test data/synth_test --sequences data/sequences \
        --steps 1500 --out docs/ablation

Rows (all trained on the same mix of annotation styles, as the paper trains on mixed datasets):
  baseline_2d  continuous 2D head on crops from the ground-truth box
  stn_2d       + spatial transformer on full frames (unsupervised: no box loss)
  stn_3d       + 3D head (canonical 3D points, focal, pose; 2D supervision only)
  full         + semantic correction (style embedding per annotation style)
  full_3dsup   full, with the synthetic 3D points and camera as extra targets ("both ways" for the 3D head)
Each is evaluated on the held-out synthetic set in canonical semantics and in the ibug2d style (the model is told
the style where it can use it), and on the static and moving clips for temporal stability.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.outputs import OutputError, OutputPlan, write_text
from training.evaluate import evaluate_model, evaluate_sequences, load_checkpoint, plan_report, write_report
from training.train import train

log = logging.getLogger(__name__)

ROWS: dict[str, dict] = {
    "baseline_2d": {"model": {"variant": "baseline_2d"}},
    "stn_2d": {"model": {"variant": "stn_2d"}},
    "stn_3d": {"model": {"variant": "stn_3d"}},
    "full": {"model": {"variant": "full"}},
    "full_3dsup": {"model": {"variant": "full"}, "loss": {"use_3d_supervision": True}},
}

# Small enough for a few minutes per row on 2 CPU cores; identical for every row.
SMALL_MODEL = {"crop_size": 96, "stn_input": 32, "hidden": 128}


def row_config(name: str, train_dir: str, run_root: Path, steps: int, seed: int) -> dict:
    overrides = ROWS[name]
    return {
        "seed": seed,
        "run_dir": str(run_root / name),
        "model": {**SMALL_MODEL, **overrides["model"]},
        "data": {"train": f"synthetic:root={train_dir},style=mix", "val_fraction": 0.01, "image_size": 256,
                 "queries_per_image": 128, "num_workers": 1},
        "optim": {"batch_size": 16, "steps": steps, "lr": 2.0e-3, "warmup_steps": max(steps // 20, 10)},
        "loss": overrides.get("loss", {}),
        "log": {"every": 25, "val_every": steps, "val_batches": 4, "image_every": steps, "ckpt_every": 250},
        "runtime": {"threads": 1},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="generated synthetic training folder")
    parser.add_argument("--test", required=True, help="generated synthetic test folder (another seed)")
    parser.add_argument("--sequences", help="folder of synthetic clips (static and moving)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--runs", default="runs/ablation", help="where the runs go (resumed if present)")
    parser.add_argument("--out", default="docs/ablation")
    parser.add_argument("--limit", type=int, help="evaluate on at most this many test images")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out (and its summary.md)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    plan = OutputPlan(overwrite=args.overwrite)
    try:
        for part in ("canonical", "ibug2d"):
            plan_report(out / part, plan)
        plan.file(out / "summary.md", "--out")
    except OutputError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    canonical, ibug2d = {}, {}
    for name in args.rows:
        run_dir = train(row_config(name, args.train, Path(args.runs), args.steps, args.seed))
        model = load_checkpoint(run_dir / "last.pt").eval()
        canonical[name] = evaluate_model(model, args.test, style="canonical", limit=args.limit)
        if args.sequences:
            canonical[name].update(evaluate_sequences(model, args.sequences))
        ibug2d[name] = evaluate_model(model, args.test, style="ibug2d", limit=args.limit)
        log.info("%s: NME io %.4f (canonical), %.4f (ibug2d)", name, canonical[name]["nme_io"],
                 ibug2d[name]["nme_io"])
    parts = {"canonical": write_report(canonical, out / "canonical", "Canonical semantics"),
             "ibug2d": write_report(ibug2d, out / "ibug2d", "300-W-like annotation style (ibug2d)")}
    command = "python -m training.ablation " + " ".join(argv if argv is not None else sys.argv[1:])
    write_summary(out / "summary.md", parts, command, args.steps)
    return 0


def write_summary(path: Path, parts: dict[str, dict[str, Path]], command: str, steps: int) -> Path:
    """OUT/summary.md: how the numbers were made, then each report's table and CED plot (docs/ablation.md links it
    beside the real-face ablation, training.ablation_real)."""
    lines = ["# Ablation: what each addition of the paper does here", "",
             f"Made by `{command}` ({steps} training steps per row on the 2-core CPU of this project's machines; "
             "the same data, seed and small model for every row). " + __doc__.split("Rows", 1)[1].split("Each is")[0]
             .replace("(all trained", "Rows (all trained"), ""]
    for name, files in parts.items():
        table = files["markdown"].read_text().replace("![CED](ced.png)\n", "")  # linked below, from here
        lines += [table, "", f"![CED, {name}]({files['ced'].relative_to(path.parent)})", ""]
    return write_text(path, "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
