"""Where the repository's assets live, resolved once so every module agrees; and the check every reader of a
user's input file makes before opening it."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# In the repo, assets sit beside core/; in the Blender extension build_addon.py puts them inside the package.
ASSETS_DIR = PACKAGE_DIR / "assets" if (PACKAGE_DIR / "assets").is_dir() else PACKAGE_DIR.parent / "assets"
REPO_DIR = PACKAGE_DIR.parent
SHARED_FACEKIT_DIR = REPO_DIR.parent / "shared" / "facekit"


def input_file_problem(path: str | Path) -> str | None:
    """Why `path` cannot be read as a regular file, in words, or None when it can be opened.

    Checked before opening: a FIFO or a device would block the reader forever, and Path.exists() reports a
    symbolic link loop as a missing file.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link" if os.path.islink(path) else "file not found"
        return exc.strerror or str(exc)
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a pipe, socket or device)"
    return None
