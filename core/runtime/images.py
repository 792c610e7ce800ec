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
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..paths import input_file_problem

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


# Larger images are refused before decoding: a small compressed file can hold an image that decodes to
# gigabytes. 100 megapixels is above every camera sensor in common use.
MAX_IMAGE_PIXELS = 100_000_000

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame segment, walking the segments from the file's start."""
    i = 2
    while i + 9 <= data.size:
        if data[i] != 0xFF:
            return None
        marker = int(data[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        elif marker == 0x01 or 0xD0 <= marker <= 0xD9:  # markers without a length
            i += 2
        else:
            i += 2 + struct.unpack_from(">H", data, i + 2)[0]
    return None


def _tiff_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from the first image file directory (tags 256 and 257)."""
    order = "<" if bytes(data[:2]) == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    if offset + 2 > data.size:
        return None
    (count,) = struct.unpack_from(order + "H", data, offset)
    found = {}
    for entry in range(offset + 2, min(offset + 2 + 12 * count, data.size - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag in (256, 257):
            found[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), data, entry + 8)[0]
    return (found[256], found[257]) if len(found) == 2 else None


def image_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) read from the header of an encoded image (the file's bytes as uint8), without decoding.

    Knows PNG, JPEG, BMP, WebP, TIFF, JPEG 2000, Radiance HDR, PNM and Sun raster; None for anything else or a
    header too short to say.
    """
    head = data[:4096].tobytes()
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return struct.unpack_from(">II", head, 16)
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if head.startswith(b"BM"):
            core_header = struct.unpack_from("<I", head, 14)[0] == 12  # OS/2 1.x: 16-bit sizes
            width, height = struct.unpack_from("<HH" if core_header else "<ii", head, 18)
            return abs(width), abs(height)  # a negative height is a top-down bitmap
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            chunk = head[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                width, height = struct.unpack_from("<HH", head, 26)
                return width & 0x3FFF, height & 0x3FFF
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if head.startswith(b"\x00\x00\x00\x0cjP  ") and (at := head.find(b"ihdr")) > 0:
            height, width = struct.unpack_from(">II", head, at + 4)
            return width, height
        if head.startswith(b"\xff\x4f\xff\x51"):  # JPEG 2000 codestream: SIZ marker
            width, height, x0, y0 = struct.unpack_from(">IIII", head, 8)
            return width - x0, height - y0
        if head.startswith((b"#?RADIANCE", b"#?RGBE")):
            match = re.search(rb"\n\n([-+][XY]) (\d+) ([-+][XY]) (\d+)", head)
            if match:
                first, second = int(match[2]), int(match[4])
                return (second, first) if match[1].endswith(b"Y") else (first, second)
        if (match := re.match(rb"P[1-6](?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)", head)):
            return int(match[1]), int(match[2])
        if head.startswith(b"\x59\xa6\x6a\x95"):
            return struct.unpack_from(">II", head, 4)
    except struct.error:  # a header cut short
        return None
    return None


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an (H, W, 3) RGB uint8 array.

    Grayscale is expanded to RGB, alpha is composited on grey, 16-bit and float images are scaled to 8 bits,
    palette images are expanded, and JPEG EXIF orientation is applied. Raises ImageReadError naming the file for
    anything but a regular file (checked before opening: a FIFO would block) and for an image whose header says
    it has more than MAX_IMAGE_PIXELS pixels (checked before decoding).
    """
    path = Path(path)
    problem = input_file_problem(path)
    if problem:
        raise ImageReadError(path, problem)
    try:
        # np.fromfile + imdecode rather than imread: imread cannot open non-ASCII paths on Windows.
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(path, exc.strerror or str(exc)) from exc
    if data.size == 0:
        raise ImageReadError(path, "the file is empty")
    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageReadError(path, f"{size[0]}x{size[1]} pixels is over the limit of {MAX_IMAGE_PIXELS:,} pixels "
                                   f"(core.runtime.images.MAX_IMAGE_PIXELS); scale it down first")
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
