"""Training: config merging, dataset specs and mixing, dataset items, losses, training every variant, exact
resume after a stop, atomic checkpoints. Uses a tiny synthetic set generated once per session."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

import dataset_fixtures as fx
from model_fixtures import SMALL
from core.layouts import SEMANTICS
from core.model import MODEL_VARIANTS, create_model, stn
from training import train as train_mod
from training.data import (MixSampler, RealDataset, SyntheticDataset, build_mix, collate, grow_box, layout_arrays,
                           make_dataset, parse_spec, photometric)
from training.losses import compute_losses
from training.train import load_config, main, merge_config, save_checkpoint, train

torch.set_num_threads(1)

TINY_YAML = Path(__file__).parents[1] / "training" / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.synth.__main__ import main as synth_main

    root = tmp_path_factory.mktemp("synth")
    assert synth_main(["generate", "--out", str(root), "--num", "24", "--seed", "0", "--size", "128"]) == 0
    return root


def small_config(run_dir: Path, synth_root: Path, variant: str = "full", **sections: dict) -> dict:
    """A few seconds of training: 64 px crop, batch 4, logging every step, no bar."""
    config = {
        "run_dir": str(run_dir),
        "model": {"variant": variant, **SMALL},
        "data": {"train": f"synthetic:root={synth_root},limit=5,style=canonical", "image_size": 128,
                 "queries_per_image": 96, "negatives": 0.0, "augment": False, "num_workers": 0,
                 "val_fraction": 0.2},
        "optim": {"batch_size": 4, "steps": 16, "lr": 1e-3, "warmup_steps": 1},
        "log": {"every": 1, "val_every": 1000, "image_every": 1000, "ckpt_every": 1000, "val_batches": 1,
                "images": 2, "progress": False, "tensorboard": False},
        "runtime": {"threads": 1},
    }
    return merge_config(merge_config(load_config(), config), sections)


def read_metrics(run_dir: Path, split: str = "train") -> list[dict]:
    return [row for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if row["split"] == split]


# ---------------------------------------------------------------------------------------------- config

def test_config_merge_experiment_and_overrides(tmp_path: Path) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("model:\n  crop_size: 96\noptim:\n  lr: 1e-3\n  steps: 50\n")
    cfg = load_config(experiment, ["optim.steps=7", "data.augment=false", "model.variant=stn_2d",
                                   "loss.landmark_fn=wing", "optim.betas=[0.8, 0.9]", "data.val=null"])
    assert cfg["optim"]["lr"] == pytest.approx(1e-3) and isinstance(cfg["optim"]["lr"], float)
    assert cfg["optim"]["steps"] == 7 and cfg["data"]["augment"] is False and cfg["data"]["val"] is None
    assert cfg["model"] == {"variant": "stn_2d", "crop_size": 96}
    assert cfg["loss"]["landmark_fn"] == "wing" and cfg["optim"]["betas"] == [0.8, 0.9]
    assert cfg["optim"]["warmup_steps"] == 1000  # untouched defaults survive
    with pytest.raises(KeyError, match="optim.lrr"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(KeyError, match="model.crop"):
        load_config(None, ["model.crop=1"])
    with pytest.raises(ValueError, match="section"):
        load_config(None, ["optim=3"])
    tiny = load_config(TINY_YAML)
    assert tiny["optim"]["steps"] == 500 and tiny["model"]["crop_size"] == 96
    for path in TINY_YAML.parent.glob("ablation_*.yaml"):  # every shipped config is valid
        assert load_config(path)["model"]["variant"] == path.stem.removeprefix("ablation_")


def test_cli_trains_and_saves_resolved_config(synth_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "cli"
    code = main(["--config", str(TINY_YAML), "--run-dir", str(run_dir), f"data.train=synthetic:root={synth_root}",
                 "optim.steps=2", "optim.batch_size=2", "model.crop_size=64", "data.num_workers=0",
                 "log.progress=false", "log.val_batches=1", "runtime.threads=1", "data.queries_per_image=80"])
    assert code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["run_dir"] == str(run_dir) and saved["optim"]["steps"] == 2
    assert saved["model"]["crop_size"] == 64 and saved["model"]["hidden"] == 128  # tiny.yaml, then override
    assert saved["optim"]["lr"] == pytest.approx(2e-3)
    assert (run_dir / "last.pt").is_file() and list((run_dir / "images").glob("step_*.png"))
    assert list((run_dir / "tb").iterdir())  # TensorBoard events
    assert read_metrics(run_dir, "val")
    assert main(["--run-dir", str(tmp_path / "bad"), "optim.nope=1"]) == 2


# ---------------------------------------------------------------------------------------------- data

def test_parse_spec_and_mixing(synth_root: Path, tmp_path: Path) -> None:
    assert parse_spec("synthetic:root=data/synth,style=mix") == ("synthetic", {"root": "data/synth", "style": "mix"})
    fx.make_300w(tmp_path / "300w")
    mix = build_mix(f"synthetic:root={synth_root},style=ibug2d,weight=3; 300w:root={tmp_path / '300w'},weight=1",
                    image_size=64)
    assert [type(d) for d in mix.datasets] == [SyntheticDataset, RealDataset]
    assert mix.weights == [3.0, 1.0] and len(mix) == 24 + 3
    probs = mix.item_probabilities()
    assert float(probs[:24].sum()) == pytest.approx(0.75) and float(probs.sum()) == pytest.approx(1.0)
    keys = MixSampler(mix, seed=0, epoch_size=4000).keys()
    share = np.mean([index < 24 for index, _ in keys])
    assert abs(share - 0.75) < 0.04
    item = mix[keys[0]]
    assert item["image"].shape == (3, 64, 64)

    with pytest.raises(ValueError, match="unknown dataset"):
        make_dataset(f"nosuch:root={tmp_path}")
    with pytest.raises(ValueError, match="expected key=value"):
        make_dataset(f"synthetic:root={synth_root},oops")
    with pytest.raises(ValueError, match="unknown option"):
        make_dataset(f"synthetic:root={synth_root},colour=red")
    with pytest.raises(ValueError, match="style"):
        make_dataset(f"synthetic:root={synth_root},style=picasso")
    fx.make_cofw_v5(tmp_path / "cofw")
    with pytest.raises(ValueError, match="cofw29"):
        make_dataset(f"cofw:root={tmp_path / 'cofw'}")


def test_sampler_order_is_a_function_of_seed_and_epoch(synth_root: Path) -> None:
    mix = build_mix(f"synthetic:root={synth_root}")
    a, b = MixSampler(mix, seed=3), MixSampler(mix, seed=3)
    assert a.keys() == b.keys() and sorted(i for i, _ in a.keys()) == list(range(24))  # a permutation
    b.set_epoch(1)
    assert a.keys() != b.keys()
    a.set_epoch(1, skip=5)
    assert list(a) == b.keys()[5:]
    shards = [MixSampler(mix, seed=3, rank=r, world=2).keys() for r in range(2)]
    assert shards[0] and sorted(shards[0] + shards[1]) == sorted(MixSampler(mix, seed=3).keys())


@pytest.mark.parametrize("style", ["canonical", "ibug2d", "aflw3d", "wflw", "mix"])
def test_synthetic_items(synth_root: Path, style: str) -> None:
    ds = SyntheticDataset(synth_root, style=style, queries_per_image=100, negatives=0.0, augment=True,
                          image_size=96)
    for key in [(0, 1), (1, 2), (5, 7)]:
        item = ds[key]
        q = item["queries"].shape[0]
        style_id = int(item["style_id"])
        expected = {"canonical": 100, "ibug2d": 68, "aflw3d": 68, "wflw": 98}
        name = {v: k for k, v in SEMANTICS.items()}[style_id]
        assert q == expected[name] and (style == "mix" or name == style)
        assert item["image"].shape == (3, 96, 96) and 0 <= float(item["image"].min()) <= float(item["image"].max()) <= 1
        for field, shape in [("normals", (q, 3)), ("targets_2d", (q, 2)), ("visibility", (q,)), ("valid", (q,)),
                             ("self_visible", (q,)), ("points_3d", (q, 3)), ("box", (4,)), ("crop_box", (4,)),
                             ("K", (3, 3)), ("R", (3, 3)), ("t", (3,))]:
            assert item[field].shape == shape, field
        assert float(item["is_face"]) == 1 and float(item["has_camera"]) == 1
        assert float(item["has_3d"]) == float(item["has_vis"]) == float(name == "canonical")
        assert ds[key]["targets_2d"].equal(item["targets_2d"])  # an item is a function of its key
    assert ds[(0, 1)]["image"].shape == ds[0]["image"].shape


def test_synthetic_resize_keeps_the_camera_exact(synth_root: Path) -> None:
    item = SyntheticDataset(synth_root, negatives=0.0, augment=False, image_size=96, queries_per_image=200)[3]
    cam = item["points_3d"] @ item["R"].T + item["t"]
    uv = cam @ item["K"].T
    uv = uv[:, :2] / uv[:, 2:]
    assert torch.allclose(uv, item["targets_2d"], atol=0.1)
    assert float(item["box"][2]) <= 96 * 1.2


def test_negative_items(synth_root: Path) -> None:
    ds = SyntheticDataset(synth_root, style="mix", negatives=1.0, augment=False)
    item = ds[(2, 9)]
    assert float(item["is_face"]) == 0 and float(item["has_camera"]) == 0 and float(item["has_3d"]) == 0
    assert float(item["valid"].sum()) == 0 and item["image"].shape == (3, 128, 128)
    face = SyntheticDataset(synth_root, style="mix", negatives=0.0, augment=False)[(2, 9)]
    assert not torch.allclose(item["image"], face["image"], atol=0.05)
    assert item["queries"].shape == face["queries"].shape  # same style draw, only the image differs


@pytest.mark.parametrize("size, options", [(64, ""), (128, ""), (128, ",rotate=30,mirror=0"),
                                           (128, ",rotate=30,mirror=1")], ids=["64", "128", "rotated", "mirrored"])
def test_real_dataset_maps_points_with_the_pixels(tmp_path: Path, size: int, options: str) -> None:
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    ours = np.stack([150 + 40 * np.cos(angles), 100 + 40 * np.sin(angles)], 1)
    ours[30] = (160.5, 110.5)  # the centre of pixel (col 160, row 110)
    image = np.zeros((200, 300, 3), np.uint8)
    image[108:113, 158:163] = 255
    fx.write_pts(tmp_path / "face.pts", ours + 0.5)  # .pts are 1-based
    assert cv2.imwrite(str(tmp_path / "face.png"), image)
    dataset = make_dataset(f"300w:root={tmp_path}{options}", image_size=size, augment=bool(options))
    item = dataset[(0, 3)]
    assert item["image"].shape == (3, size, size) and int(item["style_id"]) == SEMANTICS["ibug2d"]
    plain_queries = torch.from_numpy(layout_arrays("ibug68")[0]).float()
    mirrored = "mirror=1" in options
    assert torch.allclose(item["queries"], plain_queries * torch.tensor([-1.0 if mirrored else 1.0, 1.0, 1.0]))
    assert float(item["has_camera"]) == 0 and float(item["has_3d"]) == 0 and item["queries"].shape == (68, 3)
    grey = item["image"].mean(0).numpy()
    ys, xs = np.mgrid[:size, :size] + 0.5
    weight = grey * (grey > 0.3 * grey.max())
    centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, item["targets_2d"][30].numpy(), atol=0.35)


def test_300w_validation_split_holds_out_whole_photos() -> None:
    """The 300-W-semantics validation split (the last 10% of ../shared/realfaces/300w_train) shares no photo with
    the training split: AFW's several faces of one photo are `PHOTO_N` files."""
    root = Path(__file__).resolve().parents[2] / "shared" / "realfaces" / "300w_train"
    if not root.is_dir():
        pytest.skip(f"{root} is not here")
    photos = {}
    for split in ("train", "val"):
        dataset = make_dataset(f"300w:root={root},val_fraction=0.1", split=split, augment=False)
        paths = [dataset.reader._items[i][1] for i in dataset.indices]
        photos[split] = {p.parent.name + "/" + re.sub(r"_\d+$", "", p.stem) for p in paths}
    assert len(photos["val"]) >= 100 and not photos["train"] & photos["val"]


