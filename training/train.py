"""Train the landmark detector.

    python -m training.train --config training/configs/tiny.yaml --run-dir runs/tiny \
        data.train=synthetic:root=data/synth_tiny model.variant=full optim.steps=500
    torchrun --nproc_per_node 4 -m training.train --config training/configs/default.yaml --run-dir runs/big

Configuration: training/configs/default.yaml, then the experiment YAML (--config) merged over it, then
`key.sub=value` overrides (values parsed as YAML). The resolved config is saved as RUN_DIR/config.yaml.
A run directory holds config.yaml, last.pt (written atomically every log.ckpt_every steps and at the end),
metrics.jsonl (one JSON line per log), tb/ (TensorBoard) and images/ (prediction sheets). Starting again with
the same run directory resumes from last.pt exactly where it stopped (`resume: auto`; `--resume PATH` for
another checkpoint, `resume=false` to start afresh): the data order is a function of (seed, epoch, step).

From Python: `train(config_dict)` merges the dict over the defaults, trains, and returns the run directory.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.model import ModelConfig, create_model
from core.model.stn import crop_to_image, full_frame_theta, theta_from_box
from core.outputs import write_text
from core.overlay import contact_sheet, draw_landmarks
from core.paths import input_file_problem
from training.checkpoints import load_checkpoint_file, save_checkpoint
from training.data import MixSampler, build_mix, collate
from training.losses import compute_losses

log = logging.getLogger("training.train")

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
MODEL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModelConfig)} | {"variant": "full"}


class ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-3` as a string (it wants `1.0e-3`); configs and overrides read it as a float."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_yaml(text: str) -> Any:
    # A SafeLoader: tags such as !!python/object are refused, so a config file never runs code.
    return yaml.load(text, Loader=ConfigLoader)


def read_config_file(path: str | Path) -> dict:
    """An experiment YAML as a dict; a ValueError naming the file when it is unreadable, malformed or not a
    mapping."""
    problem = input_file_problem(path)
    if problem:
        raise ValueError(f"config {path}: {problem}")
    try:
        data = read_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"config {path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"config {path} must be a mapping of key: value, not a {type(data).__name__}")
    return data or {}


# ---------------------------------------------------------------------------------------------- configuration

def _type_problem(default: Any, value: Any) -> str | None:
    """What `value` must be when it does not fit the default's type (a boolean, a number, a string, a list of
    numbers or strings), else None. A null default takes anything; a string or list default may be set to null."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, (int, float)):
        return None if number(value) else "a finite number"
    if isinstance(default, str):
        return None if value is None or isinstance(value, str) else "a string"
    if isinstance(default, list):
        if value is None:
            return None
        if not isinstance(value, list):
            return "a list"
        if default and all(number(d) for d in default) and not all(number(v) for v in value):
            return "a list of finite numbers"
        if default and all(isinstance(d, str) for d in default) and not all(isinstance(v, str) for v in value):
            return "a list of strings"
    return None


