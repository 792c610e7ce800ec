"""Benchmarks of the detector, each a `python -m` command: against the peers people use (MediaPipe
FaceLandmarker, dlib) on synthetic data and public photos (`bench.benchmark`) and on real annotated faces
(`bench.realfaces`), how often it finds the face by face size (`bench.face_finding`), the memory of long takes
(`bench.long_takes`) and speed on this machine (`bench.model_speed`, `bench.runtime_speed`). `peers.py` is the
worker the peers run in, inside their own environment (.venv-peers)."""
