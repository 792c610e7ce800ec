"""Build the built-in layout JSON files in assets/layouts/ from the face model.

    python -m tools.build_layouts            # rewrites assets/layouts/ibug68.json (and the others)
    python -m tools.build_layouts wflw98     # just one
    python -m tools.build_layouts frl --frl-root ../shared/realfaces/frl_ccby   # placed from annotated photos
    python -m tools.build_layouts ibug68_ls3d [--checkpoint assets/models/default.pt] [--aflw-root DIR]
        # fitted to AFLW2000-3D dev's labels through a trained model (minutes), with the benchmark's two
        # cross-fitting layouts (bench/realfaces/layouts/): built only when named

How each layout is placed is described in assets/layouts/README.md.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core.layouts import LAYOUTS_DIR, Layout
from tools.build_layouts.dense import build_dense
from tools.build_layouts.frl import FRL_NAMES_FILE, FRL_ROOT, build_frl
from tools.build_layouts.ibug68 import build_ibug68
from bench.realfaces.inputs import FOLDS, fold_layout_path
from tools.build_layouts.ibug68_ls3d import AFLW2000_ROOT, DEFAULT_CHECKPOINT, build_ibug68_ls3d
from tools.build_layouts.wflw98 import build_wflw98

log = logging.getLogger(__name__)

BUILDERS = {"ibug68": build_ibug68, "wflw98": build_wflw98, "dense": build_dense, "frl": build_frl,
            "ibug68_ls3d": build_ibug68_ls3d}
# Built only when named: they need a trained model and minutes of fitting.
ON_REQUEST = ("ibug68_ls3d",)


def write_layout(layout: Layout, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(layout.to_json(), separators=(",", ":")) + "\n")
    log.info("wrote %s (%d points)", path, len(layout))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.build_layouts", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"layouts to build ({', '.join(BUILDERS)}; default: all)")
    parser.add_argument("--frl-root", type=Path, default=FRL_ROOT,
                        help=f"FRL photos with .tem files and {FRL_NAMES_FILE}, for frl (default: {FRL_ROOT})")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help=f"trained detector (torch weights) for ibug68_ls3d (default: {DEFAULT_CHECKPOINT})")
    parser.add_argument("--aflw-root", type=Path, default=AFLW2000_ROOT,
                        help=f"AFLW2000-3D photos with .pts files, for ibug68_ls3d (default: {AFLW2000_ROOT})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown layout {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    LAYOUTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.names or [n for n in BUILDERS if n not in ON_REQUEST]:
        if name == "ibug68_ls3d" and not args.aflw_root.is_dir():
            parser.error(f"--aflw-root {args.aflw_root} is not a directory")
        if name == "frl" and not args.frl_root.is_dir():
            if args.names:
                parser.error(f"--frl-root {args.frl_root} is not a directory")
            log.warning("skipped frl: no FRL photos at %s (pass --frl-root)", args.frl_root)
            continue
        if name == "frl":
            layout = build_frl(args.frl_root)
        elif name == "ibug68_ls3d":
            layout = build_ibug68_ls3d(args.checkpoint, args.aflw_root)
            for fold in range(FOLDS):
                write_layout(build_ibug68_ls3d(args.checkpoint, args.aflw_root, held_out_fold=fold),
                             fold_layout_path(fold))
        else:
            layout = BUILDERS[name]()
        write_layout(layout, LAYOUTS_DIR / f"{name}.json")


if __name__ == "__main__":
    main()
