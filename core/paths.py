"""Where the repository's assets live, resolved once so every module agrees."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# In the repo, assets sit beside core/; in the Blender extension build_addon.py puts them inside the package.
ASSETS_DIR = PACKAGE_DIR / "assets" if (PACKAGE_DIR / "assets").is_dir() else PACKAGE_DIR.parent / "assets"
REPO_DIR = PACKAGE_DIR.parent
SHARED_FACEKIT_DIR = REPO_DIR.parent / "shared" / "facekit"
