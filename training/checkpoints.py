"""Checkpoint files: written atomically, read without ever running code from the file.

A checkpoint of ours holds tensors and plain Python types only, which `torch.load(weights_only=True)` reads
safely. Anything else in a file (a pickled object) could run code when unpickled, so reading fails closed with a
message; `allow_pickle=True` (the commands' `--allow-pickle`) reads such a file fully, for a trusted old one.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from core.outputs import atomic_path

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read safely or at all; the message names the file and what to do."""


def save_checkpoint(state: dict, path: str | Path) -> None:
    """torch.save under a temporary name in the same folder, then renamed (core.outputs.atomic_path): a kill
    leaves either the old checkpoint or the new one, never a partial file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu", allow_pickle: bool = False) -> Any:
    """The contents of a torch checkpoint file, read with weights_only=True; with `allow_pickle` a file holding
    other objects is read fully (which runs whatever code it holds: only for files you made yourself)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_pickle:
            raise CheckpointError(
                f"{path}: the file holds Python objects other than tensors and plain types, and reading it would "
                f"run code from it, so it was not read ({str(exc).splitlines()[0]}). If you made this file "
                f"yourself (an older checkpoint of this project), read it once with --allow-pickle "
                f"(training: allow_pickle=true) and save it again.") from None
        log.warning("%s: reading it with full unpickling, which runs code from the file (--allow-pickle)", path)
        return torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0]})") from None
