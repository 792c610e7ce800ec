"""Accessories for the synthetic heads, as `MeshPart`s: the bald ICT head, which ends at the neck, gets hair (a
cap, hanging sheets and cards, buns), beards, glasses and a clothed torso (`sample_accessories`), and sometimes a
hand, microphone, mug or phone in front of the face (`sample_occluder`). Units are cm; the frames a part can live
in are described in `training/synth/parts.py`."""
from training.synth.accessories.beards import BEARD_STYLES
from training.synth.accessories.glasses import GLASSES_SHAPES
from training.synth.accessories.hair import HAIR_STYLES
from training.synth.accessories.hair_colors import HAIR_COLORS
from training.synth.accessories.head import neck_anchor
from training.synth.accessories.occluders import OCCLUDERS, sample_occluder
from training.synth.accessories.sampling import AccessoryParams, sample_accessories
from training.synth.accessories.torso import COLLARS

__all__ = ["AccessoryParams", "BEARD_STYLES", "COLLARS", "GLASSES_SHAPES", "HAIR_COLORS", "HAIR_STYLES",
           "OCCLUDERS", "neck_anchor", "sample_accessories", "sample_occluder"]
