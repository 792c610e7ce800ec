"""The ibug68_ls3d layout: the 68 iBUG points where 300-W's annotators put them, as fixed points of the canonical
surface, so that they stay 3D-consistent under any pose: the convention of LS3D-W's re-annotation of AFLW2000-3D
(300-W's definitions, 3D-consistent jaw).

ICT's own landmark vertices (`ibug68`) are one reading of the 300-W definitions; human annotators place the brows,
eyes, nose and lips a few millimetres elsewhere. With a trained detector frozen, the 51 inner points' queries are
moved in canonical space so that its canonical-semantics read-out lands on 300-W's labels (training split of
`300w_train`, each photo also mirrored, with the queries mirrored, so that the layout stays symmetric), then
snapped onto the face surface. The jaw keeps ICT's vertices: 300-W's jaw follows the 2D silhouette, which no
fixed surface point can (that is the `ibug2d` semantics' job). The fit uses 300-W's training split only; the
300-W validation split and AFLW2000-3D are never seen.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.facemodel import load_facemodel
from core.layouts import IBUG68_CONTOURS, Layout, closest_surface_point, load_layout
from core.paths import REPO_DIR

log = logging.getLogger(__name__)

W300_ROOT = REPO_DIR.parent / "shared" / "realfaces" / "300w_train"
DEFAULT_CHECKPOINT = REPO_DIR / "assets" / "models" / "default.pt"
JAW = slice(0, 17)
FIT_EPOCHS = 3
FIT_BATCH = 32
FIT_LR_CM = 0.03
OFFSET_WEIGHT = 1e-3  # a small pull towards ICT's points: depth along the view is not seen in frontal photos
CROP_SCALE = 1.3      # the ground-truth box crop, as training's teacher crops


def fit_offsets(checkpoint: str | Path, w300_root: str | Path, epochs: int = FIT_EPOCHS, seed: int = 0
                ) -> tuple[np.ndarray, dict[str, float]]:
    """(68, 3) canonical offsets (cm; zero on the jaw) of ibug68's queries that fit 300-W's training labels, and the
    box-normalised mean error there before and after ({"before": ..., "after": ...})."""
    import torch
    from tqdm import tqdm

    from core.model.stn import theta_from_box
    from training.data import RealDataset, collate
    from training.evaluate import load_checkpoint

    torch.manual_seed(seed)
    model = load_checkpoint(checkpoint)
    for p in model.parameters():
        p.requires_grad_(False)
    data = RealDataset(f"300w:root={w300_root}", image_size=256, augment=False, split="train", val_fraction=0.1)
    batch = collate([data[i] for i in tqdm(range(len(data)), desc="300-W training photos", unit="photo")])
    size = batch["image"].shape[-1]
    layout = load_layout("ibug68")
    queries = torch.from_numpy(layout.canonical_points()).float()
    normals = torch.from_numpy(layout.canonical_normals()).float()
    free = torch.ones(len(layout), 1)
    free[JAW] = 0
    offsets = torch.zeros(len(layout), 3, requires_grad=True)
    flip = torch.tensor([-1.0, 1.0, 1.0])

    def errors(index: torch.Tensor, d: torch.Tensor, mirrored: bool) -> torch.Tensor:
        image, target, box = batch["image"][index], batch["targets_2d"][index], batch["box"][index]
        q, n = queries + d * free, normals
        if mirrored:
            image = image.flip(-1)
            target = target * torch.tensor([-1.0, 1.0]) + torch.tensor([float(size), 0.0])
            box = torch.stack([size - box[:, 2], box[:, 1], size - box[:, 0], box[:, 3]], 1)
            q, n = q * flip, n * flip
        out = model(image, q, style_ids=torch.zeros(len(index), dtype=torch.long), normals=n,
                    crop_theta=theta_from_box(box, (size, size), CROP_SCALE))
        scale = (box[:, 2:] - box[:, :2]).prod(-1).sqrt()
        return (out["points_2d"] - target).norm(dim=-1) / scale[:, None]

    def mean_error(d: torch.Tensor) -> float:
        with torch.no_grad():
            return float(torch.cat([errors(torch.arange(k, min(k + 64, len(data))), d, False)
                                    for k in range(0, len(data), 64)]).mean())

    before = mean_error(torch.zeros_like(offsets))
    optimizer = torch.optim.Adam([offsets], lr=FIT_LR_CM)
    for epoch in range(epochs):
        order = torch.randperm(len(data))
        for k in tqdm(range(0, len(data), FIT_BATCH), desc=f"fit, epoch {epoch + 1}/{epochs}", unit="batch"):
            index = order[k:k + FIT_BATCH]
            fit = (errors(index, offsets, False).mean() + errors(index, offsets, True).mean()) / 2
            loss = fit + OFFSET_WEIGHT * (offsets * free).pow(2).sum(-1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = mean_error(offsets.detach())
    log.info("300-W training photos, box-normalised mean error of the 68 points: %.4f with ibug68, %.4f fitted",
             before, after)
    return (offsets * free).detach().numpy().astype(np.float64), {"before": before, "after": after}


def build_ibug68_ls3d(checkpoint: str | Path = DEFAULT_CHECKPOINT, w300_root: str | Path = W300_ROOT) -> Layout:
    """Fit (`fit_offsets`) and snap onto the face's skin (M_Face); the jaw is ibug68's."""
    ibug68 = load_layout("ibug68")
    offsets, _ = fit_offsets(checkpoint, w300_root)
    model = load_facemodel()
    moved = ibug68.canonical_points(model) + offsets
    triangles, barycentric = closest_surface_point(moved, model.vertices(), model.triangles,
                                                   model.material_mask("M_Face"))
    triangles[JAW], barycentric[JAW] = ibug68.triangles[JAW], ibug68.barycentric[JAW]
    layout = Layout("ibug68_ls3d", triangles, barycentric, names=ibug68.names, contours=IBUG68_CONTOURS,
                    description="iBUG 300-W 68 points where 300-W's annotators place them (brows, eyes, nose, lips "
                                "fitted to 300-W's training labels), on fixed surface points: 3D-consistent, as "
                                "LS3D-W's re-annotation of AFLW2000-3D; the jaw is ibug68's.")
    shift = np.linalg.norm(layout.canonical_points(model) - ibug68.canonical_points(model), axis=1)[17:]
    log.info("inner points moved from ICT's vertices by %.2f cm median, %.2f cm at most", np.median(shift),
             shift.max())
    return layout
