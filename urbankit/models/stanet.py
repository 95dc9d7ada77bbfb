"""STANet, the spatial-temporal attention network (Chen & Shi 2020), with its metric output.

H. Chen and Z. Shi, "A spatial-temporal attention-based method and a new dataset for remote
sensing image change detection", Remote Sensing 12 (2020) 1662 (the LEVIR-CD paper). Layer
layout read from the authors' public code (justchenhao/STANet: ``models/mynet3.py``,
``backbone.py``, ``PAM2.py``, ``BAM.py``, ``loss.py``):

* **feature extractor** (shared weights, Siamese): ResNet-18 whose layer 4 is a "multi-grid"
  unit of three basic blocks with dilations (1, 2, 4) (output stride 32); the outputs of layers
  1-4 are each reduced by 1x1 conv-BN-ReLU to 96 channels, up-sampled to 1/4 resolution
  (bilinear, ``align_corners=True``), concatenated (384) and fused by 3x3 conv (256)-BN-ReLU-
  Dropout(0.5)-1x1 conv (``f_c`` = 64)-BN-ReLU;
* **spatial-temporal attention** on the two dates' maps placed side by side (width 2W):
  ``attention="pam"`` (default, STANet-PAM, the paper's best): self-attention inside each of
  s x s sub-regions (spanning both dates) for s = 1, 2, 4, 8, key width C/8, outputs of the four
  scales concatenated and mixed by a 1x1 conv (no residual, as ``PAM2.py``);
  ``attention="bam"`` (STANet-BAM): one global self-attention + residual; ``"none"``: STANet-Base;
* **metric**: the per-pixel Euclidean distance of the two dates' features, up-sampled
  (bilinear, ``align_corners=True``) to the input; change where distance > 1 (half the margin
  m = 2 of the batch-balanced contrastive loss, :func:`urbankit.losses.batch_balanced_contrastive_loss`).

Returned: ``distance`` (B, 1, H, W) >= 0 and ``change`` = distance - 1 (a logit-like score:
``sigmoid(change) > 0.5`` is exactly the official decision d > 1). Train with the BCL on
``distance`` (``Supervised(targets={"distance": "change"}, loss=batch_balanced_contrastive_loss)``).

Change-detection form: **Siamese** (metric learning). The ResNet-18 starts from scratch here
(the paper uses ImageNet weights; :func:`urbankit.models.registry.load_weights` loads a local
file). Parameters: 16,929,152 (PAM) = the official code's count (16.93 M in the BIT table of
Chen, Qi & Shi 2022); 16,897,040 with BAM (the official BAM also holds one unused ``gamma``).

PAM's scale-1 region and BAM attend over the whole image: ``size_dependent = True``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .blocks import ChangeModel, conv_bn_relu, read_dates, scale_widths, setup_change_inputs
from .resnet import resnet18

#: The official STANet-PAM (ResNet-18 multi-grid, f_c = 64, PAM scales 1/2/4/8).
CANONICAL_PARAMS = 16_929_152
ATTENTIONS = ("pam", "bam", "none")


class STANetFeatures(nn.Module):
    """ResNet-18 (multi-grid layer 4) + STANet's decoder: (B, C, H, W) -> (B, f_c, H/4, W/4)."""

    def __init__(self, in_ch: int, width: float = 1.0, f_c: int = 64):
        super().__init__()
        self.backbone = resnet18(in_ch, scale_widths([64, 64, 128, 256, 512], width), 32, layer4_grid=(1, 2, 4))
        reduced = scale_widths([96], width)[0]
        mid = scale_widths([256], width)[0]
        self.reduce = nn.ModuleList(conv_bn_relu(c, reduced, 1) for c in self.backbone.out_channels)
        self.fuse = nn.Sequential(
            conv_bn_relu(4 * reduced, mid, 3), nn.Dropout(0.5),
            nn.Conv2d(mid, f_c, 1, bias=False), nn.BatchNorm2d(f_c), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        """Fused multi-scale features of (B, C, H, W) at H/4."""
        feats = [r(f) for r, f in zip(self.reduce, self.backbone(x))]
        size = feats[0].shape[-2:]
        ups = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=True)
               for f in feats]
        return self.fuse(torch.cat([ups[3], ups[0], ups[1], ups[2]], dim=1))


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Scaled dot-product attention over tokens: q, k (B, Ck, N), v (B, C, N) -> (B, C, N)."""
    sim = torch.softmax(torch.bmm(q.transpose(1, 2), k) * q.shape[1] ** -0.5, dim=-1)  # (B, N, N)
    return torch.bmm(v, sim.transpose(1, 2))


def _splits(n: int, s: int) -> list[tuple[int, int]]:
    step = n // s
    return [(i * step, n if i == s - 1 else (i + 1) * step) for i in range(s)]


class PAMScale(nn.Module):
    """Self-attention within each s x s sub-region, jointly over both dates.

    forward(x (B, C, H, 2W): t1 | t2 side by side) -> (B, C, H, 2W).
    """

    def __init__(self, channels: int, scale: int):
        super().__init__()
        key = max(1, channels // 8)
        self.scale = scale
        self.query = nn.Sequential(nn.Conv2d(channels, key, 1), nn.BatchNorm2d(key))
        self.key = nn.Sequential(nn.Conv2d(channels, key, 1), nn.BatchNorm2d(key))
        self.value = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Self-attention within each sub-region of the two dates side by side (B, C, H, 2W)."""
        b, _, h, w2 = x.shape
        w = w2 // 2
        q, k, v = self.query(x), self.key(x), self.value(x)
        out = torch.zeros_like(v)
        for r0, r1 in _splits(h, self.scale):
            for c0, c1 in _splits(w, self.scale):
                cols = torch.cat([torch.arange(c0, c1), torch.arange(w + c0, w + c1)]).to(x.device)
                qs, ks, vs = (t[:, :, r0:r1][..., cols].flatten(2) for t in (q, k, v))
                ctx = _attend(qs, ks, vs)
                out[:, :, r0:r1, cols] = ctx.view(b, -1, r1 - r0, cols.numel())
        return out


