"""Viewport overlay: the current frame's landmarks over the footage, and the predicted 3D points on the rig's head.

- Movie Clip editor: landmarks at their pixel positions (green visible, red hidden, as `core.overlay` draws them).
- 3D viewport in camera view: the same landmarks placed on the camera's frame, so they sit on the background clip.
- 3D viewport, any view: the predicted canonical 3D points (`landmarks_3d`, the learned face shape; dense for the
  dense layout) drawn as points attached to the rig head of the clip.

Toggles live in `scene.il_rig` (show_landmarks, show_points_3d, point_size). `register()` adds nothing in
background mode (no GPU, nothing to draw); `unregister()` removes every handler it added.
"""
from __future__ import annotations

import hashlib

import bpy
import mathutils
import numpy as np

from core.shot import Shot

from . import tracking
from .scene.props import SCENE_ATTRIBUTE
from .scene.rig import find_rig, to_blender

# Same colours as core.overlay (not imported: it needs OpenCV, the viewport does not).
VISIBLE_COLOR = (60 / 255, 230 / 255, 60 / 255, 1.0)
HIDDEN_COLOR = (235 / 255, 60 / 255, 60 / 255, 1.0)
POINTS_3D_COLOR = (0.25, 0.75, 1.0, 0.9)
HIDDEN_VISIBILITY = 0.5

_handles: list[tuple[type, object]] = []
_cache: dict[str, tuple[str, Shot]] = {}


# --------------------------------------------------------------------------------------------------------------
# Data (plain functions, usable without a GPU)


def _signature(data) -> str:  # noqa: ANN001 - ID property group
    """Cheap fingerprint of stored results: frames and confidences change whenever a clip is re-tracked."""
    digest = hashlib.blake2b(digest_size=16)
    for key in ("layout", "num_points", "width", "height"):
        digest.update(str(data.get(key)).encode())
    for key in ("frames", "confidence", "has_face"):
        value = data.get(key)
        if value is not None:
            digest.update(np.asarray(value).tobytes())
    return digest.hexdigest()


def clip_results(clip: bpy.types.MovieClip | None) -> Shot | None:
    """A clip's stored results, decoded once and cached until the clip is re-tracked (redraws are frequent)."""
    data = clip.get(tracking.RESULTS_KEY) if clip is not None else None
    if data is None:
        _cache.pop(getattr(clip, "name", ""), None)
        return None
    signature = _signature(data)
    cached = _cache.get(clip.name)
    if cached is None or cached[0] != signature:
        results = tracking.load_results(clip)
        if results is None:
            return None
        cached = (signature, results)
        _cache[clip.name] = cached
    return cached[1]


def frame_points(clip: bpy.types.MovieClip, scene_frame: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int] | None:
    """(landmarks_2d (N, 2) px, visibility (N,), landmarks_3d (N, 3) cm, width, height) of a scene frame, or None
    when the frame was not tracked or has no face."""
    results = clip_results(clip)
    if results is None:
        return None
    row = results.row(tracking.scene_to_clip_frame(clip, scene_frame))
    if row is None or not results.has_face[row]:
        return None
    return (results.landmarks_2d[row], results.visibility[row], results.landmarks_3d[row], results.width,
            results.height)


def point_colors(visibility: np.ndarray) -> np.ndarray:
    """(N, 4) RGBA: green for visible landmarks, red for hidden ones."""
    visible = np.nan_to_num(np.asarray(visibility, float)) >= HIDDEN_VISIBILITY
    return np.where(visible[:, None], VISIBLE_COLOR, HIDDEN_COLOR).astype(np.float32)


def pixels_on_camera_frame(camera: bpy.types.Object, scene: bpy.types.Scene, pixels: np.ndarray, width: int,
                           height: int) -> np.ndarray:
    """World positions (N, 3) on the camera's frame (the plane the background is drawn on) of image pixels
    (N, 2; origin at the top-left corner): bilinear in the frame's corners."""
    # view_frame: top-right, bottom-right, bottom-left, top-left, in camera space (shift and sensor fit included).
    top_right, _, bottom_left, top_left = (np.array(v) for v in camera.data.view_frame(scene=scene))
    u = np.asarray(pixels, float)[:, 0:1] / width
    v = np.asarray(pixels, float)[:, 1:2] / height
    local = top_left + u * (top_right - top_left) + v * (bottom_left - top_left)
    world = np.array(camera.matrix_world)
    return local @ world[:3, :3].T + world[:3, 3]