def merge_config(base: dict, update: dict, where: str = "") -> dict:
    """Deep-merge `update` into a copy of `base`; keys must already exist in `base` (typos fail loudly),
    except under `model`, whose keys are ModelConfig's fields. A value replacing a number or a boolean must be
    of the same kind (`_type_problem`; ValueError naming the key)."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        path = f"{where}{key}"
        if where == "model.":
            if key not in MODEL_DEFAULTS:
                raise KeyError(f"unknown model option {path!r}; valid: {', '.join(sorted(MODEL_DEFAULTS))}")
            if (problem := _type_problem(MODEL_DEFAULTS[key], value)):
                raise ValueError(f"config key {path!r} must be {problem}, not {value!r}")
            out[key] = value
        elif key not in out:
            raise KeyError(f"unknown config key {path!r}; valid here: {', '.join(sorted(out))}")
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge_config(out[key], value, f"{path}.")
        elif isinstance(out[key], dict):
            raise ValueError(f"config key {path!r} is a section; set its keys ({path}.KEY=...)")
        elif (problem := _type_problem(out[key], value)):
            raise ValueError(f"config key {path!r} must be {problem}, not {value!r}")
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """'a.b=value' -> {'a': {'b': yaml(value)}}."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r} must look like key.sub=value")
    try:
        update: Any = read_yaml(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ValueError(f"override {text!r}: the value is not valid YAML ({exc})") from exc
    for part in reversed(key.strip().split(".")):
        update = {part: update}
    return update


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict:
    """default.yaml, then the experiment YAML at `path`, then the `key.sub=value` overrides."""
    config = read_yaml(DEFAULT_CONFIG.read_text())
    if path:
        config = merge_config(config, read_config_file(path))
    for text in overrides:
        config = merge_config(config, parse_override(text))
    return config


# ---------------------------------------------------------------------------------------------- checkpoints

def rng_state() -> dict:
    """Python, numpy and torch RNG states as tensors and plain types, so the checkpoint loads with
    torch.load(weights_only=True)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    python_version, python_state, gauss_next = state["python"]
    random.setstate((python_version, tuple(python_state), gauss_next))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys  # checkpoints before 2026-11 held numpy
    np.random.set_state((name, keys.astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------- model driving

def run_model(model: torch.nn.Module, batch: dict[str, torch.Tensor], crop_scale: float,
              uses_stn: bool, teacher_crops: float = 0.0, tracking_priors: float = 0.0) -> dict[str, torch.Tensor]:
    """Forward a batch; a model without STN crops by the (jittered) box. With an STN:
    - `teacher_crops`: share of images whose detector sees the jittered box crop instead of the STN's (the STN
      still learns on all of them), so the detector learns on well-framed faces while the STN learns to find them;
    - `tracking_priors`: share of images whose STN starts from a roughly right crop (the box, moved by ~10% and
      scaled by ~20%) instead of the full frame, as it does when tracking from the last frame's crop: it must
      learn to keep a good crop, not only to zoom in from the frame. A model without an STN is cropped there."""
    hw = tuple(batch["image"].shape[-2:])
    box_theta = theta_from_box(batch["crop_box"], hw, crop_scale)
    if not uses_stn:
        crop_theta = box_theta
        if tracking_priors > 0:
            # Without an STN the rough crop is the crop itself: the baseline an STN row is compared with.
            prior, use = rough_crops(batch, hw, crop_scale, tracking_priors)
            crop_theta = torch.where(use.view(-1, 1, 1), prior, box_theta)
        return model(batch["image"], batch["queries"], style_ids=batch["style_id"], normals=batch["normals"],
                     crop_theta=crop_theta)
    kwargs: dict[str, Any] = {}
    batch_size, device = len(box_theta), box_theta.device
    if teacher_crops > 0:
        kwargs.update(teacher_theta=box_theta, teacher_mask=torch.rand(batch_size, device=device) < teacher_crops)
    if tracking_priors > 0:
        prior, use = rough_crops(batch, hw, crop_scale, tracking_priors)
        kwargs["prior_theta"] = torch.where(use.view(-1, 1, 1), prior, full_frame_theta(batch_size, hw, prior))
    return model(batch["image"], batch["queries"], style_ids=batch["style_id"], normals=batch["normals"], **kwargs)


def rough_crops(batch: dict[str, torch.Tensor], hw: tuple[int, int], crop_scale: float, share: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(theta (B, 2, 3) of the box moved by ~10% and scaled by ~20%, which faces (B,) bool use it: a `share` of
    them): what a face finder or the last frame gives."""
    box = batch["box"]
    batch_size, device = len(box), box.device
    centre, size = (box[:, :2] + box[:, 2:]) / 2, (box[:, 2:] - box[:, :2]).amax(-1, keepdim=True)
    centre = centre + 0.1 * size * torch.randn(batch_size, 2, device=device)
    size = size * torch.exp(0.2 * torch.randn(batch_size, 1, device=device))
    prior = theta_from_box(torch.cat([centre - size / 2, centre + size / 2], -1), hw, crop_scale)
    return prior, (torch.rand(batch_size, device=device) < share) & (batch["is_face"] > 0)


