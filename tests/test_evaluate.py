"""Evaluation: metrics on hand-made cases with known answers, and the evaluator on tiny generated data."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from core import geometry
from model_fixtures import SMALL, small_model, small_untrained
from training import evaluate, metrics
from training.synth.__main__ import main as synth_main

torch.set_num_threads(1)

def face_points(seed: int = 0, n: int = 68) -> np.ndarray:
    return np.random.default_rng(seed).uniform(20, 120, (n, 2))


# --- 2D metrics ----------------------------------------------------------------------------------------------------

def test_nme_of_a_shifted_prediction():
    gt = face_points()
    pred = gt + [3.0, 4.0]  # every point 5 px off
    io = np.linalg.norm(gt[36] - gt[45])
    assert metrics.inter_ocular_distance(gt) == pytest.approx(io)
    assert metrics.nme(pred, gt, metrics.inter_ocular_distance(gt)) == pytest.approx(5 / io)
    square = np.array([[0.0, 0.0], [40.0, 0.0], [40.0, 10.0], [0.0, 10.0]])
    assert metrics.box_size(square) == pytest.approx(20.0)
    assert metrics.nme(square + [3, 4], square, metrics.box_size(square)) == pytest.approx(0.25)
    # Batched: one NME per image.
    batch = np.stack([gt, gt])
    np.testing.assert_allclose(metrics.nme(batch + [[[0, 0]], [[3, 4]]], batch, metrics.inter_ocular_distance(batch)),
                               [0, 5 / io])


def test_inter_ocular_of_wflw_uses_points_60_and_72():
    gt = face_points(n=98)
    assert metrics.inter_ocular_distance(gt, "wflw98") == pytest.approx(np.linalg.norm(gt[60] - gt[72]))
    with pytest.raises(ValueError, match="dense"):
        metrics.inter_ocular_distance(gt, "dense")


def test_failure_rate_and_auc_of_known_distributions():
    nmes = np.array([0.0, 0.05, 0.09, 0.1, 0.2])
    assert metrics.failure_rate(nmes, 0.1) == pytest.approx(1 / 5)
    assert metrics.failure_rate(nmes, 0.08) == pytest.approx(3 / 5)
    # Each image adds max(0, 1 - NME / 0.1) / 5.
    assert metrics.auc(nmes, 0.1) == pytest.approx((1 + 0.5 + 0.1 + 0 + 0) / 5)
    assert metrics.auc(np.zeros(10)) == 1.0
    assert metrics.auc(np.full(10, 0.3)) == 0.0
    # Uniform NMEs on [0, 0.1]: CED(x) = x / 0.1, whose normalised area is 1/2; the curve integrates to the same.
    uniform = np.linspace(0, 0.1, 10001)
    assert metrics.auc(uniform) == pytest.approx(0.5, abs=1e-4)
    x, ced = metrics.ced_curve(uniform, num=2001)
    area = np.sum((ced[1:] + ced[:-1]) / 2 * np.diff(x))  # trapezoids
    assert area / 0.1 == pytest.approx(0.5, abs=1e-3)


def test_ced_plot_is_written(tmp_path):
    rng = np.random.default_rng(0)
    path = metrics.plot_ced({"a": rng.gamma(4, 0.01, 100), "b": rng.gamma(4, 0.02, 100)}, tmp_path / "ced.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- pose, camera, 3D, visibility ------------------------------------------------------------------------------------

def test_pose_error_of_a_known_rotation():
    R_gt = geometry.pose_to_rotation(10, 5, -3)
    errors = metrics.pose_errors(np.stack([geometry.pose_to_rotation(13, 5, -3), R_gt @ geometry.rotation_x(7)]),
                                 np.stack([R_gt, R_gt]))
    np.testing.assert_allclose(errors["geodesic"], [3, 7], atol=1e-6)
    np.testing.assert_allclose([errors["yaw"][0], errors["pitch"][0], errors["roll"][0]], [3, 0, 0], atol=1e-6)
    # Angles wrap: yaw 179 vs -179 is 2 degrees apart.
    wrapped = metrics.pose_errors(geometry.pose_to_rotation(179, 0, 0), geometry.pose_to_rotation(-179, 0, 0))
    assert wrapped["yaw"][0] == pytest.approx(2) and wrapped["geodesic"][0] == pytest.approx(2)


def test_focal_error_percent():
    np.testing.assert_allclose(metrics.focal_error_percent([110.0, 80.0], [100.0, 100.0]), [10, 20])


def test_procrustes_error_of_a_similar_copy_is_zero():
    gt = np.random.default_rng(0).normal(0, 5, (40, 3))
    R = geometry.pose_to_rotation(30, -20, 10)
    pred = 1.7 * gt @ R.T + [2.0, -1.0, 60.0]
    assert metrics.error_3d(pred, gt) > 1
    assert metrics.error_3d(pred, gt, align=True) == pytest.approx(0, abs=1e-9)
    # A mirrored copy is not a similarity: alignment must not use a reflection.
    assert metrics.error_3d(gt * [-1, 1, 1], gt, align=True) > 0.1
    assert metrics.error_3d(gt + 1.0, gt) == pytest.approx(math.sqrt(3))


def test_visibility_accuracy_and_f1():
    scores = metrics.visibility_scores(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1]))
    assert scores["accuracy"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert metrics.visibility_scores(np.ones(5), np.ones(5)) == {"accuracy": 1.0, "f1": 1.0}


# --- jitter --------------------------------------------------------------------------------------------------------

def test_jitter_of_a_constant_is_zero_and_of_noise_as_expected():
    still = np.repeat(face_points()[None], 30, axis=0)
    assert metrics.jitter(still, still, 10.0) == 0.0
    assert metrics.jitter(still, None, 10.0) == 0.0
    rng = np.random.default_rng(0)
    sigma, norm = 0.5, 10.0
    noisy = np.repeat(still[:1], 4000, axis=0) + rng.normal(0, sigma, (4000, 68, 2))
    # Difference of two N(0, sigma^2) per axis: 2D norm is Rayleigh(sigma sqrt 2), mean sigma sqrt(pi).
    assert metrics.jitter(noisy, None, norm) == pytest.approx(sigma * math.sqrt(math.pi) / norm, rel=0.02)
    assert metrics.jitter(noisy, None, norm, order=2) == pytest.approx(sigma * math.sqrt(3 * math.pi) / norm,
                                                                      rel=0.02)
    # On a moving face only the error's change counts, not the motion.
    moving = still[:1] + np.arange(4000)[:, None, None] * np.array([0.7, -0.3])
    assert metrics.jitter(moving + (noisy - still[:1]), moving, norm) == pytest.approx(
        metrics.jitter(noisy, None, norm))
    assert math.isnan(metrics.jitter(still[:1], None, norm))


# --- the evaluator on generated data -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_test")
    assert synth_main(["generate", "--out", str(out), "--num", "8", "--size", "128"]) == 0
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    out = tmp_path_factory.mktemp("clips")
    assert synth_main(["sequence", "--out", str(out), "--num", "1", "--frames", "4", "--kind", "static",
                       "--size", "128"]) == 0
    return out


KEYS_2D = {"nme_io", "nme_box", "fr_io@0.1", "fr_io@0.08", "auc_io@0.1", "fr_box@0.1", "auc_box@0.1"}
KEYS_3D = {"pose_error_deg", "yaw_error_deg", "pitch_error_deg", "roll_error_deg", "focal_error_pct",
           "error_3d_cm", "error_3d_aligned_cm", "visibility_accuracy", "visibility_f1"}


@pytest.mark.parametrize("variant", ["full", "baseline_2d"])
def test_evaluate_model_returns_finite_metrics(test_set, variant):
    result = evaluate.evaluate_model(small_model(variant), test_set, batch_size=5)
    expected = KEYS_2D | (KEYS_3D if variant == "full" else set())
    assert expected <= result.keys()
    if variant == "baseline_2d":
        assert not KEYS_3D & result.keys()
    assert all(np.isfinite(result[k]) for k in expected)
    assert result["num_images"] == 8 and result["samples"][0] == "sample_0000000"
    assert result["per_image"]["nme_io"].shape == (8,)
    assert result["nme_io"] == pytest.approx(result["per_image"]["nme_io"].mean())


def test_evaluate_model_in_a_dataset_style(test_set):
    result = evaluate.evaluate_model(small_model("full"), test_set, style="wflw", limit=3)
    assert result["layout"] == "wflw98" and result["num_images"] == 3 and np.isfinite(result["nme_io"])
    with pytest.raises(ValueError, match="wflw98"):
        evaluate.evaluate_model(small_model("full"), test_set, layout="ibug68", style="wflw")


@pytest.mark.parametrize("variant", ["full", "baseline_2d"])
def test_evaluate_sequences_on_a_static_clip(clips, variant):
    result = evaluate.evaluate_sequences(small_untrained(variant), clips)
    assert result["num_static_clips"] == 1 and result["num_moving_clips"] == 0
    assert result["clips"][0]["frames"] == 4
    assert np.isfinite(result["static_nme_io"])
    # Frames of a still head differ by sensor noise and compression, so an image-dependent prediction moves.
    assert 0 < result["static_jitter_io"] < 1
    assert "moving_jitter_io" not in result


def test_sequences_track_from_the_previous_landmarks(clips, monkeypatch):
    """With an STN, the first frame starts from the full frame and every later one is cropped directly around the
    previous frame's predicted landmarks, as the runtime's tracker does (the STN refining its own crop frame after
    frame drifted off the face)."""
    calls = []
    run = evaluate._run

    def recording_run(model, images, queries, normals, style_id, boxes, prior_theta=None, direct=False):
        out = run(model, images, queries, normals, style_id, boxes, prior_theta, direct)
        calls.append((None if boxes is None else boxes.copy(), direct, out["points_2d"][0].copy()))
        return out

    monkeypatch.setattr(evaluate, "_run", recording_run)
    evaluate.evaluate_sequences(small_untrained("full"), clips)
    assert len(calls) == 4 and calls[0][0] is None and not calls[0][1] and all(c[1] for c in calls[1:])
    for (_, _, previous), (boxes, _, _) in zip(calls, calls[1:]):
        np.testing.assert_allclose(boxes[0], evaluate._box(previous))


def test_write_report_and_command_line(test_set, clips, tmp_path):
    results = {}
    for variant in ("full", "baseline_2d"):
        model = small_model(variant)
        results[variant] = {**evaluate.evaluate_model(model, test_set), **evaluate.evaluate_sequences(model, clips)}
    paths = evaluate.write_report(results, tmp_path / "report", "Tiny")
    assert all(p.is_file() for p in paths.values())
    saved = json.loads(paths["json"].read_text())
    assert set(saved) == {"full", "baseline_2d"} and len(saved["full"]["per_image"]["nme_io"]) == 8
    table = [line for line in paths["markdown"].read_text().splitlines() if line.startswith("| ")]
    assert table[0].startswith("| Method |") and "NME io (%)" in table[0]
    assert [line.split("|")[1].strip() for line in table[1:]] == ["full", "baseline_2d"]

    # The command line, from a checkpoint as the trainer writes it.
    model = small_model("stn_3d")
    checkpoint = tmp_path / "runs" / "tiny" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": {"model": {"variant": "stn_3d", **SMALL}}}, checkpoint)
    out = tmp_path / "cli"
    assert evaluate.main(["--checkpoint", str(checkpoint), "--data", str(test_set), "--out", str(out)]) == 0
    assert "| tiny |" in (out / "results.md").read_text() and (out / "ced.png").is_file()


def test_command_line_keeps_an_earlier_report_unless_overwrite(test_set, tmp_path, caplog):
    model = small_model("stn_3d")
    checkpoint = tmp_path / "runs" / "tiny" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": {"model": {"variant": "stn_3d", **SMALL}}}, checkpoint)
    out = tmp_path / "report"
    out.mkdir()
    (out / "results.md").write_text("an earlier report")
    args = ["--checkpoint", str(checkpoint), "--data", str(test_set), "--out", str(out), "--limit", "2"]
    assert evaluate.main(args) == 2
    assert "results.md already exists" in caplog.text and "--overwrite" in caplog.text
    assert (out / "results.md").read_text() == "an earlier report" and not (out / "results.json").exists()
    assert evaluate.main([*args, "--checkpoint", str(checkpoint), "--out", str(checkpoint)]) == 2  # not over input
    assert evaluate.main([*args, "--overwrite"]) == 0
    assert "| tiny |" in (out / "results.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


# --- real faces from the ground-truth box --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(200, 300), (900, 1200)], ids=["enlarged", "reduced"])
def test_real_box_crop_maps_points_with_the_pixels(shape):
    points = face_points(3) * (shape[0] / 150)
    points[30] = (points[:, 0].mean() + 0.5, points[:, 1].mean() + 0.5)
    image = np.zeros((*shape, 3), np.uint8)
    x, y = np.floor(points[30]).astype(int)
    r = max(1, shape[0] // 100)
    image[y - r:y + r + 1, x - r:x + r + 1] = 255  # a square centred on pixel (x, y), i.e. at (x + 0.5, y + 0.5)
    crop, A = evaluate.real_box_crop(image, points, 64)
    grey = crop.mean(-1).astype(float)
    ys, xs = np.mgrid[:64, :64] + 0.5
    weight = grey * (grey > 0.3 * grey.max())
    centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, A[:, :2] @ points[30] + A[:, 2], atol=0.35)


def test_evaluate_real_scores_a_300w_folder(tmp_path):
    import dataset_fixtures as fx

    fx.make_300w(tmp_path)
    result = evaluate.evaluate_real(small_model("full"), f"300w:root={tmp_path},style=ibug2d", batch_size=2)
    assert result["num_images"] == 3 and result["per_image"]["nme_box"].shape == (3,)
    assert all(math.isfinite(result[k]) for k in ("nme_box", "nme_io", "fr_io@0.1", "auc_io@0.1"))
    held_out = evaluate.evaluate_real(small_model("full"), f"300w:root={tmp_path},val_fraction=0.3,split=val")
    assert held_out["num_images"] == 1
