"""Query decoding: any canonical 3D point + the image's features -> where that point is.

- `FourierEncoding`: canonical query points (cm) -> raw coordinates / 10 cm plus sin/cos bands.
- `QueryDecoder`: a per-query MLP conditioned on the image by FiLM from the pooled feature, with one
  cross-attention read of the coarse feature map (the attended cells' positions make a soft argmax).
- `SpatialReadout`: each query's attention map over a fine (stride 4 or 8) feature map, read out by soft argmax
  plus a small offset: 2D points with the map's spatial precision.
- `CameraHead`: once per image, the crop camera (focal length, rotation, translation) for the 3D head.
- `SemanticCorrection`: per dataset style, an offset of the query (3D head) or of the 2D point (2D head).
- `facing_visibility` / `occlusion_visibility`: visibility from the predicted 3D geometry.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import geometry
from .camera import rotation_from_6d, rotation_to_6d

QUERY_SCALE_CM = 10.0


class FourierEncoding(nn.Module):
    """(..., 3) cm -> (..., 3 + 6 * bands): x, sin(2^k pi x), cos(2^k pi x) for x = point / 10 cm."""

    def __init__(self, bands: int = 8, scale_cm: float = QUERY_SCALE_CM) -> None:
        super().__init__()
        self.scale_cm = scale_cm
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(bands, dtype=torch.float32), persistent=False)
        self.out_dim = 3 + 6 * bands

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = points / self.scale_cm
        angles = (x.unsqueeze(-1) * self.freqs).flatten(-2)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)


def _cell_positions(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(h * w, 10): normalised centres of the feature cells (x, y) with two sin/cos bands."""
    ys = (torch.arange(h, dtype=like.dtype, device=like.device) * 2 + 1) / h - 1
    xs = (torch.arange(w, dtype=like.dtype, device=like.device) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    xy = torch.stack([gx, gy], dim=-1).reshape(-1, 2)
    angles = torch.cat([xy * math.pi / 2, xy * math.pi], dim=-1)
    return torch.cat([xy, torch.sin(angles), torch.cos(angles)], dim=-1)


class QueryDecoder(nn.Module):
    """queries (B, N, 3), feature map (B, C, h, w), pooled (B, C) -> (B, N, out_dim (+ 2 with residual_2d)).

    Hidden layers are h = h + silu(FiLM(W h)) with (1 + gamma, beta) per image from the pooled feature, so the
    per-query cost is only the MLP. With `attention`, the first hidden state also attends over the h x w cells;
    its values carry the cells' positions, so the read-out can be a soft argmax over the map.
    The output layer starts at zero.
    """

    def __init__(self, channels: int, out_dim: int, bands: int = 8, hidden: int = 256, layers: int = 3,
                 attention: bool = True, key_dim: int = 64, residual_2d: bool = False) -> None:
        super().__init__()
        self.encoding = FourierEncoding(bands)
        self.hidden = hidden
        self.input = nn.Linear(self.encoding.out_dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.film = nn.Linear(channels, 2 * hidden * layers)
        self.output = nn.Linear(hidden, out_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        # A separate layer (not 2 more rows of `output`) so weights trained without it still load.
        self.output_2d = nn.Linear(hidden, 2) if residual_2d else None
        if self.output_2d is not None:
            nn.init.zeros_(self.output_2d.weight)
            nn.init.zeros_(self.output_2d.bias)
        self.attention = attention
        if attention:
            self.key_dim = key_dim
            self.query_proj = nn.Linear(hidden, key_dim)
            self.key_proj = nn.Linear(channels, key_dim)
            self.value_proj = nn.Linear(channels, hidden)
            self.key_pos = nn.Linear(10, key_dim)
            self.value_pos = nn.Linear(10, hidden)

    def forward(self, queries: torch.Tensor, features: torch.Tensor, pooled: torch.Tensor, return_hidden: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Outputs (B, N, out_dim (+ 2)); with return_hidden also the last hidden state (B, N, hidden)."""
        film = self.film(pooled).view(pooled.shape[0], 1, -1, 2, self.hidden)  # (B, 1, layers, 2, hidden)
        gamma, beta = 1 + film[..., 0, :], film[..., 1, :]
        h = F.silu(self.input(self.encoding(queries)) * gamma[:, :, 0] + beta[:, :, 0])
        if self.attention:
            tokens = features.flatten(2).transpose(1, 2)  # (B, h*w, C)
            pos = _cell_positions(features.shape[2], features.shape[3], features)
            keys = self.key_proj(tokens) + self.key_pos(pos)
            values = self.value_proj(tokens) + self.value_pos(pos)
            logits = self.query_proj(h) @ keys.transpose(1, 2) / math.sqrt(self.key_dim)
            h = h + torch.softmax(logits, dim=-1) @ values
        for i, layer in enumerate(self.layers, start=1):
            h = h + F.silu(layer(h) * gamma[:, :, i] + beta[:, :, i])
        out = self.output(h) if self.output_2d is None else torch.cat([self.output(h), self.output_2d(h)], dim=-1)
        return (out, h) if return_hidden else out


def _separable(channels: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise conv with batch norm and ReLU: a dense 3x3 at stride 4 would cost more than the
    backbone."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU(),
                         nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())


class SpatialReadout(nn.Module):
    """Per-query heatmaps over a fine feature map, read out by soft argmax: (B, N, 2) crop pixels.

    The fine map (stride `stride` of the crop) is fused with the upsampled final map (a two-level feature
    pyramid); each query's hidden state gives a key, its dot products with the fused cells are the heatmap's
    logits, and the point is the heatmap's expected cell centre plus a small offset from the hidden state (zero at
    the start). The coordinates come from the map's geometry, not from a regression, which is what gives the
    precision a pooled read-out lacks. A `prior` (the 3D head's projection) adds a Gaussian of learned width
    around it to the logits: the 3D head says roughly where, the map says exactly where, and the read-out starts
    at the projection instead of at the crop's centre.
    """

    def __init__(self, fine_channels: int, channels: int, hidden: int, stride: int, width: int = 64,
                 blocks: int = 2) -> None:
        super().__init__()
        self.stride = stride
        self.width = width
        self.lateral_fine = nn.Conv2d(fine_channels, width, 1)
        self.lateral_final = nn.Conv2d(channels, width, 1)
        self.blocks = nn.Sequential(*[_separable(width) for _ in range(blocks)])
        self.key = nn.Linear(hidden, width)
        self.offset = nn.Linear(hidden, 2)
        self.log_prior_sigma = nn.Parameter(torch.tensor(math.log(2.0 * stride)))
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def heatmap_logits(self, hidden: torch.Tensor, fine: torch.Tensor, final: torch.Tensor) -> torch.Tensor:
        """(B, N, h * w) logits of each query over the fine map's cells (row-major)."""
        fused = self.lateral_fine(fine) + F.interpolate(self.lateral_final(final), size=fine.shape[-2:],
                                                        mode="bilinear", align_corners=False)
        cells = self.blocks(fused).flatten(2)  # (B, width, h*w)
        return self.key(hidden) @ cells / math.sqrt(self.width)

    def forward(self, hidden: torch.Tensor, fine: torch.Tensor, final: torch.Tensor,
                prior: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, N, hidden), fine (B, C_fine, h, w), final (B, C, h', w'), prior (B, N, 2) crop px or None
        -> (B, N, 2) crop px."""
        h, w = fine.shape[-2:]
        ys = (torch.arange(h, dtype=fine.dtype, device=fine.device) + 0.5) * self.stride
        xs = (torch.arange(w, dtype=fine.dtype, device=fine.device) + 0.5) * self.stride
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([gx.flatten(), gy.flatten()], dim=-1)  # (h*w, 2) crop px
        logits = self.heatmap_logits(hidden, fine, final)
        if prior is not None:
            # |p - c|^2 = |p|^2 - 2 p.c + |c|^2: one matmul, where the broadcast difference built a (B, N, h*w, 2)
            # tensor and reduced it (docs/measurements.md).
            distance2 = ((prior ** 2).sum(-1, keepdim=True) - 2 * prior @ centres.T
                         + (centres ** 2).sum(-1))  # (B, N, h*w)
            logits = logits - distance2 * (0.5 * torch.exp(-2 * self.log_prior_sigma))
        weights = torch.softmax(logits, dim=-1)
        return weights @ centres + self.offset(hidden) * self.stride


class CameraHead(nn.Module):
    """pooled (B, C) -> the crop camera: focal (B,) px, R (B, 3, 3), and where the canonical origin is.

    Outputs start at zero, meaning: focal for `fov_deg` across the crop, a frontal face (geometry.FRONTAL),
    the canonical origin `depth_cm` in front of the camera and projecting at the crop centre.
    Translation is parametrised by that projection (crop pixels) and the depth, which the crop shows directly.
    """

    def __init__(self, channels: int, hidden: int, crop_size: int, fov_deg: float = 50.0, depth_cm: float = 60.0
                 ) -> None:
        super().__init__()
        self.crop_size = crop_size
        self.focal0 = geometry.focal_from_fov(fov_deg, crop_size)
        self.depth0 = depth_cm
        self.register_buffer("frontal6d", rotation_to_6d(torch.from_numpy(geometry.FRONTAL.astype(np.float32))),
                             persistent=False)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.SiLU(), nn.Linear(hidden, 10))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, pooled: torch.Tensor, principal_point: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pooled (B, C), principal point (B, 2) crop px -> focal (B,), R (B, 3, 3), t (B, 3) of the crop camera."""
        p = self.mlp(pooled)
        focal = self.focal0 * torch.exp(p[:, 0])
        R = rotation_from_6d(self.frontal6d + p[:, 1:7])
        depth = self.depth0 * torch.exp(p[:, 7])
        origin_px = self.crop_size / 2 * (1 + p[:, 8:10])
        t_xy = (origin_px - principal_point) * (depth / focal).unsqueeze(-1)
        return focal, R, torch.cat([t_xy, depth.unsqueeze(-1)], dim=-1)


class SemanticCorrection(nn.Module):
    """FourierEncoding(query) + a learned style embedding -> offset (3D cm or 2D crop px); style 0 gives exactly 0.

    Style 0 is the canonical semantics (points fixed on the surface); others are datasets' annotation habits.
    """

    def __init__(self, out_dim: int, num_styles: int, bands: int = 8, style_dim: int = 16, hidden: int = 128
                 ) -> None:
        super().__init__()
        self.encoding = FourierEncoding(bands)
        self.styles = nn.Embedding(num_styles, style_dim)
        self.mlp = nn.Sequential(nn.Linear(self.encoding.out_dim + style_dim, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, queries: torch.Tensor, style_ids: torch.Tensor) -> torch.Tensor:
        """queries (B, N, 3), style_ids (B,) int -> offsets (B, N, out_dim)."""
        style = self.styles(style_ids).unsqueeze(1).expand(-1, queries.shape[1], -1)
        offsets = self.mlp(torch.cat([self.encoding(queries), style], dim=-1))
        return offsets * (style_ids != 0).to(offsets.dtype)[:, None, None]


def facing_visibility(points_cam: torch.Tensor, normals_cam: torch.Tensor, sharpness: float) -> torch.Tensor:
    """sigmoid(sharpness * cos) of the angle between each normal and the direction to the camera, (B, N)."""
    cos = -(normals_cam * F.normalize(points_cam, dim=-1)).sum(-1)
    return torch.sigmoid(sharpness * cos)


def occlusion_visibility(points_px: torch.Tensor, depth: torch.Tensor, radius_px: float, margin_cm: float
                         ) -> torch.Tensor:
    """Soft depth order, (B, N): a point is hidden when another projects within radius_px and is nearer by more
    than margin_cm. O(N^2) memory and time."""
    diff = points_px.unsqueeze(-2) - points_px.unsqueeze(-3)  # (B, N, N, 2)
    dist = torch.sqrt((diff * diff).sum(-1) + 1e-6)
    near = torch.sigmoid((radius_px - dist) / (0.25 * radius_px))
    in_front = torch.sigmoid((depth.unsqueeze(-1) - depth.unsqueeze(-2) - margin_cm) / (0.25 * margin_cm))
    hidden_by = (near * in_front).clamp(max=1 - 1e-6)
    # Soft OR over the occluders; the i = j term is the same constant for every point, so it is divided out.
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    self_term = sigmoid((radius_px - 1e-3) / (0.25 * radius_px)) * sigmoid(-4.0)
    return torch.exp(torch.log(1 - hidden_by).sum(-1) - math.log(1 - self_term))
