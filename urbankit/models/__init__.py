"""The urbankit model zoo: every network of the seed, in plain PyTorch.

Use the registry::

    from urbankit.models import build, list_models
    model = build("siamdiff_dt", optical_channels=3, width=0.25)
    outputs = model(batch)          # dict of logits, each (B, 1, H, W)
    list_models()                   # a DataFrame: name, inputs, outputs, params, paper

Every model reads the batch dict of CONTRIBUTING.md (``model.input_keys``) and returns a dict
of **logits** (``model.output_keys``): ``change``, ``buildings_t1``, ``buildings_t2``,
``change_semantic`` (dual-task models: the change derived from the two building maps), and
per-modality heads ``buildings_t1_sar`` / ``_optical`` / ``_fusion``. All take a ``width``
multiplier (1.0 = the paper's size) and any number of bands per modality.

| name | paper | module |
|---|---|---|
| ``unet``, ``unet_ef``, ``dsunet`` | Ronneberger 2015; Hafner 2022 (GRSL) | :mod:`.unet` |
| ``fc_ef``, ``fc_siam_conc``, ``fc_siam_diff`` | Daudt 2018 (ICIP) | :mod:`.fc` |
| ``siamdiff``, ``siamdiff_dt`` | Hafner 2022 (IGARSS) | :mod:`.siamese` |
| ``mm_siamdiff``, ``mmcr_net`` | Hafner 2023 (Remote Sensing) | :mod:`.multimodal` |
| ``fusionda_net`` | Hafner 2022 (RSE) | :mod:`.multimodal` |
| ``hdanet``, ``siam_hrnet`` | Wang 2022 (JAG); its Siam-HRNet baseline | :mod:`.hdanet` |
| ``segnet`` | Badrinarayanan 2017 (early fusion) | :mod:`.segnet` |
| ``deeplabv3`` | Chen 2017, ResNet-50, output stride 8 (early fusion) | :mod:`.deeplab` |
| ``unetpp`` | Zhou 2018 (early fusion) | :mod:`.unetpp` |
| ``dsifn`` | Zhang 2020 (two-stream, deep supervision) | :mod:`.dsifn` |
| ``stanet`` | Chen & Shi 2020 (Siamese, metric + BCL) | :mod:`.stanet` |

:mod:`.baselines` lists the VHR comparison table of the HDANet paper (forms, canonical parameter counts);
:func:`load_weights` loads a local state dict (weights are never downloaded).
"""
from __future__ import annotations

from .baselines import VHR_TABLE
from .blocks import ChangeModel
from .deeplab import DeepLabV3EF
from .dsifn import DSIFN
from .ensemble import FlipAverage, ProbabilityEnsemble
from .fc import FCEF, FCSiamConc, FCSiamDiff
from .hdanet import ABLATION_ROWS, HDANet, SiamHRNet, ablation_models
from .multimodal import FusionDANet, MMCRNet, MultiModalSiamDiff
from .registry import (
    NOT_YET_AVAILABLE,
    ModelSpec,
    available_models,
    build,
    count_parameters,
    list_models,
    load_weights,
    model_parameters,
    register,
)
from .segnet import SegNetEF
from .siamese import SiamDiff, SiamDiffDualTask
from .stanet import STANet
from .unet import DualStreamUNet, UNet, UNetEF
from .unetpp import UNetPlusPlusEF

__all__ = [
    "ABLATION_ROWS",
    "DSIFN",
    "FCEF",
    "NOT_YET_AVAILABLE",
    "ChangeModel",
    "DeepLabV3EF",
    "DualStreamUNet",
    "FCSiamConc",
    "FCSiamDiff",
    "FusionDANet",
    "HDANet",
    "MMCRNet",
    "ModelSpec",
    "MultiModalSiamDiff",
    "ProbabilityEnsemble",
    "FlipAverage",
    "STANet",
    "SegNetEF",
    "SiamDiff",
    "SiamDiffDualTask",
    "SiamHRNet",
    "UNet",
    "UNetEF",
    "UNetPlusPlusEF",
    "VHR_TABLE",
    "ablation_models",
    "available_models",
    "build",
    "count_parameters",
    "list_models",
    "load_weights",
    "model_parameters",
    "register",
]

_SPECS = [
    ModelSpec("unet", UNet, "single-date U-Net (S1, S2 or input-level fusion) for built-up mapping",
              "ronneberger2015unet"),
    ModelSpec("unet_ef", UNetEF, "early-fusion U-Net change detector (both dates stacked; S1, S2 or S1+S2)",
              "hafner2022dsunet"),
    ModelSpec("dsunet", DualStreamUNet, "Dual-Stream U-Net: one U-Net per sensor, decision-level fusion",
              "hafner2022dsunet"),
    ModelSpec("fc_ef", FCEF, "FC-EF: fully convolutional early fusion", "daudt2018fcsiam"),
    ModelSpec("fc_siam_conc", FCSiamConc, "FC-Siam-conc: Siamese encoder, concatenated skips", "daudt2018fcsiam"),
    ModelSpec("fc_siam_diff", FCSiamDiff, "FC-Siam-diff: Siamese encoder, difference skips", "daudt2018fcsiam"),
    ModelSpec("siamdiff", SiamDiff, "Siam-Diff U-Net: shared encoder, signed feature differences",
              "hafner2022siamssl"),
    ModelSpec("siamdiff_dt", SiamDiffDualTask, "dual-task Siam-Diff: change + building decoders",
              "hafner2022siamssl"),
    ModelSpec("mm_siamdiff", MultiModalSiamDiff, "multi-modal Siam-Diff: S1 and S2 encoders, fused differences",
              "hafner2023mmcr"),
    ModelSpec("mmcr_net", MMCRNet, "dual-task late-fusion Siamese network for MMCR (S1 + S2)", "hafner2023mmcr"),
    ModelSpec("fusionda_net", FusionDANet, "Fusion-DA: light S1 and S2 U-Nets with SAR/optical/fusion heads",
              "hafner2022fusionda"),
    ModelSpec("hdanet", HDANet, "HDANet: Siamese HRNet + difference attention (DAM) + ASPP, the paper's model",
              "wang2022hdanet"),
    ModelSpec("siam_hrnet", SiamHRNet, "Siam-HRNet: Siamese HRNet, plain differences (HDANet's baseline row)",
              "sun2019hrnet"),
    ModelSpec("segnet", SegNetEF, "SegNet (VGG16-BN, pooling indices), early fusion of both dates",
              "badrinarayanan2017segnet"),
    ModelSpec("deeplabv3", DeepLabV3EF, "DeepLabV3 (ResNet-50, output stride 8, ASPP), early fusion",
              "chen2017deeplabv3"),
    ModelSpec("unetpp", UNetPlusPlusEF, "UNet++ (nested skips, deep supervision), early fusion",
              "zhou2018unetpp"),
    ModelSpec("dsifn", DSIFN, "DSIFN: two VGG16 streams, attention fusion, deep supervision",
              "zhang2020dsifn"),
    ModelSpec("stanet", STANet, "STANet-PAM: Siamese ResNet-18, pyramid attention, metric distance (BCL)",
              "chen2020levir"),
]
for _spec in _SPECS:
    register(_spec)
del _spec
