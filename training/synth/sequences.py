"""Synthetic video: smooth random trajectories of head pose, expression and camera, with per-frame ground truth.

Kinds: `moving` (pose, expression, position and zoom drift smoothly through random keyframes) and `static` (a
still head; frames differ only by sensor noise, for measuring jitter). A clip is written as `clip.mp4` plus
`clip.npz` with per-frame K, R, t, identity, expression, depth and part-id buffers, so ground truth for any layout
(`Sample.truth`) is available per frame through `load_sequence`.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core import geometry
from core.outputs import atomic_path
from training.synth.sample import Sample
from training.synth.sampling import SceneParams, sample_expression, sample_scene
from training.synth.scene import SyntheticEngine, head_center

log = logging.getLogger(__name__)
KEYFRAME_SPACING = 30  # frames between random keyframes of a moving clip


def _smooth_keys(keys: np.ndarray, num_frames: int) -> np.ndarray:
    """Interpolate keyframes (K, D) spaced KEYFRAME_SPACING apart with smoothstep: C1, no overshoot."""
    frame = np.arange(num_frames) / KEYFRAME_SPACING
    k0 = np.minimum(np.floor(frame).astype(int), len(keys) - 2)
    a = np.clip(frame - k0, 0, 1)
    a = a * a * (3 - 2 * a)
    return keys[k0] * (1 - a[:, None]) + keys[k0 + 1] * a[:, None]


def sequence_params(engine: SyntheticEngine, rng: np.random.Generator, num_frames: int,
                    kind: str = "moving") -> list[SceneParams]:
    """Per-frame scene parameters for one clip (same identity throughout)."""
    if kind not in ("moving", "static"):
        raise ValueError(f"sequence kind must be 'moving' or 'static', not '{kind}'")
    model = engine.model
    cfg = engine.config
    base = sample_scene(rng, model, cfg.width, cfg.height, head_center(model, model.neutral))
    # Keep clips watchable: the face well inside the frame, a moderate size, moderate poses.
    face_px = rng.uniform(0.3, 0.6) * min(cfg.width, cfg.height)
    fov = rng.uniform(30, 60)
    f = geometry.focal_from_fov(fov, cfg.width)
    if kind == "static":
        yaw, pitch, roll = rng.uniform(-30, 30), rng.uniform(-15, 15), rng.uniform(-10, 10)
        poses = np.tile([yaw, pitch, roll], (num_frames, 1))
        expressions = np.tile(base.expression * 0.5, (num_frames, 1))
        centers = np.tile([cfg.width / 2, cfg.height / 2, face_px], (num_frames, 1))
    else:
        num_keys = num_frames // KEYFRAME_SPACING + 2
        poses = _smooth_keys(np.stack([rng.uniform(-45, 45, num_keys), rng.uniform(-20, 20, num_keys),
                                       rng.uniform(-15, 15, num_keys)], 1), num_frames)
        expressions = _smooth_keys(np.stack([sample_expression(rng, model.expression_names)[0]
                                             for _ in range(num_keys)]), num_frames)
        centers = _smooth_keys(np.stack([cfg.width * rng.uniform(0.4, 0.6, num_keys),
                                         cfg.height * rng.uniform(0.4, 0.6, num_keys),
                                         face_px * rng.uniform(0.85, 1.15, num_keys)], 1), num_frames)
    neutral_center = head_center(model, model.neutral)
    K = geometry.intrinsics(f, cfg.width, cfg.height)
    out = []
    for (yaw, pitch, roll), expression, (u, v, size) in zip(poses, expressions, centers):
        R = geometry.pose_to_rotation(yaw, pitch, roll)
        z = f * 13.0 / size
        t = np.linalg.inv(K) @ np.array([u, v, 1.0]) * z - R @ neutral_center
        out.append(replace(base, expression=expression.astype(np.float32), yaw=float(yaw), pitch=float(pitch),
                           roll=float(roll), K=K, R=R, t=t, body_yaw=float(yaw) * 0.3, body_pitch=0.0,
                           tags={"kind": kind, "fov_deg": fov}))
    return out


def render_sequence(engine: SyntheticEngine, index: int, num_frames: int, kind: str = "moving") -> list[Sample]:
    rng = engine.rng(index)
    params = sequence_params(engine, rng, num_frames, kind)
    appearance_seed = int(rng.integers(2**31))
    return [engine.render(p, np.random.default_rng(appearance_seed), frame_rng=np.random.default_rng([appearance_seed, i]))
            for i, p in enumerate(tqdm(params, desc=f"{kind} clip {index}", unit="frame", leave=False))]


def write_sequence(frames: list[Sample], out_dir: Path, name: str, fps: int = 30) -> Path:
    """Write `name.mp4` (H.264 via imageio-ffmpeg) and `name.npz`; returns the video path."""
    import imageio_ffmpeg

    video_path = out_dir / f"{name}.mp4"
    h, w = frames[0].image.shape[:2]
    with atomic_path(video_path) as tmp:  # a failure leaves no half-written clip
        writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, quality=8, macro_block_size=1,
                                             pix_fmt_out="yuv420p", output_params=["-loglevel", "error"])
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f.image))
        writer.close()
    with atomic_path(out_dir / f"{name}.npz") as tmp:
        _save_truth(tmp, frames, fps)
    return video_path


def _save_truth(path: Path, frames: list[Sample], fps: int) -> None:
    np.savez_compressed(path, identity=frames[0].identity,
                        expression=np.stack([f.expression for f in frames]), K=np.stack([f.K for f in frames]),
                        R=np.stack([f.R for f in frames]), t=np.stack([f.t for f in frames]),
                        depth=np.stack([f.depth for f in frames]).astype(np.float16),
                        part_id=np.stack([f.part_id for f in frames]),
                        head_depth=np.stack([f.head_depth for f in frames]).astype(np.float16), occluder_ids=np.array(frames[0].occluder_ids),
                        fps=fps)


# The arrays of a clip's npz that `load_sequence` reads (`fps` is read by those who need it).
SEQUENCE_ARRAYS = ("identity", "expression", "K", "R", "t", "depth", "part_id", "head_depth", "occluder_ids")


def load_sequence(npz_path: Path) -> list[Sample]:
    """Per-frame ground truth of a written clip as Samples.

    An NpzFile decompresses a whole array on every access, so each array is read once, here, and every frame
    holds views of those arrays: time and memory grow linearly with the clip. The depth buffers stay float16 as
    stored (the visibility tests compare them with float64 depths, so this loses nothing). The images are one
    shared read-only black frame: read the pixels from the video.
    """
    with np.load(npz_path) as d:
        arrays = {key: d[key] for key in SEQUENCE_ARRAYS}
    n, h, w = arrays["depth"].shape
    image = np.broadcast_to(np.zeros(3, np.uint8), (h, w, 3))
    occluder_ids = tuple(int(x) for x in arrays["occluder_ids"])
    return [Sample(image=image, identity=arrays["identity"], expression=arrays["expression"][i],
                   K=arrays["K"][i], R=arrays["R"][i], t=arrays["t"][i], depth=arrays["depth"][i],
                   part_id=arrays["part_id"][i], head_depth=arrays["head_depth"][i], occluder_ids=occluder_ids)
            for i in range(n)]
