"""Daudt, Le Saux, Boulch (ICIP 2018): FC-EF, FC-Siam-conc and FC-Siam-diff.

Three small fully convolutional change detectors trained from scratch:

- **FC-EF** (``fc_ef``): the two dates stacked along channels (early fusion), one U-Net-like
  encoder/decoder with plain skips.
- **FC-Siam-conc** (``fc_siam_conc``): one encoder with shared weights applied to each date;
  at every level the decoder concatenates [upsampled, skip(t1), skip(t2)].
- **FC-Siam-diff** (``fc_siam_diff``): as conc, but the skip is the absolute difference
  |skip(t1) - skip(t2)| (``diff="abs"``, the paper) or the signed t2 - t1 (``diff="signed"``).

As in the authors' code, the Siamese decoders upsample the *t2* stream's bottleneck (the
pooled stage-4 features of the second date); hence FC-Siam-diff is symmetric in t1/t2 at the
skips but not exactly at the bottleneck.

**Output.** The original ends with a 2-channel conv and log-softmax (no-change, change) and
is trained with a class-weighted NLL loss. The last conv keeps its 2 channels here, and the
model returns ``change`` = logit_1 - logit_0 (B, 1, H, W). Since
softmax([z0, z1])[1] = 1 / (1 + exp(z0 - z1)) = sigmoid(z1 - z0), ``sigmoid(change)`` equals the
class-1 softmax probability and thresholding it at 0.5 equals the argmax: the model shares the
binary-logit interface of the whole zoo. :meth:`FCBase.two_class_logits` gives the raw
(B, 2, H, W) output for the faithful log-softmax + NLL recipe.

Any input size works (the decoder replication-pads to the skip sizes, as the original).
Default: 13 Sentinel-2 bands per date (OSCD); ``width`` multiplies the (16, 32, 64, 128) widths.
Parameter counts (13 bands): FC-EF 1.353 M, FC-Siam-conc 1.547 M, FC-Siam-diff 1.352 M.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from ..errors import ConfigError
from .blocks import (
    FC_WIDTHS,
    ChangeModel,
    FCDecoder,
    FCEncoder,
    check_channels,
    check_modality,
    feature_difference,
    modality_keys,
    scale_widths,
)


class FCBase(ChangeModel):
    """Shared constructor of the three FC networks (see the module docstring).

    Args:
        modality: ``optical`` (default; reads optical_t1/optical_t2), ``sar`` or ``fusion``
            (SAR and optical of one date stacked, SAR first).
        optical_channels, sar_channels: bands per date (default 13 S2 bands; 2 SAR).
        width: multiplier of the widths (16, 32, 64, 128).
        dropout: Dropout2d probability after every conv (0.2 in the paper's code).
    """

    skip_parts = 1
    early_fusion = False
    pad_multiple = 16

    def __init__(self, modality: str = "optical", optical_channels: int = 13, sar_channels: int = 2,
                 width: float = 1.0, dropout: float = 0.2):
        super().__init__()
        self.modality = check_modality(modality, self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        check_channels(sar_channels, "sar_channels", self.name)
        per = {"sar": sar_channels, "optical": optical_channels}
        self.widths = scale_widths(FC_WIDTHS, width)
        channels = {k: per[k.split("_")[0]] for d in ("t1", "t2") for k in modality_keys(modality, d)}
        self._set_inputs(channels, ["change"])
        per_date = sum(per[k.split("_")[0]] for k in modality_keys(modality, "t1"))
        in_ch = 2 * per_date if self.early_fusion else per_date
        self.encoder = FCEncoder(in_ch, self.widths, dropout)
        self.decoder = FCDecoder(self.widths, skip_parts=self.skip_parts, n_classes=2, dropout=dropout)

    def _dates(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        return (self.read(batch, modality_keys(self.modality, "t1")),
                self.read(batch, modality_keys(self.modality, "t2")))

    def two_class_logits(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The original 2-class output (B, 2, H, W): channel 0 = no change, 1 = change.

        Apply ``torch.log_softmax(..., dim=1)`` and a (weighted) NLL loss to train as in the paper.
        """
        raise NotImplementedError

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W)}``: the change logit z1 - z0 of the two-class output."""
        z = self.two_class_logits(batch)
        return {"change": z[:, 1:2] - z[:, 0:1]}


class FCEF(FCBase):
    """FC-EF: concat(t1, t2) along channels -> encoder -> decoder with plain skips."""

    name = "fc_ef"
    early_fusion = True

    def two_class_logits(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, 2, H, W) two-class logits of both dates stacked along channels."""
        x = self.read(batch, self.input_keys)  # t1 keys then t2 keys
        skips, bottleneck = self.encoder(x)
        return self.decoder(bottleneck, [[s] for s in skips])


class FCSiamConc(FCBase):
    """FC-Siam-conc: shared encoder per date; skip = concat(skip(t1), skip(t2))."""

    name = "fc_siam_conc"
    skip_parts = 2

    def two_class_logits(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, 2, H, W) two-class logits; skips of both dates concatenated."""
        x1, x2 = self._dates(batch)
        skips1, _ = self.encoder(x1)
        skips2, bottleneck2 = self.encoder(x2)
        return self.decoder(bottleneck2, [[a, b] for a, b in zip(skips1, skips2)])


class FCSiamDiff(FCBase):
    """FC-Siam-diff: shared encoder per date; skip = |skip(t1) - skip(t2)| (``diff="abs"``).

    Extra arg ``diff``: ``"abs"`` (paper, default) or ``"signed"`` (t2 - t1, as the KTH models).
    """

    name = "fc_siam_diff"

    def __init__(self, modality: str = "optical", optical_channels: int = 13, sar_channels: int = 2,
                 width: float = 1.0, dropout: float = 0.2, diff: str = "abs"):
        super().__init__(modality, optical_channels, sar_channels, width, dropout)
        if diff not in ("abs", "signed"):
            raise ConfigError(f"model {self.name!r}: diff must be 'abs' or 'signed', got {diff!r}")
        self.diff = diff

    def two_class_logits(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, 2, H, W) two-class logits; skips are the dates' feature difference."""
        x1, x2 = self._dates(batch)
        skips1, _ = self.encoder(x1)
        skips2, bottleneck2 = self.encoder(x2)
        return self.decoder(bottleneck2, [[feature_difference(a, b, self.diff)] for a, b in zip(skips1, skips2)])
