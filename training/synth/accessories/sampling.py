"""One head's accessories (`sample_accessories`): the parameters that steer the draw (`AccessoryParams`), then
the torso, hair, beard and glasses drawn in that order from one random stream."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from core.facemodel import FaceModel
from core.layouts import load_layout
from training.synth.accessories.beards import BEARD_STYLE_WEIGHTS, BEARD_STYLES, sample_beard
from training.synth.accessories.glasses import GLASSES_SHAPES, sample_glasses
from training.synth.accessories.hair import HAIR_STYLE_WEIGHTS, HAIR_STYLES, sample_hair
from training.synth.accessories.hair_colors import NATURAL_COLORS, nearest_color_key, sample_color_key
from training.synth.accessories.head import topology
from training.synth.accessories.options import as_skin_rgb, pick
from training.synth.accessories.torso import sample_torso
from training.synth.parts import MeshPart


@dataclass(frozen=True)
class AccessoryParams:
    """Probabilities and optional forced choices for `sample_accessories` (None: drawn at random)."""

    p_beard: float = 0.3
    p_glasses: float = 0.25
    p_sunglasses: float = 0.2        # of the glasses: ~5% of all samples
    p_lens: float = 0.6              # clear or tinted lenses in (non-sun) glasses
    p_torso: float = 1.0
    hair_style: str | None = None    # one of HAIR_STYLES
    hair_color: str | None = None    # one of HAIR_COLORS
    beard_style: str | None = None   # one of BEARD_STYLES, or "none"
    glasses: str | None = None       # one of GLASSES_SHAPES, "sunglasses", or "none"
    collar: str | None = None        # one of COLLARS

    @classmethod
    def coerce(cls, params: AccessoryParams | dict | None) -> AccessoryParams:
        if params is None:
            return cls()
        if isinstance(params, cls):
            return params
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"unknown accessory parameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**params)


def sample_accessories(rng: np.random.Generator, head_vertices: np.ndarray, model: FaceModel,
                       params: AccessoryParams | dict | None = None, skin=None) -> list[MeshPart]:
    """Random torso, hair, beard and glasses for one head (ICT vertices in the canonical frame, cm).

    `params` sets probabilities or forces choices (`AccessoryParams` or a dict of its fields). `skin` (an RGB
    triple, or `appearance.SkinParams`) colours the torso's bare neck and chest, the hand of an occluder; from
    SkinParams the hair also takes its colour (`hair_rgb`) and baldness (`scalp_hair == 0`). Deterministic in
    the rng state. Hair, beard and glasses are in the head frame; the torso and its collar in the body frame.
    """
    p = AccessoryParams.coerce(params)
    topo = topology(model)
    head_vertices = np.asarray(head_vertices, np.float64)
    landmarks = load_layout("ibug68").points(head_vertices, model.triangles)
    parts: list[MeshPart] = []

    style = pick(rng, p.hair_style, HAIR_STYLES, HAIR_STYLE_WEIGHTS, "hair style")
    hair_key = sample_color_key(rng, p.hair_color)
    # Agree with the face texture when the appearance says so: its painted scalp hair and hair colour.
    if p.hair_color is None and getattr(skin, "hair_rgb", None) is not None:
        hair_key = nearest_color_key(skin.hair_rgb)
    if p.hair_style is None and getattr(skin, "scalp_hair", None) == 0:
        style = "bald"
    if rng.random() < p.p_torso:
        parts += sample_torso(rng, head_vertices, topo, as_skin_rgb(skin), p.collar)
    parts += sample_hair(rng, style, head_vertices, landmarks, topo, [t for t in parts if t.frame == "body"], hair_key)

    beard_style = p.beard_style
    if beard_style is None:
        beard_style = pick(rng, None, BEARD_STYLES, BEARD_STYLE_WEIGHTS, "") if rng.random() < p.p_beard else "none"
    if beard_style != "none":
        pick(rng, beard_style, BEARD_STYLES, None, "beard style")
        beard_key = hair_key if rng.random() < 0.8 else (NATURAL_COLORS[rng.integers(len(NATURAL_COLORS))], 1)
        beard = sample_beard(rng, beard_style, head_vertices, landmarks, topo, beard_key)
        if beard is not None:
            parts.append(beard)

    glasses = p.glasses
    if glasses is None:
        glasses = "none"
        if rng.random() < p.p_glasses:
            glasses = "sunglasses" if rng.random() < p.p_sunglasses else pick(rng, None, GLASSES_SHAPES,
                                                                                (0.45, 0.25, 0.15, 0.15), "")
    if glasses != "none":
        sunglasses = glasses == "sunglasses"
        shape = pick(rng, None, GLASSES_SHAPES, (0.3, 0.2, 0.15, 0.35), "") if sunglasses else \
            pick(rng, glasses, GLASSES_SHAPES, None, "glasses shape")
        parts += sample_glasses(rng, shape, sunglasses, head_vertices, landmarks, topo, p.p_lens)
    return parts
