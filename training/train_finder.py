"""Train the STN's face finder (core.model.stn.FaceFinder) as a detector, on a trained model's other weights.

    python -m training.train_finder --init runs/stage7_default.pt --out runs/finder --draws 3 --steps 8000
    python -m training.export runs/finder/last.pt /tmp/finder.onnx

The finder gives the STN's crop from the whole frame (`model.stn_finder`); everything else in the model
is frozen and unused here, so the finder trains alone on its detection losses (`stn.finder_losses`) at a few
hundred images a second. Its input is the frame reduced once (128 px), so the scenes are drawn once into a cache
(RUN/cache.npz: `--draws` scenes per render, each a fresh composite: the face shrunk onto a new background,
distractors, letterboxes, as `training.data.SyntheticDataset` makes them) and batches are read from it, mirrored
at random. RUN/last.pt is a trainer checkpoint of the whole model (the init's weights plus the finder's,
`model.stn_finder: true`), which `training.export` and `training.evaluate` read; RUN/config.json and
RUN/metrics.jsonl sit beside it.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.model import create_model
from core.model.stn import finder_losses, supersample_factor, theta_from_box
from core.outputs import atomic_path
from training.checkpoints import CheckpointError, load_checkpoint_file, save_checkpoint
from training.data import make_dataset
from training.train import lr_factor

log = logging.getLogger("training.train_finder")

FRAME_SIZE = 256  # the model input, which the finder reads reduced (by 2 for the STN's 64 px views: 128 px)


def _scene(item: dict[str, torch.Tensor], reduce: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset item -> (the frame reduced by `reduce` as the STN reduces it, uint8 (3, h, w); the face box (4,)
    in frame pixels)."""
    reduced = F.avg_pool2d(item["image"][None], reduce, ceil_mode=True)[0] if reduce > 1 else item["image"]
    return (reduced * 255).round().clamp(0, 255).to(torch.uint8), item["box"]


def _collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])


