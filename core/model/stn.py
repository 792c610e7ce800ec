"""Spatial transformer: the detector's built-in face localisation, and the crop <-> image coordinate maps.

A crop is described by `theta` (B, 2, 3) in the convention of F.affine_grid / F.grid_sample with
align_corners=False: it maps the crop's normalised coordinates to the image's, where a pixel coordinate p
(origin at the top-left corner, see core/geometry.py) of an image of size S is normalised as 2 * p / S - 1.
The initial crop (`full_frame_theta`) is the square of side max(H, W) centred on the frame, so the crop shows
the whole frame (padded with black for a non-square frame) without distorting it.

A similarity crop, in pixels: p_crop = s * Rot(angle) @ (p_image - centre) + crop_size / 2, where s is crop
pixels per image pixel and Rot(a) = [[cos a, -sin a], [sin a, cos a]] (see `decompose_similarity`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .camera import intrinsics

ImageHW = tuple[int, int] | torch.Tensor  # (H, W) ints, or a (2,) tensor [H, W] (traceable for ONNX)

# The STN's low-res view is sampled at k times its size, then average-pooled by k: a box filter against aliasing
# that exports to ONNX (antialiased or adaptive resizing does not). k grows with the frame so that bilinear taps
# (2 px wide) stay ~2 px apart: exact area resampling for a 256 px frame and a 64 px view (k = 2).
MAX_SUPERSAMPLE = 8

# Adam moves every weight by ~lr per step whatever the gradient's size; damping the head's outputs keeps one
# step from swinging the crop (and with it everything downstream) by ~10% in scale or ~0.1 rad.
STN_OUTPUT_SCALE = 0.3

WIDE_VIEW_BIAS = -1.0  # initial handicap of the wide view's peak logit against the coarse view's
WIDE_VIEW_MIN_EXTENT = 0.9  # the wide view is used when the prior crop's side is this much of the frame's or more
WIDE_VIEW_SHARPNESS = 4.0  # of the gate between the views, per unit of logit lead


def supersample_factor(frame_side: int, view_size: int) -> int:
    return max(1, min(MAX_SUPERSAMPLE, math.ceil(frame_side / (2 * view_size))))


def _size_wh(image_hw: ImageHW, like: torch.Tensor) -> torch.Tensor:
    """(2,) float tensor [W, H]."""
    if isinstance(image_hw, torch.Tensor):
        return image_hw.flip(-1).to(like)
    h, w = image_hw
    return torch.tensor([float(w), float(h)], dtype=like.dtype, device=like.device)


def image_size(image: torch.Tensor) -> torch.Tensor:
    """[H, W] of a (B, C, H, W) image as a tensor, so an ONNX export keeps the frame size dynamic."""
    return torch._shape_as_tensor(image)[2:]


def full_frame_theta(batch: int, image_hw: ImageHW, like: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 2, 3) theta of the square crop of side max(H, W) centred on the frame (the STN's identity).

    In numpy, for an ONNX runtime: [[side / W, 0, 0], [0, side / H, 0]].
    """
    like = torch.zeros(()) if like is None else like
    wh = _size_wh(image_hw, like)
    diag = torch.maximum(wh[0], wh[1]) / wh
    zero = torch.zeros_like(diag[0])
    theta = torch.stack([torch.stack([diag[0], zero, zero]), torch.stack([zero, diag[1], zero])])
    return theta.unsqueeze(0).expand(batch, 2, 3)


def theta_to_affine(theta: torch.Tensor, crop_size: int, image_hw: ImageHW) -> tuple[torch.Tensor, torch.Tensor]:
    """theta -> (A (B, 2, 2), b (B, 2)) with p_image = A @ p_crop + b in pixels."""
    wh = _size_wh(image_hw, theta)
    T, tau = theta[..., :2], theta[..., 2]
    A = wh[:, None] * T / crop_size
    b = wh / 2 * (tau + 1 - T.sum(-1))
    return A, b


def affine_to_theta(A: torch.Tensor, b: torch.Tensor, crop_size: int, image_hw: ImageHW) -> torch.Tensor:
    """Inverse of `theta_to_affine`."""
    wh = _size_wh(image_hw, A)
    T = crop_size * A / wh[:, None]
    tau = 2 * b / wh - 1 + T.sum(-1)
    return torch.cat([T, tau.unsqueeze(-1)], dim=-1)


