"""One training loop for every chapter, with pluggable loss *strategies*.

:func:`fit` trains any model of :mod:`urbankit.models` on batches of the torch layer
(:mod:`urbankit.datasets`, the batch dicts of CONTRIBUTING.md). What is learned is decided
by a :class:`Strategy`:

- :class:`Supervised`: a loss per output head (``{"change": "change"}`` maps the model's
  output key to the batch's label key), weighted and summed, on labelled samples only.
- :class:`ConsistencySSL`: a supervised part on the labelled samples of a batch plus a
  consistency loss between two output heads on the unlabelled ones (the ``labelled`` flag
  of the batch). It covers Fusion-DA (SAR vs optical built-up, Hafner et al. 2022 RSE), MMCR
  (per-date SAR vs optical semantics, Hafner et al. 2023) and dual-task SSL (change vs
  semantic change, Hafner et al. 2022 IGARSS):
  see :func:`fusion_da`, :func:`mmcr` and :func:`dualtask_ssl`.

A new strategy is a subclass with a ``compute_loss(model, batch, outputs) -> (loss, logs)``
method; the loop never special-cases a dataset or a method.

The loop validates each epoch with :mod:`urbankit.metrics` (F1 of a chosen output key),
stops early on validation F1, can pick the best-F1 threshold on a chosen split (as DS U-Net
did on its training cities), writes complete checkpoints atomically and resumes exactly:
on CPU a run interrupted after epoch *k* and resumed ends with bit-identical weights.

Recipes of the papers (each entry names its paper) are in :data:`RECIPES`; pass them with
``fit(..., **recipe("daudt"))``.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, UrbankitError
from .losses import resolve_consistency_loss, resolve_loss
from .parallel import distribute
from .profiles import amp_settings, resolve_device, seed_everything
from .viz import plot_history  # the figure lives in viz; re-exported for FitResult.plot and the chapters

__all__ = [
    "TrainingError", "NonFiniteLossError", "CheckpointError",
    "Strategy", "Supervised", "ConsistencySSL", "fusion_da", "mmcr", "dualtask_ssl",
    "RECIPES", "recipe", "fit", "FitConfig", "FitResult", "EarlyStopping", "train_epoch", "evaluate",
    "plot_history",
    "load_checkpoint", "checkpoint_file", "CHECKPOINT_LAST", "CHECKPOINT_BEST",
]

CHECKPOINT_LAST = "last.ckpt"
CHECKPOINT_BEST = "best.ckpt"
_CHECKPOINT_FORMAT = "urbankit-checkpoint"
_CHECKPOINT_VERSION = 1
_COUNT_KEYS = frozenset({"tp", "fp", "fn", "tn", "n"})  # kept out of the history (scores only)


# ----------------------------------------------------------------------------- errors
class TrainingError(UrbankitError, RuntimeError):
    """Training cannot go on (a bad batch, a missing output head, a diverged loss)."""


class NonFiniteLossError(TrainingError):
    """The training loss became NaN or infinite.

    Attributes ``epoch`` (1-based), ``step`` (1-based within the epoch), ``global_step`` and
    ``terms`` (loss term name -> float value at that step) say where and what.
    """

    def __init__(self, epoch: int, step: int, global_step: int, total: float,
                 terms: Mapping[str, float], nan_inputs: Sequence[str] = ()):
        self.epoch, self.step, self.global_step = epoch, step, global_step
        self.total = total
        self.terms = dict(terms)
        self.nan_inputs = list(nan_inputs)
        parts = ", ".join(f"{k}={v:.6g}" for k, v in self.terms.items()) or "none logged"
        msg = (f"non-finite training loss at epoch {epoch}, step {step} (global step {global_step}): "
               f"loss={total:.6g}; terms: {parts}.")
        if self.nan_inputs:
            msg += (f" The batch has NaN/inf in {self.nan_inputs}: fill no-data pixels before training "
                    f"(e.g. with the torch layer's NaN filling).")
        else:
            msg += (" Usual causes: a learning rate that is too high (try 10x lower), a loss that "
                    "divides by zero on an empty target, or fp16 overflow (try amp='bf16' or amp=False).")
        super().__init__(msg)


class CheckpointError(TrainingError):
    """A checkpoint is missing, unreadable or does not match the model."""


class Strategy:
    """How a batch and a model's outputs turn into a loss.

    Subclasses implement :meth:`compute_loss`; :meth:`forward` (default ``model(batch)``),
    :meth:`on_epoch_start` and :meth:`state_dict`/:meth:`load_state_dict` (saved in
    checkpoints, for strategies with state such as an EMA teacher) are optional hooks.
    ``logs`` maps term names to scalar tensors (detached); the loop averages them per epoch
    into ``train_<name>`` history columns.
    """

    def forward(self, model: torch.nn.Module, batch: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
        """The model's outputs for a batch (default: ``model(batch)``)."""
        return model(batch)

    def compute_loss(self, model: torch.nn.Module, batch: Mapping[str, Any],
                     outputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, logs)``: the scalar loss to minimise and its named terms (detached)."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:  # noqa: B027 - optional hook
        """Hook called before each epoch (1-based); default does nothing."""
        pass

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint with the run (default: none)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore the state of :meth:`state_dict` on resume (default: nothing)."""
        pass


def _labelled_mask(batch: Mapping[str, Any], ref: torch.Tensor) -> torch.Tensor | None:
    """The batch's ``labelled`` flag as a bool tensor on ``ref``'s device (None if absent)."""
    flag = batch.get("labelled")
    if flag is None:
        return None
    flag = torch.as_tensor(flag, device=ref.device).bool().reshape(-1)
    if flag.numel() != ref.shape[0]:
        raise TrainingError(f"batch['labelled'] has {flag.numel()} entries but the batch has "
                            f"{ref.shape[0]} samples")
    return flag


def _zero_like_graph(outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A zero loss that still belongs to the graph (so backward works on empty subsets)."""
    return sum(v.sum() * 0.0 for v in outputs.values() if torch.is_tensor(v) and v.is_floating_point())


def _get(mapping: Mapping[str, Any], key: str, what: str) -> torch.Tensor:
    try:
        return mapping[key]
    except KeyError:
        raise TrainingError(f"{what} has no key {key!r}; it has {sorted(k for k in mapping)}") from None


