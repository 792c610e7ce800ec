"""Scene augmentations of synthetic samples, built on the renderer's person mask (`part_id >= 0`).

Real photos show small faces in wide frames and skin-coloured things that are not faces (hands, arms, an orange
sleeve); the renders mostly show one large face. Four augmentations, all exact for the camera (a uniform scale
and a shift of the image are a change of K):
- `zoom_out`: the rendered person, shrunk, on a fresh background (small faces anywhere in the frame);
- `paste_distractors`: skin- and orange-toned shaded blobs away from the face (things the STN and the face
  classifier must not take for a face);
- `headless`: a face-free negative made of the person's body and hair outside the face, on a fresh background;
- `letterbox`: a band of the render centred between black bars, as the runtime pads a 16:9 or 4:3 frame
  (images.fit_to_input) and renders never are.
And one negative made from nothing: `flat_shapes`, flat geometric shapes on a flat background (test charts and
synthetic test images, which a face classifier trained on photos alone takes for faces).
All take and return uint8 RGB images of the sample's size.
"""
from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

# Hue range (degrees) and saturation of the distractors: skin tones and the oranges and browns near them.
DISTRACTOR_HUE_DEG = (0.0, 45.0)
DISTRACTOR_SATURATION = (0.2, 0.85)


def person_alpha(part_id: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the rendered person and its accessories, edges softened by a pixel."""
    mask = (part_id >= 0).astype(np.float32)
    return cv2.GaussianBlur(mask, (0, 0), 0.7)


def _composite(background: np.ndarray, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = background.astype(np.float32) * (1 - alpha[..., None]) + image.astype(np.float32) * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# How much `zoom_out` shrinks the person by default (log-uniform between the two).
ZOOM_RANGE = (0.35, 0.9)


def zoom_out(image: np.ndarray, part_id: np.ndarray, background: np.ndarray, rng: np.random.Generator,
             scale_range: tuple[float, float] = ZOOM_RANGE, anywhere: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The person shrunk by a log-uniform scale and placed on `background` (same size as `image`).

    Returns (image, A) with A (2, 3) the pixel map p_new = A[:, :2] @ p + A[:, 2] (apply it to 2D points, boxes
    and K). A person cut by the bottom of the render (a torso) stays on the bottom edge of the new frame, so the
    cut is not visible; sideways the placement is random. `anywhere`: at a random height too, the cut shown (the
    renders' torsos are short: bottom-anchored, small faces would all sit near the bottom of the frame, where a
    face finder then learns to look; in photos a small face is as often high in the frame)."""
    h, w = image.shape[:2]
    s = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    alpha = person_alpha(part_id)
    ox = rng.uniform(0, w * (1 - s))
    oy = h * (1 - s) if alpha[-1].max() > 0.5 and not anywhere else rng.uniform(0, h * (1 - s))
    A = np.array([[s, 0.0, ox], [0.0, s, oy]])
    small = cv2.warpAffine(image, A, (w, h), flags=cv2.INTER_AREA)
    small_alpha = cv2.warpAffine(alpha, A, (w, h), flags=cv2.INTER_LINEAR)
    return _composite(background, small, small_alpha), A


# Aspect ratios (long / short side) of the frames `letterbox` imitates: 16:9 and 4:3 video, 3:2 photos.
LETTERBOX_ASPECTS = (16 / 9, 4 / 3, 3 / 2)


def letterbox(image: np.ndarray, box: np.ndarray, rng: np.random.Generator, portrait: float = 0.25
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """A band of `image` (landscape, or with probability `portrait` upright) holding the face box `box`
    (x0, y0, x1, y1), moved to the centre with black outside it: what a square model input shows of a wider frame.

    Returns (image, A) with A (2, 3) the pixel map of the move (a shift), or None when the box does not fit."""
    h, w = image.shape[:2]
    aspect = float(rng.choice(LETTERBOX_ASPECTS))
    axis = 0 if rng.random() < portrait else 1  # 1: a horizontal band (rows cut), 0: a vertical one (columns)
    side = (w, h)[axis]
    band = int(round(side / aspect))
    # The band holds the part of the box inside the frame (a face cut by the frame's edge stays cut there).
    first, last = np.clip([box[axis], box[axis + 2]], 0, side)
    lo, hi = max(0.0, last - band), min(first, side - band)
    if hi < lo:
        return None
    start = int(round(rng.uniform(lo, hi)))
    shift = (side - band) // 2 - start
    A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    A[axis, 2] = shift
    out = np.zeros_like(image)
    if axis == 1:
        out[start + shift:start + shift + band] = image[start:start + band]
    else:
        out[:, start + shift:start + shift + band] = image[:, start:start + band]
    return out, A


def headless(image: np.ndarray, part_id: np.ndarray, keep_out: np.ndarray, background: np.ndarray
             ) -> np.ndarray | None:
    """A negative: the person outside the box `keep_out` (x0, y0, x1, y1: the face box, grown) on `background`,
    or None when hardly any of the person is left (a close-up)."""
    alpha = person_alpha(part_id)
    h, w = alpha.shape
    c0, r0 = max(0, int(keep_out[0])), max(0, int(keep_out[1]))
    c1, r1 = min(w, int(math.ceil(keep_out[2]))), min(h, int(math.ceil(keep_out[3])))
    alpha[r0:r1, c0:c1] = 0
    if alpha.mean() < 0.05:
        return None
    return _composite(background, image, alpha)


def _distractor_blob(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(colour (size, size, 3) float32 0..255, alpha (size, size) float32) of one shaded, irregular blob."""
    hue = rng.uniform(*DISTRACTOR_HUE_DEG) / 360
    rgb = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(*DISTRACTOR_SATURATION), rng.uniform(0.35, 0.95)))
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size * 2 - 1
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    ry = rng.uniform(0.3, 0.95)  # elongation: from a round patch (a hand, a knee) to a limb or a sleeve
    # An ellipse with a wobbly outline (low-frequency noise added to its radius).
    wobble = cv2.resize(rng.normal(0, 0.12, (4, 4)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    inside = 1 - np.sqrt(u ** 2 + (v / ry) ** 2) + wobble
    alpha = np.clip(inside * size / rng.uniform(2, 8), 0, 1)
    # Shading: light from a random side, and folds (a few soft stripes), as on cloth or skin.
    light = rng.normal(size=2)
    light /= np.linalg.norm(light)
    shade = 0.75 + 0.35 * (xx * light[0] + yy * light[1])
    if rng.random() < 0.6:
        folds = np.sin(u * rng.uniform(3, 12) + rng.uniform(0, 2 * math.pi))
        shade = shade + rng.uniform(0.05, 0.25) * folds
    colour = np.clip(255 * rgb[None, None] * shade[..., None], 0, 255).astype(np.float32)
    return colour, alpha.astype(np.float32)


def paste_distractors(image: np.ndarray, rng: np.random.Generator, keep_out: np.ndarray | None = None,
                      count: int | None = None, tries: int = 8) -> np.ndarray:
    """`image` with 1-3 (or `count`) distractor blobs of 15-60% of its short side pasted where they do not
    overlap `keep_out` (x0, y0, x1, y1, e.g. the face box grown a little)."""
    out = image.astype(np.float32)
    h, w = image.shape[:2]
    count = int(rng.integers(1, 4)) if count is None else count
    for _ in range(count):
        size = max(8, int(rng.uniform(0.15, 0.6) * min(h, w)))
        for _ in range(tries):
            x, y = int(rng.integers(-size // 3, w - 2 * size // 3)), int(rng.integers(-size // 3, h - 2 * size // 3))
            if keep_out is None or not (x < keep_out[2] and x + size > keep_out[0] and y < keep_out[3]
                                        and y + size > keep_out[1]):
                break
        else:
            continue
        colour, alpha = _distractor_blob(rng, size)
        c0, r0, c1, r1 = max(0, x), max(0, y), min(w, x + size), min(h, y + size)
        a = alpha[r0 - y:r1 - y, c0 - x:c1 - x, None]
        out[r0:r1, c0:c1] = out[r0:r1, c0:c1] * (1 - a) + colour[r0 - y:r1 - y, c0 - x:c1 - x] * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def flat_shapes(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A face-free (h, w, 3) uint8 image: one to three filled squares, rectangles or ellipses of 20-80% of the
    short side, grey half of the time, on a flat background that is black half of the time."""
    out = np.zeros((h, w, 3), np.uint8)
    if rng.random() < 0.5:
        out[:] = rng.integers(0, 256, 3)
    for _ in range(int(rng.integers(1, 4))):
        colour = [float(rng.uniform(40, 230))] * 3 if rng.random() < 0.5 else rng.uniform(0, 255, 3).tolist()
        size = rng.uniform(0.2, 0.8) * min(h, w)
        aspect = rng.uniform(0.5, 2.0) if rng.random() < 0.5 else 1.0
        axes = (size * math.sqrt(aspect), size / math.sqrt(aspect))
        centre = (float(rng.uniform(0.2, 0.8) * w), float(rng.uniform(0.2, 0.8) * h))
        angle = float(rng.uniform(0, 180)) if rng.random() < 0.5 else 0.0
        if rng.random() < 0.5:
            corners = cv2.boxPoints((centre, axes, angle))
            cv2.fillConvexPoly(out, np.round(corners).astype(np.int32), colour, cv2.LINE_AA)
        else:
            half_axes = (round(axes[0] / 2), round(axes[1] / 2))
            cv2.ellipse(out, (round(centre[0]), round(centre[1])), half_axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
    return out
