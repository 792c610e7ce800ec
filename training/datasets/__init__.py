"""Readers for real facial-landmark datasets, all yielding `AnnotatedImage` samples in our pixel convention
(origin at the image's top-left corner, top-left pixel centre at (0.5, 0.5); see shared/conventions.md).

    ds = open_dataset("wflw:root=/data/WFLW,split=test")
    for sample in ds:
        image = sample.load_image()          # RGB uint8 (H, W, 3)
        sample.landmarks, sample.visibility  # (N, 2) float32 pixels, (N,) float32 in 0..1

Datasets (name: reader, layout, semantics):
    300w      IBUG300WDataset(root)              ibug68  ibug2d
    300vw     IBUG300VWDataset(root)             ibug68  ibug2d   (one sample per annotated video frame)
    merlrav   MERLRAVDataset(root, split="all")  ibug68  ibug2d   (with self/external occlusion)
    wflw      WFLWDataset(root, split="train")   wflw98  wflw
    cofw      COFWDataset(root, split="train")   cofw29  cofw
    aflw2000  AFLW2000Dataset(root)              ibug68  aflw3d   (with depth and head pose)
    frl       FRLDataset(root)                   frl     frl      (FRL London .tem; the template points on the face)
    predictions PredictionsDataset(root, file, layout)  any  canonical (a core.predict JSON as pseudo-labels)
"""

from __future__ import annotations

import inspect
from pathlib import Path

from .aflw2000 import AFLW2000Dataset
from .cofw import COFWDataset
from .common import AnnotatedImage, AnnotationError, LandmarkDataset, read_image, read_video_frame
from .frl import FRLDataset, parse_tem
from .predictions import PredictionsDataset
from .pts import IBUG300VWDataset, IBUG300WDataset, MERLRAVDataset, parse_pts
from .wflw import WFLWDataset

DATASETS: dict[str, type[LandmarkDataset]] = {
    cls.name: cls
    for cls in (IBUG300WDataset, IBUG300VWDataset, MERLRAVDataset, WFLWDataset, COFWDataset, AFLW2000Dataset,
                FRLDataset, PredictionsDataset)
}


def open_dataset(spec: str) -> LandmarkDataset:
    """Open a dataset from a spec `NAME:root=PATH[,key=value...]`, e.g. `cofw:root=/data/COFW,split=test`.

    Keys are the reader's constructor arguments (see DATASETS). Paths containing ',' cannot be given here;
    construct the reader class directly instead.
    """
    valid = ", ".join(DATASETS)
    name, _, options = spec.partition(":")
    name = name.strip().lower()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} in spec {spec!r}; valid names: {valid}")
    reader = DATASETS[name]
    accepted = [p for p in inspect.signature(reader.__init__).parameters if p != "self"]
    kwargs: dict[str, object] = {}
    for option in filter(None, (o.strip() for o in options.split(","))):
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"bad option {option!r} in dataset spec {spec!r}: expected key=value")
        if key not in accepted:
            raise ValueError(f"dataset {name!r} has no option {key!r}; it accepts: {', '.join(accepted)}")
        kwargs[key] = value.strip()
    if not kwargs.get("root"):
        raise ValueError(
            f"dataset spec {spec!r} needs root=PATH, e.g. '{name}:root=/path/to/data'; valid names: {valid}"
        )
    kwargs["root"] = Path(str(kwargs["root"]))
    return reader(**kwargs)


__all__ = [
    "AFLW2000Dataset",
    "AnnotatedImage",
    "AnnotationError",
    "COFWDataset",
    "DATASETS",
    "FRLDataset",
    "IBUG300VWDataset",
    "IBUG300WDataset",
    "LandmarkDataset",
    "MERLRAVDataset",
    "PredictionsDataset",
    "WFLWDataset",
    "open_dataset",
    "parse_pts",
    "parse_tem",
    "read_image",
    "read_video_frame",
]
