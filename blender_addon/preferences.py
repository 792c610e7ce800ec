"""Add-on preferences: a model that overrides the bundled one, and the number of inference threads."""
from __future__ import annotations

import bpy
from bpy.props import IntProperty, StringProperty

from . import strings


class IL_AP_preferences(bpy.types.AddonPreferences):
    # The add-on's package name: "bl_ext.<repo>.infinite_landmarks" when installed as an extension.
    bl_idname = __package__

    model_path: StringProperty(name=strings.PREF_MODEL, description=strings.PREF_MODEL_DESC, subtype="FILE_PATH")
    threads: IntProperty(name=strings.PREF_THREADS, description=strings.PREF_THREADS_DESC, default=0, min=0,
                         max=256)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "model_path")
        layout.prop(self, "threads")
        from core.runtime.session import available_models, model_path

        box = layout.box()
        names = available_models()
        for name in names:
            box.label(text=strings.PREF_DEFAULT_MODEL.format(name=name, path=model_path(name)))
        if not names:
            box.label(text=strings.PREF_NO_DEFAULT_MODEL, icon="ERROR")


def addon_preferences(context: bpy.types.Context) -> IL_AP_preferences | None:
    """This add-on's preferences, or None when it is not enabled (e.g. `blender -P batch.py`)."""
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


CLASSES = (IL_AP_preferences,)
