"""Evaluate detectors on synthetic test data (2D accuracy, head pose, camera, 3D shape, visibility, jitter) and
on real annotated faces from their ground-truth box crop (the landmark stage alone, without face finding).

    python -m training.evaluate --checkpoint runs/X/last.pt [--checkpoint runs/Y/last.pt ...] \\
        --data data/synth_test [--sequences data/seqs] --out docs/eval [--layout ibug68] [--style canonical]
    python -m training.evaluate --variant full --data data/synth_test --out /tmp/eval     # untrained smoke test
    python -m training.evaluate --checkpoint runs/X/last.pt --out docs/eval_real [--overwrite] \\
        --real "aflw2000_dev=300w:root=../shared/realfaces/aflw2000_dev" \\
        --real "300w_val=300w:root=../shared/realfaces/300w_train,val_fraction=0.1,split=val,style=ibug2d"

`--real NAME=SPEC` (repeatable) is a training.data real-dataset spec plus `split=` (train, val, all; default all)
and `style=` (the semantics to ask for; default canonical); its rows are `NAME: nme_box, nme_io, fr_io@0.1 ...`.
A report already in `--out` is replaced only with `--overwrite` (checked before the work: exit 2).

`--data` is a folder written by `python -m training.synth generate` (images + npz ground truth); `--sequences` a
folder of clips from `python -m training.synth sequence`. The report (`results.json`, `results.md`, `ced.png`)
has one row per checkpoint. Metric definitions are in training/metrics.py.

Models without a spatial transformer get their crop from the ground-truth iBUG-68 box, enlarged by
BOX_CROP_SCALE (as the trainer crops them). With `--style` other than canonical, predictions are asked for in
that dataset's semantics (style id from core.layouts.SEMANTICS) and scored against the synthetic annotations
imitating it (`target_style_<style>_2d`): this measures whether the semantic correction learned the convention.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from core.layouts import SEMANTICS, load_layout
from core.model import LandmarkDetector, create_model
from core.model.stn import theta_from_box
from core.outputs import OutputError, OutputPlan, atomic_path, write_text
from training import metrics
from training.checkpoints import load_checkpoint_file
from training.synth.sample import TRAINING_STYLES

log = logging.getLogger(__name__)

# Side of the square crop around the ground-truth landmark box for models without an STN, in box sides.
BOX_CROP_SCALE = 1.3
IO_LAYOUT = "ibug68"  # the inter-ocular distance of layouts without eye corners comes from the iBUG-68 truth

# Report columns: result key, header (with unit), multiplier for display.
REPORT_COLUMNS: list[tuple[str, str, float]] = [
    ("num_images", "Images", 1),
    ("nme_io", "NME io (%)", 100),
    ("nme_box", "NME box (%)", 100),
    ("fr_io@0.1", "FR@0.1 io (%)", 100),
    ("fr_io@0.08", "FR@0.08 io (%)", 100),
    ("auc_io@0.1", "AUC@0.1 io", 1),
    ("pose_error_deg", "Pose (°)", 1),
    ("yaw_pitch_roll_deg", "Yaw / pitch / roll (°)", 1),
    ("focal_error_pct", "Focal (%)", 1),
    ("error_3d_cm", "3D (cm)", 1),
    ("error_3d_aligned_cm", "3D aligned (cm)", 1),
    ("visibility_accuracy", "Vis. acc. (%)", 100),
    ("visibility_f1", "Vis. F1", 1),
    ("static_jitter_io", "Static jitter (% io)", 100),
    ("moving_nme_io", "Moving NME (% io)", 100),
    ("moving_jitter_io", "Moving jitter (% io)", 100),
]

DEFINITIONS = """\
- NME io / box: mean point-to-point error divided by the outer-eye-corner distance / by sqrt(w h) of the
  ground-truth landmarks' box. FR@T: share of images with NME io > T. AUC@0.1: area under the CED curve up to
  NME io 0.1, normalised to 1.