class Supervised(Strategy):
    """Supervised loss: ``sum_k weight_k * loss(outputs[k], batch[targets[k]])`` on labelled samples.

    Args:
        loss: a name of :data:`urbankit.losses.LOSSES` (default ``"power_jaccard"``, p=2, the KTH
            papers' loss; ``"bce"``), or a callable
            ``loss(logits, target) -> scalar``.
        targets: output key -> label key, e.g. ``{"change": "change"}`` or
            ``{"buildings_t1": "buildings_t1", "buildings_t2": "buildings_t2", "change": "change"}``.
        weights: output key -> weight (default 1 for every target).
        labelled_only: use only samples whose ``labelled`` flag is True (when the batch has one).
    """

    def __init__(self, loss: str | Callable | None = "power_jaccard",
                 targets: Mapping[str, str] | None = None, weights: Mapping[str, float] | None = None,
                 labelled_only: bool = True):
        self.loss_fn = resolve_loss(loss)
        self.targets = dict(targets or {"change": "change"})
        if not self.targets:
            raise ConfigError("Supervised(targets=...) needs at least one output key -> label key")
        self.weights = {k: 1.0 for k in self.targets}
        unknown = sorted(set(weights or {}) - set(self.targets))
        if unknown:
            raise ConfigError(f"Supervised(weights=...) names {unknown}, which are not in targets "
                              f"{sorted(self.targets)}")
        self.weights.update({k: float(v) for k, v in (weights or {}).items()})
        self.labelled_only = labelled_only

    def __repr__(self) -> str:
        return f"Supervised(targets={self.targets}, weights={self.weights})"

    def compute_loss(self, model, batch, outputs):
        """The weighted supervised loss on the labelled samples, and one log per target."""
        first = _get(outputs, next(iter(self.targets)), "the model's output")
        mask = _labelled_mask(batch, first) if self.labelled_only else None
        return self.loss_on(batch, outputs, mask)

    def loss_on(self, batch, outputs, mask: torch.Tensor | None):
        """The weighted loss on the samples selected by ``mask`` (all when None)."""
        if mask is not None and not bool(mask.any()):
            zero = _zero_like_graph(outputs)
            return zero, {f"loss_{k}": zero.detach() for k in self.targets}
        total = None
        logs: dict[str, torch.Tensor] = {}
        for out_key, label_key in self.targets.items():
            pred = _get(outputs, out_key, "the model's output")
            target = _get(batch, label_key, "the batch").to(pred.dtype)
            if mask is not None and not bool(mask.all()):
                pred, target = pred[mask], target[mask]
            if target.shape != pred.shape:
                raise TrainingError(f"output {out_key!r} has shape {tuple(pred.shape)} but label "
                                    f"{label_key!r} has shape {tuple(target.shape)}")
            term = self.loss_fn(pred, target)
            logs[f"loss_{out_key}"] = term.detach()
            term = self.weights[out_key] * term
            total = term if total is None else total + term
        return total, logs


class ConsistencySSL(Strategy):
    """Semi-supervised / domain-adaptation consistency between two heads of one model.

    On the labelled samples of a batch the ``supervised`` strategy applies; on the unlabelled
    ones (``on="unlabelled"``, the papers' choice) or on all of them (``on="all"``) each pair
    ``(student, teacher)`` of output keys adds ``cons_loss(outputs[student], outputs[teacher])``:
    with ``"pjacc"`` the power-Jaccard loss of the student's logits against the teacher's
    probabilities as soft target (no stop-gradient unless ``detach_target``), with ``"l2"``
    the MSE between both probabilities. Pair losses are averaged over pairs (``pair_reduction``).

    Total loss: ``L_sup + weight * L_cons`` (``weighting="lambda"``, the published MMCR/Fusion-DA
    form) or ``alpha * L_sup + (1 - alpha) * L_cons`` (``weighting="alpha"``, MMCR's earlier code).
    Either term is absent when the batch has no sample of its kind.
    """

    def __init__(self, supervised: Supervised, pairs: Sequence[tuple[str, str]], weight: float = 0.1,
                 cons_loss: str | Callable = "pjacc", on: str = "unlabelled", detach_target: bool = False,
                 pair_reduction: str = "mean", weighting: str = "lambda", alpha: float = 0.5):
        if not isinstance(supervised, Supervised):
            raise ConfigError("ConsistencySSL(supervised=...) must be a Supervised strategy")
        if not pairs:
            raise ConfigError("ConsistencySSL(pairs=...) needs at least one (student, teacher) pair")
        if on not in ("unlabelled", "all"):
            raise ConfigError(f"on must be 'unlabelled' or 'all', got {on!r}")
        if pair_reduction not in ("mean", "sum"):
            raise ConfigError(f"pair_reduction must be 'mean' or 'sum', got {pair_reduction!r}")
        if weighting not in ("lambda", "alpha"):
            raise ConfigError(f"weighting must be 'lambda' or 'alpha', got {weighting!r}")
        self.supervised = supervised
        self.pairs = [tuple(p) for p in pairs]
        self.weight = float(weight)
        self.cons_fn = resolve_consistency_loss(cons_loss, detach_target)
        self.on = on
        self.pair_reduction = pair_reduction
        self.weighting = weighting
        self.alpha = float(alpha)

    def __repr__(self) -> str:
        return (f"ConsistencySSL(supervised={self.supervised!r}, pairs={self.pairs}, weight={self.weight}, "
                f"on={self.on!r}, weighting={self.weighting!r})")

    def compute_loss(self, model, batch, outputs):
        """Supervised loss on labelled samples plus the weighted consistency on unlabelled ones."""
        first = _get(outputs, self.pairs[0][0], "the model's output")
        labelled = _labelled_mask(batch, first)
        if labelled is None:
            labelled = torch.ones(first.shape[0], dtype=torch.bool, device=first.device)
        sup, logs = self.supervised.loss_on(batch, outputs, labelled)
        cons_mask = ~labelled if self.on == "unlabelled" else torch.ones_like(labelled)
        if bool(cons_mask.any()):
            terms = []
            for student, teacher in self.pairs:
                s = _get(outputs, student, "the model's output")
                t = _get(outputs, teacher, "the model's output")
                if not bool(cons_mask.all()):
                    s, t = s[cons_mask], t[cons_mask]
                terms.append(self.cons_fn(s, t))
            cons = sum(terms)
            if self.pair_reduction == "mean":
                cons = cons / len(terms)
        else:
            cons = _zero_like_graph(outputs)
        logs["loss_sup"] = sup.detach()
        logs["loss_cons"] = cons.detach()
        if self.weighting == "alpha":
            total = self.alpha * sup + (1.0 - self.alpha) * cons
        else:
            total = sup + self.weight * cons
        return total, logs


def fusion_da(phi: float = 0.5, date: str = "t1", label_key: str | None = None,
              loss: str | Callable | None = "power_jaccard") -> ConsistencySSL:
    """The Fusion-DA strategy (Hafner et al. 2022).

    pJ on the SAR, optical and fusion built-up heads (labelled) plus
    ``phi * pJ(optical, sigmoid(SAR))`` on unlabelled samples; ``phi=0.5`` in the paper.
    """
    label = label_key or f"buildings_{date}"
    heads = [f"buildings_{date}_{m}" for m in ("sar", "optical", "fusion")]
    sup = Supervised(loss=loss, targets={h: label for h in heads})
    return ConsistencySSL(sup, pairs=[(f"buildings_{date}_optical", f"buildings_{date}_sar")], weight=phi,
                          cons_loss="pjacc")


