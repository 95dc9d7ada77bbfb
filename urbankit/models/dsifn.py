"""DSIFN, the deeply supervised image fusion network (Zhang, Yue, Shi, Gong, Li & Yuan 2020).

C. Zhang et al., "A deeply supervised image fusion network for change detection in high
resolution bi-temporal remote sensing images", ISPRS J. 166 (2020) 183-200. Layer layout read
from the authors' public PyTorch code (``pytorch version/DSIFN.py``, GeoZcx repository):

* **image feature extraction network**: VGG16 (no BN) on each date; features after
  relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (full, 1/2, 1/4, 1/8, 1/16 resolution). The
  official code builds two VGG16 instances (``model_A``, ``model_B``): ``shared_encoder=False``
  (default) keeps two streams, True shares one (a Siamese encoder, 14.7 M parameters fewer);
* **difference discrimination network**, from the deepest level up, five stages: concat the
  up-sampled decoder features with both dates' features of that level, channel attention
  (stages 2-5; ratio 8), 3x3 convs each followed by PReLU, BN and Dropout(0.6)
  (1024->512->512; 1536->512->256->256; 768->256->128->128; 384->128->64->64;
  192->64->32->16), spatial attention (7x7 conv on [mean, max], one module shared by all
  stages), BN, a 1x1 side head, and a 2x2 transposed conv to the next level;
* **deep supervision**: the five side outputs (1/16 .. full resolution) are all trained
  (:func:`urbankit.losses.deep_supervision_loss` with :func:`urbankit.losses.dsifn_loss`, BCE +
  Dice per output, as the authors' ``loss.py``).

Returned: ``change`` (the full-resolution output) and ``change_side1``..``change_side4`` (the
1/16, 1/8, 1/4, 1/2 outputs), each nearest-up-sampled to (B, 1, H, W) so every output has the
input size. For BCE this equals the loss at the side's own scale against the block-averaged
label (BCE is linear in the target); the paper resizes the label instead.

Differences from the official code (documented kit choices): the channel attention uses
average *and* max pooling as CBAM and the paper describe (the code pools by average twice);
the unused ``ca1``/``bn_ca1``/``bn_ca2`` modules of the code are not built (267,264 parameters);
the outputs are logits (the code applies a sigmoid in the model and again in the loss). The
encoder is trained from scratch (the paper freezes an ImageNet VGG16, which cannot be
downloaded here; :func:`urbankit.models.registry.load_weights` loads a local one).

Change-detection form: **two-stream / Siamese**, fusion of features at five levels.
Parameters: 50.44 M (two VGG16 streams, RGB); the official code has 50,709,109 (the 50.71 M of
Chen et al.'s BIT comparison table): -0.5 %, tested within 1 %. With ``shared_encoder=True``:
35.73 M (the figure other comparisons quote for a shared-weight DSIFN).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import (
    VGG16_STAGES,
    ChangeModel,
    ChannelAttention,
    SpatialAttention,
    crop_to,
    pad_to_multiple,
    read_dates,
    scale_widths,
    setup_change_inputs,
    vgg_stage,
)

#: The authors' PyTorch DSIFN (two VGG16 streams, unused modules included): 50,709,109.
CANONICAL_PARAMS = 50_709_109
#: Decoder convolution widths per stage, deepest first (the official code).
DSIFN_DECODER = ((512, 512), (512, 256, 256), (256, 128, 128), (128, 64, 64), (64, 32, 16))


class VGG16Features(nn.Module):
    """VGG16 convolutional stages; forward(x) -> 5 maps at 1, 1/2, 1/4, 1/8, 1/16 resolution.

    The map of stage k is taken after its last ReLU, before the pooling (relu1_2 ... relu5_3).
    """

    def __init__(self, in_ch: int, widths, batch_norm: bool = False):
        super().__init__()
        self.stages = nn.ModuleList()
        for (n, _), w in zip(VGG16_STAGES, widths):
            self.stages.append(vgg_stage(in_ch, w, n, batch_norm))
            in_ch = w

    def forward(self, x: Tensor) -> list[Tensor]:
        """The five VGG16 stage outputs of (B, 3, H, W), at H, H/2, ..., H/16."""
        feats = []
        for k, stage in enumerate(self.stages):
            x = stage(x if k == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


def dsifn_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv (bias) -> PReLU -> BN -> Dropout(0.6), the official ``conv2d_bn``."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.PReLU(), nn.BatchNorm2d(out_ch),
                         nn.Dropout(p=0.6))


class DSIFNStage(nn.Module):
    """One decoder stage: [channel attention] -> convs -> spatial attention -> BN; side head.

    forward(x (B, in_ch, h, w), sa) -> (features (B, out, h, w), side logits (B, 1, h, w)).
    """

    def __init__(self, in_ch: int, widths, channel_attention: bool):
        super().__init__()
        self.ca = ChannelAttention(in_ch, reduction=8) if channel_attention else None
        convs, prev = [], in_ch
        for w in widths:
            convs.append(dsifn_conv(prev, w))
            prev = w
        self.convs = nn.Sequential(*convs)
        self.bn = nn.BatchNorm2d(prev)
        self.side = nn.Conv2d(prev, 1, 1)
        self.out_channels = prev

    def forward(self, x: Tensor, sa: nn.Module) -> tuple[Tensor, Tensor]:
        """One decoder stage: (features, side-output logits) after channel/spatial attention."""
        if self.ca is not None:
            x = self.ca(x) * x
        x = self.convs(x)
        x = self.bn(sa(x) * x)
        return x, self.side(x)


class DSIFN(ChangeModel):
    """DSIFN -> ``{"change", "change_side1".."change_side4"}``, each (B, 1, H, W) logits.

    Args:
        modality: ``optical`` (default), ``sar`` or ``fusion``.
        optical_channels, sar_channels: bands per date.
        width: multiplier of every width (VGG16 64..512 and the decoder).
        shared_encoder: one VGG16 for both dates (Siamese); default False = two streams as the
            official code.
    """

    name = "dsifn"
    pad_multiple = 16
    size_dependent = True  # channel attention pools over the whole input
    inference_window = 256

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 width: float = 1.0, shared_encoder: bool = False):
        super().__init__()
        outputs = ["change"] + [f"change_side{k}" for k in range(1, 5)]
        per_date = setup_change_inputs(self, modality, optical_channels, sar_channels, outputs)
        vgg = scale_widths([w for _, w in VGG16_STAGES], width)
        self.encoder_t1 = VGG16Features(per_date, vgg)
        self.encoder_t2 = self.encoder_t1 if shared_encoder else VGG16Features(per_date, vgg)
        self.shared_encoder = bool(shared_encoder)
        self.sa = SpatialAttention(7)
        self.stages, self.ups = nn.ModuleList(), nn.ModuleList()
        prev = 0
        for k, widths in enumerate(DSIFN_DECODER):
            stage = DSIFNStage(prev + 2 * vgg[4 - k], scale_widths(widths, width), channel_attention=k > 0)
            self.stages.append(stage)
            prev = stage.out_channels
            if k < len(DSIFN_DECODER) - 1:
                self.ups.append(nn.ConvTranspose2d(prev, prev, 2, stride=2))

    def deep_supervision_targets(self) -> dict[str, str]:
        """``Supervised(targets=...)`` for the deep-supervision loss: every output -> ``change``."""
        return {k: "change" for k in self.output_keys}

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W), "change_side1".."change_side4": deep-supervision logits}`` (same shape)."""
        t1, t2 = read_dates(self, batch)
        (t1, size), (t2, _) = pad_to_multiple(t1, 16), pad_to_multiple(t2, 16)
        f1, f2 = self.encoder_t1(t1), self.encoder_t2(t2)
        sides, x = [], None
        for k, stage in enumerate(self.stages):
            level = 4 - k
            parts = [f1[level], f2[level]] if x is None else [self.ups[k - 1](x), f1[level], f2[level]]
            x, side = stage(torch.cat(parts, dim=1), self.sa)
            sides.append(side)
        full = t1.shape[-2:]
        out = {"change": crop_to(sides[-1], size)}
        for k, side in enumerate(sides[:-1], start=1):
            out[f"change_side{k}"] = crop_to(F.interpolate(side, size=full, mode="nearest"), size)
        return out
