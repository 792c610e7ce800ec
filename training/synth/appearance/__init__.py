"""Albedo of the synthetic faces in ICT UV space: a person's look (`sample_skin` -> `SkinParams`), the face,
back-head and eye textures painted from it, and the colour or texture of every ICT material."""
from training.synth.appearance.backhead import make_backhead_texture
from training.synth.appearance.eyes import make_eye_textures
from training.synth.appearance.face import make_face_texture
from training.synth.appearance.materials import TRANSPARENT_MATERIALS, material_colors, material_textures
from training.synth.appearance.skin import RGB, SkinParams, sample_skin
from training.synth.appearance.uv import MATERIAL_TILES

__all__ = ["MATERIAL_TILES", "RGB", "SkinParams", "TRANSPARENT_MATERIALS", "make_backhead_texture",
           "make_eye_textures", "make_face_texture", "material_colors", "material_textures", "sample_skin"]