class PAM(nn.Module):
    """Pyramid attention: :class:`PAMScale` at each scale, concatenated, 1x1 conv (no bias)."""

    def __init__(self, channels: int, scales: Sequence[int] = (1, 2, 4, 8)):
        super().__init__()
        self.scales = nn.ModuleList(PAMScale(channels, s) for s in scales)
        self.mix = nn.Conv2d(channels * len(scales), channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Pyramid attention: the scales' contexts mixed by a 1x1 conv (shape kept)."""
        return self.mix(torch.cat([s(x) for s in self.scales], dim=1))


class BAM(nn.Module):
    """Basic spatial-temporal attention: global self-attention + residual. (B,C,H,2W) -> same."""

    def __init__(self, channels: int):
        super().__init__()
        key = max(1, channels // 8)
        self.query, self.key = nn.Conv2d(channels, key, 1), nn.Conv2d(channels, key, 1)
        self.value = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Basic self-attention over all positions plus the input (shape kept)."""
        ctx = _attend(self.query(x).flatten(2), self.key(x).flatten(2), self.value(x).flatten(2))
        return ctx.view_as(x) + x


class STANet(ChangeModel):
    """STANet -> ``{"change": distance - 1, "distance": distance}``, each (B, 1, H, W).

    Args:
        modality: ``optical`` (default), ``sar`` or ``fusion``.
        optical_channels, sar_channels: bands per date.
        width: multiplier of the ResNet-18 and decoder widths (``f_c`` stays 64 * width).
        attention: ``"pam"`` (default), ``"bam"`` or ``"none"``.
        pam_scales: PAM sub-region scales (1, 2, 4, 8).
        threshold: distance above which a pixel is change (1.0 = margin / 2).
    """

    name = "stanet"
    pad_multiple = 32
    size_dependent = True
    inference_window = 256

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, attention: str = "pam", pam_scales: Sequence[int] = (1, 2, 4, 8),
                 threshold: float = 1.0):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ConfigError(f"model 'stanet': attention must be one of {ATTENTIONS}, got {attention!r}")
        per_date = setup_change_inputs(self, modality, optical_channels, sar_channels, ("change", "distance"))
        f_c = scale_widths([64], width)[0]
        self.features = STANetFeatures(per_date, width, f_c)
        self.attention_mode = attention
        self.attention = PAM(f_c, pam_scales) if attention == "pam" else BAM(f_c) if attention == "bam" else None
        self.threshold = float(threshold)
        self.size_dependent = attention != "none"
        if self.attention is not None:  # the official CDSA initialisation
            for m in self.attention.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.zeros_(m.bias)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W)}``: the feature distance of the dates, as a logit of change."""
        t1, t2 = read_dates(self, batch)
        a, b = self.features(t1), self.features(t2)
        if self.attention is not None:
            w = a.shape[-1]
            both = self.attention(torch.cat([a, b], dim=3))
            a, b = both[..., :w], both[..., w:]
        # over channels, as the official F.pairwise_distance did in the torch 1.x of its time
        # (dim 1; today's pairwise_distance reduces the last dimension)
        dist = torch.linalg.vector_norm(a - b + 1e-6, dim=1, keepdim=True)  # (B, 1, h, w)
        dist = F.interpolate(dist, size=t1.shape[-2:], mode="bilinear", align_corners=True)
        return {"change": dist - self.threshold, "distance": dist}
