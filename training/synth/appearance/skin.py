"""A person's surface appearance drawn at random: skin tone over the full human range, redness, freckles, age,
hair, brows, stubble, makeup, lips, irises, sclera, teeth and gums (`sample_skin` -> `SkinParams`), as sRGB-like
albedos in 0..1, the values a surface has under unit, frontal light."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

RGB = tuple[float, float, float]

# Skin albedo over the range of human skin, lightest (1) to darkest (10), in CIELAB. A Monk-like 10-step scale,
# but placed on in-vivo skin colourimetry (L* ~ 22..76, a* 8..15, b* 10..25) rather than on the Monk swatches,
# which are display orbs and far too pale and grey at both ends to serve as albedo.
_SKIN_LAB = np.array([
    [76, 11, 15], [71, 12, 18], [66, 13, 21], [60, 13.5, 24], [54, 14, 25],
    [47, 14, 25], [40, 13, 22], [33, 12, 18], [27, 10, 14], [22, 8, 10]], np.float32)

_HAIR = {  # name: (rgb, weight for light skin, weight for dark skin)
    "black": ((0.05, 0.04, 0.04), 0.12, 0.55), "dark_brown": ((0.14, 0.09, 0.07), 0.25, 0.30),
    "brown": ((0.27, 0.17, 0.11), 0.20, 0.06), "light_brown": ((0.42, 0.29, 0.18), 0.12, 0.01),
    "dark_blonde": ((0.55, 0.42, 0.27), 0.09, 0.0), "blonde": ((0.74, 0.61, 0.41), 0.08, 0.0),
    "auburn": ((0.40, 0.16, 0.07), 0.06, 0.0), "grey": ((0.50, 0.49, 0.48), 0.05, 0.05),
    "white": ((0.82, 0.81, 0.78), 0.03, 0.03),
}
_IRIS = {  # name: (outer rgb, inner rgb, weight for light skin, weight for dark skin)
    "brown": ((0.30, 0.17, 0.08), (0.22, 0.11, 0.05), 0.36, 0.95),
    "hazel": ((0.36, 0.34, 0.17), (0.42, 0.25, 0.09), 0.15, 0.04),
    "green": ((0.28, 0.40, 0.26), (0.42, 0.36, 0.14), 0.10, 0.005),
    "blue": ((0.30, 0.45, 0.62), (0.46, 0.56, 0.64), 0.29, 0.003),
    "grey": ((0.46, 0.51, 0.54), (0.50, 0.50, 0.44), 0.10, 0.002),
}
_LIPSTICK = [(0.62, 0.06, 0.10), (0.42, 0.04, 0.09), (0.84, 0.42, 0.50), (0.66, 0.42, 0.38), (0.46, 0.10, 0.26),
             (0.88, 0.40, 0.31), (0.40, 0.20, 0.15), (0.30, 0.09, 0.18), (0.75, 0.25, 0.35)]
_EYESHADOW = [(0.40, 0.28, 0.20), (0.55, 0.45, 0.38), (0.62, 0.48, 0.30), (0.70, 0.45, 0.50), (0.40, 0.22, 0.36),
              (0.18, 0.16, 0.17), (0.35, 0.38, 0.45), (0.75, 0.62, 0.40), (0.25, 0.35, 0.30)]
_BLUSH = [(0.90, 0.45, 0.50), (0.92, 0.55, 0.45), (0.85, 0.40, 0.35), (0.70, 0.35, 0.35)]
# Redness lowers green and blue (cheeks, nose, ears on both skin tiles).
REDDEN = np.array([0.0, 0.2, 0.17], np.float32)


@dataclass(frozen=True)
class SkinParams:
    """Everything that decides a person's surface appearance; colours are sRGB-like albedos in 0..1."""

    tone: float                 # 1 (lightest) .. 10 (darkest), continuous Monk-like scale
    skin_rgb: RGB               # base skin albedo
    redness: float              # 0..1: cheeks, nose, ears
    mottling: float             # 0..1: low-frequency unevenness
    pores: float                # 0..1: fine texture
    freckles: float             # 0..1, zero for most people
    moles: int
    age: float                  # 0..1: crease depth, under-eye darkness, forehead lines
    lip_rgb: RGB
    lipstick: bool
    hair_rgb: RGB
    scalp_hair: float           # 0 = bald; otherwise density of the short hair painted on the scalp
    hairline_cm: float          # front hairline height above the brows
    temple_recess_cm: float     # receding temples
    sideburn_cm: float          # sideburn length below the ear top
    brow_rgb: RGB
    brow_thickness_cm: float    # at the widest (inner third) point
    brow_density: float         # 0..1
    stubble: float              # 0..1 (1 = dense short beard)
    stubble_rgb: RGB
    eyeshadow: float            # 0 = none
    eyeshadow_rgb: RGB
    eyeliner: float             # 0 = none, else thickness scale
    eyeliner_wing: float        # 0 = none, else wing length scale
    blush: float                # 0 = none
    blush_rgb: RGB
    eyelash_rgb: RGB
    iris_kind: str              # brown / hazel / green / blue / grey
    iris_rgb: RGB               # outer iris
    iris_inner_rgb: RGB         # collarette, around the pupil
    pupil: float                # pupil radius / iris radius
    limbal_ring: float          # 0..1 darkening of the iris rim
    sclera_rgb: RGB
    teeth_rgb: RGB
    gums_rgb: RGB
    iris_seed: int              # makes the iris texture a function of the params alone

    @property
    def albedo(self) -> RGB:
        """The base skin colour (same as `skin_rgb`), for consumers that only want one skin colour."""
        return self.skin_rgb


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    lab = np.asarray(lab, np.float32).reshape(1, -1, 3)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0], 0, 1)


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    rgb = np.clip(np.asarray(rgb, np.float32), 0, 1).reshape(1, -1, 3)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0]


