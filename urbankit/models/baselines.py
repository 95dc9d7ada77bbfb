"""Library baselines: UNet++ and DeepLabV3 from ``segmentation_models_pytorch`` (smp).

Both are used as **early-fusion** change detectors: the two dates are stacked along channels
(t1 bands, then t2 bands) and a single-logit segmentation network predicts the change
(UNet++: Zhou et al. 2018; DeepLabV3: Chen et al. 2017). Encoders are trained from scratch
(``encoder_weights=None``: the kit never downloads weights at run time, and ImageNet weights
do not fit 13-band or SAR inputs anyway).

smp is an optional extra (``pip install "urbankit[baselines]"`` or
``pip install segmentation-models-pytorch``). It needs torchvision, which may be missing: then
building these models raises :class:`urbankit.errors.ConfigError` saying what to install.
The import happens only when such a model is built, so the rest of the zoo never needs smp.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from torch import Tensor, nn

from ..errors import ConfigError
from .blocks import (
    ChangeModel,
    check_channels,
    check_modality,
    crop_to,
    modality_keys,
    pad_to_multiple,
    scale_widths,
)

INSTALL_HINT = 'pip install segmentation-models-pytorch  (or pip install "urbankit[baselines]")'


def import_smp(model: str) -> ModuleType:
    """Import segmentation_models_pytorch or raise ConfigError with the install command."""
    try:
        import segmentation_models_pytorch as smp
    except Exception as exc:  # ImportError, or a broken torchvision import inside smp
        raise ConfigError(
            f"model {model!r} comes from segmentation_models_pytorch, which is not importable "
            f"here ({type(exc).__name__}: {exc}); install it with: {INSTALL_HINT}"
        ) from exc
    return smp


class SMPEarlyFusion(ChangeModel):
    """An smp segmentation network on concat(t1, t2) -> ``{"change": (B, 1, H, W)}``.

    Args:
        modality: ``optical`` (default), ``sar`` or ``fusion``.
        optical_channels, sar_channels: bands per date (default 3 = RGB, e.g. LEVIR-CD).
        encoder_name: smp encoder (default ``resnet34``), trained from scratch.
        width: multiplier of the decoder widths (UNet++: 256/128/64/32/16; DeepLabV3: 256).

    Inputs of any size are padded (replicate) to a multiple of 32 and the output is cropped back.
    """

    arch = ""
    pad_multiple = 32

    def __init__(self, modality: str = "optical", optical_channels: int = 3, sar_channels: int = 2,
                 encoder_name: str = "resnet34", width: float = 1.0):
        super().__init__()
        self.modality = check_modality(modality, self.name)
        check_channels(optical_channels, "optical_channels", self.name)
        check_channels(sar_channels, "sar_channels", self.name)
        per = {"sar": sar_channels, "optical": optical_channels}
        channels = {k: per[k.split("_")[0]] for d in ("t1", "t2") for k in modality_keys(modality, d)}
        self._set_inputs(channels, ["change"])
        smp = import_smp(self.name)
        self.net = self._make(smp, sum(channels.values()), encoder_name, width)

    def _make(self, smp: ModuleType, in_ch: int, encoder_name: str, width: float) -> nn.Module:
        raise NotImplementedError

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        x, size = pad_to_multiple(self.read(batch, self.input_keys), self.pad_multiple)
        return {"change": crop_to(self.net(x), size)}


class UNetPlusPlusEF(SMPEarlyFusion):
    """UNet++ (Zhou et al. 2018, smp ``UnetPlusPlus``) as an early-fusion change detector."""

    name = "unetpp"

    def _make(self, smp: ModuleType, in_ch: int, encoder_name: str, width: float) -> nn.Module:
        return smp.UnetPlusPlus(encoder_name=encoder_name, encoder_weights=None, in_channels=in_ch, classes=1,
                                decoder_channels=scale_widths([256, 128, 64, 32, 16], width))


class DeepLabV3EF(SMPEarlyFusion):
    """DeepLabV3 (Chen et al. 2017, smp ``DeepLabV3``) as an early-fusion change detector."""

    name = "deeplabv3"

    def _make(self, smp: ModuleType, in_ch: int, encoder_name: str, width: float) -> nn.Module:
        return smp.DeepLabV3(encoder_name=encoder_name, encoder_weights=None, in_channels=in_ch, classes=1,
                             decoder_channels=scale_widths([256], width)[0])
