"""Infinite Landmarks: facial performance capture in Blender (extension entry point: register/unregister only).

The built extension carries its own copy of the project's `core` package as its subpackage `vendor.core`, and
build_addon.py rewrites the add-on's `from core... import` lines to import that copy relatively: nothing named
`core` goes on `sys.path`, so another add-on's `core` neither shadows ours nor is shadowed by it. Run from the
repository (blender_addon/ beside core/), the repository's `core` is imported as the top-level package.
"""
from __future__ import annotations

import sys
from pathlib import Path


def _make_repository_core_importable() -> None:
    here = Path(__file__).resolve().parent
    if (here / "vendor" / "core" / "__init__.py").is_file():
        return  # the built extension: its imports of core are relative
    if (here.parent / "core" / "__init__.py").is_file() and str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))


_make_repository_core_importable()

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
