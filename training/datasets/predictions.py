"""A `python -m core.predict` JSON file read back as annotations: pseudo-labels for unlabelled photos.

    python -m core.predict ../shared/realfaces/portraits_pd --layout ibug68 --json data/portraits_pseudo/labels.json
    open_dataset("predictions:root=data/portraits_pseudo,file=labels.json,layout=ibug68,min_confidence=0.9")

Self-training: the model's own landmarks on real, unlabelled faces (stills are run mirrored and averaged, so the
labels are better than one run of the same model) become targets for the next model, which sees those faces
under stronger augmentation than the labelling run did. One face per image, the most confident, kept when its
confidence reaches `min_confidence`; images that failed or show no face are skipped. The labels carry the
semantics the model was asked for (`semantics`, canonical unless the file was made with --semantics).

An entry's "path" is read as written: relative paths are taken from the current folder (where the labelling
command ran, the repo root), else from `root`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from core.layouts import load_layout

from .common import AnnotatedImage, AnnotationError, LandmarkDataset

log = logging.getLogger(__name__)


class PredictionsDataset(LandmarkDataset):
    name = "predictions"

    def __init__(self, root: str | Path, file: str = "labels.json", layout: str = "ibug68",
                 semantics: str = "canonical", min_confidence: float | str = 0.9) -> None:
        super().__init__(root)
        self.path = self.root / file
        self.layout = str(layout)
        self.semantics = str(semantics)
        self.min_confidence = float(min_confidence)
        num_points = len(load_layout(self.layout).names)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no predictions file; make one with `python -m core.predict "
                                    f"IMAGES --layout {self.layout} --json {self.path}`")
        try:
            entries = json.loads(self.path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AnnotationError(self.path, f"not a core.predict JSON file ({exc})") from None
        if not isinstance(entries, list):
            raise AnnotationError(self.path, "not a core.predict JSON file (expected a list of entries)")
        low = 0
        for entry in entries:
            faces = (entry.get("faces") or []) if isinstance(entry, dict) else []
            if not faces:
                continue
            face = max(faces, key=lambda f: f.get("confidence", 0.0))
            points = np.asarray(face.get("landmarks_2d") or [], np.float32)
            if points.shape != (num_points, 2):
                raise AnnotationError(self.path, f"{entry.get('path')}: {points.shape[0] if points.ndim else 0} "
                                                 f"landmarks, but layout {self.layout} has {num_points}: pass the "
                                                 "layout the file was made with (layout=NAME)")
            if face.get("confidence", 0.0) < self.min_confidence:
                low += 1
                continue
            self._items.append((self._image_path(str(entry["path"])), points))
        if low:
            log.info("%s: %d faces below confidence %.2f left out", self.path, low, self.min_confidence)

    def _image_path(self, text: str) -> Path:
        path = Path(text)
        if path.is_absolute() or path.is_file():
            return path
        return self.root / path

    def __repr__(self) -> str:
        return f"PredictionsDataset(path={str(self.path)!r}, layout={self.layout}, samples={len(self)})"

    def _load(self, item: tuple[Path, np.ndarray]) -> AnnotatedImage:
        image_path, points = item
        return AnnotatedImage(image_path=image_path, landmarks=points.copy(),
                              visibility=np.ones(len(points), np.float32), layout=self.layout,
                              semantics=self.semantics)
