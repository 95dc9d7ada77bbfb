"""HDANet: high-resolution feature difference attention network (Wang, Du, Tan et al., 2022).

X. Wang, J. Du, K. Tan, J. Ding, Z. Liu, C. Pan, B. Han, "A high-resolution feature difference
attention network for the application of building change detection", JAG 112 (2022) 102950.
No public code exists; METHODS.md §7 records what is known. What this module builds, and from
where:

From the paper's abstract (verified):
    * a **Siamese** network (one backbone, shared weights, applied to t1 and t2);
    * a **multi-resolution parallel backbone in the style of HRNet** (Sun et al. 2019) that keeps
      high-resolution features throughout instead of repeatedly down-sampling;
    * a **difference attention module** strengthening the sensitivity to bi-temporal differences.

From the seed slides (unverified, METHODS.md §7.2-7.3):
    * the DAM's change-intensity map CIM = ||T1 - T2||_2 over channels, the spatial attention
      sigmoid(conv3x3(CIM)) applied to DI = |T1 - T2|, "combined with channel attention";
    * an ASPP after aggregating the branches; CBAM among the ablation rows.

Documented defaults of the kit ([default] in METHODS.md):
    * backbone = HRNet-W18-small-v2 layout: stem of two 3x3 stride-2 convs (64 ch, 1/4 res);
      stage 1 = 2 bottleneck blocks (64 -> 256); stages 2-4 with 2, 3, 4 parallel branches at
      1/4, 1/8, 1/16, 1/32 of widths 18/36/72/144, made of (1, 3, 2) modules of 2 basic blocks
      per branch, each module ending in a multi-resolution fusion (upsampling = 1x1 conv + BN +
      bilinear; downsampling = strided 3x3 conv + BN, chained);
    * the DAM wiring: spatial attention, then CBAM-style channel attention, plus a residual DI
      (:class:`~urbankit.models.blocks.DifferenceAttention`); one DAM per branch;
    * aggregation: every branch's DAM output bilinearly upsampled to 1/4 and concatenated;
    * "+CBAM": a CBAM (channel then spatial attention, Woo et al. 2018) on the aggregated
      difference features; ASPP = DeepLabv3's (rates 6/12/18 + image pooling, 256 ch);
    * head: 3x3 conv-BN-ReLU (256) -> 1x1 conv -> 1 logit, bilinear upsampling x4 to the input.

Ablation switches (to build the seed's table Baseline / +ASPP / +DAM / +CBAM):
    * ``use_aspp=False``: a 1x1 conv-BN-ReLU projection to 256 channels replaces the ASPP;
    * ``use_dam=False``: the plain difference DI = |T1 - T2| replaces the DAM;
    * ``use_cbam=False``: no CBAM on the aggregated features.
    Baseline = all False; +ASPP = use_aspp; +DAM = use_aspp + use_dam; +CBAM = all True (default).

Any input size works: every resampling is to an explicit target size.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import (
    ASPP,
    CBAM,
    ChangeModel,
    DifferenceAttention,
    check_channels,
    check_modality,
    conv_bn_relu,
    modality_keys,
    scale_widths,
)


class BasicBlock(nn.Module):
    """HRNet/ResNet basic block: [3x3 conv-BN-ReLU, 3x3 conv-BN] + identity, ReLU. (B,C,H,W)->(B,C,H,W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + x)


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 (planes) -> 3x3 (planes) -> 1x1 (4*planes) + projected identity.

    (B, in_ch, H, W) -> (B, 4*planes, H, W).
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int):
        super().__init__()
        out = planes * self.expansion
        self.body = nn.Sequential(
            conv_bn_relu(in_ch, planes, 1), conv_bn_relu(planes, planes, 3),
            nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out),
        )
        self.shortcut = (nn.Identity() if in_ch == out
                         else nn.Sequential(nn.Conv2d(in_ch, out, 1, bias=False), nn.BatchNorm2d(out)))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class HRModule(nn.Module):
    """One HRNet module: basic blocks on every branch, then multi-resolution fusion.

    Fusion: output branch i = ReLU(sum_j resample_j->i(x_j)), where a lower-resolution x_j
    (j > i) goes through 1x1 conv + BN and bilinear upsampling to x_i's size, and a
    higher-resolution x_j (j < i) through (i - j) stride-2 3x3 conv + BN (ReLU between them).

    forward(list of (B, widths[k], H/2^k, W/2^k)) -> list of the same shapes.
    """

    def __init__(self, widths: Sequence[int], blocks: int = 2):
        super().__init__()
        self.widths = list(widths)
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(w) for _ in range(blocks)]) for w in widths)
        n = len(widths)
        self.fuse = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False), nn.BatchNorm2d(widths[i])))
                else:
                    steps: list[nn.Module] = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out = widths[i] if last else widths[j]
                        steps += [nn.Conv2d(widths[j], out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out)]
                        if not last:
                            steps.append(nn.ReLU(inplace=True))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            total = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                y = layer(xs[j])
                if y.shape[-2:] != xs[i].shape[-2:]:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
                total = total + y
            out.append(F.relu(total))
        return out


