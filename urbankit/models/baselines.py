"""The networks of the VHR comparison table of the HDANet paper (HDANet, Wang et al. 2022), all native torch.

Earlier versions built UNet++ and DeepLabV3 through ``segmentation_models_pytorch``; it needs
torchvision, which cannot be imported beside the CPU torch wheel the kit is tested with, so every
network is now written in plain torch in its own module. :data:`VHR_TABLE` lists the ten rows of
the HDANet comparison table in its order, with the registry name, the change-detection form, the
canonical parameter count (and where it comes from) and the bib key.

All are trained **from scratch** in the kit: ImageNet weights cannot be downloaded here (and do
not fit SAR or 13-band inputs anyway). :func:`urbankit.models.registry.load_weights` loads a
state dict from a local file into a model or one of its parts (e.g. ``model.encoder``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableRow:
    """One row of the HDANet comparison table.

    Attributes:
        label: the row label of the HDANet comparison table (e.g. ``"DeepLab V3"``).
        model: the registry name (``build(model)`` gives the paper-size network).
        form: the change-detection form: ``early fusion`` (both dates stacked along channels,
            one single-stream network) or ``Siamese`` (one encoder per date, shared weights,
            features compared), or ``two-stream`` (one encoder per date, weights not shared).
        canonical_params: parameters of the canonical implementation (RGB pairs, paper size).
        canonical_source: where that number comes from.
        paper: bib key in ``book/references.bib``.
        canonical_part: the attribute of the model the canonical count refers to (``""`` = the
            whole model; ``"backbone"`` for Siam-HRNet, whose head has no canonical form).
    """

    label: str
    model: str
    form: str
    canonical_params: int
    canonical_source: str
    paper: str
    canonical_part: str = ""


#: The HDANet comparison table, in its row order (LEVIR-CD, SYSU-CD and WHU-building tables).
VHR_TABLE: tuple[TableRow, ...] = (
    TableRow("FC_EF", "fc_ef", "early fusion", 1_351_000,
             "Daudt et al. 2018 code, 3 bands (BIT table: 1.35 M)", "daudt2018fcsiam"),
    TableRow("FC_Siam_conc", "fc_siam_conc", "Siamese", 1_546_000,
             "Daudt et al. 2018 code, 3 bands (BIT table: 1.55 M)", "daudt2018fcsiam"),
    TableRow("FC_Siam_diff", "fc_siam_diff", "Siamese", 1_350_000,
             "Daudt et al. 2018 code, 3 bands (BIT table: 1.35 M)", "daudt2018fcsiam"),
    TableRow("SegNet", "segnet", "early fusion", 29_500_000,
             "Badrinarayanan et al. 2017, Table 6 (29.5 M)", "badrinarayanan2017segnet"),
    TableRow("DeepLab V3", "deeplabv3", "early fusion", 39_638_869,
             "torchvision deeplabv3_resnet50 without the auxiliary head (42,004,074 - 2,365,205)",
             "chen2017deeplabv3"),
    TableRow("DSIFN", "dsifn", "two-stream", 50_709_109,
             "authors' PyTorch DSIFN.py, two VGG16 streams (BIT table: 50.71 M)", "zhang2020dsifn"),
    TableRow("STANet", "stanet", "Siamese", 16_929_152,
             "authors' code, STANet-PAM with ResNet-18 (BIT table: 16.93 M)", "chen2020levir"),
    TableRow("Unet++", "unetpp", "early fusion", 9_042_276,
             "Zhou et al. 2018, Table 1 (9.04 M; their Keras code: 9,042,276)", "zhou2018unetpp"),
    TableRow("Siam_HRNet", "siam_hrnet", "Siamese", 3_860_720,
             "official HRNet-W18-small-v2 backbone without its classifier (the head is the kit's)",
             "sun2019hrnet", canonical_part="backbone"),
    TableRow("HDANet", "hdanet", "Siamese", 0,
             "no public code: no canonical count (kit: ASPP + DAM, no CBAM)", "wang2022hdanet"),
)


def vhr_table_rows() -> list[str]:
    """The registry names of the HDANet comparison table, in its row order."""
    return [r.model for r in VHR_TABLE]
