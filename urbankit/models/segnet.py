"""SegNet (Badrinarayanan, Kendall & Cipolla 2017) as an early-fusion change detector.

Architecture (the paper's, Fig. 2 and Sec. 3):

* **encoder** = the 13 convolutional layers of VGG16 with batch normalisation, in 5 stages of
  (2, 2, 3, 3, 3) 3x3 conv-BN-ReLU layers (64, 128, 256, 512, 512 channels), each stage ending in
  a 2x2 max-pooling that **keeps its pooling indices**;
* **decoder** = the mirror image: each stage up-samples by max-unpooling at the stored
  indices (sparse maps, no learned up-sampling; :func:`unpool2x2`, a deterministic
  ``MaxUnpool2d``), then 3x3 conv-BN-ReLU layers; the last layer
  is a 3x3 conv to the class scores (here 1 change logit, no BN/ReLU).

Change-detection form (as in the HDANet comparison, where SegNet is a single-stream
segmentation network): **early fusion**, the two dates stacked along channels
(t1 bands then t2 bands = 6 channels for RGB pairs).

Parameters: 29.44 M for 6 input channels and 1 output (the paper's Table 6 gives 29.5 M for
SegNet on 3-band CamVid); tested within 1 %. Trained from scratch here (no ImageNet VGG16
download is possible); :func:`urbankit.models.registry.load_weights` loads a local state dict.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import (
    VGG16_STAGES,
    ChangeModel,
    conv_bn_relu,
    crop_to,
    pad_to_multiple,
    read_dates,
    scale_widths,
    setup_change_inputs,
    vgg_stage,
)

#: Parameter count of the canonical SegNet (Badrinarayanan et al. 2017, Table 6: 29.5 M).
CANONICAL_PARAMS = 29_500_000


class SegNetEF(ChangeModel):
    """SegNet on concat(t1, t2) -> ``{"change": (B, 1, H, W)}`` logits.

    Args:
        modality: ``optical`` (default), ``sar`` or ``fusion``.
        optical_channels, sar_channels: bands per date (3 = RGB, e.g. LEVIR-CD).
        width: multiplier of the VGG16 widths (1.0 = the paper's 64..512).

    Sizes that are not multiples of 32 are padded (replicate) and cropped back.
    """

    name = "segnet"
    pad_multiple = 32

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0):
        super().__init__()
        per_date = setup_change_inputs(self, modality, optical_channels, sar_channels)
        widths = scale_widths([w for _, w in VGG16_STAGES], width)
        counts = [n for n, _ in VGG16_STAGES]
        self.encoder = nn.ModuleList()
        prev = 2 * per_date
        for n, w in zip(counts, widths):
            self.encoder.append(vgg_stage(prev, w, n))
            prev = w
        self.decoder = nn.ModuleList()
        for k in reversed(range(5)):  # mirror: stage k's convs end at the width of stage k-1
            out = widths[k - 1] if k > 0 else widths[0]
            layers = [conv_bn_relu(widths[k], widths[k], 3) for _ in range(counts[k] - 1)]
            layers.append(conv_bn_relu(widths[k], out, 3) if k > 0 else nn.Conv2d(widths[0], 1, 3, padding=1))
            self.decoder.append(nn.Sequential(*layers))

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W) logits}`` of a batch dict (both dates stacked)."""
        t1, t2 = read_dates(self, batch)
        x, size = pad_to_multiple(torch.cat([t1, t2], dim=1), self.pad_multiple)
        indices = []
        for stage in self.encoder:
            x, idx = F.max_pool2d(stage(x), 2, 2, return_indices=True)
            indices.append(idx)
        for stage, idx in zip(self.decoder, reversed(indices)):
            x = stage(unpool2x2(x, idx))
        return {"change": crop_to(x, size)}


def unpool2x2(x: Tensor, indices: Tensor) -> Tensor:
    """Max-unpooling of a 2x2 / stride-2 pooling: each value back at its argmax, zeros elsewhere.

    Equals ``F.max_unpool2d(x, indices, 2, 2)`` but is written with a one-hot mask, so it is
    deterministic (torch's ``max_unpool2d`` kernel is flagged non-deterministic).
    (B, C, h, w) + the pooling's flat indices (B, C, h, w) -> (B, C, 2h, 2w).
    """
    b, c, h, w = x.shape
    row, col = indices // (2 * w), indices % (2 * w)
    slot = (row % 2) * 2 + (col % 2)                       # position inside the 2x2 block
    onehot = F.one_hot(slot, 4).to(x.dtype) * x.unsqueeze(-1)  # (B, C, h, w, 4)
    return onehot.view(b, c, h, w, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, 2 * h, 2 * w)
