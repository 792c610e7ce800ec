"""Training losses of the detector: one call, `compute_losses(outputs, batch, config)`, returns every term
(unweighted, for logging), `nme` (a metric, not optimised) and `total` (the weighted sum).

Terms (weights under `loss:` in the config; a weight of 0 leaves the term out of `total`):
- `landmark`: 2D error divided by the face size sqrt(box area), L1 / L2 / smooth-L1 / Wing. Occluded points keep
  their loss (synthetic data knows where they are, and real annotators place them too) times `occluded_weight`.
- `projection` (3D head with refine_2d): the same landmark error of the 3D head's projection alone, so the 3D
  path keeps learning the 2D points rather than leaving them to the 2D residual.
- `face`: face-presence BCE on `face_logit` (face-free negatives have is_face = 0 and no landmark loss).
- `visibility` (3D head): BCE of the head's visibility against self-visibility. That visibility is a function of
  the predicted 3D points and camera (facing test), so this term shapes the 3D prediction; self-visibility
  rather than all-causes visibility, because facing cannot explain a hand in front of the face.
- `points_3d`, `focal`, `rotation`, `translation` (3D head, `use_3d_supervision`): L1 in cm on the canonical
  points, |log f / f_gt|, geodesic angle (rad), |t - t_gt| / z_gt; only where the sample has them.
- `offsets`: mean squared semantic-correction offset (cm; 2D offsets converted assuming a 15 cm face spans the
  crop), so the correction explains annotation habits and not everything; `offsets_smooth`: squared difference
  of the offsets of nearest-neighbour queries.
- `stn`: core.model.stn.stn_regulariser on the STN's last pass; `stn_box`: L1 of every pass's theta to the
  ground-truth box crop (optional guide). Both only when the STN ran (`stn_thetas`), not for crops from boxes.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from core.model.stn import stn_regulariser, theta_from_box

LOSS_DEFAULTS: dict[str, Any] = {
    "landmark": 1.0, "landmark_fn": "l1", "occluded_weight": 0.5, "wing_w": 0.04, "wing_eps": 0.008,
    "smooth_l1_beta": 0.01, "face": 0.1, "visibility": 0.1, "use_3d_supervision": False, "points_3d": 0.02,
    "focal": 0.1, "rotation": 0.1, "translation": 0.1, "offsets": 0.01, "offsets_smooth": 0.0, "stn": 1.0,
    "stn_box": 0.0, "projection": 0.5,
}
FACE_WIDTH_CM = 15.0


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-6)


def landmark_error(diff: torch.Tensor, fn: str, cfg: dict[str, Any]) -> torch.Tensor:
    """Per-point loss (B, Q) of normalised 2D differences (B, Q, 2)."""
    if fn == "l1":
        return diff.abs().sum(-1)
    if fn == "l2":
        return torch.sqrt((diff * diff).sum(-1) + 1e-12)
    if fn == "smooth_l1":
        return F.smooth_l1_loss(diff, torch.zeros_like(diff), reduction="none", beta=cfg["smooth_l1_beta"]).sum(-1)
    if fn == "wing":
        # Feng et al. 2018, in face-size units: log-shaped below w (small errors count), L1 above.
        w, eps = cfg["wing_w"], cfg["wing_eps"]
        x = torch.sqrt((diff * diff).sum(-1) + 1e-12)
        c = w - w * math.log(1 + w / eps)
        return torch.where(x < w, w * torch.log1p(x / eps), x - c)
    raise ValueError(f"unknown landmark loss {fn!r}; valid: l1, l2, smooth_l1, wing")


def geodesic(R: torch.Tensor, R_gt: torch.Tensor) -> torch.Tensor:
    """(B,) rotation angle of R_gt^T R in radians (clamped away from +-1 so the gradient stays finite)."""
    cos = ((R_gt.transpose(-1, -2) @ R).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))


def nearest_neighbour_smoothness(offsets: torch.Tensor, queries: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, Q) squared offset difference between each query and its nearest other query in canonical space."""
    dist = torch.cdist(queries, queries)
    invalid = torch.eye(queries.shape[1], dtype=torch.bool, device=queries.device) | (mask[:, None, :] < 0.5)
    nearest = dist.masked_fill(invalid, float("inf")).argmin(-1)  # (B, Q)
    neighbour = torch.gather(offsets, 1, nearest.unsqueeze(-1).expand_as(offsets))
    return ((offsets - neighbour) ** 2).sum(-1)


