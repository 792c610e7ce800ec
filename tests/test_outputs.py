"""Outputs, overwrites and exit codes (issue 20, items 2, 3, 4, 5 and 8), for core.outputs and core.predict: an
input is never written over, an existing file only with --overwrite, output paths are checked before any input is
read (exit 2), files are written atomically, a failed write or a partly decoded video is a non-zero exit, and the
JSON has one entry per input. The add-on's batch cases are in test_addon.py; the table is docs/robustness.md."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import outputs
from core.outputs import OutputError, OutputPlan, atomic_path, write_image, write_text
from core.predict import main
from media_fixtures import noise_frames, write_truncated_mp4


def run(tmp_path: Path, capsys, *args: object) -> tuple[int, str, str]:
    """core.predict in-process with the bundled model on one thread; (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in args] + ["--threads", "1"])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    assert cv2.imwrite(str(path), noise_frames(1)[0])
    return path


# --------------------------------------------------------------------------- item 2: inputs are never outputs

def test_json_naming_the_input_is_refused_even_with_overwrite(tmp_path, capsys, photo):
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, out, err = run(tmp_path, capsys, photo, "--json", photo, *extra)
        assert code == 2 and f"--json {photo} is the input {photo}" in err, err
        assert out == "" and photo.read_bytes() == before


def test_json_naming_a_hard_link_of_the_input_is_refused(tmp_path, capsys, photo):
    link = tmp_path / "link.json"
    os.link(photo, link)
    code, _, err = run(tmp_path, capsys, photo, "--json", link, "--overwrite")
    assert code == 2 and "is the input" in err and cv2.imread(str(photo)) is not None


def test_overlay_into_the_input_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(folder / f"f{i}.png"), noise_frames(1, seed=i)[0])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for extra in ([], ["--overwrite"]):
        code, out, err = run(tmp_path, capsys, folder, "--overlay", folder, *extra)
        assert code == 2 and "--overlay" in err and "is the input" in err and out == "", err
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# --------------------------------------------------------------------------- item 3: no silent overwrites

def test_existing_json_is_refused_unless_overwrite(tmp_path, capsys, photo):
    out_json = tmp_path / "out.json"
    out_json.write_text("someone else's file")
    code, out, err = run(tmp_path, capsys, photo, "--json", out_json)
    assert code == 2 and "already exists" in err and "--overwrite" in err and out == ""
    assert out_json.read_text() == "someone else's file"
    code, out, _ = run(tmp_path, capsys, photo, "--json", out_json, "--overwrite")
    assert code == 0 and json.loads(out_json.read_text())[0]["path"] == str(photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "photo.png"]  # no temporary file left


def test_existing_overlay_is_refused_unless_overwrite(tmp_path, capsys, photo):
    overlays = tmp_path / "overlays"
    overlays.mkdir()
    (overlays / "photo.png").write_bytes(b"keep me")
    code, _, err = run(tmp_path, capsys, photo, "--overlay", overlays)
    assert code == 2 and f"--overlay {overlays / 'photo.png'} already exists" in err
    assert (overlays / "photo.png").read_bytes() == b"keep me"
    code, _, _ = run(tmp_path, capsys, photo, "--overlay", overlays, "--overwrite")
    assert code == 0 and cv2.imread(str(overlays / "photo.png")) is not None


def test_two_inputs_with_the_same_name_get_their_own_overlays(tmp_path, capsys):
    for i, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        assert cv2.imwrite(str(tmp_path / name / "shot.png"), noise_frames(1, seed=i)[0])
    overlays = tmp_path / "overlays"
    code, _, _ = run(tmp_path, capsys, tmp_path / "a" / "shot.png", tmp_path / "b" / "shot.png", "--overlay", overlays)
    assert code == 0 and sorted(p.name for p in overlays.iterdir()) == ["shot.png", "shot_2.png"]


# --------------------------------------------------------------------------- item 4: no success on failure

def test_truncated_video_is_a_failure_with_complete_false(tmp_path, capsys, photo):
    clip = write_truncated_mp4(tmp_path / "cut.mp4")
    out_json = tmp_path / "out.json"
    code, _, err = run(tmp_path, capsys, clip, photo, "--json", out_json)
    assert code == 1 and str(clip) in err and "of the 30 frames could be decoded" in err, err
    entry, image_entry = json.loads(out_json.read_text())
    assert entry["complete"] is False and entry["frames_expected"] == 30
    assert 0 < entry["frames_read"] == len(entry["frames"]) < 30
    assert "faces" in image_entry  # the other input is still processed


