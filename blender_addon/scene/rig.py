"""Build the face rig of a tracked clip: camera, ICT head with ARKit shape keys, head motion and expressions.

`build_rig(scene, clip, results, settings)` is the one function the operator and the batch CLI call. It

- makes a camera whose focal length (mm) and shift come from the predicted intrinsics (one robust value per
  shot, or animated for zooms), with the clip as its background, and sets the scene's resolution, frame range
  and camera to the clip's;
- solves the shot with `core.solve.solve_tracked`: the subject's identity (shared) and ICT expression weights (per
  frame, bounded least squares with temporal smoothing) from the predicted canonical 3D landmarks and, in
  canonical semantics, the 2D landmarks, with the head pose fitted to them;
- builds the ICT head (face, back of head, mouth, teeth, eyes; ICT's transparent helpers and alpha-card lashes
  are skipped) with the identity in the Basis and the 52 ARKit shapes as shape keys, in metres with
  `CANONICAL_TO_BLENDER` baked into the vertices (object scale stays 1);
- keys the head pose and the 52 weights on every frame with a face (frames without one get no key).

Pose convention (default "HEAD"): the camera is static at the pose of the shot's first frame with a face and
the head moves (`core.retarget.head_world_matrices`). Animators retarget head motion from the head, so it should
be on the head; a static camera also keeps the viewport, background and any scene set-up still. "CAMERA" is the
alternative: head fixed at the origin, camera animated (useful for matchmoving props to the face).

Everything made here is tagged `infinite_landmarks_owner = <clip name>` (and a role) and lives in the collection
`IL_<clip>`; building again first removes exactly the tagged data of that clip, never anything of the user's.
(Blender's Duplicate copies custom properties: to keep a copy of a rig object through rebuilds, delete its
`infinite_landmarks_owner` property.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import mathutils
import numpy as np

from core.arkit import ARKIT52_FROM_ICT, ARKIT52_NAMES, to_arkit52
from core.facemodel import FaceModel, load_facemodel
from core.geometry import CANONICAL_TO_BLENDER, focal_px_to_mm
from core.retarget import camera_world_matrices, head_world_matrices, robust_focal
from core.shot import Shot
from core.solve import DEFAULT_IDENTITY_MODES, DEFAULT_SMOOTHING, ShotSolve, solve_tracked

from .. import strings
from . import keyframes

OWNER_PROP = "infinite_landmarks_owner"   # clip name, on every ID the add-on creates
ROLE_PROP = "infinite_landmarks_role"     # ROLE_RIG or ROLE_RETARGET: rebuilding the rig keeps retarget bakes
PART_PROP = "infinite_landmarks_part"     # "camera" / "head" on the rig objects, so a saved rig can be found
ROLE_RIG = "rig"
ROLE_RETARGET = "retarget"

# ICT material -> our material. Not listed (skipped): M_LacrimalFluid, M_EyeBlend, M_EyeOcclusion (transparent
# helpers that need ICT's blending set-up) and M_EyeLashes (alpha-textured cards, opaque slabs without texture).
KEPT_MATERIALS: dict[str, str] = {
    "M_Face": "skin", "M_BackHead": "skin", "M_GumsTongue": "mouth", "M_Teeth": "teeth",
    "M_ScleraLeft": "eye", "M_ScleraRight": "eye", "M_IrisLeft": "iris", "M_IrisRight": "iris",
}
# name -> (base colour, roughness)
MATERIALS: dict[str, tuple[tuple[float, float, float, float], float]] = {
    "skin": ((0.80, 0.57, 0.47, 1.0), 0.55),
    "mouth": ((0.60, 0.22, 0.22, 1.0), 0.35),
    "teeth": ((0.90, 0.88, 0.80, 1.0), 0.25),
    "eye": ((0.92, 0.92, 0.90, 1.0), 0.10),
    "iris": ((0.18, 0.11, 0.06, 1.0), 0.10),
}


@dataclass
class RigSettings:
    """Options of `build_rig`; `from_props` reads them from the scene's rig property group."""

    sensor_width_mm: float = 36.0
    animated_focal: bool = False          # key the focal length per frame (zooms) instead of one shot value
    pose_mode: str = "HEAD"               # "HEAD": static camera, moving head; "CAMERA": static head, moving camera
    identity_modes: int = DEFAULT_IDENTITY_MODES
    smoothing: float = DEFAULT_SMOOTHING  # temporal smoothing of the expression solve
    combine: str = "mean"                 # browInnerUp / cheekPuff from ICT's halves: "mean" or "max"

    @classmethod
    def from_props(cls, props: Any) -> "RigSettings":
        defaults = cls()
        return cls(**{name: getattr(props, name, getattr(defaults, name)) for name in cls.__dataclass_fields__})


