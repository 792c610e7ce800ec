"""`python -m core.predict`: the command-line contract of ../shared/conventions.md (JSON schema, errors, exit
codes, videos, folders, overlays), with a small untrained exported model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.layouts import load_layout
from core.predict import main
from media_fixtures import noise_image
from model_fixtures import small_model, small_untrained
from training.export import export_model

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
FACE_KEYS = {"confidence", "landmarks_2d", "visibility", "landmarks_3d", "K", "R", "t"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return export_model(small_model().eval(), tmp_path_factory.mktemp("model") / "small.onnx", (128, 128),
                        source="test")


@pytest.fixture(scope="module")
def varied_model_path(tmp_path_factory) -> Path:
    """The same model with small random weights in its zero-initialised output layers: without them it is exactly
    mirror-symmetric, so a mirrored run would change nothing."""
    return export_model(small_untrained(), tmp_path_factory.mktemp("model") / "varied.onnx", (128, 128),
                        source="test")


def predict(args: list, model_path: Path, tmp_path: Path, capsys) -> tuple[int, list, str, str]:  # noqa: ANN001
    """Run the CLI in-process with --json; returns (exit code, parsed JSON, stdout, stderr)."""
    out = tmp_path / "out.json"
    out.unlink(missing_ok=True)  # the previous call's: an existing --json is refused without --overwrite
    code = main([str(a) for a in args] + ["--model", str(model_path), "--json", str(out), "--threads", "1"])
    captured = capsys.readouterr()
    return code, json.loads(out.read_text()) if out.exists() else None, captured.out, captured.err


def check_face(face: dict, n: int, width: int, height: int) -> None:
    assert set(face) == FACE_KEYS
    assert isinstance(face["confidence"], float) and 0 <= face["confidence"] <= 1
    assert np.asarray(face["landmarks_2d"]).shape == (n, 2)
    assert np.asarray(face["visibility"]).shape == (n,)
    assert np.asarray(face["landmarks_3d"]).shape == (n, 3)
    assert np.asarray(face["K"]).shape == (3, 3) and np.asarray(face["R"]).shape == (3, 3)
    assert np.asarray(face["t"]).shape == (3,)
    K = np.asarray(face["K"])
    assert K[2].tolist() == [0, 0, 1] and K[0, 0] == K[1, 1] > 0


def test_json_schema(model_path, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), noise_image(120, 160))
    code, result, _, _ = predict([tmp_path / "a.png", "--threshold", "0"], model_path, tmp_path, capsys)
    assert code == 0 and isinstance(result, list) and len(result) == 1
    entry = result[0]
    assert set(entry) == {"path", "width", "height", "faces"}
    assert entry["path"] == str(tmp_path / "a.png") and (entry["width"], entry["height"]) == (160, 120)
    assert len(entry["faces"]) == 1
    check_face(entry["faces"][0], 68, 160, 120)
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN or Infinity


def test_layouts_and_semantics(model_path, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), noise_image(64, 64))
    custom = tmp_path / "five.json"
    ibug = load_layout("ibug68")
    custom.write_text(json.dumps({"name": "five", "triangles": ibug.triangles[:5].tolist(),
                                  "barycentric": ibug.barycentric[:5].tolist()}))
    for layout, n in [("wflw98", 98), (custom, 5)]:
        code, result, _, _ = predict([tmp_path / "a.png", "--threshold", "0", "--layout", layout,
                                      "--semantics", "ibug2d"], model_path, tmp_path, capsys)
        assert code == 0
        check_face(result[0]["faces"][0], n, 64, 64)
    code, _, _, err = predict([tmp_path / "a.png", "--layout", "no_such_layout"], model_path, tmp_path, capsys)
    assert code == 2 and "no_such_layout" in err
    code, _, _, err = predict([tmp_path / "a.png", "--semantics", "nope"], model_path, tmp_path, capsys)
    assert code == 2 and "nope" in err


@pytest.mark.slow
def test_image_kinds_and_unreadable_file(model_path, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "gray.png"), noise_image(50, 70)[..., 0])
    rgba = np.dstack([noise_image(40, 30), np.full((40, 30), 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "deep.png"), noise_image(30, 40).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "tiny.png"), noise_image(8, 8))
    cv2.imwrite(str(tmp_path / "huge.png"), np.zeros((3000, 5000, 3), np.uint8))
    (tmp_path / "broken.jpg").write_text("this is not a picture")
    names = ["gray.png", "broken.jpg", "rgba.png", "deep.png", "tiny.png", "huge.png", "missing.png"]
    code, result, _, err = predict([tmp_path / n for n in names] + ["--threshold", "0"], model_path, tmp_path, capsys)
    assert code == 1
    assert str(tmp_path / "broken.jpg") in err and str(tmp_path / "missing.png") in err
    assert [Path(e["path"]).name for e in result] == names  # one entry per input, in order
    read = [e for e in result if "error" not in e]
    sizes = {Path(e["path"]).name: (e["width"], e["height"]) for e in read}
    assert sizes == {"gray.png": (70, 50), "rgba.png": (30, 40), "deep.png": (40, 30), "tiny.png": (8, 8),
                     "huge.png": (5000, 3000)}
    for entry in read:
        check_face(entry["faces"][0], 68, entry["width"], entry["height"])
    errors = {Path(e["path"]).name: e["error"] for e in result if "error" in e}
    assert set(errors) == {"broken.jpg", "missing.png"} and "file not found" in errors["missing.png"]


def test_no_face_is_empty_and_exit_zero(model_path, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), noise_image(64, 64))
    code, result, _, _ = predict([tmp_path / "a.png", "--threshold", "1.01"], model_path, tmp_path, capsys)
    assert code == 0 and result[0]["faces"] == []


def test_model_errors(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), noise_image(32, 32))
    assert main([str(tmp_path / "a.png"), "--model", str(tmp_path / "nowhere.onnx")]) == 2
    err = capsys.readouterr().err
    assert "nowhere.onnx" in err and "not found" in err and "training.export" in err
    (tmp_path / "fake.onnx").write_text("definitely not protobuf")
    assert main([str(tmp_path / "a.png"), "--model", str(tmp_path / "fake.onnx")]) == 2
    err = capsys.readouterr().err
    assert "fake.onnx" in err and "not a valid ONNX model" in err


def test_bundled_models_by_name(model_path, tmp_path, monkeypatch, capsys):
    """--model takes a bundled model's name; a name whose file is missing says so and lists what is there."""
    from core.runtime import session

    monkeypatch.setattr(session, "MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "permissive.onnx").write_bytes(model_path.read_bytes())
    assert session.available_models() == ["permissive"]
    assert session.model_path("permissive") == tmp_path / "models" / "permissive.onnx"
    assert session.model_path(str(model_path)) == model_path
    cv2.imwrite(str(tmp_path / "a.png"), noise_image(32, 32))
    assert main([str(tmp_path / "a.png"), "--model", "permissive", "--json", str(tmp_path / "out.json")]) == 0
    assert main([str(tmp_path / "a.png"), "--model", "default"]) == 2
    err = capsys.readouterr().err
    assert "bundled model" in err and "default.onnx" in err and "bundled here: permissive" in err


def test_addon_build_bundles_the_runtime_models():
    import build_addon
    from core.runtime.session import BUNDLED_MODELS

    assert build_addon.BUNDLED_MODEL_FILES == tuple(BUNDLED_MODELS.values())
    assert next(iter(BUNDLED_MODELS)) == "default"


def write_video(path: Path, frames: int = 5, hw: tuple[int, int] = (48, 64)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (hw[1], hw[0]))
    for i in range(frames):
        writer.write(noise_image(*hw, seed=i))
    writer.release()


def test_video(model_path, tmp_path, capsys):
    write_video(tmp_path / "clip.mp4")
    code, result, _, _ = predict([tmp_path / "clip.mp4", "--threshold", "0"], model_path, tmp_path, capsys)
    assert code == 0 and len(result) == 1
    entry = result[0]
    assert set(entry) == {"path", "width", "height", "fps", "complete", "frames"} and entry["complete"] is True
    assert (entry["width"], entry["height"]) == (64, 48) and entry["fps"] == pytest.approx(24.0)
    assert [f["frame"] for f in entry["frames"]] == [0, 1, 2, 3, 4]
    for frame in entry["frames"]:
        assert set(frame) == {"frame", "faces"}
        check_face(frame["faces"][0], 68, 64, 48)

    code, result, _, _ = predict([tmp_path / "clip.mp4", "--threshold", "1.01"], model_path, tmp_path, capsys)
    assert code == 0 and all(f["faces"] == [] for f in result[0]["frames"])


@pytest.mark.slow
def test_mirror_flag(varied_model_path, tmp_path, capsys):
    """Images are mirrored by default (--no-mirror turns it off), clips only with --mirror; a mirrored run gives
    other landmarks and the same JSON."""
    cv2.imwrite(str(tmp_path / "face.png"), noise_image(96, 128, seed=5))
    write_video(tmp_path / "clip.mp4")
    runs = {}
    for flags in ([], ["--mirror"], ["--no-mirror"]):
        code, result, _, _ = predict([tmp_path / "face.png", tmp_path / "clip.mp4", "--threshold", "0", *flags],
                                     varied_model_path, tmp_path, capsys)
        assert code == 0
        check_face(result[0]["faces"][0], 68, 128, 96)
        runs[" ".join(flags)] = (np.asarray(result[0]["faces"][0]["landmarks_2d"]),
                                 np.asarray(result[1]["frames"][-1]["faces"][0]["landmarks_2d"]))
    default, mirrored, plain = runs[""], runs["--mirror"], runs["--no-mirror"]
    np.testing.assert_array_equal(default[0], mirrored[0])   # images: mirrored by default
    np.testing.assert_array_equal(default[1], plain[1])      # clips: not
    assert np.abs(plain[0] - mirrored[0]).max() > 1e-3
    assert np.abs(plain[1] - mirrored[1]).max() > 1e-3


def test_corrupt_video_is_reported(model_path, tmp_path, capsys):
    write_video(tmp_path / "good.mp4", frames=2)
    (tmp_path / "corrupt.mp4").write_bytes(bytes(range(256)) * 20)
    code, result, _, err = predict([tmp_path / "corrupt.mp4", tmp_path / "good.mp4"], model_path, tmp_path, capsys)
    assert code == 1 and "corrupt.mp4" in err
    assert [Path(e["path"]).name for e in result] == ["corrupt.mp4", "good.mp4"]
    assert "corrupt.mp4" in result[0]["error"] and "frames" in result[1]


@pytest.mark.slow
def test_folder_sequence_overlay_and_summary(model_path, tmp_path, capsys):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in (10, 2, 1):
        cv2.imwrite(str(folder / f"f{i}.png"), noise_image(40, 50, seed=i))
    code, result, _, _ = predict([folder, "--threshold", "0"], model_path, tmp_path, capsys)
    assert code == 0 and [Path(e["path"]).name for e in result] == ["f1.png", "f2.png", "f10.png"]

    code, result, _, _ = predict([folder, "--sequence", "--fps", "12", "--threshold", "0"], model_path, tmp_path,
                                 capsys)
    assert code == 0 and len(result) == 1 and len(result[0]["frames"]) == 3 and result[0]["fps"] == 12

    overlays = tmp_path / "overlays"
    code = main([str(folder / "f1.png"), "--model", str(model_path), "--overlay", str(overlays), "--threshold", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "f1.png: 50x40, 1 face" in out
    drawn = cv2.imread(str(overlays / "f1.png"))
    assert drawn is not None and drawn.shape == (40, 50, 3)


@pytest.mark.slow
def test_cli_subprocess(model_path, tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), noise_image(60, 80))
    result = subprocess.run([sys.executable, "-m", "core.predict", str(tmp_path / "a.jpg"), "--model", str(model_path),
                             "--json", "-", "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)[0]
    assert (entry["width"], entry["height"]) == (80, 60)
