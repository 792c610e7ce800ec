"""Tracking settings stored on the scene (`scene.il_tracking`), and their conversion to TrackingSettings.

The rig and retarget settings are the colleague's `scene/props.py`; these are only what the Track operator and
the tracking panel need. Frame numbers here are scene frames, as the timeline shows them.
"""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from core.runtime.track import TrackingSettings

from . import strings
from .tracking import scene_to_clip_frame

CUSTOM_LAYOUT = "CUSTOM"
SCENE_ATTRIBUTE = "il_tracking"


def _layout_items() -> list[tuple[str, str, str]]:
    """Built-in layouts (from the layouts shipped with the add-on) plus 'custom file'. Computed once at import:
    the shipped layouts do not change while Blender runs, and Blender needs the item strings to stay alive."""
    from core.layouts import available_layouts

    names = available_layouts()
    ordered = sorted(names, key=lambda n: (n != "ibug68", n))  # the always-present default first
    items = [(n, strings.LAYOUT_LABELS.get(n, n), strings.LAYOUT_DESCRIPTIONS.get(n, strings.LAYOUT_BUILTIN_DESC))
             for n in ordered]
    items.append((CUSTOM_LAYOUT, strings.LAYOUT_CUSTOM_LABEL, strings.LAYOUT_CUSTOM_DESC))
    return items


def _semantics_items() -> list[tuple[str, str, str]]:
    from core.layouts import SEMANTICS

    return [(name, strings.SEMANTICS_LABELS.get(name, name), strings.SEMANTICS_DESCRIPTIONS.get(name, ""))
            for name in SEMANTICS]


def _bundled_model_items() -> list[tuple[str, str, str]]:
    from core.runtime.session import available_models

    names = available_models() or ["default"]  # a build without models still has the setting (its error says so)
    return [(name, *strings.BUNDLED_MODEL_LABELS.get(name, (name, ""))) for name in names]


LAYOUT_ITEMS = _layout_items()
SEMANTICS_ITEMS = _semantics_items()
BUNDLED_MODEL_ITEMS = _bundled_model_items()


class IL_PG_tracking(bpy.types.PropertyGroup):
    clip: PointerProperty(type=bpy.types.MovieClip, name=strings.PROP_CLIP, description=strings.PROP_CLIP_DESC)
    model: EnumProperty(name=strings.PROP_BUNDLED_MODEL, description=strings.PROP_BUNDLED_MODEL_DESC,
                        items=BUNDLED_MODEL_ITEMS)
    model_path: StringProperty(name=strings.PROP_MODEL, description=strings.PROP_MODEL_DESC, subtype="FILE_PATH")
    layout: EnumProperty(name=strings.PROP_LAYOUT, description=strings.PROP_LAYOUT_DESC, items=LAYOUT_ITEMS,
                         default="ibug68" if any(i[0] == "ibug68" for i in LAYOUT_ITEMS) else LAYOUT_ITEMS[0][0])
    layout_path: StringProperty(name=strings.PROP_LAYOUT_PATH, description=strings.PROP_LAYOUT_PATH_DESC,
                                subtype="FILE_PATH")
    semantics: EnumProperty(name=strings.PROP_SEMANTICS, description=strings.PROP_SEMANTICS_DESC,
                            items=SEMANTICS_ITEMS)
    use_frame_range: BoolProperty(name=strings.PROP_USE_RANGE, description=strings.PROP_USE_RANGE_DESC,
                                  default=False)
    frame_start: IntProperty(name=strings.PROP_FRAME_START, description=strings.PROP_FRAME_START_DESC, default=1)
    frame_end: IntProperty(name=strings.PROP_FRAME_END, description=strings.PROP_FRAME_END_DESC, default=250)
    smoothing: FloatProperty(name=strings.PROP_SMOOTHING, description=strings.PROP_SMOOTHING_DESC, default=0.5,
                             min=0.0, max=1.0, subtype="FACTOR")
    mirror: BoolProperty(name=strings.PROP_MIRROR, description=strings.PROP_MIRROR_DESC, default=False)
    threshold: FloatProperty(name=strings.PROP_THRESHOLD, description=strings.PROP_THRESHOLD_DESC, default=0.5,
                             min=0.0, max=1.0, subtype="FACTOR")
    write_markers: BoolProperty(name=strings.PROP_WRITE_MARKERS, description=strings.PROP_WRITE_MARKERS_DESC,
                                default=True)
    # Written by the Track operator for the panel; not user settings.
    status: StringProperty(name=strings.PROP_STATUS)
    progress: FloatProperty(name=strings.PROP_PROGRESS, min=0.0, max=1.0, subtype="FACTOR")


def scene_settings(scene: bpy.types.Scene) -> IL_PG_tracking:
    return getattr(scene, SCENE_ATTRIBUTE)


def active_clip(context: bpy.types.Context) -> bpy.types.MovieClip | None:
    """The clip to track: the one chosen in the settings, else the Movie Clip editor's, else the scene's."""
    settings = scene_settings(context.scene)
    if settings.clip is not None:
        return settings.clip
    space = getattr(context, "space_data", None)
    clip = getattr(space, "clip", None) if space is not None and space.type == "CLIP_EDITOR" else None
    return clip or context.scene.active_clip


def model_path(props: IL_PG_tracking, preferences) -> str:  # noqa: ANN001 - AddonPreferences or None
    """The scene's model file, else the add-on preference's, else the chosen bundled model's name ('' for the
    default), which core.runtime.session.model_path resolves."""
    for candidate in (props.model_path, getattr(preferences, "model_path", "")):
        if candidate and candidate.strip():
            return bpy.path.abspath(candidate.strip())
    return "" if props.model == "default" else props.model


def to_tracking_settings(props: IL_PG_tracking, clip: bpy.types.MovieClip, preferences=None) -> TrackingSettings:  # noqa: ANN001
    """The plain settings TrackJob takes: paths made absolute, frames converted from scene to clip frames."""
    layout = props.layout
    if layout == CUSTOM_LAYOUT:
        layout = bpy.path.abspath(props.layout_path.strip()) if props.layout_path.strip() else ""
    start = end = None
    if props.use_frame_range:
        start, end = scene_to_clip_frame(clip, props.frame_start), scene_to_clip_frame(clip, props.frame_end)
    return TrackingSettings(layout=layout, semantics=props.semantics, model_path=model_path(props, preferences),
                            smoothing=props.smoothing, mirror=props.mirror, threshold=props.threshold,
                            threads=int(getattr(preferences, "threads", 0) or 0), frame_start=start, frame_end=end)


CLASSES = (IL_PG_tracking,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    setattr(bpy.types.Scene, SCENE_ATTRIBUTE, PointerProperty(type=IL_PG_tracking))


def unregister() -> None:
    if hasattr(bpy.types.Scene, SCENE_ATTRIBUTE):
        delattr(bpy.types.Scene, SCENE_ATTRIBUTE)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