def test_collate_pads_queries(synth_root: Path, tmp_path: Path) -> None:
    fx.make_wflw(tmp_path)
    wflw = RealDataset(f"wflw:root={tmp_path}", image_size=128)
    synth = SyntheticDataset(synth_root, style="ibug2d")
    batch = collate([synth[0], wflw[0], synth[1]])
    assert batch["queries"].shape == (3, 98, 3) and batch["targets_2d"].shape == (3, 98, 2)
    assert batch["mask"].sum(1).tolist() == [68, 98, 68]
    assert float(batch["valid"][0, 68:].abs().sum()) == 0
    assert batch["style_id"].tolist() == [SEMANTICS["ibug2d"], SEMANTICS["wflw"], SEMANTICS["ibug2d"]]


# ---------------------------------------------------------------------------------------------- losses

def test_losses_masks_and_terms(synth_root: Path) -> None:
    faces = SyntheticDataset(synth_root, negatives=0.0, augment=False, queries_per_image=90)
    negative = SyntheticDataset(synth_root, negatives=1.0, augment=False, queries_per_image=90)
    batch = collate([faces[0], faces[1], negative[2]])
    b, q = batch["queries"].shape[:2]
    outputs = {"points_2d": batch["targets_2d"].clone(), "face_logit": torch.tensor([9.0, 9.0, -9.0]),
               "theta": torch.zeros(b, 2, 3), "crop": torch.zeros(b, 3, 64, 64),
               "visibility": batch["self_visible"].clamp(0.01, 0.99), "points_3d": batch["points_3d"].clone(),
               "K": batch["K"], "R": batch["R"], "t": batch["t"], "offsets": torch.zeros(b, q, 3)}
    config = {"loss": {"use_3d_supervision": True, "offsets_smooth": 1.0}}
    losses = compute_losses(outputs, batch, config)
    assert float(losses["landmark"]) < 1e-6 and float(losses["nme"]) < 1e-6 and float(losses["points_3d"]) < 1e-6
    assert float(losses["rotation"]) < 1e-2 and float(losses["face"]) < 1e-3
    assert "stn" not in losses  # theta did not come from an STN
    outputs["points_2d"][2] += 50  # the face-free image has no landmark loss
    assert float(compute_losses(outputs, batch, config)["landmark"]) < 1e-6
    outputs["points_2d"][0] += 5
    for fn in ("l1", "l2", "smooth_l1", "wing"):
        value = compute_losses(outputs, batch, {"loss": {"landmark_fn": fn}})
        assert float(value["landmark"]) > 0 and torch.isfinite(value["total"])


