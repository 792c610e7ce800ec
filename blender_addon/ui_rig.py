"""Sidebar panels for the rig and retargeting, in the same "Landmarks" tab as tracking (Movie Clip editor and 3D
viewport): Build / Clear Rig, rig options, overlay toggles, the retarget target, its editable mapping list, and
Drive / Bake."""
from __future__ import annotations

import bpy

from . import strings
from .operators.retarget import IL_OT_auto_map, IL_OT_mapping_add, IL_OT_mapping_remove, IL_OT_retarget
from .operators.rig import IL_OT_build_rig, IL_OT_clear_rig
from .properties import active_clip
from .scene.props import rig_settings, target_settings
from .scene.rig import find_rig

PANEL_CATEGORY = strings.PANEL_CATEGORY


class IL_UL_mapping(bpy.types.UIList):
    """One row per mapping pair: the ARKit name, and the target key picked from the target's shape keys."""

    bl_idname = "IL_UL_mapping"

    def draw_item(self, context, layout, data, item, icon, active_data, active_property,  # noqa: ANN001, PLR0913
                  index=0, flt_flag=0):
        target = data.id_data  # the Object owning the mapping
        key = target.data.shape_keys if target.type == "MESH" else None
        row = layout.row(align=True)
        split = row.split(factor=0.45, align=True)
        split.prop(item, "arkit_name", text="", emboss=False)
        if key is not None:
            split.prop_search(item, "target_key", key, "key_blocks", text="",
                              icon="SHAPEKEY_DATA" if item.target_key else "BLANK1")
        else:
            split.prop(item, "target_key", text="")


class _RigPanel:
    bl_region_type = "UI"
    bl_category = PANEL_CATEGORY
    bl_label = strings.PANEL_RIG
    bl_order = 10

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        props = rig_settings(context.scene)

        col = layout.column()
        col.prop(props, "pose_mode")
        col.prop(props, "sensor_width_mm")
        col.prop(props, "animated_focal")
        col.prop(props, "identity_modes")
        col.prop(props, "smoothing")
        col.prop(props, "combine")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator(IL_OT_build_rig.bl_idname, icon="OUTLINER_OB_ARMATURE")
        row.operator(IL_OT_clear_rig.bl_idname, text="", icon="TRASH")

        col = layout.column(heading=strings.UI_OVERLAY)
        col.prop(props, "show_landmarks")
        col.prop(props, "show_points_3d")
        col.prop(props, "point_size")


class _RetargetPanel:
    bl_region_type = "UI"
    bl_category = PANEL_CATEGORY
    bl_label = strings.PANEL_RETARGET
    bl_order = 20
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        clip = active_clip(context)
        return clip is not None and find_rig(clip.name) is not None

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = rig_settings(context.scene)
        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(props, "target")
        col.prop(props, "head_object")
        if props.head_object is not None and props.head_object.type == "ARMATURE":
            col.prop_search(props, "head_bone", props.head_object.data, "bones")

        target = props.target
        if target is not None:
            settings = target_settings(target)
            layout.operator(IL_OT_auto_map.bl_idname, icon="LINKED")
            row = layout.row()
            row.template_list(IL_UL_mapping.bl_idname, "", settings, "mapping", settings, "mapping_index", rows=8)
            buttons = row.column(align=True)
            buttons.operator(IL_OT_mapping_add.bl_idname, text="", icon="ADD")
            buttons.operator(IL_OT_mapping_remove.bl_idname, text="", icon="REMOVE")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator(IL_OT_retarget.bl_idname, text=strings.OP_RETARGET, icon="DRIVER").bake = False
        row.operator(IL_OT_retarget.bl_idname, text=strings.OP_BAKE, icon="KEYINGSET").bake = True


class IL_PT_rig_clip(_RigPanel, bpy.types.Panel):
    bl_space_type = "CLIP_EDITOR"
    bl_idname = "IL_PT_rig_clip"


class IL_PT_rig_view3d(_RigPanel, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_idname = "IL_PT_rig_view3d"


class IL_PT_retarget_clip(_RetargetPanel, bpy.types.Panel):
    bl_space_type = "CLIP_EDITOR"
    bl_idname = "IL_PT_retarget_clip"


class IL_PT_retarget_view3d(_RetargetPanel, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_idname = "IL_PT_retarget_view3d"


CLASSES = (IL_UL_mapping, IL_PT_rig_clip, IL_PT_rig_view3d, IL_PT_retarget_clip, IL_PT_retarget_view3d)
