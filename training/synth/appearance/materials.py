"""What each ICT material looks like for one person: its colour or texture (`material_colors`), all textured
materials at once (`material_textures`), and the transparent helper layers a renderer skips."""
from __future__ import annotations

import numpy as np

from training.synth.appearance.backhead import make_backhead_texture
from training.synth.appearance.eyes import eye_textures, make_eye_textures
from training.synth.appearance.face import make_face_texture
from training.synth.appearance.skin import RGB, SkinParams

TRANSPARENT_MATERIALS = ("M_LacrimalFluid", "M_EyeBlend", "M_EyeOcclusion")


def material_colors(params: SkinParams) -> dict[str, RGB | np.ndarray | None]:
    """Albedo per ICT material: an RGB tuple, a small texture (irises, (128, 128, 3) uint8), or None for
    ICT's transparent helper layers (lacrimal fluid, eye blend, eye occlusion) that a renderer should skip.

    The face and back-head entries are the mean skin colour, a fallback for `make_face_texture` /
    `make_backhead_texture`.
    """
    iris = eye_textures(params, 128, with_sclera=False)["iris"]
    colors: dict[str, RGB | np.ndarray | None] = {
        "M_Face": params.skin_rgb, "M_BackHead": params.skin_rgb, "M_GumsTongue": params.gums_rgb,
        "M_Teeth": params.teeth_rgb, "M_ScleraLeft": params.sclera_rgb, "M_ScleraRight": params.sclera_rgb,
        "M_IrisLeft": iris, "M_IrisRight": iris, "M_EyeLashes": params.eyelash_rgb,
    }
    colors.update({name: None for name in TRANSPARENT_MATERIALS})
    return colors


def material_textures(params: SkinParams, rng: np.random.Generator, face_size: int = 512, back_size: int = 256,
                      eye_size: int = 128) -> dict[str, np.ndarray]:
    """All textured materials at once: M_Face, M_BackHead, and the scleras and irises."""
    eyes = make_eye_textures(params, eye_size)
    return {"M_Face": make_face_texture(params, rng, face_size),
            "M_BackHead": make_backhead_texture(params, rng, back_size),
            "M_ScleraLeft": eyes["sclera"], "M_ScleraRight": eyes["sclera"],
            "M_IrisLeft": eyes["iris"], "M_IrisRight": eyes["iris"]}
