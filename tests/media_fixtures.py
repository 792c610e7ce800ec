"""Small media files for the output and exit-status tests (core.predict and the add-on's batch)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def noise_frames(count: int, hw: tuple[int, int] = (48, 64), seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB frames (blocks of noise scaled up): cheap to encode, not all alike."""
    rng = np.random.default_rng(seed)
    return [cv2.resize(rng.integers(0, 256, (max(2, hw[0] // 8), max(2, hw[1] // 8), 3), dtype=np.uint8),
                       (hw[1], hw[0])) for _ in range(count)]


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """One smooth random RGB image: the first of `noise_frames` for that seed."""
    return noise_frames(1, (h, w), seed)[0]


def write_truncated_mp4(path: Path, frames: int = 30, keep: float = 0.3, hw: tuple[int, int] = (48, 64)) -> Path:
    """An H.264 mp4 of `frames` frames with its index at the front (faststart), cut to `keep` of its bytes: the
    container still announces every frame, only the first few decode (a copy that stopped part way)."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (hw[1], hw[0]), fps=24, macro_block_size=1,
                                         output_params=["-movflags", "+faststart", "-loglevel", "error"])
    writer.send(None)
    for frame in noise_frames(frames, hw):
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path
