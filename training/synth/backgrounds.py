"""Backgrounds to composite synthetic people over: random crops of natural photos (loaded once) and procedural
scenes (gradients, noise, blobs, rooms, stripes, bokeh, shelves), each jittered in exposure, colour and focus."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from scipy import special

from training.synth.noise import fractal_noise

logger = logging.getLogger(__name__)

# Natural photos shipped with scikit-image and opencv-doc. Each was looked at: excluded are images with people or
# faces (astronaut, camera, lfw_subset, coins with heads, lena, messi5, basketball*, the left*/right* calibration
# shots, box_in_scene, graf*, baboon), drawings and synthetic test patterns, and tiny images.
SKIMAGE_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
                  "brick.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png")
OPENCV_DATA_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_PHOTOS = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "board.jpg", "building.jpg", "butterfly.jpg",
                 "chicky_512.png", "ela_original.jpg", "fruits.jpg", "home.jpg", "leuvenA.jpg",
                 "licenseplate_motion.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg",
                 "starry_night.jpg", "stuff.jpg")


def default_photo_paths() -> list[Path]:
    """The bundled photo list, whether or not the files exist (missing ones are skipped when loading)."""
    paths = []
    try:
        import skimage

        paths += [Path(skimage.__file__).parent / "data" / name for name in SKIMAGE_PHOTOS]
    except ImportError:
        logger.warning("scikit-image is not installed: its sample photos are not used as backgrounds")
    paths += [OPENCV_DATA_DIR / name for name in OPENCV_PHOTOS]
    return paths


def _load_photo(path: Path, max_side: int) -> np.ndarray | None:
    from PIL import Image  # pillow comes with matplotlib; unlike libpng via cv2 it does not warn about ICC chunks

    try:
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        logger.warning("background photo %s skipped: %s", path, exc)
        return None
    scale = max_side / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def _random_color(rng: np.random.Generator, saturation: float | None = None) -> np.ndarray:
    """A colour as found in scenes: mostly muted, the full range of lightness."""
    import colorsys

    s = rng.beta(1.2, 2.5) if saturation is None else saturation
    return np.array(colorsys.hsv_to_rgb(rng.random(), s, rng.uniform(0.12, 0.95)), np.float32)


class BackgroundBank:
    """Backgrounds for compositing: random crops of natural photos (loaded once) and procedural scenes.

    `sample(rng, width, height)` returns (height, width, 3) uint8 RGB. With no readable photos it falls back to
    procedural backgrounds only.
    """

    def __init__(self, photo_paths: Sequence[str | Path] | None = None, max_side: int = 800,
                 procedural_fraction: float = 0.4) -> None:
        paths = default_photo_paths() if photo_paths is None else [Path(p) for p in photo_paths]
        self.photos: list[np.ndarray] = []
        self._grey: list[bool] = []  # grey textures (brick, gravel, moon) get a random tint when sampled
        for path in paths:
            if not path.is_file():
                logger.warning("background photo %s not found, skipped", path)
                continue
            img = _load_photo(path, max_side)
            if img is not None:
                self.photos.append(img)
                self._grey.append(bool(np.abs(img.astype(np.int16) - img[..., :1]).max() <= 2))
        self.procedural_fraction = procedural_fraction if self.photos else 1.0
        if not self.photos:
            logger.warning("no background photos available: using procedural backgrounds only")
        self._generators = (_gradient_background, _noise_background, _blob_background, _room_background,
                            _stripe_background, _bokeh_background, _shelf_background)

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        if rng.random() < self.procedural_fraction:
            generator = self._generators[rng.integers(len(self._generators))]
            img = cv2.convertScaleAbs(generator(rng, width, height), alpha=255.0)  # rounds and saturates to uint8
            tint = None
        else:
            img, tint = self._photo_crop(rng, width, height)
        return _jitter_background(rng, img, tint)

    def _photo_crop(self, rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray | None]:
        k = int(rng.integers(len(self.photos)))
        photo = self.photos[k]
        ph, pw = photo.shape[:2]
        aspect = width / height
        cw = min(pw, ph * aspect) * rng.uniform(0.3, 1.0)
        ch = cw / aspect
        x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
        crop = photo[int(y0):int(y0 + ch) + 1, int(x0):int(x0 + cw) + 1]
        interp = cv2.INTER_AREA if crop.shape[1] > width else cv2.INTER_LINEAR
        img = cv2.resize(crop, (width, height), interpolation=interp)
        if rng.random() < 0.5:
            img = cv2.flip(img, 1)
        return img, (0.7 + 0.6 * _random_color(rng, 0.3)) if self._grey[k] else None


def _jitter_background(rng: np.random.Generator, img: np.ndarray, tint: np.ndarray | None = None) -> np.ndarray:
    """Exposure, contrast, saturation and colour cast (one 3x4 colour matrix), gamma (a lookup table) and, often,
    defocus, since backgrounds behind a face are usually soft. uint8 in and out."""
    gain, contrast, saturation = rng.uniform(0.6, 1.3), rng.uniform(0.7, 1.3), rng.uniform(0.4, 1.4)
    cast = np.diag(rng.uniform(0.9, 1.1, 3) * (1 if tint is None else tint))
    mean = np.array(cv2.mean(img)[:3])
    luma = np.array([[0.299, 0.587, 0.114]])
    sat = saturation * np.eye(3) + (1 - saturation) * np.ones((3, 1)) @ luma
    matrix = cast @ sat
    transform = np.hstack([matrix * contrast * gain, (matrix @ ((1 - contrast) * gain * mean))[:, None]])
    img = cv2.transform(img, transform)
    lut = np.clip(255 * (np.arange(256) / 255.0) ** rng.uniform(0.8, 1.25) + 0.5, 0, 255).astype(np.uint8)
    img = cv2.LUT(img, lut)
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 4.0) * min(img.shape[:2]) / 256)
    return img


def _gradient_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * xx / w + np.sin(a) * yy / h)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy) / max(w, h)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    c0, c1 = _random_color(rng), _random_color(rng)
    img = c0 + t[..., None] * (c1 - c0)
    return img * (1 + 0.05 * cv2.resize(fractal_noise(rng, 64, (2, 4, 8)), (w, h)))[..., None]


def _noise_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Fractal colour noise mapped through a random 3-colour palette (foliage, stone, fabric-like)."""
    n = max(w, h)
    cells = (2, 4, 8, 16, 32) if rng.random() < 0.5 else (3, 6, 12, 24, 48)
    t = fractal_noise(rng, n, cells, falloff=rng.uniform(0.4, 0.65))[:h, :w]
    t = special.ndtr(t * rng.uniform(0.8, 2.0))
    stops = np.stack([_random_color(rng) for _ in range(3)])
    img = np.stack([np.interp(t, [0, 0.5, 1], stops[:, k]) for k in range(3)], -1).astype(np.float32)
    return img * (1 + 0.08 * fractal_noise(rng, n, (32, 64))[:h, :w, None])