def load_initial_weights(model: torch.nn.Module, path: str | Path, allow_pickle: bool = False) -> None:
    """Start a fresh run from another checkpoint's model weights (tensors whose name and shape match)."""
    checkpoint = load_checkpoint_file(path, allow_pickle=allow_pickle)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ValueError(f"init_weights {path}: not a checkpoint with model weights under 'model'")
    state = checkpoint["model"]
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    log.info("initial weights from %s: %d of %d tensors (others keep their initialisation)", path, len(matched),
             len(own))


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to min_ratio (nanoGPT's schedule, as a factor of the base lr)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def freeze_except(model: torch.nn.Module, trainable: list[str] | None) -> None:
    """With `trainable` (names of the model's top-level modules, e.g. [stn]), stop every other parameter's
    gradient; `set_train_mode` keeps those modules in eval mode (their batch-norm statistics fixed)."""
    if trainable is not None and (not isinstance(trainable, list) or not all(isinstance(t, str) for t in trainable)):
        raise ValueError(f"optim.trainable must be a list of module names (e.g. [stn]) or null, not {trainable!r}")
    if not trainable:
        return
    names = dict(model.named_children())
    unknown = sorted(set(trainable) - set(names))
    if unknown:
        raise ValueError(f"optim.trainable: the model has no module {', '.join(unknown)}; it has "
                         f"{', '.join(names)}")
    for name, module in names.items():
        module.requires_grad_(name in trainable)


def set_train_mode(model: torch.nn.Module, training: bool) -> None:
    """model.train(training), but modules without trainable parameters stay in eval mode (see freeze_except)."""
    model.train(training)
    if training:
        for module in model.children():
            if not any(p.requires_grad for p in module.parameters()):
                module.eval()


def make_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]))


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, config: dict, device: torch.device, max_batches: int,
             autocast: Any) -> dict[str, float]:
    """Mean loss terms over the first `max_batches` batches (the same ones every time)."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        batch = to_device(batch, device)
        with autocast():
            out = run_model(model, batch, config["data"]["crop_scale"], model.config.stn)
        for k, v in compute_losses(out, batch, config).items():
            sums[k] = sums.get(k, 0.0) + float(v)
        count += 1
    set_train_mode(model, was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}


@torch.no_grad()
def prediction_sheet(model: torch.nn.Module, batch: dict[str, torch.Tensor], config: dict) -> np.ndarray:
    """RGB sheet, one row per image: ground truth | prediction (green visible, red hidden), the crop the model
    looked at (yellow) and its face confidence."""
    was_training = model.training
    model.eval()
    out = run_model(model, batch, config["data"]["crop_scale"], model.config.stn)
    set_train_mode(model, was_training)
    cs = model.config.crop_size
    hw = tuple(batch["image"].shape[-2:])
    corners = torch.tensor([[0, 0], [cs, 0], [cs, cs], [0, cs]], dtype=torch.float32, device=out["theta"].device)
    quads = crop_to_image(corners.expand(len(batch["image"]), 4, 2), out["theta"], cs, hw).cpu().numpy()
    zoom = max(1, 256 // max(hw))
    tiles = []
    for i in range(len(batch["image"])):
        image = (batch["image"][i].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        keep = (batch["mask"][i] > 0).cpu().numpy()
        valid = (batch["valid"][i] > 0).cpu().numpy() & keep
        truth = draw_landmarks(image, batch["targets_2d"][i].cpu().numpy()[valid] * zoom,
                               batch["visibility"][i].cpu().numpy()[valid], radius=1)
        vis = out["visibility"][i].cpu().numpy()[keep] if "visibility" in out else None
        pred = draw_landmarks(image, out["points_2d"][i].cpu().numpy()[keep] * zoom, vis, radius=1)
        cv2.polylines(pred, [np.round(quads[i] * zoom).astype(np.int32)], True, (250, 220, 40), 1, cv2.LINE_AA)
        confidence = float(torch.sigmoid(out["face_logit"][i]))
        cv2.putText(pred, f"face {confidence:.2f}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles += [truth, pred]
    return contact_sheet(tiles, columns=2)


# ---------------------------------------------------------------------------------------------- the loop

def setup_runtime(config: dict) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when launched by torchrun."""
    rt = config["runtime"]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = rt["device"] == "cuda" or (rt["device"] == "auto" and torch.cuda.is_available())
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        if rt["threads"]:
            torch.set_num_threads(int(rt["threads"]))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, device


def autocast_for(device: torch.device, amp: str) -> tuple[Any, torch.dtype | None]:
    """(context factory, dtype or None): bf16 where supported, else fp16 (with a GradScaler) on CUDA."""
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext, None
    dtype = (torch.bfloat16 if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported())
             else torch.float16)
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype


