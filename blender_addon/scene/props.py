"""Property groups of the rig, overlay and retarget settings, saved with the .blend.

- `scene.il_rig` (IL_PG_rig): how the rig is built (lens, pose convention, solver), the overlay toggles, and the
  retarget choices (target mesh, head object or bone, live or baked).
- `object.il_retarget` (IL_PG_target) on a retarget target: its ARKit -> shape-key mapping, one row per pair
  (several rows may share an ARKit name or a target key), edited in the panel's list.
"""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from core.solve import DEFAULT_IDENTITY_MODES, DEFAULT_SMOOTHING

from .. import strings

SCENE_ATTRIBUTE = "il_rig"
OBJECT_ATTRIBUTE = "il_retarget"


def _redraw(self, context: bpy.types.Context) -> None:  # noqa: ANN001 - property update callback
    """Overlay toggles take effect at once in every editor."""
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "CLIP_EDITOR"}:
                area.tag_redraw()


def _is_mesh_with_keys(self, obj: bpy.types.Object) -> bool:  # noqa: ANN001 - PointerProperty poll
    return obj.type == "MESH" and obj.data.shape_keys is not None


class IL_PG_mapping_item(bpy.types.PropertyGroup):
    """One row of a retarget mapping: this ARKit shape drives that target shape key."""

    arkit_name: StringProperty(name=strings.PROP_MAP_ARKIT, description=strings.PROP_MAP_ARKIT_DESC)
    target_key: StringProperty(name=strings.PROP_MAP_TARGET, description=strings.PROP_MAP_TARGET_DESC)


class IL_PG_target(bpy.types.PropertyGroup):
    """Per target object: its mapping, kept with the object so each character remembers its own."""

    mapping: CollectionProperty(type=IL_PG_mapping_item)
    mapping_index: IntProperty(default=0)


class IL_PG_rig(bpy.types.PropertyGroup):
    # --- building the rig
    sensor_width_mm: FloatProperty(name=strings.PROP_SENSOR, description=strings.PROP_SENSOR_DESC, default=36.0,
                                   min=1.0, soft_max=100.0, unit="CAMERA")
    animated_focal: BoolProperty(name=strings.PROP_ANIMATED_FOCAL, description=strings.PROP_ANIMATED_FOCAL_DESC,
                                 default=False)
    pose_mode: EnumProperty(name=strings.PROP_POSE_MODE, description=strings.PROP_POSE_MODE_DESC,
                            items=[("HEAD", strings.POSE_HEAD, strings.POSE_HEAD_DESC),
                                   ("CAMERA", strings.POSE_CAMERA, strings.POSE_CAMERA_DESC)], default="HEAD")
    identity_modes: IntProperty(name=strings.PROP_IDENTITY_MODES, description=strings.PROP_IDENTITY_MODES_DESC,
                                default=DEFAULT_IDENTITY_MODES, min=0, max=100)
    smoothing: FloatProperty(name=strings.PROP_EXPR_SMOOTHING, description=strings.PROP_EXPR_SMOOTHING_DESC,
                             default=DEFAULT_SMOOTHING, min=0.0, soft_max=1.0, precision=4)
    combine: EnumProperty(name=strings.PROP_COMBINE, description=strings.PROP_COMBINE_DESC,
                          items=[("mean", strings.COMBINE_MEAN, strings.COMBINE_MEAN_DESC),
                                 ("max", strings.COMBINE_MAX, strings.COMBINE_MAX_DESC)], default="mean")
    # --- overlay
    show_landmarks: BoolProperty(name=strings.PROP_SHOW_LANDMARKS, description=strings.PROP_SHOW_LANDMARKS_DESC,
                                 default=True, update=_redraw)
    show_points_3d: BoolProperty(name=strings.PROP_SHOW_POINTS_3D, description=strings.PROP_SHOW_POINTS_3D_DESC,
                                 default=True, update=_redraw)
    point_size: FloatProperty(name=strings.PROP_POINT_SIZE, description=strings.PROP_POINT_SIZE_DESC, default=4.0,
                              min=1.0, max=20.0, update=_redraw)
    # --- retargeting
    target: PointerProperty(type=bpy.types.Object, name=strings.PROP_TARGET, description=strings.PROP_TARGET_DESC,
                            poll=_is_mesh_with_keys)
    head_object: PointerProperty(type=bpy.types.Object, name=strings.PROP_HEAD_OBJECT,
                                 description=strings.PROP_HEAD_OBJECT_DESC)
    head_bone: StringProperty(name=strings.PROP_HEAD_BONE, description=strings.PROP_HEAD_BONE_DESC)


CLASSES = (IL_PG_mapping_item, IL_PG_target, IL_PG_rig)


def rig_settings(scene: bpy.types.Scene) -> IL_PG_rig:
    return getattr(scene, SCENE_ATTRIBUTE)


def target_settings(obj: bpy.types.Object) -> IL_PG_target:
    return getattr(obj, OBJECT_ATTRIBUTE)


def head_target(props: IL_PG_rig):  # noqa: ANN201 - Object | (Object, bone name) | None
    """The head target as `scene.retarget.retarget` takes it: a bone of an armature, or an object, or None."""
    obj = props.head_object
    if obj is not None and obj.type == "ARMATURE" and props.head_bone:
        return obj, props.head_bone
    return obj


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    setattr(bpy.types.Scene, SCENE_ATTRIBUTE, PointerProperty(type=IL_PG_rig))
    setattr(bpy.types.Object, OBJECT_ATTRIBUTE, PointerProperty(type=IL_PG_target))


def unregister() -> None:
    for owner, attribute in ((bpy.types.Object, OBJECT_ATTRIBUTE), (bpy.types.Scene, SCENE_ATTRIBUTE)):
        if hasattr(owner, attribute):
            delattr(owner, attribute)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