def mmcr(lam: float = 0.01, cons_loss: str = "pjacc", loss: str | Callable | None = "power_jaccard",
         weighting: str = "lambda", alpha: float = 0.5) -> ConsistencySSL:
    """The MMCR strategy (multi-modal consistency regularisation, published form).

    ``L_sup = 1/2 (pJ(change) + 1/6 sum of the 6 semantic terms)`` on labelled samples,
    ``lam * 1/2 sum_k pJ(s_k^SAR, sigmoid(s_k^opt))`` on unlabelled ones.
    ``weighting="alpha", cons_loss="l2"`` gives the earlier (dav5gamma) form (there the
    semantic terms are summed, not averaged).
    """
    targets = {"change": "change"}
    weights = {"change": 0.5}
    for k in ("t1", "t2"):
        for m in ("sar", "optical", "fusion"):
            targets[f"buildings_{k}_{m}"] = f"buildings_{k}"
            weights[f"buildings_{k}_{m}"] = 0.5 / 6 if weighting == "lambda" else 1.0
    if weighting == "alpha":
        weights["change"] = 1.0
    sup = Supervised(loss=loss, targets=targets, weights=weights)
    pairs = [("buildings_t1_sar", "buildings_t1_optical"), ("buildings_t2_sar", "buildings_t2_optical")]
    return ConsistencySSL(sup, pairs=pairs, weight=lam, cons_loss=cons_loss, weighting=weighting, alpha=alpha)


def dualtask_ssl(lam: float = 0.1, semantic_change_key: str = "change_semantic",
                 loss: str | Callable | None = "power_jaccard") -> ConsistencySSL:
    """The dual-task Siam-Diff semi-supervised strategy.

    ``pJ(change) + 1/2 [pJ(s1) + pJ(s2)] + pJ(semantic change)`` on labelled pairs,
    ``lam * pJ(change, sigmoid(semantic change))`` on unlabelled ones (``lam=0.1``).
    """
    targets = {"change": "change", "buildings_t1": "buildings_t1", "buildings_t2": "buildings_t2",
               semantic_change_key: "change"}
    weights = {"buildings_t1": 0.5, "buildings_t2": 0.5}
    sup = Supervised(loss=loss, targets=targets, weights=weights)
    return ConsistencySSL(sup, pairs=[("change", semantic_change_key)], weight=lam, cons_loss="pjacc")


# ----------------------------------------------------------------------------- recipes
#: Optimiser recipes of the papers (Daudt et al. 2018; Hafner et al. 2022 GRSL, IGARSS, RSE; 2023).
RECIPES: dict[str, dict[str, Any]] = {
    "daudt": dict(optimizer="adam", lr=1e-3, weight_decay=1e-4, scheduler="exponential",
                  scheduler_options={"gamma": 0.95}),
    "dsunet": dict(optimizer="adam", lr=5e-5, weight_decay=5e-4, scheduler=None),
    "kth": dict(optimizer="adamw", lr=1e-4, weight_decay=0.01, scheduler=None),
}


def recipe(name: str) -> dict[str, Any]:
    """A copy of :data:`RECIPES` ``[name]``, to pass as ``fit(..., **recipe("daudt"))``."""
    try:
        return copy.deepcopy(RECIPES[name])
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None


def _make_optimizer(optimizer, model, lr, weight_decay) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)
    if callable(optimizer):
        return optimizer(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be 'adamw', 'adam', 'sgd', an Optimizer or a callable "
                      f"(params, lr=, weight_decay=) -> Optimizer; got {optimizer!r}")


def _make_scheduler(scheduler, optimizer, epochs, options):
    options = dict(options or {})
    if scheduler is None:
        return None
    if scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=options.get("gamma", 0.95))
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=options.get("T_max", epochs), eta_min=options.get("eta_min", 0.0))
    if callable(scheduler):
        return scheduler(optimizer)
    raise ConfigError(f"scheduler must be None, 'exponential', 'cosine' or a callable "
                      f"(optimizer) -> LRScheduler (stepped once per epoch); got {scheduler!r}")


# ----------------------------------------------------------------------------- helpers
def _to_device(batch: Mapping[str, Any], device: torch.device, channels_last: bool = False) -> dict:
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def _batch_size(batch: Mapping[str, Any]) -> int:
    for v in batch.values():
        if torch.is_tensor(v) and v.dim() >= 1:
            return int(v.shape[0])
    return 1


def _loader_generators(loader) -> list[torch.Generator]:
    """The distinct torch Generators a DataLoader shuffles with (their state is checkpointed)."""
    found, seen = [], set()
    candidates = [getattr(loader, "generator", None), getattr(loader, "sampler", None),
                  getattr(getattr(loader, "batch_sampler", None), "sampler", None)]
    for c in candidates:
        g = c if isinstance(c, torch.Generator) else getattr(c, "generator", None)
        if isinstance(g, torch.Generator) and id(g) not in seen:
            seen.add(id(g))
            found.append(g)
    return found


def _set_epoch(loader, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the loader's dataset and samplers when they have one."""
    seen = set()
    for obj in (getattr(loader, "dataset", None), getattr(loader, "sampler", None),
                getattr(loader, "batch_sampler", None), loader):
        if obj is not None and id(obj) not in seen and callable(getattr(obj, "set_epoch", None)):
            seen.add(id(obj))
            obj.set_epoch(epoch)


def _rng_state(loaders: Sequence[Any]) -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "key": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loaders": [[g.get_state() for g in _loader_generators(ld)] for ld in loaders],
    }
    return state


def _set_rng_state(state: Mapping[str, Any], loaders: Sequence[Any]) -> None:
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for ld, gstates in zip(loaders, state.get("loaders", []), strict=False):
        gens = _loader_generators(ld)
        if len(gens) != len(gstates):
            raise CheckpointError(f"the checkpoint holds {len(gstates)} shuffling generator state(s) for a "
                                  f"loader that now has {len(gens)}; resume with the same loaders")
        for g, s in zip(gens, gstates, strict=True):
            g.set_state(s)


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def _state_to_cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _pyval(v):
    """History values as plain Python scalars (safe for ``torch.load(weights_only=True)``)."""
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if torch.is_tensor(v):
        return v.item()
    return v


def _serialize(obj: Any, f) -> None:
    """Write ``obj`` to the open binary file ``f`` (a seam for tests)."""
    torch.save(obj, f)


