"""Siamese-difference U-Nets of Hafner, Ban, Nascetti (IGARSS 2022).

- :class:`SiamDiff` (``siamdiff``, the code's ``SiameseUNet``): one Hafner encoder with shared
  weights applied to t1 and t2; at each of the 5 levels the decoder receives the signed
  difference f(t2) - f(t1) (``diff="signed"``, KTH code; ``"abs"`` gives |f(t1) - f(t2)|);
  OutConv -> ``change``. 14.79 M parameters for 3 bands at the default topology.
- :class:`SiamDiffDualTask` (``siamdiff_dt``, the code's ``DualTaskSiameseUNet``): adds a
  semantic decoder, shared between the dates, segmenting buildings at t1 and t2 from f(t1)
  and f(t2) (one shared OutConv), and a 1x1 conv on concat(s1, s2) (2 -> 1) giving the
  "semantic change" logit used by the dual-task consistency loss. 20.17 M parameters (3 bands).

Outputs (logits, (B, 1, H, W)): ``change``; for the dual-task model also ``buildings_t1``,
``buildings_t2`` and ``change_semantic`` (the change derived from the two building logits).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .blocks import (
    DEFAULT_TOPOLOGY,
    ChangeModel,
    Decoder,
    Encoder,
    OutConv,
    check_channels,
    check_modality,
    feature_difference,
    modality_keys,
    scale_widths,
)


class SiamDiff(ChangeModel):
    """Siamese-difference U-Net for bi-temporal change detection.

    Args:
        modality: ``optical`` (default: SpaceNet 7 RGB, ``optical_channels=3``), ``sar`` or
            ``fusion`` (SAR and optical of one date stacked at the input).
        optical_channels, sar_channels: bands per date.
        topology, width: encoder widths (default [64,128,256,512]) and their multiplier.
        diff: ``signed`` (f(t2) - f(t1), default, KTH code) or ``abs``.

    forward(batch) -> {"change": (B, 1, H, W)}.
    """

    name = "siamdiff"

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 topology: Sequence[int] = DEFAULT_TOPOLOGY, width: float = 1.0, diff: str = "signed"):
        super().__init__()
        self.modality = check_modality(modality, self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        check_channels(sar_channels, "sar_channels", self.name)
        if diff not in ("signed", "abs"):
            raise ConfigError(f"model {self.name!r}: diff must be 'signed' or 'abs', got {diff!r}")
        self.diff = diff
        self.topology = scale_widths(topology, width)
        per = {"sar": sar_channels, "optical": optical_channels}
        channels = {k: per[k.split("_")[0]] for d in ("t1", "t2") for k in modality_keys(modality, d)}
        in_ch = sum(per[k.split("_")[0]] for k in modality_keys(modality, "t1"))
        self._set_inputs(channels, self._outputs())
        self.encoder = Encoder(in_ch, self.topology)
        self.change_decoder = Decoder(self.topology)
        self.change_outc = OutConv(self.topology[0], 1)
        self.pad_multiple = 2 ** len(self.topology)
        self._build_extra()

    def _outputs(self) -> list[str]:
        return ["change"]

    def _build_extra(self) -> None:
        pass

    def encode(self, batch: Mapping[str, Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Shared encoder on both dates -> (features t1, features t2), each deepest first."""
        f1 = self.encoder(self.read(batch, modality_keys(self.modality, "t1")))
        f2 = self.encoder(self.read(batch, modality_keys(self.modality, "t2")))
        return f1, f2

    def _change(self, f1: list[Tensor], f2: list[Tensor]) -> Tensor:
        diffs = [feature_difference(a, b, self.diff) for a, b in zip(f1, f2)]
        return self.change_outc(self.change_decoder(diffs))

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W) logits}`` from the difference of the dates' encoder features."""
        f1, f2 = self.encode(batch)
        return {"change": self._change(f1, f2)}


class SiamDiffDualTask(SiamDiff):
    """Dual-task Siam-Diff: change decoder + a semantic (building) decoder shared across dates.

    Same arguments as :class:`SiamDiff`.

    forward(batch) -> {"change", "buildings_t1", "buildings_t2", "change_semantic"}, each
    (B, 1, H, W) logits; ``change_semantic`` = conv1x1(concat(buildings_t1, buildings_t2)).
    """

    name = "siamdiff_dt"

    def _outputs(self) -> list[str]:
        return ["change", "buildings_t1", "buildings_t2", "change_semantic"]

    def _build_extra(self) -> None:
        self.semantic_decoder = Decoder(self.topology)
        self.semantic_outc = OutConv(self.topology[0], 1)
        self.semantic_change = nn.Conv2d(2, 1, kernel_size=1)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Change, ``buildings_t1``/``buildings_t2`` and ``change_semantic`` logits, each (B, 1, H, W)."""
        f1, f2 = self.encode(batch)
        s1 = self.semantic_outc(self.semantic_decoder(f1))
        s2 = self.semantic_outc(self.semantic_decoder(f2))
        return {
            "change": self._change(f1, f2),
            "buildings_t1": s1,
            "buildings_t2": s2,
            "change_semantic": self.semantic_change(torch.cat([s1, s2], dim=1)),
        }
