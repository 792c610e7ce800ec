"""Reading images as RGB uint8, and fitting them to the model's input size (numpy + OpenCV only).

Pixel convention (conventions.md): origin at the top-left corner of the image, so the top-left pixel's centre is
(0.5, 0.5), and resizing an image by s maps a point x to x * s.

`fit_to_input` scales an image uniformly by s = min(W_in / W, H_in / H) and centres it on a black canvas of the
model's input size: p_input = s * p + offset. The centred padding is what the model's own full-frame crop does
to a non-square frame (stn.full_frame_theta), so the model sees the same view either way. The scale is exactly
uniform (square pixels stay square, so one focal length maps back): large reductions first average k x k blocks
(k an integer, after padding the image to a multiple of k), then one affine warp applies the remaining factor.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm",
                              ".ppm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic"})
BACKGROUND_GREY = 128  # transparent pixels are composited on mid grey: neither black nor white biases the model


class ImageReadError(OSError):
    """An image file that cannot be read; the message names the file and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _is_jpeg(data: np.ndarray) -> bool:
    return data.size >= 3 and bytes(data[:3]) == b"\xff\xd8\xff"


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an (H, W, 3) RGB uint8 array.

    Grayscale is expanded to RGB, alpha is composited on grey, 16-bit and float images are scaled to 8 bits,
    palette images are expanded, and JPEG EXIF orientation is applied. Raises ImageReadError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        # np.fromfile + imdecode rather than imread: imread cannot open non-ASCII paths on Windows.
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from exc
    if data.size == 0:
        raise ImageReadError(path, "the file is empty")
    # JPEG has no alpha and no 16-bit: IMREAD_COLOR applies its EXIF orientation. Other formats are read
    # unchanged to keep alpha and bit depth (OpenCV ignores EXIF orientation for those, as most viewers do for PNG).
    flags = cv2.IMREAD_COLOR if _is_jpeg(data) else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as exc:
        raise ImageReadError(path, f"not an image or unsupported format ({exc.err})") from exc
    if image is None or image.size == 0:
        raise ImageReadError(path, "not an image or unsupported format")
    try:
        return to_rgb_uint8(image, bgr=True)
    except ValueError as exc:  # e.g. a multi-spectral TIFF
        raise ImageReadError(path, str(exc)) from exc


