#!/usr/bin/env bash
# The main job on the bundled defaults. Until the default model lands (issue 6), it runs the synthetic data
# engine's demo: a contact sheet of 64 samples with ground truth, a short clip with per-frame ground truth and the
# engine's throughput. Outputs go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p out/demo
$PY -m training.synth sheet --num 64 --out out/demo/contact_sheet.png
$PY -m training.synth sequence --num 1 --frames 60 --kind moving --out out/demo
$PY -m training.synth bench --num 50
echo "demo: see out/demo/contact_sheet.png and out/demo/moving_0_000.mp4"
