"""Runs of the real-face benchmark: each method's candidate faces per image, in the `core.predict` JSON form.

- Ours: `core.predict.Runner` (the code behind `python -m core.predict`, so the entries are the command's JSON,
  rounding included), one onnxruntime thread, on the pixels `inputs.load_images` decoded.
- The peers: bench/peers.py in .venv-peers through `bench.benchmark.runs.run_peers` (scripts/setup_peers.sh), on
  the very same pixels (saved as .npy; one task per image size, IMAGE running mode: every image on its own).
  MediaPipe's pose is the rotation of its facial transformation matrix, which maps its canonical face (x to
  the subject's left, y up, z out of the face, as our canonical space) into a GL camera (y up, looking down -z):
  R = diag(1, -1, -1) R_mp in OpenCV's camera. No alignment is fitted (bench.benchmark fits one on synthetic
  data and finds it within a degree of the identity). dlib gives no pose; its HOG detector upsamples every
  image once (DLIB_UPSAMPLE: dlib's usual `detector(image, 1)`; it finds more of the turned faces than without,
  which bench.benchmark skips on images of 400 px and more for speed).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.benchmark.runs import LABELS, PEERS, run_peers
from bench.benchmark.scoring import GL_TO_CV, project_to_rotation
from bench.realfaces.inputs import FaceSet

log = logging.getLogger("bench.realfaces")

Candidates = list[list[dict[str, Any]]]  # per image, the faces a method returned
DLIB_UPSAMPLE = 1


@dataclass(frozen=True)
class Method:
    """A method's row: key (results.json), label (tables), the semantics it was asked for (None: no option)."""

    key: str
    label: str
    semantics: str | None = None


def model_names(paths: list[Path]) -> list[str]:
    """Short names for our models: the file stem, or the relative path where two stems collide."""
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else str(p.with_suffix("")) for p in paths]


def run_ours(model_path: Path, face_set: FaceSet, images: list[np.ndarray]) -> Candidates:
    """Our model on a set, in the set's semantics and each face's layout (FaceSet.layout_of; ValueError, as
    `core.predict`, when the model lacks the semantics)."""
    from core.layouts import load_layout
    from core.predict import Runner
    from core.runtime.session import LandmarkModel

    model = LandmarkModel(model_path, threads=1)
    model.style_id(face_set.semantics)
    runners: dict[str, Runner] = {}
    entries = []
    for position, (face, image) in enumerate(tqdm(list(zip(face_set.faces, images)),
                                                  desc=f"{model_path.stem} on {face_set.key}", unit="face")):
        layout = str(face_set.layout_of(position))
        if layout not in runners:
            runners[layout] = Runner(model, load_layout(layout), face_set.semantics, None, False, None, echo=False)
        runners[layout].image(face.image_path, image)
        entries.append(runners[layout].entries[-1])
    found = sum(bool(entry["faces"]) for entry in entries)
    log.info("%s on %s (%s): a face in %d of %d images", model_path.name, face_set.title, face_set.semantics, found,
             len(entries))
    return [entry["faces"] for entry in entries]


def mediapipe_rotation(matrix: Any) -> np.ndarray:
    """R (canonical -> OpenCV camera) of a MediaPipe facial transformation matrix (module docstring)."""
    return GL_TO_CV @ project_to_rotation(np.asarray(matrix, np.float64)[:3, :3])


def peer_tasks(key: str, images: list[np.ndarray]) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """bench/peers.py tasks for one set (one per image size, as a task is one (T, H, W, 3) stack), and each
    task's image indices."""
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for k, image in enumerate(images):
        by_shape[image.shape].append(k)
    tasks, indices = [], {}
    for n, (shape, ks) in enumerate(sorted(by_shape.items())):
        name = f"{key}_{n:03d}"
        tasks.append({"name": name, "frames": np.stack([images[k] for k in ks]), "mode": "image",
                      "dlib_upsample": DLIB_UPSAMPLE})
        indices[name] = ks
    return tasks, indices


def run_peer_methods(sets: list[tuple[FaceSet, list[np.ndarray]]], workdir: Path
                     ) -> tuple[dict[str, dict[str, Candidates]], dict[str, str]] | None:
    """({set key: {peer: candidates}}, the peers' versions) in one worker run; None without .venv-peers."""
    tasks, indices, owner = [], {}, {}
    for face_set, images in sets:
        set_tasks, set_indices = peer_tasks(face_set.key, images)
        tasks += set_tasks
        indices.update(set_indices)
        owner.update({name: (face_set.key, len(images)) for name in set_indices})
    result = run_peers(tasks, workdir)
    if result is None:
        return None
    out: dict[str, dict[str, Candidates]] = {}
    for name, methods in result["tasks"].items():
        key, n = owner[name]
        for method, run in methods.items():
            per_image = out.setdefault(key, {}).setdefault(method, [[] for _ in range(n)])
            matrices = run.get("matrix") or [None] * len(run["landmarks"])
            for k, points, matrix in zip(indices[name], run["landmarks"], matrices):
                if points is not None:
                    R = mediapipe_rotation(matrix).tolist() if matrix is not None else None
                    per_image[k] = [{"landmarks_2d": points, "R": R}]
    return out, result["versions"]


def peer_methods() -> list[Method]:
    return [Method(m, LABELS[m]) for m in PEERS]
