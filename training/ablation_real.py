"""The paper's ablation on real faces: four rows that differ only in its additions, scored on AFLW2000-3D dev and the
300-W validation split with the real-face benchmark's protocol (bench.realfaces.scoring).

    python -m training.ablation_real --steps 900 --out docs/ablation/real

Rows (the landmark stage of the shipped model: MobileNetV3 encoder, spatial read-out at stride 4):
  baseline_2d  2D head (per-query heatmaps, no prior) on the rough crop as it comes
  stn_2d       + the spatial transformer's passes refining that crop, trained by the landmark loss alone
  stn_3d       + 3D head (canonical points, focal and pose, projected; the projection is the read-out's prior)
  full         + semantic correction (a style per dataset: 300-W, FRL, the synthetic styles)

Every row starts from `--init` (the shipped default model: every tensor whose name and shape fit) and is fine-tuned
the same steps, seed and schedule on the same mix (300-W HELEN + AFW, FRL, synthetic), so a row shows what taking an
addition away costs once the rest has adapted to its absence. In training every crop starts from the ground-truth
box moved by ~10% and scaled by ~20% (`data.tracking_priors` 1.0: what a face finder gives); the baseline is cut
there, the STN rows refine it. In evaluation every row starts from the same crop: the shipped model's face finder on
the whole photo (the crop a separately trained cropper gives) or, for reference, the ground-truth box. One run per
photo, its crop read from the photo's own pixels (as core.runtime reads refinement crops), no refinement round.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.realfaces import inputs
from bench.realfaces.scoring import score_face, summarize
from core.layouts import SEMANTICS, load_layout
from core.model import LandmarkDetector
from core.outputs import OutputError, OutputPlan, write_text
from core.runtime.images import ImageFit, fit_to_input, read_image, sample_crop
from core.runtime.session import DEFAULT_CROP_SCALE, crop_zoom, landmark_prior
from training.checkpoints import load_checkpoint_file, save_checkpoint
from training.evaluate import load_checkpoint
from training.train import train

log = logging.getLogger("training.ablation_real")

# The shipped model's landmark stage; a row's variant takes the paper's additions away.
BASE_MODEL = {"spatial_stride": 4, "backbone_kwargs": {"output_stride": 16}, "stn_iterations": 2,
              "stn_finder": True, "refine_2d": False}
ROWS = ("baseline_2d", "stn_2d", "stn_3d", "full")  # core.model.MODEL_VARIANTS, one addition each
REALFACES = inputs.REALFACES
TRAIN_MIX = (f"300w:root={REALFACES / '300w_train'},rotate=25,mirror=0.5,val_fraction={inputs.W300_VAL_FRACTION},"
             "weight=1;"
             f"frl:root={REALFACES / 'frl_ccby'},rotate=25,mirror=0.5,val_fraction=0.05,weight=0.15;"
             "synthetic:root={synthetic},style=mix,val_fraction=0.02,weight=1,shapes=0.3")
INPUT_HW = (256, 256)  # the runtime's model input (core.predict fits every photo into it)
REFERENCE = "shipped"
STN_OUTPUT_LAYER = "stn.head.2."  # the row of --init itself, not fine-tuned


def starting_weights(init: str, run_root: Path) -> Path:
    """`init` with the STN's output layer zeroed (run_root/init.pt): its passes start as the identity, so an STN row
    starts from exactly the baseline's crop and learns its refinement from the landmark loss alone (the shipped
    STN's passes, trained on renders, zoom real faces too far in)."""
    checkpoint = load_checkpoint_file(init)
    state = dict(checkpoint["model"])
    for key in (k for k in state if k.startswith(STN_OUTPUT_LAYER)):
        state[key] = torch.zeros_like(state[key])
    path = run_root / "init.pt"
    run_root.mkdir(parents=True, exist_ok=True)
    save_checkpoint({"model": state, "config": checkpoint.get("config", {})}, path)
    return path