- Pose: geodesic angle between predicted and true head rotation; yaw / pitch / roll: per-axis absolute errors.
- Focal: |f_pred - f_gt| / f_gt. 3D: mean distance of the canonical 3D points (this identity and expression),
  raw and after the best similarity alignment (2D supervision leaves scale and pose of the shape ambiguous).
- Vis.: accuracy and F1 (visible = positive) of visibility >= 0.5 against the rendered ground truth.
- Static jitter: mean |p_t - p_(t-1)| / inter-ocular distance on still clips. Moving NME: per-frame NME io on
  moving clips; moving jitter: mean |r_t - r_(t-1)| / inter-ocular, r = prediction - truth.
"""


# --- models --------------------------------------------------------------------------------------------------------

def load_checkpoint(path: str | Path, allow_pickle: bool = False) -> LandmarkDetector:
    """A detector from a trainer checkpoint: {"model": state_dict, "config": {"model": model config dict, ...}}
    (read by training.checkpoints.load_checkpoint_file: `allow_pickle` for a trusted file with pickled objects)."""
    path = Path(path)
    checkpoint = load_checkpoint_file(path, allow_pickle=allow_pickle)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a checkpoint dict, got a {type(checkpoint).__name__}")
    config = checkpoint.get("config") or {}
    if "model" not in config:
        raise ValueError(f"{path}: the checkpoint's 'config' has no 'model' entry (the model configuration)")
    model = create_model(config["model"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def _queries(layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    lay = load_layout(layout)
    return torch.from_numpy(lay.canonical_points()), torch.from_numpy(lay.canonical_normals())


def _run(model: LandmarkDetector, images: torch.Tensor, queries: torch.Tensor, normals: torch.Tensor,
         style_id: int, boxes: np.ndarray | None, prior_theta: torch.Tensor | None = None,
         direct: bool = False) -> dict[str, np.ndarray]:
    """One forward pass without gradients; outputs as numpy. `boxes` (B, 4) give the crop of STN-less models, and
    of any model with `direct` (the STN skipped, as the runtime's crops around known landmarks)."""
    hw = tuple(images.shape[-2:])
    crop_theta = None
    if direct or not model.config.stn:
        crop_theta = theta_from_box(torch.as_tensor(boxes, dtype=torch.float32), hw, scale=BOX_CROP_SCALE)
    style_ids = torch.full((images.shape[0],), style_id, dtype=torch.long)
    with torch.no_grad():
        out = model(images, queries, style_ids=style_ids, crop_theta=crop_theta, prior_theta=prior_theta,
                    normals=normals)
    return {k: v.numpy() for k, v in out.items() if k != "crop"}


def _image_tensor(rgb_images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(rgb_images)).permute(0, 3, 1, 2).float() / 255.0


def _box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(-2), points.max(-2)], axis=-1)


# --- still images --------------------------------------------------------------------------------------------------

def _resolve_layout(layout: str | None, style: str) -> str:
    from training.synth.styles import get_style

    if style == "canonical":
        return layout or "ibug68"
    style_layout = get_style(style).layout
    if layout is not None and layout != style_layout:
        raise ValueError(f"style {style!r} annotates the {style_layout} layout, not {layout!r}: "
                         f"use --layout {style_layout} (or leave --layout out)")
    return style_layout


def _load_batch(files: list[Path]) -> tuple[list[np.ndarray], list[dict[str, np.ndarray]]]:
    images, truths = [], []
    for npz in files:
        with np.load(npz) as data:
            truths.append({k: data[k] for k in data.files if k.startswith("target_") or k in ("K", "R")})
            image_path = npz.parent / str(data["image_file"])
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"could not read the image {image_path} of sample {npz}")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images, truths