@dataclass
class RigObjects:
    """What `build_rig` made (and what `find_rig` finds again in a saved file)."""

    clip_name: str
    collection: bpy.types.Collection
    camera: bpy.types.Object
    head: bpy.types.Object
    frames: np.ndarray            # scene frames that were keyed (frames with a face)
    focal_px: float               # the focal length used for the static lens (pixels)
    solve: ShotSolve | None = None

    @property
    def shape_keys(self) -> bpy.types.Key:
        return self.head.data.shape_keys


def tag(id_data: bpy.types.ID, clip_name: str, role: str = ROLE_RIG) -> bpy.types.ID:
    id_data[OWNER_PROP] = clip_name
    id_data[ROLE_PROP] = role
    return id_data


def is_owned(id_data: bpy.types.ID, clip_name: str | None = None, role: str | None = None) -> bool:
    """True for data the add-on made (for `clip_name` and `role` when given)."""
    owner = id_data.get(OWNER_PROP)
    if owner is None or (clip_name is not None and owner != clip_name):
        return False
    return role is None or id_data.get(ROLE_PROP) == role


def _owned_collections():
    return (bpy.data.objects, bpy.data.meshes, bpy.data.cameras, bpy.data.materials, bpy.data.actions,
            bpy.data.collections)


def clear_rig(clip_name: str, role: str = ROLE_RIG) -> int:
    """Remove every ID tagged for `clip_name` with `role`; returns how many. User data is never touched."""
    removed = 0
    for collection in _owned_collections():  # objects first, so their data has no users left
        for id_data in [i for i in collection if is_owned(i, clip_name, role)]:
            collection.remove(id_data)
            removed += 1
    return removed


def find_rig(clip_name: str) -> RigObjects | None:
    """The rig previously built for `clip_name` (e.g. after reopening the file), or None."""
    parts = {obj.get(PART_PROP): obj for obj in bpy.data.objects if is_owned(obj, clip_name, ROLE_RIG)}
    collection = next((c for c in bpy.data.collections if is_owned(c, clip_name, ROLE_RIG)), None)
    if "camera" not in parts or "head" not in parts or collection is None:
        return None
    key = parts["head"].data.shape_keys
    frames = keyframes.keyed_frames(key, f'key_blocks["{ARKIT52_NAMES[0]}"].value') if key else []
    return RigObjects(clip_name=clip_name, collection=collection, camera=parts["camera"], head=parts["head"],
                      frames=np.asarray(frames, int), focal_px=float(parts["camera"].get("focal_px", 0.0)))


# --------------------------------------------------------------------------------------------------------------
# Pieces