# ---------------------------------------------------------------------------------------------- training

@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_training_reduces_the_loss(synth_root: Path, tmp_path: Path, variant: str) -> None:
    run_dir = train(small_config(tmp_path / variant, synth_root, variant))
    rows = read_metrics(run_dir)
    assert len(rows) == 16
    first = np.mean([r["landmark"] for r in rows[:3]])
    last = np.mean([r["landmark"] for r in rows[-3:]])
    assert last < 0.8 * first, (first, last)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["variant"] == variant and (run_dir / "last.pt").is_file()


@pytest.mark.slow
def test_resume_after_a_stop_matches_an_uninterrupted_run(synth_root: Path, tmp_path: Path) -> None:
    # Augmentation, negatives and the style mix on: every random choice must replay identically.
    sections = {"data": {"train": f"synthetic:root={synth_root},style=mix", "augment": True, "negatives": 0.3},
                "optim": {"steps": 10}, "loss": {"use_3d_supervision": True, "stn_box": 0.1}}
    whole = train(small_config(tmp_path / "whole", synth_root, **sections))
    part = small_config(tmp_path / "part", synth_root, **sections)
    train({**part, "stop_at_step": 5})
    assert torch.load(tmp_path / "part" / "last.pt", weights_only=False)["step"] == 5
    train(part)  # resume: auto, from part/last.pt
    a = torch.load(whole / "last.pt", weights_only=True)  # plain tensors and types: safe to load
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 10
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, atol=1e-5, rtol=0, msg=name)
    assert [r["step"] for r in read_metrics(tmp_path / "part")] == list(range(1, 11))


