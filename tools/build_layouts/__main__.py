"""Build the built-in layout JSON files in assets/layouts/ from the face model.

    python -m tools.build_layouts            # rewrites assets/layouts/ibug68.json (and the others)
    python -m tools.build_layouts wflw98     # just one
    python -m tools.build_layouts frl --frl-root ../shared/realfaces/frl_ccby   # placed from annotated photos

How each layout is placed is described in assets/layouts/README.md.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core.layouts import LAYOUTS_DIR
from tools.build_layouts.dense import build_dense
from tools.build_layouts.frl import FRL_NAMES_FILE, FRL_ROOT, build_frl
from tools.build_layouts.ibug68 import build_ibug68
from tools.build_layouts.wflw98 import build_wflw98

log = logging.getLogger(__name__)

BUILDERS = {"ibug68": build_ibug68, "wflw98": build_wflw98, "dense": build_dense, "frl": build_frl}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.build_layouts", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"layouts to build ({', '.join(BUILDERS)}; default: all)")
    parser.add_argument("--frl-root", type=Path, default=FRL_ROOT,
                        help=f"FRL photos with .tem files and {FRL_NAMES_FILE}, for frl (default: {FRL_ROOT})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown layout {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    LAYOUTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(BUILDERS):
        if name == "frl" and not args.frl_root.is_dir():
            if args.names:
                parser.error(f"--frl-root {args.frl_root} is not a directory")
            log.warning("skipped frl: no FRL photos at %s (pass --frl-root)", args.frl_root)
            continue
        layout = build_frl(args.frl_root) if name == "frl" else BUILDERS[name]()
        path = LAYOUTS_DIR / f"{name}.json"
        path.write_text(json.dumps(layout.to_json(), separators=(",", ":")) + "\n")
        log.info("wrote %s (%d points)", path, len(layout))


if __name__ == "__main__":
    main()