def _material(name: str, clip_name: str) -> bpy.types.Material:
    colour, roughness = MATERIALS[name]
    material = tag(bpy.data.materials.new(f"IL_{clip_name}_{name}"), clip_name)
    if material.node_tree is None:  # Blender < 5.0 creates materials without nodes
        material.use_nodes = True
    bsdf = next((n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = colour
        bsdf.inputs["Roughness"].default_value = roughness
    material.diffuse_color = colour  # solid-mode viewport colour
    return material


def arkit_shape_deltas(model: FaceModel) -> np.ndarray:
    """(52, V, 3) canonical deltas of the ARKit shapes, in `ARKIT52_NAMES` order, from `ARKIT52_FROM_ICT`.

    ARKit's browInnerUp and cheekPuff are the sums of ICT's halves: with `to_arkit52`'s "mean" weight a
    symmetric pair (w, w) gives back exactly w (L + R). tongueOut has no ICT shape: a zero delta, kept so every
    ARKit name exists on the head.
    """
    index = {n: i for i, n in enumerate(model.expression_names)}
    deltas = np.zeros((len(ARKIT52_NAMES), model.num_vertices, 3), np.float32)
    for k, name in enumerate(ARKIT52_NAMES):
        for source in ARKIT52_FROM_ICT[name]:
            deltas[k] += model.expression_basis[index[source]]
    return deltas


def head_topology(model: FaceModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vertex ids kept (V',), polys (P', 4) re-indexed and -1 padded, poly mask over model.polys, material
    slot per kept poly) for the materials in KEPT_MATERIALS."""
    kept_names = [n for n in model.material_names if n in KEPT_MATERIALS]
    poly_mask = np.isin(model.poly_material, [model.material_names.index(n) for n in kept_names])
    polys = model.polys[poly_mask]
    vertex_ids = np.unique(polys[polys >= 0])
    remap = np.full(model.num_vertices, -1, np.int64)
    remap[vertex_ids] = np.arange(len(vertex_ids))
    polys = np.where(polys >= 0, remap[np.maximum(polys, 0)], -1)
    slot_names = list(dict.fromkeys(KEPT_MATERIALS.values()))
    slots = np.array([slot_names.index(KEPT_MATERIALS[model.material_names[m]])
                      for m in model.poly_material[poly_mask]], np.int32)
    return vertex_ids, polys, poly_mask, slots


def to_blender(points_cm: np.ndarray) -> np.ndarray:
    """Canonical points (..., 3) cm -> Blender (..., 3) m."""
    return np.asarray(points_cm, np.float64) @ CANONICAL_TO_BLENDER.T


def build_head_mesh(model: FaceModel, identity: np.ndarray | None, clip_name: str) -> bpy.types.Mesh:
    """The ICT head with `identity` in the Basis and the 52 ARKit shape keys (created on the mesh's first user)."""
    vertex_ids, polys, poly_mask, slots = head_topology(model)
    basis = to_blender(model.vertices(identity=identity)[vertex_ids]).astype(np.float32)
    sizes = np.where(polys[:, 3] >= 0, 4, 3)
    loops = polys[polys >= 0]  # row-major, so each poly's corners stay in order
    uv_loops = model.polys_uv[poly_mask]
    uv_loops = uv_loops[model.polys[poly_mask] >= 0]

    mesh = tag(bpy.data.meshes.new(f"IL_{clip_name}_head"), clip_name)
    mesh.vertices.add(len(basis))
    mesh.vertices.foreach_set("co", basis.reshape(-1))
    mesh.loops.add(len(loops))
    mesh.loops.foreach_set("vertex_index", loops.astype(np.int32))
    mesh.polygons.add(len(polys))
    mesh.polygons.foreach_set("loop_start", np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int32))
    mesh.polygons.foreach_set("material_index", slots)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(polys), bool))
    uv_layer = mesh.uv_layers.new(name="UVMap")
    uv_layer.uv.foreach_set("vector", model.uv[uv_loops].astype(np.float32).reshape(-1))
    mesh.update()
    mesh.validate(clean_customdata=False)
    for name in dict.fromkeys(KEPT_MATERIALS.values()):
        mesh.materials.append(_material(name, clip_name))
    return mesh


def add_shape_keys(obj: bpy.types.Object, model: FaceModel) -> None:
    """Basis + the 52 ARKit shape keys (absolute positions: Basis + delta) on a head built by build_head_mesh."""
    vertex_ids = head_topology(model)[0]
    count = len(obj.data.vertices)
    basis = np.empty(count * 3, np.float32)
    obj.data.vertices.foreach_get("co", basis)
    basis = basis.reshape(count, 3)
    obj.shape_key_add(name="Basis", from_mix=False)
    for name, delta in zip(ARKIT52_NAMES, arkit_shape_deltas(model)[:, vertex_ids]):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.data.foreach_set("co", (basis + to_blender(delta)).astype(np.float32).reshape(-1))
        block.slider_min, block.slider_max = 0.0, 1.0


