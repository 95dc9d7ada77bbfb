"""The train-and-evaluate pipeline that every model chapter uses, under a protocol that cannot cheat.

One call, :func:`run_experiment`, goes from scenes + a model name + a recipe + a profile to
a trained model, its chosen threshold, a per-site and pooled test table and the training
history::

    result = run_experiment("fc_siam_diff", train_scenes, val_scenes, test_scenes, profile="real")
    result.test_table.loc["pooled", "f1"]

The steps, each a short function a chapter can also call on its own:

1. :func:`urbankit.recipes.get_recipe`: the paper's recipe at the profile's size.
2. :meth:`urbankit.data.contract.InputContract.fit`: band list, SAR range and per-band
   statistics from the **training** scenes only (stored in the model and its checkpoints).
3. :func:`make_train_loader` / :func:`make_eval_loader`: the recipe's sampler and
   augmentation; validation patches cover the validation scenes completely.
4. :func:`make_loss`: the recipe's loss with its class weighting (from the training scenes).
5. :func:`urbankit.train.fit` with the best epoch and the threshold both chosen on the
   **validation** scenes (``monitor="val_best_f1"``).
6. :func:`urbankit.inference.evaluate_scenes` on the **test** scenes at that threshold.

:func:`leave_sites_out` makes folds (test, validation and training sites that never
overlap); :func:`run_folds` runs one model over all folds and pools the test pixels;
:func:`cva_experiment` is the classical baseline under the same protocol (its percentile
chosen on the validation sites).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .data.contract import InputContract
from .errors import ConfigError
from .recipes import Recipe, apply_overrides, get_recipe

__all__ = ["Fold", "ExperimentResult", "FoldsResult", "leave_sites_out", "run_experiment", "run_folds",
           "cva_experiment", "make_loss", "make_train_loader", "make_eval_loader", "make_contract",
           "pooled_table", "estimate_full_time", "full_recipe_steps", "build_for_scenes", "change_fraction",
           "single_date_scenes", "pooled_groups", "run_models", "scores_table", "validation_threshold",
           "percentile_rule", "percentile_rule_of_run", "cached_run_dir"]


def single_date_scenes(scene: Any, dates: Sequence[int] | None = None,
                       variables: Sequence[str] | None = None) -> list[Any]:
    """One scene per date of a time series, labelled for single-date built-up mapping.

    Args:
        scene: a schema scene with ``buildings`` (time, y, x), e.g. a SpaceNet7-S1S2 site or a twin.
        dates: the time indices to keep (default: every date).
        variables: the data variables to keep (default: all but ``change``, which needs two dates).

    Returns:
        One scene per date (a time axis of length 1): ``buildings`` becomes the built-up mask of
        that date (:func:`urbankit.data.schema.is_built`, float32 0/1), ``site`` becomes
        ``"<site> <YYYY-MM>"`` and ``aoi`` keeps the original site name.

    Raises:
        ConfigError: the scene has no ``buildings`` label, or a variable or date is missing.
    """
    from .data.schema import is_built

    site = str(scene.attrs.get("site", "scene"))
    if "buildings" not in scene.data_vars:
        raise ConfigError(f"single_date_scenes: scene {site!r} has no 'buildings' label")
    keep = [v for v in scene.data_vars if v != "change"] if variables is None else list(variables)
    missing = [v for v in keep if v not in scene.data_vars]
    if missing:
        raise ConfigError(f"single_date_scenes: scene {site!r} has no variable(s) {missing}")
    n = scene.sizes["time"]
    dates = range(n) if dates is None else list(dates)
    out, names = [], set()
    for k in dates:
        if not -n <= k < n:
            raise ConfigError(f"single_date_scenes: scene {site!r} has {n} dates, no date {k}")
        one = scene[keep].isel(time=[k])
        one["buildings"] = one["buildings"].copy(data=is_built(one["buildings"].values).astype(np.float32))
        name = f"{site} {np.datetime_as_string(one['time'].values[0], unit='M')}"
        name = name if name not in names else f"{name} ({k})"
        names.add(name)
        one.attrs = dict(scene.attrs, site=name, aoi=site)
        out.append(one)
    return out


@dataclass(frozen=True)
class Fold:
    """One split of sites: ``test`` (scored), ``val`` (threshold, best epoch), ``train``."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def scenes(self, scenes_by_site: Mapping[str, Any]) -> tuple[list, list, list]:
        """(train, val, test) scene lists of this fold (a site may map to a list of scenes)."""
        def pick(names):
            out = []
            for n in names:
                if n not in scenes_by_site:
                    raise ConfigError(f"fold {self.name}: no scene for site {n!r} (have {sorted(scenes_by_site)})")
                item = scenes_by_site[n]
                out.extend(item if isinstance(item, (list, tuple)) else [item])
            return out
        return pick(self.train), pick(self.val), pick(self.test)


def leave_sites_out(sites: Sequence[str], n_test: int = 2, n_val: int = 1) -> list[Fold]:
    """Folds whose test sets partition ``sites`` (every site is tested exactly once).

    The sites are taken in the given order in chunks of ``n_test``; a fold's validation sites
    are the first ``n_val`` sites after its test chunk (cyclically), and its training sites
    are all the others. Test, validation and training sites of a fold never overlap.

    >>> [f.test for f in leave_sites_out(["a", "b", "c", "d"], n_test=2, n_val=1)]
    [('a', 'b'), ('c', 'd')]
    >>> leave_sites_out(["a", "b", "c", "d"], n_test=2, n_val=1)[0].val
    ('c',)
    """
    sites = [str(s) for s in sites]
    if len(set(sites)) != len(sites):
        raise ConfigError(f"leave_sites_out: duplicate site names in {sites}")
    if n_test < 1 or n_val < 1 or len(sites) < n_test + n_val + 1:
        raise ConfigError(f"leave_sites_out: {len(sites)} sites cannot give {n_test} test + {n_val} validation "
                          "+ at least 1 training site")
    folds = []
    for k, start in enumerate(range(0, len(sites), n_test)):
        test = sites[start:start + n_test]
        rest = sites[start + n_test:] + sites[:start]
        val = rest[:n_val]
        train = [s for s in sites if s not in test and s not in val]
        folds.append(Fold(f"fold{k}", tuple(train), tuple(val), tuple(test)))
    return folds


