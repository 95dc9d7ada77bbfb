"""UNet++ (Zhou, Rahman Siddiquee, Tajbakhsh & Liang 2018) as an early-fusion change detector.

Architecture (the paper's Fig. 1 and its Keras code layout):

* nodes X(i, j), level i = 0..4 (resolution 1/2^i), column j = 0..4-i; X(i, 0) is the encoder
  (2x2 max-pooling between levels), and every other node is
  X(i, j) = H([X(i, 0), ..., X(i, j-1), Up(X(i+1, j-1))]) with nested dense skip pathways;
* H = two 3x3 convolutions (widths 32, 64, 128, 256, 512 per level); Up = a 2x2 stride-2
  transposed convolution (the Keras original's ``Conv2DTranspose``);
* deep supervision: a 1x1 conv head on each of X(0, 1..4); with ``deep_supervision=True``
  ``change`` is the mean of the four logits (the paper's "accurate mode") and the four heads are
  also returned as ``change_side1``..``change_side4`` for a loss on each, else only X(0, 4)'s head.

The kit adds batch normalisation after each convolution (the Keras code has none; from-scratch
training without pretrained weights is far more stable with it): a documented kit choice that
adds 0.1 % parameters.

Change-detection form: **early fusion** (both dates stacked, 6 channels for RGB), as UNet++ is
used in change detection (e.g. Peng, Zhang & Guan 2019) and in the HDANet comparison.

Parameters: 9.05 M for 6 channels with deep supervision; the paper's Table 1 gives 9.04 M
(its Keras code with 3 channels and 4 heads: 9,042,276); tested within 1 %.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ChangeModel, DoubleConv, crop_to, pad_to_multiple, read_dates, scale_widths, setup_change_inputs

#: UNet++ of Zhou et al. 2018, Table 1 (their Keras code: 9,042,276 with 3 channels, 4 heads).
CANONICAL_PARAMS = 9_042_276
UNETPP_WIDTHS = (32, 64, 128, 256, 512)


class UNetPlusPlusEF(ChangeModel):
    """UNet++ on concat(t1, t2) -> ``{"change": (B, 1, H, W)}`` logits (+ side heads).

    Args:
        modality: ``optical`` (default), ``sar`` or ``fusion``.
        optical_channels, sar_channels: bands per date.
        width: multiplier of the widths 32/64/128/256/512.
        deep_supervision: four heads on X(0, 1..4) (default True, as the paper's model).
    """

    name = "unetpp"
    pad_multiple = 16

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, deep_supervision: bool = True):
        super().__init__()
        self.deep_supervision = bool(deep_supervision)
        outputs = ["change"] + ([f"change_side{j}" for j in range(1, 5)] if self.deep_supervision else [])
        per_date = setup_change_inputs(self, modality, optical_channels, sar_channels, outputs)
        f = scale_widths(UNETPP_WIDTHS, width)
        self.nodes = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        for i in range(5):
            self.nodes[f"{i}_0"] = DoubleConv(2 * per_date if i == 0 else f[i - 1], f[i])
        for j in range(1, 5):
            for i in range(5 - j):
                self.ups[f"{i}_{j}"] = nn.ConvTranspose2d(f[i + 1], f[i], 2, stride=2)
                self.nodes[f"{i}_{j}"] = DoubleConv(f[i] * (j + 1), f[i])
        n_heads = 4 if self.deep_supervision else 1
        self.heads = nn.ModuleList(nn.Conv2d(f[0], 1, 1) for _ in range(n_heads))

    def deep_supervision_targets(self) -> dict[str, str]:
        """``Supervised(targets=...)`` mapping every side head to the ``change`` label."""
        return {k: "change" for k in self.output_keys if k.startswith("change_side")} or {"change": "change"}

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W) logits}`` of a batch dict (both dates stacked)."""
        t1, t2 = read_dates(self, batch)
        x, size = pad_to_multiple(torch.cat([t1, t2], dim=1), self.pad_multiple)
        grid: dict[tuple[int, int], Tensor] = {(0, 0): self.nodes["0_0"](x)}
        for i in range(1, 5):
            grid[(i, 0)] = self.nodes[f"{i}_0"](F.max_pool2d(grid[(i - 1, 0)], 2))
        for j in range(1, 5):
            for i in range(5 - j):
                parts = [grid[(i, k)] for k in range(j)] + [self.ups[f"{i}_{j}"](grid[(i + 1, j - 1)])]
                grid[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat(parts, dim=1))
        if not self.deep_supervision:
            return {"change": crop_to(self.heads[0](grid[(0, 4)]), size)}
        sides = [crop_to(head(grid[(0, j)]), size) for j, head in enumerate(self.heads, start=1)]
        out = {"change": torch.stack(sides).mean(0)}
        out.update({f"change_side{j}": s for j, s in enumerate(sides, start=1)})
        return out
