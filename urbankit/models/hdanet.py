"""HDANet: high-resolution feature difference attention network (Wang, Du, Tan et al., 2022).

X. Wang, J. Du, K. Tan, J. Ding, Z. Liu, C. Pan, B. Han, "A high-resolution feature difference
attention network for the application of building change detection", JAG 112 (2022) 102950.
No public code exists, and the paper's text beyond its abstract was not available to the kit.
What this module builds, and from where:

From the paper's abstract (verified):
    * a **Siamese** network (one backbone, shared weights, applied to t1 and t2);
    * a **multi-resolution parallel backbone in the style of HRNet** (Sun et al. 2019) that keeps
      high-resolution features throughout instead of repeatedly down-sampling;
    * a **difference attention module** strengthening the sensitivity to bi-temporal differences.

From the course's HDANet slides (not checked against the paper's full text):
    * the DAM's change-intensity map CIM = ||T1 - T2||_2 over channels, the spatial attention
      sigmoid(conv3x3(CIM)) applied to DI = |T1 - T2|, "combined with channel attention";
    * an ASPP after aggregating the branches; CBAM among the ablation rows.

Documented defaults of the kit (the kit's choices where the slides say nothing):
    * backbone = HRNet-W18-small-v2 layout: stem of two 3x3 stride-2 convs (64 ch, 1/4 res);
      stage 1 = 2 bottleneck blocks (64 -> 256); stages 2-4 with 2, 3, 4 parallel branches at
      1/4, 1/8, 1/16, 1/32 of widths 18/36/72/144, made of (1, 3, 2) modules of 2 basic blocks
      per branch, each module ending in a multi-resolution fusion (upsampling = 1x1 conv + BN +
      bilinear with ``align_corners=True`` as the official HRNet code; downsampling = strided
      3x3 conv + BN, chained). This backbone has 3,860,720 parameters for RGB, as the official
      HRNet-W18-small-v2 without its classification head;
    * the DAM wiring: spatial attention, then CBAM-style channel attention
      (:class:`~urbankit.models.blocks.DifferenceAttention`); one DAM per branch;
    * aggregation: every branch's output bilinearly upsampled to 1/4 and concatenated;
    * ASPP = DeepLabv3's (rates 6/12/18 + image pooling, 256 ch);
    * head: 3x3 conv-BN-ReLU (256) -> 1x1 conv -> 1 logit, bilinear upsampling x4 to the input.

**The paper's model is ASPP + DAM without CBAM** (the ablation table of the course's slides): that
is the default. The five rows of the HDANet paper's ablation table (:data:`ABLATION_ROWS`,
:func:`ablation_models`):

    ============== ===== ===== ====== ==========================================
    row            ASPP  DAM   CBAM
    ============== ===== ===== ====== ==========================================
    Baseline       no    no    no     = Siam-HRNet (registry ``siam_hrnet``)
    Baseline+ASPP  yes   no    no
    Baseline+DAM   no    yes   no
    HDANet+CBAM    yes   no    yes    CBAM *in place of* the DAM
    HDANet+DAM     yes   yes   no     = HDANet, the paper's model (the default)
    ============== ===== ===== ====== ==========================================

Switches that are **unverified kit choices** (neither the abstract nor the slides fix them):
    * ``dam_residual`` (default True): the DAM returns CA(A * DI) + DI; False returns
      CA(A * DI), so the attention can suppress unchanged areas;
    * ``cbam_placement`` (default ``"branch"``): where the CBAM of the "HDANet+CBAM" row sits:
      ``"branch"`` on each branch's difference |T1 - T2| (where the DAM would be: the ablation
      swaps one for the other), or ``"aggregate"`` once on the concatenated differences.

Size dependence: ASPP image pooling and the channel attentions pool over the whole input, so
the output at a pixel depends on the input size. A model with any of ASPP, DAM or CBAM declares
``size_dependent = True`` and ``inference_window = 256`` (the HDANet paper's training tiles), and
:func:`urbankit.inference.predict` then predicts on 256-pixel windows; Siam-HRNet (no global
pooling) is size-independent.

Any input size works: every resampling is to an explicit target size.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .blocks import (
    ASPP,
    CBAM,
    ChangeModel,
    DifferenceAttention,
    conv_bn_relu,
    read_dates,
    scale_widths,
    setup_change_inputs,
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
        """Residual block: relu(body(x) + x), shape kept."""
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
        """Bottleneck residual block: relu(body(x) + shortcut(x))."""
        return F.relu(self.body(x) + self.shortcut(x))


class HRModule(nn.Module):
    """One HRNet module: basic blocks on every branch, then multi-resolution fusion.

    Fusion: output branch i = ReLU(sum_j resample_j->i(x_j)), where a lower-resolution x_j
    (j > i) goes through 1x1 conv + BN and bilinear upsampling to x_i's size (``align_corners``
    True as the official HRNet code, or False), and a
    higher-resolution x_j (j < i) through (i - j) stride-2 3x3 conv + BN (ReLU between them).

    forward(list of (B, widths[k], H/2^k, W/2^k)) -> list of the same shapes.
    """

    def __init__(self, widths: Sequence[int], blocks: int = 2, align_corners: bool = True):
        super().__init__()
        self.widths = list(widths)
        self.align_corners = bool(align_corners)
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
        """Run each resolution branch, then exchange information between them (shapes kept)."""
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            total = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                y = layer(xs[j])
                if y.shape[-2:] != xs[i].shape[-2:]:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=self.align_corners)
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
        align_corners: bilinear upsampling in the fusions (True = the official HRNet).

    forward(x (B, in_ch, H, W)) -> list of 4 maps (B, widths[k], ~H/2^(k+2), ~W/2^(k+2)).
    """

    def __init__(self, in_ch: int, stem: int = 64, widths: Sequence[int] = (18, 36, 72, 144),
                 modules: Sequence[int] = (1, 3, 2), blocks: int = 2, align_corners: bool = True):
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
            self.stages.append(nn.Sequential(*[HRModule(widths[:n_branches], blocks, align_corners)
                                               for _ in range(n_modules)]))

    def forward(self, x: Tensor) -> list[Tensor]:
        """HRNet features of (B, C, H, W): one map per branch, at H/4, H/8, H/16, H/32."""
        x = self.layer1(self.stem(x))
        xs = [t(x) for t in self.transition1]
        for k, stage in enumerate(self.stages):
            if k > 0:
                xs = xs + [self.new_branches[k - 1](xs[-1])]
            for module in stage:
                xs = module(xs)
        return xs