@pytest.mark.slow
def test_resume_after_a_kill_keeps_one_metrics_row_per_step(synth_root: Path, tmp_path: Path) -> None:
    config = small_config(tmp_path / "run", synth_root, optim={"steps": 6})
    train({**config, "stop_at_step": 3})
    with (tmp_path / "run" / "metrics.jsonl").open("a") as metrics:  # what a run killed at step 5 leaves
        metrics.write('{"step": 4, "split": "train"}\n{"step": 5, "split": "train"}\n{"step": 6, "spl')
    train(config)  # resumes from the step-3 checkpoint
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == list(range(1, 7))


@pytest.mark.slow
def test_default_model_recipe_trains_and_starts_from_other_weights(synth_root: Path, tmp_path: Path) -> None:
    """Teacher crops, a two-pass STN with its box guide, the 2D residual and `init_weights` together."""
    sections = {"model": {"stn_iterations": 2, "refine_2d": True},
                "data": {"teacher_crops": 0.5, "tracking_priors": 0.5},
                "optim": {"steps": 4}, "loss": {"use_3d_supervision": True, "stn_box": 2.0}}
    first = train(small_config(tmp_path / "first", synth_root, **sections))
    row = read_metrics(first)[-1]
    assert row["stn_box"] > 0 and row["projection"] > 0 and np.isfinite(row["total"])
    second = small_config(tmp_path / "second", synth_root, **sections)
    second.update(init_weights=str(first / "last.pt"), stop_at_step=1)
    model = train_mod.create_model(dict(second["model"]))
    train_mod.load_initial_weights(model, first / "last.pt")
    saved = torch.load(first / "last.pt", weights_only=True)["model"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[name], msg=name)
    train(second)  # a fresh run (no last.pt in its run dir) that starts from those weights
    assert torch.load(tmp_path / "second" / "last.pt", weights_only=True)["step"] == 1