def _set_matrix(obj: bpy.types.Object, matrix: np.ndarray) -> None:
    obj.matrix_world = mathutils.Matrix(matrix.tolist())


def _key_transforms(obj: bpy.types.Object, frames: np.ndarray, matrices: np.ndarray, action_name: str,
                    clip_name: str) -> None:
    """Key location + XYZ Euler rotation of `obj` from world matrices (F, 4, 4); Eulers kept continuous."""
    obj.rotation_mode = "XYZ"
    locations = matrices[:, :3, 3]
    eulers = np.empty((len(frames), 3))
    previous = None
    for i, m in enumerate(matrices):
        rotation = mathutils.Matrix(m[:3, :3].tolist())
        euler = rotation.to_euler("XYZ", previous) if previous is not None else rotation.to_euler("XYZ")
        eulers[i] = euler
        previous = euler
    keyframes.assign_new_action(obj, action_name, {OWNER_PROP: clip_name, ROLE_PROP: ROLE_RIG})
    keyframes.key_channels(obj, "location", frames, locations, group="Object Transforms")
    keyframes.key_channels(obj, "rotation_euler", frames, eulers, group="Object Transforms")


def principal_point_shift(cx: float, cy: float, width: int, height: int) -> tuple[float, float]:
    """Blender lens shift for an OpenCV principal point: shifts are fractions of the larger image side."""
    size = max(width, height)
    return (width / 2 - cx) / size, (cy - height / 2) / size


def camera_intrinsics(results: Shot, settings: RigSettings) -> np.ndarray:
    """(F, 3, 3) the rig camera's K on every frame: one robust focal length (or each frame's, animated) and the
    median principal point. The solve fits the head pose under it, so that the rig lands on the landmarks."""
    rows = results.face_rows
    K = np.broadcast_to(np.eye(3), (results.num_frames, 3, 3)).copy()
    focal = results.K[:, 0, 0] if settings.animated_focal else robust_focal(results.K[rows, 0, 0])
    K[:, 0, 0] = K[:, 1, 1] = focal
    K[:, 0, 2], K[:, 1, 2] = np.median(results.K[rows, 0, 2]), np.median(results.K[rows, 1, 2])
    return K


def _build_camera(clip: bpy.types.MovieClip, results: Shot, rows: np.ndarray, settings: RigSettings,
                  clip_name: str) -> tuple[bpy.types.Object, float]:
    width, height = results.width, results.height
    focals = results.K[:, 0, 0]
    focal_px = robust_focal(focals[rows])
    data = tag(bpy.data.cameras.new(f"IL_{clip_name}_camera"), clip_name)
    data.sensor_fit = "HORIZONTAL"  # the sensor width spans the image width, as focal_px_to_mm assumes
    data.sensor_width = settings.sensor_width_mm
    data.lens_unit = "MILLIMETERS"
    data.lens = focal_px_to_mm(focal_px, width, settings.sensor_width_mm)
    data.shift_x, data.shift_y = principal_point_shift(float(np.median(results.K[rows, 0, 2])),
                                                       float(np.median(results.K[rows, 1, 2])), width, height)
    data.clip_start, data.clip_end = 0.01, 100.0
    data.show_background_images = True
    background = data.background_images.new()
    background.source = "MOVIE_CLIP"
    background.clip = clip
    background.alpha = 1.0
    background.frame_method = "STRETCH"
    camera = tag(bpy.data.objects.new(f"IL_{clip_name}_Camera", data), clip_name)
    camera[PART_PROP] = "camera"
    camera["focal_px"] = focal_px
    if settings.animated_focal:
        keyframes.assign_new_action(data, f"IL_{clip_name}_rig_lens", {OWNER_PROP: clip_name, ROLE_PROP: ROLE_RIG})
        lens = [focal_px_to_mm(f, width, settings.sensor_width_mm) for f in focals[rows]]
        keyframes.key_channels(data, "lens", results.scene_frames[rows], np.asarray(lens)[:, None])
    return camera, focal_px


