"""Training recipes of the VHR change-detection networks, each value with its source.

One plain dict per network (``VHR_RECIPES[name]``): the keys below, plus ``sources`` mapping
every key to where the value comes from (paper section, authors' code file, or the seed
slides). A value nobody published is ``None`` with its source saying so, or a kit default
marked ``[default]``. The general recipes module of the kit imports these dicts.

Keys: ``model`` (registry name), ``form`` (early fusion / Siamese / two-stream),
``pretrained`` (what the paper started from), ``optimizer``, ``lr``, ``momentum`` (SGD) or
``betas`` (Adam), ``weight_decay``, ``schedule``, ``epochs``, ``batch_size``, ``patch``,
``loss``, ``augmentation``, ``decision``.

**Every network is trained from scratch in the kit** (ImageNet weights cannot be downloaded
here, whatever the paper used); :func:`urbankit.models.registry.load_weights` loads a local
file. The HDANet comparison trained all its networks on 256 x 256 tiles with batch 4
(one GPU); the per-paper values below are the original authors' settings.
"""
from __future__ import annotations

import copy

from ..errors import ConfigError

_SEED = "course slides (HDANet comparison): 256 x 256 tiles, batch 4, RTX 3090"
_KIT = "kit default (the slides give none)"
_DAUDT = "Daudt et al. 2018 code (notebook)"

