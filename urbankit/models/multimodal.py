"""Multi-modal (Sentinel-1 SAR + Sentinel-2 optical) networks of the KTH group.

- :class:`MultiModalSiamDiff` (``mm_siamdiff``): Hafner, Ban, Nascetti (Remote Sensing 2023),
  the supervised baseline ``MultiModalSiameseUnet``: a SAR encoder and an
  optical encoder, each shared across dates; at each level the signed differences of both
  are concatenated and one change decoder with doubled widths ([128,256,512,1024]) produces
  the change logit (1x1 conv, 128 -> 1). 40.33 M parameters (2 SAR + 4 optical bands).
- :class:`MMCRNet` (``mmcr_net``): the same paper's ``DualTaskLateFusionSiameseUnet`` used with
  multi-modal consistency regularisation (MMCR): one dual-task Siam-Diff per modality
  (encoder + change decoder + semantic decoder shared across dates); the change is predicted
  from concat(SAR change features, optical change features) by a 1x1 conv; buildings are
  predicted per modality (1x1 conv each) and fused (1x1 conv on the concatenated semantic
  features, shared across dates). 40.33 M parameters (2 SAR + 4 optical bands). The
  per-modality change heads of the authors' code are unused there and omitted here.
- :class:`FusionDANet` (``fusionda_net``): Hafner, Ban, Nascetti (RSE 2022):
  single-date built-up mapping with a lightweight U-Net per modality (topology [64,128]), a
  SAR head, an optical head and a fusion head on the concatenated features. 1.87 M parameters
  (2 SAR + 10 optical bands). At inference the fusion head is used.

All logits are (B, 1, H, W) at the input resolution; any input size works.
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
    UNetFeatures,
    check_channels,
    feature_difference,
    scale_widths,
)
from .unet import check_dates


def _check_bimodal(model: ChangeModel, sar_channels: int, optical_channels: int, topology: Sequence[int],
                   width: float, diff: str) -> str:
    """Check a SAR + optical Siamese model's arguments, set its scaled ``topology``; returns ``diff``."""
    check_channels(sar_channels, "sar_channels", model.name)
    check_channels(optical_channels, "optical_channels", model.name)
    model.topology = scale_widths(topology, width)
    return _check_diff(diff, model.name)


def _check_diff(diff: str, model: str) -> str:
    if diff not in ("signed", "abs"):
        raise ConfigError(f"model {model!r}: diff must be 'signed' or 'abs', got {diff!r}")
    return diff


def _bitemporal_channels(sar_channels: int, optical_channels: int) -> dict[str, int]:
    return {"sar_t1": sar_channels, "sar_t2": sar_channels, "optical_t1": optical_channels,
            "optical_t2": optical_channels}