def solve_results(results: Shot, settings: RigSettings) -> ShotSolve:
    """Identity and per-frame expressions of the shot from its predicted landmarks (core.solve.solve_tracked)."""
    return solve_tracked(results.landmarks_3d, results.layout, results.usable, results.landmarks_2d,
                         camera_intrinsics(results, settings), results.R, results.t, results.semantics,
                         num_modes=settings.identity_modes, smoothing=settings.smoothing)


# --------------------------------------------------------------------------------------------------------------
# The entry point


def build_rig(scene: bpy.types.Scene | bpy.types.Context, clip: bpy.types.MovieClip, results: Shot,
              settings: RigSettings | Any | None = None) -> RigObjects:
    """Build (or rebuild) the rig of `clip` from its tracking `results` (see the module docstring)."""
    scene = getattr(scene, "scene", scene)  # a context is accepted too
    if results is None:
        raise ValueError(strings.ERR_NO_TRACKING.format(clip=clip.name))
    if not isinstance(settings, RigSettings):
        settings = RigSettings() if settings is None else RigSettings.from_props(settings)
    if settings.pose_mode not in ("HEAD", "CAMERA"):
        raise ValueError(strings.ERR_POSE_MODE.format(mode=settings.pose_mode))
    rows = results.face_rows
    if rows.size == 0:
        raise ValueError(strings.ERR_NO_FACE_FRAMES.format(clip=clip.name))
    clip_name = clip.name
    model = load_facemodel()
    solved = solve_results(results, settings)  # before touching the scene: a failure leaves it unchanged

    clear_rig(clip_name)
    collection = tag(bpy.data.collections.new(f"IL_{clip_name}"), clip_name)
    scene.collection.children.link(collection)

    camera, focal_px = _build_camera(clip, results, rows, settings, clip_name)
    collection.objects.link(camera)
    mesh = build_head_mesh(model, solved.identity, clip_name)
    head = tag(bpy.data.objects.new(f"IL_{clip_name}_Head", mesh), clip_name)
    head[PART_PROP] = "head"
    collection.objects.link(head)
    add_shape_keys(head, model)

    # Pose: the camera sees the head as (R, t) on every frame with a face (moved with the solve's alignment).
    frames = results.scene_frames[rows]
    R, t = solved.model_pose(results.R, results.t)
    if settings.pose_mode == "HEAD":
        camera_matrix, head_matrices = head_world_matrices(R[rows], t[rows])
        _set_matrix(camera, camera_matrix)
        _key_transforms(head, frames, head_matrices, f"IL_{clip_name}_rig_head", clip_name)
    else:
        _key_transforms(camera, frames, camera_world_matrices(R[rows], t[rows]), f"IL_{clip_name}_rig_camera",
                        clip_name)

    # Expressions: the 52 ARKit weights keyed on the shape keys.
    weights = to_arkit52(solved.expressions, settings.combine, solved.expression_names)[rows]
    key = mesh.shape_keys
    tag(key, clip_name)
    keyframes.assign_new_action(key, f"IL_{clip_name}_rig_expressions", {OWNER_PROP: clip_name, ROLE_PROP: ROLE_RIG})
    for k, name in enumerate(ARKIT52_NAMES):
        keyframes.write_keys(keyframes.ensure_fcurve(key, f'key_blocks["{name}"].value'), frames, weights[:, k])

    # Scene: the clip's size, the tracked range, this camera and the clip as background in the camera view.
    scene.render.resolution_x, scene.render.resolution_y = results.width, results.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.frame_start, scene.frame_end = int(results.scene_frames.min()), int(results.scene_frames.max())
    scene.camera = camera
    scene.active_clip = clip
    return RigObjects(clip_name=clip_name, collection=collection, camera=camera, head=head, frames=frames,
                      focal_px=focal_px, solve=solved)
