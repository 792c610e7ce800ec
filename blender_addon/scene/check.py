"""Side-by-side check of a solve: the rig rendered through the tracked camera, over the footage, with landmarks.

A Workbench render with a transparent film (camera backgrounds do not render), composited in numpy over the
clip's frame; the tracked landmarks are drawn on top (green visible, red hidden). If the rendered head sits on the
filmed one, the camera, pose, identity and expression solve agree with the footage.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np


def render_check(scene: bpy.types.Scene, clip: bpy.types.MovieClip, frame: int, out_png: str | Path,
                 opacity: float = 0.6) -> Path:
    """Write `out_png`: footage frame `frame` (clip frame numbering), rig render blended at `opacity`, landmarks.
    Raises ValueError (no tracking results) or core.outputs.OutputError (the file cannot be written)."""
    import cv2

    from core.layouts import load_layout
    from core.outputs import write_image
    from core.overlay import draw_landmarks
    from core.runtime.video import open_frames

    from .. import tracking

    results = tracking.load_results(clip)
    if results is None:
        raise ValueError(f"clip {clip.name} has no tracking results")
    index = results.row(frame)
    footage = tracking.clip_footage_path(clip)
    image = next(f for i, f in enumerate(open_frames(footage)) if i == (index if index is not None else 0))

    render, previous = scene.render, (scene.render.engine, scene.render.film_transparent, scene.frame_current,
                                      scene.render.filepath)
    try:
        render.engine = "BLENDER_WORKBENCH"
        render.film_transparent = True
        render.resolution_x, render.resolution_y, render.resolution_percentage = results.width, results.height, 100
        scene.frame_set(tracking.clip_to_scene_frame(clip, frame))
        with tempfile.TemporaryDirectory() as tmp:
            render.filepath = str(Path(tmp) / "rig.png")
            bpy.ops.render.render(write_still=True, scene=scene.name)
            rgba = cv2.imread(render.filepath, cv2.IMREAD_UNCHANGED)
    finally:
        render.engine, render.film_transparent, frame_now, render.filepath = previous
        scene.frame_set(frame_now)
    rig = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA).astype(np.float32) / 255.0
    alpha = rig[..., 3:] * opacity
    out = image.astype(np.float32) / 255.0 * (1 - alpha) + rig[..., :3] * alpha
    out = (out * 255 + 0.5).astype(np.uint8)
    if index is not None and results.has_face[index]:
        contours = load_layout(results.layout).contours if results.layout in ("ibug68", "wflw98") else None
        out = draw_landmarks(out, results.landmarks_2d[index], results.visibility[index], contours)
    return write_image(out_png, np.hstack([image, out]))  # atomic; a failure is an OutputError naming the file
