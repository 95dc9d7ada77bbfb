"""DeepLabV3 (Chen, Papandreou, Schroff & Adam 2017) as an early-fusion change detector.

Architecture (the paper's Sec. 3.3 and 4; layer layout of torchvision's
``deeplabv3_resnet50``, which cannot be imported here):

* **encoder** = ResNet-50 with **output stride 8**: layers 3 and 4 keep their resolution and
  use atrous convolutions with rates 2 and 4 (:func:`urbankit.models.resnet.resnet50`);
* **ASPP** = the kit's :class:`urbankit.models.blocks.ASPP` (1x1 conv, three 3x3 atrous convs
  and image pooling, 256 channels each, projected to 256) with rates **(12, 24, 36)**, the
  paper's rates for output stride 8 (twice those of stride 16);
* **head** = 3x3 conv-BN-ReLU (256) -> 1x1 conv -> 1 logit, bilinear up-sampling x8 to the input.

Change-detection form (a single-stream segmentation network in the HDANet comparison):
**early fusion**, both dates stacked along channels (6 channels for RGB pairs).

Parameters: 39.64 M for 6 input channels and 1 output; torchvision's ``deeplabv3_resnet50``
(3 channels, 21 classes, without the auxiliary FCN head) has 39,638,869 (its documented 42,004,074
include the 2,365,205 of the auxiliary head); tested within 1 %. Trained from scratch here;
:func:`urbankit.models.registry.load_weights` loads a local (e.g. ImageNet ResNet-50) state dict.

The ASPP's image-pooling branch makes the output depend on the input size
(``size_dependent = True``): predict on ``inference_window`` tiles.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ASPP, ChangeModel, conv_bn_relu, read_dates, scale_widths, setup_change_inputs
from .resnet import init_kaiming, resnet50

#: torchvision ``deeplabv3_resnet50`` without its auxiliary head (3 input channels, 21 classes).
CANONICAL_PARAMS = 39_638_869


class DeepLabV3EF(ChangeModel):
    """DeepLabV3-ResNet-50 (output stride 8) on concat(t1, t2) -> ``{"change": (B, 1, H, W)}``.

    Args:
        modality: ``optical`` (default), ``sar`` or ``fusion``.
        optical_channels, sar_channels: bands per date.
        width: multiplier of the ResNet widths (64..512, x4 in the bottlenecks) and of the
            256-channel ASPP/head.
        output_stride: 8 (default, the paper's best setting), 16 or 32.
        rates: ASPP atrous rates (default (12, 24, 36) for stride 8; use (6, 12, 18) for 16).
    """

    name = "deeplabv3"
    pad_multiple = 8
    size_dependent = True
    inference_window = 256

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, output_stride: int = 8, rates: tuple[int, ...] = (12, 24, 36)):
        super().__init__()
        per_date = setup_change_inputs(self, modality, optical_channels, sar_channels)
        widths = scale_widths([64, 64, 128, 256, 512], width)
        head = scale_widths([256], width)[0]
        self.pad_multiple = output_stride
        self.encoder = resnet50(2 * per_date, widths, output_stride)
        self.aspp = ASPP(self.encoder.out_channels[-1], head, rates)
        self.head = nn.Sequential(conv_bn_relu(head, head, 3), nn.Conv2d(head, 1, 1))
        init_kaiming(self.aspp)
        init_kaiming(self.head)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W) logits}`` of a batch dict (both dates stacked)."""
        t1, t2 = read_dates(self, batch)
        x = torch.cat([t1, t2], dim=1)
        logits = self.head(self.aspp(self.encoder(x)[-1]))
        return {"change": F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)}