class _Scenes(torch.utils.data.Dataset):
    """(render index, draw) keys of a synthetic dataset -> `_scene`s (each draw is a different composite)."""

    def __init__(self, spec: str, draws: int, seed: int, reduce: int) -> None:
        self.dataset = make_dataset(spec, image_size=FRAME_SIZE, queries_per_image=68, negatives=0.0, seed=seed)
        self.draws = draws
        self.reduce = reduce

    def __len__(self) -> int:
        return len(self.dataset) * self.draws

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _scene(self.dataset[(i // self.draws, i % self.draws)], self.reduce)


def build_cache(spec: str, draws: int, path: Path, reduce: int, seed: int = 0, workers: int = 2
                ) -> dict[str, np.ndarray]:
    """Draw every render of `spec` `draws` times into `path` (npz: images (M, 3, h, w) uint8, the frames reduced
    by `reduce`; boxes (M, 4) in frame pixels)."""
    scenes = _Scenes(spec, draws, seed, reduce)
    loader = DataLoader(scenes, batch_size=64, num_workers=workers, collate_fn=_collate)
    images, boxes = [], []
    for image, box in tqdm(loader, desc=f"drawing {len(scenes)} scenes", unit="batch"):
        images.append(image.numpy())
        boxes.append(box.numpy())
    cache = {"images": np.concatenate(images), "boxes": np.concatenate(boxes).astype(np.float32)}
    with atomic_path(path) as tmp:
        np.savez(tmp, **cache)
    return cache


def _batch(cache: dict[str, np.ndarray], indices: np.ndarray, rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduced frames (B, 3, h, w) float in [0, 1] and boxes (B, 4), a random half mirrored left to right."""
    images = torch.from_numpy(cache["images"][indices]).float() / 255
    boxes = torch.from_numpy(cache["boxes"][indices]).clone()
    flip = torch.from_numpy(rng.random(len(indices)) < 0.5)
    images[flip] = images[flip].flip(-1)
    boxes[flip] = torch.stack([FRAME_SIZE - boxes[flip][:, 2], boxes[flip][:, 1],
                               FRAME_SIZE - boxes[flip][:, 0], boxes[flip][:, 3]], -1)
    return images, boxes


@torch.no_grad()
def crop_errors(finder: torch.nn.Module, images: torch.Tensor, boxes: torch.Tensor, crop_scale: float
                ) -> dict[str, float]:
    """How well the finder's crops frame the faces: the centre's distance and the side's log ratio to the box
    crop's, over the box crop's side; `found`: the share with the centre within 0.25 of the side and the side
    within a factor of 1.5 (a crop the STN's next pass and the detector work from)."""
    hw = (FRAME_SIZE, FRAME_SIZE)
    target = theta_from_box(boxes, hw, crop_scale)
    theta = torch.cat([finder(chunk, hw) for chunk in images.split(256)])
    side = target[:, 0, 0]
    centre_error = (theta[:, :, 2] - target[:, :, 2]).norm(dim=-1) / (2 * side)  # theta spans 2 * side
    log_ratio = (torch.log(theta[:, 0, 0]) - torch.log(side)).abs()
    found = (centre_error < 0.25) & (log_ratio < math.log(1.5))
    small = (boxes[:, 2:] - boxes[:, :2]).amax(-1) < 40
    return {"centre_error": float(centre_error.median()), "log_side_error": float(log_ratio.median()),
            "found": float(found.float().mean()), "found_small": float(found[small].float().mean()),
            "small_share": float(small.float().mean())}


def train_finder(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    init = load_checkpoint_file(args.init)
    config = json.loads(json.dumps(init["config"]))
    config["model"]["stn_finder"] = True
    crop_scale = float(config.get("data", {}).get("crop_scale", 1.3))
    config["finder"] = {k: v for k, v in vars(args).items()}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    model = create_model(config["model"])
    missing, unexpected = model.load_state_dict(init["model"], strict=False)
    if unexpected or any(not name.startswith("stn.finder.") for name in missing):
        raise ValueError(f"{args.init} does not match the model with a finder (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    finder = model.stn.finder

    cache_path = out / "cache.npz"
    if cache_path.exists():
        with np.load(cache_path) as data:
            cache = {k: data[k] for k in data.files}
        log.info("scenes from %s: %d", cache_path, len(cache["boxes"]))
    else:
        reduce = supersample_factor(FRAME_SIZE, model.stn.input_size)
        cache = build_cache(args.data, args.draws, cache_path, reduce, args.seed, args.workers)
    order = rng.permutation(len(cache["boxes"]))
    val_idx, train_idx = order[:args.val], order[args.val:]
    val_images, val_boxes = _batch(cache, val_idx, np.random.default_rng(1))

    optimizer = torch.optim.AdamW(finder.parameters(), lr=args.lr, weight_decay=0.01)
    metrics = open(out / "metrics.jsonl", "a")
    hw = (FRAME_SIZE, FRAME_SIZE)
    finder.train()
    start = time.time()
    bar = tqdm(range(args.steps), desc="finder", unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = args.lr * lr_factor(step, args.warmup, args.steps, 0.05)
        images, boxes = _batch(cache, rng.choice(train_idx, args.batch_size), rng)
        # Photometric jitter per image on top of the dataset's (the cache is reused for many epochs).
        gain = torch.exp(0.25 * torch.randn(len(images), 1, 1, 1))
        images = ((images - 0.5) * gain + 0.5 + 0.08 * torch.randn(len(images), 1, 1, 1)).clamp(0, 1)
        losses = finder_losses(finder, images, hw, theta_from_box(boxes, hw, crop_scale))
        total = losses["finder_map"] + losses["finder_cells"] + args.crop_weight * losses["finder_crop"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(finder.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            row: dict[str, Any] = {"step": step, "split": "train", "lr": optimizer.param_groups[0]["lr"],
                                   **{k: round(v.item(), 4) for k, v in losses.items()}}
            if step % 500 == 0 or step == args.steps - 1:
                finder.eval()
                row.update({f"val_{k}": round(v, 4) for k, v in
                            crop_errors(finder, val_images, val_boxes, crop_scale).items()})
                finder.train()
                save_checkpoint({"model": model.state_dict(), "config": config, "step": step + 1}, out / "last.pt")
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
            bar.set_postfix(map=row["finder_map"], crop=row["finder_crop"], found=row.get("val_found", ""))
    finder.eval()
    save_checkpoint({"model": model.state_dict(), "config": config, "step": args.steps}, out / "last.pt")
    log.info("finder trained in %.0f s: %s", time.time() - start, out / "last.pt")
    return out / "last.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True, help="trainer checkpoint whose other weights the model keeps")
    parser.add_argument("--data", default="synthetic:root=data/synth_train,zoom_out=0.75,zoom_min=0.12,"
                                          "zoom_anywhere=0.6,distractors=0.5,letterbox=0.4")
    parser.add_argument("--out", default="runs/finder")
    parser.add_argument("--draws", type=int, default=3, help="scenes drawn per render into the cache")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--crop-weight", type=float, default=1.0, help="of finder_crop against the map losses")
    parser.add_argument("--val", type=int, default=1000, help="cached scenes held out for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        train_finder(args)
    except CheckpointError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
