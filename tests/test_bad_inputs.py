"""Bad inputs get a clear message and the contract's exit status, never a traceback or a hang (issue 20, items 6,
7 and 10): layout files given to core.predict, images and videos that are not what their names say, and
training configs. The table of these cases is in docs/robustness.md."""
from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.layouts import load_layout
from core.predict import main as predict_main
from core.runtime import ImageReadError, VideoReadError, read_image
from core.runtime import images as runtime_images
from core.runtime.video import VideoFile
from training.train import main as train_main


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height, with no pixel data: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def _finishes(fn, fifo: Path, seconds: float = 20.0) -> BaseException | None:  # noqa: ANN001
    """Run fn() in a thread; fail if it is still blocked (on the FIFO) after `seconds`. Returns what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer that closes at once: the reader sees EOF
        thread.join(5)
        pytest.fail(f"reading the FIFO {fifo} blocked")
    return raised[0] if raised else None


# ---------------------------------------------------------------------------------------------- images, videos

def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(32000, 32000))  # the header of the 3 MB PNG that took 6.2 GB to decode
    with pytest.raises(ImageReadError, match=r"32000x32000 pixels is over the limit"):
        read_image(bomb)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm", ".hdr", ".jp2", ".sr"])
def test_pixel_limit_reads_the_size_from_each_format_header(tmp_path, monkeypatch, ext):
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"image{ext}"
    assert cv2.imwrite(str(path), pixels.astype(np.float32) / 255 if ext == ".hdr" else pixels)
    assert runtime_images.image_size(np.fromfile(path, np.uint8)) == (53, 37)
    assert read_image(path).shape == (37, 53, 3)
    monkeypatch.setattr(runtime_images, "MAX_IMAGE_PIXELS", 53 * 37 - 1)
    with pytest.raises(ImageReadError, match="53x37 pixels is over the limit"):
        read_image(path)



def test_video_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert VideoFile(path).width == 64
    monkeypatch.setattr(runtime_images, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with pytest.raises(VideoReadError, match=r"64x48 pixels a frame is over the limit of 3,071 pixels"):
        VideoFile(path)

@pytest.mark.parametrize("name", ["frame.jpg", "clip.mp4"])
def test_fifo_is_refused_without_blocking(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    reader = read_image if name.endswith(".jpg") else VideoFile
    raised = _finishes(lambda: reader(fifo), fifo)
    assert isinstance(raised, (ImageReadError, VideoReadError)) and "not a regular file" in str(raised)


@pytest.mark.parametrize("name", ["loop.png", "loop.mp4"])
def test_symlink_loop_is_reported_as_a_loop(tmp_path, name):
    loop = tmp_path / name
    loop.symlink_to(loop)
    reader = read_image if name.endswith(".png") else VideoFile
    with pytest.raises((ImageReadError, VideoReadError), match="symbolic link loop"):
        reader(loop)


def test_predict_reports_each_bad_image_and_exits_1(tmp_path, capsys):
    fifo, loop, broken, bomb = (tmp_path / n for n in ("fifo.jpg", "loop.png", "broken.png", "bomb.png"))
    os.mkfifo(fifo)
    loop.symlink_to(loop)
    broken.symlink_to(tmp_path / "gone.png")
    bomb.write_bytes(_png_header(32000, 32000))
    codes: list[int] = []
    raised = _finishes(lambda: codes.append(predict_main([str(p) for p in (fifo, loop, broken, bomb)]
                                                         + ["--threads", "1"])), fifo, seconds=120)
    assert raised is None and codes == [1]
    err = capsys.readouterr().err
    for path, reason in [(fifo, "not a regular file"), (loop, "symbolic link loop"), (broken, "broken symbolic link"),
                         (bomb, "over the limit")]:
        assert any(str(path) in line and reason in line for line in err.splitlines()), (path, err)
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("data, field", [
    ({"triangles": [0], "barycentric": [[float("nan"), 0.5, 0.5]]}, "barycentric[0]"),
    ({"vertices": [10**30]}, "vertices[0]"),
    ({"vertices": ["a", "b"]}, "vertices[0]"),
    ({"vertices": [966, 1.7]}, "vertices[1]"),
    ({"triangles": "0 1", "barycentric": [[1, 0, 0]]}, "'triangles'"),
    (["a", "b"], "JSON object"),
])
def test_predict_bad_layout_exits_2_naming_file_and_field(tmp_path, capsys, data, field):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    layout = tmp_path / "bad.json"
    layout.write_text(json.dumps(data))
    assert predict_main([str(image), "--layout", str(layout), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(layout) in err and field in err


def test_layout_loading_runs_no_code(tmp_path):
    """A layout is parsed as JSON only: a Python payload in it is a JSON error, never executed."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.json"
    path.write_text(f"__import__('pathlib').Path({str(marker)!r}).touch()")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_layout(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- training configs

@pytest.mark.parametrize("content, args, message", [
    ("optim:\n  lr: [1,\n", [], "is not valid YAML"),
    ("- a\n- b\n", [], "must be a mapping"),
    ("optim:\n  lr: abc\n", [], "'optim.lr' must be a finite number, not 'abc'"),
    (None, ["optim.lr=abc"], "'optim.lr' must be a finite number, not 'abc'"),
    (None, ["optim.lr=.nan"], "'optim.lr' must be a finite number"),
    (None, ["model.hidden=abc"], "'model.hidden' must be a finite number"),
    (None, ["data.augment=3"], "'data.augment' must be true or false"),
    (None, ["optim.betas=[0.9,"], "the value is not valid YAML"),
    (None, ["data.train=nosuch:root=x"], "valid names: synthetic, 300w"),
    (None, ["data.train=5"], "'data.train' must be a string, not 5"),
    (None, ["model.variant=7"], "'model.variant' must be a string, not 7"),
    (None, ["optim.betas=abc"], "'optim.betas' must be a list, not 'abc'"),
    (None, ["optim.betas=[a,b]"], "'optim.betas' must be a list of finite numbers"),
    (None, ["optim.trainable=5"], "optim.trainable must be a list of module names (e.g. [stn]) or null, not 5"),
    (None, ["optim.trainable=[1]"], "optim.trainable must be a list of module names"),
])
def test_train_bad_config_exits_2_with_a_message(tmp_path, caplog, content, args, message):
    config = []
    if content is not None:
        (tmp_path / "exp.yaml").write_text(content)
        config = ["--config", str(tmp_path / "exp.yaml")]
    assert train_main(config + ["--run-dir", str(tmp_path / "run"), "runtime.threads=1"] + args) == 2
    assert message in caplog.text


def test_train_config_runs_no_code(tmp_path, caplog):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"!!python/object/apply:os.system [\"touch {marker}\"]\n")
    assert train_main(["--config", str(evil), "--run-dir", str(tmp_path / "run")]) == 2
    assert "is not valid YAML" in caplog.text and not marker.exists()