def _atomic_save(obj: Any, path: Path) -> None:
    """Save ``obj`` to ``path`` atomically.

    Write to ``<path>.tmp``, fsync, then ``os.replace``: a reader never sees half a file,
    and an interrupted save leaves the previous file intact and no temporary behind.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            _serialize(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def checkpoint_file(path: str | os.PathLike, which: str = "best") -> Path:
    """The checkpoint file that :func:`load_checkpoint` reads for ``path`` (a file or a ``checkpoint_dir``).

    Raises:
        CheckpointError: when there is no such file.
    """
    path = Path(path)
    if path.is_dir():
        name = CHECKPOINT_BEST if which == "best" and (path / CHECKPOINT_BEST).exists() else CHECKPOINT_LAST
        path = path / name
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None, *,
                    which: str = "best", map_location="cpu") -> dict[str, Any]:
    """Read an urbankit checkpoint (a file, or a ``checkpoint_dir`` holding ``best.ckpt``/``last.ckpt``).

    With ``model`` given, loads the weights into it: ``which="best"`` the best-validation
    weights, ``"last"`` the weights at the end of the last finished epoch. Returns the
    checkpoint dict. Checkpoints load with ``torch.load(weights_only=True)``.
    """
    path = checkpoint_file(path, which)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} could not be read "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an urbankit checkpoint")
    if model is not None:
        if which == "best" and ckpt.get("best", {}).get("state") is not None:
            state = ckpt["best"]["state"]
        else:
            state = ckpt["model"]
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {str(path)!r} does not fit this model: {exc}") from exc
        if ckpt.get("input_contract") is not None:
            from .data.contract import InputContract

            model.input_contract = InputContract.from_dict(ckpt["input_contract"])
    return ckpt


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable[Mapping[str, Any]], *, output_key: str = "change",
             label_key: str | None = None, threshold: float = 0.5, device="auto",
             strategy: Strategy | None = None, amp=False, channels_last: bool = False,
             sweep: bool = False) -> dict[str, Any]:
    """Confusion counts pooled over ``loader`` (labelled samples only) and their scores.

    Returns ``{"precision", "recall", "f1", "iou", "oa", "kappa", ... , "loss"}`` (``loss``
    when a strategy is given; the counts ``tp``.. as the metrics module reports them) and,
    with ``sweep=True``, ``"sweep"``: the :class:`urbankit.metrics.ThresholdSweep` filled on
    the same data. The model is put in eval mode and back to its previous mode afterwards.
    """
    from .metrics import ConfusionCounter, ThresholdSweep

    label_key = label_key or output_key
    device = resolve_device(device)
    amp_on, amp_dtype, _ = amp_settings(amp, device)
    was_training = model.training
    model.eval()
    counter = ConfusionCounter()
    sweeper = ThresholdSweep() if sweep else None
    loss_sum, n_loss = 0.0, 0
    try:
        for batch in loader:
            batch = _to_device(batch, device, channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_on):
                outputs = (strategy.forward(model, batch) if strategy else model(batch))
            outputs = {k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}
            if strategy is not None:
                loss, _ = strategy.compute_loss(model, batch, outputs)
                loss_sum += float(loss)
                n_loss += 1
            logits = _get(outputs, output_key, "the model's output")
            target = _get(batch, label_key, "the batch")
            mask = _labelled_mask(batch, logits)
            if mask is not None:
                if not bool(mask.any()):
                    continue
                logits, target = logits[mask], target[mask]
            counter.update(logits, target, threshold=threshold, from_logits=True)
            if sweeper is not None:
                sweeper.update(logits, target, from_logits=True)
    finally:
        model.train(was_training)
    scores = {k: _pyval(v) for k, v in counter.compute().items()}
    if strategy is not None:
        scores["loss"] = loss_sum / max(n_loss, 1)
    if sweeper is not None:
        scores["sweep"] = sweeper
    return scores


def _best_threshold(sweeper) -> float:
    """Best-F1 threshold of a filled :class:`urbankit.metrics.ThresholdSweep`."""
    threshold, _ = sweeper.best_threshold("f1")
    return float(threshold)


# ----------------------------------------------------------------------------- fit
@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: one row per epoch (``epoch``, ``train_loss``, ``train_loss_<term>``,
            ``val_loss``, ``val_f1``, ``val_precision``, ``val_recall``, ``val_iou``..., ``lr``,
            ``seconds``).
        best_state: the model's state_dict (CPU tensors) at the best monitored epoch.
        best_epoch, best_score: that epoch and its monitored value (``monitor``).
        best_threshold: the best-F1 threshold on ``threshold_split`` (else the validation threshold).
        stopped_early: whether early stopping ended the run.
        epochs_trained: epochs this call trained (0 when a finished run was resumed from its
            checkpoint; ``len(history)`` for a fresh run).
        checkpoint_dir: where checkpoints were written (None when not written).
        model: the trained model (holding the best weights when ``restore_best``).
    """

    history: Any
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    best_threshold: float
    monitor: str
    stopped_early: bool = False
    checkpoint_dir: Path | None = None
    model: torch.nn.Module | None = field(default=None, repr=False)
    epochs_trained: int = 0

    def plot(self, **kwargs):
        """:func:`plot_history` of this run."""
        return plot_history(self.history, **kwargs)

    def summary(self) -> str:
        """One line: best monitored value, its epoch, the threshold, early stop."""
        return (f"best {self.monitor} {self.best_score:.4f} at epoch {self.best_epoch} of "
                f"{len(self.history)}; threshold {self.best_threshold:.2f}"
                + ("; stopped early" if self.stopped_early else ""))


def _sweep_best(sweeper) -> tuple[float, float]:
    """(threshold, F1) of the best-F1 threshold of a validation sweep; (0.5, 0.0) when undefined."""
    try:
        return sweeper.best_threshold("f1")
    except ConfigError:  # no changed pixel in the validation data, or none counted
        return 0.5, 0.0


def _input_contract(model: torch.nn.Module, train_loader):
    """The input contract of this run: the training dataset's, else the model's (or None).

    The dataset's contract is also set as ``model.input_contract`` so that :func:`predict`
    and :func:`evaluate` apply the same input rules to whole scenes.
    """
    dataset = getattr(train_loader, "dataset", None)
    contract = getattr(dataset, "contract", None) or getattr(model, "input_contract", None)
    if contract is not None:
        model.input_contract = contract
    return contract


def _describe(obj) -> Any:
    """A plain, process-independent description of a setting (no memory addresses in reprs)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    import re

    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def _run_config(**values) -> dict[str, Any]:
    """The run settings stored in checkpoints and compared on resume (plain python values)."""
    out = {k: _describe(v) for k, v in values.items()}
    out["scheduler_options"] = dict(values["scheduler_options"] or {})
    return out


#: Run settings a resumed run may change without an override.
_RESUME_FREE = ("epochs",)


def _check_resume_config(state: Mapping[str, Any], config: Mapping[str, Any], contract: Any,
                         override: Sequence[str]) -> None:
    """Refuse to resume a run whose settings differ from the checkpoint's (unless overridden)."""
    stored = dict(state.get("config") or {})
    if state.get("input_contract", contract) != contract:
        raise CheckpointError("resume: the training data's input contract (bands, SAR range, normalisation) "
                              "differs from the checkpoint's; start a new run in another checkpoint_dir")
    diffs = {k: (stored[k], v) for k, v in config.items()
             if k in stored and k not in _RESUME_FREE and stored[k] != v}
    unknown = sorted(set(override) - set(config))
    if unknown:
        raise ConfigError(f"resume_override: unknown settings {unknown}; choose from {sorted(config)}")
    refused = {k: d for k, d in diffs.items() if k not in override}
    if refused:
        listed = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in refused.items())
        raise CheckpointError(f"resume: the run's settings differ from the checkpoint's ({listed}). Resuming "
                              f"would mix two runs. Use another checkpoint_dir, or pass "
                              f"resume_override={sorted(refused)} to continue on purpose")
    for k, (a, b) in diffs.items():
        print(f"resume: {k} changed from {a!r} (checkpoint) to {b!r} (resume_override)", flush=True)


