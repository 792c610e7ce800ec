"""Benchmark our detector against MediaPipe FaceLandmarker and dlib, offline, in one command.

    python -m bench.benchmark [--model assets/models/default.onnx] [--limit N] --out docs/benchmarks

writes docs/benchmarks.md and PNGs under docs/benchmarks/. Sections (bench/README.md has the definitions):
  1. accuracy on the held-out synthetic test set (data/synth_test, iBUG-68), with CED plot, pose/focal/visibility;
  2. real photographs (skimage's astronaut and camera, matplotlib's grace_hopper): overlays and agreement between methods;
  3. temporal stability (jitter) on the synthetic clips and on the real stills under a known smooth warp;
  4. speed: ms per 640x480 and per 1280x720 frame, all methods in the same run, pinned to one CPU core.
The peers run in their own environment (.venv-peers, scripts/setup_peers.sh) through bench/peers.py as a
subprocess; without it the report says so and covers our model only.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.layouts import load_layout
from core.overlay import draw_landmarks
from core.paths import ASSETS_DIR
from training import metrics

log = logging.getLogger("bench.benchmark")

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEERS_WORKER = Path(__file__).resolve().parent / "peers.py"
SYNTH_TEST = ROOT / "data" / "synth_test"
SEQUENCES = ROOT / "data" / "sequences"
CLIPS = ("static_3_000", "static_3_001", "moving_4_000", "moving_4_001")
# How the data above is made (each command gives the same images on every machine).
DATA_COMMANDS = ("python -m training.synth generate --out data/synth_test --num 500 --seed 2",
                 "python -m training.synth sequence --out data/sequences --num 2 --kind static --seed 3",
                 "python -m training.synth sequence --out data/sequences --num 2 --kind moving --seed 4")
PEERS = ("mediapipe", "dlib")
LABELS = {"ours": "Ours", "ours_mirror": "Ours, mirrored runs (`predict(..., mirror=True)`)",
          "ours_track": "Ours + tracker (smoothing)", "ours_track_raw": "Ours + tracker (no smoothing)",
          "ours_track_mirror": "Ours + tracker (smoothing, `mirror=True`)",
          "ours_track_clip": "Ours + tracker, whole clip smoothed without lag (`smooth_clip`, offline)",
          "mediapipe": "MediaPipe FaceLandmarker", "dlib": "dlib HOG + 68-pt predictor"}
WARP_FRAMES = 60
SPEED_FRAMES = 60
SPEED_WARMUP = 10
SPEED_HW = (480, 640)
SPEED_HD_HW = (720, 1280)  # footage as people shoot it: every method has more pixels to read
# Speed is measured on both real photos under the smooth warp: the astronaut's face is small in the wide frame
# (about 60 px of 640) beside a round, face-like mission patch; Grace Hopper's is a portrait's (about 100 px).
SPEED_PHOTOS = ("astronaut", "grace_hopper")
# Warped, these chose the tracker's motion filter (core.runtime.tracker.Smoothing): in the agreement table only.
TUNING_PHOTOS = ("camera",)


def speed_name(photo: str, hw: tuple[int, int]) -> str:
    """The speed table's column of a photo at a frame size (the plain name at SPEED_HW)."""
    return photo if hw == SPEED_HW else f"{photo}_{hw[1]}x{hw[0]}"


def speed_size(name: str) -> tuple[int, int]:
    return SPEED_HD_HW if name.endswith(f"_{SPEED_HD_HW[1]}x{SPEED_HD_HW[0]}") else SPEED_HW
SPEED_ROUNDS = 3
THRESHOLD = metrics.FAILURE_THRESHOLD
# GL camera (x right, y up, looking down -z), MediaPipe's face-geometry space -> OpenCV camera (y down, z forward).
GL_TO_CV = np.diag([1.0, -1.0, -1.0])


# --- inputs ---------------------------------------------------------------------------------------------------------

def real_photos() -> dict[str, Path]:
    """The public-domain and CC0 photos of people shipped inside scikit-image and matplotlib ("camera": CC0,
    Lav Varshney; a grey profile, the eye behind a camera)."""
    import matplotlib
    import skimage

    data = Path(skimage.__file__).parent / "data"
    return {"astronaut": data / "astronaut.png",
            "grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
            "camera": data / "camera.png"}


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class SynthSet:
    """The held-out synthetic test set: images and iBUG-68 ground truth."""

    paths: list[Path]
    images: np.ndarray        # (N, H, W, 3)
    gt: np.ndarray            # (N, 68, 2) canonical semantics (3D surface points projected)
    gt_2d_style: np.ndarray   # (N, 68, 2) 300-W annotation style (jaw on the silhouette)
    vis: np.ndarray           # (N, 68)
    K: np.ndarray
    R: np.ndarray


def load_synth(limit: int | None) -> SynthSet:
    paths = sorted(SYNTH_TEST.glob("sample_*.npz"))[:limit]
    if not paths:
        raise FileNotFoundError(f"no samples in {SYNTH_TEST}")
    images, gt, gt2, vis, K, R = [], [], [], [], [], []
    for p in paths:
        with np.load(p) as d:
            images.append(read_rgb(p.with_suffix(".jpg")))
            gt.append(d["target_ibug68_2d"])
            gt2.append(d["target_style_ibug2d_2d"])
            vis.append(d["target_ibug68_vis"])
            K.append(d["K"])
            R.append(d["R"])
    return SynthSet(paths, np.stack(images), np.stack(gt).astype(np.float64), np.stack(gt2).astype(np.float64),
                    np.stack(vis), np.stack(K), np.stack(R))


