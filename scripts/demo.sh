#!/usr/bin/env bash
# The main job on the bundled defaults: render the sample clip (fixed seed), track it with the default model through
# the Blender add-on's batch path, write out/demo/demo.blend, out/demo/preview.mp4 (landmarks drawn) and print a
# one-screen accuracy summary against the clip's ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m demo --out out/demo "$@"
