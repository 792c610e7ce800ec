"""Accessory geometry: valid, deterministic meshes that sit where they belong on the head."""
from __future__ import annotations

import numpy as np
import pytest

from core.layouts import load_layout
from training.synth import accessories as acc
from training.synth.accessories.head import topology
from training.synth.parts import MeshPart

SEEDS = range(30)
BEARDS = acc.BEARD_STYLES + ("none",)
GLASSES = acc.GLASSES_SHAPES + ("sunglasses", "none")


def _head(model, seed: int) -> np.ndarray:
    rng = np.random.default_rng([99, seed])
    expression = np.zeros(model.num_expressions)
    expression[rng.choice(model.num_expressions, 4, replace=False)] = rng.uniform(0, 0.8, 4)
    if seed % 3 == 0:  # open mouths are the hard case for beards
        expression[list(model.expression_names).index("jawOpen")] = rng.uniform(0.3, 1.0)
    return model.vertices(rng.normal(0, 1, model.num_identities), expression)


def _params(seed: int) -> dict:
    """Cycle through every style so 30 seeds cover them all."""
    return {"hair_style": acc.HAIR_STYLES[seed % len(acc.HAIR_STYLES)], "beard_style": BEARDS[seed % len(BEARDS)],
            "glasses": GLASSES[seed % len(GLASSES)], "collar": acc.COLLARS[seed % len(acc.COLLARS)], "p_lens": 1.0}


@pytest.fixture(scope="module")
def samples(model):
    out = []
    for seed in SEEDS:
        vertices = _head(model, seed)
        parts = acc.sample_accessories(np.random.default_rng(seed), vertices, model, _params(seed),
                                       skin=(0.6, 0.45, 0.35))
        out.append((seed, vertices, parts))
    return out


def _landmarks(model, vertices):
    return load_layout("ibug68").points(vertices, model.triangles)


def _by_name(parts: list[MeshPart], name: str) -> list[MeshPart]:
    return [p for p in parts if p.name == name]


def test_parts_are_valid_meshes(samples):
    for seed, _, parts in samples:
        assert parts, f"seed {seed}: no parts"
        for part in parts:
            part.validate()
            assert part.vertices.dtype == np.float32 and part.triangles.dtype == np.int32
            assert len(part.triangles) > 0, f"seed {seed}: {part.name} has no triangles"
        assert sum(p.num_triangles for p in parts) < 60000


def test_random_draws_are_valid(model):
    vertices = _head(model, 7)
    for seed in SEEDS:
        for part in acc.sample_accessories(np.random.default_rng(1000 + seed), vertices, model):
            part.validate()


def test_same_seed_same_output(model, samples):
    for seed, vertices, parts in samples[:10]:
        again = acc.sample_accessories(np.random.default_rng(seed), vertices, model, _params(seed),
                                       skin=(0.6, 0.45, 0.35))
        assert [p.name for p in again] == [p.name for p in parts]
        for a, b in zip(parts, again):
            np.testing.assert_array_equal(a.vertices, b.vertices)
            np.testing.assert_array_equal(a.triangles, b.triangles)
            if a.texture is not None:
                np.testing.assert_array_equal(a.texture, b.texture)


def test_glasses_lenses_in_front_of_eyes(model, samples):
    checked = 0
    for seed, vertices, parts in samples:
        lenses = _by_name(parts, "glasses_lens")
        if _params(seed)["glasses"] == "none":
            assert not lenses and not _by_name(parts, "glasses_frame")
            continue
        assert len(lenses) == 1 and len(_by_name(parts, "glasses_frame")) == 1
        lm = _landmarks(model, vertices)
        per_lens = len(lenses[0].vertices) // 2
        for k, eye in enumerate((lm[36:42].mean(0), lm[42:48].mean(0))):
            centre = lenses[0].vertices[k * per_lens + 1:(k + 1) * per_lens].mean(0)  # the outline's centre
            assert np.all(np.abs(centre[:2] - eye[:2]) < 1.5), (seed, centre, eye)
            assert centre[2] > eye[2] + 0.5, (seed, centre, eye)
        sun = _params(seed)["glasses"] == "sunglasses"
        assert lenses[0].occludes_landmarks == sun
        checked += 1
    assert checked >= 20


def _segments_cross(p1, p2, q1, q2) -> np.ndarray:
    """Proper intersection of segment arrays p1p2 (N, 2) with q1q2 (M, 2): (N, M) bool."""
    def orient(a, b, c):
        return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                       - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))
    p1, p2, q1, q2 = p1[:, None], p2[:, None], q1[None], q2[None]
    return (orient(p1, p2, q1) * orient(p1, p2, q2) < 0) & (orient(q1, q2, p1) * orient(q1, q2, p2) < 0)


def _inside(points, polygon) -> np.ndarray:
    x, y = points[:, :1], points[:, 1:2]
    x0, y0 = polygon[None, :, 0], polygon[None, :, 1]
    x1, y1 = np.roll(polygon[:, 0], -1)[None], np.roll(polygon[:, 1], -1)[None]
    crosses = (y0 > y) != (y1 > y)
    x_at = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-12, y1 - y0)
    return (crosses & (x < x_at)).sum(1) % 2 == 1


