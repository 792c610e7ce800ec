"""Build Rig and Clear Rig: thin glue around `scene.rig` (the batch CLI calls the same functions)."""
from __future__ import annotations


import bpy

from .. import strings, tracking
from .base import report_unexpected
from ..properties import active_clip
from ..scene import rig as scene_rig
from ..scene.props import rig_settings


class IL_OT_build_rig(bpy.types.Operator):
    bl_idname = "infinite_landmarks.build_rig"
    bl_label = strings.OP_BUILD_RIG
    bl_description = strings.OP_BUILD_RIG_DESC
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        clip = active_clip(context)
        if clip is None or tracking.stored_summary(clip) is None:
            cls.poll_message_set(strings.POLL_NO_TRACKING)
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        clip = active_clip(context)
        try:
            rig = scene_rig.build_rig(context.scene, clip, tracking.load_results(clip), rig_settings(context.scene))
        except ValueError as exc:  # no tracking, no face, bad settings: the message says which
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except Exception as exc:  # noqa: BLE001 - a bug is reported, never raised into Blender's UI
            report_unexpected(self, exc)
            return {"CANCELLED"}
        self.report({"INFO"}, strings.RIG_BUILT.format(clip=clip.name, frames=len(rig.frames),
                                                       mm=rig.camera.data.lens, seconds=rig.solve.seconds))
        return {"FINISHED"}


class IL_OT_clear_rig(bpy.types.Operator):
    bl_idname = "infinite_landmarks.clear_rig"
    bl_label = strings.OP_CLEAR_RIG
    bl_description = strings.OP_CLEAR_RIG_DESC
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        clip = active_clip(context)
        return clip is not None and scene_rig.find_rig(clip.name) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        clip = active_clip(context)
        count = scene_rig.clear_rig(clip.name)
        if count:
            self.report({"INFO"}, strings.RIG_CLEARED.format(count=count, clip=clip.name))
        else:
            self.report({"WARNING"}, strings.RIG_NOTHING_TO_CLEAR.format(clip=clip.name))
        return {"FINISHED"}


CLASSES = (IL_OT_build_rig, IL_OT_clear_rig)
