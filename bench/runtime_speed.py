"""Whole-pipeline latency of the torch-free runtime: a decoded 640x480 RGB frame in memory -> 2D landmarks,
visibility, 3D points, pose and intrinsics in the frame's pixels (core.runtime.LandmarkModel.predict).

    python -m bench.runtime_speed [--model PATH] [--repeats 50] [--width 640 --height 480]

Uses assets/models/default.onnx when it exists, else exports an untrained `full` model to a temporary file.
The frame is a portrait (Grace Hopper, centred); a noise frame without a face is timed too (every search start
runs). Reports the median over repeats for 68 and 2000 points with 1 and 2 onnxruntime threads, and the share spent
fitting the frame to the model input. Targets: < 10 ms (68 points), < 15 ms (2000 points). Then the rig solve
(core.solve.solve_shot, with its rigid alignment) of a 300-frame shot of 68 points: target < 3 s.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from core.layouts import Layout, load_layout
from core.runtime.images import fit_to_input
from core.runtime.session import DEFAULT_MODEL_PATH, LandmarkModel

TARGET_MS = {68: 10.0, 2000: 15.0}
TARGET_SOLVE_S = 3.0


def layout_with(points: int) -> Layout:
    """ibug68 for 68 points, else the first `points` points of the dense layout."""
    if points == 68:
        return load_layout("ibug68")
    dense = load_layout("dense")
    if points > len(dense):
        raise ValueError(f"the dense layout has only {len(dense)} points")
    return dataclasses.replace(dense, name=f"dense{points}", triangles=dense.triangles[:points],
                               barycentric=dense.barycentric[:points], names=(), contours={})


def timings_ms(fn, repeats: int, warmup: int = 5) -> tuple[float, float]:  # noqa: ANN001 - no-argument callable
    """(median, best) milliseconds per call: on a shared machine the best is the uncontended cost."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), 1000 * float(np.min(times))


def face_frame(width: int, height: int) -> np.ndarray:
    """Grace Hopper's portrait (matplotlib's sample data) scaled and padded to width x height: a frame with a face,
    so `predict` finds it at once. A frame without one (noise) costs the whole search instead: see `no face`."""
    import cv2

    from bench.benchmark.inputs import read_rgb, real_photos

    photo = read_rgb(real_photos()["grace_hopper"])
    scale = min(width / photo.shape[1], height / photo.shape[0])
    photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    y, x = (height - photo.shape[0]) // 2, (width - photo.shape[1]) // 2
    frame[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    return frame


def bench(model_path: Path, width: int, height: int, repeats: int) -> None:
    frame = face_frame(width, height)
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for threads in (1, 2):
        model = LandmarkModel(model_path, threads=threads)
        fitted, _ = fit_to_input(frame, model.input_hw)
        fit_ms, _ = timings_ms(lambda: fit_to_input(frame, model.input_hw), repeats)
        for points in (68, 2000):
            layout = layout_with(points)
            queries, normals = model.queries(layout)  # computed once per layout and cached
            ms, best = timings_ms(lambda: model.predict(frame, layout), repeats)
            net_ms, _ = timings_ms(lambda: model.run(fitted, queries, normals), repeats)
            status = "OK" if ms < TARGET_MS[points] else "over target"
            print(f"{threads} thread{'s' if threads > 1 else ' '} {points:5d} points: {ms:6.2f} ms/frame median, "
                  f"{best:6.2f} best (network {net_ms:.2f}, fit {fit_ms:.2f})  target < {TARGET_MS[points]:.0f} ms  "
                  f"{status}")
        no_face_ms, _ = timings_ms(lambda: model.predict(noise, layout_with(68)), max(3, repeats // 5))
        print(f"{threads} thread{'s' if threads > 1 else ' '}    68 points, no face (noise: the whole search): "
              f"{no_face_ms:6.2f} ms/frame median")


def bench_solve(frames: int = 300) -> None:
    """solve_shot on model points of a random identity and expressions, each frame turned and shifted a little."""
    from core import geometry
    from core.solve import layout_basis, solve_shot

    rng = np.random.default_rng(0)
    basis = layout_basis("ibug68")
    weights = np.clip(rng.normal(0.0, 0.3, (frames, len(basis.expression))), 0, 1)
    points = basis.points(rng.normal(size=40), weights)
    for k in range(frames):
        points[k] = points[k] @ geometry.pose_to_rotation(*rng.normal(0, 3, 3)).T + rng.normal(0, 0.5, 3)
    start = time.perf_counter()
    solved = solve_shot(points, basis)
    seconds = time.perf_counter() - start
    status = "OK" if seconds < TARGET_SOLVE_S else "over target"
    print(f"rig solve, {frames} frames x 68 points: {seconds:.2f} s (aligned: {solved.alignment_R is not None})  "
          f"target < {TARGET_SOLVE_S:.0f} s  {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = args.model or (DEFAULT_MODEL_PATH if DEFAULT_MODEL_PATH.is_file() else None)
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            import torch

            from training.export import export_model, load_model
            torch.set_num_threads(1)
            model, source, _, _ = load_model("full")
            path = export_model(model, Path(tmp) / "full.onnx", source=source)
            print(f"no {DEFAULT_MODEL_PATH}: benchmarking an untrained 'full' model")
        runtime = LandmarkModel(path)
        print(f"model {path} (input {runtime.input_hw[0]}x{runtime.input_hw[1]}), frame {args.width}x{args.height}")
        bench(path, args.width, args.height, args.repeats)
    bench_solve()


if __name__ == "__main__":
    main()