class HRNetBackbone(nn.Module):
    """HRNet-style multi-resolution backbone (default: the W18-small-v2 layout).

    Args:
        in_ch: input channels.
        stem: stem width (64).
        widths: branch widths at 1/4, 1/8, 1/16, 1/32 (18, 36, 72, 144).
        modules: HRModules in stages 2, 3, 4 (1, 3, 2).
        blocks: basic blocks per branch in each module, and bottlenecks in stage 1 (2).

    forward(x (B, in_ch, H, W)) -> list of 4 maps (B, widths[k], ~H/2^(k+2), ~W/2^(k+2)).
    """

    def __init__(self, in_ch: int, stem: int = 64, widths: Sequence[int] = (18, 36, 72, 144),
                 modules: Sequence[int] = (1, 3, 2), blocks: int = 2):
        super().__init__()
        widths = list(widths)
        self.stem = nn.Sequential(conv_bn_relu(in_ch, stem, 3, stride=2), conv_bn_relu(stem, stem, 3, stride=2))
        layer1 = [Bottleneck(stem, stem)] + [Bottleneck(stem * 4, stem) for _ in range(blocks - 1)]
        self.layer1 = nn.Sequential(*layer1)
        stage1_out = stem * Bottleneck.expansion
        # transitions: from stage 1 to two branches, then one new (stride-2) branch per stage
        self.transition1 = nn.ModuleList([conv_bn_relu(stage1_out, widths[0], 3),
                                          conv_bn_relu(stage1_out, widths[1], 3, stride=2)])
        self.new_branches = nn.ModuleList(conv_bn_relu(widths[k - 1], widths[k], 3, stride=2)
                                          for k in range(2, len(widths)))
        self.stages = nn.ModuleList()
        for n_branches, n_modules in zip(range(2, len(widths) + 1), modules):
            self.stages.append(nn.Sequential(*[HRModule(widths[:n_branches], blocks) for _ in range(n_modules)]))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.layer1(self.stem(x))
        xs = [t(x) for t in self.transition1]
        for k, stage in enumerate(self.stages):
            if k > 0:
                xs = xs + [self.new_branches[k - 1](xs[-1])]
            for module in stage:
                xs = module(xs)
        return xs


class HDANet(ChangeModel):
    """Siamese HRNet + difference attention + ASPP change detector (see the module docstring).

    Args:
        modality: ``optical`` (default; LEVIR-CD RGB, ``optical_channels=3``), ``sar``, ``fusion``.
        optical_channels, sar_channels: bands per date.
        width: multiplier of every width (stem 64, branches 18/36/72/144, ASPP/head 256).
        use_aspp, use_dam, use_cbam: ablation switches (all True = HDANet).
        modules, blocks: backbone depth (see :class:`HRNetBackbone`).

    forward(batch) -> {"change": (B, 1, H, W)} logits.
    """

    name = "hdanet"
    pad_multiple = 32

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, use_aspp: bool = True, use_dam: bool = True, use_cbam: bool = True,
                 modules: Sequence[int] = (1, 3, 2), blocks: int = 2):
        super().__init__()
        self.modality = check_modality(modality, self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        check_channels(sar_channels, "sar_channels", self.name)
        per = {"sar": sar_channels, "optical": optical_channels}
        channels = {k: per[k.split("_")[0]] for d in ("t1", "t2") for k in modality_keys(modality, d)}
        in_ch = sum(per[k.split("_")[0]] for k in modality_keys(modality, "t1"))
        self._set_inputs(channels, ["change"])
        self.use_aspp, self.use_dam, self.use_cbam = bool(use_aspp), bool(use_dam), bool(use_cbam)
        stem, *branch_widths = scale_widths([64, 18, 36, 72, 144], width)
        head = scale_widths([256], width)[0]
        self.backbone = HRNetBackbone(in_ch, stem, branch_widths, modules, blocks)
        self.dams = nn.ModuleList(DifferenceAttention(w) for w in branch_widths) if use_dam else None
        agg = sum(branch_widths)
        self.cbam = CBAM(agg) if use_cbam else None
        self.context = ASPP(agg, head) if use_aspp else conv_bn_relu(agg, head, 1)
        self.head = nn.Sequential(conv_bn_relu(head, head, 3), nn.Conv2d(head, 1, 1))

    def difference_features(self, batch: Mapping[str, Tensor]) -> list[Tensor]:
        """Per-branch difference features (DAM outputs, or |T1 - T2| without the DAM)."""
        f1 = self.backbone(self.read(batch, modality_keys(self.modality, "t1")))
        f2 = self.backbone(self.read(batch, modality_keys(self.modality, "t2")))
        if self.dams is None:
            return [(a - b).abs() for a, b in zip(f1, f2)]
        return [dam(a, b) for dam, a, b in zip(self.dams, f1, f2)]

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        diffs = self.difference_features(batch)  # validates the batch
        h, w = batch[self.input_keys[0]].shape[-2:]
        size = diffs[0].shape[-2:]
        x = torch.cat([d if d.shape[-2:] == size else
                       F.interpolate(d, size=size, mode="bilinear", align_corners=False) for d in diffs], dim=1)
        if self.cbam is not None:
            x = self.cbam(x)
        logits = self.head(self.context(x))
        return {"change": F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)}