def _is_better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return best is None
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


@dataclass(frozen=True)
class FitConfig:
    """The settings of one :func:`fit` run; every field is also a keyword of :func:`fit`.

    Attributes:
        epochs: total epochs (a resumed run continues up to this number).
        steps_per_epoch: optimiser steps per epoch (default: one pass over the training
            loader; more steps cycle the loader).
        optimizer: ``"adamw"``, ``"adam"``, ``"sgd"``, an Optimizer, or a callable
            ``(params, lr=, weight_decay=) -> Optimizer``; see :data:`RECIPES`.
        lr, weight_decay: learning rate and weight decay of that optimiser.
        scheduler: None, ``"exponential"`` (``gamma`` in ``scheduler_options``, default 0.95),
            ``"cosine"`` (``T_max`` = epochs) or a callable ``(optimizer) -> LRScheduler``;
            stepped once per epoch.
        scheduler_options: keyword options of the named scheduler.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a torch.device.
        amp: mixed precision (:func:`urbankit.profiles.amp_settings`). On CUDA ``True`` is bf16
            where supported, else fp16 with a GradScaler; ``"bf16"``/``"fp16"`` force one. On CPU
            ``"bf16"`` autocasts to bfloat16 (1.5-2.15x faster U-Net train steps on 2 cores,
            ``benchmarks/results/train_precision.md``; losses within about 1e-2 of fp32), while
            ``True`` stays off so that a GPU profile does not change CPU results. Off on MPS.
        channels_last: run in the channels-last memory format (faster convolutions on GPUs and
            CPUs: 1.15-1.28x for U-Net train steps on 2 cores; same results as fp32 to float
            rounding).
        grad_clip: clip the gradient norm to this value.
        progress: True: a tqdm bar per epoch (``tqdm.auto``, ``leave=False``, so it disappears)
            and one printed summary line per epoch; ``"epoch"``: only the summary lines (clean
            output for executed notebooks without ipywidgets); False: silent.
        val_key, val_label_key, val_threshold: validation F1 of this output key against that
            label key at this threshold (:mod:`urbankit.metrics`), each epoch.
        monitor, mode: history column that picks the best epoch (default ``val_f1``, ``max``;
            ``train_loss``/``min`` when there is no validation loader). ``"val_best_f1"``
            sweeps thresholds 0.00..1.00 on the validation loader every epoch and records
            ``val_best_f1`` and ``val_best_threshold``: the best epoch *and* its threshold are
            then both chosen on validation data (the protocol of :mod:`urbankit.experiments`).
        patience, min_delta: stop after ``patience`` epochs without an improvement larger than
            ``min_delta`` (None: never stop early).
        threshold_split: ``"train"``, ``"val"`` or None: after training, sweep thresholds
            0.00..1.00 on that split with the best weights and report the best-F1 one
            (DS U-Net picked it on the training cities). ``fit(threshold_loader=)`` overrides it.
        checkpoint_dir: write ``last.ckpt`` after every epoch and ``best.ckpt`` when the
            monitored value improves (atomically).
        resume: None, a checkpoint file or folder, or ``"latest"`` (``checkpoint_dir/last.ckpt``
            when it exists, else start fresh). Continues exactly where the checkpoint ended.
            The run's configuration (lr, seed, optimiser, ... and the input contract) must
            equal the checkpoint's, else a :class:`CheckpointError` names what differs;
            ``epochs`` may grow.
        seed: seed python/numpy/torch (:func:`urbankit.seed_everything`) before training.
        restore_best: load the best weights into the model at the end.
        resume_override: configuration keys allowed to differ from the checkpoint's on resume
            (each difference is printed); the new value is then used from the next epoch on
            for ``lr`` and ``weight_decay``, the others are recorded only.
    """

    epochs: int = 1
    steps_per_epoch: int | None = None
    optimizer: str | Callable | torch.optim.Optimizer = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str | Callable | None = None
    scheduler_options: Mapping[str, Any] | None = None
    device: Any = "auto"
    amp: bool | str = True
    channels_last: bool = False
    grad_clip: float | None = None
    progress: bool | str = True
    val_key: str = "change"
    val_label_key: str | None = None
    val_threshold: float = 0.5
    monitor: str = "val_f1"
    mode: str | None = None
    patience: int | None = None
    min_delta: float = 0.0
    threshold_split: str | None = None
    checkpoint_dir: str | os.PathLike | None = None
    resume: str | os.PathLike | None = None
    seed: int | None = None
    restore_best: bool = True
    resume_override: Sequence[str] = ()

    def __post_init__(self) -> None:
        """Refuse settings that cannot run, naming the setting and what it must be."""
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"epochs must be a non-negative int, got {self.epochs!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ConfigError(f"patience must be a positive int or None, got {self.patience!r}")
        if self.threshold_split not in (None, "train", "val"):
            raise ConfigError(f"threshold_split must be None, 'train' or 'val', got {self.threshold_split!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch!r}")
        if self.mode and self.mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.progress not in (True, False, "epoch"):
            raise ConfigError(f"progress must be True, False or 'epoch', got {self.progress!r}")

    def for_loaders(self, has_val: bool, has_threshold_loader: bool = False) -> FitConfig:
        """This config with ``monitor``/``mode`` settled for the loaders a run has.

        Without a validation loader a ``val_*`` monitor falls back to ``train_loss``; the
        default mode is ``min`` for a loss column and ``max`` otherwise.
        """
        if self.threshold_split == "val" and not has_val and not has_threshold_loader:
            raise ConfigError("threshold_split='val' needs a val_loader")
        monitor = "train_loss" if not has_val and self.monitor.startswith("val_") else self.monitor
        mode = self.mode or ("min" if "loss" in monitor else "max")
        return dataclasses.replace(self, monitor=monitor, mode=mode)

    @property
    def sweeps_validation(self) -> bool:
        """Whether each epoch's validation sweeps thresholds (``monitor`` is a best-threshold column)."""
        return self.monitor in ("val_best_f1", "val_best_threshold")

    def run_settings(self, strategy: Strategy) -> dict[str, Any]:
        """The settings stored in checkpoints and compared on resume (plain Python values)."""
        return _run_config(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay, monitor=self.monitor,
                           mode=self.mode, strategy=strategy, optimizer=self.optimizer, scheduler=self.scheduler,
                           scheduler_options=self.scheduler_options, steps_per_epoch=self.steps_per_epoch,
                           seed=self.seed, grad_clip=self.grad_clip, patience=self.patience)


