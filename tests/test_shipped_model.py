"""The bundled models on inputs whose answer is known without annotation (flat shapes are not faces), and on a
few real faces of the dev set when ../shared is there.

A grey square on black was once reported as a face with confidence 0.85 (issue 20); the model is now trained with
such negatives (`shapes=` in the synthetic spec, `training.compositing.flat_shapes`). Held-out draws (another seed
than training's) keep this a test of the model, not of the images it saw.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.layouts import load_layout
from core.runtime import LandmarkModel
from training.compositing import flat_shapes

from core.runtime.session import available_models, model_path

REPO = Path(__file__).resolve().parents[1]
AFLW2000_DEV = REPO.parent / "shared" / "realfaces" / "aflw2000_dev"
pytestmark = pytest.mark.skipif(not available_models(), reason="no bundled model")


@pytest.fixture(scope="module", params=available_models() or ["default"])
def model(request) -> LandmarkModel:
    return LandmarkModel(model_path(request.param), threads=1)


def test_a_grey_square_or_disc_on_black_is_not_a_face(model) -> None:
    import cv2

    layout = load_layout("ibug68")
    square = np.zeros((480, 640, 3), np.uint8)
    square[140:340, 220:420] = 128
    disc = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(disc, (320, 240), 100, (200, 200, 200), -1)
    for image in (square, disc):
        face = model.predict(image, layout)
        assert not face.found, face.confidence


@pytest.mark.slow
def test_flat_shapes_are_rarely_a_face(model) -> None:
    layout = load_layout("ibug68")
    rng = np.random.default_rng(20261207)
    found = []
    for _ in range(40):
        found.append(model.predict(flat_shapes(480, 640, rng), layout).found)
    assert sum(found) <= 4, f"{sum(found)} of 40 flat-shape images reported as a face"


@pytest.mark.skipif(not AFLW2000_DEV.is_dir(), reason="no ../shared/realfaces")
def test_real_faces_are_found_and_placed(model) -> None:
    """The first 20 faces of AFLW2000-3D dev, run and scored as bench.realfaces does: found, and the 68 points
    near the truth."""
    from bench.realfaces import inputs, runs
    from bench.realfaces.scoring import score_set, summarize

    face_set = inputs.aflw2000_dev(20)
    predictions = runs.run_ours(model.path, face_set, inputs.load_images(face_set.faces))  # the benchmark's run
    summary = summarize(score_set(predictions, face_set.faces), face_set.faces)
    assert summary["detected"] >= 18, summary
    assert summary["nme_box"] < 0.09, summary


def test_shipped_models_fit_the_budget() -> None:
    """Every model file in assets/models (ONNX graphs and torch weights) together stays under 40 MB."""
    files = [p for p in (REPO / "assets" / "models").iterdir() if p.suffix in (".onnx", ".pt")]
    assert sum(p.stat().st_size for p in files) < 40e6, {p.name: p.stat().st_size for p in files}
