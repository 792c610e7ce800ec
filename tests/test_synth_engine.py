"""The synthetic data engine end to end: determinism, sharding, ground truth, styles, sequences, CLI errors."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from core import geometry
from core.layouts import load_layout
from training.synth.__main__ import main as synth_main
from training.synth.__main__ import parse_shard
from training.synth.sample import Sample
from training.synth.scene import EngineConfig, SyntheticEngine
from training.synth.sequences import load_sequence, render_sequence, write_sequence
from training.synth.styles import STYLES, get_style, style_points


@pytest.fixture(scope="module")
def engine():
    return SyntheticEngine(seed=3, config=EngineConfig(width=128, height=128))


def test_same_seed_and_index_give_the_same_sample(engine):
    other = SyntheticEngine(seed=3, config=EngineConfig(width=128, height=128))
    a, b = engine.sample(5), other.sample(5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.R, b.R)
    assert not np.array_equal(engine.sample(6).image, a.image)


def test_truth_for_any_layout(engine):
    sample = engine.sample(1)
    for name in ["ibug68", "wflw98", "dense"]:
        layout = load_layout(name)
        truth = sample.truth(layout)
        assert truth.points_2d.shape == (len(layout), 2) and truth.points_3d.shape == (len(layout), 3)
        assert np.isfinite(truth.points_2d).all() and set(np.unique(truth.visibility)) <= {0.0, 1.0}
        # Re-projecting the canonical 3D points with the sample's camera reproduces the 2D ground truth.
        again = geometry.project_canonical(truth.points_3d, sample.K, sample.R, sample.t)
        assert np.allclose(again, truth.points_2d, atol=1e-3)


@pytest.mark.slow
def test_visibility_follows_yaw(engine):
    """Turned far to one side, the head hides its far jaw and not its near jaw."""
    hidden_far, visible_near = [], []
    for i in range(40):
        sample = engine.sample(i)
        yaw = sample.tags["yaw"]
        if abs(yaw) < 60:
            continue
        vis = sample.truth(load_layout("ibug68")).self_visible
        # yaw > 0 turns the face to the subject's left: its left jaw (iBUG 12-16) goes to the far side.
        far, near = (range(12, 17), range(0, 5)) if yaw > 0 else (range(0, 5), range(12, 17))
        hidden_far.append(vis[list(far)].mean())
        visible_near.append(vis[list(near)].mean())
    assert hidden_far, "no strongly turned head in the first 40 samples"
    assert np.mean(hidden_far) < 0.3 and np.mean(visible_near) > 0.6


def test_save_and_load_keep_the_ground_truth(engine, tmp_path):
    sample = engine.sample(2)
    npz = sample.save(tmp_path, "s", image_format="png")
    loaded = Sample.load(npz)
    layout = load_layout("ibug68")
    a, b = sample.truth(layout), loaded.truth(layout)
    assert np.array_equal(loaded.image, sample.image)
    assert np.allclose(a.points_2d, b.points_2d) and np.array_equal(a.visibility, b.visibility)


def test_styles_differ_where_datasets_disagree(engine):
    """ibug2d moves the far jaw to the silhouette under yaw, leaves the nose tip alone; aflw3d lowers the jaw."""
    model = engine.model
    verts = model.vertices()
    R = geometry.pose_to_rotation(50, 0, 0)
    K = geometry.intrinsics(400, 256, 256)
    t = np.array([0.0, 0.0, 60.0]) - R @ np.array([0.0, 0.0, 8.0])
    canonical = style_points(get_style("canonical"), verts, K, R, t, model)
    ibug = style_points(get_style("ibug2d"), verts, K, R, t, model)
    aflw = style_points(get_style("aflw3d"), verts, K, R, t, model)
    assert np.allclose(canonical[30], ibug[30])                       # nose tip: all agree
    far_jaw = list(range(12, 17))                                        # yaw > 0: subject's left side is far
    shift = np.linalg.norm(ibug[far_jaw] - canonical[far_jaw], axis=1)
    assert shift.max() > 3.0                                             # pixels: slid out to the outline
    assert np.all(aflw[:17, 1] >= canonical[:17, 1] - 1e-6)              # lower jaw = larger image y
    assert set(STYLES) >= {"canonical", "ibug2d", "aflw3d", "wflw"}
    assert style_points(get_style("wflw"), verts, K, R, t, model).shape == (98, 2)


@pytest.mark.slow
def test_sequence_roundtrip(engine, tmp_path):
    frames = render_sequence(engine, 0, 6, "static")
    video = write_sequence(frames, tmp_path, "clip")
    import cv2

    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 6
    truth = load_sequence(tmp_path / "clip.npz")
    assert len(truth) == 6 and np.allclose(truth[3].R, frames[3].R)
    # A static clip: the head does not move, only sensor noise changes the pixels.
    assert np.allclose(frames[0].t, frames[5].t) and not np.array_equal(frames[0].image, frames[5].image)
    moving = render_sequence(engine, 1, 40, "moving")
    steps = np.abs(np.diff([f.tags["yaw"] for f in moving]))
    assert steps.max() < 5.0 and steps.sum() > 0.5   # degrees per frame: smooth, but moving


def test_load_sequence_reads_each_array_once(engine, tmp_path, monkeypatch):
    """An NpzFile decompresses a whole array on every access: read per frame, a long take costs the square of its
    length in time and memory. load_sequence must read each array once, whatever the clip's length."""
    frames = render_sequence(engine, 2, 5, "moving")
    write_sequence(frames, tmp_path, "clip")
    reads: collections.Counter[str] = collections.Counter()
    real_load = np.load

    class CountingNpz:
        def __init__(self, npz):
            self.npz = npz

        def __getitem__(self, key):
            reads[key] += 1
            return self.npz[key]

        def __getattr__(self, name):
            return getattr(self.npz, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.npz.close()

    monkeypatch.setattr(np, "load", lambda *args, **kwargs: CountingNpz(real_load(*args, **kwargs)))
    truth = load_sequence(tmp_path / "clip.npz")
    assert {"depth", "part_id", "head_depth"} <= set(reads) and max(reads.values()) == 1, dict(reads)
    # Frames are views of the one array read, not copies of their own.
    for name in ("depth", "part_id", "head_depth"):
        first, last = getattr(truth[0], name), getattr(truth[4], name)
        assert first.base is not None and first.base is last.base, name
    assert len(truth) == 5 and np.array_equal(truth[4].part_id, frames[4].part_id)
    assert np.allclose(truth[4].head_depth, frames[4].head_depth, rtol=1e-3)


@pytest.mark.parametrize("spec,ok", [("0/4", (0, 4)), ("3/4", (3, 4)), ("5/4", None), ("4/4", None),
                                     ("-1/4", None), ("a/b", None), ("1", None), ("0/0", None)])
def test_shard_spec(spec, ok):
    if ok:
        assert parse_shard(spec) == ok
    else:
        with pytest.raises(ValueError, match="shard"):
            parse_shard(spec)


def test_cli_reports_a_bad_shard_clearly(tmp_path, caplog):
    assert synth_main(["generate", "--out", str(tmp_path), "--num", "4", "--shard", "5/4"]) == 2
    assert "5/4" in caplog.text and "0..3" in caplog.text


@pytest.mark.slow
def test_shards_partition_the_dataset(tmp_path):
    for k in range(2):
        assert synth_main(["generate", "--out", str(tmp_path), "--num", "5", "--shard", f"{k}/2", "--size", "64"]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.npz")) == [f"sample_{i:07d}" for i in range(5)]


def test_sheet_and_sequence_keep_existing_files_unless_overwrite(tmp_path, caplog):
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"a user's picture")
    args = ["sheet", "--out", str(sheet), "--num", "1", "--size", "64", "--supersample", "1"]
    assert synth_main(args) == 2
    assert "sheet.png already exists" in caplog.text and sheet.read_bytes() == b"a user's picture"
    assert synth_main([*args, "--overwrite"]) == 0 and sheet.read_bytes()[:4] == b"\x89PNG"

    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "static_0_001.npz").write_bytes(b"kept")  # the second clip's name: refused before the first renders
    args = ["sequence", "--out", str(clips), "--num", "2", "--frames", "2", "--kind", "static", "--size", "64",
            "--supersample", "1"]
    assert synth_main(args) == 2
    assert sorted(p.name for p in clips.iterdir()) == ["static_0_001.npz"]
    assert (clips / "static_0_001.npz").read_bytes() == b"kept"
    assert synth_main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in clips.iterdir()) == ["static_0_000.mp4", "static_0_000.npz", "static_0_001.mp4",
                                                       "static_0_001.npz"]