def _fit_config(config: FitConfig | None, settings: Mapping[str, Any]) -> FitConfig:
    """``config`` (default: all defaults) with the keyword ``settings`` of :func:`fit` applied."""
    names = {f.name for f in dataclasses.fields(FitConfig)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"fit() got unknown setting(s) {unknown}; the settings are the fields of "
                        f"urbankit.train.FitConfig: {sorted(names)}")
    return dataclasses.replace(config or FitConfig(), **settings)


@dataclass
class EarlyStopping:
    """Tracks the best epoch of one history column and decides when to stop.

    Attributes:
        monitor: the history column compared between epochs (e.g. ``"val_f1"``).
        mode: ``"max"`` (higher is better) or ``"min"``.
        patience: stop after this many epochs without improvement (None: never).
        min_delta: an improvement must exceed this margin.
        best: ``{"state", "epoch", "score", "threshold"}`` of the best epoch so far (``state``:
            the model's state_dict on the CPU; ``threshold``: its validation threshold).
        bad_epochs: epochs since the last improvement.
        stopped: whether the patience ran out.
    """

    monitor: str
    mode: str
    patience: int | None = None
    min_delta: float = 0.0
    best: dict[str, Any] = field(default_factory=lambda: {"state": None, "epoch": 0, "score": None,
                                                          "threshold": 0.5})
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, record: Mapping[str, Any], model: torch.nn.Module, *, last_epoch: bool = False) -> bool:
        """Score one epoch's record; keep the model's weights when it improved.

        Args:
            record: the epoch's history row (holds ``monitor`` and ``epoch``).
            model: its weights are copied to the CPU when the epoch is the best so far.
            last_epoch: the run ends after this epoch anyway (no early stop is declared).

        Returns:
            Whether this epoch improved on the best one.

        Raises:
            ConfigError: ``monitor`` is not a column of the record.
        """
        if self.monitor not in record:
            raise ConfigError(f"monitor {self.monitor!r} is not a history column; columns: {sorted(record)}")
        value = record[self.monitor]
        improved = _is_better(value, self.best["score"], self.mode, self.min_delta)
        if improved:
            self.best = {"state": _state_to_cpu(model.state_dict()), "epoch": record["epoch"],
                         "score": _pyval(value), "threshold": record.get("val_best_threshold", self.best["threshold"])}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience and not last_epoch:
            self.stopped = True
        return improved


# ----------------------------------------------------------------------------- epoch step
def _epoch_batches(loader: Iterable[Mapping[str, Any]], steps: int | None) -> Iterator[Mapping[str, Any]]:
    """One pass over ``loader``, or exactly ``steps`` batches cycling it (empty if it yields none)."""
    it = iter(loader)
    done = 0
    while steps is None or done < steps:
        try:
            batch = next(it)
        except StopIteration:
            if steps is None or done == 0:
                return
            it = iter(loader)  # cycle the loader for a fixed number of steps
            continue
        done += 1
        yield batch


def _train_step(model: torch.nn.Module, batch: Mapping[str, Any], strategy: Strategy,
                optimizer: torch.optim.Optimizer, *, device: torch.device, amp_dtype: torch.dtype | None,
                scaler: torch.amp.GradScaler | None, grad_clip: float | None,
                where: tuple[int, int, int]) -> tuple[float, dict[str, torch.Tensor]]:
    """One optimiser step on one batch; returns (loss value, per-term logs).

    Raises:
        NonFiniteLossError: the loss is NaN/inf (``where`` = epoch, step, global step).
    """
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        outputs = strategy.forward(model, batch)
    if amp_dtype is not None:
        outputs = {k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}
    loss, logs = strategy.compute_loss(model, batch, outputs)
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        nan_inputs = [k for k, v in batch.items() if torch.is_tensor(v) and v.is_floating_point()
                      and not bool(torch.isfinite(v).all())]
        raise NonFiniteLossError(*where, loss_value, {k: float(v) for k, v in logs.items()}, nan_inputs)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return loss_value, logs


def _epoch_bar(progress: bool | str, loader: Any, steps: int | None, desc: str):
    """A tqdm bar over one epoch's steps when ``progress is True``, else None."""
    if progress is not True:
        return None
    from tqdm.auto import tqdm

    try:
        total = steps or len(loader)
    except TypeError:
        total = None
    return tqdm(total=total, desc=desc, leave=False, unit="batch", mininterval=0.5)


def train_epoch(model: torch.nn.Module, loader: Iterable[Mapping[str, Any]], strategy: Strategy,
                optimizer: torch.optim.Optimizer, *, epoch: int = 1, steps: int | None = None, device="auto",
                amp: bool | str = False, channels_last: bool = False, scaler: torch.amp.GradScaler | None = None,
                grad_clip: float | None = None, progress: bool | str = False, desc: str | None = None,
                first_step: int = 0) -> dict[str, Any]:
    """Train ``model`` for one epoch: the loop body of :func:`fit`, usable on its own.

    Args:
        model: a module taking the batch dict and returning a dict of logits.
        loader: batch dicts; ``set_epoch(epoch)`` of its dataset/sampler is called first.
        strategy: the :class:`Strategy` that turns outputs into a loss.
        optimizer: stepped once per batch.
        epoch: the epoch number (1-based; recorded and passed to ``set_epoch``).
        steps: optimiser steps (default: one pass over ``loader``; more steps cycle it).
        device, amp, channels_last: as in :class:`FitConfig`.
        scaler: the GradScaler for fp16 AMP (created when fp16 needs one and none is given).
        grad_clip: clip the gradient norm to this value.
        progress: True shows a tqdm bar over the steps (``desc`` its label).
        first_step: optimiser steps before this epoch (for the step count in error messages).

    Returns:
        The epoch's history record: ``epoch``, ``steps``, ``train_loss`` (mean over steps),
        ``train_<term>`` per logged loss term, and ``lr`` (of the first parameter group).

    Raises:
        NonFiniteLossError: a loss was NaN/inf. TrainingError: the loader yielded no batch.
    """
    device = resolve_device(device)
    amp_on, amp_dtype, use_scaler = amp_settings(amp, device)
    if use_scaler and scaler is None:
        scaler = torch.amp.GradScaler("cuda")
    scaler = scaler if use_scaler else None
    model.train()
    strategy.on_epoch_start(epoch)
    _set_epoch(loader, epoch)
    bar = _epoch_bar(progress, loader, steps, desc or f"epoch {epoch}")
    sums: dict[str, torch.Tensor] = {}
    loss_sum, n_seen = 0.0, 0
    for step, batch in enumerate(_epoch_batches(loader, steps), start=1):
        batch = _to_device(batch, device, channels_last)
        loss_value, logs = _train_step(model, batch, strategy, optimizer, device=device,
                                       amp_dtype=amp_dtype if amp_on else None, scaler=scaler,
                                       grad_clip=grad_clip, where=(epoch, step, first_step + step))
        loss_sum += loss_value
        n_seen += 1
        for k, v in logs.items():
            sums[k] = sums[k] + v if k in sums else v.detach().clone()
        if bar is not None:
            bar.update(1)
            if step % 10 == 1:
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
    if bar is not None:
        bar.close()
    if n_seen == 0:
        raise TrainingError(f"epoch {epoch}: the training loader yielded no batch")
    record: dict[str, Any] = {"epoch": epoch, "steps": n_seen, "train_loss": loss_sum / n_seen}
    for k, v in sums.items():
        record[f"train_{k}"] = float(v) / n_seen
    record["lr"] = float(optimizer.param_groups[0]["lr"])
    return record