# ----------------------------------------------------------------------------------------------
# the pieces
def _site(scene) -> str:
    return str(scene.attrs.get("site", "?"))


def change_fraction(scenes: Sequence[Any]) -> float:
    """Fraction of change pixels over all scenes' ``change`` labels."""
    n = pos = 0
    for s in scenes:
        if "change" in s.data_vars:
            c = np.asarray(s["change"].values)
            n, pos = n + c.size, pos + int((c > 0).sum())
    if n == 0:
        raise ConfigError("change_fraction: no scene has a 'change' label")
    return pos / n


def make_contract(recipe: Recipe, train_scenes: Sequence[Any], modalities: Sequence[str]) -> InputContract:
    """The input contract of a run: the recipe's bands and norm, statistics of the training scenes."""
    return InputContract.fit(train_scenes, modalities=modalities, optical_bands=recipe.optical_bands,
                             sar_pols=recipe.sar_pols, sar_db_range=recipe.sar_db_range,
                             optical_norm=recipe.optical_norm)


def make_loss(recipe: Recipe, train_scenes: Sequence[Any]) -> Callable:
    """The recipe's loss, with Daudt's class weights from the training change fraction if asked."""
    from . import losses

    try:
        fn = losses.resolve_loss(recipe.loss)
    except ConfigError as exc:
        raise ConfigError(f"recipe {recipe.name!r}: {exc}") from None
    if recipe.class_weighting is None:
        return partial(fn, **dict(recipe.loss_options)) if recipe.loss_options else fn
    if recipe.class_weighting != "daudt":
        raise ConfigError(f"recipe {recipe.name!r}: class_weighting must be None or 'daudt', "
                          f"got {recipe.class_weighting!r}")
    options = dict(recipe.loss_options)
    weights = losses.daudt_class_weights(change_fraction(train_scenes), fp_modifier=options.pop("fp_modifier", 1.0))
    return partial(fn, weights=weights, **options)


def _augment(recipe: Recipe):
    from .datasets import Augment

    a = dict(recipe.augment)
    if not any(a.values()):
        return None
    return Augment(hflip=bool(a.get("flips")), vflip=bool(a.get("flips")), rot90=bool(a.get("rot90")),
                   gamma=bool(a.get("gamma")), swap_dates=bool(a.get("swap_dates")),
                   identity_pairs=float(a.get("identity_pairs", 0.0)))


def _per_scene_counts(recipe: Recipe, train_scenes: Sequence[Any]) -> list[int]:
    """Patches per scene and epoch: every *site* weighs the same (per-orbit scenes share it)."""
    sites = [_site(s) for s in train_scenes]
    per_site = {s: sites.count(s) for s in sites}
    steps = recipe.steps_per_epoch or 1
    per_site_patches = math.ceil(steps * recipe.batch_size / len(per_site))
    return [max(1, math.ceil(per_site_patches / per_site[s])) for s in sites]


def _train_sampler(recipe: Recipe, counts: list[int]):
    """The recipe's training sampler; ``counts``: patches per scene and epoch (random / importance)."""
    from .datasets import GridSampler, ImportanceSampler, RandomSampler

    if recipe.sampler == "grid":
        return GridSampler(recipe.patch_size, stride=int(recipe.sampler_options.get("stride", recipe.patch_size)))
    if recipe.sampler == "random":
        return RandomSampler(recipe.patch_size, n_per_scene=counts)
    opts = dict(recipe.sampler_options)
    return ImportanceSampler(recipe.patch_size, n_per_scene=counts, n_candidates=int(opts.get("n_candidates", 20)),
                             bias=float(opts.get("bias", 5.0)))


def make_train_loader(recipe: Recipe, train_scenes: Sequence[Any], contract: InputContract, seed: int,
                      num_workers: int = 0, *, unlabelled_scenes: Sequence[Any] = (),
                      balance_unlabelled: bool = True):
    """Training loader with the recipe's sampler and augmentation (see :mod:`urbankit.datasets`).

    Args:
        recipe, train_scenes, contract, seed, num_workers: the run's recipe, labelled scenes,
            input contract, seed and loader workers.
        unlabelled_scenes: scenes whose patches enter training without labels (``labelled`` is
            False in their samples: semi-supervised and domain-adaptation strategies).
        balance_unlabelled: with unlabelled scenes, True draws as many labelled as unlabelled
            patches per epoch and doubles the batch (each step holds about ``batch_size``
            labelled patches, as a supervised run); False gives every scene, labelled or not,
            the same number of patches and keeps ``batch_size``.
    """
    from .datasets import SceneDataset, make_loader

    if recipe.sar_orbit == "random" and contract.sar_pols is not None:
        _check_orbit_scenes(list(train_scenes) + list(unlabelled_scenes))
    common = dict(augment=_augment(recipe), seed=seed, contract=contract, pair=recipe.pair)
    if not unlabelled_scenes:
        dataset = SceneDataset(list(train_scenes), _train_sampler(recipe, _per_scene_counts(recipe, train_scenes)),
                               **common)
        return make_loader(dataset, batch_size=recipe.batch_size, shuffle=True, seed=seed, num_workers=num_workers)
    import torch

    n = len(train_scenes)
    if balance_unlabelled:
        counts = (_per_scene_counts(recipe, train_scenes), _per_scene_counts(recipe, unlabelled_scenes))
    else:
        both = _per_scene_counts(recipe, list(train_scenes) + list(unlabelled_scenes))
        counts = (both[:n], both[n:])
    parts = [SceneDataset(list(scenes), _train_sampler(recipe, c), labelled=labelled, **common)
             for scenes, c, labelled in ((train_scenes, counts[0], True), (unlabelled_scenes, counts[1], False))]
    batch = recipe.batch_size * (2 if balance_unlabelled else 1)
    return make_loader(torch.utils.data.ConcatDataset(parts), batch_size=batch, shuffle=True, seed=seed,
                       num_workers=num_workers)


