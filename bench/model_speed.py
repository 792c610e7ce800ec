"""Speed of the detector on this machine: training throughput and ONNX Runtime inference latency.

    python -m bench.model_speed [--variant full] [--threads 2] [--steps 10]

Training: forward + backward + Adam step, batch 64, 256x256 full frames, 100 queries per image.
Inference: ONNX Runtime, batch 1, 256x256 frame, 68 and 2000 queries. Targets: >= 150 img/s, < 10 ms, < 15 ms.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.runtime_speed import timings_ms
from core.model import MODEL_VARIANTS, create_model, export_onnx
from core.model.stn import full_frame_theta, theta_from_box
from core.onnx_contract import DIRECT_CROP_INPUT, DIRECT_CROP_PIXELS_INPUT, FIND_FACE_INPUT, onnx_io_names


def bench_training(model: torch.nn.Module, batch: int, image: int, queries: int, steps: int) -> float:
    """Images per second for forward + backward + Adam step (median step time)."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, image, image)
    q = torch.randn(batch, queries, 3) * 4
    normals = F.normalize(torch.randn(batch, queries, 3), dim=-1)
    target = torch.rand(batch, queries, 2) * image
    styles = torch.randint(0, model.config.num_styles, (batch,))
    boxes = torch.tensor([[0.2, 0.2, 0.8, 0.8]]).repeat(batch, 1) * image
    crop_theta = None if model.config.stn else theta_from_box(boxes, (image, image))

    def step() -> None:
        out = model(x, q, style_ids=styles, crop_theta=crop_theta, normals=normals)
        loss = (out["points_2d"] - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # Four warm-up steps: the first ones are slow (allocator, oneDNN kernel selection). The median, not the mean:
    # the machine is shared and other jobs come in bursts.
    median_ms, _ = timings_ms(step, steps, warmup=4)
    return batch / (median_ms / 1000)


def bench_onnx(model: torch.nn.Module, image: int, query_counts: list[int], threads: int, repeats: int
               ) -> dict[int, float]:
    """Median milliseconds per batch-1 inference for each number of queries."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model.eval(), Path(tmp) / "model.onnx", (image, image))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names, _ = onnx_io_names(model.config)
    results = {}
    for n in query_counts:
        theta = (full_frame_theta(1, (image, image)) if model.config.stn
                 else theta_from_box(torch.tensor([[0.2, 0.2, 0.8, 0.8]]) * image, (image, image)))
        feed = {"image": np.random.rand(1, 3, image, image).astype(np.float32),
                "queries": (np.random.randn(n, 3) * 4).astype(np.float32),
                "theta": theta.numpy().astype(np.float32),
                "normals": F.normalize(torch.randn(n, 3), dim=-1).numpy(),
                "style_ids": np.zeros(1, np.int64),
                # A run from the STN's crop (not a given crop), as the runtime's runs without a known face.
                DIRECT_CROP_INPUT: np.array(False), FIND_FACE_INPUT: np.array(bool(model.config.stn)),
                DIRECT_CROP_PIXELS_INPUT: np.zeros((1, 3, model.config.crop_size, model.config.crop_size), np.float32)}
        feed = {k: v for k, v in feed.items() if k in names}
        results[n], _ = timings_ms(lambda: session.run(None, feed), repeats)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="full", choices=sorted(MODEL_VARIANTS))
    parser.add_argument("--config", default="{}", help="JSON overrides of ModelConfig fields")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image", type=int, default=256)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = dataclasses.replace(MODEL_VARIANTS[args.variant], **json.loads(args.config))
    model = create_model(config)
    print(f"model {args.variant}: {config}")
    print(f"parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")
    ips = bench_training(model, args.batch, args.image, args.queries, args.steps)
    print(f"training: {ips:.1f} img/s (batch {args.batch}, {args.image}x{args.image} frames, crop "
          f"{config.crop_size}, {args.queries} queries, {args.threads} threads)  target >= 150")
    for n, ms in bench_onnx(model, args.image, [68, 2000], args.threads, args.repeats).items():
        print(f"onnxruntime batch 1, {n} queries: {ms:.2f} ms  target < {10 if n <= 68 else 15}")


if __name__ == "__main__":
    main()