def batches(loader: DataLoader, sampler: MixSampler, step: int, steps_per_epoch: int) -> Iterator[dict]:
    """Endless batches from global step `step` on: epoch = step // steps_per_epoch, skipping the epoch's
    batches already done, so a resumed run sees exactly the batches an uninterrupted one would."""
    epoch, within = divmod(step, steps_per_epoch)
    while True:
        sampler.set_epoch(epoch, within * loader.batch_size)
        yield from loader
        epoch, within = epoch + 1, 0


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loaders(cfg: dict, rank: int, world: int, device: torch.device
                 ) -> tuple[DataLoader, MixSampler, DataLoader | None]:
    """Training loader (its sampler shards by rank) and, on rank 0, the validation loader (fixed batches)."""
    dcfg, seed = cfg["data"], int(cfg["seed"])
    batch_size = cfg["optim"]["batch_size"] // world
    common = {"image_size": dcfg["image_size"], "queries_per_image": dcfg["queries_per_image"],
              "negatives": dcfg["negatives"], "seed": seed, "val_fraction": dcfg["val_fraction"]}
    held_out = not dcfg["val"] and dcfg["val_fraction"] > 0
    train_ds = build_mix(dcfg["train"], augment=dcfg["augment"], split="train" if held_out else "all", **common)
    sampler = MixSampler(train_ds, seed=seed, epoch_size=dcfg["epoch_size"], rank=rank, world=world)
    if len(sampler) < batch_size:
        raise ValueError(f"{len(sampler)} items per process per epoch, fewer than a batch of {batch_size}")
    workers = int(dcfg["num_workers"])
    loader = DataLoader(train_ds, batch_size=batch_size, sampler=sampler, collate_fn=collate, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0, worker_init_fn=_worker_init,
                        pin_memory=device.type == "cuda")
    val_loader = None
    if rank == 0 and (dcfg["val"] or held_out):
        val_ds = build_mix(dcfg["val"] or dcfg["train"], augment=False, split="val" if held_out else "all",
                           **common)
        val_loader = DataLoader(val_ds, batch_size=batch_size, sampler=MixSampler(val_ds, seed=seed + 1),
                                collate_fn=collate, num_workers=min(workers, 2), persistent_workers=workers > 0,
                                worker_init_fn=_worker_init)
    return loader, sampler, val_loader


def keep_metrics_until(path: Path, step: int) -> None:
    """Drop the rows of a metrics.jsonl logged after `step`, and any line cut short by a kill.

    A run resumed from its step-`step` checkpoint logs the later steps again; their old rows would be duplicates.
    """
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line + "\n")
    write_text(path, "".join(kept))


