"""Infinite Landmarks: facial performance capture in Blender (extension entry point: register/unregister only).

The add-on ships its own copy of the project's `core` package (vendor/core, made by build_addon.py) and imports
it as the top-level package `core`, as the rest of the project does. Run from the repository (blender_addon/
beside core/), the repository's `core` is used instead.
"""
from __future__ import annotations

import sys
from pathlib import Path


def _make_core_importable() -> None:
    here = Path(__file__).resolve().parent
    for folder in (here / "vendor", here.parent):  # built extension; repository checkout
        if (folder / "core" / "__init__.py").is_file():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            return


_make_core_importable()

import bpy  # noqa: E402 - after the path set-up above, like every module below

from . import cli, overlay, preferences, properties, ui, ui_rig  # noqa: E402
from .operators import retarget as retarget_operators  # noqa: E402
from .operators import rig as rig_operators  # noqa: E402
from .operators import track as track_operators  # noqa: E402
from .scene import props as scene_props  # noqa: E402

# Registered in this order, unregistered in reverse: preferences and property groups before the operators and
# panels that use them.
_CLASS_GROUPS = (preferences.CLASSES, track_operators.CLASSES, rig_operators.CLASSES, retarget_operators.CLASSES,
                 ui.CLASSES, ui_rig.CLASSES)


def register() -> None:
    properties.register()
    scene_props.register()
    for classes in _CLASS_GROUPS:
        for cls in classes:
            bpy.utils.register_class(cls)
    overlay.register()
    cli.register()


def unregister() -> None:
    cli.unregister()
    overlay.unregister()
    for classes in reversed(_CLASS_GROUPS):
        for cls in reversed(classes):
            bpy.utils.unregister_class(cls)
    scene_props.unregister()
    properties.unregister()
