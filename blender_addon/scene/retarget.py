"""Retarget a built rig onto another character: expression weights onto its shape keys, head motion onto an
object or a bone.

`retarget(rig, target_object, mapping, head_target, bake)` is what the operators and the batch CLI call.

- Shape keys: `mapping` pairs ARKit names (the rig's shape keys) with the target's shape-key names
  (`core.arkit.match_shape_keys` proposes one). Several ARKit names may feed one target key (summed).
  Live (`bake=False`): a driver per target key reads the rig's shape keys (rebuilding the rig replaces them:
  retarget again afterwards; the dangling drivers are replaced). Baked: the weights are written as keys into an
  action `IL_<clip>_<target>` on the target's Key, which survives rebuilding the rig.
- Head motion: the rig head's motion relative to the shot's first face frame (a rigid motion in the rig's world),
  applied about the target's own origin (or bone head), i.e. same rotation, same translation. Live: two
  constraints (Copy Location with offset, Copy Rotation "before original") on the object or pose bone, which
  needs a rig built with a moving head. Baked (or a moving-camera rig): keys on the object or on the pose bone,
  converted into that bone's rest frame with `Object.convert_space`, in an action `IL_<clip>_<object or bone>`.

A target whose shape keys match nothing changes nothing and raises `RetargetError` with a message saying so.
A user action already on a target is never deleted: it moves to an NLA track so it keeps playing underneath.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import bpy
import mathutils
import numpy as np

from core.retarget import pivot_delta

from .. import strings
from . import keyframes
from .rig import OWNER_PROP, ROLE_PROP, ROLE_RETARGET, RigObjects, find_rig, is_owned

TARGET_PROP = "infinite_landmarks_target"   # on baked actions: "<kind>:<target name>", to replace them on re-runs
CONSTRAINT_PREFIX = "IL "                   # our constraints' names, to find and replace them
PREVIOUS_TRACK = "IL previous action"       # NLA track that keeps a user's displaced action playing
REST_PROP = "infinite_landmarks_rest"       # on a head target: its transform before we first moved it


class RetargetError(ValueError):
    """Retargeting cannot start; the message says why and nothing was changed."""


@dataclass
class RetargetReport:
    shape_keys: list[str] = field(default_factory=list)    # target keys driven or baked
    missing_keys: list[str] = field(default_factory=list)  # mapping entries naming keys the target lacks
    head: str = ""                                          # what received head motion ("" for none)
    actions: list[str] = field(default_factory=list)       # actions written
    notes: list[str] = field(default_factory=list)         # things the user should know
    target: str = ""
    baked: bool = False

    def __str__(self) -> str:
        """One line for the operator report and the command line."""
        text = strings.RETARGETED.format(mode=strings.MODE_BAKED if self.baked else strings.MODE_DRIVEN,
                                         count=len(self.shape_keys), target=self.target,
                                         head=strings.RETARGET_HEAD.format(head=self.head) if self.head else "")
        if self.missing_keys:
            text += ". " + strings.RETARGET_MISSING.format(target=self.target, keys=", ".join(self.missing_keys))
        return "; ".join([text] + self.notes)


# --------------------------------------------------------------------------------------------------------------
# Inputs


def mapping_pairs(mapping: Any) -> list[tuple[str, str]]:
    """(ARKit name, target key) pairs from a dict, pairs, or items with `arkit_name` / `target_key` (the
    add-on's CollectionProperty); entries without a target key are dropped."""
    if isinstance(mapping, dict):
        items = list(mapping.items())
    else:
        items = [(getattr(m, "arkit_name", None), getattr(m, "target_key", None)) if not isinstance(m, tuple) else m
                 for m in mapping]
    return [(str(a), str(t)) for a, t in items if a and t]


def _armature_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The armature deforming `obj` (an armature itself, its Armature modifier's object, or its parent)."""
    if obj is None:
        return None
    if obj.type == "ARMATURE":
        return obj
    for modifier in getattr(obj, "modifiers", []):
        if modifier.type == "ARMATURE" and modifier.object is not None:
            return modifier.object
    return obj.parent if obj.parent is not None and obj.parent.type == "ARMATURE" else None


def resolve_head_target(target_object: bpy.types.Object | None, head_target: Any
                        ) -> tuple[bpy.types.Object, bpy.types.PoseBone | None] | None:
    """(object, pose bone or None) for `head_target`: an Object, a bone name of the target's armature, or an
    (armature object, bone name) pair. None means no head motion."""
    if head_target is None or head_target == "":
        return None
    if isinstance(head_target, bpy.types.Object):
        return head_target, None
    if isinstance(head_target, tuple):
        armature, bone = head_target
    else:
        armature, bone = _armature_of(target_object), str(head_target)
    if armature is None or armature.type != "ARMATURE":
        raise RetargetError(strings.ERR_HEAD_NO_ARMATURE.format(bone=bone, target=getattr(target_object, "name", "?")))
    pose_bone = armature.pose.bones.get(bone)
    if pose_bone is None:
        raise RetargetError(strings.ERR_HEAD_NO_BONE.format(bone=bone, armature=armature.name))
    return armature, pose_bone


# --------------------------------------------------------------------------------------------------------------
# Reading the rig


def rig_weights(rig: RigObjects, names: Iterable[str], frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame values of the rig's shape keys `names` at `frames`."""
    key = rig.shape_keys
    out = {}
    for name in names:
        path = f'key_blocks["{name}"].value'
        out[name] = keyframes.evaluate_channels(key, path, frames, [key.key_blocks[name].value])[:, 0]
    return out


def _object_matrices(obj: bpy.types.Object, frames: np.ndarray) -> np.ndarray:
    """World matrices (F, 4, 4) of an unparented rig object from its keyed location/rotation (or its current
    transform where unkeyed), without changing the scene frame."""
    locations = keyframes.evaluate_channels(obj, "location", frames, obj.location)
    rotations = keyframes.evaluate_channels(obj, "rotation_euler", frames, obj.rotation_euler)
    scale = mathutils.Vector(obj.scale)
    out = np.empty((len(frames), 4, 4))
    for i, (loc, rot) in enumerate(zip(locations, rotations)):
        euler = mathutils.Euler(rot, obj.rotation_euler.order)
        out[i] = np.array(mathutils.Matrix.LocRotScale(mathutils.Vector(loc), euler, scale))
    return out


def head_motion(rig: RigObjects, frames: np.ndarray) -> np.ndarray:
    """(F, 4, 4) rigid motion of the head relative to the first frame, in the rig's world, whichever of camera
    or head the rig animates: D_f = C_0 C_f^-1 H_f H_0^-1 (C camera, H head world matrices; D_0 = identity)."""
    cameras = _object_matrices(rig.camera, frames)
    heads = _object_matrices(rig.head, frames)
    motion = cameras[0][None] @ np.linalg.inv(cameras) @ heads
    return motion @ np.linalg.inv(motion[0])[None]


def _rig_moves_head(rig: RigObjects) -> bool:
    return any(fc.data_path == "location" for fc in keyframes.id_fcurves(rig.head))


# --------------------------------------------------------------------------------------------------------------
# Writing


def _replace_action(id_data: bpy.types.ID, name: str, clip_name: str, kind: str, report: RetargetReport
                    ) -> bpy.types.Action:
    """Assign a fresh tagged action to `id_data`, removing our previous one for the same target; a user's
    action is moved to an NLA track (kept and still playing underneath) instead of being dropped."""
    target_tag = f"{kind}:{name}"
    for action in [a for a in bpy.data.actions if is_owned(a, clip_name, ROLE_RETARGET)
                   and a.get(TARGET_PROP) == target_tag]:
        bpy.data.actions.remove(action)
    anim = id_data.animation_data or id_data.animation_data_create()
    previous = anim.action
    if previous is not None and not is_owned(previous):
        track = anim.nla_tracks.get(PREVIOUS_TRACK) or anim.nla_tracks.new()
        track.name = PREVIOUS_TRACK
        start = int(previous.frame_range[0])
        track.strips.new(previous.name, start, previous)
        anim.action = None
        report.notes.append(strings.NOTE_ACTION_MOVED.format(action=previous.name, track=PREVIOUS_TRACK,
                                                             target=id_data.name))
    action = keyframes.assign_new_action(id_data, f"IL_{clip_name}_{name}",
                                         {OWNER_PROP: clip_name, ROLE_PROP: ROLE_RETARGET, TARGET_PROP: target_tag})
    report.actions.append(action.name)
    return action


def _remove_our_drivers(key: bpy.types.Key, data_paths: set[str]) -> None:
    """Drop drivers on `data_paths` that read a rig's shape keys (ours, or left dangling by a rebuilt rig);
    drivers of the user's stay."""
    anim = key.animation_data
    if anim is None:
        return
    for driver in list(anim.drivers):
        if driver.data_path not in data_paths:
            continue
        sources = [t.id for v in driver.driver.variables for t in v.targets]
        if sources and all(s is None or is_owned(s) for s in sources):
            anim.drivers.remove(driver)


def _drive_shape_keys(rig: RigObjects, key: bpy.types.Key, groups: dict[str, list[str]]) -> None:
    _remove_our_drivers(key, {f'key_blocks["{k}"].value' for k in groups})
    for target_key, arkit_names in groups.items():
        driver = key.key_blocks[target_key].driver_add("value").driver
        driver.type = "SUM"  # several ARKit shapes may feed one target key
        for i, name in enumerate(arkit_names):
            variable = driver.variables.new()
            variable.name = f"w{i}"
            variable.type = "SINGLE_PROP"
            variable.targets[0].id_type = "KEY"
            variable.targets[0].id = rig.shape_keys
            variable.targets[0].data_path = f'key_blocks["{name}"].value'


def _bake_shape_keys(rig: RigObjects, target: bpy.types.Object, groups: dict[str, list[str]],
                     report: RetargetReport) -> None:
    key = target.data.shape_keys
    frames = rig.frames.astype(float)
    weights = rig_weights(rig, {n for names in groups.values() for n in names}, frames)
    _remove_our_drivers(key, {f'key_blocks["{k}"].value' for k in groups})
    _replace_action(key, target.name, rig.clip_name, "shapes", report)
    for target_key, arkit_names in groups.items():
        values = np.sum([weights[n] for n in arkit_names], axis=0)
        keyframes.write_keys(keyframes.ensure_fcurve(key, f'key_blocks["{target_key}"].value'), frames, values)


def _remove_our_constraints(constraints) -> None:  # noqa: ANN001 - ObjectConstraints or PoseBoneConstraints
    for constraint in [c for c in constraints if c.name.startswith(CONSTRAINT_PREFIX)]:
        constraints.remove(constraint)


def _reset_head_target(owner: bpy.types.Object, pose_bone: bpy.types.PoseBone | None) -> np.ndarray:
    """Undo our previous head retargeting of this object or bone and return its rest basis matrix (4, 4).

    The rest basis (the transform before we first moved it) is remembered in a custom property, because once
    our constraints or baked keys have moved it, its current transform no longer is the rest one.
    """
    holder = pose_bone if pose_bone is not None else owner
    _remove_our_constraints(holder.constraints)
    name = pose_bone.name if pose_bone is not None else owner.name
    anim = owner.animation_data
    if anim is not None and anim.action is not None and is_owned(anim.action, role=ROLE_RETARGET) \
            and anim.action.get(TARGET_PROP) == f"head:{name}":
        bpy.data.actions.remove(anim.action)  # our previous bake of this target: replaced by what follows
    stored = holder.get(REST_PROP)
    if stored is None:
        rest = np.array(holder.matrix_basis)
        holder[REST_PROP] = rest.reshape(-1).tolist()
    else:
        rest = np.asarray(stored, float).reshape(4, 4)
        holder.matrix_basis = mathutils.Matrix(rest.tolist())
    return rest


def _drive_head(rig: RigObjects, owner: bpy.types.Object, pose_bone: bpy.types.PoseBone | None) -> None:
    _reset_head_target(owner, pose_bone)
    constraints = pose_bone.constraints if pose_bone is not None else owner.constraints
    location = constraints.new("COPY_LOCATION")
    location.name = CONSTRAINT_PREFIX + "head location"
    location.target = rig.head
    location.use_offset = True  # own location + the rig head's displacement (zero on the first frame)
    rotation = constraints.new("COPY_ROTATION")
    rotation.name = CONSTRAINT_PREFIX + "head rotation"
    rotation.target = rig.head
    rotation.mix_mode = "BEFORE"  # the rig head's rotation as if it were a parent: turns about the own origin
    for constraint in (location, rotation):
        constraint.owner_space = constraint.target_space = "WORLD"


def _rotation_channels(rotation_mode: str, matrices: list[mathutils.Matrix]) -> tuple[str, np.ndarray]:
    """(data path, values (F, C)) of rotations in a given rotation mode, Eulers and quaternions kept continuous."""
    if rotation_mode == "QUATERNION":
        quats = [m.to_quaternion() for m in matrices]
        for a, b in zip(quats, quats[1:]):
            b.make_compatible(a)
        return "rotation_quaternion", np.array([tuple(q) for q in quats])
    if rotation_mode == "AXIS_ANGLE":
        values = []
        for m in matrices:
            axis, angle = m.to_quaternion().to_axis_angle()
            values.append((angle, *axis))
        return "rotation_axis_angle", np.array(values)
    eulers, previous = [], None
    for m in matrices:
        previous = m.to_euler(rotation_mode, previous) if previous is not None else m.to_euler(rotation_mode)
        eulers.append(tuple(previous))
    return "rotation_euler", np.array(eulers)


def _bake_head(rig: RigObjects, owner: bpy.types.Object, pose_bone: bpy.types.PoseBone | None,
               report: RetargetReport) -> None:
    frames = rig.frames.astype(float)
    motion = head_motion(rig, frames)
    rest = _reset_head_target(owner, pose_bone)
    if pose_bone is None:
        # basis_f = P^-1 D'_f P rest, with P the parent part of the world matrix (static during the shot).
        parent = (np.array(owner.parent.matrix_world) @ np.array(owner.matrix_parent_inverse)
                  if owner.parent is not None else np.eye(4))
        world = parent @ rest
        bases = [mathutils.Matrix((np.linalg.inv(parent) @ pivot_delta(d, world[:3, 3]) @ world).tolist())
                 for d in motion]
        prefix, name, rotation_mode = "", owner.name, owner.rotation_mode
    else:
        # The bone at rest in armature space, moved in world space, converted back into its rest (local) frame.
        armature_world = np.array(owner.matrix_world)
        bone_pose = owner.convert_space(pose_bone=pose_bone, matrix=mathutils.Matrix(rest.tolist()),
                                        from_space="LOCAL", to_space="POSE")
        bone_world = armature_world @ np.array(bone_pose)
        bases = []
        for d in motion:
            moved = np.linalg.inv(armature_world) @ pivot_delta(d, bone_world[:3, 3]) @ bone_world
            bases.append(owner.convert_space(pose_bone=pose_bone, matrix=mathutils.Matrix(moved.tolist()),
                                             from_space="POSE", to_space="LOCAL"))
        prefix, name, rotation_mode = f'pose.bones["{pose_bone.name}"].', pose_bone.name, pose_bone.rotation_mode
    _replace_action(owner, name, rig.clip_name, "head", report)
    locations = np.array([tuple(m.to_translation()) for m in bases])
    rotation_path, rotations = _rotation_channels(rotation_mode, [m.to_3x3().normalized() for m in bases])
    group = pose_bone.name if pose_bone is not None else "Object Transforms"
    keyframes.key_channels(owner, prefix + "location", frames, locations, group=group)
    keyframes.key_channels(owner, prefix + rotation_path, frames, rotations, group=group)


# --------------------------------------------------------------------------------------------------------------
# The entry point


def retarget(rig: RigObjects | str, target_object: bpy.types.Object | None, mapping: Any,
             head_target: Any = None, bake: bool = False) -> RetargetReport:
    """Drive (bake=False) or bake the rig's expressions onto `target_object`'s shape keys via `mapping`, and the
    head motion onto `head_target` (see the module docstring). Raises RetargetError, changing nothing, when there
    is nothing to retarget."""
    if isinstance(rig, str):
        found = find_rig(rig)
        if found is None:
            raise RetargetError(strings.ERR_NO_RIG.format(clip=rig))
        rig = found
    if rig.frames.size == 0:
        raise RetargetError(strings.ERR_RIG_NO_FRAMES.format(clip=rig.clip_name))
    report = RetargetReport(target=target_object.name if target_object is not None else "", baked=bake)
    rig_keys = rig.shape_keys.key_blocks

    groups: dict[str, list[str]] = {}
    if target_object is not None:
        key = getattr(target_object.data, "shape_keys", None)
        target_keys = key.key_blocks if key is not None else {}
        for arkit, target_key in mapping_pairs(mapping):
            if arkit not in rig_keys:
                continue
            if target_key not in target_keys or target_key == key.reference_key.name:
                report.missing_keys.append(target_key)
                continue
            groups.setdefault(target_key, []).append(arkit)
        if not groups:
            message = strings.ERR_TARGET_NO_KEYS if key is None else strings.ERR_TARGET_NO_MATCH
            raise RetargetError(message.format(target=target_object.name))
    head = resolve_head_target(target_object, head_target)
    if not groups and head is None:
        raise RetargetError(strings.ERR_NOTHING_TO_RETARGET)

    if groups:
        if bake:
            _bake_shape_keys(rig, target_object, groups, report)
        else:
            _drive_shape_keys(rig, target_object.data.shape_keys, groups)
        report.shape_keys = sorted(groups)
    if head is not None:
        owner, pose_bone = head
        if bake or not _rig_moves_head(rig):
            if not bake:
                report.notes.append(strings.NOTE_HEAD_BAKED)
            _bake_head(rig, owner, pose_bone, report)
        else:
            _drive_head(rig, owner, pose_bone)
        report.head = f"{owner.name}:{pose_bone.name}" if pose_bone is not None else owner.name
    return report
