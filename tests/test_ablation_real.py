"""The real-face ablation (training.ablation_real): its rows differ only in the paper's additions, an STN row starts
from the baseline's crop, the baseline is cut where an STN row starts, and a prediction lands in the photo's pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.model import create_model
from core.model.stn import crop_to_image, theta_from_box
from core.runtime.images import fit_to_input
from training import ablation_real
from training.train import DEFAULT_CONFIG, merge_config, read_yaml, run_model, save_checkpoint

SMALL_STN = {"variant": "full", "crop_size": 64, "stn_input": 32, "hidden": 32, "stn_iterations": 2,
             "stn_finder": True, "spatial_stride": 4, "backbone_kwargs": {"output_stride": 16}}


def test_rows_differ_only_in_the_variant(tmp_path: Path) -> None:
    configs = {name: ablation_real.row_config(name, "init.pt", "data/synth", tmp_path, 100, 0)
               for name in ablation_real.ROWS}
    default = read_yaml(DEFAULT_CONFIG.read_text())
    for name, config in configs.items():
        merged = merge_config(default, config)  # every key is one the trainer knows
        assert merged["model"]["variant"] == name and merged["run_dir"] == str(tmp_path / name)
        assert merged["data"]["tracking_priors"] == 1.0 and merged["loss"]["stn_box"] == 0.0
        rest = {**config, "run_dir": None, "model": {**config["model"], "variant": None}}
        first = configs["baseline_2d"]
        assert rest == {**first, "run_dir": None, "model": {**first["model"], "variant": None}}


def test_stn_rows_start_from_the_given_crop(tmp_path: Path) -> None:
    model = create_model(SMALL_STN)
    with torch.no_grad():
        for p in model.stn.parameters():
            p.normal_(0, 0.1)
    save_checkpoint({"model": model.state_dict(), "config": {"model": SMALL_STN}}, tmp_path / "src.pt")
    path = ablation_real.starting_weights(str(tmp_path / "src.pt"), tmp_path / "runs")
    image = torch.rand(1, 3, 128, 128)
    prior = theta_from_box(torch.tensor([[30.0, 40.0, 90.0, 100.0]]), (128, 128), 1.3)
    assert not torch.allclose(model.stn.passes(image, prior)[-1], prior, atol=1e-4)
    state = torch.load(path, weights_only=True)["model"]
    model.load_state_dict(state)
    assert torch.allclose(model.stn.passes(image, prior)[-1], prior, atol=1e-6)
    assert not all(torch.count_nonzero(v) == 0 for k, v in state.items() if k.startswith("stn.finder"))


class _Recorder(nn.Module):
    def forward(self, image, queries, crop_theta=None, **_):  # noqa: ANN001, ANN003, ANN201
        self.theta = crop_theta
        return {}


def test_the_baseline_is_cut_where_an_stn_row_starts() -> None:
    boxes = torch.tensor([[40.0, 50.0, 120.0, 140.0]] * 64)
    batch = {"image": torch.zeros(64, 3, 256, 256), "queries": torch.zeros(64, 5, 3), "style_id": torch.zeros(64),
             "normals": torch.zeros(64, 5, 3), "box": boxes, "crop_box": boxes, "is_face": torch.ones(64)}
    model = _Recorder()
    box_theta = theta_from_box(boxes, (256, 256), 1.3)
    run_model(model, batch, 1.3, uses_stn=False)
    assert torch.equal(model.theta, box_theta)
    torch.manual_seed(0)
    run_model(model, batch, 1.3, uses_stn=False, tracking_priors=1.0)
    shift = (model.theta[:, :, 2] - box_theta[:, :, 2]).abs().mean()
    scale = (model.theta[:, 0, 0] / box_theta[:, 0, 0]).log().std()
    assert 0.02 < float(shift) < 0.2 and 0.1 < float(scale) < 0.3  # ~10% of the box moved, ~20% scaled


class _CropCentre(nn.Module):
    """A stand-in detector: every point at its crop's centre."""

    crop_size = 64
    stn = None

    def forward(self, image, queries, crop_theta=None, teacher_crop=None, **_):  # noqa: ANN001, ANN003, ANN201
        self.crop = teacher_crop
        centre = torch.full((1, len(queries), 2), self.crop_size / 2)
        return {"points_2d": crop_to_image(centre, crop_theta, self.crop_size, tuple(image.shape[-2:]))}


def test_a_prediction_lands_in_the_photo_pixels() -> None:
    image = np.zeros((300, 600, 3), np.uint8)
    image[100:200, 380:460] = 255  # a white square, the "face"
    pixels, fit = fit_to_input(image, ablation_real.INPUT_HW)
    gt = np.array([[380.0, 100.0], [460.0, 200.0]])
    box = ablation_real.landmark_prior(fit.to_input(gt), ablation_real.INPUT_HW, 1.0)
    photo = ablation_real.Photo(None, image, torch.zeros(1, 3, 256, 256), fit, {"box": box})
    model = _CropCentre()
    face = ablation_real.predict(model, photo, "box", torch.zeros(3, 3), torch.zeros(3, 3), 0)
    assert np.allclose(face["landmarks_2d"], [[420.0, 150.0]] * 3, atol=0.5) and "R" not in face
    crop = model.crop[0].numpy()
    assert crop.shape == (3, 64, 64) and crop[:, 8:56, 8:56].min() > 0.9  # the crop holds the square, at its size


@pytest.mark.skipif(not ablation_real.inputs.AFLW2000_DEV.is_dir(), reason="../shared/realfaces absent")
def test_rows_are_scored_on_real_photos() -> None:
    face_set = ablation_real.inputs.aflw2000_dev(limit=2)
    finder = create_model(SMALL_STN).eval()
    photos = ablation_real.prepare(face_set, finder)
    results = ablation_real.evaluate_rows({"shipped": finder, "full": finder}, face_set, photos)
    assert set(results["full"]) == {"finder", "box"} and results["full"]["box"]["n"] == 2
    text = ablation_real.markdown({face_set.key: results}, {face_set.key: face_set.title})
    assert "| full | " in text and "| shipped | " in text
