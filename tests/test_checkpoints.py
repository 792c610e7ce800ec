"""Checkpoint files never run code: a crafted pickle is refused by every command that reads checkpoints; and the
export never writes over a file it was not asked to replace, nor over its checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from training import evaluate, export, train, train_finder
from training.checkpoints import CheckpointError, load_checkpoint_file, save_checkpoint


class Payload:
    """Unpickling this makes the directory `marker`: what a malicious checkpoint's code could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "config": {"model": {"variant": "full"}}, "step": 1,
                "payload": Payload(marker)}, path)
    return path, marker


def test_loading_a_crafted_pickle_fails_closed(crafted):
    path, marker = crafted
    with pytest.raises(CheckpointError, match="--allow-pickle"):
        load_checkpoint_file(path)
    assert not marker.exists()
    load_checkpoint_file(path, allow_pickle=True)  # the explicit opt-in reads it fully
    assert marker.exists()


def test_plain_checkpoints_load_and_bad_files_are_named(tmp_path):
    save_checkpoint({"step": 3, "model": {"w": torch.ones(2)}}, tmp_path / "ok.pt")
    assert load_checkpoint_file(tmp_path / "ok.pt")["step"] == 3
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for name in ("junk.pt", "missing.pt"):
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint_file(tmp_path / name)


def test_no_command_runs_code_from_a_crafted_checkpoint(crafted, tmp_path, capsys, caplog):
    path, marker = crafted
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(path.read_bytes())
    commands = {
        "train resume": lambda: train.main(["--run-dir", str(run_dir)]),
        "train init_weights": lambda: train.main(["--run-dir", str(tmp_path / "fresh"), f"init_weights={path}"]),
        "evaluate": lambda: evaluate.main(["--checkpoint", str(path), "--real", f"x=300w:root={tmp_path}"]),
        "export": lambda: export.main([str(path), str(tmp_path / "out.onnx")]),
        "export --weights": lambda: export.main([str(path), str(tmp_path / "out.onnx"), "--weights",
                                                 str(tmp_path / "w.pt")]),
        "train_finder": lambda: train_finder.main(["--init", str(path), "--out", str(tmp_path / "finder")]),
    }
    for name, command in commands.items():
        caplog.clear()
        assert command() == 2, name
        assert not marker.exists(), name
        assert "--allow-pickle" in caplog.text + capsys.readouterr().err, name  # refused for the pickle
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "w.pt").exists()


def test_export_replaces_no_file_unless_asked_and_never_its_checkpoint(tmp_path, capsys, monkeypatch):
    """training.export refuses an existing OUT.onnx or --weights file before any work (exit 2, the file named and
    untouched) unless --overwrite, and never writes over the checkpoint it reads, even with --overwrite."""
    source = tmp_path / "ckpt.pt"
    save_checkpoint({"step": 1, "model": {}, "config": {"model": {"variant": "full"}}}, source)
    out, weights = tmp_path / "model.onnx", tmp_path / "weights.pt"
    out.write_bytes(b"an earlier model")
    weights.write_bytes(b"earlier weights")
    reached = []

    def stop(*args: object, **kwargs: object) -> None:
        reached.append(args)
        raise export.ExportError("the export work started")

    monkeypatch.setattr(export, "save_weights", stop)
    monkeypatch.setattr(export, "load_model", stop)
    for argv, refused in (([str(source), str(out)], out),
                          ([str(source), str(tmp_path / "new.onnx"), "--weights", str(weights)], weights),
                          ([str(source), str(source), "--overwrite"], source),
                          ([str(source), str(tmp_path / "new.onnx"), "--weights", str(source), "--overwrite"], source)):
        assert export.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert str(refused) in err, argv
        assert ("is the input" if refused == source else
                "already exists: choose another path, or pass --overwrite to replace it") in err, argv
    assert not reached and not (tmp_path / "new.onnx").exists()
    assert out.read_bytes() == b"an earlier model" and weights.read_bytes() == b"earlier weights"
    assert load_checkpoint_file(source)["step"] == 1
    # With --overwrite the same outputs pass the check and the work starts.
    assert export.main([str(source), str(out), "--weights", str(weights), "--overwrite"]) == 2
    assert "the export work started" in capsys.readouterr().err and len(reached) == 1