def _check_orbit_scenes(scenes: Sequence[Any]) -> None:
    missing = [_site(s) for s in scenes if "sar_orbit" not in s.attrs]
    if missing:
        raise ConfigError(
            f"the recipe draws a random Sentinel-1 orbit per sample (sar_orbit='random'), so it needs one "
            f"scene per city and orbit with a 'sar_orbit' attribute; {sorted(set(missing))} have none "
            "(read them with urbankit.data.oscd.read_city(..., orbit=o) for o in list_s1_orbits(...)), or "
            "override the recipe with sar_orbit='mean'")


def make_eval_loader(recipe: Recipe, scenes: Sequence[Any], contract: InputContract, batch_size: int = 16):
    """Loader of patches that cover ``scenes`` completely (validation during training)."""
    from .datasets import GridSampler, SceneDataset, make_loader

    size = min([recipe.patch_size] + [min(int(s.sizes["y"]), int(s.sizes["x"])) for s in scenes])
    dataset = SceneDataset(list(scenes), GridSampler(size), contract=contract,
                           pair="single" if recipe.pair == "single" else "first_last")
    return make_loader(dataset, batch_size=batch_size, shuffle=False, seed=0)


def _channel_names(scenes: Sequence[Any], var: str, dim: str, wanted) -> tuple[str, ...] | None:
    if wanted is not None:
        return tuple(wanted)
    if not all(var in s.data_vars for s in scenes):
        return None
    return tuple(str(v) for v in scenes[0][var][dim].values)


def build_for_scenes(model_name: str, recipe: Recipe, train_scenes: Sequence[Any], **options):
    """Build a registry model for the recipe's channels and width; attach its input contract.

    The model is built first (channel counts from the recipe or the scenes), so that its
    ``input_keys`` say which modalities it reads; the contract is then fitted on the training
    scenes for exactly those modalities.
    """
    from .models import build

    bands = _channel_names(train_scenes, "optical", "band", recipe.optical_bands)
    pols = _channel_names(train_scenes, "sar", "polarisation", recipe.sar_pols)
    cfg = dict(options)
    if bands:
        cfg.setdefault("optical_channels", len(bands))
    if pols:
        cfg.setdefault("sar_channels", len(pols))
    cfg.setdefault("width", recipe.width)
    model = build(model_name, **cfg)
    keys = tuple(getattr(model, "input_keys", ()))
    modalities = tuple(m for m in ("optical", "sar") if any(k.startswith(m + "_") for k in keys))
    model.input_contract = make_contract(recipe, train_scenes, modalities)
    return model


