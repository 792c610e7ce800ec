"""Real-face benchmark, one command: our models and the peers in the same run, on AFLW2000-3D dev and 300-W val.

    python -m bench.realfaces [--model assets/models/default.onnx] [--model other.onnx ...] [--limit N]
                              [--out docs/benchmarks_real] [--doc docs/benchmarks.md] [--overwrite]

writes into --out: report.md (the tables), ced_<set>.png, results.json (summaries and per-face scores) and
overlay_real_faces.png (research-only photographs: kept out of git by the .gitignore written beside it). With
--doc the report's section also goes into that markdown file, in place of its earlier version. `--limit N`: the
first N faces of each set (AFLW2000: the first N of ../shared/tools/realface_check.py). The peers run through
.venv-peers (`bash scripts/setup_peers.sh`); without it the report covers our models only and says so. A non-empty
--out folder or an existing --doc file is refused before any work unless --overwrite is given.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path

from bench.realfaces import inputs, report, runs
from bench.realfaces.scoring import score_set, summarize
from core.outputs import OVERWRITE_FLAG, OutputError, OutputPlan, write_text
from core.paths import ASSETS_DIR, REPO_DIR

log = logging.getLogger("bench.realfaces")


def benchmark(models: list[Path], limit: int | None, out_dir: Path, doc: Path | None = None,
              aflw_root: Path = inputs.AFLW2000_DEV, w300_root: Path = inputs.W300_TRAIN,
              command: str = "python -m bench.realfaces") -> Path:
    """Run everything and write the report (module docstring); returns report.md's path. `command`: how the
    report says it was made. The caller checks `out_dir` and `doc` first (`main`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sets = [inputs.aflw2000_dev(limit, aflw_root), inputs.w300_val(limit, w300_root)]
    loaded = [(s, inputs.load_images(s.faces)) for s in sets]
    for s in sets:
        log.info("%s: %d faces", s.title, len(s.faces))

    # Runs: per set, method key -> candidates per image.
    names = runs.model_names(models)
    methods: dict[str, list[runs.Method]] = {}
    predictions: dict[str, dict[str, runs.Candidates]] = {}
    for face_set, images in loaded:
        methods[face_set.key], predictions[face_set.key] = [], {}
        for name, path in zip(names, models):
            key = f"ours:{name}"
            methods[face_set.key].append(runs.Method(key, f"Ours ({name}, {face_set.semantics})", face_set.semantics))
            predictions[face_set.key][key] = runs.run_ours(path, face_set, images)
    with tempfile.TemporaryDirectory(prefix="bench_realfaces_") as tmp:
        peers = runs.run_peer_methods(loaded, Path(tmp))
    versions = None
    if peers is not None:
        by_set, versions = peers
        for face_set in sets:
            for m in runs.peer_methods():
                methods[face_set.key].append(m)
                predictions[face_set.key][m.key] = by_set[face_set.key][m.key]

    # Scores and report.
    scores = {s.key: {m.key: score_set(predictions[s.key][m.key], s.faces) for m in methods[s.key]} for s in sets}
    summaries = {s.key: {m.key: summarize(scores[s.key][m.key], s.faces) for m in methods[s.key]} for s in sets}
    for s in sets:
        for m in methods[s.key]:
            r = summaries[s.key][m.key]
            log.info("%s, %s: detected %d/%d, NME_box %s, FR@0.1 %s, pose MAE %s", s.title, m.label, r["detected"],
                     r["n"], report.fmt(r["nme_box"], 4), report.fmt(r["fr_0.1"], 3), report.fmt(r["pose_mae"], 1))
    ceds = {s.key: report.plot_ced(s, methods[s.key], scores[s.key], out_dir) for s in sets if s.faces}
    overlay = report.overlay_sheet(loaded, methods, predictions, scores, out_dir / report.OVERLAY_NAME)
    report.write_results(out_dir / "results.json", sets, methods, summaries, scores)
    shown = [Path(os.path.relpath(p.resolve(), REPO_DIR)) if p.resolve().is_relative_to(REPO_DIR) else p
             for p in models]
    report_path = out_dir / "report.md"
    write_text(report_path, "\n".join(report.section(command, shown, sets, methods, summaries, versions, ".", ceds,
                                                     overlay)) + "\n")
    if doc is not None:
        rel = os.path.relpath(out_dir.resolve(), doc.resolve().parent)
        report.update_section(doc, report.section(command, shown, sets, methods, summaries, versions, rel, ceds,
                                                  overlay))
        log.info("updated %s", doc)
    log.info("wrote %s", report_path)
    return report_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realfaces", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", default=None,
                        help="our ONNX model (repeatable; default assets/models/default.onnx)")
    parser.add_argument("--limit", type=int, default=None, help="the first N faces of each set only")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "benchmarks_real",
                        help="folder for report.md, the CED plots, results.json and the (gitignored) overlay sheet")
    parser.add_argument("--doc", type=Path, default=None,
                        help="also put the report's section into this markdown file (e.g. docs/benchmarks.md), in "
                             "place of its earlier version; an existing file needs --overwrite")
    parser.add_argument("--aflw-root", type=Path, default=inputs.AFLW2000_DEV)
    parser.add_argument("--w300-root", type=Path, default=inputs.W300_TRAIN)
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="write into an existing, non-empty --out folder and replace the section in an existing "
                             "--doc file; needed to rerun into docs/benchmarks_real and docs/benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    models = args.model or [ASSETS_DIR / "models" / "default.onnx"]
    plan = OutputPlan([*models, args.aflw_root, args.w300_root], args.overwrite)
    try:
        out_dir = plan.folder(args.out, "--out")
        doc = plan.file(args.doc, "--doc") if args.doc is not None else None
    except OutputError as exc:
        log.error("%s", exc)
        return 2
    command = "python -m bench.realfaces " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    benchmark(models, args.limit, out_dir, doc, args.aflw_root, args.w300_root, command.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