def _scene_clip(scene: bpy.types.Scene) -> bpy.types.MovieClip | None:
    """The clip shown behind the scene camera (the rig's), else the scene's active clip."""
    camera = scene.camera
    if camera is not None and camera.type == "CAMERA":
        for background in camera.data.background_images:
            if background.source == "MOVIE_CLIP" and background.clip is not None:
                return background.clip
    return scene.active_clip


# --------------------------------------------------------------------------------------------------------------
# Drawing (only ever called by Blender with a GPU context)


def _draw_points(coords: np.ndarray, colors: np.ndarray, size: float) -> None:
    import gpu
    from gpu_extras.batch import batch_for_shader

    if not len(coords):
        return
    try:
        shader = gpu.shader.from_builtin("POINT_FLAT_COLOR")  # round points of any size (4.0+)
    except ValueError:
        shader = gpu.shader.from_builtin("FLAT_COLOR")
    batch = batch_for_shader(shader, "POINTS", {"pos": coords.astype(np.float32).tolist(),
                                                "color": colors.astype(np.float32).tolist()})
    gpu.state.blend_set("ALPHA")
    gpu.state.point_size_set(size)
    batch.draw(shader)
    gpu.state.point_size_set(1.0)
    gpu.state.blend_set("NONE")


def _settings(context: bpy.types.Context):  # noqa: ANN202
    return getattr(context.scene, SCENE_ATTRIBUTE, None)


def _draw_clip_editor() -> None:
    context = bpy.context
    props, space, region = _settings(context), context.space_data, context.region
    if props is None or not props.show_landmarks or space is None or space.clip is None:
        return
    data = frame_points(space.clip, context.scene.frame_current)
    if data is None:
        return
    pixels, visibility, _, width, height = data
    finite = np.isfinite(pixels).all(1)
    # The clip editor's view space is the frame normalised to 0..1 from the bottom-left corner.
    coords = [region.view2d.view_to_region(x / width, 1.0 - y / height, clip=False) for x, y in pixels[finite]]
    _draw_points(np.array(coords, float).reshape(-1, 2), point_colors(visibility[finite]), props.point_size)


def _draw_view3d_landmarks() -> None:
    """POST_PIXEL: the 2D landmarks, on the camera frame, in camera view only (elsewhere they mean nothing)."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    context = bpy.context
    props, scene, rv3d = _settings(context), context.scene, context.region_data
    if props is None or not props.show_landmarks or rv3d is None or rv3d.view_perspective != "CAMERA":
        return
    camera = scene.camera
    clip = _scene_clip(scene)
    if camera is None or camera.type != "CAMERA" or clip is None:
        return
    data = frame_points(clip, scene.frame_current)
    if data is None:
        return
    pixels, visibility, _, width, height = data
    finite = np.isfinite(pixels).all(1)
    world = pixels_on_camera_frame(camera, scene, pixels[finite], width, height)
    coords, colors = [], []
    for point, color in zip(world, point_colors(visibility[finite])):
        region_point = location_3d_to_region_2d(context.region, rv3d, mathutils.Vector(point))
        if region_point is not None:
            coords.append(tuple(region_point))
            colors.append(color)
    _draw_points(np.array(coords, float).reshape(-1, 2), np.array(colors).reshape(-1, 4), props.point_size)


def _draw_view3d_points() -> None:
    """POST_VIEW: the predicted 3D points, in the rig head's space (they follow its motion)."""
    context = bpy.context
    props, scene = _settings(context), context.scene
    if props is None or not props.show_points_3d:
        return
    clip = _scene_clip(scene)
    rig = find_rig(clip.name) if clip is not None else None
    data = frame_points(clip, scene.frame_current) if rig is not None else None
    if data is None:
        return
    points = data[2][np.isfinite(data[2]).all(1)]
    world = np.array(rig.head.matrix_world)
    coords = to_blender(points) @ world[:3, :3].T + world[:3, 3]
    _draw_points(coords, np.tile(POINTS_3D_COLOR, (len(coords), 1)), max(props.point_size * 0.75, 1.0))


# --------------------------------------------------------------------------------------------------------------
# Registration


def register() -> None:
    if bpy.app.background or _handles:  # no GPU to draw with; or already registered
        return
    for space, function, draw_type in ((bpy.types.SpaceClipEditor, _draw_clip_editor, "POST_PIXEL"),
                                       (bpy.types.SpaceView3D, _draw_view3d_landmarks, "POST_PIXEL"),
                                       (bpy.types.SpaceView3D, _draw_view3d_points, "POST_VIEW")):
        _handles.append((space, space.draw_handler_add(function, (), "WINDOW", draw_type)))


def unregister() -> None:
    while _handles:
        space, handle = _handles.pop()
        space.draw_handler_remove(handle, "WINDOW")
    _cache.clear()
