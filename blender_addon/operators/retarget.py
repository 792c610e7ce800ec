"""Auto-map, mapping rows, and Drive / Bake retargeting: thin glue around `core.arkit` and `scene.retarget`."""
from __future__ import annotations


import bpy
from bpy.props import BoolProperty

from core.arkit import ARKIT52_NAMES, match_shape_keys

from .. import strings
from .base import report_unexpected
from ..properties import active_clip
from ..scene import rig as scene_rig
from ..scene import retarget as scene_retarget
from ..scene.props import head_target, rig_settings, target_settings


def _target(context: bpy.types.Context) -> bpy.types.Object | None:
    target = rig_settings(context.scene).target
    return target if target is not None and target.type == "MESH" and target.data.shape_keys else None


def auto_map(target: bpy.types.Object) -> tuple[int, list[str]]:
    """Fill the target's mapping with one row per ARKit shape; returns (matched count, unused target keys)."""
    names = [k.name for k in target.data.shape_keys.key_blocks]
    match = match_shape_keys(names, ARKIT52_NAMES)
    mapping = target_settings(target).mapping
    mapping.clear()
    for arkit in ARKIT52_NAMES:
        row = mapping.add()
        row.arkit_name = arkit
        row.target_key = match.mapping[arkit] or ""
    return len(match.matched), match.unmatched_targets


class IL_OT_auto_map(bpy.types.Operator):
    bl_idname = "infinite_landmarks.auto_map"
    bl_label = strings.OP_AUTO_MAP
    bl_description = strings.OP_AUTO_MAP_DESC
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if _target(context) is None:
            cls.poll_message_set(strings.POLL_NO_TARGET)
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        target = _target(context)
        matched, unused = auto_map(target)
        if not matched:
            self.report({"WARNING"}, strings.AUTO_MAP_NONE.format(target=target.name))
            return {"FINISHED"}
        text = strings.AUTO_MAPPED.format(matched=matched, total=len(ARKIT52_NAMES), target=target.name)
        if unused:  # name a few: the report is one line
            keys = ", ".join(unused[:10]) + (" ..." if len(unused) > 10 else "")
            text += strings.AUTO_MAPPED_UNUSED.format(keys=keys)
        self.report({"INFO"}, text)
        return {"FINISHED"}


class IL_OT_mapping_add(bpy.types.Operator):
    bl_idname = "infinite_landmarks.mapping_add"
    bl_label = strings.OP_MAP_ADD
    bl_description = strings.OP_MAP_ADD_DESC
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _target(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = target_settings(_target(context))
        current = settings.mapping[settings.mapping_index] if 0 <= settings.mapping_index < len(settings.mapping) \
            else None
        row = settings.mapping.add()
        row.arkit_name = current.arkit_name if current is not None else ARKIT52_NAMES[0]
        settings.mapping_index = len(settings.mapping) - 1
        return {"FINISHED"}


class IL_OT_mapping_remove(bpy.types.Operator):
    bl_idname = "infinite_landmarks.mapping_remove"
    bl_label = strings.OP_MAP_REMOVE
    bl_description = strings.OP_MAP_REMOVE_DESC
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        target = _target(context)
        return target is not None and len(target_settings(target).mapping) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = target_settings(_target(context))
        if 0 <= settings.mapping_index < len(settings.mapping):
            settings.mapping.remove(settings.mapping_index)
            settings.mapping_index = min(settings.mapping_index, len(settings.mapping) - 1)
        return {"FINISHED"}


class IL_OT_retarget(bpy.types.Operator):
    bl_idname = "infinite_landmarks.retarget"
    bl_label = strings.OP_RETARGET
    bl_description = strings.OP_RETARGET_DESC
    bl_options = {"REGISTER", "UNDO"}

    bake: BoolProperty(name=strings.PROP_BAKE, description=strings.PROP_BAKE_DESC, default=False)

    @classmethod
    def description(cls, context: bpy.types.Context, properties) -> str:  # noqa: ANN001
        return strings.OP_BAKE_DESC if properties.bake else strings.OP_RETARGET_DESC

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        clip = active_clip(context)
        if clip is None or scene_rig.find_rig(clip.name) is None:
            cls.poll_message_set(strings.POLL_NO_RIG)
            return False
        props = rig_settings(context.scene)
        if _target(context) is None and props.head_object is None:
            cls.poll_message_set(strings.POLL_NO_TARGET)
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        clip = active_clip(context)
        props = rig_settings(context.scene)
        target = _target(context)
        if target is not None and not len(target_settings(target).mapping):
            auto_map(target)  # first use: start from the automatic matching
        mapping = target_settings(target).mapping if target is not None else {}
        try:
            report = scene_retarget.retarget(scene_rig.find_rig(clip.name), target, mapping,
                                             head_target=head_target(props), bake=self.bake)
        except scene_retarget.RetargetError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except Exception as exc:  # noqa: BLE001 - a bug is reported, never raised into Blender's UI
            report_unexpected(self, exc)
            return {"CANCELLED"}
        self.report({"WARNING"} if report.missing_keys else {"INFO"}, str(report))
        return {"FINISHED"}


CLASSES = (IL_OT_auto_map, IL_OT_mapping_add, IL_OT_mapping_remove, IL_OT_retarget)