def to_rgb_uint8(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any (H, W), (H, W, 1|2|3|4) uint8/uint16/float image -> (H, W, 3) RGB uint8.

    `bgr`: channel order of 3/4-channel input is OpenCV's. Floats are taken in [0, 1].
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1..4, got shape {image.shape}")
    if image.dtype == np.uint8:
        scaled = image.astype(np.float32) if image.shape[2] in (2, 4) else image
        max_value = 255.0
    elif image.dtype == np.uint16:
        scaled, max_value = image.astype(np.float32), 65535.0
    elif np.issubdtype(image.dtype, np.floating):
        scaled, max_value = np.nan_to_num(image.astype(np.float32)).clip(0, 1), 1.0
    else:
        info = np.iinfo(image.dtype)
        scaled, max_value = image.astype(np.float32).clip(0, info.max), float(info.max)
    channels = image.shape[2]
    if channels in (2, 4):
        alpha = scaled[:, :, -1:] / max_value
        colour = scaled[:, :, :-1] * (255.0 / max_value)
        rgb = colour * alpha + BACKGROUND_GREY * (1 - alpha)
    elif scaled.dtype == np.uint8:
        rgb = scaled
    else:
        rgb = scaled * (255.0 / max_value)
    if rgb.dtype != np.uint8:
        rgb = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    # cv2.cvtColor rather than numpy slicing: several times faster on large frames.
    if rgb.shape[2] == 1:
        return cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(rgb)


@dataclass(frozen=True)
class ImageFit:
    """How an original image maps into the model's input: p_input = scale * p_original + offset (pixels)."""

    scale: float
    offset: tuple[float, float]
    original_hw: tuple[int, int]
    input_hw: tuple[int, int]

    def to_input(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) * self.scale + np.asarray(self.offset)

    def to_original(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - np.asarray(self.offset)) / self.scale

    def intrinsics_to_original(self, K: np.ndarray) -> np.ndarray:
        """K of the model-input image -> K of the original image: the same camera, pixels mapped back.

        Projection p_in = f X / Z + c_in and p = (p_in - offset) / s give p = (f / s) X / Z + (c_in - offset) / s.
        """
        K = np.asarray(K, np.float64)
        out = np.eye(3)
        out[0, 0] = K[0, 0] / self.scale
        out[1, 1] = K[1, 1] / self.scale
        out[0, 1] = K[0, 1] / self.scale
        out[:2, 2] = (K[:2, 2] - np.asarray(self.offset)) / self.scale
        return out


def fit_geometry(original_hw: tuple[int, int], input_hw: tuple[int, int]) -> ImageFit:
    h, w = original_hw
    H, W = input_hw
    s = min(W / w, H / h)
    return ImageFit(scale=s, offset=((W - s * w) / 2, (H - s * h) / 2), original_hw=(h, w), input_hw=(H, W))


def fit_to_input(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, ImageFit]:
    """Resize (keep aspect) and pad an (H, W, C) image to `input_hw`; returns it and the mapping (module doc)."""
    fit = fit_geometry(image.shape[:2], input_hw)
    return render_fit(image, fit.scale, fit.offset, (0, 0, input_hw[1], input_hw[0])), fit


def render_fit(image: np.ndarray, scale: float, offset: tuple[float, float], box: tuple[int, int, int, int]
               ) -> np.ndarray:
    """The pixels in `box` (x0, y0, x1, y1, canvas pixel indices) of the image mapped by p' = scale * p + offset
    onto a black canvas: `fit_to_input`'s output when the box is the whole input, or a part of a finer fit.

    Only the part of the image under the box is read, so a small box of a large frame is cheap. Large reductions
    first average k x k blocks (k an integer, blocks aligned to the image's corner, the image padded by repeating
    its last row and column), then one bilinear warp applies the remaining factor.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    k = max(1, math.floor(1 / scale + 0.5))
    # The source pixels under the box, with a margin of 2 reduced pixels for the bilinear taps, on the k grid.
    margin = 2 * k
    sx0 = max(0, math.floor((x0 - offset[0]) / scale) - margin) // k * k
    sy0 = max(0, math.floor((y0 - offset[1]) / scale) - margin) // k * k
    sx1 = min(w, -(-(math.ceil((x1 - offset[0]) / scale) + margin) // k) * k)
    sy1 = min(h, -(-(math.ceil((y1 - offset[1]) / scale) + margin) // k) * k)
    if sx1 <= sx0 or sy1 <= sy0:  # the box is all padding
        return np.zeros((y1 - y0, x1 - x0, image.shape[2] if image.ndim == 3 else 1), image.dtype)
    source = image[sy0:sy1, sx0:sx1]
    if k > 1:
        # Area averaging of whole k x k blocks is an exact x -> x / k; bilinear warps alone would alias.
        pad_h, pad_w = -source.shape[0] % k, -source.shape[1] % k
        if pad_h or pad_w:
            source = cv2.copyMakeBorder(source, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        source = cv2.resize(source, (source.shape[1] // k, source.shape[0] // k), interpolation=cv2.INTER_AREA)
    s = scale * k
    # warpAffine works on pixel indices (centres at integers): i_out = s * i_in + (s - 1) / 2 + offset, here
    # shifted to the source's and the box's corners.
    M = np.array([[s, 0.0, offset[0] + (s - 1) / 2 + scale * sx0 - x0],
                  [0.0, s, offset[1] + (s - 1) / 2 + scale * sy0 - y0]])
    out = cv2.warpAffine(source, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    return out[:, :, None] if out.ndim == 2 else out


def sample_crop(pixels: np.ndarray, theta: np.ndarray, size: int, canvas_hw: tuple[int, int] | None = None,
                corner: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(3, size, size) float32 in [0, 1]: the crop `theta` (2, 3) of a canvas, bilinear and black outside it, as
    the model's own sampling (core.model.stn.sample_crop: F.grid_sample, align_corners=False, zero padding).

    `pixels` (h, w, 3) uint8 is the canvas, or with `canvas_hw` the part of a black canvas of that size starting at
    `corner` (x, y): theta's normalised coordinates are the whole canvas's.
    """
    H, W = pixels.shape[:2] if canvas_hw is None else canvas_hw
    theta = np.asarray(theta, np.float64).reshape(2, 3)
    # Crop pixel index j -> normalised u = (2 j + 1) / size - 1 -> theta -> canvas pixel index (W (x + 1) - 1) / 2,
    # shifted to the part's corner: one affine map from crop indices to the part's indices, as warpAffine samples.
    to_normalised = np.array([[2 / size, 0, 1 / size - 1], [0, 2 / size, 1 / size - 1], [0, 0, 1]])
    to_part = np.array([[W / 2, 0, (W - 1) / 2 - corner[0]], [0, H / 2, (H - 1) / 2 - corner[1]], [0, 0, 1]])
    M = (to_part @ np.vstack([theta, [0, 0, 1]]) @ to_normalised)[:2]
    crop = cv2.warpAffine(pixels.astype(np.float32), M, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crop = crop.reshape(size, size, -1).transpose(2, 0, 1)
    return np.ascontiguousarray(crop, dtype=np.float32) * np.float32(1 / 255)
