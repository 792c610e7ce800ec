"""Keyframing that works on Blender 4.2 to 5.x: one place that knows about legacy and slotted actions.

Blender 4.4 introduced slotted (layered) actions, where an action's F-curves live in a channelbag per slot
(`action.layers[0].strips[0].channelbag(slot)`); 5.0 removed the legacy `Action.fcurves`. Everything in the
add-on that reads or writes F-curves goes through `id_fcurves` / `ensure_fcurve` here, and keys are written in
bulk (`keyframe_points.add` + `foreach_set`), which is orders of magnitude faster than `keyframe_insert`.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import bpy
import numpy as np

# Dense per-frame samples: linear interpolation never overshoots between two solved frames (motion blur).
_LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


def is_slotted(action: bpy.types.Action) -> bool:
    """True for the slotted action API (Blender 4.4+)."""
    return hasattr(action, "slots") and hasattr(action, "layers")


def _assigned_slot(id_data: bpy.types.ID):
    anim = id_data.animation_data
    return getattr(anim, "action_slot", None) if anim else None


def id_fcurves(id_data: bpy.types.ID) -> list[bpy.types.FCurve]:
    """The F-curves of the action assigned to `id_data` (empty if none), for legacy and slotted actions."""
    anim = getattr(id_data, "animation_data", None)
    action = anim.action if anim else None
    if action is None:
        return []
    if not is_slotted(action):
        return list(action.fcurves)
    slot = anim.action_slot
    if slot is None:
        return []
    for layer in action.layers:
        for strip in layer.strips:
            channelbag = strip.channelbag(slot)
            if channelbag is not None:
                return list(channelbag.fcurves)
    return []


def assign_new_action(id_data: bpy.types.ID, name: str, tags: dict[str, str] | None = None) -> bpy.types.Action:
    """Create an action called `name`, tag it with custom properties and assign it (with a slot) to `id_data`.

    An action of that name that already exists is left alone (Blender adds `.001`); the caller decides what
    may be replaced.
    """
    action = bpy.data.actions.new(name)
    for key, value in (tags or {}).items():
        action[key] = value
    anim = id_data.animation_data or id_data.animation_data_create()
    anim.action = action
    if is_slotted(action):
        slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        anim.action_slot = slot
        action.layers.new("Layer").strips.new(type="KEYFRAME")
    return action


def ensure_fcurve(id_data: bpy.types.ID, data_path: str, index: int = 0, group: str = "") -> bpy.types.FCurve:
    """The F-curve for (data_path, index) in `id_data`'s assigned action, created if missing."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        raise ValueError(f"{id_data.name} has no action: call assign_new_action first")
    action = anim.action
    if is_slotted(action):
        slot = anim.action_slot
        if slot is None:
            slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
            anim.action_slot = slot
        if not action.layers:
            action.layers.new("Layer")
        layer = action.layers[0]
        strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
        fcurves = strip.channelbag(slot, ensure=True).fcurves
    else:
        fcurves = action.fcurves
    fcurve = fcurves.find(data_path, index=index)
    if fcurve is None:
        if not is_slotted(action):
            fcurve = fcurves.new(data_path, index=index, action_group=group)
        elif group:
            try:  # `group_name` is newer than the slotted API itself; groups are cosmetic, so drop them if absent
                fcurve = fcurves.new(data_path, index=index, group_name=group)
            except TypeError:
                fcurve = fcurves.new(data_path, index=index)
        else:
            fcurve = fcurves.new(data_path, index=index)
    return fcurve


def write_keys(fcurve: bpy.types.FCurve, frames: Sequence[float], values: Sequence[float]) -> None:
    """Replace the keys of `fcurve` by (frame, value) pairs, in one bulk write, with linear interpolation."""
    frames = np.asarray(frames, np.float32).reshape(-1)
    values = np.asarray(values, np.float32).reshape(-1)
    if frames.shape != values.shape:
        raise ValueError(f"write_keys: {frames.size} frames for {values.size} values")
    points = fcurve.keyframe_points
    points.clear()
    points.add(frames.size)
    points.foreach_set("co", np.stack([frames, values], 1).reshape(-1))
    points.foreach_set("interpolation", np.full(frames.size, _LINEAR, np.int32))
    fcurve.update()


def key_channels(id_data: bpy.types.ID, data_path: str, frames: Sequence[float], values: np.ndarray,
                 group: str = "") -> None:
    """Key every component of a vector property: values (F, C) -> C F-curves `data_path[0..C-1]`."""
    values = np.asarray(values, float)
    values = values.reshape(len(frames), -1)
    for index in range(values.shape[1]):
        write_keys(ensure_fcurve(id_data, data_path, index, group), frames, values[:, index])


def evaluate_channels(id_data: bpy.types.ID, data_path: str, frames: Iterable[float], default: Sequence[float]
                      ) -> np.ndarray:
    """Evaluate the F-curves of `data_path` at `frames` -> (F, len(default)); unkeyed components keep `default`."""
    frames = list(frames)
    out = np.tile(np.asarray(default, float), (len(frames), 1))
    for fcurve in id_fcurves(id_data):
        if fcurve.data_path == data_path and fcurve.array_index < out.shape[1]:
            out[:, fcurve.array_index] = [fcurve.evaluate(f) for f in frames]
    return out


def keyed_frames(id_data: bpy.types.ID, data_path: str) -> list[float]:
    """Frames keyed on any F-curve of `data_path`, sorted."""
    frames: set[float] = set()
    for fcurve in id_fcurves(id_data):
        if fcurve.data_path == data_path:
            co = np.empty(2 * len(fcurve.keyframe_points), np.float32)
            fcurve.keyframe_points.foreach_get("co", co)
            frames.update(float(f) for f in co[0::2])
    return sorted(frames)
