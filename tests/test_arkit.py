"""core.arkit: the ARKit names and their ICT sources, and matching a rig's shape-key names to them."""
from __future__ import annotations

import numpy as np
import pytest

from core.arkit import (ARKIT52_FROM_ICT, ARKIT52_NAMES, ICT_EXPRESSION_NAMES, match_arkit_name, match_shape_keys,
                        to_arkit52)
from core.facemodel import ict_to_arkit_name


# --- ICT to ARKit ---------------------------------------------------------------------------------------------


def test_to_arkit52_names_and_mapping():
    assert len(ARKIT52_NAMES) == len(set(ARKIT52_NAMES)) == 52
    assert ARKIT52_NAMES[:3] == ("eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft")
    assert ARKIT52_NAMES[14:18] == ("jawForward", "jawLeft", "jawRight", "jawOpen")
    assert ARKIT52_NAMES[-1] == "tongueOut"
    dropped = {"PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R"}
    split = {"browInnerUp_L", "browInnerUp_R", "cheekPuff_L", "cheekPuff_R"}
    direct = {ict_to_arkit_name(n) for n in ICT_EXPRESSION_NAMES if n not in dropped | split}
    assert set(ARKIT52_NAMES) == direct | {"browInnerUp", "cheekPuff", "tongueOut"}

    rng = np.random.default_rng(11)
    w = rng.uniform(0, 1, (4, 57))
    w[3] = np.nan
    arkit = to_arkit52(w)
    for k, name in enumerate(ARKIT52_NAMES):
        sources = [ICT_EXPRESSION_NAMES.index(n) for n in ARKIT52_FROM_ICT[name]]
        expected = w[:3, sources].mean(1) if sources else np.zeros(3)
        np.testing.assert_allclose(arkit[:3, k], expected, err_msg=name)
    assert np.isnan(arkit[3]).all()
    i, j = ICT_EXPRESSION_NAMES.index("browInnerUp_L"), ICT_EXPRESSION_NAMES.index("browInnerUp_R")
    one_sided = np.zeros(57)
    one_sided[i] = 0.8
    assert to_arkit52(one_sided)[ARKIT52_NAMES.index("browInnerUp")] == pytest.approx(0.4)
    assert to_arkit52(one_sided, combine="max")[ARKIT52_NAMES.index("browInnerUp")] == pytest.approx(0.8)
    assert ARKIT52_FROM_ICT["browInnerUp"] == (ICT_EXPRESSION_NAMES[i], ICT_EXPRESSION_NAMES[j])
    # The ICT-only shapes have no effect; tongueOut is always 0.
    only_dropped = np.zeros(57)
    only_dropped[[ICT_EXPRESSION_NAMES.index(n) for n in dropped]] = 1.0
    assert not to_arkit52(only_dropped).any()
    assert ARKIT52_FROM_ICT["eyeBlinkLeft"] == ("eyeBlink_L",)


# --- shape-key names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "eyeBlinkLeft", "eyeBlink_L", "EyeBlinkLeft", "eye_blink_left", "Left_eyeBlink", "L_eyeBlink", "CTRL_eyeBlinkL",
    "blendShape1.eyeBlinkLeft", "eyeBlink.L", "eyeblinkleft", "EYE_BLINK_L", "eyeBlink_l", "eyeBlink_L.001",
    "ns:eyeBlinkLeft", "|grp|blendShape1.eyeBlink_L", "bs_eyeBlinkLeft", "EyeBlink_Left",
])
def test_spellings_of_eye_blink_left(name: str) -> None:
    assert match_arkit_name(name) == "eyeBlinkLeft"


@pytest.mark.parametrize("name, expected", [
    ("jaw_open", "jawOpen"), ("JawOpen", "jawOpen"), ("JAW_OPEN", "jawOpen"),
    ("mouthSmile_R", "mouthSmileRight"), ("R_mouthSmile", "mouthSmileRight"), ("mouth_smile_right", "mouthSmileRight"),
    ("eyeLookInL", "eyeLookInLeft"), ("eyeLookUp_R", "eyeLookUpRight"), ("mouthRollUpper", "mouthRollUpper"),
    ("mouthrollupper", "mouthRollUpper"), ("browInnerUp", "browInnerUp"), ("cheekPuff", "cheekPuff"),
    ("tongueOut", "tongueOut"), ("noseSneer_L", "noseSneerLeft"), ("blendShape1.mouthClose", "mouthClose"),
    # Left/Right that is a direction of motion, not a side of the face.
    ("jawLeft", "jawLeft"), ("JawRight", "jawRight"), ("jaw_L", "jawLeft"), ("mouth_left", "mouthLeft"),
    ("mouthRight", "mouthRight"),
])
def test_other_names(name: str, expected: str) -> None:
    assert match_arkit_name(name) == expected


@pytest.mark.parametrize("name", ["Basis", "basis", "Key 1", "smile", "eye", "Left", "browInnerUp_L", ""])
def test_non_arkit_names(name: str) -> None:
    assert match_arkit_name(name) is None


def test_all_arkit_names_match_themselves_in_every_style() -> None:
    for arkit in ARKIT52_NAMES:
        assert match_arkit_name(arkit) == arkit
        assert match_arkit_name(arkit.upper()) == arkit
        assert match_arkit_name("blendShape1." + arkit) == arkit
        if arkit.endswith("Left") and arkit not in ("jawLeft", "mouthLeft"):
            assert match_arkit_name(arkit[:-4] + "_L") == arkit
            assert match_arkit_name("Left_" + arkit[:-4]) == arkit


def test_match_shape_keys_mapping_and_leftovers() -> None:
    keys = ["Basis", "EyeBlink_L", "eyeBlinkLeft", "jaw_open", "Extra", "mouthSmile_R", "browInnerUp_L"]
    match = match_shape_keys(keys)
    assert set(match.mapping) == set(ARKIT52_NAMES)
    assert match.mapping["eyeBlinkLeft"] == "eyeBlinkLeft"  # the exact spelling wins over EyeBlink_L
    assert match.mapping["jawOpen"] == "jaw_open"
    assert match.mapping["mouthSmileRight"] == "mouthSmile_R"
    assert match.mapping["eyeBlinkRight"] is None
    assert match.matched == {"eyeBlinkLeft": "eyeBlinkLeft", "jawOpen": "jaw_open",
                             "mouthSmileRight": "mouthSmile_R"}
    assert match.unmatched_targets == ["EyeBlink_L", "Extra", "browInnerUp_L"]  # original order, Basis skipped
    assert len(match.unmatched_arkit) == len(ARKIT52_NAMES) - 3
    assert "eyeBlinkRight" in match.unmatched_arkit


def test_match_shape_keys_first_of_equals_wins() -> None:
    match = match_shape_keys(["EyeBlink_L", "eye_blink_left"])
    assert match.mapping["eyeBlinkLeft"] == "EyeBlink_L"
    assert match.unmatched_targets == ["eye_blink_left"]


def test_match_shape_keys_nothing() -> None:
    match = match_shape_keys(["Foo", "Bar"])
    assert not match.matched
    assert match.unmatched_targets == ["Foo", "Bar"]
    assert match.unmatched_arkit == list(ARKIT52_NAMES)