VHR_RECIPES: dict[str, dict] = {
    "fc_ef": dict(
        model="fc_ef", form="early fusion", pretrained=None, optimizer="adam", lr=1e-3, betas=(0.9, 0.999),
        weight_decay=1e-4, schedule="exponential, gamma 0.95 per epoch", epochs=50, batch_size=32, patch=96,
        loss="class-weighted NLL (w_change = 2(1-p), w_nochange = 10 * 2p)",
        augmentation="horizontal flip, k x 90 degree rotation", decision="argmax of 2 classes",
        sources=dict(pretrained="Daudt et al. 2018: trained from scratch", optimizer=_DAUDT, lr=_DAUDT,
                     betas="torch Adam default in the code", weight_decay=_DAUDT, schedule=_DAUDT, epochs=_DAUDT,
                     batch_size=_DAUDT, patch=_DAUDT, loss="Daudt et al. 2018 code",
                     augmentation=_DAUDT, decision=_DAUDT, model="registry", form="Daudt et al. 2018, Sec. 2")),
    "segnet": dict(
        model="segnet", form="early fusion", pretrained=None, optimizer="sgd", lr=0.1, momentum=0.9,
        weight_decay=None, schedule="fixed learning rate", epochs=None, batch_size=12, patch=None,
        loss="cross-entropy with median frequency class balancing", augmentation=None,
        decision="argmax of the classes",
        sources=dict(model="registry", form="seed: single-stream segmentation network on both dates",
                     pretrained="Badrinarayanan et al. 2017, Sec. 3.2: He initialisation, no pretraining",
                     optimizer="Badrinarayanan et al. 2017, Sec. 3.2", lr="Badrinarayanan et al. 2017, Sec. 3.2",
                     momentum="Badrinarayanan et al. 2017, Sec. 3.2", weight_decay="not stated in the paper",
                     schedule="Badrinarayanan et al. 2017, Sec. 3.2",
                     epochs="not fixed: trained until the training loss converges (Sec. 3.2)",
                     batch_size="Badrinarayanan et al. 2017, Sec. 3.2 (CamVid)",
                     patch="CamVid images at 360 x 480; no change-detection patch given",
                     loss="Badrinarayanan et al. 2017, Sec. 3.2", augmentation="not stated",
                     decision="Badrinarayanan et al. 2017")),
    "deeplabv3": dict(
        model="deeplabv3", form="early fusion", pretrained="ImageNet ResNet-50", optimizer="sgd", lr=0.007,
        momentum=0.9, weight_decay=None, schedule="poly, power 0.9", epochs=None, batch_size=16, patch=513,
        loss="cross-entropy", augmentation="random scaling 0.5-2.0, left-right flip",
        decision="argmax of the classes",
        sources=dict(model="registry", form="seed: single-stream segmentation network on both dates",
                     pretrained="Chen et al. 2017, Sec. 4", optimizer="Chen et al. 2017, Sec. 4.1",
                     lr="Chen et al. 2017, Sec. 4.1 (training protocol)", momentum="Chen et al. 2017, Sec. 4.1",
                     weight_decay="not restated in Chen et al. 2017", schedule="Chen et al. 2017, Sec. 4.1",
                     epochs="given in iterations (30K on PASCAL VOC augmented), not epochs",
                     batch_size="Chen et al. 2017, Sec. 4.1", patch="Chen et al. 2017, Sec. 4.1 (crop 513)",
                     loss="Chen et al. 2017", augmentation="Chen et al. 2017, Sec. 4.1",
                     decision="Chen et al. 2017")),
    "unetpp": dict(
        model="unetpp", form="early fusion", pretrained=None, optimizer="adam", lr=3e-4, betas=(0.9, 0.999),
        weight_decay=None, schedule="early stopping on the validation loss", epochs=None, batch_size=None,
        patch=None, loss="BCE + Dice on each of the 4 deep-supervision outputs (urbankit.losses.dsifn_loss)",
        augmentation=None, decision="mean of the 4 heads ('accurate mode'), threshold 0.5",
        sources=dict(model="registry", form="UNet++ in change detection (early fusion, e.g. Peng et al. 2019)",
                     pretrained="Zhou et al. 2018: trained from scratch", optimizer="Zhou et al. 2018, Sec. 3",
                     lr="Zhou et al. 2018, Sec. 3", betas="Keras Adam default", weight_decay="not stated",
                     schedule="Zhou et al. 2018, Sec. 3", epochs="early stopping (Zhou et al. 2018)",
                     batch_size="not stated for all datasets", patch="dataset dependent (Zhou et al. 2018)",
                     loss="Zhou et al. 2018, Sec. 2 (combined BCE and Dice, deep supervision)",
                     augmentation="not stated", decision="Zhou et al. 2018, Sec. 2")),
    "dsifn": dict(
        model="dsifn", form="two-stream", pretrained="ImageNet VGG16, frozen", optimizer=None, lr=None,
        weight_decay=None, schedule=None, epochs=None, batch_size=None, patch=512,
        loss="sum over the 5 outputs of BCE + Dice (urbankit.losses.deep_supervision_loss)",
        augmentation=None, decision="threshold 0.5 on the full-resolution output",
        sources=dict(model="registry", form="authors' code DSIFN.py: two VGG16 streams (model_A, model_B)",
                     pretrained="Zhang et al. 2020, Sec. 2.1; the code's vgg16_base is pretrained and in eval mode",
                     optimizer="not in the public code (unknown)", lr="not in the public code (unknown)",
                     weight_decay="unknown", schedule="unknown", epochs="unknown",
                     batch_size="unknown", patch="DSIFN-CD images are 512 x 512 (Zhang et al. 2020, Sec. 3.1)",
                     loss="authors' loss.py (cd_loss = BCE + Dice), summed over the side outputs (Sec. 2.3)",
                     augmentation="unknown", decision="authors' code (sigmoid outputs)")),
    "stanet": dict(
        model="stanet", form="Siamese", pretrained="ImageNet ResNet-18", optimizer="adam", lr=1e-3,
        betas=(0.5, 0.999), weight_decay=None, schedule="constant for 100 epochs, then linear decay to 0 over 100",
        epochs=200, batch_size=8, patch=256, loss="batch-balanced contrastive loss, margin 2",
        augmentation="random rotation (15 degrees) and crop", decision="feature distance > 1",
        sources=dict(model="registry", form="Chen & Shi 2020, Sec. 3 (Siamese metric learning)",
                     pretrained="authors' code mynet3.py (torchvision resnet18 weights)",
                     optimizer="authors' code CDFA_model.py", lr="authors' scripts/run.sh (--lr 0.001)",
                     betas="authors' code train_options.py (beta1 0.5)", weight_decay="none in the code",
                     schedule="authors' code train_options.py (niter 100, niter_decay 100, linear)",
                     epochs="authors' code train_options.py (100 + 100)", batch_size="authors' scripts/run.sh",
                     patch="authors' scripts/run.sh (crop 256)", loss="authors' loss.py (BCL, margin 2.0)",
                     augmentation="authors' scripts/run.sh (--angle 15, rotate_and_crop)",
                     decision="authors' code CDFA_model.py (dist > 1)")),
    "siam_hrnet": dict(
        model="siam_hrnet", form="Siamese", pretrained=None, optimizer="adamw", lr=1e-4, weight_decay=1e-2,
        schedule="poly/cosine decay [default]", epochs=200, batch_size=4, patch=256,
        loss="BCE + Dice [default]", augmentation="flips, rot90 [default]", decision="threshold 0.5",
        sources=dict(model="registry", form="seed: Baseline row = Siam_HRNet (same numbers)",
                     pretrained="not stated on the slides (unknown)", optimizer=_KIT,
                     lr=_KIT, weight_decay=_KIT, schedule=_KIT, epochs=_KIT, batch_size=_SEED,
                     patch=_SEED, loss=_KIT, augmentation=_KIT, decision=_KIT)),
}
VHR_RECIPES["fc_siam_conc"] = dict(copy.deepcopy(VHR_RECIPES["fc_ef"]), model="fc_siam_conc", form="Siamese")
VHR_RECIPES["fc_siam_diff"] = dict(copy.deepcopy(VHR_RECIPES["fc_ef"]), model="fc_siam_diff", form="Siamese")
VHR_RECIPES["hdanet"] = dict(copy.deepcopy(VHR_RECIPES["siam_hrnet"]), model="hdanet")
VHR_RECIPES["hdanet"]["sources"]["form"] = "Wang et al. 2022 (abstract): Siamese, shared weights"


def vhr_recipe(name: str) -> dict:
    """A deep copy of the recipe of ``name`` (a registry name); ConfigError lists the known names."""
    if name not in VHR_RECIPES:
        raise ConfigError(f"no VHR recipe for {name!r}; known: {sorted(VHR_RECIPES)}")
    return copy.deepcopy(VHR_RECIPES[name])


__all__ = ["VHR_RECIPES", "vhr_recipe"]
