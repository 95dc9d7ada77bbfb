"""The Hafner U-Net family: single-date U-Net, early-fusion U-Net and the Dual-Stream U-Net.

- :class:`UNet` (registry ``unet``): single-date built-up segmentation from S1, S2 or both
  stacked at the input (the supervised baselines of Fusion-DA, Hafner et al. 2022 RSE;
  Ronneberger et al. 2015 in the variant of the KTH papers' public code).
- :class:`UNetEF` (``unet_ef``): change detection with both dates stacked along channels
  (early fusion); with S1+S2 this is the "input-level fusion" baseline of the DS U-Net paper.
- :class:`DualStreamUNet` (``dsunet``): Hafner et al. 2022 (GRSL): one U-Net
  stream per sensor (each stacks t1 and t2), their 64-channel last feature maps concatenated
  and a 1x1 conv producing the change logit (decision-level fusion).

All accept any number of bands per modality and any input size (the decoder zero-pads the
upsampled maps to the skip sizes). ``topology`` sets the widths; ``width`` multiplies them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from .blocks import (
    DEFAULT_TOPOLOGY,
    ChangeModel,
    OutConv,
    UNetFeatures,
    check_channels,
    check_modality,
    modality_keys,
    scale_widths,
)


def _channels_for(modality: str, date: str, sar_channels: int, optical_channels: int) -> dict[str, int]:
    per = {"sar": sar_channels, "optical": optical_channels}
    return {key: per[key.split("_")[0]] for key in modality_keys(modality, date)}


def check_dates(dates: Sequence[str], model: str) -> tuple[str, ...]:
    """The single-date models' ``dates`` as a tuple: a non-empty subset of ``("t1", "t2")``.

    Raises:
        ConfigError: naming ``model`` for anything else.
    """
    dates = tuple(dates)
    if not dates or any(d not in ("t1", "t2") for d in dates) or len(set(dates)) != len(dates):
        raise ConfigError(f"model {model!r}: dates must be a non-empty subset of ('t1', 't2'), got {dates!r}")
    return dates


#: Encoder widths of the Fusion-DA paper's lightweight U-Net (two poolings).
FUSION_DA_TOPOLOGY = (64, 128)


class UNet(ChangeModel):
    """Single-date U-Net for built-up / building segmentation.

    Args:
        modality: ``sar`` (reads ``sar_t1``), ``optical`` (``optical_t1``) or ``fusion``
            (``sar_t1`` and ``optical_t1`` stacked at the input, SAR first).
        sar_channels, optical_channels: bands per modality (default 2 = VV, VH and 10 S2 bands,
            as in SEN12_GUM / Fusion-DA).
        topology: encoder widths; ``width`` multiplies them. Default [64, 128], the lightweight
            U-Net of the Fusion-DA paper's single-sensor and input-fusion baselines (Hafner et al.
            2022, RSE; 0.94 M parameters with 10 optical bands). Pass ``topology=(64, 128, 256,
            512)`` for the classic four-level U-Net (14.8 M).
        dates: which dates to segment, each with the same network: ``("t1",)`` (default) or
            ``("t1", "t2")`` (reads the t2 keys as well).

    Input: batch[key] (B, C, H, W) for each input key. Output: ``{"buildings_t1": (B, 1, H, W)}``
    logits (plus ``buildings_t2`` when asked).
    """

    name = "unet"

    def __init__(self, modality: str = "optical", sar_channels: int = 2, optical_channels: int = 10,
                 topology: Sequence[int] = FUSION_DA_TOPOLOGY, width: float = 1.0, dates: Sequence[str] = ("t1",)):
        super().__init__()
        self.modality = check_modality(modality, self.name)
        check_channels(sar_channels, "sar_channels", self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        self.dates = check_dates(dates, self.name)
        self.topology = scale_widths(topology, width)
        channels: dict[str, int] = {}
        for d in self.dates:
            channels.update(_channels_for(modality, d, sar_channels, optical_channels))
        in_ch = sum(_channels_for(modality, "t1", sar_channels, optical_channels).values())
        self._set_inputs(channels, [f"buildings_{d}" for d in self.dates])
        self.features = UNetFeatures(in_ch, self.topology)
        self.outc = OutConv(self.topology[0], 1)
        self.pad_multiple = 2 ** len(self.topology)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"buildings_<d>": (B, 1, H, W) logits}`` for each date ``d`` of the model."""
        out = {}
        for d in self.dates:
            x = self.read(batch, modality_keys(self.modality, d))
            out[f"buildings_{d}"] = self.outc(self.features(x))
        return out


