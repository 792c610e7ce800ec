"""Real-face benchmark: our models vs MediaPipe FaceLandmarker and dlib on AFLW2000-3D dev and 300-W validation.

    python -m bench.realfaces [--model assets/models/default.onnx ...] [--limit N] [--out docs/benchmarks_real]
                              [--doc docs/benchmarks.md] [--overwrite]

`inputs` lists the faces and their ground truth, `runs` runs the methods, `scoring` is the protocol (that of
../shared/tools/realface_check.py), `report` writes tables, CED plots, the overlay sheet and results.json.
"""
