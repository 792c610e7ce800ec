"""Sidebar (N-panel) UI in the Movie Clip editor and the 3D viewport: tracking settings, Track button, status.

Both editors get the same "Landmarks" tab. Tracking is `bl_order` 0; the rig and retarget panels (their own
modules) join the tab with `bl_category = ui.PANEL_CATEGORY` and a higher `bl_order`.
"""
from __future__ import annotations

import bpy

from . import strings, tracking
from .operators.track import IL_OT_clear_tracking, IL_OT_track, is_running
from .properties import CUSTOM_LAYOUT, active_clip, scene_settings

PANEL_CATEGORY = strings.PANEL_CATEGORY


class _TrackingPanel:
    bl_region_type = "UI"
    bl_category = PANEL_CATEGORY
    bl_label = strings.PANEL_TRACKING
    bl_order = 0

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        props = scene_settings(context.scene)
        clip = active_clip(context)

        layout.prop(props, "clip")
        if props.clip is None and clip is not None:
            layout.label(text=strings.UI_USING_CLIP.format(clip=clip.name), icon="SEQUENCE")

        col = layout.column()
        col.prop(props, "layout")
        if props.layout == CUSTOM_LAYOUT:
            col.prop(props, "layout_path")
        col.prop(props, "semantics")
        col.prop(props, "model")
        col.prop(props, "model_path")
        col.prop(props, "smoothing", slider=True)
        col.prop(props, "mirror")
        col.prop(props, "threshold", slider=True)
        col.prop(props, "write_markers")

        col = layout.column(heading=strings.UI_FRAMES)
        col.prop(props, "use_frame_range")
        sub = col.column(align=True)
        sub.active = props.use_frame_range
        sub.prop(props, "frame_start")
        sub.prop(props, "frame_end")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator(IL_OT_track.bl_idname, icon="TRACKING_FORWARDS")
        row.operator(IL_OT_clear_tracking.bl_idname, text="", icon="TRASH")

        if is_running():
            layout.progress(factor=props.progress, text=props.status or strings.UI_RUNNING)
            layout.label(text=strings.UI_ESC_TO_CANCEL, icon="INFO")
        elif props.status:
            layout.label(text=props.status, icon="INFO")
        self._draw_results(layout, clip)

    @staticmethod
    def _draw_results(layout: bpy.types.UILayout, clip: bpy.types.MovieClip | None) -> None:
        stored = tracking.stored_summary(clip) if clip is not None else None
        if stored is None:
            return
        box = layout.box()
        col = box.column(align=True)
        col.label(text=strings.UI_RESULTS.format(clip=clip.name), icon="CHECKMARK")
        col.label(text=tracking.summary(stored))
        col.label(text=strings.UI_RESULTS_SETUP.format(layout=stored.layout, points=stored.num_points,
                                                       semantics=stored.semantics))
        if stored.first_frame is not None:
            col.label(text=strings.UI_RESULTS_RANGE.format(start=tracking.clip_to_scene_frame(clip, stored.first_frame),
                                                           end=tracking.clip_to_scene_frame(clip, stored.last_frame)))
        if stored.faces_found:
            col.label(text=strings.UI_RESULTS_FOCAL.format(mm=stored.focal_mm))


class IL_PT_tracking_clip(_TrackingPanel, bpy.types.Panel):
    bl_space_type = "CLIP_EDITOR"
    bl_idname = "IL_PT_tracking_clip"


class IL_PT_tracking_view3d(_TrackingPanel, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_idname = "IL_PT_tracking_view3d"


CLASSES = (IL_PT_tracking_clip, IL_PT_tracking_view3d)
