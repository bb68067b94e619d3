"""Convolutional networks for images ("cnn").

The input row holds an image's C*H*W pixels (see data/images.py); the body reshapes it,
augments it while training, and runs conv blocks (convolution -> batch norm -> activation ->
pooling -> spatial dropout), doubling the filters each block, then flattening (small maps) or
global average pooling (large ones) and the dense hidden layers of ``hidden_sizes``. With
``backbone`` set, a pretrained architecture (models/backbones.py) replaces the conv blocks.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from archtune.blocks import initialize_linear, make_activation, make_dropout, resolve_initializer
from archtune.models.backbones import ImageNetInput, build_backbone
from archtune.models.registry import register_model

if TYPE_CHECKING:
    from archtune.config import ModelConfig

SHIFT_FRACTION = 0.1  # random translation by up to 10% of the side (about 3 pixels of 28)
ROTATE_DEGREES = 10.0
CROP_SCALE = 0.85
FLATTEN_LIMIT = 4096  # random crops keep 85-100% of the side, resized back


class Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.shape)


class Augment(nn.Module):
    """Random per-image shift, horizontal flip, small rotation and crop, in training mode
    only (evaluation and prediction see the images as they are). One affine resampling per
    batch does all of them at once."""

    def __init__(self, kinds: tuple[str, ...]):
        super().__init__()
        self.kinds = tuple(kinds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.kinds:
            return x
        n = len(x)
        ones = torch.ones(n, device=x.device)
        scale = ones.clone()
        if "crop" in self.kinds:
            scale = CROP_SCALE + (1 - CROP_SCALE) * torch.rand(n, device=x.device)
        angle = torch.zeros(n, device=x.device)
        if "rotate" in self.kinds:
            angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(ROTATE_DEGREES)
        flip = torch.where(torch.rand(n, device=x.device) < 0.5, -ones, ones) if "flip" in self.kinds else ones
        shift = torch.zeros(n, 2, device=x.device)
        if "shift" in self.kinds:
            shift = (torch.rand(n, 2, device=x.device) * 2 - 1) * 2 * SHIFT_FRACTION  # grid units span 2
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
                             torch.stack([sin * flip, cos, shift[:, 1]], dim=1)], dim=1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


class SeparableConv2d(nn.Module):
    """A depthwise convolution (one filter per channel) followed by a 1x1 pointwise one:
    about k*k times fewer weights than a full convolution."""

    def __init__(self, channels: int, filters: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, stride=stride, padding=padding, groups=channels)
        self.pointwise = nn.Conv2d(channels, filters, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _conv(channels: int, filters: int, config: "ModelConfig", generator: torch.Generator | None,
          stride: int = 1) -> nn.Module:
    init = resolve_initializer(config.initializer, config.activation)
    padding = config.conv.kernel_size // 2 if config.conv.padding == "same" else 0
    if config.conv.separable and channels > 1:
        conv = SeparableConv2d(channels, filters, config.conv.kernel_size, stride, padding)
        for part in (conv.depthwise, conv.pointwise):
            initialize_linear(part, init, generator)  # type: ignore[arg-type]
        return conv
    conv = nn.Conv2d(channels, filters, config.conv.kernel_size, stride=stride, padding=padding)
    initialize_linear(conv, init, generator)  # type: ignore[arg-type]
    return conv


class ResidualConvBlock(nn.Module):
    """Two convolutions with batch norm and a skip connection (a 1x1 convolution when the
    channel count changes), as in ResNet: act(bn(conv(act(bn(conv(x))))) + skip(x))."""

    def __init__(self, channels: int, filters: int, config: "ModelConfig", generator: torch.Generator | None):
        super().__init__()
        # The stride is the first convolution's; the skip then needs the same stride.
        self.first = nn.Sequential(_conv(channels, filters, config, generator, config.conv.strides),
                                   nn.BatchNorm2d(filters), make_activation(config.activation))
        self.second = nn.Sequential(_conv(filters, filters, config, generator), nn.BatchNorm2d(filters))
        self.skip: nn.Module = nn.Identity()
        if channels != filters or config.conv.strides > 1:
            self.skip = nn.Conv2d(channels, filters, 1, stride=config.conv.strides, bias=False)
            initialize_linear(self.skip, "glorot_uniform", generator)  # type: ignore[arg-type]
        self.activation = make_activation(config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.second(self.first(x)) + self.skip(x))


def _conv_size(size: int, config: "ModelConfig") -> int:
    """A side's length after one strided convolution ('same' keeps it up to the stride)."""
    if config.conv.padding == "same":
        return -(-size // config.conv.strides)
    return (size - config.conv.kernel_size) // config.conv.strides + 1


@register_model("cnn")
def build_cnn(config: "ModelConfig", in_width: int, generator: torch.Generator | None) -> tuple[nn.Module, int]:
    if not config.image_shape:
        from archtune.errors import InvalidParameterError

        raise InvalidParameterError("arch='cnn' needs images: fit on an array N x C x H x W (or N x H x W), a folder "
                                    "of class sub-folders, or a table with a column of image paths")
    channels, height, width = config.image_shape
    layers: list[nn.Module] = [Unflatten(config.image_shape)]
    if config.conv.augment:
        layers.append(Augment(config.conv.augment))
    if config.conv.backbone is not None:
        backbone = _backbone_layers(config, channels, generator)
        return _dense_layers(config, [*layers, *backbone], backbone[-1].width, generator)
    filters = config.conv.filters
    for block in range(config.conv.conv_blocks):
        if config.conv_filters:  # a pruned network's own widths
            filters = config.conv_filters[block]
        height, width = (_conv_size(height, config), _conv_size(width, config))
        if min(height, width) < 1:
            from archtune.errors import InvalidParameterError

            raise InvalidParameterError(
                f"the {config.image_shape[1]}x{config.image_shape[2]} images shrink to nothing in conv block "
                f"{block + 1} of {config.conv.conv_blocks} (kernel_size={config.conv.kernel_size}, strides={config.conv.strides}, "
                f"padding={config.conv.padding!r}): use fewer conv_blocks, a smaller kernel_size or strides, or "
                "padding='same'")
        if config.conv.residual:
            layers.append(ResidualConvBlock(channels, filters, config, generator))
        else:
            layers += [_conv(channels, filters, config, generator, config.conv.strides), nn.BatchNorm2d(filters),
                       make_activation(config.activation)]
        if config.conv.pooling != "none" and min(height, width) >= 2:  # pool while there is something to pool
            layers.append(nn.MaxPool2d(2) if config.conv.pooling == "max" else nn.AvgPool2d(2))
            height, width = height // 2, width // 2
        if config.dropout > 0:
            layers.append(nn.Dropout2d(config.dropout))  # SpatialDropout2D: whole feature maps
        channels, filters = filters, filters * 2
    # A small final map is flattened (every position keeps its own weights: 0.52 -> 0.8+ on
    # Fashion-MNIST subsets); a large one is globally average-pooled, which bounds the dense
    # layer's size whatever the image size.
    # Without conv blocks the network is an MLP on the pixels: always flattened.
    if config.conv.conv_blocks == 0 or channels * height * width <= FLATTEN_LIMIT:
        layers.append(nn.Flatten())
        size = channels * height * width
    else:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        size = channels
    return _dense_layers(config, layers, size, generator)


def _backbone_layers(config: "ModelConfig", channels: int, generator: torch.Generator | None) -> list[nn.Module]:
    """ImageNet's input normalisation and the backbone, which pools to one feature vector of
    ``width`` values: the conv blocks' parameters (conv_blocks, filters, ...) are not read.
    The weights are random here; fit loads the pretrained ones (models/backbone_weights.py)."""
    if channels not in (1, 3):
        from archtune.errors import InvalidParameterError

        raise InvalidParameterError(f"backbone={config.conv.backbone!r} reads RGB (3 channels) or grey (1 channel) "
                                    f"images; got {channels} channels (image shape {config.image_shape})")
    return [ImageNetInput(channels), build_backbone(config.conv.backbone, generator)]


def _dense_layers(config: "ModelConfig", layers: list[nn.Module], size: int,
                  generator: torch.Generator | None) -> tuple[nn.Module, int]:
    """``layers`` followed by the dense hidden layers, and the output width."""
    for hidden in config.hidden_sizes:
        linear = nn.Linear(size, hidden)
        initialize_linear(linear, resolve_initializer(config.initializer, config.activation), generator)
        layers += [linear, make_activation(config.activation), make_dropout(config.dropout, config.activation)]
        size = hidden
    return nn.Sequential(*layers), size


def build_image_encoder(config: "ModelConfig", shape: tuple[int, int, int],
                        generator: torch.Generator | None) -> tuple[nn.Module, int]:
    """The conv blocks alone, for a column of image paths in a table: their output joins the
    other columns' features before the body."""
    import dataclasses

    return build_cnn(dataclasses.replace(config, image_shape=tuple(shape), hidden_sizes=()), 0, generator)
