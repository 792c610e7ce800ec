#!/usr/bin/env bash
# Set up a fresh machine: Debian packages, the virtual environment at .venv, Python packages.
# Usage: bash scripts/setup.sh [--dev]     (--dev adds pytest and bpy for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglx-mesa0 libgles2 opencv-doc
              libxi6 libxxf86vm1 libxfixes3 libxrender1 libxkbcommon0 libsm6 libice6 libx11-6)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip==24.3.1
# torch first and exactly pinned: the CPU wheel on this machine's disk; anything looser pulls a CUDA build.
$VPY -m pip install -q torch==2.13.0
REQ=requirements.txt
[ "${1:-}" = "--dev" ] && REQ=requirements-dev.txt
$VPY -m pip install -q -r "$REQ" torch==2.13.0
$VPY -m pip install -q --no-deps -e .

# The ICT face model (MIT) is read from ../shared/facekit; a copy in assets/facekit (gitignored) lets the repo and
# the add-on build work without ../shared beside it.
if [ ! -f assets/facekit/ict_facekit_light.npz ] && [ -f ../shared/facekit/ict_facekit_light.npz ]; then
  mkdir -p assets/facekit
  cp ../shared/facekit/{ict_facekit_light.npz,vertex_indices.json,LICENSE,README.md} assets/facekit/
  chmod u+w assets/facekit/*
fi
echo "setup: done ($($VPY -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'))"
