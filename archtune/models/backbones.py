"""Pretrained image backbones: ResNet-18 and MobileNet-V3-small as the encoder of ``arch="cnn"``.

The modules are written so that their parameter and buffer names and shapes are exactly those
of torchvision's ``resnet18`` and ``mobilenet_v3_small`` without the classifier: the ImageNet
state dicts users already have (``resnet18-f37072fd.pth``, ``mobilenet_v3_small-047dcff4.pth``
from download.pytorch.org, or a safetensors conversion) load directly, without torchvision
(tests/data/torchvision_backbones.json lists the names and shapes, checked by the tests;
tests/tools/torchvision_parity.py compares the outputs with torchvision's own models).
Reading the weight files is archtune.models.backbone_weights.

- ResNet-18: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), the
  torchvision variant (stride on the first 3x3 convolution of a block, 1x1 projection +
  batch norm on the skip when the shape changes). Pooled features: 512.
- MobileNet-V3-small: Howard et al., "Searching for MobileNetV3" (ICCV 2019), torchvision's
  layout (inverted residual blocks with squeeze-and-excitation, hard-swish; the last 1x1
  convolution to 576 channels, then global average pooling). Pooled features: 576.

Input: the ImageNet weights were trained on 224 x 224 RGB crops normalised by ImageNet's
per-channel mean and standard deviation (`ImageNetInput`). Any size of at least 1 x 1 works
(the strided stages shrink a side to no less than 1 and the pooling is adaptive), but
features are best near the training resolution: a 32 x 32 image ends ResNet-18's last
stage at 1 x 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from archtune.config_groups import BACKBONES

RESNET18, MOBILENET_V3_SMALL = BACKBONES
# ImageNet's per-channel statistics of [0, 1] RGB pixels (torchvision's weights transforms).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetInput(nn.Module):
    """Images [B, C, H, W] of [0, 1] pixels as the ImageNet weights expect them: a grey image
    (C = 1) repeated to three channels, then each channel standardised by ImageNet's mean and
    standard deviation. The statistics are constants (non-persistent buffers: they are not
    in the state dict, so the backbone's names stay torchvision's)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = int(channels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std


class Backbone(nn.Module):
    """A torchvision-compatible feature extractor: ``forward`` maps images [B, 3, H, W] to
    pooled features [B, ``width``]."""

    name: str = ""
    width: int = 0


# --------------------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a skip: relu(bn2(conv2(relu(bn1(conv1(x))))) +
    downsample(x)); ``downsample`` (1x1 convolution + batch norm) when stride or width change."""

    def __init__(self, channels: int, filters: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, filters, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.downsample: nn.Module | None = None
        if stride != 1 or channels != filters:
            self.downsample = nn.Sequential(nn.Conv2d(channels, filters, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(filters))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class ResNet18(Backbone):
    """ResNet-18 up to its global average pooling: [B, 3, H, W] -> [B, 512].

    The state dict is torchvision's ``resnet18().state_dict()`` without ``fc.weight`` and
    ``fc.bias`` (122 - 2 = 120 tensors, 11.2 M parameters).
    """

    name = RESNET18
    width = 512

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for stage, filters in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if stage == 1 else 2
            setattr(self, f"layer{stage}", nn.Sequential(BasicBlock(channels, filters, stride),
                                                         BasicBlock(filters, filters, 1)))
            channels = filters
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


# --------------------------------------------------------------------------- MobileNet-V3-small


def make_divisible(value: float, divisor: int = 8) -> int:
    """The nearest multiple of ``divisor`` to ``value``, at least ``divisor`` and never more
    than 10% below ``value`` (the channel rounding of the MobileNet papers' reference code)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_norm_act(channels: int, filters: int, kernel_size: int, stride: int = 1, groups: int = 1,
                  activation: Callable[[], nn.Module] | None = None) -> nn.Sequential:
    """Convolution (no bias, 'same' padding for odd kernels) -> batch norm -> activation, as
    torchvision's Conv2dNormActivation: a Sequential whose items are named 0, 1 (and 2)."""
    layers: list[nn.Module] = [
        nn.Conv2d(channels, filters, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(filters, eps=0.001, momentum=0.01),  # MobileNet-V3's batch norm settings
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """x * hardsigmoid(fc2(relu(fc1(mean over H, W of x)))): a learned per-channel gate (Hu et
    al., "Squeeze-and-Excitation Networks", CVPR 2018), 1x1 convolutions as torchvision names
    them, squeezing to a quarter of the channels (rounded to a multiple of 8)."""

    def __init__(self, channels: int):
        super().__init__()
        squeezed = make_divisible(channels // 4, 8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.activation = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (k x k, strided), optional squeeze-and-excitation, project (1x1,
    no activation); the input is added back when stride is 1 and the width is kept."""

    def __init__(self, channels: int, kernel_size: int, expanded: int, filters: int, se: bool,
                 activation: Callable[[], nn.Module], stride: int):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != channels:
            layers.append(conv_norm_act(channels, expanded, 1, activation=activation))
        layers.append(conv_norm_act(expanded, expanded, kernel_size, stride, groups=expanded, activation=activation))
        if se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(conv_norm_act(expanded, filters, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and channels == filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


def _relu() -> nn.Module:
    return nn.ReLU(inplace=True)


def _hardswish() -> nn.Module:
    return nn.Hardswish()


# (input channels, kernel, expanded channels, output channels, squeeze-and-excitation,
#  activation, stride) of each block: Table 2 of the MobileNetV3 paper ("small").
MOBILENET_V3_SMALL_BLOCKS = (
    (16, 3, 16, 16, True, _relu, 2),
    (16, 3, 72, 24, False, _relu, 2),
    (24, 3, 88, 24, False, _relu, 1),
    (24, 5, 96, 40, True, _hardswish, 2),
    (40, 5, 240, 40, True, _hardswish, 1),
    (40, 5, 240, 40, True, _hardswish, 1),
    (40, 5, 120, 48, True, _hardswish, 1),
    (48, 5, 144, 48, True, _hardswish, 1),
    (48, 5, 288, 96, True, _hardswish, 2),
    (96, 5, 576, 96, True, _hardswish, 1),
    (96, 5, 576, 96, True, _hardswish, 1),
)


class MobileNetV3Small(Backbone):
    """MobileNet-V3-small up to its global average pooling: [B, 3, H, W] -> [B, 576].

    The state dict is torchvision's ``mobilenet_v3_small().state_dict()`` without the
    ``classifier.*`` entries (244 - 4 = 240 tensors, 0.93 M parameters): the 1024-unit
    hidden layer of torchvision's classifier is dropped with the rest of it, and archtune's
    dense layers follow the pooled 576 features instead.
    """

    name = MOBILENET_V3_SMALL
    width = 576

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [conv_norm_act(3, 16, 3, stride=2, activation=_hardswish)]
        layers += [InvertedResidual(*block) for block in MOBILENET_V3_SMALL_BLOCKS]
        last = MOBILENET_V3_SMALL_BLOCKS[-1][3]
        layers.append(conv_norm_act(last, 6 * last, 1, activation=_hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)


_CLASSES: dict[str, type[Backbone]] = {RESNET18: ResNet18, MOBILENET_V3_SMALL: MobileNetV3Small}


def backbone_class(name: str) -> type[Backbone]:
    """The module class of a backbone name (one of `BACKBONES`)."""
    return _CLASSES[name]


def build_backbone(name: str, generator: torch.Generator | None = None) -> Backbone:
    """A backbone with random weights drawn as torchvision draws them (He normal, fan out, for
    convolutions; batch norms at scale 1, shift 0) from ``generator``; pretrained weights are
    loaded afterwards (archtune.models.backbone_weights), at fit time only."""
    module = _CLASSES[name]()
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


__all__ = ["BACKBONES", "Backbone", "ImageNetInput", "MobileNetV3Small", "ResNet18", "backbone_class",
           "build_backbone", "make_divisible"]