def _inverse_2x2(A: torch.Tensor) -> torch.Tensor:
    a, b, c, d = A[..., 0, 0], A[..., 0, 1], A[..., 1, 0], A[..., 1, 1]
    det = a * d - b * c
    return torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / det[..., None, None]


def crop_to_image(points_crop: torch.Tensor, theta: torch.Tensor, crop_size: int, image_hw: ImageHW) -> torch.Tensor:
    """Crop pixels (B, N, 2) -> full-image pixels (B, N, 2)."""
    A, b = theta_to_affine(theta, crop_size, image_hw)
    return points_crop @ A.transpose(-1, -2) + b.unsqueeze(-2)


def image_to_crop(points_image: torch.Tensor, theta: torch.Tensor, crop_size: int, image_hw: ImageHW) -> torch.Tensor:
    """Full-image pixels (B, N, 2) -> crop pixels (B, N, 2)."""
    A, b = theta_to_affine(theta, crop_size, image_hw)
    return (points_image - b.unsqueeze(-2)) @ _inverse_2x2(A).transpose(-1, -2)


def theta_from_box(box: torch.Tensor, image_hw: ImageHW, scale: float = 1.0) -> torch.Tensor:
    """Boxes (B, 4) x0, y0, x1, y1 in pixels -> theta of a square crop of side max(w, h) * scale on the box centre.

    The same crop as geometry.similarity_from_box (which gives the image -> crop map in pixels).
    """
    wh = _size_wh(image_hw, box)
    centre = (box[:, :2] + box[:, 2:]) / 2
    side = torch.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) * scale
    diag = side[:, None] / wh  # (B, 2)
    zero = torch.zeros_like(side)
    tau = 2 * centre / wh - 1
    return torch.stack([torch.stack([diag[:, 0], zero, tau[:, 0]], -1),
                        torch.stack([zero, diag[:, 1], tau[:, 1]], -1)], dim=-2)


def closest_rotation(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop -> image linear part A (B, 2, 2) -> (scale, cos, sin): A = Rot(phi) / scale for a similarity.

    phi = -angle of `decompose_similarity`. For a general affine A these are the nearest similarity's.
    """
    c = A[..., 0, 0] + A[..., 1, 1]
    s = A[..., 1, 0] - A[..., 0, 1]
    norm = torch.sqrt(c * c + s * s)
    det = A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] * A[..., 1, 0]
    return torch.rsqrt(det.abs()), c / norm, s / norm


def decompose_similarity(theta: torch.Tensor, crop_size: int, image_hw: ImageHW
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """theta -> (scale (B,) crop px per image px, angle (B,) radians, centre (B, 2) image px of the crop centre).

    p_crop = scale * Rot(angle) @ (p_image - centre) + crop_size / 2; exact for a similarity, nearest otherwise.
    """
    A, b = theta_to_affine(theta, crop_size, image_hw)
    scale, cos, sin = closest_rotation(A)
    centre = (A @ A.new_full((2,), crop_size / 2)) + b
    return scale, torch.atan2(-sin, cos), centre


def crop_camera_to_image(K_crop: torch.Tensor, R_crop: torch.Tensor, t_crop: torch.Tensor, theta: torch.Tensor,
                         crop_size: int, image_hw: ImageHW) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A camera of the crop -> the same camera for the full image: (K, R, t).

    The crop's pixel axes are the image's rotated by the crop angle and scaled by s, which is what a rotation
    of the camera about its optical axis and a focal length times 1/s do: f = f_crop / s, R = Rz(-angle) R_crop,
    t = Rz(-angle) t_crop, and the principal point maps through crop -> image. Exact for a similarity crop;
    for an affine crop it is the nearest similarity's camera (the 2D points stay exact, the camera does not).
    """
    A, b = theta_to_affine(theta, crop_size, image_hw)
    inv_scale, cos, sin = closest_rotation(A)
    inv_scale = 1 / inv_scale
    pp = A @ K_crop[:, :2, 2].unsqueeze(-1) + b.unsqueeze(-1)
    K = intrinsics(K_crop[:, 0, 0] * inv_scale, pp[:, 0, 0], pp[:, 1, 0])
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    Rz = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1),
                      torch.stack([zero, zero, one], -1)], dim=-2)
    return K, Rz @ R_crop, (Rz @ t_crop.unsqueeze(-1)).squeeze(-1)