def evaluate_model(model: LandmarkDetector, data_dir: str | Path, layout: str | None = None,
                   style: str = "canonical", batch_size: int = 16, limit: int | None = None) -> dict[str, Any]:
    """All metrics of `model` on a generated test folder (sample_*.npz + images).

    `layout` defaults to the style's layout (ibug68 for canonical). Returns scalars (see REPORT_COLUMNS; NMEs as
    fractions), "per_image" arrays (nme_io, nme_box and, for 3D heads, pose_error_deg) for CED plots, and
    "samples" (file stems in that order).
    """
    data_dir = Path(data_dir)
    layout = _resolve_layout(layout, style)
    files = sorted(data_dir.glob("*.npz"))[:limit]
    if not files:
        raise FileNotFoundError(f"no samples (*.npz) in {data_dir}")
    model.eval()
    queries, normals = _queries(layout)
    target_2d = f"target_{layout}_2d" if style == "canonical" else f"target_style_{style}_2d"
    head_3d = model.config.head == "3d"

    collected: dict[str, list[np.ndarray]] = {}

    def keep(name: str, value: np.ndarray) -> None:
        collected.setdefault(name, []).append(np.asarray(value))

    for start in range(0, len(files), batch_size):
        images, truths = _load_batch(files[start:start + batch_size])
        gt = np.stack([t[target_2d] for t in truths]).astype(np.float64)
        boxes = np.stack([t["target_box"] for t in truths])
        out = _run(model, _image_tensor(images), queries, normals, SEMANTICS[style], boxes)
        keep("pred_2d", out["points_2d"])
        keep("gt_2d", gt)
        keep("gt_io_points", gt if layout in metrics.OUTER_EYE_CORNERS
             else np.stack([t[f"target_{IO_LAYOUT}_2d"] for t in truths]))
        keep("confidence", 1 / (1 + np.exp(-out["face_logit"])))
        if head_3d:
            keep("R_pred", out["R"])
            keep("R_gt", np.stack([t["R"] for t in truths]))
            keep("f_pred", out["K"][:, 0, 0])
            keep("f_gt", np.stack([t["K"][0, 0] for t in truths]))
            keep("pred_3d", out["points_3d"])
            keep("gt_3d", np.stack([t[f"target_{layout}_3d"] for t in truths]).astype(np.float64))
            keep("vis_pred", out["visibility"])
            keep("vis_gt", np.stack([t[f"target_{layout}_vis"] for t in truths]))
        log.info("evaluated %d / %d images", min(start + batch_size, len(files)), len(files))
    arrays = {k: np.concatenate(v) for k, v in collected.items()}

    io_layout = layout if layout in metrics.OUTER_EYE_CORNERS else IO_LAYOUT
    nme_io = metrics.nme(arrays["pred_2d"], arrays["gt_2d"], metrics.inter_ocular_distance(arrays["gt_io_points"],
                                                                                          io_layout))
    nme_box = metrics.nme(arrays["pred_2d"], arrays["gt_2d"], metrics.box_size(arrays["gt_2d"]))
    results: dict[str, Any] = {
        "data": str(data_dir), "layout": layout, "style": style, "head": model.config.head,
        "stn": bool(model.config.stn), "num_images": len(files),
        "nme_io": float(nme_io.mean()), "nme_box": float(nme_box.mean()),
        "fr_io@0.1": metrics.failure_rate(nme_io, 0.1), "fr_io@0.08": metrics.failure_rate(nme_io, 0.08),
        "auc_io@0.1": metrics.auc(nme_io, 0.1),
        "fr_box@0.1": metrics.failure_rate(nme_box, 0.1), "auc_box@0.1": metrics.auc(nme_box, 0.1),
        "face_confidence": float(arrays["confidence"].mean()),
        "per_image": {"nme_io": nme_io, "nme_box": nme_box},
        "samples": [f.stem for f in files],
    }
    if head_3d:
        pose = metrics.pose_errors(arrays["R_pred"], arrays["R_gt"])
        visibility = metrics.visibility_scores(arrays["vis_pred"], arrays["vis_gt"])
        results.update({
            "pose_error_deg": float(pose["geodesic"].mean()), "yaw_error_deg": float(pose["yaw"].mean()),
            "pitch_error_deg": float(pose["pitch"].mean()), "roll_error_deg": float(pose["roll"].mean()),
            "focal_error_pct": float(metrics.focal_error_percent(arrays["f_pred"], arrays["f_gt"]).mean()),
            "error_3d_cm": float(metrics.error_3d(arrays["pred_3d"], arrays["gt_3d"]).mean()),
            "error_3d_aligned_cm": float(metrics.error_3d(arrays["pred_3d"], arrays["gt_3d"], align=True).mean()),
            "visibility_accuracy": visibility["accuracy"], "visibility_f1": visibility["f1"],
        })
        results["per_image"]["pose_error_deg"] = pose["geodesic"]
    log.info("%d images: NME io %.2f%%, box %.2f%%, FR@0.1 %.1f%%", len(files), 100 * results["nme_io"],
             100 * results["nme_box"], 100 * results["fr_io@0.1"])
    return results


