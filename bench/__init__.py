"""Benchmarks of the detector against the peers people use (MediaPipe FaceLandmarker, dlib): `python -m bench.benchmark`."""