def sample_crop(image: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (B, C, size, size) crop of `image` through theta; black outside the frame.

    The grid is built by hand (same as F.affine_grid, align_corners=False) because affine_grid needs opset 20.
    """
    u = (torch.arange(size, dtype=image.dtype, device=image.device) * 2 + 1) / size - 1
    gy, gx = torch.meshgrid(u, u, indexing="ij")
    base = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(1, size * size, 3)
    grid = (base @ theta.transpose(-1, -2)).reshape(-1, size, size, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """theta of `inner` applied inside the crop of `outer` (both (B, 2, 3))."""
    T = outer[..., :2] @ inner[..., :2]
    tau = (outer[..., :2] @ inner[..., 2:]).squeeze(-1) + outer[..., 2]
    return torch.cat([T, tau.unsqueeze(-1)], dim=-1)


def log_crop_extent(theta: torch.Tensor, image_hw: ImageHW) -> torch.Tensor:
    """(B,) log of a crop's side relative to the frame's longer side: 0 for `full_frame_theta`."""
    wh = _size_wh(image_hw, theta)
    det = theta[..., 0, 0] * theta[..., 1, 1] - theta[..., 0, 1] * theta[..., 1, 0]
    return 0.5 * torch.log(wh[0] * wh[1] * det.abs() + 1e-12) - torch.log(torch.maximum(wh[0], wh[1]))


def stn_regulariser(theta: torch.Tensor, image_hw: ImageHW, min_extent: float = 0.05, max_extent: float = 1.5
                    ) -> torch.Tensor:
    """Weak penalty (scalar) on crops whose centre leaves the frame or whose side, relative to max(H, W),
    leaves [min_extent, max_extent] (collapse onto a few pixels, or zooming out into black)."""
    centre = theta[..., 2]
    outside = F.relu(centre.abs() - 1).pow(2).sum(-1)
    log_extent = log_crop_extent(theta, image_hw)
    scale = F.relu(math.log(min_extent) - log_extent).pow(2) + F.relu(log_extent - math.log(max_extent)).pow(2)
    return (outside + scale).mean()


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _conv_bn_relu_pair(cin: int, cout: int) -> nn.Sequential:
    """A stride-2 conv then a stride-1 conv, both with batch norm and ReLU."""
    return nn.Sequential(_conv_bn_relu(cin, cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


# The finder's crop side at initialisation, relative to the frame's longer side, and how far (in cells) its
# per-cell centre offsets reach.
FINDER_INIT_EXTENT = 0.5
FINDER_OFFSET_CELLS = 1.0


class FaceFinder(nn.Module):
    """Finds the face in the whole frame: the STN's crop from the full frame, when it has one.

    The STN's own first pass looks at a 64 px view with 16 channels: a face under ~40 px of a 256 px frame is a few
    pixels there, and it settles on something else (a round badge, a sleeve). The finder reads the frame reduced
    once (128 px for a 256 px frame, the same pixels the STN's views are sampled from, so no extra sampling) with a
    small feature pyramid (strides 8 to 32: a 10 px face and a frame-filling one both fill some cells' receptive
    fields) and predicts, per stride-8 cell, a face score, the face centre's offset from the cell and the crop's
    log side. The crop is the soft argmax of the scores, as in the STN's head; trained as a detector (a
    cross-entropy on the map and L1 on the crop, `finder_losses`), its map peaks on one cell, so the soft argmax
    reads that cell. The crop is axis-aligned and square, like the box crops the detector was trained on.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        c = width
        self.stride4 = nn.Sequential(_conv_bn_relu(3, c), _conv_bn_relu(c, 2 * c))
        self.stride8 = _conv_bn_relu_pair(2 * c, 4 * c)
        self.stride16 = _conv_bn_relu_pair(4 * c, 6 * c)
        self.stride32 = _conv_bn_relu_pair(6 * c, 8 * c)
        self.lateral16 = nn.Conv2d(8 * c, 6 * c, 1)
        self.lateral8 = nn.Conv2d(6 * c, 4 * c, 1)
        self.head = nn.Sequential(nn.Conv2d(4 * c, 2 * c, 3, 1, 1), nn.ReLU(), nn.Conv2d(2 * c, 4, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        with torch.no_grad():
            self.head[-1].bias[3] = math.log(FINDER_INIT_EXTENT)

    def maps(self, reduced: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The frame reduced (B, 3, h, w) in [0, 1] -> per stride-8 cell (n cells): (logits (B, n), face centres
        (B, n, 2) and log sides (B, n) relative to the frame's longer side, the cells' own centres (n, 2) and
        their size (2,)), positions in the frame's [-1, 1]."""
        f8 = self.stride8(self.stride4(reduced - 0.5))
        f16 = self.stride16(f8)
        f32 = self.stride32(f16)
        f16 = f16 + F.interpolate(self.lateral16(f32), size=f16.shape[-2:], mode="nearest")
        f8 = f8 + F.interpolate(self.lateral8(f16), size=f8.shape[-2:], mode="nearest")
        maps = self.head(f8)  # (B, 4, h, w): score, centre offset x, y (cells), log side
        h, w = maps.shape[-2:]
        u = (torch.arange(w, dtype=maps.dtype, device=maps.device) * 2 + 1) / w - 1
        v = (torch.arange(h, dtype=maps.dtype, device=maps.device) * 2 + 1) / h - 1
        gy, gx = torch.meshgrid(v, u, indexing="ij")
        cells = torch.stack([gx.flatten(), gy.flatten()], dim=-1)  # (n, 2)
        cell_size = torch.stack([torch.full_like(u[0], 2.0 / w), torch.full_like(v[0], 2.0 / h)])
        offsets = FINDER_OFFSET_CELLS * torch.tanh(maps[:, 1:3].flatten(2).transpose(1, 2)) * cell_size
        return maps[:, 0].flatten(1), cells + offsets, maps[:, 3].flatten(1), cells, cell_size

    def forward(self, reduced: torch.Tensor, image_hw: ImageHW) -> torch.Tensor:
        """theta (B, 2, 3) of the face's square crop in the frame whose reduced copy is `reduced`."""
        return self.crop(self.maps(reduced), image_hw)

    @staticmethod
    def crop(maps: tuple[torch.Tensor, ...], image_hw: ImageHW) -> torch.Tensor:
        """theta (B, 2, 3) of the crop that `maps` (FaceFinder.maps's) show, in a frame of `image_hw`."""
        logits, centres, log_sides, cells, cell_size = maps
        # The soft argmax over the peak cell and its neighbours only: with two faces in the frame (or a face and a
        # face-like thing) a soft argmax over the whole map would land between them.
        peak = cells[logits.argmax(-1)]  # (B, 2)
        near = ((cells[None] - peak[:, None]).abs() < 1.5 * cell_size).all(-1)
        logits = logits.masked_fill(~near, -1e4)
        weights = torch.softmax(logits, dim=-1).unsqueeze(1)  # (B, 1, n)
        centre = (weights @ centres).squeeze(1)
        side = torch.exp((weights @ log_sides.unsqueeze(-1)).squeeze(-1).squeeze(-1))
        wh = _size_wh(image_hw, logits)
        diag = side[:, None] * torch.maximum(wh[0], wh[1]) / wh  # (B, 2)
        zero = torch.zeros_like(side)
        return torch.stack([torch.stack([diag[:, 0], zero, centre[:, 0]], -1),
                            torch.stack([zero, diag[:, 1], centre[:, 1]], -1)], dim=-2)


def finder_losses(finder: FaceFinder, reduced: torch.Tensor, image_hw: ImageHW, target: torch.Tensor,
                  sigma_cells: float = 0.75) -> dict[str, torch.Tensor]:
    """The finder's detection losses for faces whose crop (the box crop, `theta_from_box`) is `target` (B, 2, 3):
    `finder_map`, the cross-entropy of its scores against a Gaussian of `sigma_cells` around the target centre's
    cell; `finder_cells`, the L1 error of the centre (in cells) and log side predicted at those cells, weighted
    alike; `finder_crop`, the L1 error of its crop (the soft argmax's) against the target."""
    maps = finder.maps(reduced)
    logits, centres, log_sides, cells, cell_size = maps
    target_centre = target[:, :, 2]  # (B, 2) in [-1, 1]
    target_log_side = log_crop_extent(target, image_hw)
    distance = (cells[None] - target_centre[:, None]) / cell_size  # (B, n, 2) in cells
    soft = torch.exp(-0.5 * (distance ** 2).sum(-1) / sigma_cells ** 2)
    soft = soft / soft.sum(-1, keepdim=True).clamp(min=1e-12)
    losses = {"finder_map": -(soft * torch.log_softmax(logits, -1)).sum(-1).mean()}
    centre_error = ((centres - target_centre[:, None]) / cell_size).abs().sum(-1)
    side_error = (log_sides - target_log_side[:, None]).abs()
    losses["finder_cells"] = (soft * (centre_error + side_error)).sum(-1).mean()
    losses["finder_crop"] = (finder.crop(maps, image_hw) - target).abs().sum((1, 2)).mean()
    return losses


def _soft_argmax(logits: torch.Tensor, cells: torch.Tensor, params: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre (B, 2), parameters (B, P)): the cells' centres and parameters averaged by softmax(logits)."""
    weights = torch.softmax(logits, dim=-1)
    return weights @ cells, (params @ weights.unsqueeze(-1)).squeeze(-1)


class SpatialTransformer(nn.Module):
    """Predicts the face crop's theta from a low-res view of the prior crop (the full frame when no prior).

    The output is a residual transform inside the prior crop, zero-initialised so the first crop is the prior.
    Where the crop goes is a soft argmax over a map of the view (stride 8, with the stride-16 features added for
    context), and its log-scale and angle (or, with `affine`, the 2x2 part's residual) are averaged over the
    same map: regressing a position from flattened features instead only ever learned the mean crop here.
    With `iterations` > 1 the same network looks again at its own crop and refines it (a recurrent STN): the
    first pass finds the face in a coarse view of the frame, the next ones see it at a higher resolution. The
    tracker's prior (the last frame's crop) is the same situation as a later pass.

    With `wide_view` (e.g. 128, a multiple of `input_size`) the first pass also looks at its prior crop at that
    size, with the same weights: a face a few pixels wide in the coarse view of a wide frame is ten pixels wide in
    the larger one. The larger view's cells read the face at `wide_view / input_size` times its size, so their
    scale is divided by that. A gate picks the view whose map peaks higher, the wide one handicapped by a learnt
    bias (from WIDE_VIEW_BIAS), so that a large face keeps the coarse view's crop, whose cells see all of it. The
    wide view is used only when the prior is (nearly) the whole frame (WIDE_VIEW_MIN_EXTENT).

    With `finder`, the crop from (nearly) the whole frame (same threshold) is a `FaceFinder`'s, and the STN's
    passes are not used: the finder is trained to the box crop the detector was trained on, and a second pass on
    its crop found no more faces (docs/default_model_run, stage 11). From any other prior (tracking, the search's
    crops) nothing changes.
    """

    def __init__(self, input_size: int = 64, affine: bool = False, width: int = 16, iterations: int = 1,
                 wide_view: int = 0, finder: bool = False) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"stn input size must be a multiple of 16, got {input_size}")
        if iterations < 1:
            raise ValueError(f"stn iterations must be at least 1, got {iterations}")
        if wide_view and (wide_view % input_size or wide_view <= input_size):
            raise ValueError(f"stn wide view must be a larger multiple of its input size {input_size}, got {wide_view}")
        if wide_view and affine:
            raise ValueError("stn wide view is for similarity crops (its scale is shifted), not with affine")
        self.input_size = input_size
        self.wide_view = wide_view
        # Added to a trained STN without training, a fixed bias helps small faces but moves some large faces' crops
        # (docs/default_model_run, stage 10, not shipped): a gate that tells those apart has to be learnt.
        self.wide_bias = nn.Parameter(torch.tensor(WIDE_VIEW_BIAS)) if wide_view else None
        self.affine = affine
        self.iterations = iterations
        self.finder = FaceFinder() if finder else None
        self.stride8 = nn.Sequential(_conv_bn_relu(3, width), _conv_bn_relu(width, 2 * width),
                                     _conv_bn_relu(2 * width, 4 * width))
        self.stride16 = _conv_bn_relu(4 * width, 8 * width)
        self.context = nn.Conv2d(8 * width, 4 * width, 1)
        self.head = nn.Sequential(nn.Conv2d(4 * width, 4 * width, 3, 1, 1), nn.ReLU(),
                                  nn.Conv2d(4 * width, 1 + (4 if affine else 2), 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, image: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], prior (B, 2, 3) or None -> theta (B, 2, 3) of the last pass."""
        return self.passes(image, prior)[-1]

    def passes(self, image: torch.Tensor, prior: torch.Tensor | None = None, find_face: torch.Tensor | None = None
               ) -> list[torch.Tensor]:
        """theta (B, 2, 3) after each of the `iterations` passes, each refining the previous pass's crop (with a
        finder, its crop for every pass of the rows whose prior is the whole frame).

        `find_face` (a bool scalar, for the ONNX export): true when every row's prior is the whole frame, so that
        the last crop is the finder's for all of them; the export then skips the STN's passes behind an If on it
        (onnx_export._branch_on_find_face). The same result as without it when it is true only in that case."""
        if prior is None:
            prior = full_frame_theta(image.shape[0], image_size(image), image)
        # Views are sampled from the frame reduced once by k (anti-aliasing for the coarse full-frame view), not
        # sampled k times finer and pooled per pass: far fewer bilinear samples per pass (docs/measurements.md).
        # A Python int: an ONNX export keeps the factor of the frame size it was traced with.
        k = supersample_factor(int(max(image.shape[-2:])), self.input_size)
        reduced = F.avg_pool2d(image, k, ceil_mode=True) if k > 1 else image
        thetas = []
        theta = prior
        for i in range(self.iterations):
            theta = self._refine(reduced, theta, wide=i == 0 and self.wide_view > 0)
            thetas.append(theta)
        if self.finder is not None:
            found = self.finder(reduced, image_size(image))
            whole_frame = log_crop_extent(prior, image_size(image)) > math.log(WIDE_VIEW_MIN_EXTENT)
            thetas = [torch.where(whole_frame.view(-1, 1, 1), found, t) for t in thetas]
            if find_face is not None:
                thetas[-1] = torch.where(find_face.reshape(1, 1, 1), found, thetas[-1])
        return thetas

    def _cells(self, image: torch.Tensor, prior: torch.Tensor, size: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The map of the prior crop's view at `size` px: (logits (B, h*w), cell centres (h*w, 2) in the view's
        [-1, 1], parameters (B, P, h*w) scaled by STN_OUTPUT_SCALE)."""
        view = sample_crop(image, prior, size)
        fine = self.stride8(view - 0.5)
        coarse = self.context(self.stride16(fine))
        maps = self.head(fine + F.interpolate(coarse, scale_factor=2.0, mode="nearest"))  # (B, 1 + P, h, w)
        h, w = maps.shape[-2:]
        u = (torch.arange(w, dtype=maps.dtype, device=maps.device) * 2 + 1) / w - 1
        v = (torch.arange(h, dtype=maps.dtype, device=maps.device) * 2 + 1) / h - 1
        gy, gx = torch.meshgrid(v, u, indexing="ij")
        cells = torch.stack([gx.flatten(), gy.flatten()], dim=-1)
        return maps[:, 0].flatten(1), cells, STN_OUTPUT_SCALE * maps[:, 1:].flatten(2)

    def _refine(self, image: torch.Tensor, prior: torch.Tensor, wide: bool = False) -> torch.Tensor:
        logits, cells, params = self._cells(image, prior, self.input_size)
        centre, p = _soft_argmax(logits, cells, params)
        if wide:
            wide_logits, wide_cells, wide_params = self._cells(image, prior, self.wide_view)
            # The wide view's cells see the face magnified: their log-scale (parameter 0) is shifted to match.
            log_zoom = math.log(self.wide_view / self.input_size)
            wide_params = torch.cat([wide_params[:, :1] - log_zoom, wide_params[:, 1:]], dim=1)
            wide_centre, wide_p = _soft_argmax(wide_logits, wide_cells, wide_params)
            # The view whose map peaks higher wins: a large face keeps the coarse view's crop as it was.
            lead = wide_logits.amax(-1) + self.wide_bias - logits.amax(-1)
            gate = torch.sigmoid(WIDE_VIEW_SHARPNESS * lead)
            # Only from (nearly) the whole frame: a crop of it, e.g. a search start, is magnified already, and
            # there the wide view found distractors on held-out renders.
            gate = gate * (log_crop_extent(prior, image_size(image)) > math.log(WIDE_VIEW_MIN_EXTENT)).to(gate.dtype)
            centre = centre + gate.unsqueeze(-1) * (wide_centre - centre)
            p = p + gate.unsqueeze(-1) * (wide_p - p)
        if self.affine:
            linear = torch.eye(2, dtype=p.dtype, device=p.device) + p.view(-1, 2, 2)
        else:
            scale = torch.exp(p[:, 0])
            cos, sin = scale * torch.cos(p[:, 1]), scale * torch.sin(p[:, 1])
            linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], dim=-2)
        residual = torch.cat([linear, centre.unsqueeze(-1)], dim=-1)
        return compose(prior, residual)