class Recorder:
    """Rank 0's outputs in the run directory: metrics.jsonl, TensorBoard scalars and images, prediction PNGs."""

    def __init__(self, run_dir: Path, tensorboard: bool, start: int) -> None:
        self.run_dir = run_dir
        keep_metrics_until(run_dir / "metrics.jsonl", start)
        self.metrics = open(run_dir / "metrics.jsonl", "a")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1)

    def scalars(self, split: str, step: int, values: dict[str, float]) -> None:
        self.metrics.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        self.metrics.flush()
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{split}/{k}", v, step)

    def image(self, step: int, sheet: np.ndarray) -> None:
        (self.run_dir / "images").mkdir(exist_ok=True)
        cv2.imwrite(str(self.run_dir / "images" / f"step_{step:07d}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if self.writer is not None:
            self.writer.add_image("predictions", sheet, step, dataformats="HWC")

    def close(self) -> None:
        self.metrics.close()
        if self.writer is not None:
            self.writer.close()


def train(config: dict) -> Path:
    """Train with `config` merged over default.yaml; returns the run directory (see the module docstring)."""
    cfg = merge_config(read_yaml(DEFAULT_CONFIG.read_text()), config)
    # OpenCV's thread pool does not survive fork: a data worker forked while the pool exists can hang in its
    # first cv2 call. Sequential OpenCV in this process means there is never a pool to inherit.
    cv2.setNumThreads(0)
    rank, world, device = setup_runtime(cfg)
    main_process = rank == 0
    run_dir = Path(cfg["run_dir"])
    ocfg, lcfg = cfg["optim"], cfg["log"]
    total_steps = int(ocfg["steps"])
    stop = min(total_steps, int(cfg["stop_at_step"] or total_steps))
    if ocfg["batch_size"] % world:
        raise ValueError(f"optim.batch_size {ocfg['batch_size']} is not divisible by {world} processes")
    if main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    seed_everything(int(cfg["seed"]))
    raw = create_model(dict(cfg["model"])).to(device)
    freeze_except(raw, ocfg["trainable"])
    optimizer = make_optimizer(raw, ocfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
        s, int(ocfg["warmup_steps"]), total_steps, float(ocfg["min_lr_ratio"])))
    autocast, amp_dtype = autocast_for(device, cfg["runtime"]["amp"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    start = 0
    resume = cfg["resume"]
    ckpt_path = run_dir / "last.pt" if resume in ("auto", True) else (Path(resume) if resume else None)
    if ckpt_path is not None and ckpt_path.is_file():
        state = load_checkpoint_file(ckpt_path, device, bool(cfg["allow_pickle"]))
        raw.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start = int(state["step"])
        log.info("resumed from %s at step %d", ckpt_path, start)
    elif resume not in ("auto", True, None, False):
        raise FileNotFoundError(f"resume checkpoint {ckpt_path} does not exist")
    elif cfg["init_weights"]:
        load_initial_weights(raw, cfg["init_weights"], bool(cfg["allow_pickle"]))
    model = (torch.nn.parallel.DistributedDataParallel(raw, device_ids=[device.index] if device.type == "cuda"
                                                       else None) if world > 1 else raw)

    loader, sampler, val_loader = make_loaders(cfg, rank, world, device)
    record = Recorder(run_dir, lcfg["tensorboard"], start) if main_process else None
    sheet_batch = None
    if main_process and lcfg["images"] > 0:
        first = next(iter(val_loader if val_loader is not None else loader))
        sheet_batch = {k: v[:lcfg["images"]].to(device) for k, v in first.items()}

    def checkpoint(step: int) -> None:
        save_checkpoint({"model": raw.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "step": step,
                         "rng": rng_state(), "config": cfg}, run_dir / "last.pt")

    if main_process:
        log.info("training %s (%.2f M parameters) on %s x%d, steps %d..%d of %d, batch %d, run dir %s",
                 cfg["model"]["variant"], sum(p.numel() for p in raw.parameters()) / 1e6, device, world, start,
                 stop, total_steps, ocfg["batch_size"], run_dir)
    set_train_mode(raw, True)
    data = batches(loader, sampler, start, len(sampler) // loader.batch_size)
    bar = tqdm(total=stop, initial=start, disable=not (main_process and lcfg["progress"]), unit="step",
               dynamic_ncols=True)
    sums: dict[str, float] = {}
    seen, tick = 0, time.perf_counter()
    for step in range(start, stop):
        batch = to_device(next(data), device)
        with autocast():
            out = run_model(model, batch, cfg["data"]["crop_scale"], raw.config.stn, cfg["data"]["teacher_crops"],
                            cfg["data"]["tracking_priors"])
        losses = compute_losses(out, batch, cfg)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        if ocfg["grad_clip"]:
            scaler.unscale_(optimizer)
            losses["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), ocfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        done = step + 1
        seen += ocfg["batch_size"]
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        bar.update(1)
        if not main_process:
            continue
        if done % lcfg["every"] == 0 or done == stop:
            # Rank 0's losses (not averaged over processes); throughput counts every process's images.
            n = seen // ocfg["batch_size"]
            values = {k: v / n for k, v in sums.items()}
            values.update(lr=scheduler.get_last_lr()[0], img_per_s=seen / max(time.perf_counter() - tick, 1e-9))
            record.scalars("train", done, values)
            bar.set_postfix(loss=f"{values['total']:.4f}", nme=f"{values['nme']:.4f}",
                            img_s=f"{values['img_per_s']:.1f}")
            sums, seen, tick = {}, 0, time.perf_counter()
        if val_loader is not None and (done % lcfg["val_every"] == 0 or done == stop):
            record.scalars("val", done, evaluate(raw, val_loader, cfg, device, lcfg["val_batches"], autocast))
        if sheet_batch is not None and (done % lcfg["image_every"] == 0 or done == stop):
            record.image(done, prediction_sheet(raw, sheet_batch, cfg))
        if done % lcfg["ckpt_every"] == 0 or done == stop:
            checkpoint(done)
    bar.close()
    if main_process and not (run_dir / "last.pt").exists():
        checkpoint(stop)  # a run of zero steps: its initial weights under its config (e.g. a module added)
    if record is not None:
        record.close()
        log.info("stopped at step %d of %d; checkpoint %s", stop, total_steps, run_dir / "last.pt")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0],
                                     epilog="Overrides: key.sub=value (e.g. optim.lr=3e-4 model.variant=stn_2d)")
    parser.add_argument("--config", help="experiment YAML merged over training/configs/default.yaml")
    parser.add_argument("--run-dir", help="output folder (overrides run_dir)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None,
                        help="checkpoint to continue from (default: RUN_DIR/last.pt if it exists)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, args.overrides)
        if args.run_dir:
            config["run_dir"] = args.run_dir
        if args.resume:
            config["resume"] = args.resume
        train(config)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)  # KeyError quotes its text
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
