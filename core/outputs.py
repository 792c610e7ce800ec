"""A run's output files: planned and checked before any work is done, then written atomically.

    plan = OutputPlan(inputs=[clip, model_path], overwrite=args.overwrite)
    json_path = plan.file(args.json, "--json")                  # OutputError now, not after the work
    png = plan.file(folder / f"{stem}.png", "--overlay", unique=True)
    ...
    write_text(json_path, text)                                 # a temporary name in the same folder, then renamed

The rules are the same for every command (`core.predict`, the Blender add-on's batch):
- an output is never one of the run's inputs (compared as resolved paths and as files, so links count too);
- an existing file is refused unless `overwrite` (`--overwrite`) or it is one of `replaceable` (the add-on's
  open .blend, which the run saves again with the user's data kept);
- the folder must be one a file can be created in (it is made when missing);
- two outputs of one run that would get the same name (two inputs with the same file stem) are told apart with
  `_2`, `_3`, ... before the suffix (`unique=True`); without `unique` such a collision is refused.
Files are written to a hidden temporary name beside the target and renamed over it (`atomic_path`), so a failure
or a kill leaves the old file or none, never a half-written one.
"""
from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

log = logging.getLogger(__name__)

OVERWRITE_FLAG = "--overwrite"


class OutputError(Exception):
    """An output that cannot or may not be written; the message names the file and what to do."""


def _resolved(path: str | Path) -> Path:
    # os.path.realpath, not Path.resolve: that raises on a symbolic link loop (an input reported later).
    return Path(os.path.realpath(os.path.expanduser(path)))


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class OutputPlan:
    """The outputs of one run, reserved and checked before the run reads its inputs."""

    def __init__(self, inputs: Iterable[str | Path] = (), overwrite: bool = False,
                 replaceable: Iterable[str | Path] = ()) -> None:
        self.overwrite = overwrite
        self._inputs: dict[Path, str] = {}
        self._input_ids: dict[tuple[int, int], str] = {}
        self._replaceable = {i for i in map(_file_id, map(_resolved, replaceable)) if i is not None}
        self._planned: dict[Path, str] = {}
        for path in inputs:
            self.add_input(path)

    def add_input(self, path: str | Path) -> None:
        """A file (or folder) the run reads: never written, whatever the flags say."""
        resolved = _resolved(path)
        self._inputs[resolved] = str(path)
        file_id = _file_id(resolved)
        if file_id is not None:
            self._input_ids[file_id] = str(path)

    def file(self, path: str | Path, what: str, unique: bool = False) -> Path:
        """Reserve the file `path` for the output `what` (the option that names it, e.g. "--json"); returns its
        resolved path (with `_2`, ... when `unique` and the name is already reserved). Raises OutputError."""
        target = self._reserve(path, what, unique)
        if target.is_dir():
            raise OutputError(f"{what} {target} is a folder: give a file name")
        if target.exists() and not self.overwrite and _file_id(target) not in self._replaceable:
            raise OutputError(f"{what} {target} already exists: choose another path, or pass {OVERWRITE_FLAG} "
                              f"to replace it")
        return target

    def folder(self, path: str | Path, what: str, unique: bool = False, own: bool = True) -> Path:
        """Reserve the folder `path` for `what`'s files. An `own` folder holds only this output's files, so an
        existing one must be empty unless `overwrite`; a shared one (own=False) only has to be writable."""
        target = self._reserve(path, what, unique)
        if target.exists() and not target.is_dir():
            raise OutputError(f"{what} {target} is a file, not a folder: give a folder")
        if not own:  # a file written into it is checked on its own (plan.file)
            return target
        for resolved, given in self._inputs.items():
            if resolved.is_relative_to(target):
                raise OutputError(f"{what} {target} holds the input {given}: choose another folder")
        if target.is_dir() and any(target.iterdir()) and not self.overwrite:
            raise OutputError(f"{what} {target} already exists and is not empty: choose another folder, or pass "
                              f"{OVERWRITE_FLAG} to write into it")
        return target

    def _reserve(self, path: str | Path, what: str, unique: bool) -> Path:
        target = _resolved(path)
        if unique:
            stem, n = target.stem, 1
            while target in self._planned:  # another input of this run with the same name
                n += 1
                target = target.with_name(f"{stem}_{n}{target.suffix}")
        elif target in self._planned:
            raise OutputError(f"{what} {target} is also the {self._planned[target]} output: give them different "
                              f"names")
        given = self._inputs.get(target) or self._input_ids.get(_file_id(target))
        if given is not None:
            raise OutputError(f"{what} {target} is the input {given}: choose another path ({OVERWRITE_FLAG} never "
                              f"replaces an input)")
        _check_writable(target, what)
        self._planned[target] = what
        return target


def _check_writable(target: Path, what: str) -> None:
    """That a file can be created at `target`: its nearest existing folder is one, and accepts a new file (tried,
    not guessed from permission bits, which say nothing for root or a read-only mount)."""
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{what} {target}: {folder} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise OutputError(f"{what} {target}: cannot create files in {folder} ({exc.strerror or exc}): choose a "
                          f"folder you can write to") from None


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block ends without an error,
    removed when it raises. It keeps the suffix, so writers that pick the format from the name (OpenCV, numpy)
    agree. Failing to make the folder or to rename is an OutputError naming `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError(f"{path} was not written (the writer produced no file)")
        try:
            with open(tmp, "rb") as f:  # on disk before the rename: a crash leaves the old file or the new one
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """Encode an RGB image in the format of `path`'s suffix and write it atomically. OpenCV's imwrite only
    returns False on failure; here a failure is an OutputError naming the file."""
    import cv2

    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error as exc:
        raise OutputError(f"cannot write {path}: OpenCV cannot encode a {path.suffix or 'suffix-less'} image "
                          f"({str(exc).strip().splitlines()[-1]}): use .png or .jpg") from None
    if not ok:
        raise OutputError(f"cannot write {path}: OpenCV failed to encode the image")
    return write_bytes(path, encoded.tobytes())