class MultiModalSiamDiff(ChangeModel):
    """Multi-modal Siam-Diff (supervised baseline of the MMCR paper).

    Args:
        sar_channels, optical_channels: bands per date (default 2 = VV, VH; 4 = B4, B3, B2, B8).
        topology, width: encoder widths (default [64,128,256,512]) and their multiplier; the
            change decoder uses twice these widths.
        diff: ``signed`` (f(t2) - f(t1), KTH code, default) or ``abs``.

    forward(batch) -> {"change": (B, 1, H, W)}.
    """

    name = "mm_siamdiff"

    def __init__(self, sar_channels: int = 2, optical_channels: int = 4,
                 topology: Sequence[int] = DEFAULT_TOPOLOGY, width: float = 1.0, diff: str = "signed"):
        super().__init__()
        self.diff = _check_bimodal(self, sar_channels, optical_channels, topology, width, diff)
        self._set_inputs(_bitemporal_channels(sar_channels, optical_channels), ["change"])
        self.sar_encoder = Encoder(sar_channels, self.topology)
        self.optical_encoder = Encoder(optical_channels, self.topology)
        self.change_decoder = Decoder([2 * w for w in self.topology])
        self.change_outc = OutConv(2 * self.topology[0], 1)
        self.pad_multiple = 2 ** len(self.topology)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W)}`` from the SAR and optical Siamese differences."""
        s1, s2 = (self.sar_encoder(self.read(batch, [k])) for k in ("sar_t1", "sar_t2"))
        o1, o2 = (self.optical_encoder(self.read(batch, [k])) for k in ("optical_t1", "optical_t2"))
        fused = [
            torch.cat([feature_difference(a, b, self.diff), feature_difference(c, d, self.diff)], dim=1)
            for a, b, c, d in zip(s1, s2, o1, o2)
        ]
        return {"change": self.change_outc(self.change_decoder(fused))}


class _DualTaskStream(nn.Module):
    """One modality's dual-task Siam-Diff trunk (no output convs).

    forward(x_t1, x_t2) -> (change features, semantic features t1, semantic features t2), each
    (B, topology[0], H, W).
    """

    def __init__(self, in_ch: int, topology: Sequence[int], diff: str):
        super().__init__()
        self.diff = diff
        self.encoder = Encoder(in_ch, topology)
        self.change_decoder = Decoder(topology)
        self.semantic_decoder = Decoder(topology)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f1, f2 = self.encoder(x1), self.encoder(x2)
        change = self.change_decoder([feature_difference(a, b, self.diff) for a, b in zip(f1, f2)])
        return change, self.semantic_decoder(f1), self.semantic_decoder(f2)


class MMCRNet(ChangeModel):
    """Dual-task late-fusion Siamese network trained with MMCR.

    Args: as :class:`MultiModalSiamDiff`.

    forward(batch) -> logits (B, 1, H, W) under the keys
        ``change`` (fusion change head),
        ``buildings_t1_sar``, ``buildings_t1_optical``, ``buildings_t1_fusion`` (same for t2),
        and ``buildings_t1`` / ``buildings_t2`` = the fusion heads (the maps to use at inference;
        the same tensors as ``*_fusion``, so a loss must not count both).
    """

    name = "mmcr_net"

    def __init__(self, sar_channels: int = 2, optical_channels: int = 4,
                 topology: Sequence[int] = DEFAULT_TOPOLOGY, width: float = 1.0, diff: str = "signed"):
        super().__init__()
        diff = _check_bimodal(self, sar_channels, optical_channels, topology, width, diff)
        outputs = ["change"] + [f"buildings_{d}{s}" for d in ("t1", "t2") for s in ("", "_sar", "_optical", "_fusion")]
        self._set_inputs(_bitemporal_channels(sar_channels, optical_channels), outputs)
        w0 = self.topology[0]
        self.sar = _DualTaskStream(sar_channels, self.topology, diff)
        self.optical = _DualTaskStream(optical_channels, self.topology, diff)
        self.change_outc = OutConv(2 * w0, 1)
        self.sar_semantic_outc = OutConv(w0, 1)
        self.optical_semantic_outc = OutConv(w0, 1)
        self.fusion_semantic_outc = OutConv(2 * w0, 1)
        self.pad_multiple = 2 ** len(self.topology)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Change logits and the per-date built-up heads, each (B, 1, H, W).

        Keys: ``change``, ``buildings_t{1,2}`` and ``buildings_t{1,2}_{sar,optical,fusion}``.
        """
        sar_change, sar_s1, sar_s2 = self.sar(self.read(batch, ["sar_t1"]), self.read(batch, ["sar_t2"]))
        opt_change, opt_s1, opt_s2 = self.optical(self.read(batch, ["optical_t1"]), self.read(batch, ["optical_t2"]))
        out = {"change": self.change_outc(torch.cat([sar_change, opt_change], dim=1))}
        for date, sar_sem, opt_sem in (("t1", sar_s1, opt_s1), ("t2", sar_s2, opt_s2)):
            fusion = self.fusion_semantic_outc(torch.cat([sar_sem, opt_sem], dim=1))
            out[f"buildings_{date}"] = fusion
            out[f"buildings_{date}_sar"] = self.sar_semantic_outc(sar_sem)
            out[f"buildings_{date}_optical"] = self.optical_semantic_outc(opt_sem)
            out[f"buildings_{date}_fusion"] = fusion
        return out


class FusionDANet(ChangeModel):
    """Fusion-DA network: two lightweight U-Nets (SAR, optical) with three heads.

    Args:
        sar_channels, optical_channels: bands (default 2 = VV, VH; 10 S2 bands B2..B8A, B11, B12;
            ``optical_channels=4`` for the ``fusionda_10m`` variant).
        topology, width: per-stream widths (default [64, 128], two poolings) and multiplier.
        dates: which dates to map with the same network (default ``("t1",)``).

    forward(batch) -> for each date: ``buildings_t1`` (= the fusion head, the map to use),
    ``buildings_t1_sar``, ``buildings_t1_optical``, ``buildings_t1_fusion`` (B, 1, H, W) logits.
    """

    name = "fusionda_net"

    def __init__(self, sar_channels: int = 2, optical_channels: int = 10, topology: Sequence[int] = (64, 128),
                 width: float = 1.0, dates: Sequence[str] = ("t1",)):
        super().__init__()
        check_channels(sar_channels, "sar_channels", self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        self.dates = check_dates(dates, self.name)
        self.topology = scale_widths(topology, width)
        channels = {}
        for d in self.dates:
            channels.update({f"sar_{d}": sar_channels, f"optical_{d}": optical_channels})
        outputs = [f"buildings_{d}{s}" for d in self.dates for s in ("", "_sar", "_optical", "_fusion")]
        self._set_inputs(channels, outputs)
        w0 = self.topology[0]
        self.sar_stream = UNetFeatures(sar_channels, self.topology)
        self.optical_stream = UNetFeatures(optical_channels, self.topology)
        self.sar_outc = OutConv(w0, 1)
        self.optical_outc = OutConv(w0, 1)
        self.fusion_outc = OutConv(2 * w0, 1)
        self.pad_multiple = 2 ** len(self.topology)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per date: ``buildings_<d>`` (fusion) and the ``_sar``, ``_optical``, ``_fusion`` heads, each (B, 1, H, W)."""
        out = {}
        for d in self.dates:
            sar = self.sar_stream(self.read(batch, [f"sar_{d}"]))
            optical = self.optical_stream(self.read(batch, [f"optical_{d}"]))
            fusion = self.fusion_outc(torch.cat([sar, optical], dim=1))
            out[f"buildings_{d}"] = fusion
            out[f"buildings_{d}_sar"] = self.sar_outc(sar)
            out[f"buildings_{d}_optical"] = self.optical_outc(optical)
            out[f"buildings_{d}_fusion"] = fusion
        return out