def load_clip(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames (T, H, W, 3) RGB, ground truth (T, 68, 2), fps) of a synthetic clip."""
    from core.runtime.video import open_frames
    from training.synth.sequences import load_sequence

    frames = np.stack(list(open_frames(SEQUENCES / f"{name}.mp4")))
    layout = load_layout("ibug68")
    gt = np.stack([s.truth(layout).points_2d for s in load_sequence(SEQUENCES / f"{name}.npz")]).astype(np.float64)
    with np.load(SEQUENCES / f"{name}.npz") as d:
        fps = float(d["fps"]) if "fps" in d.files else 30.0
    n = min(len(frames), len(gt))  # a decoder may drop a trailing frame
    return frames[:n], gt[:n], fps


def warp_matrices(num: int, hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """(num, 2, 3) OpenCV affine maps of a slow smooth motion: the image centred in the output, translated by a
    sinusoid of +-6% of its size and scaled by 1 +- 5%, one period over the clip (OpenCV pixel coordinates)."""
    h, w = hw
    oh, ow = out_hw
    base = min(oh / h, ow / w) * 0.95
    mats = []
    for k in range(num):
        phase = 2 * np.pi * k / num
        s = base * (1.0 + 0.05 * np.sin(phase))
        tx = 0.06 * ow * np.sin(phase)
        ty = 0.04 * oh * np.sin(2 * phase)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        mats.append([[s, 0.0, (ow - 1) / 2 + tx - s * cx], [0.0, s, (oh - 1) / 2 + ty - s * cy]])
    return np.asarray(mats, np.float64)


def warp_clip(image: np.ndarray, mats: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    return np.stack([cv2.warpAffine(image, m, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for m in mats])


def unwarp(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Points (N, 2) of a warped frame (pixel centres at +0.5) back to the original image through the inverse."""
    inv = cv2.invertAffineTransform(mat)
    p = points - 0.5  # to OpenCV's convention, where warpAffine's maps are defined
    return p @ inv[:, :2].T + inv[:, 2] + 0.5


# --- metrics --------------------------------------------------------------------------------------------------------

def stack_points(landmarks: list[Any], n: int = 68) -> np.ndarray:
    """Per-frame lists (or None for a miss) -> (T, n, 2) with NaN rows for misses."""
    out = np.full((len(landmarks), n, 2), np.nan)
    for k, p in enumerate(landmarks):
        if p is not None:
            out[k] = np.asarray(p, np.float64)
    return out


