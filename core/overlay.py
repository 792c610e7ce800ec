"""Drawing landmarks on images (OpenCV only): used by previews, contact sheets, benchmarks and the add-on's video."""
from __future__ import annotations

import cv2
import numpy as np

VISIBLE_COLOR = (60, 230, 60)     # RGB
HIDDEN_COLOR = (235, 60, 60)
LINE_COLOR = (240, 240, 240)


def draw_landmarks(image: np.ndarray, points: np.ndarray, visibility: np.ndarray | None = None,
                   contours: dict[str, list[int]] | None = None, radius: int | None = None) -> np.ndarray:
    """Return a copy of an RGB image with points (N, 2, pixel convention of conventions.md) drawn on it.

    Visible points are green and hidden ones red; contours are joined by thin lines.
    """
    out = np.ascontiguousarray(image.copy())
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
    points = np.asarray(points, np.float64)
    finite = np.isfinite(points).all(axis=1)
    size = max(out.shape[:2])
    radius = radius or max(1, int(round(size / 250)))
    shift = 4  # sub-pixel drawing: pixel centres sit at +0.5, so subtract it before the fixed-point shift
    pts = np.round((points - 0.5) * (1 << shift)).astype(np.int64)
    if contours:
        for idx in contours.values():
            idx = [i for i in idx if i < len(points) and finite[i]]
            if len(idx) > 1:
                cv2.polylines(out, [pts[idx].reshape(-1, 1, 2).astype(np.int32)], False, LINE_COLOR,
                              max(1, radius // 2), cv2.LINE_AA, shift)
    for i in np.flatnonzero(finite):
        visible = visibility is None or visibility[i] >= 0.5
        cv2.circle(out, (int(pts[i, 0]), int(pts[i, 1])), radius << shift, VISIBLE_COLOR if visible else HIDDEN_COLOR,
                   -1, cv2.LINE_AA, shift)
    return out


def contact_sheet(tiles: list[np.ndarray], columns: int = 8, tile_size: int | None = None) -> np.ndarray:
    """Grid of RGB tiles (resized to a common square size), row-major."""
    if not tiles:
        raise ValueError("contact_sheet needs at least one tile")
    size = tile_size or tiles[0].shape[0]
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * size, columns * size, 3), np.uint8)
    for k, tile in enumerate(tiles):
        if tile.shape[:2] != (size, size):
            tile = cv2.resize(tile, (size, size), interpolation=cv2.INTER_AREA)
        r, c = divmod(k, columns)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = tile
    return sheet
