"""Runs of `python -m bench.benchmark`: our model (`LandmarkModel.predict`, `FaceTracker`, mirrored runs, the
whole-clip smoother) and the peers, MediaPipe FaceLandmarker and dlib, on the inputs; and the speed test, which
alternates the two sides pinned to one CPU core. The peers run in their own environment (.venv-peers,
scripts/setup_peers.sh) through bench/peers.py as a subprocess, a JSON job in and a JSON result out; without it
they are skipped (`run_peers` returns None). bench.realfaces runs its peers through `run_peers` too.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.benchmark.inputs import SPEED_WARMUP, Inputs
from core.paths import REPO_DIR

log = logging.getLogger("bench.benchmark")

PEERS_PYTHON = REPO_DIR / ".venv-peers" / "bin" / "python"
PEERS_WORKER = Path(__file__).resolve().parents[1] / "peers.py"
PEERS = ("mediapipe", "dlib")
LABELS = {"ours": "Ours", "ours_mirror": "Ours, mirrored runs (`predict(..., mirror=True)`)",
          "ours_track": "Ours + tracker (smoothing)", "ours_track_raw": "Ours + tracker (no smoothing)",
          "ours_track_mirror": "Ours + tracker (smoothing, `mirror=True`)",
          "ours_track_clip": "Ours + tracker, whole clip smoothed without lag (`smooth_clip`, offline)",
          "mediapipe": "MediaPipe FaceLandmarker", "dlib": "dlib HOG + 68-pt predictor"}
SPEED_ROUNDS = 3


def stack_points(landmarks: list[Any], n: int = 68) -> np.ndarray:
    """Per-frame lists (or None for a miss) -> (T, n, 2) with NaN rows for misses."""
    out = np.full((len(landmarks), n, 2), np.nan)
    for k, p in enumerate(landmarks):
        if p is not None:
            out[k] = np.asarray(p, np.float64)
    return out


# --- ours ------------------------------------------------------------------------------------------------------------

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


@dataclass
class SynthRuns:
    """Ours on the synthetic test set: canonical semantics, the same with mirrored runs, and ibug2d semantics
    (None when the model has no such style)."""

    ours: OursRun
    mirror: OursRun
    ibug2d: OursRun | None


def synth_runs(model: Any, images: np.ndarray) -> SynthRuns:
    log.info("ours on the synthetic test set")
    return SynthRuns(run_ours(model, images, "canonical"), run_ours(model, images, "canonical", mirror=True),
                     run_ours(model, images, "ibug2d") if "ibug2d" in model.semantics else None)


@dataclass
class PhotoRun:
    """Ours on one real photo: the canonical face and points, the ibug2d points (None when the model has no such
    style) and the mirrored run's points; points are NaN where no face was found."""

    face: Any
    points: np.ndarray
    points_ibug2d: np.ndarray | None
    points_mirror: np.ndarray


def photo_run(model: Any, image: np.ndarray) -> PhotoRun:
    face = model.predict(image, "ibug68", "canonical")
    points = face.landmarks_2d if face.found else np.full((68, 2), np.nan)
    points_ibug2d = model.predict(image, "ibug68", "ibug2d").landmarks_2d if "ibug2d" in model.semantics else None
    mirrored = model.predict(image, "ibug68", "canonical", mirror=True)
    points_mirror = mirrored.landmarks_2d if mirrored.found else np.full((68, 2), np.nan)
    return PhotoRun(face, points, points_ibug2d, points_mirror)


def stability_runs(model: Any, data: Inputs, peers: dict[str, Any] | None) -> dict[str, dict[str, np.ndarray]]:
    """Per clip (`warp_<photo>` for a warped photo), each method's points (T, 68, 2): ours through the tracker
    (`tracker_runs`), the peers in VIDEO mode."""
    out = {}
    clips = [(name, f"clip_{name}", frames, fps) for name, (frames, _, fps) in data.clips.items()]
    clips += [(f"warp_{name}", f"warp_{name}", frames, 30.0) for name, (_, frames) in data.warps.items()]
    for name, task, frames, fps in clips:
        out[name] = tracker_runs(model, frames, fps)
        for m in PEERS:
            points = peer_points(peers, task, m)
            if points is not None:
                out[name][m] = points
    return out


# --- the peers -------------------------------------------------------------------------------------------------------

def peers_available() -> bool:
    """True when .venv-peers exists and imports mediapipe and dlib (it may be half-installed)."""
    if not PEERS_PYTHON.exists():
        return False
    script = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "import peers; peers.mediapipe_task_path(); import mediapipe, dlib, face_recognition_models")
    check = subprocess.run([str(PEERS_PYTHON), "-c", script, str(PEERS_WORKER.parent)], capture_output=True)
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


def run_peer_tasks(data: Inputs) -> dict[str, Any] | None:
    """The peers on every input but the speed frames, all in one worker run: tasks `synth`, `photo_<name>`,
    `clip_<name>` and `warp_<name>`. None when the peers are unavailable."""
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        tasks: list[dict[str, Any]] = [{"name": "synth", "frames": data.synth.images, "mode": "image"}]
        tasks += [{"name": f"photo_{n}", "frames": im[None], "mode": "image"} for n, im in data.photos.items()]
        tasks += [{"name": f"clip_{n}", "frames": c[0], "mode": "video", "fps": c[2]} for n, c in data.clips.items()]
        tasks += [{"name": f"warp_{n}", "frames": w[1], "mode": "video", "fps": 30.0} for n, w in data.warps.items()]
        return run_peers(tasks, Path(tmp))


def peer_points(peers: dict[str, Any] | None, task: str, method: str) -> np.ndarray | None:
    """A peer's points (T, 68, 2) on a task of `run_peer_tasks`, NaN where it found no face; None when the task
    did not run."""
    tasks = peers["tasks"] if peers else {}
    if task not in tasks:
        return None
    return stack_points(tasks[task][method]["landmarks"])


# --- speed -----------------------------------------------------------------------------------------------------------

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