def _validation_columns(model: torch.nn.Module, val_loader, strategy: Strategy, cfg: FitConfig,
                        device: torch.device, epoch: int) -> dict[str, Any]:
    """The ``val_*`` columns of one epoch: loss, scores at ``val_threshold``, and the sweep's best."""
    _set_epoch(val_loader, epoch)
    scores = evaluate(model, val_loader, output_key=cfg.val_key, label_key=cfg.val_label_key,
                      threshold=cfg.val_threshold, device=device, strategy=strategy, amp=cfg.amp,
                      channels_last=cfg.channels_last, sweep=cfg.sweeps_validation)
    out: dict[str, Any] = {"val_loss": scores.pop("loss")}
    if cfg.sweeps_validation:
        out["val_best_threshold"], out["val_best_f1"] = _sweep_best(scores.pop("sweep"))
    for k, v in scores.items():
        if k not in _COUNT_KEYS and isinstance(v, (int, float)):
            out[f"val_{k}"] = _pyval(v)
    return out


def _print_epoch(record: Mapping[str, Any], cfg: FitConfig, marked: bool, stopped: bool) -> None:
    """The one summary line per epoch (``*`` marks a new best validated epoch)."""
    shown = [f"epoch {record['epoch']}/{cfg.epochs}", f"loss {_fmt(record['train_loss'])}"]
    for k in ("val_loss", "val_f1", "val_precision", "val_recall", "val_best_f1", "val_best_threshold"):
        if k in record:
            shown.append(f"{k} {_fmt(record[k])}")
    shown += [f"lr {record['lr']:.2e}", f"{record['seconds']:.1f} s"]
    if marked:
        shown.append("*")
    if stopped:
        shown.append(f"(early stop: no {cfg.monitor} gain in {cfg.patience} epochs)")
    print("  ".join(shown), flush=True)


# ----------------------------------------------------------------------------- checkpointing
@dataclass
class _Run:
    """The mutable state of one :func:`fit` run: everything a checkpoint holds."""

    model: torch.nn.Module
    strategy: Strategy
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    device: torch.device
    rng_loaders: list[Any]
    settings: dict[str, Any]
    contract: dict[str, Any] | None
    checkpoint_dir: Path | None
    stopper: EarlyStopping
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    resumed_epochs: int = 0  # history rows the checkpoint brought (not trained by this call)


def _read_resume(resume, ckpt_dir: Path | None) -> dict[str, Any] | None:
    """The checkpoint ``resume`` names (None: start fresh; ``"latest"``: ``last.ckpt`` if any)."""
    if resume is None:
        return None
    if resume == "latest":
        if ckpt_dir is None:
            raise ConfigError("resume='latest' needs checkpoint_dir")
        last = ckpt_dir / CHECKPOINT_LAST
        return load_checkpoint(last, map_location="cpu") if last.exists() else None
    p = Path(resume)
    return load_checkpoint(p / CHECKPOINT_LAST if p.is_dir() else p, map_location="cpu")


def _restore(run: _Run, state: Mapping[str, Any], cfg: FitConfig) -> None:
    """Continue ``run`` exactly where the checkpoint ``state`` ended (weights, optimiser, RNGs...)."""
    _check_resume_config(state, run.settings, run.contract, cfg.resume_override)
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint does not fit this model/optimizer: {exc}") from exc
    if run.scheduler is not None and state.get("scheduler") is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    for group in run.optimizer.param_groups:  # overridden values apply from the next epoch on
        if "lr" in cfg.resume_override:
            group["lr"] = group["initial_lr"] = cfg.lr
        if "weight_decay" in cfg.resume_override:
            group["weight_decay"] = cfg.weight_decay
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    run.strategy.load_state_dict(state.get("strategy") or {})
    run.history = list(state["history"])
    run.resumed_epochs = len(run.history)
    run.start_epoch = int(state["epoch"])
    run.stopper.best = dict(state["best"])
    run.stopper.bad_epochs = int(state.get("bad_epochs", 0))
    run.stopper.stopped = bool(state.get("stopped_early"))
    _set_rng_state(state["rng"], run.rng_loaders)
    if run.stopper.stopped:
        run.start_epoch = max(run.start_epoch, cfg.epochs)


def _start_run(model: torch.nn.Module, train_loader, val_loader, strategy: Strategy, cfg: FitConfig) -> _Run:
    """Device, optimiser, scheduler, scaler and checkpoint folder of a run; resumed when asked."""
    device = resolve_device(cfg.device)
    _, _, use_scaler = amp_settings(cfg.amp, device)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = _make_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    sched = _make_scheduler(cfg.scheduler, opt, cfg.epochs, cfg.scheduler_options)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir is not None else None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    resume_state = _read_resume(cfg.resume, ckpt_dir)
    contract = _input_contract(model, train_loader)
    stopper = EarlyStopping(cfg.monitor, cfg.mode, cfg.patience, cfg.min_delta)
    stopper.best["threshold"] = float(cfg.val_threshold)
    run = _Run(model=model, strategy=strategy, optimizer=opt, scheduler=sched,
               scaler=torch.amp.GradScaler("cuda", enabled=use_scaler), device=device,
               rng_loaders=[train_loader] + ([val_loader] if val_loader is not None else []),
               settings=cfg.run_settings(strategy), contract=contract.to_dict() if contract is not None else None,
               checkpoint_dir=ckpt_dir, stopper=stopper)
    if resume_state is not None:
        _restore(run, resume_state, cfg)
    return run


def _save_checkpoints(run: _Run, epoch: int, improved: bool) -> None:
    """Write ``last.ckpt`` (complete state) and, when ``improved``, ``best.ckpt`` (atomically)."""
    best = run.stopper.best
    ckpt = {
        "format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION, "epoch": epoch,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
        "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
        "strategy": run.strategy.state_dict(), "history": run.history, "best": best,
        "bad_epochs": run.stopper.bad_epochs, "stopped_early": run.stopper.stopped,
        "rng": _rng_state(run.rng_loaders), "config": run.settings, "input_contract": run.contract,
    }
    _atomic_save(ckpt, run.checkpoint_dir / CHECKPOINT_LAST)
    if improved:
        _atomic_save({"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION, "epoch": epoch,
                      "model": best["state"], "best": best, "history": run.history,
                      "config": run.settings, "input_contract": run.contract},
                     run.checkpoint_dir / CHECKPOINT_BEST)