#: The ablation rows of the course's HDANet slides: row label -> HDANet switches.
ABLATION_ROWS: dict[str, dict[str, bool]] = {
    "Baseline": dict(use_aspp=False, use_dam=False, use_cbam=False),
    "Baseline+ASPP": dict(use_aspp=True, use_dam=False, use_cbam=False),
    "Baseline+DAM": dict(use_aspp=False, use_dam=True, use_cbam=False),
    "HDANet+CBAM": dict(use_aspp=True, use_dam=False, use_cbam=True),
    "HDANet+DAM": dict(use_aspp=True, use_dam=True, use_cbam=False),
}
CBAM_PLACEMENTS = ("branch", "aggregate")


class HDANet(ChangeModel):
    """Siamese HRNet + difference attention + ASPP change detector (see the module docstring).

    Args:
        modality: ``optical`` (default; LEVIR-CD RGB, ``optical_channels=3``), ``sar``, ``fusion``.
        optical_channels, sar_channels: bands per date.
        width: multiplier of every width (stem 64, branches 18/36/72/144, ASPP/head 256).
        use_aspp, use_dam, use_cbam: ablation switches; the default (ASPP + DAM, no CBAM) is the
            paper's HDANet, :data:`ABLATION_ROWS` lists the paper's five ablation rows.
        dam_residual: the DAM's ``+ DI`` (unverified kit choice, see the module docstring).
        cbam_placement: ``"branch"`` (default) or ``"aggregate"`` (unverified kit choice).
        modules, blocks: backbone depth (see :class:`HRNetBackbone`).
        align_corners: of every bilinear resampling (True = the official HRNet code).
        inference_window: the training window declared to inference (256 = the paper's training tiles).

    forward(batch) -> {"change": (B, 1, H, W)} logits.
    """

    name = "hdanet"
    pad_multiple = 32

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, use_aspp: bool = True, use_dam: bool = True, use_cbam: bool = False,
                 dam_residual: bool = True, cbam_placement: str = "branch",
                 modules: Sequence[int] = (1, 3, 2), blocks: int = 2, align_corners: bool = True,
                 inference_window: int = 256):
        super().__init__()
        if cbam_placement not in CBAM_PLACEMENTS:
            raise ConfigError(f"model {self.name!r}: cbam_placement must be one of {CBAM_PLACEMENTS}, "
                              f"got {cbam_placement!r}")
        in_ch = setup_change_inputs(self, modality, optical_channels, sar_channels)
        self.use_aspp, self.use_dam, self.use_cbam = bool(use_aspp), bool(use_dam), bool(use_cbam)
        self.cbam_placement, self.align_corners = cbam_placement, bool(align_corners)
        self.size_dependent = self.use_aspp or self.use_dam or self.use_cbam
        self.inference_window = int(inference_window) if self.size_dependent else None
        stem, *branch_widths = scale_widths([64, 18, 36, 72, 144], width)
        head = scale_widths([256], width)[0]
        self.backbone = HRNetBackbone(in_ch, stem, branch_widths, modules, blocks, align_corners)
        self.dams = (nn.ModuleList(DifferenceAttention(w, residual=dam_residual) for w in branch_widths)
                     if use_dam else None)
        agg = sum(branch_widths)
        per_branch = use_cbam and cbam_placement == "branch"
        self.cbams = nn.ModuleList(CBAM(w) for w in branch_widths) if per_branch else None
        self.cbam = CBAM(agg) if use_cbam and not per_branch else None
        self.context = ASPP(agg, head) if use_aspp else conv_bn_relu(agg, head, 1)
        self.head = nn.Sequential(conv_bn_relu(head, head, 3), nn.Conv2d(head, 1, 1))

    def difference_features(self, batch: Mapping[str, Tensor]) -> list[Tensor]:
        """Per-branch difference features: DAM outputs, else |T1 - T2|; then a CBAM per branch if any."""
        t1, t2 = read_dates(self, batch)
        f1, f2 = self.backbone(t1), self.backbone(t2)
        if self.dams is not None:
            diffs = [dam(a, b) for dam, a, b in zip(self.dams, f1, f2)]
        else:
            diffs = [(a - b).abs() for a, b in zip(f1, f2)]
        if self.cbams is not None:
            diffs = [cbam(d) for cbam, d in zip(self.cbams, diffs)]
        return diffs

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W) logits}`` of a batch dict (t1, t2 images)."""
        diffs = self.difference_features(batch)  # validates the batch
        h, w = batch[self.input_keys[0]].shape[-2:]
        size = diffs[0].shape[-2:]
        ac = self.align_corners
        x = torch.cat([d if d.shape[-2:] == size else
                       F.interpolate(d, size=size, mode="bilinear", align_corners=ac) for d in diffs], dim=1)
        if self.cbam is not None:
            x = self.cbam(x)
        logits = self.head(self.context(x))
        return {"change": F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=ac)}


class SiamHRNet(HDANet):
    """Siam-HRNet: the Siamese HRNet with plain differences |T1 - T2|, no ASPP, DAM or CBAM.

    The HDANet comparison's "Baseline" row and its "Siam_HRNet" row have identical numbers on all three
    datasets, so Siam-HRNet is HDANet's baseline configuration (:data:`ABLATION_ROWS`).
    Size-independent (no global pooling). Same arguments as :class:`HDANet` minus the switches.
    """

    name = "siam_hrnet"

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, modules: Sequence[int] = (1, 3, 2), blocks: int = 2,
                 align_corners: bool = True):
        super().__init__(modality, optical_channels, sar_channels, width, use_aspp=False, use_dam=False,
                         use_cbam=False, modules=modules, blocks=blocks, align_corners=align_corners)


def ablation_models(rows: Sequence[str] | None = None, **cfg) -> dict[str, HDANet]:
    """Build the HDANet paper's ablation rows: ``{row label: HDANet}`` (all five by default).

    ``cfg`` (e.g. ``width=0.25, modules=(1, 1, 1)``) is passed to every row, so the rows differ
    only in their switches. Unknown row labels raise ConfigError listing :data:`ABLATION_ROWS`.
    """
    rows = list(ABLATION_ROWS) if rows is None else list(rows)
    unknown = [r for r in rows if r not in ABLATION_ROWS]
    if unknown:
        raise ConfigError(f"unknown ablation row(s) {unknown}; the ablation rows are {list(ABLATION_ROWS)}")
    clash = sorted(set(cfg) & {"use_aspp", "use_dam", "use_cbam"})
    if clash:
        raise ConfigError(f"ablation_models sets {clash} per row; do not pass them")
    return {r: HDANet(**ABLATION_ROWS[r], **cfg) for r in rows}
