"""Run the add-on's pipeline as a Blender script, for pipelines that call `blender -P`:

    blender -b -P <add-on folder>/batch.py -- CLIP [CLIP ...] --output OUT.blend [--target FILE.blend] ...

The arguments and behaviour are those of `blender -b -c infinite_landmarks` (see cli.py): this file only finds the
add-on package, makes sure it is registered for the run, and calls the same `cli.main`. Blender exits with the
pipeline's status.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import bpy

PACKAGE_SUFFIX = "infinite_landmarks"  # the extension id: its module is bl_ext.<repo>.infinite_landmarks


def _enabled_addon():  # noqa: ANN202 - the add-on module when it is already enabled in this Blender
    for name in bpy.context.preferences.addons.keys():
        if name.rsplit(".", 1)[-1] == PACKAGE_SUFFIX and name in sys.modules:
            return sys.modules[name]
    return None


def _import_own_package():  # noqa: ANN202
    """Import the package this file sits in (the extension folder, or blender_addon/ in the repository)."""
    folder = Path(__file__).resolve().parent
    if str(folder.parent) not in sys.path:
        sys.path.insert(0, str(folder.parent))
    return importlib.import_module(folder.name)


def run(argv: list[str]) -> int:
    addon = _enabled_addon()
    if addon is not None:
        return addon.cli.main(argv, prog="blender -b -P batch.py --")
    addon = _import_own_package()
    addon.register()
    try:
        return addon.cli.main(argv, prog="blender -b -P batch.py --")
    finally:
        addon.unregister()  # also removes the CLI command, which Blender 4.2-4.5 crash on at exit


def script_arguments(argv: list[str]) -> list[str]:
    """The arguments after Blender's `--` separator."""
    return argv[argv.index("--") + 1:] if "--" in argv else []


if __name__ == "__main__":
    sys.exit(run(script_arguments(sys.argv)))