def _record_threshold(ckpt_dir: Path | None, threshold: float) -> None:
    """Store the final threshold in ``best.ckpt`` (rewritten atomically only when it changed)."""
    if ckpt_dir is None or not (ckpt_dir / CHECKPOINT_BEST).exists():
        return
    meta = torch.load(ckpt_dir / CHECKPOINT_BEST, map_location="cpu", weights_only=True)
    if meta.get("best", {}).get("threshold") != threshold:
        meta["best"]["threshold"] = threshold
        _atomic_save(meta, ckpt_dir / CHECKPOINT_BEST)


# ----------------------------------------------------------------------------- fit
def _final_threshold(run: _Run, cfg: FitConfig, threshold_loader) -> float:
    """Load the best weights (``restore_best``) and pick the threshold the run reports.

    ``threshold_loader`` (else the ``threshold_split`` loader) is swept with the best weights;
    without either, the best epoch's validation threshold is kept.
    """
    model, best = run.model, run.stopper.best
    if best["state"] is None:  # zero epochs run (e.g. resumed a finished run without state)
        best["state"] = _state_to_cpu(model.state_dict())
    threshold = float(best.get("threshold", cfg.val_threshold))
    if threshold_loader is not None:
        current = _state_to_cpu(model.state_dict())
        model.load_state_dict(best["state"])
        scores = evaluate(model, threshold_loader, output_key=cfg.val_key, label_key=cfg.val_label_key,
                          device=run.device, amp=cfg.amp, channels_last=cfg.channels_last, sweep=True)
        threshold = _best_threshold(scores["sweep"])
        if not cfg.restore_best:
            model.load_state_dict(current)
    elif cfg.restore_best:
        model.load_state_dict(best["state"])
    best["threshold"] = threshold
    _record_threshold(run.checkpoint_dir, threshold)
    return threshold


def _fit_result(run: _Run, cfg: FitConfig, threshold: float) -> FitResult:
    """The :class:`FitResult` of a finished run (history as a DataFrame, epoch and loss first)."""
    import pandas as pd

    frame = pd.DataFrame(run.history)
    if not frame.empty:
        front = ["epoch", "train_loss"]
        frame = frame[front + [c for c in frame.columns if c not in front]]
    best = run.stopper.best
    return FitResult(history=frame, best_state=best["state"], best_epoch=int(best["epoch"]),
                     best_score=float("nan") if best["score"] is None else float(best["score"]),
                     best_threshold=threshold, monitor=cfg.monitor, stopped_early=run.stopper.stopped,
                     checkpoint_dir=run.checkpoint_dir, model=run.model,
                     epochs_trained=len(run.history) - run.resumed_epochs)


def fit(model: torch.nn.Module, train_loader: Iterable[Mapping[str, Any]],
        val_loader: Iterable[Mapping[str, Any]] | None = None, *, strategy: Strategy | None = None,
        threshold_loader: Iterable[Mapping[str, Any]] | None = None,
        callbacks: Sequence[Callable[[dict, torch.nn.Module], Any]] = (),
        config: FitConfig | None = None, **settings: Any) -> FitResult:
    """Train ``model`` on ``train_loader`` with ``strategy`` and return a :class:`FitResult`.

    Each epoch is :func:`train_epoch`, then the validation columns (:func:`evaluate`), the
    scheduler step, :class:`EarlyStopping` and the checkpoints; at the end the best weights
    and the threshold are settled. Started by ``torchrun`` with several processes it trains
    data-parallel (DistributedDataParallel, each process a slice of every global batch; gloo on
    CPU, nccl on CUDA): see :mod:`urbankit.parallel` for when that equals one process.

    Args:
        model: a module taking the batch dict and returning a dict of logits.
        train_loader: iterable of batch dicts (a DataLoader, or a list in tests).
            ``set_epoch(epoch)`` of the loader's dataset/sampler is called before each epoch.
        val_loader: validation batches, scored each epoch (None: monitor ``train_loss``).
        strategy: a :class:`Strategy`; default ``Supervised()`` (power Jaccard on ``change``).
        threshold_loader: after training, sweep thresholds on these batches with the best
            weights (overrides ``threshold_split``).
        callbacks: callables ``cb(epoch_record, model)`` after each epoch (after checkpointing);
            raising in one stops training (the checkpoint of that epoch is already on disk).
        config: a :class:`FitConfig` (default: its defaults).
        **settings: any field of :class:`FitConfig` (``epochs=``, ``lr=``, ``monitor=``,
            ``checkpoint_dir=``, ``resume=``...), applied on top of ``config``.

    Returns:
        The history, best epoch, score, weights and threshold of the run.

    Raises:
        ConfigError: a setting is invalid. CheckpointError: a checkpoint cannot be resumed.
        NonFiniteLossError: a loss became NaN/inf.
    """
    cfg = _fit_config(config, settings).for_loaders(val_loader is not None, threshold_loader is not None)
    strategy = strategy if strategy is not None else Supervised()
    if cfg.seed is not None:
        seed_everything(cfg.seed)
    run = _start_run(model, train_loader, val_loader, strategy, cfg)
    ddp = distribute(model, train_loader, run.device)  # under torchrun: DDP + this process's share of each batch
    global_step = sum(int(r.get("steps", 0)) for r in run.history)
    for epoch in range(run.start_epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        record = train_epoch(ddp.model, ddp.loader, strategy, run.optimizer, epoch=epoch, steps=cfg.steps_per_epoch,
                             device=run.device, amp=cfg.amp, channels_last=cfg.channels_last, scaler=run.scaler,
                             grad_clip=cfg.grad_clip, progress=cfg.progress if ddp.is_main else False,
                             desc=f"epoch {epoch}/{cfg.epochs}", first_step=global_step)
        record = ddp.average(record, [k for k in record if k.startswith("train_")])
        global_step += record["steps"]
        if val_loader is not None:
            record.update(_validation_columns(model, val_loader, strategy, cfg, run.device, epoch))
        if run.scheduler is not None:
            run.scheduler.step()
        record["seconds"] = time.perf_counter() - t0
        improved = run.stopper.update(record, model, last_epoch=epoch >= cfg.epochs)
        record = {k: _pyval(v) for k, v in record.items()}
        run.history.append(record)
        if cfg.progress and ddp.is_main:
            _print_epoch(record, cfg, improved and val_loader is not None, run.stopper.stopped)
        if run.checkpoint_dir is not None and ddp.is_main:
            _save_checkpoints(run, epoch, improved)
        for cb in callbacks:
            cb(record, model)
        if run.stopper.stopped:
            break
    if threshold_loader is None and cfg.threshold_split is not None:
        threshold_loader = train_loader if cfg.threshold_split == "train" else val_loader
    return _fit_result(run, cfg, _final_threshold(run, cfg, threshold_loader))