def compute_losses(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], config: dict[str, Any]
                   ) -> dict[str, torch.Tensor]:
    """Loss terms and `total` for one batch (see the module docstring). `config` is the full training config
    (its `loss` section is read, `data.crop_scale` for `stn_box`) or the loss section alone."""
    cfg = {**LOSS_DEFAULTS, **config.get("loss", config)}
    crop_scale = float(config.get("data", {}).get("crop_scale", 1.3))
    pred = outputs["points_2d"].float()
    is_face = batch["is_face"]
    valid = batch["valid"] * is_face[:, None]
    box = batch["box"]
    size = torch.sqrt((box[:, 2] - box[:, 0]).clamp(min=1) * (box[:, 3] - box[:, 1]).clamp(min=1))
    diff = (pred - batch["targets_2d"]) / size[:, None, None]
    vis = batch["visibility"]
    weight = valid * (vis + cfg["occluded_weight"] * (1 - vis))
    losses: dict[str, torch.Tensor] = {
        "landmark": _masked_mean(landmark_error(diff, cfg["landmark_fn"], cfg), weight),
        "face": F.binary_cross_entropy_with_logits(outputs["face_logit"].float(), is_face),
    }
    with torch.no_grad():
        losses["nme"] = _masked_mean(torch.sqrt((diff * diff).sum(-1)), valid)
    if "points_2d_projected" in outputs:
        diff_projected = (outputs["points_2d_projected"].float() - batch["targets_2d"]) / size[:, None, None]
        losses["projection"] = _masked_mean(landmark_error(diff_projected, cfg["landmark_fn"], cfg), weight)

    if "visibility" in outputs:
        p = outputs["visibility"].float().clamp(1e-4, 1 - 1e-4)
        losses["visibility"] = _masked_mean(F.binary_cross_entropy(p, batch["self_visible"], reduction="none"),
                                            valid * batch["has_vis"][:, None])
    if "points_3d" in outputs and cfg["use_3d_supervision"]:
        face_camera = batch["has_camera"] * is_face
        err3d = (outputs["points_3d"].float() - batch["points_3d"]).abs().mean(-1)
        losses["points_3d"] = _masked_mean(err3d, valid * batch["has_3d"][:, None])
        focal_ratio = outputs["K"][:, 0, 0].float() / batch["K"][:, 0, 0].clamp(min=1e-3)
        losses["focal"] = _masked_mean(torch.log(focal_ratio.clamp(min=1e-6)).abs(), face_camera)
        losses["rotation"] = _masked_mean(geodesic(outputs["R"].float(), batch["R"]), face_camera)
        t_err = (outputs["t"].float() - batch["t"]).abs().sum(-1) / batch["t"][:, 2].abs().clamp(min=1.0)
        losses["translation"] = _masked_mean(t_err, face_camera)
    if "offsets" in outputs:
        offsets = outputs["offsets"].float()
        if offsets.shape[-1] == 2:
            offsets = offsets * (FACE_WIDTH_CM / outputs["crop"].shape[-1])
        styled = batch["mask"] * (batch["style_id"] != 0).float()[:, None]
        losses["offsets"] = _masked_mean((offsets ** 2).sum(-1), styled)
        if cfg["offsets_smooth"] > 0:
            smooth = nearest_neighbour_smoothness(offsets, batch["queries"], batch["mask"])
            losses["offsets_smooth"] = _masked_mean(smooth, styled)
    if "stn_thetas" in outputs:
        thetas = outputs["stn_thetas"].float()  # (B, passes, 2, 3)
        hw = tuple(batch["image"].shape[-2:])
        losses["stn"] = stn_regulariser(thetas[:, -1], hw)
        if cfg["stn_box"] > 0:
            # Every pass is pulled towards the box crop, so the first one already finds the face.
            target = theta_from_box(box, hw, crop_scale)
            box_error = (thetas - target[:, None]).abs().sum((2, 3)).mean(1)
            losses["stn_box"] = _masked_mean(box_error, is_face)

    total = pred.new_zeros(())
    for name, value in losses.items():
        if name != "nme" and cfg[name]:
            total = total + float(cfg[name]) * value
    losses["total"] = total
    return losses
