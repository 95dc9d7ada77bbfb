"""ResNet encoders (He et al. 2016) in plain torch, for DeepLabV3 and STANet.

torchvision cannot be imported beside the CPU torch wheel the kit is tested with, so the two
ResNets the VHR baselines need are written natively, with torchvision's layer layout (so the parameter counts agree):

* ResNet-50 (bottleneck blocks, [3, 4, 6, 3]) with an output stride of 32, 16 or 8 (the last
  stages' strides replaced by dilation, as DeepLabV3 does: Chen et al. 2017);
* ResNet-18 (basic blocks, [2, 2, 2, 2]) and STANet's variant whose layer 4 is a "multi-grid"
  unit of three blocks with dilation rates (1, 2, 4) (Chen & Shi 2020, official code
  ``models/mynet3.py``).

Weights start from scratch (no ImageNet download is possible here); see
:func:`urbankit.models.registry.load_weights` to load a local state dict.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError


def _bn_conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_ch))


class ResBasicBlock(nn.Module):
    """ResNet basic block: 3x3 (stride, dilation) -> 3x3, + identity (1x1 projection when needed).

    (B, in_ch, H, W) -> (B, planes, H/stride, W/stride).
    """

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = _bn_conv(in_ch, planes, 3, stride, dilation)
        self.conv2 = _bn_conv(planes, planes, 3)
        self.shortcut = (nn.Identity() if stride == 1 and in_ch == planes
                         else _bn_conv(in_ch, planes, 1, stride))

    def forward(self, x: Tensor) -> Tensor:
        """relu(conv2(relu(conv1(x))) + shortcut(x))."""
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class ResBottleneck(nn.Module):
    """ResNet bottleneck (torchvision "v1.5": the stride sits on the 3x3 conv).

    1x1 (planes) -> 3x3 (planes, stride, dilation) -> 1x1 (4 planes), + identity/projection.
    (B, in_ch, H, W) -> (B, 4*planes, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = _bn_conv(in_ch, planes, 1)
        self.conv2 = _bn_conv(planes, planes, 3, stride, dilation)
        self.conv3 = _bn_conv(planes, out, 1)
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out else _bn_conv(in_ch, out, 1, stride)

    def forward(self, x: Tensor) -> Tensor:
        """relu(conv3(conv2(conv1(x))) + shortcut(x))."""
        y = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(self.conv3(y) + self.shortcut(x))


#: output stride -> (strides of layers 1-4, dilations of layers 1-4)
_OUTPUT_STRIDES = {32: ((1, 2, 2, 2), (1, 1, 1, 1)), 16: ((1, 2, 2, 1), (1, 1, 1, 2)),
                   8: ((1, 2, 1, 1), (1, 1, 2, 4))}


class ResNet(nn.Module):
    """A ResNet feature extractor without the classifier.

    Args:
        block: :class:`ResBasicBlock` or :class:`ResBottleneck`.
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        in_ch: input channels (6 for an early-fusion RGB pair).
        widths: stem and stage widths (64, 64, 128, 256, 512), scaled by the caller's ``width``.
        output_stride: 32, 16 or 8 (strides of the last stages become dilations).
        layer4_grid: dilation multipliers of layer 4's blocks (a "multi-grid" unit, e.g. STANet's
            (1, 2, 4)); it replaces ``layers[3]`` by ``len(layer4_grid)`` blocks.

    forward(x (B, in_ch, H, W)) -> [c1, c2, c3, c4], the outputs of layers 1-4 at strides
    4, 8, 16 (or 8), 32 (or 16, 8), with ``widths[k+1] * block.expansion`` channels.
    """

    def __init__(self, block: type, layers: Sequence[int], in_ch: int,
                 widths: Sequence[int] = (64, 64, 128, 256, 512), output_stride: int = 32,
                 layer4_grid: Sequence[int] | None = None):
        super().__init__()
        if output_stride not in _OUTPUT_STRIDES:
            raise ConfigError(f"ResNet output_stride must be one of {sorted(_OUTPUT_STRIDES)}, got {output_stride}")
        strides, dilations = _OUTPUT_STRIDES[output_stride]
        self.stem = nn.Sequential(_bn_conv(in_ch, widths[0], 7, 2), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        prev = widths[0]
        stages = []
        for k in range(4):
            grid = [1] * layers[k] if k < 3 or layer4_grid is None else list(layer4_grid)
            blocks = []
            for i, g in enumerate(grid):
                blocks.append(block(prev, widths[k + 1], strides[k] if i == 0 else 1, dilations[k] * g))
                prev = widths[k + 1] * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.ModuleList(stages)
        self.out_channels = [w * block.expansion for w in widths[1:]]
        init_kaiming(self)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The outputs [c1, c2, c3, c4] of layers 1-4 of (B, in_ch, H, W) (strides: see the class docstring)."""
        x = self.stem(x)
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


def init_kaiming(module: nn.Module) -> None:
    """He-normal conv weights (fan-out, as torchvision's ResNet), BN weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resnet50(in_ch: int, widths: Sequence[int] = (64, 64, 128, 256, 512), output_stride: int = 8) -> ResNet:
    """ResNet-50 encoder (23.5 M parameters for 3 input channels), default output stride 8."""
    return ResNet(ResBottleneck, (3, 4, 6, 3), in_ch, widths, output_stride)


def resnet18(in_ch: int, widths: Sequence[int] = (64, 64, 128, 256, 512), output_stride: int = 32,
             layer4_grid: Sequence[int] | None = None) -> ResNet:
    """ResNet-18 encoder (11.2 M parameters; 15.9 M with STANet's 3-block multi-grid layer 4)."""
    return ResNet(ResBasicBlock, (2, 2, 2, 2), in_ch, widths, output_stride, layer4_grid)


__all__ = ["ResBasicBlock", "ResBottleneck", "ResNet", "init_kaiming", "resnet18", "resnet50"]