def accuracy(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Detection rate, NME over detected images, and FR / AUC @0.1 both over detected images and with each
    miss counted as a failure (NME = inf). pred (N, 68, 2) with NaN for misses."""
    found = np.isfinite(pred).all(axis=(1, 2))
    norm = metrics.inter_ocular_distance(gt)
    nmes = np.full(len(pred), np.inf)
    nmes[found] = metrics.nme(pred[found], gt[found], norm[found])
    detected = nmes[found]
    return {"n": int(len(pred)), "detection": float(found.mean()),
            "nme": float(detected.mean()) if detected.size else float("nan"),
            "nme_median": float(np.median(detected)) if detected.size else float("nan"),
            "fr_detected": metrics.failure_rate(detected, THRESHOLD), "auc_detected": metrics.auc(detected, THRESHOLD),
            "fr_all": metrics.failure_rate(nmes, THRESHOLD), "auc_all": metrics.auc(nmes, THRESHOLD),
            "nmes_all": nmes}


def masked_jitter(pred: np.ndarray, gt: np.ndarray | None, norm: np.ndarray | float) -> float:
    """training.metrics.jitter (order 1) over the consecutive frame pairs where both frames have a face."""
    pred = np.asarray(pred, np.float64)
    residual = pred - gt if gt is not None else pred
    norm = np.broadcast_to(np.asarray(norm, np.float64), (len(pred),))
    ok = np.isfinite(residual).all(axis=(1, 2))
    pairs = np.flatnonzero(ok[1:] & ok[:-1])
    if not len(pairs):
        return float("nan")
    step = np.linalg.norm(residual[pairs + 1] - residual[pairs], axis=-1).mean(axis=-1)
    return float(np.mean(step / norm[pairs + 1]))


def project_to_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    return u @ d @ vt


def mediapipe_pose(matrices: list[Any], R_gt: np.ndarray) -> dict[str, Any] | None:
    """MediaPipe's head rotation (from its facial transformation matrix) against the ground truth.

    The matrix maps MediaPipe's canonical face model into a GL-convention camera; its canonical axes are not ours,
    so one constant rotation C (R_gt ~ GL_TO_CV R_mp C) is fitted over the detected images (chordal mean) before
    measuring errors. That alignment is fitted on the test data itself, which slightly favours MediaPipe.
    """
    idx = [k for k, m in enumerate(matrices) if m is not None]
    if len(idx) < 3:
        return None
    R_mp = np.stack([GL_TO_CV @ project_to_rotation(np.asarray(matrices[k])[:3, :3]) for k in idx])
    C = project_to_rotation(np.einsum("nji,njk->ik", R_mp, R_gt[idx]))
    errors = metrics.pose_errors(R_mp @ C, R_gt[idx])
    angle = float(np.degrees(np.arccos(np.clip((np.trace(C) - 1) / 2, -1, 1))))
    return {"errors": errors, "alignment_deg": angle, "n": len(idx)}


# --- running the methods ---------------------------------------------------------------------------------------------

@dataclass
class OursRun:
    points: np.ndarray                 # (T, 68, 2), NaN where not found
    ms: list[float] = field(default_factory=list)
    faces: list[Any] = field(default_factory=list)


def run_ours(model: Any, frames: np.ndarray, semantics: str = "canonical", search: str = "auto",
             mirror: bool = False) -> OursRun:
    run = OursRun(np.full((len(frames), 68, 2), np.nan))
    for k, frame in enumerate(frames):
        start = time.perf_counter()
        face = model.predict(frame, "ibug68", semantics, search=search, mirror=mirror)
        run.ms.append(1000.0 * (time.perf_counter() - start))
        run.faces.append(face)
        if face.found:
            run.points[k] = face.landmarks_2d
    return run


def run_tracker(model: Any, frames: np.ndarray, fps: float, smoothing: Any, mirror: bool = False) -> OursRun:
    """The tracker over a clip; `run.faces` are its faces before smoothing (`FaceTracker.raw_face`)."""
    from core.runtime.tracker import FaceTracker

    tracker = FaceTracker(model, "ibug68", "canonical", smoothing=smoothing, fps=fps, mirror=mirror)
    run = OursRun(np.full((len(frames), 68, 2), np.nan))
    for k, frame in enumerate(frames):
        start = time.perf_counter()
        face = tracker.update(frame)
        run.ms.append(1000.0 * (time.perf_counter() - start))
        run.faces.append(tracker.raw_face)
        if face.found:
            run.points[k] = face.landmarks_2d
    return run


def clip_smoothed(run: OursRun, fps: float) -> np.ndarray:
    """(T, 68, 2) points of `smooth_clip` over a tracker run's raw faces, NaN where no face."""
    from core.runtime.tracker import smooth_clip

    faces = smooth_clip(run.faces, [k / fps for k in range(len(run.faces))])
    return stack_points([face.landmarks_2d if face.found else None for face in faces])


def tracker_runs(model: Any, frames: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """Our tracker's points (T, 68, 2) over a clip for each row of the stability table."""
    from core.runtime.tracker import Smoothing

    tracked = run_tracker(model, frames, fps, Smoothing())
    return {"ours_track": tracked.points, "ours_track_clip": clip_smoothed(tracked, fps),
            "ours_track_raw": run_tracker(model, frames, fps, None).points,
            "ours_track_mirror": run_tracker(model, frames, fps, Smoothing(), mirror=True).points}


def time_ours(model: Any, speed_frames: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per photo: median ms per frame of each of our modes after warm-up, pinned to one core, and the share of
    frames on which `predict` ran its search (`ours_searched`, from `FaceResult.searched`)."""
    from core.runtime.tracker import Smoothing

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    times: dict[str, dict[str, float]] = {}
    try:
        for n, frames in speed_frames.items():
            run_ours(model, frames[:SPEED_WARMUP])
            timed = frames[SPEED_WARMUP:]
            auto = run_ours(model, timed, search="auto")
            times[n] = {"ours": float(np.median(auto.ms))}
            times[n]["ours_mirror"] = float(np.median(run_ours(model, timed, search="auto", mirror=True).ms))
            for key, mode in (("ours_always_search", "always"), ("ours_one_start", "never")):
                times[n][key] = float(np.median(run_ours(model, timed, search=mode).ms))
            track = run_tracker(model, timed, 30.0, Smoothing())
            times[n]["ours_track"] = float(np.median(track.ms))
            times[n]["ours_track_mirror"] = float(np.median(run_tracker(model, timed, 30.0, Smoothing(), True).ms))
            times[n]["ours_searched"] = float(np.mean([face.searched for face in auto.faces]))
            times[n]["ours_found"] = float(np.mean([face.found for face in auto.faces]))
            times[n]["ours_track_found"] = float(np.isfinite(track.points).all(axis=(1, 2)).mean())
    finally:
        os.sched_setaffinity(0, affinity)
    return times


def measure_speed(model: Any, speed_frames: dict[str, np.ndarray]
                  ) -> tuple[dict[str, dict[str, float]], tuple[float, float]]:
    """({photo: {method: ms per frame}}, mean load average while the peers / ours ran). Each figure is the
    fastest of SPEED_ROUNDS medians; the rounds alternate the peers and ours, all pinned to one core, so that a
    burst of other jobs on this shared machine slows one round of one side, not the comparison."""
    rounds: dict[str, dict[str, list[float]]] = {n: {} for n in speed_frames}
    loads: tuple[list[float], list[float]] = ([], [])
    for _ in range(SPEED_ROUNDS):
        tasks: list[dict[str, Any]] = []
        for n, frames in speed_frames.items():
            tasks += [{"name": f"speed_video_{n}", "frames": frames, "mode": "video", "fps": 30.0,
                       "warmup": SPEED_WARMUP, "single_core": True},
                      # dlib has no video mode: its per-frame timing comes from the task above.
                      {"name": f"speed_image_{n}", "frames": frames, "mode": "image", "warmup": SPEED_WARMUP,
                       "single_core": True, "methods": ["mediapipe"]}]
        loads[0].append(os.getloadavg()[0])
        with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
            peers = run_peers(tasks, Path(tmp))
        peer_tasks = peers["tasks"] if peers else {}
        for n in speed_frames:
            for task in ("speed_video", "speed_image"):
                for m, result in peer_tasks.get(f"{task}_{n}", {}).items():
                    rounds[n].setdefault(f"{m}_{task}", []).append(float(np.median(result["ms"])))
                    found = float(np.mean([points is not None for points in result["landmarks"]]))
                    rounds[n].setdefault(f"{m}_{task}_found", []).append(found)
        loads[1].append(os.getloadavg()[0])
        for n, times in time_ours(model, speed_frames).items():
            for key, value in times.items():
                rounds[n].setdefault(key, []).append(value)
    best = {n: {key: min(values) for key, values in methods.items()} for n, methods in rounds.items()}
    return best, (float(np.mean(loads[0])), float(np.mean(loads[1])))


def peers_available() -> bool:
    """True when .venv-peers exists and imports mediapipe and dlib (it may be half-installed)."""
    if not PEERS_PYTHON.exists():
        return False
    check = subprocess.run([str(PEERS_PYTHON), "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "import peers; peers.mediapipe_task_path(); import mediapipe, dlib, face_recognition_models",
                            str(PEERS_WORKER.parent)],
                           capture_output=True)
    return check.returncode == 0


def run_peers(tasks: list[dict[str, Any]], workdir: Path) -> dict[str, Any] | None:
    """Run bench/peers.py in .venv-peers on the given tasks (frames saved as .npy); None when unavailable."""
    if not peers_available():
        log.warning("%s missing or incomplete: peers skipped (run `bash scripts/setup_peers.sh`)", PEERS_PYTHON)
        return None
    job = []
    for task in tasks:
        npy = workdir / f"{task['name']}.npy"
        np.save(npy, task.pop("frames"))
        job.append({**task, "npy": str(npy)})
    job_path, result_path = workdir / "job.json", workdir / "result.json"
    job_path.write_text(json.dumps({"tasks": job, "methods": list(PEERS)}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    log.info("running peers (%d tasks) in %s", len(job), PEERS_PYTHON)
    proc = subprocess.run([str(PEERS_PYTHON), str(PEERS_WORKER), str(job_path), str(result_path)], env=env,
                          capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if " peers INFO " in line:
            log.info("%s", line.split(" peers INFO ", 1)[1])
    if proc.returncode != 0:
        log.error("peer worker failed (exit %d):\n%s", proc.returncode, proc.stderr[-3000:])
        return None
    return json.loads(result_path.read_text())


# --- drawing --------------------------------------------------------------------------------------------------------

def panel(image: np.ndarray, points: np.ndarray | None, title: str, contours: dict[str, list[int]]) -> np.ndarray:
    if points is not None and np.isfinite(points).all():
        out = draw_landmarks(image, points, contours=contours)
    else:
        out = image.copy()
        title += " (no face)"
    scale = max(0.5, image.shape[1] / 700)
    cv2.putText(out, title, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, title, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


# --- report ---------------------------------------------------------------------------------------------------------

def pct(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def num(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def benchmark(model_path: Path, limit: int | None, out_dir: Path) -> Path:
    from core.runtime.session import LandmarkModel

    command = "python -m bench.benchmark " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir.with_suffix(".md")
    rel = os.path.relpath(out_dir, report_path.parent)
    contours = load_layout("ibug68").contours
    # One intra-op thread: the "1 thread where configurable" condition of the speed test, and gentle on the CPU.
    model = LandmarkModel(model_path, threads=1)
    log.info("model %s", model)

    # Inputs.
    synth = load_synth(limit)
    log.info("synthetic test set: %d images", len(synth.paths))
    clips = {name: load_clip(name) for name in CLIPS if (SEQUENCES / f"{name}.mp4").exists()}
    photos = {name: read_rgb(p) for name, p in real_photos().items() if p.exists()}
    warps = {}
    for name, image in photos.items():
        if name in TUNING_PHOTOS:
            continue
        mats = warp_matrices(WARP_FRAMES, image.shape[:2], image.shape[:2])
        warps[name] = (mats, warp_clip(image, mats, image.shape[:2]))
    # Frames for the speed test, per photo (a synthetic image when the photos are missing).
    speed_sources = {n: photos[n] for n in SPEED_PHOTOS if n in photos} or {"synthetic": synth.images[0]}
    speed_frames = {speed_name(n, hw): warp_clip(im, warp_matrices(SPEED_WARMUP + SPEED_FRAMES, im.shape[:2], hw), hw)
                    for hw in (SPEED_HW, SPEED_HD_HW) for n, im in speed_sources.items()}

    # Peers, all in one worker run (their speed is measured there, pinned to one core).
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        tasks: list[dict[str, Any]] = [{"name": "synth", "frames": synth.images, "mode": "image"}]
        tasks += [{"name": f"photo_{n}", "frames": im[None], "mode": "image"} for n, im in photos.items()]
        tasks += [{"name": f"clip_{n}", "frames": c[0], "mode": "video", "fps": c[2]} for n, c in clips.items()]
        tasks += [{"name": f"warp_{n}", "frames": w[1], "mode": "video", "fps": 30.0} for n, w in warps.items()]
        peers = run_peers(tasks, Path(tmp))
    peer_tasks = peers["tasks"] if peers else {}

    def peer_points(task: str, method: str) -> np.ndarray | None:
        if task not in peer_tasks:
            return None
        return stack_points(peer_tasks[task][method]["landmarks"])

    # 1. Accuracy on the synthetic test set.
    log.info("ours on the synthetic test set")
    ours = run_ours(model, synth.images, "canonical")
    ours_mirror = run_ours(model, synth.images, "canonical", mirror=True)
    ours_2d = run_ours(model, synth.images, "ibug2d") if "ibug2d" in model.semantics else None
    acc = {"ours": accuracy(ours.points, synth.gt), "ours_mirror": accuracy(ours_mirror.points, synth.gt)}
    acc_style = {"ours": accuracy(ours_2d.points, synth.gt_2d_style)} if ours_2d else {}
    for m in PEERS:
        p = peer_points("synth", m)
        if p is not None:
            acc[m] = accuracy(p, synth.gt)
            acc_style[m] = accuracy(p, synth.gt_2d_style)
    # The images every method detected: the same images for all, so NMEs there compare like with like.
    common = np.logical_and.reduce([np.isfinite(a["nmes_all"]) for a in acc.values()])
    acc_common = {k: accuracy(p[common], synth.gt[common]) for k, p in
                  [("ours", ours.points), ("ours_mirror", ours_mirror.points)]
                  + [(m, peer_points("synth", m)) for m in PEERS if m in acc]}
    ced_path = metrics.plot_ced({LABELS[k]: v["nmes_all"] for k, v in acc.items()}, out_dir / "ced_synth.png",
                                THRESHOLD, title=f"Synthetic test set (n={len(synth.paths)}), misses = failures")
    found = np.array([f.found for f in ours.faces])
    ours_extra: dict[str, Any] = {}
    if model.has_3d and found.any():
        R_pred = np.stack([f.R for f in ours.faces])[found]
        pose = metrics.pose_errors(R_pred, synth.R[found])
        focal = metrics.focal_error_percent(np.stack([f.K[0, 0] for f in ours.faces])[found], synth.K[found, 0, 0])
        vis = metrics.visibility_scores(np.stack([f.visibility for f in ours.faces])[found], synth.vis[found])
        ours_extra = {"pose": pose, "focal": focal, "vis": vis}
    mp_pose = mediapipe_pose(peer_tasks["synth"]["mediapipe"]["matrix"], synth.R) if "synth" in peer_tasks else None
    examples = []
    for k in range(min(4, len(synth.paths))):
        row = [panel(synth.images[k], ours.points[k], "ours", contours)]
        row += [panel(synth.images[k], peer_points("synth", m)[k], m, contours) for m in PEERS if "synth" in peer_tasks]
        row.append(panel(synth.images[k], synth.gt[k], "ground truth", contours))
        examples.append(np.hstack(row))
    write_png(out_dir / "synth_examples.png", np.vstack(examples))

    # 2. Real photographs.
    agreement: dict[str, dict[str, float]] = {}
    for name, image in photos.items():
        ours_face = model.predict(image, "ibug68", "canonical")
        ours_pts = ours_face.landmarks_2d if ours_face.found else np.full((68, 2), np.nan)
        ours2d_pts = model.predict(image, "ibug68", "ibug2d").landmarks_2d if "ibug2d" in model.semantics else None
        mirrored_face = model.predict(image, "ibug68", "canonical", mirror=True)
        mirrored_pts = mirrored_face.landmarks_2d if mirrored_face.found else np.full((68, 2), np.nan)
        row = [panel(image, ours_pts, f"ours (conf {ours_face.confidence:.2f})", contours)]
        peers_here = {m: peer_points(f"photo_{name}", m) for m in PEERS}
        for m, p in peers_here.items():
            if p is not None:
                row.append(panel(image, p[0], m, contours))
        write_png(out_dir / f"photo_{name}.png", np.hstack(row))
        agreement[name] = {}
        for m, p in peers_here.items():
            if p is None or not np.isfinite(p[0]).all():
                continue
            norm = float(metrics.inter_ocular_distance(p[0]))
            agreement[name][f"ours vs {m}"] = float(metrics.nme(ours_pts, p[0], norm))
            agreement[name][f"ours, mirrored runs vs {m}"] = float(metrics.nme(mirrored_pts, p[0], norm))
            if ours2d_pts is not None:
                agreement[name][f"ours (ibug2d semantics) vs {m}"] = float(metrics.nme(ours2d_pts, p[0], norm))
        mp, dl = peers_here.get("mediapipe"), peers_here.get("dlib")
        if mp is not None and dl is not None and np.isfinite(mp[0]).all() and np.isfinite(dl[0]).all():
            agreement[name]["mediapipe vs dlib (reference)"] = float(
                metrics.nme(mp[0], dl[0], float(metrics.inter_ocular_distance(dl[0]))))

    # 3. Temporal stability.
    stability: dict[str, dict[str, tuple[float, float, float]]] = {}  # clip -> method -> (jitter, detection, nme)
    for name, (frames, gt, fps) in clips.items():
        norm = metrics.inter_ocular_distance(gt)
        runs = tracker_runs(model, frames, fps)
        for m in PEERS:
            if peer_points(f"clip_{name}", m) is not None:
                runs[m] = peer_points(f"clip_{name}", m)
        stability[name] = {}
        for k, p in runs.items():
            a = accuracy(p, gt)
            stability[name][k] = (masked_jitter(p, gt, norm), a["detection"], a["nme"])
    for name, (mats, frames) in warps.items():
        runs = tracker_runs(model, frames, 30.0)
        for m in PEERS:
            if peer_points(f"warp_{name}", m) is not None:
                runs[m] = peer_points(f"warp_{name}", m)
        stability[f"warp_{name}"] = {}
        for k, p in runs.items():
            back = np.stack([unwarp(p[i], mats[i]) for i in range(len(p))])
            ok = np.isfinite(back).all(axis=(1, 2))
            # Each method normalised by its own median inter-ocular distance in the original photo.
            norm = float(np.median(metrics.inter_ocular_distance(back[ok]))) if ok.any() else float("nan")
            stability[f"warp_{name}"][k] = (masked_jitter(back, None, norm), float(ok.mean()), float("nan"))

    # 4. Speed.
    speed, (load_peers, load_ours) = measure_speed(model, speed_frames)

    # Report.
    lines = write_report(command, model, synth, acc, acc_common, acc_style, ours_extra, mp_pose, agreement, stability, speed,
                         peers, rel, ced_path, photos, (load_peers, load_ours))
    from bench.long_takes import SECTION_TITLE as LONG_TAKES
    from bench.realfaces.report import kept_section

    # The real-face and long-take sections come from their own runs (`python -m bench.realfaces --doc`,
    # `python -m bench.long_takes`): kept as they are.
    lines += kept_section(report_path) + kept_section(report_path, LONG_TAKES)
    report_path.write_text("\n".join(lines) + "\n")
    log.info("wrote %s", report_path)
    return report_path


def write_report(command: str, model: Any, synth: SynthSet, acc: dict, acc_common: dict, acc_style: dict, ours_extra: dict,
                 mp_pose: dict | None, agreement: dict, stability: dict, speed: dict, peers: dict | None, rel: str,
                 ced_path: Path, photos: dict, loads: tuple[float, float]) -> list[str]:
    import onnxruntime

    versions = peers["versions"] if peers else {}
    n = len(synth.paths)
    L = ["# Benchmarks: Infinite Landmarks vs MediaPipe FaceLandmarker and dlib", "",
         f"Every number on this page was produced by one run of `{command}` "
         f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, model `{os.path.relpath(model.path, ROOT)}`).",
         "Definitions, caveats and the 478->68 MediaPipe mapping: [bench/README.md](../bench/README.md).", "",
         "Data (generated, not in the repo; each command gives the same images on every machine): "
         + "; ".join(f"`{c}`" for c in DATA_COMMANDS) + ".", "",
         f"Versions: onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__}"
         + (f"; peers env: mediapipe {versions.get('mediapipe')}, dlib {versions.get('dlib')}" if peers else
            "; **peers not available** (.venv-peers missing or failed): only our model is reported") + ".", ""]

    # A factual summary computed from the numbers below (no hand-written claims that a later run could falsify).
    best = max(acc, key=lambda k: acc[k]["auc_all"])
    L += ["## Summary", "",
          f"- Synthetic test set, AUC@0.1 with misses as failures: " + ", ".join(
              f"{LABELS[k]} {num(a['auc_all'], 3)}" for k, a in acc.items()) + f"; best: {LABELS[best]}.",
          f"- Detection rate on it: " + ", ".join(f"{LABELS[k]} {pct(a['detection'], 1)}" for k, a in acc.items())
          + "."]
    # Like for like: tracking footage (ours: FaceTracker; MediaPipe: VIDEO mode), and one image from scratch
    # (ours: predict, searching when its full-frame start is unsure; MediaPipe: IMAGE mode).
    for photo, times in speed.items():
        for ours_key, mp_key, what in (("ours_track", "mediapipe_speed_video", "tracking video"),
                                       ("ours", "mediapipe_speed_image", "single images"),
                                       ("ours_mirror", "mediapipe_speed_image", "single images, mirrored runs")):
            if ours_key in times and mp_key in times:
                verdict = "met" if times[ours_key] <= times[mp_key] else "NOT met"
                h, w = speed_size(photo)
                # A detector that finds no face skips the landmark model: its time is then not the same work.
                found = times.get(f"{mp_key}_found", 1.0), times.get(f"{ours_key}_found", 1.0)
                caveat = (f"; but MediaPipe found the face in {pct(found[0], 0)} of these frames, ours in "
                          f"{pct(found[1], 0)}" if found[0] < 0.9 else "")
                L.append(f"- Speed target (ours at least as fast as MediaPipe FaceLandmarker), {what}, {photo} "
                         f"frames: {verdict} ({num(times[ours_key], 1)} ms vs {num(times[mp_key], 1)} ms per "
                         f"{w}x{h} frame, one core{caveat}).")
    L.append("")
    L += ["## 1. Accuracy on the held-out synthetic test set", "", f"Command: `{command}`", "",
          f"{n} images of `data/synth_test` (256x256, never used in training), iBUG-68 points, NME normalised by "
          "the inter-ocular (outer eye corner) distance of the ground truth. *Detected*: over the images where the "
          "method found a face. *All*: misses counted as failures (NME = inf). Ground truth `target_ibug68_2d` "
          "is our canonical semantics (projected 3D surface points: the jaw points sit on the jaw, even when hidden).",
          "", "| Method | Detection | NME (detected) | median NME | FR@0.1 (detected) | AUC@0.1 (detected) "
          "| FR@0.1 (all) | AUC@0.1 (all) |", "|---|---|---|---|---|---|---|---|"]
    for k, a in acc.items():
        L.append(f"| {LABELS[k]} | {pct(a['detection'], 1)} | {pct(a['nme'])} | {pct(a['nme_median'])} | "
                 f"{pct(a['fr_detected'], 1)} | {num(a['auc_detected'], 3)} | {pct(a['fr_all'], 1)} | "
                 f"{num(a['auc_all'], 3)} |")
    n_common = next(iter(acc_common.values()))["n"] if acc_common else 0
    if len(acc_common) > 1:
        L += ["", f"On the {n_common} images where every method found a face (same images for all):", "",
              "| Method | NME | median NME | FR@0.1 | AUC@0.1 |", "|---|---|---|---|---|"]
        for k, a in acc_common.items():
            L.append(f"| {LABELS[k]} | {pct(a['nme'])} | {pct(a['nme_median'])} | {pct(a['fr_all'], 1)} | "
                     f"{num(a['auc_all'], 3)} |")
    L += ["", f"![CED]({rel}/{ced_path.name})", ""]
    if acc_style:
        L += ["The peers were trained on 300-W-style annotations, where the jaw follows the visible silhouette. "
              "Against that style of ground truth (`target_style_ibug2d_2d`), with our model asked for the same "
              "style (`semantics=\"ibug2d\"`):", "",
              "| Method | NME (detected) | FR@0.1 (all) | AUC@0.1 (all) |", "|---|---|---|---|"]
        for k, a in acc_style.items():
            name = LABELS[k] + (" (ibug2d semantics)" if k == "ours" else "")
            L.append(f"| {name} | {pct(a['nme'])} | {pct(a['fr_all'], 1)} | {num(a['auc_all'], 3)} |")
        L.append("")
    if ours_extra:
        pose, focal, vis = ours_extra["pose"], ours_extra["focal"], ours_extra["vis"]
        L += [f"Ours, on its detected images: head pose error (geodesic) mean {num(pose['geodesic'].mean(), 2)} deg, "
              f"median {num(np.median(pose['geodesic']), 2)} deg (yaw {num(pose['yaw'].mean(), 2)}, pitch "
              f"{num(pose['pitch'].mean(), 2)}, roll {num(pose['roll'].mean(), 2)} deg mean absolute); "
              f"focal length error mean {num(focal.mean(), 1)}%, median {num(np.median(focal), 1)}%; "
              f"visibility accuracy {pct(vis['accuracy'], 1)} (F1 of visible {num(vis['f1'], 3)}).", ""]
    if mp_pose:
        e = mp_pose["errors"]
        L += [f"MediaPipe head pose from its facial transformation matrix ({mp_pose['n']} detected images): geodesic "
              f"error mean {num(e['geodesic'].mean(), 2)} deg, median {num(np.median(e['geodesic']), 2)} deg (yaw "
              f"{num(e['yaw'].mean(), 2)}, pitch {num(e['pitch'].mean(), 2)}, roll {num(e['roll'].mean(), 2)}). "
              f"Its canonical axes differ from ours, so one constant rotation (fitted on these images, "
              f"{mp_pose['alignment_deg']:.1f} deg away from the identity) aligns them first; that favours "
              "MediaPipe slightly. MediaPipe gives no focal length (it assumes its own camera) and dlib no pose.", ""]
    elif peers:
        L += ["MediaPipe head pose: not reported (no transformation matrices returned).", ""]
    L += [f"Examples (ours, MediaPipe, dlib, ground truth): ![examples]({rel}/synth_examples.png)", ""]

    L += ["## 2. Real photographs", "", f"Command: `{command}`", "",
          "No ground truth here: the table gives how far apart two methods' 68 points are (NME, normalised by the "
          "inter-ocular distance of the second method's points). Disagreement is not error of either one; the "
          "MediaPipe vs dlib row shows how much two established detectors disagree with each other.", "",
          "| Photo | Pair | NME between them |", "|---|---|---|"]
    for photo, pairs in agreement.items():
        for pair, value in pairs.items():
            L.append(f"| {photo} | {pair} | {pct(value)} |")
    L.append("")
    for photo in photos:
        L += [f"![{photo}]({rel}/photo_{photo}.png)", ""]

    L += ["## 3. Temporal stability", "", f"Command: `{command}`", "",
          "Jitter = mean over consecutive frames and points of the frame-to-frame change of (prediction - ground "
          "truth), over the inter-ocular distance (`training.metrics.jitter`, order 1; only frame pairs where both "
          "frames have a face). On the static clips the truth does not move, so this is pure shake; on the moving "
          "clips a lag also counts. Ours runs through `FaceTracker` (the crop around the previous frame's "
          "landmarks as prior) with the default One Euro smoothing, without it, with mirrored runs (each crop also run mirrored, the two averaged), and without smoothing while tracking but with the whole clip smoothed afterwards, forwards and backwards (`smooth_clip`: no lag, what the add-on writes; offline, so not like for like with MediaPipe's VIDEO mode); MediaPipe in VIDEO mode; dlib per frame. *warp_* rows: the real photos (but the camera photo, which helped choose the tracker's filter) "
          f"animated by a known smooth warp ({WARP_FRAMES} frames, sinusoidal translation of +-6%/4% of the frame "
          "and scale 1 +- 5%, cv2.warpAffine); predictions are mapped back through the inverse warp, so a perfect "
          "detector scores 0, and each method is normalised by its own inter-ocular distance.", "",
          "| Clip | Method | Jitter | Detection | NME |", "|---|---|---|---|---|"]
    for clip, rows in stability.items():
        for k, (jit, det, nme_) in rows.items():
            L.append(f"| {clip} | {LABELS[k]} | {pct(jit, 3)} | {pct(det, 1)} | {pct(nme_)} |")
    L.append("")

    L += ["## 4. Speed", "", f"Command: `{command}`", "",
          f"Whole pipeline, RGB frame already decoded in memory -> 68 landmarks, {SPEED_HW[1]}x{SPEED_HW[0]} frames "
          f"(each photo under the smooth warp: the astronaut's face is small, about 60 px wide, beside a round "
          "mission patch; Grace Hopper's is a portrait's, about 100 px), and the same at "
          f"{SPEED_HD_HW[1]}x{SPEED_HD_HW[0]} (`_{SPEED_HD_HW[1]}x{SPEED_HD_HW[0]}` columns: each photo scaled to "
          "the frame's height, so the faces are 1.5 times larger in pixels), median over "
          f"{SPEED_FRAMES} frames after {SPEED_WARMUP} "
          f"warm-up frames, the fastest of {SPEED_ROUNDS} such medians (rounds alternate the peers and ours), "
          "every method pinned to the same single CPU core in the same run (ours with one "
          "onnxruntime thread; MediaPipe's Python API has no thread option, the pinning is what limits it; dlib is "
          f"single-threaded). This machine shares its CPUs with other jobs (1-minute load average {loads[0]:.1f} "
          f"while the peers ran, {loads[1]:.1f} while ours ran), so absolute numbers are noisy; the comparison is "
          "the point. *Searched*: the share of frames on which `predict`'s full-frame start was unsure and it ran its "
          "search (`FaceResult.searched`; `search_priors`: crops over the image, half its side in one batch with the "
          "full frame, larger ones when that face is not sure; 640x480 frames: 1 + 6, then 3; 1280x720: 1 + 3, "
          "then 3). "
          "A method is faster on a frame where it finds no face (MediaPipe's IMAGE mode then skips its landmark "
          "model): the *frames with a face* rows say how much of the work each one did.",
          "",
          "| Method | " + " | ".join(f"{photo}: ms / frame (median)" for photo in speed) + " |",
          "|---|" + "---|" * len(speed)]
    rows = [("ours", "Ours, single image (`LandmarkModel.predict`: full-frame start + one or two refinements, "
                     "the search when unsure)"),
            ("ours_mirror", "Ours, single image, mirrored runs (`predict(..., mirror=True)`)"),
            ("ours_always_search", "Ours, single image, always the search "
                                   "(`predict(..., search=\"always\")`)"),
            ("ours_one_start", "Ours, single image, never the search (`predict(..., search=\"never\")`; can lock "
                               "onto a face-like distractor)"),
            ("ours_track", "Ours, tracker (`FaceTracker.update`, smoothing on)"),
            ("ours_track_mirror", "Ours, tracker, mirrored runs (`FaceTracker(..., mirror=True)`)"),
            ("mediapipe_speed_video", "MediaPipe FaceLandmarker, VIDEO mode (tracking)"),
            ("mediapipe_speed_image", "MediaPipe FaceLandmarker, IMAGE mode (detector every frame)"),
            ("dlib_speed_video", "dlib HOG detector + shape predictor, per frame (no upsampling)")]
    for key, label in rows:
        if any(key in times for times in speed.values()):
            L.append(f"| {label} | " + " | ".join(num(times.get(key), 1) for times in speed.values()) + " |")
    L.append("| Ours, single image: frames searched | " + " | ".join(pct(times.get("ours_searched"), 0)
                                                                    for times in speed.values()) + " |")
    found_rows = [("ours_found", "Ours, single image: frames with a face"),
                  ("ours_track_found", "Ours, tracker: frames with a face"),
                  ("mediapipe_speed_video_found", "MediaPipe, VIDEO mode: frames with a face"),
                  ("mediapipe_speed_image_found", "MediaPipe, IMAGE mode: frames with a face"),
                  ("dlib_speed_video_found", "dlib: frames with a face")]
    for key, label in found_rows:
        if any(key in times for times in speed.values()):
            L.append(f"| {label} | " + " | ".join(pct(times.get(key), 0) for times in speed.values()) + " |")
    L.append("")
    return L


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ASSETS_DIR / "models" / "default.onnx")
    parser.add_argument("--limit", type=int, default=None, help="first N synthetic test images only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks",
                        help="folder for the PNGs; the report is written next to it as <out>.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    benchmark(args.model, args.limit, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
