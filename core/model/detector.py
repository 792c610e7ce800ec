"""The landmark detector: STN crop -> backbone -> query decoder -> 2D points (2D head) or 3D points + camera.

    model = create_model("full")          # or a ModelConfig, or a dict of its fields
    out = model(image, queries)           # image (B, 3, H, W) in [0, 1]; queries (N, 3) or (B, N, 3) in cm

Output dict (B images, N queries):
    points_2d   (B, N, 2) full-image pixels          theta      (B, 2, 3) crop (see stn.py)
    points_crop (B, N, 2) crop pixels                crop       (B, 3, cs, cs) what the backbone saw
    face_logit  (B,) is there a face in the crop (trained on face-free negatives; sigmoid -> confidence)
    offsets     (B, N, 3 | 2) semantic correction (cm for the 3D head, crop px for the 2D head), if enabled
  3D head only:
    points_3d   (B, N, 3) canonical cm               K, R, t    full-image camera (B, 3, 3), (B, 3, 3), (B, 3)
    visibility  (B, N) in 0..1
    points_2d_projected (B, N, 2) with refine_2d or spatial_stride: the projection alone (points_2d is the
                        projection plus the 2D residual, or the spatial read-out)

2D head: the net predicts crop pixels, starting from the query seen frontally by the 3D head's initial camera.
3D head: the net predicts the camera of the crop it sees (focal for the crop, rotation, translation), projects
there, and maps the 2D points to the image through the crop transform. `K, R, t` are the same camera for the
full frame (stn.crop_camera_to_image): projecting `points_3d` with them gives `points_2d` exactly when the crop
is a similarity, approximately with `stn_affine`.
With `spatial_stride` (either head), `points_2d` is read out from each query's heatmap over a fine feature map
(decoder.SpatialReadout); the 3D head still projects, and its projection is trained beside it.
The ONNX export of this model is `onnx_export.export_onnx`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import geometry
from .backbones import create_backbone, features_with_fine, fine_layer
from .camera import intrinsics, project, to_camera
from .decoder import (CameraHead, QueryDecoder, SemanticCorrection, SpatialReadout, facing_visibility,
                                occlusion_visibility)
from .stn import (SpatialTransformer, crop_camera_to_image, crop_to_image, image_size, image_to_crop,
                  sample_crop)


@dataclass
class ModelConfig:
    backbone: str = "mobilenet_small"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    crop_size: int = 128
    stn: bool = True                  # False: the caller passes crop_theta (e.g. from ground-truth boxes)
    stn_input: int = 64
    stn_affine: bool = False
    stn_iterations: int = 1           # recurrent refinement passes of the STN (each looks at its last crop)
    stn_wide_view: int = 0            # the STN's first pass also looks at this many px (0: off; SpatialTransformer)
    stn_finder: bool = False          # the STN's crop from the whole frame is a FaceFinder's (stn.FaceFinder)
    head: str = "3d"                  # "3d" | "2d"
    refine_2d: bool = False           # 3D head: points_2d = projection + a 2D residual read from the feature map
    spatial_stride: int = 0           # > 0: points_2d from per-query heatmaps at this stride of the crop (4 or 8)
    semantic_correction: bool = True
    num_styles: int = 8
    fourier_bands: int = 8
    hidden: int = 256
    decoder_layers: int = 3
    attention: bool = True            # queries also read the coarse feature map (else only FiLM of the pooled vector)
    init_fov_deg: float = 50.0        # of the crop camera at initialisation
    init_depth_cm: float = 60.0
    visibility_sharpness: float = 10.0
    depth_test: bool = False          # O(N^2) occlusion test among the predicted points
    depth_radius_px: float = 3.0      # crop pixels
    depth_margin_cm: float = 1.0

    def __post_init__(self) -> None:
        if self.head not in ("2d", "3d"):
            raise ValueError(f"head must be '2d' or '3d', got {self.head!r}")


MODEL_VARIANTS: dict[str, ModelConfig] = {
    "baseline_2d": ModelConfig(stn=False, head="2d", semantic_correction=False),
    "stn_2d": ModelConfig(stn=True, head="2d", semantic_correction=False),
    "stn_3d": ModelConfig(stn=True, head="3d", semantic_correction=False),
    "full": ModelConfig(stn=True, head="3d", semantic_correction=True),
}
DEFAULT_VARIANT = "full"


class LandmarkDetector(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.crop_size = config.crop_size
        self.backbone = create_backbone(config.backbone, **config.backbone_kwargs)
        channels = self.backbone.out_channels
        self.stn = (SpatialTransformer(config.stn_input, config.stn_affine, iterations=config.stn_iterations,
                                       wide_view=config.stn_wide_view, finder=config.stn_finder)
                    if config.stn else None)
        out_dim = 3 if config.head == "3d" else 2
        self.decoder = QueryDecoder(channels, out_dim, config.fourier_bands, config.hidden, config.decoder_layers,
                                    config.attention, residual_2d=config.refine_2d and config.head == "3d")
        self.camera = (CameraHead(channels, config.hidden, config.crop_size, config.init_fov_deg, config.init_depth_cm)
                       if config.head == "3d" else None)
        focal = geometry.focal_from_fov(config.init_fov_deg, config.crop_size)
        self.register_buffer("frontal_scale", torch.tensor([1.0, -1.0]) * focal / config.init_depth_cm,
                             persistent=False)
        self.correction = (SemanticCorrection(out_dim, config.num_styles, config.fourier_bands)
                           if config.semantic_correction else None)
        self.face_presence = nn.Linear(channels, 1)
        self.readout = None
        if config.spatial_stride:
            self.fine_index, fine_channels = fine_layer(self.backbone, config.spatial_stride)
            self.readout = SpatialReadout(fine_channels, channels, config.hidden, config.spatial_stride)

    def forward(self, image: torch.Tensor, queries: torch.Tensor, style_ids: torch.Tensor | None = None,
                crop_theta: torch.Tensor | None = None, prior_theta: torch.Tensor | None = None,
                normals: torch.Tensor | None = None, teacher_theta: torch.Tensor | None = None,
                teacher_mask: torch.Tensor | None = None, teacher_crop: torch.Tensor | None = None,
                find_face: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """See the module docstring. style_ids (B,) int (0 = canonical semantics); crop_theta (B, 2, 3) replaces
        the STN; prior_theta (B, 2, 3) is the previous frame's theta for the STN to refine; normals (N, 3) or
        (B, N, 3) canonical surface normals at the queries for the facing test.
        Training only: where teacher_mask (B,) bool is set, the detector sees teacher_theta's crop (e.g. the
        jittered ground-truth box) instead of the STN's, while the STN still runs; its passes are returned as
        `stn_thetas` (B, iterations, 2, 3) for its losses. teacher_crop (B, 3, crop_size, crop_size): where
        teacher_mask is set, these pixels are the crop (already sampled at teacher_theta; the export's `crop`).
        find_face: the STN's (SpatialTransformer.passes), for the export."""
        batch = image.shape[0]
        hw = image_size(image)
        cs = self.crop_size
        out: dict[str, torch.Tensor] = {}
        if crop_theta is not None:
            theta = crop_theta
        elif self.stn is not None:
            stn_thetas = self.stn.passes(image, prior_theta, find_face)
            out["stn_thetas"] = torch.stack(stn_thetas, dim=1)
            theta = stn_thetas[-1]
            if teacher_theta is not None and teacher_mask is not None:
                theta = torch.where(teacher_mask.view(-1, 1, 1), teacher_theta, theta)
        else:
            raise ValueError("this model has no spatial transformer: pass crop_theta (e.g. stn.theta_from_box)")
        if queries.dim() == 2:
            queries = queries.unsqueeze(0).expand(batch, -1, -1)
        crop = sample_crop(image, theta, cs)
        if teacher_crop is not None and teacher_mask is not None:
            crop = torch.where(teacher_mask.view(-1, 1, 1, 1), teacher_crop, crop)
        if self.readout is not None:
            fine, features = features_with_fine(self.backbone, crop, self.fine_index)
        else:
            features = self.backbone(crop)
        pooled = features.mean((2, 3))
        out.update(theta=theta, crop=crop, face_logit=self.face_presence(pooled)[:, 0])

        offsets = None
        if self.correction is not None:
            if style_ids is None:
                style_ids = torch.zeros(batch, dtype=torch.long, device=image.device)
            offsets = self.correction(queries, style_ids)
            out["offsets"] = offsets

        if self.camera is None:
            # Start where the 3D head starts: the query seen frontally by the initial camera (weak perspective).
            decoded, hidden = self.decoder(queries, features, pooled, return_hidden=True)
            if self.readout is not None:
                points_crop = self.readout(hidden, fine, features)
            else:
                start = cs / 2 + queries[..., :2] * self.frontal_scale
                points_crop = start + decoded * (cs / 2)
            if offsets is not None:
                points_crop = points_crop + offsets
        else:
            if offsets is not None:
                queries = queries + offsets
            decoded, hidden = self.decoder(queries, features, pooled, return_hidden=True)
            points_3d = queries + decoded[..., :3]
            centre = (hw.flip(0).to(image.dtype) / 2).expand(batch, 1, 2)
            principal_point = image_to_crop(centre, theta, cs, hw)[:, 0]
            focal, R_crop, t_crop = self.camera(pooled, principal_point)
            K_crop = intrinsics(focal, principal_point[:, 0], principal_point[:, 1])
            points_cam = to_camera(points_3d, R_crop, t_crop)
            # Keep points in front of the camera: a wild early prediction must not divide by ~0.
            z = points_cam[..., 2:].clamp(min=1.0)
            points_crop = project(torch.cat([points_cam[..., :2], z], dim=-1), K_crop)
            if self.readout is not None:
                # The heatmaps place the 2D points; the projection (the 3D head's pose and shape) learns beside them.
                out["points_2d_projected"] = crop_to_image(points_crop, theta, cs, hw)
                points_crop = self.readout(hidden, fine, features, prior=points_crop)
            elif self.config.refine_2d:
                # The projection converges slowly (it hangs on the camera); a residual read from the feature map
                # (the 2D head's soft argmax) makes the 2D points accurate early. Trained apart too (`projection`).
                out["points_2d_projected"] = crop_to_image(points_crop, theta, cs, hw)
                points_crop = points_crop + decoded[..., 3:] * (cs / 2)
            K, R, t = crop_camera_to_image(K_crop, R_crop, t_crop, theta, cs, hw)
            visibility = torch.ones_like(points_cam[..., 0])
            if normals is not None:
                normals = normals.unsqueeze(0).expand(batch, -1, -1) if normals.dim() == 2 else normals
                visibility = facing_visibility(points_cam, normals @ R_crop.transpose(1, 2),
                                               self.config.visibility_sharpness)
            if self.config.depth_test:
                visibility = visibility * occlusion_visibility(points_crop, points_cam[..., 2],
                                                               self.config.depth_radius_px,
                                                               self.config.depth_margin_cm)
            out.update(points_3d=points_3d, K=K, R=R, t=t, visibility=visibility)

        out["points_crop"] = points_crop
        out["points_2d"] = crop_to_image(points_crop, theta, cs, hw)
        return out


def create_model(config: ModelConfig | dict | str = DEFAULT_VARIANT) -> LandmarkDetector:
    """A detector from a ModelConfig, a dict of its fields (plus optional "variant": a base to override),
    or the name of a MODEL_VARIANTS entry."""
    if isinstance(config, str):
        if config not in MODEL_VARIANTS:
            raise KeyError(f"unknown model variant {config!r}; known: {', '.join(MODEL_VARIANTS)}")
        config = MODEL_VARIANTS[config]
    elif isinstance(config, dict):
        fields = dict(config)
        base = MODEL_VARIANTS[fields.pop("variant", DEFAULT_VARIANT)]
        config = dataclasses.replace(base, **fields)
    return LandmarkDetector(dataclasses.replace(config))