def test_photometric_augmentation_is_a_valid_deterministic_image() -> None:
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    a = photometric(image, np.random.default_rng(3))
    b = photometric(image, np.random.default_rng(3))
    assert a.dtype == np.float32 and a.shape == image.shape and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, photometric(image, np.random.default_rng(4)))


def test_checkpoint_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(train_mod.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    monkeypatch.undo()
    assert torch.load(path, weights_only=False)["step"] == 1


def test_dataset_zoom_out_moves_targets_with_the_camera(synth_root):
    plain = SyntheticDataset(synth_root, style="canonical", image_size=None, negatives=0.0)
    zoomed = SyntheticDataset(synth_root, style="canonical", image_size=None, negatives=0.0, zoom_out=1.0)
    for key in [(0, 1), (1, 3)]:
        a, b = plain[key], zoomed[key]
        # K' = A K: A is the similarity that moved the pixels, and it moved the 2D targets and the box too.
        A = (b["K"] @ torch.linalg.inv(a["K"])).numpy()
        assert np.allclose(A[2], [0, 0, 1], atol=1e-5) and A[0, 0] == pytest.approx(A[1, 1], rel=1e-5)
        assert A[0, 0] < 0.95
        valid = a["valid"].numpy() > 0
        moved = a["targets_2d"].numpy() @ A[:2, :2].T + A[:2, 2]
        assert np.allclose(moved[valid], b["targets_2d"].numpy()[valid], atol=1e-3)
        assert np.allclose(a["box"].numpy().reshape(2, 2) * A[0, 0] + A[:2, 2], b["box"].numpy().reshape(2, 2),
                           atol=1e-3)


def test_dataset_headless_negatives_are_face_free(synth_root):
    ds = SyntheticDataset(synth_root, style="canonical", image_size=None, negatives=1.0, headless=1.0,
                          distractors=1.0)
    item = ds[(0, 0)]
    assert item["is_face"] == 0 and item["valid"].sum() == 0
    assert grow_box(np.array([10.0, 20.0, 30.0, 60.0]), 0.25).tolist() == [0.0, 10.0, 40.0, 70.0]


def test_dataset_shape_negatives_are_face_free_flat_shapes(synth_root):
    ds = SyntheticDataset(synth_root, style="canonical", image_size=None, negatives=1.0, shapes=1.0, augment=False)
    item = ds[(0, 0)]
    assert item["is_face"] == 0 and item["valid"].sum() == 0
    pixels = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    assert np.sort(counts)[-4:].sum() > 0.9 * len(pixels)  # flat fills, not a background photo
    spec = make_dataset(f"synthetic:root={synth_root},negatives=1,shapes=1,augment=false", image_size=None)
    assert spec.shapes == 1.0


def test_dataset_letterbox_moves_targets_with_the_camera(synth_root, monkeypatch):
    # Without the photometric jitter the bars stay exactly black.
    monkeypatch.setattr("training.data.photometric", lambda image, rng: image.astype(np.float32) / 255)
    plain = SyntheticDataset(synth_root, style="canonical", image_size=None, negatives=0.0)
    banded = SyntheticDataset(synth_root, style="canonical", image_size=None, negatives=0.0, letterbox=1.0)
    moved = 0
    for key in [(i, 1) for i in range(6)]:
        a, b = plain[key], banded[key]
        shift = (b["K"] - a["K"]).numpy()[:2, 2]  # a shift of the pixels moves the principal point, nothing else
        assert np.allclose((b["K"] - a["K"]).numpy()[:, :2], 0, atol=1e-5)
        valid = a["valid"].numpy() > 0
        assert np.allclose(a["targets_2d"].numpy()[valid] + shift, b["targets_2d"].numpy()[valid], atol=1e-3)
        assert np.allclose(a["box"].numpy() + np.tile(shift, 2), b["box"].numpy(), atol=1e-3)
        moved += int((b["image"] == 0).all(0).any())  # black bars (where the face fits in a band)
    assert moved >= 3


@pytest.mark.slow
def test_training_only_the_stn_leaves_the_rest_unchanged(synth_root: Path, tmp_path: Path) -> None:
    sections = {"model": {"stn_iterations": 2}, "data": {"teacher_crops": 1.0}, "optim": {"steps": 3,
                "trainable": ["stn"]}, "loss": {"use_3d_supervision": True, "stn_box": 2.0}}
    first = train(small_config(tmp_path / "first", synth_root, **sections))
    second = small_config(tmp_path / "second", synth_root, **sections)
    second["init_weights"] = str(first / "last.pt")
    train(second)
    before = torch.load(first / "last.pt", weights_only=True)["model"]
    after = torch.load(tmp_path / "second" / "last.pt", weights_only=True)["model"]
    changed = {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"stn"}  # batch-norm statistics of the frozen modules included
    with pytest.raises(ValueError, match="no module stm"):
        train({**small_config(tmp_path / "bad", synth_root, **sections), "optim": {**second["optim"],
               "trainable": ["stm"]}})


def test_a_zero_step_run_adds_a_module_to_trained_weights(synth_root: Path, tmp_path: Path) -> None:
    """How stage 10 (tried) was made: trained weights, the STN's wide view added (its bias at its initial value)."""
    sections = {"model": {"stn_iterations": 2}, "optim": {"steps": 2}}
    first = train(small_config(tmp_path / "first", synth_root, **sections))
    second = small_config(tmp_path / "second", synth_root, model={"stn_iterations": 2, "stn_wide_view": 64},
                          optim={"steps": 0})
    second["init_weights"] = str(first / "last.pt")
    train(second)
    before = torch.load(first / "last.pt", weights_only=True)["model"]
    after = torch.load(tmp_path / "second" / "last.pt", weights_only=True)
    assert after["step"] == 0 and after["config"]["model"]["stn_wide_view"] == 64
    assert set(after["model"]) - set(before) == {"stn.wide_bias"}
    assert float(after["model"]["stn.wide_bias"]) == stn.WIDE_VIEW_BIAS
    for name, value in before.items():
        torch.testing.assert_close(after["model"][name], value, msg=name)


# ---------------------------------------------------------------------------------------------- face finder

def test_train_finder_trains_the_finder_alone_and_writes_a_whole_model(tmp_path, synth_root):
    from training.evaluate import load_checkpoint
    from training.train_finder import main as train_finder_main

    model_config = {"variant": "full", **SMALL}
    init = create_model(model_config)
    torch.save({"model": init.state_dict(), "config": {"model": model_config, "data": {"crop_scale": 1.3}}},
               tmp_path / "init.pt")
    out = tmp_path / "finder"
    assert train_finder_main(["--init", str(tmp_path / "init.pt"), "--out", str(out), "--data",
                              f"synthetic:root={synth_root},limit=6,zoom_out=1.0,zoom_anywhere=0.5",
                              "--draws", "2", "--steps", "3", "--batch-size", "4", "--val", "4",
                              "--workers", "0", "--threads", "1"]) == 0
    with np.load(out / "cache.npz") as cache:
        assert cache["images"].shape == (12, 3, 64, 64) and cache["images"].dtype == np.uint8  # 256 px reduced by 4
        assert cache["boxes"].shape == (12, 4)
    trained = load_checkpoint(out / "last.pt")
    assert trained.config.stn_finder
    state, before = trained.state_dict(), init.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items())  # every other weight is the init's
    assert state["stn.finder.head.2.weight"].abs().sum() > 0  # zero-initialised, so trained
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and "val_found" in rows[-1] and "finder_map" in rows[-1]
    assert json.loads((out / "config.json").read_text())["model"]["stn_finder"] is True