# --- sequences -----------------------------------------------------------------------------------------------------

def _read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise OSError(f"could not read any frame of {path}")
    return frames


def _clip_truth(npz: Path, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ground truth (T, N, 2) of the layout, and the iBUG-68 truth (T, 68, 2) for face size and crops."""
    from core.facemodel import load_facemodel
    from training.synth.sequences import load_sequence

    model = load_facemodel()
    points, ibug = [], []
    for sample in load_sequence(npz):
        verts = sample.vertices(model)
        points.append(sample.truth(load_layout(layout), model, verts).points_2d)
        ibug.append(points[-1] if layout == IO_LAYOUT else sample.truth(load_layout(IO_LAYOUT), model, verts).points_2d)
    return np.stack(points).astype(np.float64), np.stack(ibug).astype(np.float64)


def evaluate_sequences(model: LandmarkDetector, seq_dir: str | Path, layout: str = "ibug68",
                       static_tolerance_px: float = 1e-3) -> dict[str, Any]:
    """Temporal metrics on clips (`<name>.mp4` + `<name>.npz`), run frame by frame as a tracker would.

    With an STN the first frame starts from the full frame and every later one is cropped around the previous
    frame's predicted landmarks, STN skipped, as the runtime's tracker does (the STN refining its own crop frame
    after frame drifts: its crop shrank to nothing within a few dozen frames); without one, each frame is cropped
    around its ground-truth box. A clip is static when its ground truth does not
    move (within `static_tolerance_px`). Per clip: NME io per frame (mean), jitter of first and second differences
    of the residual (metrics.jitter) normalised by the per-frame inter-ocular distance; summaries are means over
    clips of each kind.
    """
    seq_dir = Path(seq_dir)
    clips = sorted(p for p in seq_dir.glob("*.npz") if p.with_suffix(".mp4").is_file())
    if not clips:
        raise FileNotFoundError(f"no clips (<name>.mp4 + <name>.npz) in {seq_dir}")
    model.eval()
    queries, normals = _queries(layout)
    per_clip = []
    for npz in clips:
        gt, gt_ibug = _clip_truth(npz, layout)  # first: the clip's depth buffers are freed before its frames are read
        frames = _read_video(npz.with_suffix(".mp4"))
        if len(frames) != len(gt):
            log.warning("%s: %d video frames but %d ground-truth frames; using the first %d", npz.stem,
                        len(frames), len(gt), min(len(frames), len(gt)))
        n = min(len(frames), len(gt))
        gt, gt_ibug = gt[:n], gt_ibug[:n]
        preds: list[np.ndarray] = []
        for frame, ibug in zip(frames[:n], gt_ibug):
            if not model.config.stn:
                out = _run(model, _image_tensor([frame]), queries, normals, SEMANTICS["canonical"], _box(ibug)[None])
            else:
                track = bool(preds) and bool(np.isfinite(preds[-1]).all())
                out = _run(model, _image_tensor([frame]), queries, normals, SEMANTICS["canonical"],
                           _box(preds[-1])[None] if track else None, direct=track)
            preds.append(out["points_2d"][0])
        pred = np.stack(preds)
        io = metrics.inter_ocular_distance(gt_ibug, IO_LAYOUT)
        static = bool(np.abs(gt - gt[0]).max() < static_tolerance_px)
        clip = {"name": npz.stem, "kind": "static" if static else "moving", "frames": n,
                "nme_io": float(metrics.nme(pred, gt, io).mean()),
                "jitter_io": metrics.jitter(pred, gt, io, order=1),
                "jitter2_io": metrics.jitter(pred, gt, io, order=2)}
        per_clip.append(clip)
        log.info("clip %s (%s, %d frames): NME io %.2f%%, jitter %.3f%% io", clip["name"], clip["kind"], n,
                 100 * clip["nme_io"], 100 * clip["jitter_io"])

    results: dict[str, Any] = {"sequences": str(seq_dir), "clips": per_clip}
    for kind in ("static", "moving"):
        chosen = [c for c in per_clip if c["kind"] == kind]
        results[f"num_{kind}_clips"] = len(chosen)
        if not chosen:
            continue
        results[f"{kind}_jitter_io"] = float(np.mean([c["jitter_io"] for c in chosen]))
        results[f"{kind}_jitter2_io"] = float(np.mean([c["jitter2_io"] for c in chosen]))
        results[f"{kind}_nme_io"] = float(np.mean([c["nme_io"] for c in chosen]))
    return results


# --- report --------------------------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """Arrays to lists, and NaN / inf to null: strict JSON readers reject NaN."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _cell(result: dict[str, Any], key: str, scale: float) -> str:
    if key == "yaw_pitch_roll_deg":
        parts = [result.get(f"{axis}_error_deg") for axis in ("yaw", "pitch", "roll")]
        return " / ".join(f"{p:.1f}" for p in parts) if None not in parts else "–"
    value = result.get(key)
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(value)
    value = float(value) * scale
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """Method rows and the REPORT_COLUMNS that at least one method has."""
    def present(key: str) -> bool:
        probe = "yaw_error_deg" if key == "yaw_pitch_roll_deg" else key
        return any(probe in r for r in results.values())

    columns = [c for c in REPORT_COLUMNS if present(c[0])]
    lines = ["| Method | " + " | ".join(header for _, header, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, result in results.items():
        lines.append(f"| {name} | " + " | ".join(_cell(result, key, scale) for key, _, scale in columns) + " |")
    return "\n".join(lines)


REPORT_FILES = {"json": "results.json", "markdown": "results.md", "ced": "ced.png"}


def plan_report(out_dir: str | Path, plan: OutputPlan, what: str = "--out") -> dict[str, Path]:
    """Reserve a report's files in `out_dir` before the work: an existing one is an OutputError unless the plan
    allows overwriting (`--overwrite`), so a rerun never replaces an earlier report by surprise."""
    return {key: plan.file(Path(out_dir) / name, what) for key, name in REPORT_FILES.items()}


def write_report(results: dict[str, dict[str, Any]], out_dir: str | Path, title: str = "Evaluation"
                 ) -> dict[str, Path]:
    """Write results.json (everything, per-image arrays included), results.md (table + definitions) and ced.png
    (CED of NME io per method that has per-image NMEs), each atomically; returns their paths. The caller checks
    them first with `plan_report`."""
    paths = {key: Path(out_dir) / name for key, name in REPORT_FILES.items()}
    write_text(paths["json"], json.dumps(_jsonable(results), indent=1, allow_nan=False))

    first = next(iter(results.values()), {})
    setting = []
    if "data" in first:
        setting.append(f"test images `{first['data']}`, layout `{first['layout']}`, style `{first['style']}`")
    if "sequences" in first:
        setting.append(f"clips `{first['sequences']}`")
    text = [f"# {title}", ""]
    if setting:
        text += ["Data: " + "; ".join(setting) + ".", ""]
    text += [markdown_table(results), "", "![CED](ced.png)", "", DEFINITIONS]
    write_text(paths["markdown"], "\n".join(text))

    curves = {name: r["per_image"]["nme_io"] for name, r in results.items() if "per_image" in r}
    with atomic_path(paths["ced"]) as tmp:
        metrics.plot_ced(curves, tmp, title=f"{title}: CED", xlabel="NME, inter-ocular normalised")
    log.info("wrote %s, %s and %s", *paths.values())
    return paths


# --- real faces from the ground-truth box -------------------------------------------------------------------------

def real_box_crop(image: np.ndarray, points: np.ndarray, crop_size: int, scale: float = BOX_CROP_SCALE
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(the square crop (crop_size, crop_size, 3) around the landmarks' box times `scale`, its 2 x 3 map from image
    to crop pixels), reduced by area first as the runtime reads crops near their own resolution."""
    box = _box(points)
    centre, side = (box[:2] + box[2:]) / 2, float((box[2:] - box[:2]).max()) * scale
    zoom = crop_size / max(side, 1e-3)
    A = np.array([[zoom, 0, crop_size / 2 - zoom * centre[0]], [0, zoom, crop_size / 2 - zoom * centre[1]]])
    pre = 1.0
    if zoom < 1:
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(1, round(w * zoom)), max(1, round(h * zoom))), interpolation=cv2.INTER_AREA)
        pre = image.shape[1] / w
    s = zoom / pre  # corner-origin p_crop = s p_small + b; cv2 puts pixel centres at integers
    M = np.array([[s, 0, A[0, 2] + 0.5 * s - 0.5], [0, s, A[1, 2] + 0.5 * s - 0.5]])
    crop = cv2.warpAffine(image, M, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, A


def evaluate_real(model: LandmarkDetector, spec: str, batch_size: int = 16, limit: int | None = None
                  ) -> dict[str, Any]:
    """2D accuracy on a real dataset from the ground-truth landmarks' box crop (BOX_CROP_SCALE, as the runtime's
    refinement crops): `spec` is a training.data real-dataset spec plus `split=` and `style=` (module docstring).
    Returns nme_box, nme_io (fractions), fr_io@0.1, auc_io@0.1, num_images and "per_image" arrays."""
    from training.data import make_dataset, parse_spec

    name, options = parse_spec(spec)
    split, style = options.pop("split", "all"), options.pop("style", "canonical")
    style_id = SEMANTICS[style]
    dataset = make_dataset(f"{name}:" + ",".join(f"{k}={v}" for k, v in options.items()), augment=False,
                           split=split)
    indices = dataset.indices[:limit]
    queries, normals = _queries(dataset.layout)
    cs = model.config.crop_size
    crop_theta = theta_from_box(torch.tensor([[0.0, 0.0, cs, cs]]), (cs, cs), scale=1.0)
    preds, truths = [], []
    model.eval()
    for start in range(0, len(indices), batch_size):
        crops, maps = [], []
        for i in indices[start:start + batch_size]:
            sample = dataset.reader[int(i)]
            crop, A = real_box_crop(sample.load_image(), sample.landmarks.astype(np.float64), cs)
            crops.append(crop)
            maps.append(A)
            truths.append(sample.landmarks.astype(np.float64))
        images = _image_tensor(crops)
        style_ids = torch.full((len(crops),), style_id, dtype=torch.long)
        with torch.no_grad():
            out = model(images, queries, style_ids=style_ids, normals=normals,
                        crop_theta=crop_theta.expand(len(crops), 2, 3))
        for p, A in zip(out["points_2d"].numpy().astype(np.float64), maps):
            preds.append((p - A[:, 2]) / A[0, 0])  # crop -> image pixels
    pred, gt = np.stack(preds), np.stack(truths)
    nme_io = metrics.nme(pred, gt, metrics.inter_ocular_distance(gt, dataset.layout))
    nme_box = metrics.nme(pred, gt, metrics.box_size(gt))
    return {"num_images": len(gt), "nme_io": float(nme_io.mean()), "nme_box": float(nme_box.mean()),
            "fr_io@0.1": metrics.failure_rate(nme_io), "auc_io@0.1": metrics.auc(nme_io),
            "per_image": {"nme_io": nme_io, "nme_box": nme_box}}


# --- command line --------------------------------------------------------------------------------------------------

def _method_names(paths: list[str]) -> list[str]:
    """runs/X/last.pt -> "X"; the file name is added where two checkpoints share a folder name."""
    names = [Path(p).parent.name or Path(p).stem for p in paths]
    return [f"{n}/{Path(p).stem}" if names.count(n) > 1 else n for n, p in zip(names, paths)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="trainer checkpoint (repeatable)")
    parser.add_argument("--variant", action="append", default=[],
                        help="an untrained model of this variant (repeatable; for smoke tests)")
    parser.add_argument("--data", help="folder from `python -m training.synth generate`")
    parser.add_argument("--sequences", help="folder of clips from `python -m training.synth sequence`")
    parser.add_argument("--out", default="docs/eval")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the report files (results.json, results.md, ced.png) already in --out")
    parser.add_argument("--layout", default=None, help="landmark layout (default: the style's, ibug68)")
    parser.add_argument("--style", default="canonical", choices=["canonical", *TRAINING_STYLES],
                        help="annotation semantics to ask for and score against")
    parser.add_argument("--real", action="append", default=[], metavar="NAME=SPEC",
                        help="real faces from their ground-truth box crop (repeatable; see the module docstring)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    parser.add_argument("--title", default="Evaluation")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="read checkpoints holding pickled objects (runs code from them: trusted files only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.checkpoint and not args.variant:
        parser.error("give at least one --checkpoint or --variant")
    if not args.data and not args.sequences and not args.real:
        parser.error("give --data, --sequences and/or --real")
    real_sets = []
    for entry in args.real:
        name, sep, spec = entry.partition("=")
        if not sep or not name or ":" not in spec:
            parser.error(f"--real {entry!r}: expected NAME=DATASET:root=PATH[,...]")
        real_sets.append((name, spec))
    try:
        plan_report(args.out, OutputPlan(args.checkpoint, args.overwrite))
    except OutputError as exc:
        log.error("%s", exc)
        return 2

    methods = [(name, path, None) for name, path in zip(_method_names(args.checkpoint), args.checkpoint)]
    methods += [(f"{variant} (untrained)", None, variant) for variant in args.variant]
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, path, variant in methods:
            if path is not None:
                model = load_checkpoint(path, args.allow_pickle)
            else:
                torch.manual_seed(0)
                model = create_model(variant).eval()
            log.info("evaluating %s", name)
            result: dict[str, Any] = {}
            if args.data:
                result.update(evaluate_model(model, args.data, args.layout, args.style, args.batch_size, args.limit))
            if args.sequences:
                result.update(evaluate_sequences(model, args.sequences, args.layout or "ibug68"))
            if result or not real_sets:
                results[name] = result
            for set_name, spec in real_sets:
                results[f"{name}: {set_name}"] = evaluate_real(model, spec, args.batch_size, args.limit)
    except (ValueError, KeyError, FileNotFoundError, OSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        paths = write_report(results, args.out, args.title)
    except OutputError as exc:
        log.error("%s", exc)
        return 1
    print(paths["markdown"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