class UNetEF(ChangeModel):
    """Early-fusion change-detection U-Net: both dates stacked along channels, one U-Net.

    Args:
        modality: ``sar`` -> [sar_t1, sar_t2]; ``optical`` -> [optical_t1, optical_t2];
            ``fusion`` -> [sar_t1, sar_t2, optical_t1, optical_t2] (input-level fusion, the
            DS U-Net paper's "U-Net fusion (input level)" baseline).
        sar_channels, optical_channels: bands per date (default 1 = VV and 13 OSCD bands, so the
            default optical model has 26 input channels and 14.80 M parameters).
        topology, width: see :class:`UNet`.

    Output: ``{"change": (B, 1, H, W)}`` logits.
    """

    name = "unet_ef"

    def __init__(self, modality: str = "optical", sar_channels: int = 1, optical_channels: int = 13,
                 topology: Sequence[int] = DEFAULT_TOPOLOGY, width: float = 1.0):
        super().__init__()
        self.modality = check_modality(modality, self.name)
        check_channels(sar_channels, "sar_channels", self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        self.topology = scale_widths(topology, width)
        mods = ["sar", "optical"] if modality == "fusion" else [modality]
        per = {"sar": sar_channels, "optical": optical_channels}
        channels = {f"{m}_{d}": per[m] for m in mods for d in ("t1", "t2")}
        self._set_inputs(channels, ["change"])
        self.features = UNetFeatures(sum(channels.values()), self.topology)
        self.outc = OutConv(self.topology[0], 1)
        self.pad_multiple = 2 ** len(self.topology)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W) logits}`` of both dates stacked along channels."""
        x = self.read(batch, self.input_keys)
        return {"change": self.outc(self.features(x))}


class DualStreamUNet(ChangeModel):
    """Dual-Stream U-Net (Hafner, Nascetti, Azizpour, Ban 2022, GRSL).

    SAR stream: U-Net on concat(sar_t1, sar_t2); optical stream: U-Net on
    concat(optical_t1, optical_t2); each stream ends with its 64-channel decoder output
    (no OutConv); the fusion head is a 1x1 conv on concat(SAR features, optical features)
    (128 -> 1). Defaults (1 SAR band = VV, 13 S2 bands, topology [64,128,256,512]) give
    29.59 M parameters, the paper's "approximately 30 million".

    Output: ``{"change": (B, 1, H, W)}`` logits.
    """

    name = "dsunet"

    def __init__(self, sar_channels: int = 1, optical_channels: int = 13,
                 topology: Sequence[int] = DEFAULT_TOPOLOGY, width: float = 1.0):
        super().__init__()
        check_channels(sar_channels, "sar_channels", self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        self.topology = scale_widths(topology, width)
        self._set_inputs(
            {"sar_t1": sar_channels, "sar_t2": sar_channels, "optical_t1": optical_channels,
             "optical_t2": optical_channels},
            ["change"],
        )
        self.sar_stream = UNetFeatures(2 * sar_channels, self.topology)
        self.optical_stream = UNetFeatures(2 * optical_channels, self.topology)
        self.outc = OutConv(2 * self.topology[0], 1)
        self.pad_multiple = 2 ** len(self.topology)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"change": (B, 1, H, W)}`` from a SAR and an optical stream (both dates each)."""
        sar = self.sar_stream(self.read(batch, ["sar_t1", "sar_t2"]))
        optical = self.optical_stream(self.read(batch, ["optical_t1", "optical_t2"]))
        return {"change": self.outc(torch.cat([sar, optical], dim=1))}