def test_failed_image_encoding_is_an_error_not_wrote(tmp_path, capsys, photo, monkeypatch):
    monkeypatch.setattr(cv2, "imencode", lambda *args: (False, None))
    overlays = tmp_path / "overlays"
    code, _, err = run(tmp_path, capsys, photo, "--overlay", overlays)
    assert code == 1 and str(overlays / "photo.png") in err and "could not be written" in err, err
    assert not overlays.exists() or not any(overlays.iterdir())


def test_json_write_failing_after_the_work_is_exit_1(tmp_path, capsys, photo, monkeypatch):
    import core.predict

    def disk_full(path, text):
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(core.predict, "write_text", disk_full)
    code, out, err = run(tmp_path, capsys, photo, "--json", tmp_path / "out.json")
    assert code == 1 and "No space left on device" in err and "1 output file(s) could not be written" in err
    assert "wrote" not in out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc"])
def test_threshold_must_be_a_finite_number(tmp_path, capsys, photo, value):
    code, _, err = run(tmp_path, capsys, photo, "--threshold", value)
    assert code == 2 and "--threshold" in err


# --------------------------------------------------------------------------- item 5: outputs checked first

@pytest.mark.parametrize("option", ["--json", "--overlay"])
def test_unusable_output_path_exits_2_before_any_input_is_read(tmp_path, capsys, photo, option):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, out, err = run(tmp_path, capsys, photo, option, blocker / "out")
    assert code == 2 and f"{blocker} is a file, not a folder" in err, err
    assert out == ""  # no input was processed


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_read_only_folder_exits_2(tmp_path, capsys, photo):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(tmp_path, capsys, photo, "--json", locked / "out.json")
    assert code == 2 and "cannot create files in" in err


def test_writability_is_tried_not_guessed(tmp_path, monkeypatch):
    """A folder that refuses new files (a read-only mount, a folder root may not write) is found before the run."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", refuse)
    with pytest.raises(OutputError, match="cannot create files in .*Permission denied"):
        OutputPlan().file(tmp_path / "out.json", "--json")


# --------------------------------------------------------------------------- item 8: one entry per input

def test_one_json_entry_per_input_in_order(tmp_path, capsys, photo):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    second = tmp_path / "second.png"
    assert cv2.imwrite(str(second), noise_frames(1, seed=3)[0])
    out_json = tmp_path / "out.json"
    code, _, _ = run(tmp_path, capsys, photo, broken, second, "--json", out_json)
    result = json.loads(out_json.read_text())
    assert code == 1 and [e["path"] for e in result] == [str(photo), str(broken), str(second)]
    assert set(result[1]) == {"path", "error"} and str(broken) in result[1]["error"]


# --------------------------------------------------------------------------- core.outputs

def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "results.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer failed part way")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    with pytest.raises(OutputError, match="was not written"):
        with atomic_path(tmp_path / "never.npz"):
            pass  # a writer that wrote nothing
    assert not (tmp_path / "never.npz").exists()


def test_write_image_names_the_file_on_an_unknown_format(tmp_path):
    with pytest.raises(OutputError, match=r"check\.xyz.*use \.png or \.jpg"):
        write_image(tmp_path / "check.xyz", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_plan_collisions_and_replaceable_files(tmp_path):
    plan = OutputPlan()
    assert plan.file(tmp_path / "a.mp4", "--preview", unique=True).name == "a.mp4"
    assert plan.file(tmp_path / "a.mp4", "--preview", unique=True).name == "a_2.mp4"
    with pytest.raises(OutputError, match="is also the --preview output"):
        plan.file(tmp_path / "a.mp4", "--results")
    opened = tmp_path / "shot.blend"
    opened.write_bytes(b"BLENDER")
    assert OutputPlan(replaceable=[opened]).file(opened, "--output") == opened  # the file being saved again
    with pytest.raises(OutputError, match="already exists"):
        OutputPlan().file(opened, "--output")


def test_plan_own_folders_are_new_or_empty_and_hold_no_input(tmp_path):
    frames = tmp_path / "overlays" / "clip"
    frames.mkdir(parents=True)
    assert OutputPlan().folder(frames, "--overlay") == frames  # empty: fine
    (frames / "clip_000000.png").write_bytes(b"an earlier run's")
    with pytest.raises(OutputError, match="already exists and is not empty.*--overwrite"):
        OutputPlan().folder(frames, "--overlay")
    assert OutputPlan(overwrite=True).folder(frames, "--overlay") == frames
    with pytest.raises(OutputError, match="holds the input"):
        OutputPlan([frames / "clip_000000.png"], overwrite=True).folder(frames, "--overlay")
    assert OutputPlan([frames / "clip_000000.png"]).folder(frames.parent, "--overlay", own=False) == frames.parent