def _rgb(c: np.ndarray | Sequence[float]) -> RGB:
    c = np.clip(np.asarray(c, float).reshape(3), 0, 1)
    return (round(float(c[0]), 4), round(float(c[1]), 4), round(float(c[2]), 4))


def _jitter(rng: np.random.Generator, color: Sequence[float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(color) * rng.uniform(1 - amount, 1 + amount, 3), 0, 1)


def sample_skin(rng: np.random.Generator) -> SkinParams:
    """Draw one person's appearance: tone uniform over the full 1..10 range, features conditioned on it."""
    tone = float(rng.uniform(1, 10))
    dark = (tone - 1) / 9
    i = min(int(tone - 1), 8)
    lab = _SKIN_LAB[i] + (tone - 1 - i) * (_SKIN_LAB[i + 1] - _SKIN_LAB[i])
    # Undertone: pink (a*) versus olive/golden (b*) at the same lightness.
    lab = lab + np.array([rng.normal(0, 1.5), rng.normal(0, 2.0), rng.normal(0, 2.5)], np.float32)
    skin = _lab_to_rgb(lab)[0]

    masculine = rng.random() < 0.5
    age = float(rng.beta(1.6, 2.4))
    redness = float(rng.beta(2, 3) * (1 - 0.6 * dark))
    freckles = float(rng.uniform(0.2, 1.0)) if rng.random() < 0.35 * (1 - dark) ** 3 + 0.02 else 0.0

    hair_names = list(_HAIR)
    weights = np.array([(1 - dark) * _HAIR[n][1] + dark * _HAIR[n][2] for n in hair_names])
    hair_name = hair_names[rng.choice(len(hair_names), p=weights / weights.sum())]
    if rng.random() < 0.5 * age ** 2:
        hair_name = "grey" if rng.random() < 0.7 else "white"
    hair = _jitter(rng, _HAIR[hair_name][0], 0.12)
    # Brows are usually a little darker than the scalp hair (and stay darker when the hair greys).
    brow = hair * rng.uniform(0.7, 0.95) if hair_name not in ("grey", "white") else hair * rng.uniform(0.45, 0.8)
    bald_p = (0.05 + 0.3 * age) if masculine else 0.01
    scalp_hair = 0.0 if rng.random() < bald_p else float(rng.uniform(0.6, 1.0))

    stubble = 0.0
    if masculine and rng.random() < 0.55:
        stubble = float(np.clip(rng.beta(1.3, 1.6), 0.08, 1.0))

    makeup = rng.random() < (0.03 if masculine else 0.5)
    eyeshadow = float(rng.uniform(0.3, 0.9)) if makeup and rng.random() < 0.6 else 0.0
    eyeliner = float(rng.uniform(0.6, 1.6)) if makeup and rng.random() < 0.6 else 0.0
    wing = float(rng.uniform(0.4, 1.0)) if eyeliner and rng.random() < 0.4 else 0.0
    blush = float(rng.uniform(0.2, 0.6)) if makeup and rng.random() < 0.6 else 0.0
    lipstick = makeup and rng.random() < 0.5

    if lipstick:
        lip = _jitter(rng, _LIPSTICK[rng.integers(len(_LIPSTICK))], 0.12)
    else:
        # Darker skin has more pigmented, browner lips; lighter skin pinker ones.
        lip_lab = _rgb_to_lab(skin)[0] + np.array([rng.uniform(-14, -3) * (1 - 0.4 * dark),
                                                   rng.uniform(8, 20) * (1 - 0.55 * dark),
                                                   rng.uniform(-6, 2) - 3 * dark], np.float32)
        lip = _lab_to_rgb(lip_lab)[0]

    iris_names = list(_IRIS)
    light = (1 - dark) ** 2  # light eyes become rare quickly as skin darkens
    weights = np.array([light * _IRIS[n][2] + (1 - light) * _IRIS[n][3] for n in iris_names])
    iris_name = iris_names[rng.choice(len(iris_names), p=weights / weights.sum())]
    shade = rng.uniform(0.7, 1.25)  # brown spans near-black to light amber
    iris_outer = _jitter(rng, np.asarray(_IRIS[iris_name][0]) * shade, 0.1)
    iris_inner = _jitter(rng, np.asarray(_IRIS[iris_name][1]) * shade, 0.1)

    sclera = np.array([0.92, 0.89, 0.85]) * rng.uniform(0.8, 1.0) * np.array(
        [1.0, rng.uniform(0.95, 1.0), rng.uniform(0.9, 1.0)])
    teeth = (np.array([0.94, 0.92, 0.86]) + rng.beta(2, 3) * np.array([-0.12, -0.18, -0.30])) * rng.uniform(0.85, 1)
    gums = _jitter(rng, (0.78, 0.38, 0.40), 0.08) * (1 - 0.3 * dark * rng.random())
    eyelash = hair * 0.35 if (hair_name in ("blonde", "dark_blonde", "white", "grey") and not makeup) else \
        np.full(3, rng.uniform(0.02, 0.07))

    return SkinParams(
        tone=round(tone, 3), skin_rgb=_rgb(skin), redness=round(redness, 3),
        mottling=round(float(rng.uniform(0.2, 1.0)), 3), pores=round(float(rng.uniform(0.2, 1.0)), 3),
        freckles=round(freckles, 3), moles=int(rng.poisson(1.0)), age=round(age, 3),
        lip_rgb=_rgb(lip), lipstick=bool(lipstick), hair_rgb=_rgb(hair), scalp_hair=round(scalp_hair, 3),
        hairline_cm=round(float(rng.uniform(3.8, 5.8)), 2),
        temple_recess_cm=round(float(rng.uniform(0, 3.0) * age if masculine else rng.uniform(0, 0.8)), 2),
        sideburn_cm=round(float(rng.uniform(1.0, 3.0) if masculine else rng.uniform(0.3, 2.0)), 2),
        brow_rgb=_rgb(brow),
        brow_thickness_cm=round(float(rng.uniform(0.75, 1.25) if masculine else rng.uniform(0.5, 1.0)), 3),
        brow_density=round(float(rng.uniform(0.45, 1.0)), 3),
        stubble=round(stubble, 3), stubble_rgb=_rgb(hair * rng.uniform(0.6, 0.9)),
        eyeshadow=round(eyeshadow, 3), eyeshadow_rgb=_rgb(_jitter(rng, _EYESHADOW[rng.integers(len(_EYESHADOW))], 0.1)),
        eyeliner=round(eyeliner, 3), eyeliner_wing=round(wing, 3),
        blush=round(blush, 3), blush_rgb=_rgb(_jitter(rng, _BLUSH[rng.integers(len(_BLUSH))], 0.08)),
        eyelash_rgb=_rgb(eyelash), iris_kind=iris_name, iris_rgb=_rgb(iris_outer), iris_inner_rgb=_rgb(iris_inner),
        pupil=round(float(rng.uniform(0.22, 0.42)), 3), limbal_ring=round(float(rng.uniform(0.2, 0.7)), 3),
        sclera_rgb=_rgb(sclera), teeth_rgb=_rgb(teeth), gums_rgb=_rgb(gums),
        iris_seed=int(rng.integers(2**31)),
    )