def test_beards_do_not_cover_the_mouth_opening(model, samples):
    checked = 0
    for seed, vertices, parts in samples:
        beards = _by_name(parts, "beard")
        if _params(seed)["beard_style"] == "none":
            assert not beards
            continue
        assert len(beards) == 1, seed
        inner = _landmarks(model, vertices)[60:68, :2]
        tri = beards[0].vertices[beards[0].triangles][..., :2]            # (T, 3, 2), frontal projection
        assert not _inside(tri.reshape(-1, 2), inner).any(), f"seed {seed}: beard vertex over the mouth"
        centre_in_tri = []
        for k in range(len(inner)):  # polygon corners inside a triangle
            d = [np.cross(tri[:, (i + 1) % 3] - tri[:, i], inner[k] - tri[:, i]) for i in range(3)]
            centre_in_tri.append(((d[0] > 0) & (d[1] > 0) & (d[2] > 0)) | ((d[0] < 0) & (d[1] < 0) & (d[2] < 0)))
        assert not np.any(centre_in_tri), f"seed {seed}: beard triangle covers an inner-lip point"
        edges_a = tri.reshape(-1, 2)
        edges_b = np.roll(tri, -1, axis=1).reshape(-1, 2)
        assert not _segments_cross(edges_a, edges_b, inner, np.roll(inner, -1, axis=0)).any(), seed
        checked += 1
    assert checked >= 20


def test_hair_cap_stays_off_the_face(model, samples):
    checked = 0
    for seed, vertices, parts in samples:
        caps = _by_name(parts, "hair_cap")
        if _params(seed)["hair_style"] == "bald":
            assert not caps
            continue
        lm = _landmarks(model, vertices)
        outline = np.concatenate([lm[0:17], lm[26:16:-1]])[:, :2]
        brow_y = lm[17:27, 1].min()
        cap = caps[0].vertices[np.unique(caps[0].triangles)]
        # Below the brows, in front of the jaw's ends (not the back of the head), inside the face outline.
        front = (cap[:, 1] < brow_y) & (cap[:, 2] > min(lm[0, 2], lm[16, 2]) - 1.0)
        assert not _inside(cap[front, :2], outline).any(), f"seed {seed}: hair cap over the face"
        checked += 1
    assert checked >= 20


@pytest.mark.slow
def test_torso_hangs_from_the_neck(model, samples):
    topo = topology(model)
    for seed, vertices, parts in samples:
        torso = _by_name(parts, "torso")[0]
        assert torso.frame == "body"
        ring = vertices[topo.neck_ring]
        # Dense samples over the torso's upper triangles stand in for its surface.
        top = torso.triangles[(torso.vertices[torso.triangles][..., 1].max(1) > ring[:, 1].min() - 3)]
        w = np.array([[a, b, 1 - a - b] for a in np.linspace(0, 1, 6) for b in np.linspace(0, 1, 6) if a + b <= 1])
        surface = np.einsum("kj,tjd->tkd", w, torso.vertices[top]).reshape(-1, 3)
        gap = np.linalg.norm(ring[:, None] - surface[None], axis=2).min(axis=1)
        assert gap.max() < 1.0, f"seed {seed}: torso {gap.max():.2f} cm from the neck"
        np.testing.assert_allclose(acc.neck_anchor(model, vertices), ring.mean(0), atol=1e-4)


def test_occluders_sit_between_camera_and_face():
    face = np.array([2.0, -1.0, 60.0])
    kinds = set()
    for seed in SEEDS:
        parts = acc.sample_occluder(np.random.default_rng(seed), face, 15.0, skin=(0.5, 0.4, 0.3), probability=1.0)
        assert parts
        for part in parts:
            part.validate()
            assert part.frame == "camera" and part.occludes_landmarks
            kinds.add(part.name)
        verts = np.concatenate([p.vertices for p in parts])
        assert verts[:, 2].min() > 20 and np.median(verts[:, 2]) < face[2] - 2
        # Overlaps the face in the image: some vertex projects within a face-sized box around its centre.
        proj = verts[:, :2] / verts[:, 2:] * face[2]
        assert (np.abs(proj - face[:2]) < 9.0).all(axis=1).any(), seed
    assert {"hand", "microphone", "mug", "phone"} <= kinds
    none = [acc.sample_occluder(np.random.default_rng(s), face, 15.0) for s in range(200)]
    assert 0.1 < np.mean([bool(p) for p in none]) < 0.3


def test_ears_exist_in_the_ict_head(model):
    """No ear geometry is added: the ICT head has ears (they stick out beyond the skull at ear height)."""
    topo = topology(model)
    for ids in topo.ear_ids:
        assert len(ids) > 50
        assert np.abs(model.neutral[ids, 0]).max() > 8.5


def test_appearance_skin_params_are_understood(model):
    """The engine passes `appearance.SkinParams`: skin colour, hair colour and baldness come from it."""
    appearance = pytest.importorskip("training.synth.appearance")
    vertices = _head(model, 3)
    for seed in range(10):
        skin = appearance.sample_skin(np.random.default_rng(seed))
        parts = acc.sample_accessories(np.random.default_rng(seed), vertices, model, skin=skin)
        names = [p.name for p in parts]
        if skin.scalp_hair == 0:
            assert "hair_cap" not in names
        for part in parts:
            part.validate()
        for part in acc.sample_occluder(np.random.default_rng(seed), np.array([0, 0, 60.0]), 15.0, skin=skin,
                                        probability=1.0):
            part.validate()