def _blob_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Heavily blurred colour shapes; drawn and blurred at low resolution, since only low frequencies survive."""
    lw, lh = max(w // 4, 16), max(h // 4, 16)
    img = np.empty((lh, lw, 3), np.float32)
    img[:] = _random_color(rng)
    for _ in range(rng.integers(5, 25)):
        center = (int(rng.uniform(0, lw)), int(rng.uniform(0, lh)))
        axes = (int(rng.uniform(0.05, 0.4) * lw), int(rng.uniform(0.05, 0.4) * lh))
        cv2.ellipse(img, center, axes, rng.uniform(0, 180), 0, 360, tuple(float(c) for c in _random_color(rng)), -1,
                    cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.02, 0.12) * max(lw, lh))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def _quad_on_wall(wall: np.ndarray, s0: float, s1: float, t0: float, t1: float) -> np.ndarray:
    """Sub-quad of a wall quad (corners: near-top, far-top, far-bottom, near-bottom) in its own coordinates."""
    def point(s: float, t: float) -> np.ndarray:
        top = wall[0] + s * (wall[1] - wall[0])
        bottom = wall[3] + s * (wall[2] - wall[3])
        return top + t * (bottom - top)
    return np.array([point(s0, t0), point(s1, t0), point(s1, t1), point(s0, t1)])


def _room_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A box room in one-point perspective: back wall, side walls, floor, ceiling, a window, a door, frames."""
    img = np.zeros((h, w, 3), np.float32)
    vp = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.3, 0.7) * h])
    half = np.array([rng.uniform(0.12, 0.4) * w, rng.uniform(0.12, 0.4) * h])
    b = np.array([vp - half, [vp[0] + half[0], vp[1] - half[1]], vp + half, [vp[0] - half[0], vp[1] + half[1]]])
    c = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    wall = _random_color(rng)
    floor = _random_color(rng)
    ceiling, floor_quad = np.array([c[0], c[1], b[1], b[0]]), np.array([c[3], c[2], b[2], b[3]])
    # Side walls as (near-top, far-top, far-bottom, near-bottom), the order _quad_on_wall expects.
    left, right = np.array([c[0], b[0], b[3], c[3]]), np.array([c[1], b[1], b[2], c[2]])

    def fill(quad: np.ndarray, color: np.ndarray) -> None:
        cv2.fillConvexPoly(img, np.round(quad * 16).astype(np.int32), tuple(float(x) for x in np.clip(color, 0, 1)),
                           cv2.LINE_AA, 4)

    fill(ceiling, wall * 1.1)
    fill(left, wall * rng.uniform(0.6, 0.95))
    fill(right, wall * rng.uniform(0.6, 0.95))
    fill(floor_quad, floor)
    if rng.random() < 0.5:  # floor boards converging to the vanishing point (the back wall covers their ends)
        for x in np.linspace(0, w, rng.integers(6, 20)):
            cv2.line(img, (int(x * 16), h * 16), (int(vp[0] * 16), int(vp[1] * 16)),
                     tuple(float(v) for v in floor * 0.75), 1, cv2.LINE_AA, 4)
    fill(b, wall)
    if rng.random() < 0.6:  # a bright window on the back wall
        x0, y0 = rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.3)
        fill(b[0] + (b[2] - b[0]) * np.array([[x0, y0], [x0 + 0.4, y0], [x0 + 0.4, y0 + 0.5], [x0, y0 + 0.5]]),
             np.full(3, rng.uniform(0.75, 1.0)) * (0.85 + 0.15 * _random_color(rng)))
    side_wall = left if rng.random() < 0.5 else right
    if rng.random() < 0.6:  # a door
        s0 = rng.uniform(0.2, 0.6)
        fill(_quad_on_wall(side_wall, s0, s0 + 0.25, 0.25, 1.0), _random_color(rng) * 0.8)
    for _ in range(rng.integers(0, 4)):  # frames and posters
        s0, t0 = rng.uniform(0.05, 0.7), rng.uniform(0.15, 0.5)
        fill(_quad_on_wall(side_wall, s0, s0 + rng.uniform(0.1, 0.25), t0, t0 + rng.uniform(0.1, 0.25)),
             _random_color(rng))
    light = 1 + 0.25 * cv2.resize(fractal_noise(rng, 32, (2, 4)), (w, h))
    return cv2.GaussianBlur(img * light[..., None], (0, 0), 0.6)


