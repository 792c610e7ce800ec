"""Benchmark helpers (bench/): the MediaPipe 478->68 map, metrics on tiny fake data, the warp round trip, and the
peer worker when .venv-peers exists."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from bench.benchmark import inputs, runs, scoring
from bench.peers import MP478_TO_IBUG68


def test_mediapipe_map_is_68_distinct_valid_indices() -> None:
    assert len(MP478_TO_IBUG68) == 68
    assert all(0 <= i < 478 for i in MP478_TO_IBUG68)
    # No vertex used twice (the inner-lip and outer-lip points are different mesh vertices).
    assert len(set(MP478_TO_IBUG68)) == 68


def test_mediapipe_map_symmetry() -> None:
    """iBUG midline points (chin 8, nose 27-30 and 33, lips 51 57 62 66) map to FaceMesh midline vertices, and the
    two points of each iBUG mirror pair to two distinct off-midline vertices."""
    # MediaPipe's canonical face model: these vertex ids lie on the symmetry plane.
    midline = {0, 1, 2, 4, 5, 6, 8, 9, 10, 13, 14, 17, 18, 19, 94, 151, 152, 164, 168, 175, 195, 197, 199, 200}
    for i in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert MP478_TO_IBUG68[i] in midline, i
    mirror = [(j, 16 - j) for j in range(8)] + [(17 + j, 26 - j) for j in range(5)] + [(31, 35), (32, 34)] + \
        [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46), (48, 54), (49, 53), (50, 52), (59, 55),
         (58, 56), (60, 64), (61, 63), (67, 65)]
    for a, b in mirror:
        assert MP478_TO_IBUG68[a] not in midline and MP478_TO_IBUG68[b] not in midline
        assert MP478_TO_IBUG68[a] != MP478_TO_IBUG68[b]


def _face(rng: np.random.Generator) -> np.ndarray:
    pts = rng.uniform(80, 180, (68, 2))
    pts[36], pts[45] = (90, 100), (170, 100)  # inter-ocular distance 80
    return pts


def test_accuracy_counts_misses_as_failures() -> None:
    rng = np.random.default_rng(0)
    gt = np.stack([_face(rng) for _ in range(4)])
    pred = gt.copy()
    pred[1] += (4.0, 0.0)          # NME 4 / 80 = 0.05
    pred[2] = np.nan               # a miss
    pred[3] += (0.0, 16.0)         # NME 0.2: a failure
    a = scoring.accuracy(pred, gt)
    assert a["detection"] == pytest.approx(0.75)
    assert a["nme"] == pytest.approx((0 + 0.05 + 0.2) / 3)
    assert a["fr_detected"] == pytest.approx(1 / 3)
    assert a["fr_all"] == pytest.approx(2 / 4)
    assert a["auc_all"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)


def test_masked_jitter_skips_missing_frames() -> None:
    pred = np.zeros((5, 68, 2))
    pred[:, :, 0] = np.array([0, 1, 2, 0, 0])[:, None]   # 1 px steps, then a miss, then still
    pred[3] = np.nan
    # Valid pairs: (0,1) step 1, (1,2) step 1; (3,4) has a miss.
    assert scoring.masked_jitter(pred, None, 10.0) == pytest.approx(0.1)
    assert np.isnan(scoring.masked_jitter(np.full((3, 68, 2), np.nan), None, 1.0))


def test_unwarp_inverts_the_clip_warp() -> None:
    image = np.zeros((50, 40, 3), np.uint8)
    image[20, 10] = 255
    mats = inputs.warp_matrices(8, image.shape[:2], (120, 160))
    frames = inputs.warp_clip(image, mats, (120, 160))
    for frame, m in zip(frames, mats):
        # The bright pixel's centre in the warped frame (+0.5 convention) maps back to (10.5, 20.5).
        y, x = np.unravel_index(np.argmax(frame[..., 0].astype(float)), frame.shape[:2])
        back = inputs.unwarp(np.array([[x + 0.5, y + 0.5]]), m)[0]
        assert np.allclose(back, (10.5, 20.5), atol=0.8)


def test_mediapipe_pose_recovers_a_constant_frame_change() -> None:
    rng = np.random.default_rng(1)
    from scipy.spatial.transform import Rotation

    R_gt = Rotation.random(6, random_state=2).as_matrix()
    C = Rotation.from_euler("y", 180, degrees=True).as_matrix()
    # matrices such that GL_TO_CV @ R_mp @ C == R_gt
    mats = []
    for R in R_gt:
        m = np.eye(4)
        m[:3, :3] = scoring.GL_TO_CV.T @ R @ C.T
        m[:3, 3] = rng.normal(size=3)
        mats.append(m.tolist())
    result = scoring.mediapipe_pose(mats + [None], np.concatenate([R_gt, np.eye(3)[None]]))
    assert result is not None and result["n"] == 6
    assert np.allclose(result["errors"]["geodesic"], 0.0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not runs.peers_available(), reason=".venv-peers not installed")
def test_peer_worker_runs_on_a_photo(tmp_path) -> None:
    photo = inputs.read_rgb(inputs.real_photos()["astronaut"])
    np.save(tmp_path / "p.npy", photo[None])
    job = {"tasks": [{"name": "p", "npy": str(tmp_path / "p.npy"), "mode": "image"}], "methods": ["mediapipe", "dlib"]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run([str(runs.PEERS_PYTHON), str(runs.PEERS_WORKER), str(tmp_path / "job.json"),
                    str(tmp_path / "out.json")], check=True, capture_output=True)
    out = json.loads((tmp_path / "out.json").read_text())["tasks"]["p"]
    mp, dl = np.array(out["mediapipe"]["landmarks"][0]), np.array(out["dlib"]["landmarks"][0])
    assert mp.shape == dl.shape == (68, 2)
    # Two detectors on a clear frontal portrait agree within 15% of the inter-ocular distance.
    iod = np.linalg.norm(dl[36] - dl[45])
    assert np.linalg.norm(mp - dl, axis=1).mean() / iod < 0.15


@pytest.mark.slow
def test_face_finding_on_a_few_renders(tmp_path) -> None:
    """The shipped model through bench.face_finding: from the crop around the true landmarks it finds the faces
    of plain renders, and the table has a row per face size present plus the total."""
    from bench import face_finding
    from core.runtime import LandmarkModel
    from training.synth.__main__ import main as synth_main

    assert synth_main(["generate", "--out", str(tmp_path), "--num", "6", "--seed", "5", "--size", "256"]) == 0
    model = LandmarkModel(threads=1)
    sizes, errors = face_finding.face_finding(model, tmp_path, num=6, scenes=False)
    assert sizes.shape == (6,) and errors.shape == (6, len(face_finding.MODES)) and np.isfinite(errors).all()
    assert (errors[:, 2] < face_finding.FOUND_BELOW).mean() >= 0.5
    table = face_finding.report(sizes, errors)
    assert table[-2].startswith("| all | 6 |") and table[-1].startswith("| median error") and len(table) >= 5
    # The same faces pasted into a larger frame: smaller in the model input, still found from their crop.
    sizes_hd, errors_hd = face_finding.face_finding(model, tmp_path, num=6, scenes=False, frame_hw=(512, 768))
    assert np.allclose(sizes_hd, sizes / 3) and (errors_hd[:, 2] < face_finding.FOUND_BELOW).mean() >= 0.5


def test_benchmark_refuses_an_existing_report_or_folder_before_any_work(tmp_path, caplog) -> None:
    """`bench.benchmark` replaces neither <out>.md nor writes into a non-empty <out> without --overwrite: exit 2,
    checked before the model (here a missing file, never read) or any input is touched."""
    from bench.benchmark.__main__ import main

    out, report = tmp_path / "b", tmp_path / "b.md"
    command = ["--model", str(tmp_path / "missing.onnx"), "--out", str(out)]
    report.write_text("# an earlier report\n")
    assert main(command) == 2
    assert report.read_text() == "# an earlier report\n" and not out.exists()
    assert f"{report.resolve()} already exists: choose another path, or pass --overwrite to replace it" in caplog.text
    report.unlink()
    out.mkdir()
    (out / "ced_synth.png").write_bytes(b"an earlier plot")
    assert main(command) == 2
    assert (out / "ced_synth.png").read_bytes() == b"an earlier plot" and not report.exists()
    assert f"{out.resolve()} already exists and is not empty" in caplog.text


def test_long_takes_refuses_a_used_clip_folder(tmp_path, caplog) -> None:
    """`bench.long_takes` reuses or replaces what an earlier run left in <out>/<N> only with --overwrite."""
    from bench.long_takes import main

    (tmp_path / "300").mkdir()
    (tmp_path / "300" / "tracking.npz").write_bytes(b"earlier results")
    assert main(["--frames", "300", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "300" / "tracking.npz").read_bytes() == b"earlier results"
    assert f"{(tmp_path / '300').resolve()} already exists and is not empty" in caplog.text
    assert "--overwrite" in caplog.text
