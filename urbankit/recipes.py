"""Training recipes as data: one per model family, from the papers and the authors' code.

A :class:`Recipe` holds everything that decides how a network is trained and evaluated:
optimiser, learning rate, weight decay, schedule, duration, batch, patch size and sampling,
loss and class weighting, augmentation, input normalisation, threshold rule and early
stopping. Every value carries its source in :attr:`Recipe.sources`.

Profiles change only *size and duration*:

- ``full``: the paper's recipe at the paper's model size (a GPU run).
- ``real``: the same recipe shrunk to a stated CPU budget (minutes on 2 cores): fewer steps,
  smaller width. Where a paper's value cannot work at that size the change is listed in
  :attr:`Recipe.deviations`, with its reason, and printed with every result.
- ``quick``: the ``real`` recipe shrunk again for the embedded synthetic samples.

Thresholds and early stopping are chosen on **validation sites** in every profile (never on
test sites): where a paper picked its threshold or its best epoch otherwise, the recipe says
so in :attr:`Recipe.deviations`.

>>> r = get_recipe("fc_siam_diff", profile="full")
>>> r.optimizer, r.lr, r.batch_size, r.patch_size
('adam', 0.001, 32, 96)
>>> get_recipe("fc_siam_diff", profile="full", overrides={"lr": 5e-4}).lr
0.0005
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = ["Recipe", "RECIPES", "PROFILE_BUDGETS", "MODEL_BUDGETS", "get_recipe", "recipe_for_model", "list_recipes",
           "parse_overrides", "apply_overrides"]

_SAMPLERS = ("grid", "random", "importance")
#: Fields a shrunk profile may change without stating a reason: size and duration.
_SIZE_FIELDS = ("epochs", "steps_per_epoch", "batch_size", "patch_size", "width", "patience",
                "sampler_options", "scheduler_options")
_THRESHOLDS = ("val_best_f1", "fixed")


#: The switches of :attr:`Recipe.augment` (see :class:`urbankit.datasets.Augment`).
_AUGMENT_KEYS = ("flips", "rot90", "gamma", "swap_dates", "identity_pairs")


@dataclass(frozen=True)
class Recipe:
    """How one model family is trained (see the module docstring).

    Attributes:
        name: recipe name (a key of :data:`RECIPES`).
        paper: bib key of the paper in ``book/references.bib``.
        models: registry names the recipe is for.
        optimizer, lr, weight_decay: ``"adam"``/``"adamw"``/``"sgd"``, learning rate, L2 / decoupled decay.
        scheduler, scheduler_options: ``None``, ``"exponential"`` (``gamma`` per epoch) or ``"cosine"``.
        epochs: epochs of the run.
        steps_per_epoch: optimiser steps per epoch (None: one pass over the sampler's patches).
        batch_size: patches per step.
        patch_size: patch side in pixels.
        sampler: ``"grid"`` (regular grid, ``stride``), ``"random"`` or ``"importance"`` (draw
            ``n_candidates`` windows, pick one with probability ∝ change pixels + ``bias``).
        sampler_options: ``stride``, ``n_candidates``, ``bias``.
        loss: a name of :data:`urbankit.losses.LOSSES`.
        class_weighting: ``None`` or ``"daudt"`` (weights 2p·fp_modifier / 2(1-p) from the
            training change fraction p).
        loss_options: e.g. ``fp_modifier``.
        augment: ``flips``, ``rot90``, ``gamma``, ``swap_dates`` (bool each) and
            ``identity_pairs`` (a probability; see :class:`urbankit.datasets.Augment`).
        optical_norm: ``"none"``, ``"dataset"`` (per-band training z-score) or ``"per_image"``.
        optical_bands: optical bands in model order (None: all the scenes have).
        sar_pols, sar_db_range: SAR polarisations (None: all) and the dB range scaled to [0, 1].
        sar_orbit: ``"mean"`` (the reader's mean over orbits) or ``"random"`` (a random
            relative orbit per sample, the DS U-Net's augmentation).
        pair: which dates make a training sample: ``"first_last"``, ``"random_pair"`` (a random
            sorted pair of months per sample, for time series; evaluation is always first vs
            last) or ``"single"`` (one date: built-up mapping).
        width: model width multiplier (1.0 = the paper's size).
        ensemble: independently seeded runs whose probabilities are averaged
            (:class:`urbankit.models.ProbabilityEnsemble`; 1 = one run, as the papers). Each
            run keeps its own best epoch on the validation sites; the threshold is then chosen
            on the validation sites for the averaged probabilities.
        test_time_flips: average the probabilities over the image and its three flips at
            validation and test time (:class:`urbankit.models.FlipAverage`); the threshold is
            then chosen on the validation sites for the flip-averaged probabilities.
        threshold: ``"val_best_f1"`` (best-F1 threshold on the validation sites at the best
            epoch) or ``"fixed"`` (``fixed_threshold``).
        fixed_threshold: the threshold when ``threshold="fixed"``.
        monitor, patience: the history column that picks the best epoch (``val_best_f1``)
            and early-stopping patience in epochs (None: no early stop).
        sources: field -> where its value comes from.
        deviations: how this recipe differs from the paper, and why.
    """

    name: str
    paper: str
    models: tuple[str, ...]
    optimizer: str
    lr: float
    weight_decay: float
    epochs: int
    batch_size: int
    patch_size: int
    loss: str
    scheduler: str | None = None
    scheduler_options: Mapping[str, Any] = field(default_factory=dict)
    steps_per_epoch: int | None = None
    sampler: str = "random"
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    class_weighting: str | None = None
    loss_options: Mapping[str, Any] = field(default_factory=dict)
    augment: Mapping[str, bool | float] = field(default_factory=lambda: {"flips": True, "rot90": True, "gamma": False})
    optical_norm: str = "none"
    optical_bands: tuple[str, ...] | None = None
    sar_pols: tuple[str, ...] | None = None
    sar_db_range: tuple[float, float] = (-25.0, 0.0)
    sar_orbit: str = "mean"
    pair: str = "first_last"
    width: float = 1.0
    ensemble: int = 1
    test_time_flips: bool = False
    threshold: str = "val_best_f1"
    fixed_threshold: float = 0.5
    monitor: str = "val_best_f1"
    patience: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    deviations: tuple[str, ...] = ()
    profile: str = "full"

    def __post_init__(self) -> None:
        if self.sampler not in _SAMPLERS:
            raise ConfigError(f"recipe {self.name!r}: sampler must be one of {_SAMPLERS}, got {self.sampler!r}")
        if self.threshold not in _THRESHOLDS:
            raise ConfigError(f"recipe {self.name!r}: threshold must be one of {_THRESHOLDS}, got {self.threshold!r}")
        for key in ("epochs", "batch_size", "patch_size", "ensemble"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"recipe {self.name!r}: {key} must be a positive int, got {value!r}")
        if self.steps_per_epoch is not None and (not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1):
            raise ConfigError(f"recipe {self.name!r}: steps_per_epoch must be a positive int or None")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"recipe {self.name!r}: lr must be a positive number, got {self.lr!r}")
        if not 0 < float(self.width) <= 4:
            raise ConfigError(f"recipe {self.name!r}: width must be in (0, 4], got {self.width!r}")
        if self.pair not in ("first_last", "random_pair", "single"):
            raise ConfigError(f"recipe {self.name!r}: pair must be 'first_last', 'random_pair' or 'single', "
                              f"got {self.pair!r}")
        if self.sar_orbit not in ("mean", "random"):
            raise ConfigError(f"recipe {self.name!r}: sar_orbit must be 'mean' or 'random', got {self.sar_orbit!r}")
        unknown = sorted(set(self.augment) - set(_AUGMENT_KEYS))
        if unknown:
            raise ConfigError(f"recipe {self.name!r}: unknown augment key(s) {unknown}; known: {list(_AUGMENT_KEYS)}")

    def replace(self, **changes: Any) -> Recipe:
        """A copy with fields changed (unknown fields are an error naming the known ones)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"recipe {self.name!r}: unknown field(s) {unknown}; known: {sorted(known)}")
        changes = {k: _coerce(self, k, v) for k, v in changes.items()}
        return dataclasses.replace(self, **changes)

    @property
    def total_steps(self) -> int | None:
        """Optimiser steps of the whole run (None when an epoch is one pass of unknown length)."""
        return None if self.steps_per_epoch is None else self.epochs * self.steps_per_epoch

    def fit_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`urbankit.train.fit` that this recipe sets."""
        return {"optimizer": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay,
                "scheduler": self.scheduler, "scheduler_options": dict(self.scheduler_options),
                "epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch,
                "monitor": self.monitor, "patience": self.patience}

    def describe(self) -> str:
        """One line for a results caption (values that decide the run).

        The optical bands are named when they differ from the paper's recipe of the same name
        (e.g. a network's ``real`` budget in :data:`MODEL_BUDGETS`, or a user override).
        """
        steps = f"{self.epochs} x {self.steps_per_epoch} steps" if self.steps_per_epoch else f"{self.epochs} epochs"
        paper = RECIPES.get(self.name)
        bands = ""
        if paper is not None and self.optical_bands != paper.optical_bands:
            bands = f", bands {'/'.join(self.optical_bands) if self.optical_bands else 'all'}"
        pairs = float(self.augment.get("identity_pairs", 0))
        return (f"recipe '{self.name}' ({self.profile}): {self.optimizer} lr {self.lr:g} wd {self.weight_decay:g}, "
                f"{steps}, batch {self.batch_size}, {self.sampler} {self.patch_size} px patches, loss {self.loss}"
                f"{' (' + self.class_weighting + ' class weights)' if self.class_weighting else ''}"
                f"{f', no-change pairs {pairs:.0%}' if pairs else ''}, "
                f"optical norm {self.optical_norm}{bands}, width x{self.width:g}, threshold {self.threshold}"
                f"{f', ensemble of {self.ensemble} runs' if self.ensemble > 1 else ''}"
                f"{', test-time flips' if self.test_time_flips else ''}")

    def table(self):
        """A pandas DataFrame: field, value, source (for a chapter's recipe cell)."""
        import pandas as pd

        rows = []
        for f in dataclasses.fields(self):
            if f.name in ("sources", "deviations", "name", "models", "paper", "profile"):
                continue
            rows.append({"field": f.name, "value": _show(getattr(self, f.name)),
                         "source": self.sources.get(f.name, "")})
        return pd.DataFrame(rows).set_index("field")


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, tuple):
        return ", ".join(map(str, value))
    return str(value)


def _coerce(recipe: Recipe, key: str, value: Any) -> Any:
    """Make override values (often strings from a command line) the field's type."""
    current = getattr(recipe, key)
    if isinstance(value, str) and not isinstance(current, str):
        value = _parse_value(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, (int, float)) and not isinstance(current, bool) and value is not None \
            and not isinstance(value, (int, float)):
        raise ConfigError(f"recipe {recipe.name!r}: {key} must be a number, got {value!r}")
    return value


def _parse_value(text: str) -> Any:
    """A command-line value: int, float (``1e-4`` included), or YAML (words, lists, mappings)."""
    import yaml

    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe override value {text!r} is not a number, word or list: {exc}") from None


def parse_overrides(items: Any) -> dict[str, Any]:
    """``["lr=1e-4", "epochs=5"]`` (command-line style) or a mapping -> ``{field: value}``."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"recipe override {item!r} must look like field=value (e.g. lr=1e-4)")
        out[key.strip()] = _parse_value(value.strip())
    return out


# ----------------------------------------------------------------------------------------------
# the papers' recipes (full profile)

_DAUDT = "Daudt et al. 2018 (ICIP), training notebook of rcdaudt/fully_convolutional_change_detection"
_DSUNET = "Hafner et al. 2022 (GRSL), DS_UNet configs/base.yaml"
_SIAMSSL = "Hafner et al. 2022 (IGARSS), SiameseSSL configs/base.yaml"
_MMCR = "Hafner et al. 2023 (Remote Sensing), SemiSupervisedMultiModalCD configs"
_FUSIONDA = "Hafner et al. 2022 (RSE), DDA_UrbanExtraction configs/fusionda.yaml"
_KIT = "urbankit protocol: chosen on validation sites, never on test sites"

RECIPES: dict[str, Recipe] = {
    "daudt_fc": Recipe(
        name="daudt_fc", paper="daudt2018fcsiam", models=("fc_ef", "fc_siam_conc", "fc_siam_diff"),
        optimizer="adam", lr=1e-3, weight_decay=1e-4, scheduler="exponential", scheduler_options={"gamma": 0.95},
        epochs=50, batch_size=32, patch_size=96, sampler="grid", sampler_options={"stride": 47},
        loss="weighted_bce", class_weighting="daudt", loss_options={"fp_modifier": 1.0},
        augment={"flips": True, "rot90": True, "gamma": False}, optical_norm="per_image",
        sources={"optimizer": _DAUDT, "lr": _DAUDT, "weight_decay": _DAUDT, "scheduler": _DAUDT,
                 "epochs": _DAUDT, "batch_size": _DAUDT, "patch_size": _DAUDT, "sampler": _DAUDT,
                 "sampler_options": _DAUDT + " (stride 96/2 - 1)", "loss": _DAUDT + " (2-class NLL == BCE on "
                 "the logit difference)", "class_weighting": _DAUDT, "augment": _DAUDT,
                 "optical_norm": _DAUDT + " (per image)", "loss_options": "notebook: 'use 1 if unsure'",
                 "threshold": _KIT, "monitor": _KIT},
        deviations=("best epoch and threshold on a validation city (the notebook kept the epoch of best "
                    "test F1 and thresholds at 0.5 by argmax)",
                    "per-image z-score per band (the notebook standardises all bands of an image jointly)"),
    ),
    "dsunet": Recipe(
        name="dsunet", paper="hafner2022dsunet", models=("dsunet", "unet_ef"),
        optimizer="adam", lr=5e-5, weight_decay=5e-4, epochs=400, steps_per_epoch=1, batch_size=64,
        patch_size=32, sampler="importance", sampler_options={"n_candidates": 20, "bias": 5.0},
        loss="jaccard_like", augment={"flips": True, "rot90": True, "gamma": False}, optical_norm="none",
        sar_db_range=(-25.0, 5.0), sar_orbit="random",
        sources={"optimizer": _DSUNET, "lr": _DSUNET, "weight_decay": _DSUNET, "batch_size": _DSUNET,
                 "epochs": _DSUNET + " (390 epochs of one step; the kit counts 400 steps)",
                 "patch_size": _DSUNET, "sampler": _DSUNET, "sampler_options": _DSUNET, "loss": _DSUNET,
                 "augment": _DSUNET, "optical_norm": _DSUNET + " (reflectance 0..1)",
                 "sar_db_range": _DSUNET, "sar_orbit": _DSUNET, "threshold": _KIT, "monitor": _KIT},
        deviations=("threshold and best epoch on a validation city (the paper took the best-F1 threshold "
                    "on the training cities)",),
    ),
    "siamese_ssl": Recipe(
        name="siamese_ssl", paper="hafner2022siamssl", models=("siamdiff", "siamdiff_dt"),
        optimizer="adamw", lr=1e-4, weight_decay=0.01, epochs=100, batch_size=8, patch_size=256,
        sampler="importance", sampler_options={"n_candidates": 20, "bias": 5.0}, loss="power_jaccard",
        augment={"flips": True, "rot90": True, "gamma": False}, pair="random_pair",
        sources={k: _SIAMSSL for k in ("optimizer", "lr", "weight_decay", "batch_size", "patch_size",
                                       "sampler", "sampler_options", "loss", "augment", "pair")}
        | {"epochs": _SIAMSSL + " (inference checkpoint of epoch 100)", "threshold": _KIT, "monitor": _KIT},
        deviations=("best epoch and threshold on validation sites (the paper used the epoch-100 "
                    "checkpoint at threshold 0.5)",),
    ),
    "mmcr": Recipe(
        name="mmcr", paper="hafner2023mmcr", models=("mm_siamdiff", "mmcr_net"),
        optimizer="adamw", lr=1e-4, weight_decay=0.01, epochs=100, batch_size=16, patch_size=128,
        sampler="importance", sampler_options={"n_candidates": 20, "bias": 5.0}, loss="power_jaccard",
        augment={"flips": True, "rot90": True, "gamma": False}, optical_bands=("B04", "B03", "B02", "B08"),
        sar_pols=("VV", "VH"), sar_db_range=(-25.0, 0.0), patience=10, pair="random_pair",
        sources={k: _MMCR for k in ("optimizer", "lr", "weight_decay", "epochs", "batch_size", "patch_size",
                                    "sampler", "sampler_options", "loss", "augment", "optical_bands",
                                    "sar_pols", "sar_db_range", "patience", "pair")}
        | {"lr": _MMCR + " (1e-4 at 10-40 % labels, 5e-5 at 100 %)",
           "batch_size": _MMCR + " (16 at 10-20 % labels, 8 at 40-100 %)",
           "monitor": _MMCR + " (early stopping on validation change F1)", "threshold": _KIT},
        deviations=("threshold on validation sites (the paper evaluates at 0.5)",),
    ),
    "fusion_da": Recipe(
        name="fusion_da", paper="hafner2022fusionda", models=("fusionda_net", "unet"),
        optimizer="adamw", lr=1e-4, weight_decay=0.01, epochs=15, batch_size=8, patch_size=256,
        sampler="random", loss="power_jaccard", augment={"flips": True, "rot90": True, "gamma": True},
        pair="single",
        optical_bands=("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
        sar_pols=("VV", "VH"), sar_db_range=(-25.0, 0.0), threshold="fixed", fixed_threshold=0.5,
        sources={k: _FUSIONDA for k in ("optimizer", "lr", "weight_decay", "epochs", "batch_size",
                                        "patch_size", "sampler", "loss", "augment", "optical_bands",
                                        "sar_pols", "threshold")}
        | {"monitor": _KIT + " (the paper kept the epoch-15 checkpoint)"},
        deviations=("best epoch on validation sites (the paper kept the last epoch, 15)",),
    ),
}

#: What each profile changes (size and duration only), per recipe. ``real`` budgets are for
#: 2 CPU cores: the numbers in the comments were measured with ``benchmarks/real_oscd.py``.
PROFILE_BUDGETS: dict[str, dict[str, dict[str, Any]]] = {
    "real": {
        # Each model is an ensemble of 200-step runs with test-time flips, as many runs as fit 15 min
        # per model on 2 cores (one thread per model): 3 FC runs take 12.5 CPU min
        # (benchmarks/results/real_oscd.md). One run's pooled F1 depends on its seed as much as on
        # any recipe change (the table shows a run alone and the ensemble); 400-step runs scored no
        # better than 200-step ones, and the best validation epoch ranged from 2 to 20.
        "daudt_fc": {"epochs": 10, "steps_per_epoch": 20, "batch_size": 16, "sampler": "importance",
                     "sampler_options": {"n_candidates": 20, "bias": 5.0}, "ensemble": 3,
                     "test_time_flips": True},
        # DS U-Net family: 16 patches of 64 px per step (the same pixels as the paper's 64 of 32 px,
        # with more context per patch) and 5 runs of about 2.3 CPU min. The patch size was chosen
        # among recipe variants on the folds' validation cities only, never the test cities
        # (benchmarks/results/real_oscd_variants.md: validation F1 0.321 against 0.301 for 32 px).
        "dsunet": {"epochs": 10, "steps_per_epoch": 20, "batch_size": 16, "patch_size": 64, "width": 0.25,
                   "lr": 1e-3, "optical_norm": "per_image", "sar_orbit": "mean", "ensemble": 5,
                   "test_time_flips": True},
        "siamese_ssl": {"epochs": 10, "steps_per_epoch": 20, "batch_size": 8, "patch_size": 128, "width": 0.25},
        "mmcr": {"epochs": 10, "steps_per_epoch": 20, "batch_size": 8, "patch_size": 128, "width": 0.25,
                 "patience": None},
        "fusion_da": {"epochs": 10, "steps_per_epoch": 20, "batch_size": 8, "patch_size": 128, "width": 0.5},
    },
    "quick": {
        "daudt_fc": {"epochs": 3, "steps_per_epoch": 8, "batch_size": 8, "patch_size": 64, "width": 0.5,
                     "sampler": "importance", "sampler_options": {"n_candidates": 20, "bias": 5.0},
                     "lr": 3e-3, "optical_norm": "dataset"},
        "dsunet": {"epochs": 3, "steps_per_epoch": 8, "batch_size": 8, "patch_size": 64, "width": 0.125,
                   "lr": 3e-3, "optical_norm": "dataset", "sar_orbit": "mean"},
        "siamese_ssl": {"epochs": 3, "steps_per_epoch": 24, "batch_size": 8, "patch_size": 64, "width": 0.25,
                        "lr": 1e-3},
        "mmcr": {"epochs": 3, "steps_per_epoch": 24, "batch_size": 8, "patch_size": 64, "width": 0.25,
                 "lr": 1e-3, "patience": None},
        "fusion_da": {"epochs": 3, "steps_per_epoch": 36, "batch_size": 8, "patch_size": 64, "width": 0.5,
                      "lr": 1e-3},
    },
}

#: Why a shrunk profile changes a value that is not size or duration (printed with results):
#: ``{profile: {field: reason, or {value: reason}}}``.
_BUDGET_REASONS: dict[str, dict[str, Any]] = {
    "real": {
        "optical_norm": {
            "dataset": "per-band z-scores with the training cities' statistics",
            "per_image": "each image standardised by its own statistics, as Daudt et al. did (removes the "
                         "radiometric offsets between dates and cities that a short run cannot learn away)"},
        "sampler": "importance sampling of changed patches (a short run sees too few change pixels on a "
                   "regular grid)",
        "lr": "a larger learning rate for a run of a few hundred steps instead of the paper's length",
        "sar_orbit": "one orbit-mean Sentinel-1 composite per city in training, as at test time (the "
                     "paper's random orbit per sample is kept in the full profile, untested at this size)",
        "ensemble": "independently seeded runs, their probabilities averaged (deep ensembles, "
                    "Lakshminarayanan et al. 2017), as many as fit the CPU budget: with three training cities "
                    "one short run depends on its seed as much as on any recipe change; the papers trained one "
                    "run per seed",
        "test_time_flips": "probabilities averaged over the image and its three flips (the papers predict "
                           "once)",
    },
}
_BUDGET_REASONS["quick"] = {**_BUDGET_REASONS["real"], "optical_norm": {
    "dataset": "per-band z-scores with the training scenes' statistics (the synthetic samples have no "
               "radiometric offsets between dates to remove)"}}


#: Changes a shrunk profile makes for one network of a family only, each with its reason:
#: ``{profile: {model: {field: (value, reason)}}}``. Applied after :data:`PROFILE_BUDGETS` when
#: :func:`get_recipe` is given the model's name, and listed in the recipe's deviations.
MODEL_BUDGETS: dict[str, dict[str, dict[str, tuple[Any, str]]]] = {
    "real": {
        "fc_siam_conc": {
            "optical_bands": (("B02", "B03", "B04", "B08"),
                              "FC-Siam-conc only: the four 10 m bands (Daudt et al. 2018 trained the networks on "
                              "RGB as well as on all 13 bands). With all 13 it never learned the desert validation "
                              "city abudhabi (best F1 0.11, all-change 0.07); with these four, 0.21"),
            "augment": ({**RECIPES["daudt_fc"].augment, "identity_pairs": 0.25},
                        "FC-Siam-conc only: a quarter of the samples are no-change pairs (one date twice, "
                        "change label 0), against a decoder that reads change off one date's look; with the "
                        "four bands, mean validation F1 0.245 against 0.224"),
            "patch_size": (128, "FC-Siam-conc only: 128 px patches, 9 per step (the pixels of 16 of 96 px), "
                                "more context per patch; with the two changes above, mean validation F1 0.255 "
                                "against 0.245. All three were chosen on validation cities only "
                                "(benchmarks/results/real_oscd_variants_fc_siam_conc.md)"),
            "batch_size": (9, "FC-Siam-conc only: with 128 px patches (above)"),
        },
    },
}


def _reason(profile: str, key: str, value: Any) -> str | None:
    reason = _BUDGET_REASONS.get(profile, {}).get(key)
    if isinstance(reason, Mapping):
        return reason.get(value)
    return reason


def list_recipes():
    """A DataFrame of the recipes: name, models, paper and the main values of ``full``."""
    import pandas as pd

    return pd.DataFrame([{"recipe": r.name, "models": ", ".join(r.models), "paper": r.paper,
                          "optimizer": r.optimizer, "lr": r.lr, "batch": r.batch_size, "patch": r.patch_size,
                          "loss": r.loss} for r in RECIPES.values()]).set_index("recipe")


def recipe_for_model(model: str) -> str:
    """The name of the recipe whose ``models`` lists ``model``."""
    for name, r in RECIPES.items():
        if model in r.models:
            return name
    raise ConfigError(f"no recipe lists model {model!r}; recipes: "
                      + "; ".join(f"{n}: {', '.join(r.models)}" for n, r in RECIPES.items()))


def get_recipe(name_or_model: str, profile: str = "full", overrides: Mapping[str, Any] | Any = None) -> Recipe:
    """A recipe (by recipe or model name) at a profile's size, with optional overrides.

    Args:
        name_or_model: a key of :data:`RECIPES` or a registry model name (``"fc_siam_diff"``).
        profile: ``"full"`` (the paper's values), ``"real"`` or ``"quick"`` (shrunk, see
            :data:`PROFILE_BUDGETS`, and :data:`MODEL_BUDGETS` when a model name is given).
        overrides: ``{field: value}`` or ``["field=value", ...]`` applied last (e.g. from
            ``urbankit book --recipe lr=1e-4``).

    Returns:
        The :class:`Recipe`; its ``deviations`` list every non-size change from the paper.
    """
    name = name_or_model if name_or_model in RECIPES else recipe_for_model(name_or_model)
    recipe = RECIPES[name]
    if profile not in ("full", "real", "quick"):
        raise ConfigError(f"get_recipe: profile must be 'full', 'real' or 'quick', got {profile!r}")
    if profile != "full":
        budget = PROFILE_BUDGETS[profile].get(name, {})
        reasons = tuple(f"{key} = {_show(value)}: {_reason(profile, key, value)}"
                        for key, value in budget.items() if _reason(profile, key, value)
                        and value != getattr(recipe, key))
        unexplained = [k for k, v in budget.items() if v != getattr(recipe, k)
                       and k not in _SIZE_FIELDS and not _reason(profile, k, v)]
        if unexplained:  # a budget may change size and duration freely, anything else needs a reason
            raise ConfigError(f"profile {profile!r} changes {unexplained} of recipe {name!r} without a reason")
        recipe = recipe.replace(**budget, profile=profile, deviations=recipe.deviations + reasons)
        model_budget = MODEL_BUDGETS.get(profile, {}).get(name_or_model, {}) if name_or_model != name else {}
        if model_budget:
            said = tuple(f"{k} = {_show(v)}: {why}" for k, (v, why) in model_budget.items())
            recipe = recipe.replace(**{k: v for k, (v, _) in model_budget.items()},
                                    deviations=recipe.deviations + said)
    return apply_overrides(recipe, overrides)


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any] | Any = None) -> Recipe:
    """``recipe`` with user overrides (``{field: value}`` or ``["field=value"]``; None: unchanged).

    Every overridden field is listed in :attr:`Recipe.deviations` as set by the user, so the
    change is printed with every result. Chapters call this with their ``recipe_overrides``
    parameter (``urbankit book --recipe lr=1e-4``) on the recipe they train.
    """
    extra = parse_overrides(overrides)
    if not extra:
        return recipe
    shown = tuple(f"{k} = {_show(v)}: set by the user" for k, v in extra.items())
    return recipe.replace(**extra).replace(deviations=recipe.deviations + shown)
