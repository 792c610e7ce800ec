"""Camera and image-pipeline effects that make clean renders look like photographs.

Every effect is photometric or a point-symmetric filter: none moves image content, so landmark positions stay
exact. Blur kernels are centred (a motion-blur streak is symmetric about its centre), resampling uses OpenCV's
pixel-centre-aligned resize, and chromatic aberration scales red and blue about the image centre by at most a
fraction of a pixel while green, which dominates luminance, stays put.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# Probability of each effect at strength 1 (scaled by strength, capped at 1).
PROBABILITIES: dict[str, float] = {
    "defocus": 0.15, "gaussian_blur": 0.2, "motion_blur": 0.12, "exposure": 0.6, "white_balance": 0.45,
    "vignetting": 0.3, "chromatic_aberration": 0.1, "low_resolution": 0.2, "noise": 0.5, "grayscale": 0.05,
    "jpeg": 0.5,
}


@dataclass
class EffectParams:
    """What `apply_camera_effects` did: effect name -> its parameters, in the order applied."""

    strength: float
    applied: dict[str, dict[str, float]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.applied)


def apply_camera_effects(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
                         return_params: bool = False) -> np.ndarray | tuple[np.ndarray, EffectParams]:
    """Randomly degrade an (H, W, 3) uint8 RGB image like a real camera would; `strength` 0 returns it unchanged.

    `strength` scales both how often each effect fires and how strong it is. With `return_params` the applied
    effects come back as an `EffectParams` as well.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    params = EffectParams(strength=float(strength))
    if strength <= 0:
        return (image, params) if return_params else image
    s = float(strength)

    def fires(name: str) -> bool:
        return rng.random() < min(PROBABILITIES[name] * s, 1.0)

    h, w = image.shape[:2]
    scale = min(h, w) / 256  # effect sizes are specified for a 256 px image
    img = image.astype(np.float32) * (1 / 255)

    # Optics: lens blur, then camera shake.
    if fires("defocus"):
        radius = rng.uniform(0.7, 2.5) * s * scale
        img = cv2.filter2D(img, -1, _disk_kernel(radius), borderType=cv2.BORDER_REFLECT)
        params.applied["defocus"] = {"radius": round(radius, 3)}
    elif fires("gaussian_blur"):
        sigma = rng.uniform(0.4, 1.6) * s * scale
        img = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        params.applied["gaussian_blur"] = {"sigma": round(sigma, 3)}
    if fires("motion_blur"):
        length, angle = rng.uniform(2, 9) * s * scale, rng.uniform(0, 180)
        img = cv2.filter2D(img, -1, _line_kernel(length, angle), borderType=cv2.BORDER_REFLECT)
        params.applied["motion_blur"] = {"length": round(length, 3), "angle": round(angle, 1)}
    if fires("chromatic_aberration"):
        shift = rng.uniform(0.2, 0.8) * s * scale  # px of red/blue displacement at the image corner
        img = _chromatic_aberration(img, shift)
        params.applied["chromatic_aberration"] = {"corner_shift_px": round(shift, 3)}
    if fires("vignetting"):
        amount = rng.uniform(0.1, 0.5) * s
        yy, xx = np.ogrid[0:h, 0:w]
        r2 = (((xx + 0.5) / w - 0.5) ** 2 + ((yy + 0.5) / h - 0.5) ** 2) * 2  # 1 at the corners
        img *= (1 - amount * r2 ** 1.5).astype(np.float32)[..., None]
        params.applied["vignetting"] = {"amount": round(amount, 3)}

    # Exposure and colour processing.
    if fires("exposure"):
        gain = float(np.clip(np.exp(rng.normal(0, 0.2 * s)), 0.5, 1.8))
        gamma = float(np.exp(rng.normal(0, 0.15 * s)))
        contrast = float(np.exp(rng.normal(0, 0.15 * s)))
        img = np.clip(img * gain, 0, 1) ** gamma
        img = (img - 0.5) * contrast + 0.5
        params.applied["exposure"] = {"gain": round(gain, 3), "gamma": round(gamma, 3), "contrast": round(contrast, 3)}
    if fires("white_balance"):
        temperature = rng.uniform(-1, 1) * s  # -1 blue cast .. 1 orange cast
        tint = rng.uniform(-0.5, 0.5) * s     # magenta / green
        gains = np.array([1 + 0.18 * temperature, 1 - 0.08 * tint, 1 - 0.2 * temperature], np.float32)
        img = img * (gains / gains.mean())
        params.applied["white_balance"] = {"temperature": round(temperature, 3), "tint": round(tint, 3)}

    # Sensor: resolution, then noise on the resolved image.
    if fires("low_resolution"):
        factor = 1 + rng.uniform(0.5, 3.0) * s
        small = (max(int(round(w / factor)), 8), max(int(round(h / factor)), 8))
        img = cv2.resize(cv2.resize(img, small, interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR if rng.random() < 0.7 else cv2.INTER_CUBIC)
        params.applied["low_resolution"] = {"factor": round(factor, 3)}
    if fires("noise"):
        # Variance per unit signal (photon noise) and the std of signal-independent noise: from a clean phone
        # shot to a dim indoor one (std ~ 0.05 in mid-grey at the top end).
        shot = rng.uniform(0.0, 0.004) * s ** 2
        read = rng.uniform(0.002, 0.015) * s
        chroma = rng.random() < 0.5
        sigma = np.sqrt(np.clip(img, 0, 1) * shot + read ** 2)
        n = rng.standard_normal(img.shape if chroma else (h, w, 1), dtype=np.float32)
        if rng.random() < 0.4:  # demosaicing and denoising leave correlated, blotchy noise
            n = cv2.GaussianBlur(n, (0, 0), 0.7).reshape(n.shape) * 1.8
        img = img + sigma * n
        params.applied["noise"] = {"shot": round(shot, 4), "read": round(read, 4), "chroma": float(chroma)}
    if fires("grayscale"):
        img = np.repeat(cv2.cvtColor(np.clip(img, 0, 1), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        params.applied["grayscale"] = {}

    out = cv2.convertScaleAbs(img, alpha=255.0)  # rounds and saturates to uint8
    if fires("jpeg"):
        quality = int(round(95 - rng.uniform(0, 65) * min(s, 1.0)))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            params.applied["jpeg"] = {"quality": float(quality)}
        else:
            logger.warning("JPEG encoding failed; effect skipped")
    return (out, params) if return_params else out


def _disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased uniform disc (out-of-focus lens), normalised, odd-sized so it is centred."""
    n = 2 * int(np.ceil(radius)) + 1
    c = n // 2
    k = np.zeros((n, n), np.float32)
    cv2.circle(k, (c * 16, c * 16), int(round(radius * 16)), 1.0, -1, cv2.LINE_AA, 4)
    k = k + k[::-1] + k[:, ::-1] + k[::-1, ::-1]  # anti-aliasing is not quite symmetric; the kernel must be
    return k / k.sum()


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased line through the kernel centre: symmetric, so the blur does not shift content."""
    n = 2 * int(np.ceil(length / 2)) + 1
    c = n // 2
    k = np.zeros((n, n), np.float32)
    d = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))]) * length / 2
    p0, p1 = np.round((c - d) * 16).astype(int), np.round((c + d) * 16).astype(int)
    cv2.line(k, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, 1, cv2.LINE_AA, 4)
    k = k + k[::-1, ::-1]  # enforce exact point symmetry despite rasterisation rounding
    return k / k.sum()


def _chromatic_aberration(img: np.ndarray, corner_shift: float) -> np.ndarray:
    """Lateral chromatic aberration: red magnified and blue shrunk about the image centre, green unchanged."""
    h, w = img.shape[:2]
    half_diag = 0.5 * np.hypot(w, h)
    center = ((w - 1) / 2, (h - 1) / 2)  # pixel-centre coordinates of the image centre
    out = img.copy()
    for channel, sign in ((0, 1.0), (2, -1.0)):
        m = cv2.getRotationMatrix2D(center, 0.0, 1 + sign * corner_shift / half_diag)
        out[..., channel] = cv2.warpAffine(np.ascontiguousarray(img[..., channel]), m, (w, h),
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out
