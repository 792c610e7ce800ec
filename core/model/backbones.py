"""Image backbones in plain torch, behind a small timm-like registry.

Every backbone maps (B, 3, H, W) RGB in [0, 1] (ImageNet normalisation happens inside) to a feature map
(B, C, H/32, W/32) and has `out_channels` = C. Weights start random (nothing can be downloaded). Each keeps its
layers in one `features` Sequential, so `features_with_fine(backbone, x, index)` also returns an earlier, finer
map (for the decoder's spatial read-out), the layer found once by `fine_layer(backbone, stride)`.

    @register_backbone("name")
    def make(**kw) -> nn.Module: ...
    create_backbone("mobilenet_small", width=1.0)
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES: dict[str, Callable[..., nn.Module]] = {}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def register_backbone(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        BACKBONES[name] = factory
        return factory
    return decorator


def create_backbone(name: str, **kwargs) -> nn.Module:
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; registered: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](**kwargs)


class Normalize(nn.Module):
    """ImageNet normalisation; also switches to channels_last, which makes the convolutions faster on CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


def _divisible(channels: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never going down by more than 10% (as MobileNet does)."""
    out = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * channels else out


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None
             ) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def fine_layer(backbone: nn.Module, stride: int, probe_size: int = 64) -> tuple[int, int]:
    """(index in `backbone.features` of the last layer whose output has `stride`, its channels), found by one
    probe pass at `probe_size` px."""
    found = None
    x = torch.zeros(1, 3, probe_size, probe_size)
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        for i, layer in enumerate(backbone.features):
            x = layer(x)
            if x.dim() == 4 and x.shape[-1] * stride == probe_size:
                found = (i, int(x.shape[1]))
    backbone.train(was_training)
    if found is None:
        raise ValueError(f"{type(backbone).__name__} has no feature map at stride {stride}")
    return found


def features_with_fine(backbone: nn.Module, x: torch.Tensor, fine_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the output of layer `fine_index` of `backbone.features` (see fine_layer), the final map) in one pass."""
    fine = x
    for i, layer in enumerate(backbone.features):
        x = layer(x)
        if i == fine_index:
            fine = x
    return fine, x


# ---------------------------------------------------------------------------------------------------------------
# MobileNetV3-small (Howard et al. 2019): inverted residuals, hard-swish, squeeze-excite.

class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = _divisible(channels / 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, k: int, expand: int, cout: int, se: bool, act: type[nn.Module], stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expand != cin:
            layers.append(_conv_bn(cin, expand, 1, act=act))
        layers.append(_conv_bn(expand, expand, k, stride, groups=expand, act=act))
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(_conv_bn(expand, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


# kernel, expansion, out, squeeze-excite, hard-swish, stride (Table 2 of the MobileNetV3 paper)
MOBILENET_V3_SMALL = [
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
]


class MobileNetV3Small(nn.Module):
    """`output_stride` 16 skips the last downsampling: an 8x8 instead of a 4x4 map for a 128 px crop, for the
    decoder's attention to point at, with the same weights (a stride does not change any weight's shape)."""

    def __init__(self, width: float = 1.0, output_stride: int = 32) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
        stem = _divisible(16 * width)
        layers: list[nn.Module] = [Normalize(), _conv_bn(3, stem, 3, 2, act=nn.Hardswish)]
        cin = stem
        last_downsampling = max(i for i, row in enumerate(MOBILENET_V3_SMALL) if row[-1] == 2)
        for i, (k, expand, cout, se, hswish, stride) in enumerate(MOBILENET_V3_SMALL):
            if output_stride == 16 and i == last_downsampling:
                stride = 1
            expand, cout = _divisible(expand * width), _divisible(cout * width)
            layers.append(InvertedResidual(cin, k, expand, cout, se, nn.Hardswish if hswish else nn.ReLU, stride))
            cin = cout
        self.out_channels = _divisible(576 * width)
        layers.append(_conv_bn(cin, self.out_channels, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_backbone("mobilenet_small")
def mobilenet_small(width: float = 1.0, output_stride: int = 32) -> nn.Module:
    return MobileNetV3Small(width, output_stride)


# ---------------------------------------------------------------------------------------------------------------
# ResNet-18 (He et al. 2016).

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride, act=nn.ReLU)
        self.conv2 = _conv_bn(cout, cout, 3)
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        dims = [int(64 * width * 2 ** i) for i in range(4)]
        layers: list[nn.Module] = [Normalize(), _conv_bn(3, dims[0], 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
        cin = dims[0]
        for i, dim in enumerate(dims):
            layers += [BasicBlock(cin, dim, 1 if i == 0 else 2), BasicBlock(dim, dim, 1)]
            cin = dim
        self.features = nn.Sequential(*layers)
        self.out_channels = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_backbone("resnet18")
def resnet18(width: float = 1.0) -> nn.Module:
    return ResNet18(width)


# ---------------------------------------------------------------------------------------------------------------
# ConvNeXt (Liu et al. 2022), "nano" size.

class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.mlp(self.norm(y))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = [Normalize(), nn.Conv2d(3, dims[0], 4, 4), ChannelLayerNorm(dims[0])]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i > 0:
                layers += [ChannelLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, 2)]
            layers += [ConvNeXtBlock(dim) for _ in range(depth)]
        layers.append(ChannelLayerNorm(dims[-1]))
        self.features = nn.Sequential(*layers)
        self.out_channels = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_backbone("convnext_nano")
def convnext_nano(depths: tuple[int, ...] = (2, 2, 6, 2), dims: tuple[int, ...] = (48, 96, 192, 384)) -> nn.Module:
    return ConvNeXt(tuple(depths), tuple(dims))