def row_config(name: str, init: str, synthetic: str, run_root: Path, steps: int, seed: int) -> dict:
    """The trainer config of one row: identical for every row but the model variant and run folder."""
    return {
        "seed": seed,
        "run_dir": str(run_root / name),
        "init_weights": init,
        "model": {**BASE_MODEL, "variant": name},
        # No face-free images: every STN pass then starts from a rough crop, as in evaluation.
        "data": {"train": TRAIN_MIX.format(synthetic=synthetic), "image_size": 256, "queries_per_image": 128,
                 "negatives": 0.0, "teacher_crops": 0.0, "tracking_priors": 1.0, "num_workers": 2},
        "optim": {"batch_size": 32, "steps": steps, "lr": 3.0e-4, "warmup_steps": max(steps // 20, 10)},
        "loss": {"use_3d_supervision": True, "stn_box": 0.0},
        "log": {"every": 25, "val_every": steps, "val_batches": 4, "image_every": steps, "ckpt_every": 250},
        "runtime": {"threads": 2},
    }


@dataclass
class Photo:
    """One photo of a set, fitted to the model input, with the two starting crops (model-input theta)."""

    face: inputs.Face
    image: np.ndarray
    fitted: torch.Tensor          # (1, 3, H, W) in [0, 1]
    fit: ImageFit
    starts: dict[str, np.ndarray]
    canvases: dict[int, np.ndarray] = field(default_factory=dict)  # the photo fitted at k times the input, by k

    def canvas(self, zoom: int) -> np.ndarray:
        """The photo fitted to `zoom` times the model input (made once per zoom: every row reads it)."""
        if zoom not in self.canvases:
            self.canvases[zoom] = fit_to_input(self.image, (INPUT_HW[0] * zoom, INPUT_HW[1] * zoom))[0]
        return self.canvases[zoom]


def prepare(face_set: inputs.FaceSet, finder: LandmarkDetector) -> list[Photo]:
    """Each photo of the set with its crops from `finder`'s face finder and from the ground-truth box."""
    photos = []
    for face in tqdm(face_set.faces, desc=f"crops on {face_set.key}", unit="photo"):
        image = read_image(face.image_path)
        pixels, fit = fit_to_input(image, INPUT_HW)
        fitted = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            found = finder.stn.passes(fitted)[-1][0].numpy().astype(np.float64)
        box = landmark_prior(fit.to_input(face.gt), INPUT_HW, DEFAULT_CROP_SCALE)
        photos.append(Photo(face, image, fitted, fit, {"finder": found, "box": box}))
    return photos


def predict(model: LandmarkDetector, photo: Photo, start: str, queries: torch.Tensor, normals: torch.Tensor,
            style_id: int, refine: bool = True) -> dict[str, Any]:
    """The face the model returns from a starting crop, as a `core.predict` entry's face (original pixels);
    `refine`: a model with an STN refines the crop first."""
    theta = torch.from_numpy(photo.starts[start]).float()[None]
    cs = model.crop_size
    with torch.no_grad():
        if refine and model.stn is not None:
            theta = model.stn.passes(photo.fitted, theta)[-1]
        theta_np = theta[0].numpy().astype(np.float64)
        zoom = crop_zoom(theta_np, photo.fit, cs)
        crop = torch.from_numpy(sample_crop(photo.canvas(zoom), theta_np, cs))[None]
        frame = torch.zeros(1, 3, INPUT_HW[0] * zoom, INPUT_HW[1] * zoom)  # only its size is read (the camera's)
        out = model(frame, queries, style_ids=torch.tensor([style_id]), crop_theta=theta, normals=normals,
                    teacher_crop=crop, teacher_mask=torch.ones(1, dtype=torch.bool))
    points = photo.fit.to_original(out["points_2d"][0].numpy().astype(np.float64) / zoom)
    face: dict[str, Any] = {"landmarks_2d": points.tolist()}
    if "R" in out:
        face["R"] = out["R"][0].numpy().astype(np.float64).tolist()
    return face


def evaluate_rows(models: dict[str, LandmarkDetector], face_set: inputs.FaceSet, photos: list[Photo]
                  ) -> dict[str, dict[str, dict[str, Any]]]:
    """{row: {start: the set's summary (bench.realfaces.scoring.summarize)}}, every row from the same crops."""
    layout = load_layout(face_set.layout)
    queries = torch.from_numpy(layout.canonical_points()).float()
    normals = torch.from_numpy(layout.canonical_normals()).float()
    style_id = SEMANTICS[face_set.semantics]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, model in models.items():
        model.eval()
        results[name] = {}
        for start in ("finder", "box"):
            # The shipped model as core.predict runs it: its STN's passes never refine a photo's crop.
            scores = [score_face([predict(model, p, start, queries, normals, style_id, name != REFERENCE)], p.face)
                      for p in tqdm(photos, desc=f"{name} on {face_set.key} from the {start}", unit="photo")]
            results[name][start] = summarize(scores, [p.face for p in photos])
            log.info("%s on %s from the %s: NME_box %.4f, FR@0.1 %.3f", name, face_set.key, start,
                     results[name][start]["nme_box"], results[name][start]["fr_0.1"])
    return results


def _cell(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def markdown(results: dict[str, dict[str, dict[str, dict[str, Any]]]], titles: dict[str, str]) -> str:
    """One table per set: the finder-crop figures, then NME from the ground-truth box."""
    lines = []
    for key, rows in results.items():
        any_row = next(iter(rows.values()))["finder"]
        lines += [f"### {titles[key]} ({any_row['n']} photos)", "",
                  "| Row | Detected | NME_box | NME_io | FR@0.1 | AUC@0.1 | Pose MAE (°) | NME_box, box crop "
                  "| NME_io, box crop |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, by_start in rows.items():
            f, b = by_start["finder"], by_start["box"]
            lines.append(f"| {name} | {f['detected']} | {_cell(f['nme_box'])} | {_cell(f['nme_io'])} "
                         f"| {_cell(f['fr_0.1'], digits=3)} | {_cell(f['auc_0.1'], digits=3)} "
                         f"| {_cell(f['pose_mae'], digits=1)} | {_cell(b['nme_box'])} | {_cell(b['nme_io'])} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=900, help="training steps per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--init", default="assets/models/default.pt", help="checkpoint every row starts from")
    parser.add_argument("--synthetic", default="data/synth_train", help="generated synthetic training folder")
    parser.add_argument("--runs", default="runs/ablation_real", help="where the runs go (resumed if present)")
    parser.add_argument("--out", default="docs/ablation/real", help="folder for results.json and results.md")
    parser.add_argument("--limit", type=int, help="evaluate on the first N photos of each set")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    args = parser.parse_args(argv)
    out = Path(args.out)
    plan = OutputPlan(overwrite=args.overwrite)
    try:
        plan.file(out / "results.json", "--out")
        plan.file(out / "results.md", "--out")
    except OutputError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    models = {REFERENCE: load_checkpoint(args.init)}
    init = str(starting_weights(args.init, Path(args.runs)))
    for name in args.rows:
        run_dir = train(row_config(name, init, args.synthetic, Path(args.runs), args.steps, args.seed))
        models[name] = load_checkpoint(run_dir / "last.pt")
    torch.set_num_threads(2)
    sets = [inputs.aflw2000_dev(args.limit), inputs.w300_val(args.limit)]
    results = {s.key: evaluate_rows(models, s, prepare(s, models[REFERENCE])) for s in sets}
    command = "python -m training.ablation_real " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"Made by `{command}` ({args.steps} fine-tuning steps per row; `{REFERENCE}` is `{args.init}` "
            "itself). NME_box, NME_io, FR@0.1, AUC@0.1 and pose as in bench.realfaces, from the face finder's "
            "crop; the last two columns from the ground-truth box.\n\n"
            + markdown(results, {s.key: s.title for s in sets}))
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", json.dumps({"command": command, "steps": args.steps, "results": results},
                                                indent=1))
    write_text(out / "results.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