def _stripe_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Stripes, checks or blinds, seen in perspective."""
    n = 256
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    period = rng.uniform(8, 60)
    phase = (xx / period) % 1.0
    colors = [_random_color(rng) for _ in range(rng.integers(2, 4))]
    idx = np.minimum((phase * len(colors)).astype(int), len(colors) - 1)
    if rng.random() < 0.3:  # checks
        idx = (idx + ((yy / period) % 1.0 * len(colors)).astype(int)) % len(colors)
    plane = np.stack(colors)[idx]
    src = np.float32([[0, 0], [n, 0], [n, n], [0, n]])
    dst = np.float32([[rng.uniform(-0.4, 0.2) * w, rng.uniform(-0.4, 0.2) * h],
                      [rng.uniform(0.8, 1.4) * w, rng.uniform(-0.4, 0.2) * h],
                      [rng.uniform(0.8, 1.4) * w, rng.uniform(0.8, 1.4) * h],
                      [rng.uniform(-0.4, 0.2) * w, rng.uniform(0.8, 1.4) * h]])
    angle = rng.uniform(0, 180)
    rot = cv2.getRotationMatrix2D((n / 2, n / 2), angle, 1.0)
    plane = cv2.warpAffine(plane, rot, (n, n), borderMode=cv2.BORDER_REFLECT)
    img = cv2.warpPerspective(plane, cv2.getPerspectiveTransform(src, dst), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    return img * (1 + 0.15 * cv2.resize(fractal_noise(rng, 32, (2, 4)), (w, h)))[..., None]


def _bokeh_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Out-of-focus lights: soft discs added over a dark, blurred base."""
    img = _blob_background(rng, w, h) * rng.uniform(0.2, 0.7)
    base = _random_color(rng, rng.uniform(0.2, 0.8))
    for _ in range(rng.integers(15, 80)):
        r = rng.uniform(0.02, 0.12) * max(w, h)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0, y0 = max(int(cx - r) - 1, 0), max(int(cy - r) - 1, 0)
        x1, y1 = min(int(cx + r) + 2, w), min(int(cy + r) + 2, h)
        if x1 <= x0 or y1 <= y0:
            continue
        disc = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        color = np.clip(base + rng.normal(0, 0.15, 3), 0, 1) * rng.uniform(0.15, 0.5)
        cv2.circle(disc, (int((cx - x0) * 16), int((cy - y0) * 16)), int(r * 16), tuple(float(c) for c in color), -1,
                   cv2.LINE_AA, 4)
        img[y0:y1, x0:x1] += disc
    return cv2.GaussianBlur(img, (0, 0), 0.004 * max(w, h) + 0.5)


def _shelf_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Bookshelves or cupboards: rows of coloured vertical rectangles, slightly skewed."""
    n = 256
    img = np.empty((n, n, 3), np.float32)
    wood = _random_color(rng, 0.4) * 0.7
    img[:] = wood
    y = 0.0
    while y < n:
        row_h = rng.uniform(30, 70)
        x = 0.0
        while x < n:
            bw = rng.uniform(3, 14)
            top = y + rng.uniform(2, row_h * 0.35)
            cv2.rectangle(img, (int(x), int(top)), (int(x + bw), int(y + row_h - 4)),
                          tuple(float(c) for c in _random_color(rng)), -1)
            x += bw + rng.uniform(0, 2)
        cv2.rectangle(img, (0, int(y + row_h - 4)), (n, int(y + row_h)), tuple(float(c) for c in wood * 0.8), -1)
        y += row_h
    m = cv2.getRotationMatrix2D((n / 2, n / 2), rng.uniform(-8, 8), rng.uniform(1.0, 1.6))
    img = cv2.warpAffine(img, m, (n, n), borderMode=cv2.BORDER_REFLECT)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