# ----------------------------------------------------------------------------------------------
# one experiment
@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns.

    Attributes:
        model_name: registry name; ``model`` the trained module (best validation weights).
        recipe: the :class:`~urbankit.recipes.Recipe` actually run; ``contract`` its inputs.
        threshold: the decision threshold (chosen on the validation scenes, or fixed).
        fit: the :class:`urbankit.train.FitResult` (``fit.history`` per epoch); of the first
            member when the recipe trains an ensemble (``member_fits`` holds every member's).
        val_table, test_table: per-site + pooled tables at ``threshold`` (``val_table`` is None
            for a run without validation sites, ``test_table`` for one without test sites).
        predictions: ``{test site: probability DataArray}``.
        seconds, steps: training time (the members' epochs as they were timed, also for a
            resumed or cached run) and optimiser steps (for time estimates).
        epochs_trained: epochs this call trained, summed over the members (0 when every member
            was loaded finished from its checkpoints, e.g. from a run cache).
        params: trainable parameters.
        output_tables: ``{output key: test table}`` of the further heads asked for with
            ``score_outputs`` (same threshold).
    """

    model_name: str
    model: Any
    recipe: Recipe
    contract: InputContract
    threshold: float
    fit: Any
    val_table: Any
    test_table: Any
    predictions: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    params: int = 0
    seed: int = 0
    fold_name: str = ""
    member_fits: list = field(default_factory=list)
    output_tables: dict[str, Any] = field(default_factory=dict)

    @property
    def history(self):
        """The per-epoch training history (a DataFrame)."""
        return self.fit.history

    @property
    def epochs_trained(self) -> int:
        """Epochs this call trained, over all members (0: the run was loaded, not trained)."""
        return sum(f.epochs_trained for f in (self.member_fits or [self.fit]))

    @property
    def seconds_per_step(self) -> float:
        """Measured training seconds per optimiser step (validation included)."""
        return self.seconds / max(self.steps, 1)

    def f1(self, split: str = "test") -> float:
        """Pooled F1 of the ``test`` or ``val`` table (NaN for ``val`` without validation sites)."""
        table = self.test_table if split == "test" else self.val_table
        return math.nan if table is None else float(table.loc["pooled", "f1"])

    def summary(self) -> str:
        """One line: model, pooled test P/R/F1, threshold, best epoch, time."""
        if self.test_table is None:
            return (f"{self.model_name} (seed {self.seed}): no test scenes; validation F1 {self.f1('val'):.3f} at "
                    f"threshold {self.threshold:.2f}, best epoch {self.best_epochs}/{len(self.history)}; "
                    f"{self.steps} steps in {self.seconds:.0f} s")
        row = self.test_table.loc["pooled"]
        chosen = (f"validation F1 {self.f1('val'):.3f}, best epoch {self.best_epochs}/{len(self.history)}"
                  if self.val_table is not None else
                  f"no validation sites: fixed threshold, last epoch of {len(self.history)}")
        return (f"{self.model_name} (seed {self.seed}): test P {row['precision']:.3f} R {row['recall']:.3f} "
                f"F1 {row['f1']:.3f} at threshold {self.threshold:.2f} ({chosen}); "
                f"{self.steps} steps in {self.seconds:.0f} s")

    @property
    def best_epochs(self) -> str:
        """The best validation epoch, or each ensemble member's joined by ``+``."""
        return "+".join(str(f.best_epoch) for f in (self.member_fits or [self.fit]))


def run_experiment(model_name: str, train_scenes: Sequence[Any], val_scenes: Sequence[Any],
                   test_scenes: Sequence[Any], *, profile: str = "quick", recipe: Recipe | str | None = None,
                   overrides: Mapping[str, Any] | Sequence[str] | None = None, seed: int = 0, device: Any = "auto",
                   amp: bool | str = False, strategy: Any = None, build_options: Mapping[str, Any] | None = None,
                   checkpoint_dir: Any = None, resume: Any = None, progress: bool | str = False,
                   num_workers: int = 0, output_key: str = "change", label_key: str | None = None,
                   unlabelled_scenes: Sequence[Any] = (), balance_unlabelled: bool = True, validation: bool = True,
                   score_outputs: Mapping[str, str] | None = None, strategy_for: Callable | None = None,
                   configure_model: Callable | None = None, run_cache: Any = None) -> ExperimentResult:
    """Train ``model_name`` on ``train_scenes`` and score it on ``test_scenes`` (module docstring).

    Args:
        model_name: a registry name (:func:`urbankit.models.list_models`).
        train_scenes, val_scenes, test_scenes: schema scenes of disjoint sites. The validation
            scenes choose the best epoch and the threshold; the test scenes are only scored. No
            test scenes (``[]``) is allowed with validation scenes, for comparing recipes on the
            validation sites alone (``test_table`` is then None).
        profile: ``"quick"``, ``"real"`` or ``"full"`` (the recipe's size).
        recipe: a :class:`Recipe`, a recipe name, or None (the model's recipe).
        overrides: recipe fields to change (``{"lr": 1e-4}`` or ``["lr=1e-4"]``).
        seed: seed of weights, sampling and augmentation (ensemble member ``k`` uses
            :func:`member_seed` ``(seed, k)``).
        device, amp: where to train; mixed precision on CUDA.
        strategy: a :class:`urbankit.train.Strategy` (default: supervised with the recipe's loss).
        build_options: extra keyword arguments of the model (e.g. ``modality="fusion"``).
        checkpoint_dir, resume: as :func:`urbankit.train.fit` (atomic checkpoints, exact resume).
        progress: ``"epoch"`` prints a line per epoch.
        output_key, label_key: the model output that is validated and scored, and its label
            (default ``change``; ``buildings_t1`` for single-date built-up mapping).
        unlabelled_scenes: scenes trained on without their labels (semi-supervised or domain
            adaptation strategies); their sites may be in no other split.
        balance_unlabelled: how labelled and unlabelled patches are mixed
            (:func:`make_train_loader`).
        validation: False for a run without validation sites (``val_scenes`` empty): the last
            epoch is kept, the threshold is the recipe's ``fixed_threshold``, and the recipe's
            ``deviations`` and :meth:`ExperimentResult.summary` say so.
        score_outputs: further heads scored on the test scenes at the same threshold,
            ``{output key: label key}`` (e.g. ``{"buildings_t1_sar": "buildings_t1"}``).
        strategy_for: ``model -> Strategy``, for a strategy that needs the built model (e.g.
            deep-supervision targets); not together with ``strategy``.
        configure_model: ``model -> None``, called on the built model before training (e.g. to
            set ``inference_window``).
        run_cache: a folder of runs (None: none). The run keeps its checkpoints in
            :func:`cached_run_dir` under it and resumes from there: a run finished before is
            loaded instead of trained again, one interrupted continues exactly where it
            stopped. Not together with ``checkpoint_dir``/``resume`` or a custom strategy.

    Returns:
        An :class:`ExperimentResult`.
    """
    from .models import FlipAverage, ProbabilityEnsemble, count_parameters
    from .profiles import resolve_device

    _check_disjoint(train_scenes, val_scenes, test_scenes, unlabelled_scenes, need_val=validation)
    if strategy is not None and strategy_for is not None:
        raise ConfigError("run_experiment: pass strategy or strategy_for, not both")
    recipe = _run_recipe(model_name, recipe, profile, overrides, validation)
    torch_device = device if not isinstance(device, str) else resolve_device(device)
    label_key = label_key or output_key
    if run_cache is not None:
        if checkpoint_dir is not None or resume is not None:
            raise ConfigError("run_experiment: pass run_cache or checkpoint_dir/resume, not both")
        if strategy is not None or strategy_for is not None or configure_model is not None:
            raise ConfigError("run_experiment: run_cache cannot fingerprint a custom strategy, strategy_for or "
                              "configure_model; pass checkpoint_dir and resume='latest' instead")
        checkpoint_dir = cached_run_dir(run_cache, model_name, recipe, train_scenes, val_scenes, seed,
                                        unlabelled_scenes=unlabelled_scenes, build_options=build_options,
                                        output_key=output_key, label_key=label_key,
                                        balance_unlabelled=balance_unlabelled)
        resume = "latest"
    options = {"device": torch_device, "amp": amp, "output_key": output_key, "label_key": label_key}
    member = {"strategy": strategy, "build_options": build_options, "progress": progress,
              "num_workers": num_workers, "unlabelled_scenes": unlabelled_scenes,
              "balance_unlabelled": balance_unlabelled, "strategy_for": strategy_for,
              "configure_model": configure_model, **options}
    start = time.perf_counter()
    members = [_fit_member(model_name, recipe, train_scenes, val_scenes, member_seed(seed, k),
                           checkpoint_dir=_member_dir(checkpoint_dir, k, recipe.ensemble),
                           resume=_member_resume(resume, k, recipe.ensemble), **member)
               for k in range(recipe.ensemble)]
    fits = [fitted for _, fitted in members]
    seconds = _training_seconds(fits, time.perf_counter() - start)
    model = members[0][0] if recipe.ensemble == 1 else ProbabilityEnsemble([m for m, _ in members])
    if recipe.test_time_flips:
        model = FlipAverage(model)
    threshold = _run_threshold(model, recipe, fits, val_scenes, options)
    val_table, test_table, preds, heads = _score_run(model, val_scenes, test_scenes, threshold, score_outputs,
                                                     options)
    steps = sum(int(f.history["steps"].sum()) for f in fits if "steps" in f.history)
    return ExperimentResult(model_name, model, recipe, model.input_contract, threshold, fits[0], val_table,
                            test_table, preds, seconds, steps, count_parameters(model), seed, member_fits=fits,
                            output_tables=heads)


def _training_seconds(fits: Sequence[Any], wall: float) -> float:
    """Seconds the members' epochs took, summed from their histories.

    A resumed or cached run keeps the time of the epochs it did not run again; ``wall`` when a
    history has no times.
    """
    histories = [f.history for f in fits]
    if not histories or any("seconds" not in h or len(h) == 0 for h in histories):
        return wall
    return float(sum(h["seconds"].sum() for h in histories))


def _scene_digest(scene: Any) -> str:
    """A content hash of a scene: its site, sizes and every data variable's values."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((_site(scene), dict(scene.sizes))).encode())
    for name in sorted(scene.data_vars):
        values = np.ascontiguousarray(scene[name].values)
        digest.update(f"{name}{values.dtype}{values.shape}".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def _digests_by_site(scenes: Sequence[Any]) -> dict[str, Any]:
    """``{site: content hash}``; a site with several scenes (one per S1 orbit) maps to their list."""
    by_site: dict[str, list[str]] = {}
    for scene in scenes:
        by_site.setdefault(_site(scene), []).append(_scene_digest(scene))
    return {site: d[0] if len(d) == 1 else d for site, d in by_site.items()}


def cached_run_dir(run_cache: Any, model_name: str, recipe: Recipe, train_scenes: Sequence[Any],
                   val_scenes: Sequence[Any], seed: int, *, unlabelled_scenes: Sequence[Any] = (),
                   build_options: Mapping[str, Any] | None = None, output_key: str = "change",
                   label_key: str = "change", balance_unlabelled: bool = True) -> Path:
    """The folder of one run in a run cache: ``run_cache/<model>/<key>``.

    The key is a hash of everything that decides what the run trains: the urbankit version,
    the model and its build options, every recipe value (its ``sources`` and ``deviations``
    texts excepted), the seed, the output and label keys, and the contents of the training,
    validation and unlabelled scenes. Any change gives a new folder, so a cached run is only
    reused for the very same run. ``run.json`` in the folder lists these ingredients. The
    device, mixed precision and the models' code are not part of the key: a run trained on a
    CPU is loaded on a GPU, and the cache must be emptied after a model's code changes. Band
    and polarisation names are checked on loading, with the rest of the input contract.

    Returns:
        The folder (created, with its ``run.json``).
    """
    import dataclasses
    import hashlib
    import json

    from . import __version__

    fields = {k: v for k, v in dataclasses.asdict(recipe).items() if k not in ("sources", "deviations")}
    ingredients = {
        "urbankit": __version__, "model": model_name, "build_options": dict(build_options or {}),
        "recipe": fields, "seed": int(seed), "output_key": output_key, "label_key": label_key,
        "balance_unlabelled": bool(balance_unlabelled),
        **{role: _digests_by_site(scenes)
           for role, scenes in (("train", train_scenes), ("val", val_scenes), ("unlabelled", unlabelled_scenes))},
    }
    text = json.dumps(ingredients, sort_keys=True, indent=1, default=str)
    folder = Path(run_cache) / model_name / hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "run.json"
    if not record.exists():
        partial_record = folder / "run.json.partial"
        partial_record.write_text(text + "\n")
        partial_record.replace(record)
    return folder


def _run_threshold(model, recipe: Recipe, fits: Sequence[Any], val_scenes: Sequence[Any],
                   options: Mapping[str, Any]) -> float:
    """The recipe's fixed threshold, the run's validation choice, or a sweep for an ensemble."""
    if recipe.threshold != "val_best_f1":
        return float(recipe.fixed_threshold)
    if recipe.ensemble == 1 and not recipe.test_time_flips:
        return fits[0].best_threshold
    # the members' thresholds do not hold for their average (or flips): sweep it on the validation patches
    return validation_threshold(model, recipe, val_scenes, **options)


def _run_recipe(model_name: str, recipe: Any, profile: str, overrides: Any, validation: bool) -> Recipe:
    """The recipe a run uses; without validation sites, its fixed threshold (a listed deviation)."""
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(recipe or model_name, profile=profile, overrides=overrides)
    else:  # the same rule as get_recipe: "field=value" strings allowed, every change listed
        recipe = apply_overrides(recipe, overrides)
    if validation:
        return recipe
    note = (f"no validation sites: the last epoch is kept and the threshold is fixed at "
            f"{recipe.fixed_threshold:g}")
    return recipe.replace(threshold="fixed", deviations=recipe.deviations + (note,))


def _score_run(model, val_scenes: Sequence[Any], test_scenes: Sequence[Any], threshold: float,
               score_outputs: Mapping[str, str] | None, options: Mapping[str, Any]):
    """(val table or None, test table, test predictions, ``{head: test table}``) at ``threshold``."""
    from .inference import evaluate_scenes, predict

    val_table = evaluate_scenes(model, val_scenes, threshold=threshold, **options) if val_scenes else None
    if not test_scenes:  # a recipe compared on the validation sites alone
        return val_table, None, {}, {}
    if not score_outputs:
        test_table, preds = evaluate_scenes(model, test_scenes, threshold=threshold, return_predictions=True,
                                            **options)
        return val_table, test_table, preds, {}
    # one forward pass per test scene gives every head (a pass per head cost as many passes as heads)
    rest = {k: v for k, v in options.items() if k not in ("output_key", "label_key")}
    outputs = {_site(s): predict(model, s, output_key=None, **rest) for s in test_scenes}

    def table(key: str, label: str, **kw):
        return evaluate_scenes(model, test_scenes, output_key=key, label_key=label, threshold=threshold,
                               predictions={site: out[key] for site, out in outputs.items()}, **rest, **kw)

    test_table, preds = table(options["output_key"], options["label_key"], return_predictions=True)
    heads = {key: table(key, label) for key, label in dict(score_outputs).items()}
    return val_table, test_table, preds, heads


def member_seed(seed: int, k: int) -> int:
    """The seed of ensemble member ``k`` of a run seeded ``seed`` (member 0 keeps ``seed``)."""
    return int(seed) + 1000 * int(k)


def _member_dir(folder: Any, k: int, n_members: int) -> Any:
    """Member ``k``'s checkpoint folder: ``folder`` itself for one run, ``folder/member<k>`` else."""
    if folder is None or n_members == 1 or isinstance(folder, bool):
        return folder
    return Path(folder) / f"member{k}"


def _member_resume(resume: Any, k: int, n_members: int) -> Any:
    """Member ``k``'s ``resume``: ``"latest"`` and None as given (each member has its own folder)."""
    if resume is None or n_members == 1 or resume == "latest":
        return resume
    if Path(resume).suffix:
        raise ConfigError(f"run_experiment: an ensemble of {n_members} runs cannot resume from one checkpoint "
                          f"file ({resume}); pass its folder (members in member0..) or 'latest'")
    return Path(resume) / f"member{k}"


def _fit_member(model_name: str, recipe: Recipe, train_scenes: Sequence[Any], val_scenes: Sequence[Any],
                seed: int, *, strategy: Any, build_options: Mapping[str, Any] | None, device: Any, amp: Any,
                progress: Any, checkpoint_dir: Any, resume: Any, num_workers: int, output_key: str,
                label_key: str, unlabelled_scenes: Sequence[Any] = (), balance_unlabelled: bool = True,
                strategy_for: Callable | None = None, configure_model: Callable | None = None):
    """One training run of ``recipe``: ``(model with its best validation weights, FitResult)``."""
    from . import train
    from .profiles import seed_everything

    seed_everything(seed)  # the initial weights too: the same seed gives the same run in any process
    model = build_for_scenes(model_name, recipe, train_scenes, **dict(build_options or {}))
    if configure_model is not None:
        configure_model(model)
    contract = model.input_contract
    loader = make_train_loader(recipe, train_scenes, contract, seed, num_workers, unlabelled_scenes=unlabelled_scenes,
                               balance_unlabelled=balance_unlabelled)
    val_loader = make_eval_loader(recipe, val_scenes, contract) if val_scenes else None
    if strategy_for is not None:
        strategy = strategy_for(model)
    strategy = strategy or train.Supervised(loss=make_loss(recipe, train_scenes))
    fit_options = recipe.fit_options() | ({} if val_loader is not None else {"restore_best": False})
    fitted = train.fit(model, loader, val_loader, strategy=strategy, device=device, amp=amp,
                       progress=progress, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume,
                       val_key=output_key, val_label_key=label_key, **fit_options)
    return model, fitted


def validation_threshold(model, recipe: Recipe, val_scenes: Sequence[Any], *, device: Any = "cpu",
                         amp: Any = False, output_key: str = "change", label_key: str = "change") -> float:
    """Best-F1 threshold of a trained ``model`` on the validation patches of ``recipe``.

    The sweep the training loop runs at every epoch, for a model put together after training
    (an ensemble, test-time flips). Never pass test scenes: the threshold is part of the model.
    """
    from . import train

    loader = make_eval_loader(recipe, val_scenes, model.input_contract)
    scores = train.evaluate(model, loader, output_key=output_key, label_key=label_key, device=device,
                            amp=amp, sweep=True)
    return float(scores["sweep"].best_threshold("f1")[0])


def _check_disjoint(train: Sequence[Any], val: Sequence[Any], test: Sequence[Any],
                    unlabelled: Sequence[Any] = (), *, need_val: bool = True) -> None:
    names = ["train", "val", "test", "unlabelled"]
    groups = (train, val, test, unlabelled)
    sites = [{_site(s) for s in g} for g in groups]
    if not need_val and val:
        raise ConfigError("run_experiment: validation=False, but validation scenes were given")
    if not test and not val:
        raise ConfigError("run_experiment: no test scenes and no validation scenes: nothing would be scored")
    for i in range(4):
        if not groups[i] and (i == 0 or (i == 1 and need_val)):
            raise ConfigError(f"run_experiment: no {names[i]} scenes")
        for j in range(i + 1, 4):
            both = sites[i] & sites[j]
            if both:
                raise ConfigError(f"run_experiment: sites {sorted(both)} are both {names[i]} and {names[j]} "
                                  "sites; a site may be in one split only")


# ----------------------------------------------------------------------------------------------
# folds, pooling, the classical baseline
def pooled_table(tables: Sequence[Any], pooled_label: str = "pooled"):
    """One per-site table from several (e.g. folds): site rows kept, pooled row recomputed from counts."""
    import pandas as pd

    from .metrics import scores_from_counts

    rows = pd.concat([t.drop(index=pooled_label) for t in tables])
    counts = {k: int(rows[k].sum()) for k in ("tp", "fp", "fn", "tn")}
    pooled = {**counts, "n": int(sum(counts.values())), **scores_from_counts(**counts)}
    out = pd.concat([rows, pd.DataFrame([pooled], index=[pooled_label])])
    out.index.name = rows.index.name
    return out


def pooled_groups(table: Any, groups: Mapping[str, Sequence[str]], pooled_label: str = "pooled"):
    """Scores pooled over groups of sites of one per-site table (e.g. the test sites of each region).

    Args:
        table: a per-site table with ``tp``, ``fp``, ``fn``, ``tn`` columns (its pooled row is ignored).
        groups: ``{group name: site names}``; every site must be a row of ``table``.

    Returns:
        A DataFrame, one row per group: summed counts, ``n`` and the scores recomputed from them.
    """
    import pandas as pd

    from .metrics import scores_from_counts

    rows = table.drop(index=pooled_label, errors="ignore")
    out = {}
    for name, sites in groups.items():
        missing = [s for s in sites if s not in rows.index]
        if missing or not sites:
            raise ConfigError(f"pooled_groups: group {name!r}: no row for site(s) {missing or '(none given)'}")
        counts = {k: int(rows.loc[list(sites), k].sum()) for k in ("tp", "fp", "fn", "tn")}
        out[name] = {**counts, "n": int(sum(counts.values())), **scores_from_counts(**counts)}
    return pd.DataFrame.from_dict(out, orient="index")


def run_models(configs: Mapping[str, Any], train_scenes: Sequence[Any], val_scenes: Sequence[Any],
               test_scenes: Sequence[Any], *, progress: Callable[[str], None] | None = None,
               **common: Any) -> dict[str, ExperimentResult]:
    """:func:`run_experiment` for several models on the same scenes: ``{label: result}``.

    Args:
        configs: ``{label: model name}`` or ``{label: (model name, {run_experiment keyword: value})}``;
            a row's keywords (e.g. ``build_options``, ``strategy``) override ``common``.
        train_scenes, val_scenes, test_scenes: as :func:`run_experiment`, shared by every model.
        progress: called with each finished run's :meth:`ExperimentResult.summary` (e.g. ``print``).
        common: keywords of :func:`run_experiment` for every model (``profile``, ``recipe``, ``seed``...).
    """
    results = {}
    for label, config in configs.items():
        name, options = (config, {}) if isinstance(config, str) else config
        results[label] = run_experiment(name, train_scenes, val_scenes, test_scenes, **(common | dict(options)))
        if progress is not None:
            progress(f"{label}: {results[label].summary()}")
    return results


def scores_table(results: Mapping[str, ExperimentResult], columns: Sequence[str] = ("precision", "recall", "f1",
                                                                                    "kappa"),
                 split: str = "test"):
    """One row per run: the pooled ``columns`` of its ``test`` (or ``val``) table and its threshold."""
    import pandas as pd

    rows = {}
    for label, r in results.items():
        table = r.test_table if split == "test" else r.val_table
        if table is None:
            raise ConfigError(f"scores_table: run {label!r} has no {split} table (a run without validation sites)")
        rows[label] = {c: float(table.loc["pooled", c]) for c in columns} | {"threshold": r.threshold}
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class FoldsResult:
    """Results of one model over several folds (and seeds)."""

    model_name: str
    runs: list[ExperimentResult]
    folds: list[Fold]

    @property
    def test_table(self):
        """Per-site rows of every fold's test sites + the pooled row (first seed of each fold)."""
        first = {}
        for r in self.runs:
            first.setdefault(r.fold_name, r)
        return pooled_table([r.test_table for r in first.values()])

    def fold_scores(self):
        """One row per (fold, seed): pooled test P/R/F1/IoU, threshold, seconds."""
        import pandas as pd

        return pd.DataFrame([{"fold": r.fold_name, "seed": r.seed, "threshold": r.threshold,
                              **{k: float(r.test_table.loc["pooled", k]) for k in ("precision", "recall", "f1", "iou")},
                              "val_f1": r.f1("val"), "seconds": r.seconds, "steps": r.steps} for r in self.runs])


def run_folds(model_name: str, scenes_by_site: Mapping[str, Any], folds: Sequence[Fold], *,
              seeds: Sequence[int] = (0,), progress: Callable[[str], None] | None = print, **kwargs) -> FoldsResult:
    """:func:`run_experiment` for every fold and seed; test pixels pooled over the folds.

    ``scenes_by_site`` maps a site to its scene (or its list of per-orbit scenes).
    """
    runs = []
    for fold in folds:
        train_s, val_s, test_s = fold.scenes(scenes_by_site)
        for seed in seeds:
            result = run_experiment(model_name, train_s, val_s, test_s, seed=seed, **kwargs)
            result.fold_name = fold.name
            runs.append(result)
            if progress is not None:
                progress(f"{fold.name} (test {', '.join(fold.test)}; val {', '.join(fold.val)}): {result.summary()}")
    return FoldsResult(model_name, runs, list(folds))


PERCENTILES: tuple[float, ...] = tuple(np.arange(80.0, 99.95, 0.5))


def percentile_rule(score_maps: Mapping[str, Any], val_scenes: Sequence[Any], test_scenes: Sequence[Any], *,
                    percentiles: Sequence[float] = PERCENTILES, label_key: str = "change") -> tuple[float, Any]:
    """Flag each city's top ``100 - q`` % of pixels, with ``q`` chosen on the validation scenes.

    The rule adapts the threshold to every city by itself (no label is read on a test city):
    it is how change vector analysis is thresholded here, and it applies to a network's
    probability maps just as well, so both can be compared under one rule.

    Args:
        score_maps: ``{site: (H, W) score}`` for every validation and test site (higher = more
            likely changed; NaN pixels are never flagged).
        val_scenes, test_scenes: scenes whose ``label_key`` is the truth; ``q`` maximises the
            pooled F1 over the validation scenes (ties: the highest ``q``).
        percentiles: the candidate values of ``q``.

    Returns:
        ``(q, test_table)``: the per-site + pooled table of the test scenes at ``q``.
    """
    from .metrics import ConfusionCounter, per_site_table

    missing = [_site(s) for s in list(val_scenes) + list(test_scenes) if _site(s) not in score_maps]
    if missing:
        raise ConfigError(f"percentile_rule: no score map for site(s) {missing}")
    maps = {site: np.asarray(m, dtype=np.float64) for site, m in score_maps.items()}

    def counters(scenes, q):
        out = {}
        for s in scenes:
            score = maps[_site(s)]
            mask = score > np.nanpercentile(score, q)
            out[_site(s)] = ConfusionCounter().update(mask, s[label_key].values, from_logits=False)
        return out

    def pooled_f1(q):
        return float(sum(counters(val_scenes, q).values(), ConfusionCounter()).compute()["f1"])

    best = float(-max((pooled_f1(q), -q) for q in percentiles)[1])
    return best, per_site_table(counters(test_scenes, best))


def cva_experiment(val_scenes: Sequence[Any], test_scenes: Sequence[Any], *,
                   bands: Sequence[str] = ("B02", "B03", "B04", "B08", "B11", "B12"),
                   percentiles: Sequence[float] = PERCENTILES) -> tuple[float, Any]:
    """Change vector analysis with its percentile chosen on the validation scenes (pooled F1).

    Returns ``(percentile, test_table)``: the per-site + pooled table on the test scenes
    (:func:`percentile_rule` on the CVA magnitudes).
    """
    from .indices import change_vector_analysis

    magnitudes = {_site(s): change_vector_analysis(s, bands=bands)[0] for s in list(val_scenes) + list(test_scenes)}
    return percentile_rule(magnitudes, val_scenes, test_scenes, percentiles=percentiles)


def percentile_rule_of_run(result: ExperimentResult, val_scenes: Sequence[Any], test_scenes: Sequence[Any], *,
                           percentiles: Sequence[float] = PERCENTILES, device: Any = "auto") -> tuple[float, Any]:
    """:func:`percentile_rule` on a trained run's probability maps instead of its one threshold.

    The test maps are ``result.predictions``; the validation maps are predicted here.
    ``val_scenes`` and ``test_scenes`` must be the run's own.
    """
    from .inference import predict

    maps = {site: np.asarray(p) for site, p in result.predictions.items()}
    maps |= {_site(s): np.asarray(predict(result.model, s, device=device))
             for s in val_scenes}
    return percentile_rule(maps, val_scenes, test_scenes, percentiles=percentiles)


def full_recipe_steps(recipe: Recipe, train_scenes: Sequence[Any] | None = None) -> int | None:
    """Optimiser steps of a recipe's whole run; for one-pass grid epochs, counted on ``train_scenes``."""
    if recipe.total_steps is not None:
        return recipe.total_steps
    if recipe.sampler != "grid" or not train_scenes:
        return None
    from .datasets import GridSampler

    stride = int(recipe.sampler_options.get("stride", recipe.patch_size))
    shapes = [(int(s.sizes["y"]), int(s.sizes["x"])) for s in train_scenes]
    shapes = [(h, w) for h, w in shapes if min(h, w) >= recipe.patch_size]  # the paper's sizes
    if not shapes:
        return None
    patches = len(GridSampler(recipe.patch_size, stride=stride).plan(shapes))
    return recipe.epochs * math.ceil(patches / recipe.batch_size)


def estimate_full_time(result: ExperimentResult, full_recipe: Recipe | None = None,
                       train_scenes: Sequence[Any] | None = None) -> str:
    """The estimated run time of the full recipe from this run's measured seconds per step.

    The estimate is only as good as the device and the model size it was measured at: at the
    full model size on a GPU it is a GPU estimate; on a CPU, or at a reduced width, it is not.
    ``train_scenes`` counts the steps of recipes whose epoch is one pass over a patch grid.
    """
    full = full_recipe or get_recipe(result.recipe.name, profile="full")
    steps = full_recipe_steps(full, train_scenes)
    if steps is None:
        return f"{full.name}: {full.epochs} epochs of one pass over the sampler (pass train_scenes to count them)"
    seconds = steps * result.seconds_per_step
    return (f"{full.name}: {steps} steps x {result.seconds_per_step:.3f} s/step measured here "
            f"= about {seconds / 60:.1f} min")
