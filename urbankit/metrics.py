"""Pixel metrics for built-up mapping and change detection, pooled over whole data sets.

The KTH papers (and Daudt et al.) report scores for the positive class (change, or
built-up) computed from confusion counts **accumulated over the whole test set** and only
then turned into ratios (as in Hafner et al. 2022, GRSL, and 2023). Averaging per-batch or per-image F1 gives a
different, batch-size dependent number; :class:`ConfusionCounter` therefore keeps integer
counts and computes the scores at the end.

Conventions (fixed here for the whole kit):

- A pixel is predicted positive when ``sigmoid(logit) > threshold`` (strictly greater;
  threshold 0.5 by default), or ``probability > threshold`` with ``from_logits=False``.
  Boolean inputs are taken as hard predictions and the threshold is ignored.
- The target is positive where ``target > 0.5``: 0/1 labels. Building *fractions* are not
  targets: turn them into 0/1 built-up masks with :func:`urbankit.data.schema.is_built` first
  (the torch layer and :func:`urbankit.inference.scene_label` do), the kit's one "built" rule.
- **FP = predicted AND NOT true, FN = NOT predicted AND true.** (The DS U-Net code swaps
  the two; F1 does not notice, precision and recall do: its ``evaluation_metrics.py``, Hafner et al. 2022, GRSL.)
- Undefined ratios (0/0) are **NaN** by default, never silently 0 or 1:

  ========================================  ===========  ======  ====  ====  ====  =====
  case                                       precision    recall  F1    IoU   OA    kappa
  ========================================  ===========  ======  ====  ====  ====  =====
  no positives in truth, none predicted      NaN          NaN     NaN   NaN   1     NaN
  no positives in truth, some predicted      0            NaN     0     0     <1    0
  positives in truth, none predicted         NaN          0       0     0     <1    0
  everything positive and predicted so       1            1       1     1     1     NaN
  empty input (no pixel counted)             NaN          NaN     NaN   NaN   NaN   NaN
  ========================================  ===========  ======  ====  ====  ====  =====

  F1 and IoU are computed from the counts (``2TP / (2TP + FP + FN)``, ``TP / (TP + FP + FN)``),
  which equals ``2PR / (P + R)`` wherever P and R are defined and is 0, not NaN, when the
  prediction misses every true positive. Kappa is NaN when the chance agreement is 1 (truth
  and prediction are both a single, identical class). NaN marks a site where the score
  does not exist (e.g. a site without change): pandas' ``mean`` skips it, while a 1 would
  inflate a mean over sites. Pass ``undefined=1.0`` (or 0.0) to
  :func:`scores_from_counts` / :meth:`ConfusionCounter.compute` for another convention.

Inputs may be torch tensors (counted on their device), numpy arrays or xarray DataArrays.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = [
    "COUNT_NAMES",
    "SCORE_NAMES",
    "ConfusionCounter",
    "ThresholdSweep",
    "cohen_kappa",
    "kappa_from_confusion",
    "default_thresholds",
    "mean_std_over_seeds",
    "per_region_table",
    "per_site_table",
    "scores_from_counts",
]

SCORE_NAMES = ("precision", "recall", "f1", "iou", "oa", "kappa")
COUNT_NAMES = ("tp", "fp", "fn", "tn")


def _ratio(num: float, den: float, undefined: float) -> float:
    return float(num) / float(den) if den != 0 else float(undefined)


def kappa_from_confusion(confusion: Any, undefined: float = math.nan) -> float:
    r"""Cohen's kappa (Cohen 1960) of a k x k confusion matrix of counts: the kit's one kappa.

    .. math::

        p_o = \frac{\sum_i C_{ii}}{N},\quad
        p_e = \frac{\sum_i C_{i\cdot}\,C_{\cdot i}}{N^2},\quad
        \kappa = \frac{p_o - p_e}{1 - p_e}

    Integer arithmetic (exact for any data-set size). ``undefined`` (NaN) when N = 0 or p_e = 1
    (both maps hold one and the same single class: agreement by chance alone, kappa is 0/0).

    Args:
        confusion: (k, k) counts, rows = one map's classes, columns = the other's.
        undefined: the value returned when kappa is 0/0.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ConfigError(f"kappa needs a square confusion matrix, got shape {cm.shape}")
    n = int(cm.sum())
    if n == 0:
        return float(undefined)
    chance = int((cm.sum(axis=0) * cm.sum(axis=1)).sum())    # p_e * N^2
    num = int(np.trace(cm)) * n - chance                      # (p_o - p_e) * N^2
    den = n * n - chance                                      # (1 - p_e) * N^2
    return _ratio(num, den, undefined)


def cohen_kappa(tp: int, fp: int, fn: int, tn: int, undefined: float = math.nan) -> float:
    """Cohen's kappa of a 2x2 confusion matrix (:func:`kappa_from_confusion`)."""
    return kappa_from_confusion([[int(tn), int(fp)], [int(fn), int(tp)]], undefined)


def scores_from_counts(tp: int, fp: int, fn: int, tn: int, undefined: float = math.nan) -> dict[str, float]:
    """Precision, recall, F1, IoU, overall accuracy and Cohen's kappa from confusion counts.

    Counts are for the positive class: ``tp`` = predicted and true, ``fp`` = predicted but not
    true, ``fn`` = true but not predicted, ``tn`` = neither. ``undefined`` is returned for
    ratios whose denominator is 0 (see the module docstring for the table of edge cases).

    >>> s = scores_from_counts(tp=2, fp=1, fn=3, tn=4)
    >>> round(s["precision"], 3), round(s["recall"], 3), round(s["f1"], 3)
    (0.667, 0.4, 0.5)
    """
    counts = []
    for name, value in zip(COUNT_NAMES, (tp, fp, fn, tn)):
        v = int(value)
        if v != value or v < 0:
            raise ConfigError(f"scores_from_counts: {name} must be a non-negative integer, got {value!r}")
        counts.append(v)
    tp, fp, fn, tn = counts
    n = tp + fp + fn + tn
    return {
        "precision": _ratio(tp, tp + fp, undefined),
        "recall": _ratio(tp, tp + fn, undefined),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, undefined),
        "iou": _ratio(tp, tp + fp + fn, undefined),
        "oa": _ratio(tp + tn, n, undefined),
        "kappa": cohen_kappa(tp, fp, fn, tn, undefined),
    }


# --------------------------------------------------------------------------------------
# input handling (torch / numpy / xarray)

def _is_torch(x: Any) -> bool:
    try:
        import torch
    except ImportError:  # numpy-only use
        return False
    return isinstance(x, torch.Tensor)


def _to_numpy(x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray) and hasattr(x, "to_numpy"):  # xarray / pandas
        x = x.to_numpy()
    return np.asarray(x)


def _align(pred, target, mask, where: str):
    """Bring pred, target (and mask) to one library and one shape."""
    use_torch = _is_torch(pred) or _is_torch(target) or _is_torch(mask)
    if use_torch:
        import torch

        ref = next(t for t in (pred, target, mask) if _is_torch(t))

        def conv(a):
            if a is None or _is_torch(a):
                return a
            return torch.as_tensor(_to_numpy(a), device=ref.device)

        pred, target, mask = conv(pred), conv(target), conv(mask)
        pred, target = pred.detach(), target.detach()
        mask = mask.detach() if mask is not None else None
    else:
        pred, target = _to_numpy(pred), _to_numpy(target)
        mask = _to_numpy(mask) if mask is not None else None
    if tuple(pred.shape) != tuple(target.shape):
        squeezed_p = tuple(s for s in pred.shape if s != 1)
        squeezed_t = tuple(s for s in target.shape if s != 1)
        if squeezed_p != squeezed_t:
            raise ConfigError(
                f"{where}: predictions have shape {tuple(pred.shape)} but the target has shape "
                f"{tuple(target.shape)}; they must match (singleton dimensions aside)"
            )
        target = target.reshape(pred.shape)
    if mask is not None and tuple(mask.shape) != tuple(pred.shape):
        if tuple(s for s in mask.shape if s != 1) != tuple(s for s in pred.shape if s != 1):
            raise ConfigError(
                f"{where}: mask has shape {tuple(mask.shape)} but the predictions have shape "
                f"{tuple(pred.shape)}; they must match (singleton dimensions aside)"
            )
        mask = mask.reshape(pred.shape)
    return pred, target, mask, use_torch


def _probabilities(pred, from_logits: bool, use_torch: bool):
    """Float probabilities (sigmoid of logits), or None for boolean (hard) predictions."""
    if use_torch:
        import torch

        if pred.dtype == torch.bool:
            return None
        x = pred if pred.is_floating_point() else pred.float()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return torch.sigmoid(x) if from_logits else x
    if pred.dtype == np.bool_:
        return None
    x = pred if pred.dtype in (np.float32, np.float64) else pred.astype(np.float32)
    if from_logits:
        # the numerically stable logistic, in the array's own precision (float32 stays float32)
        e = np.exp(-np.abs(x))
        x = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
    return x


def _check_no_nan(prob, valid, use_torch: bool, where: str) -> None:
    if prob is None:
        return
    if use_torch:
        import torch

        bad = torch.isnan(prob) if valid is None else torch.isnan(prob) & valid
        found = bool(bad.any())
    else:
        bad = np.isnan(prob) if valid is None else np.isnan(prob) & valid
        found = bool(bad.any())
    if found:
        raise ConfigError(f"{where}: the predictions contain NaN at counted pixels (a diverged model?); "
                          "mask them out with mask=... if they are no-data")


def _truth_and_valid(target, mask, use_torch: bool, where: str):
    if use_torch:
        import torch

        t = target if target.dtype == torch.bool else target > 0.5
        valid = None if mask is None else (mask if mask.dtype == torch.bool else mask != 0)
        if target.is_floating_point():
            bad = torch.isnan(target) if valid is None else torch.isnan(target) & valid
            if bool(bad.any()):
                raise ConfigError(f"{where}: the target contains NaN at counted pixels; mask them out "
                                  "with mask=... (labels must not contain NaN)")
        return t, valid
    t = target if target.dtype == np.bool_ else target > 0.5
    valid = None if mask is None else (mask if mask.dtype == np.bool_ else mask != 0)
    if np.issubdtype(target.dtype, np.floating):
        bad = np.isnan(target) if valid is None else np.isnan(target) & valid
        if bad.any():
            raise ConfigError(f"{where}: the target contains NaN at counted pixels; mask them out "
                              "with mask=... (labels must not contain NaN)")
    return t, valid


def _count(pred_pos, truth, valid, use_torch: bool) -> tuple[int, int, int, int]:
    if use_torch:
        if valid is not None:
            pred_pos, truth = pred_pos[valid], truth[valid]
        n = pred_pos.numel()
        tp = int((pred_pos & truth).sum().item())
        n_pred = int(pred_pos.sum().item())
        n_true = int(truth.sum().item())
    else:
        if valid is not None:
            pred_pos, truth = pred_pos[valid], truth[valid]
        n = pred_pos.size
        tp = int(np.count_nonzero(pred_pos & truth))
        n_pred = int(np.count_nonzero(pred_pos))
        n_true = int(np.count_nonzero(truth))
    fp = n_pred - tp          # predicted AND NOT true
    fn = n_true - tp          # NOT predicted AND true
    tn = n - tp - fp - fn
    return tp, fp, fn, tn


# --------------------------------------------------------------------------------------

@dataclass
class ConfusionCounter:
    """Confusion counts of the positive class, accumulated over a whole data set.

    ``update`` adds one batch (or image, or site); ``compute`` turns the pooled counts into
    scores. Counters add up with ``+`` (and ``sum(...)``), e.g. to pool per-site counters.

    >>> import numpy as np
    >>> c = ConfusionCounter()
    >>> c.update(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 0, 1, 0]), from_logits=False)
    ConfusionCounter(tp=1, fp=1, fn=1, tn=1)
    >>> c.compute()["f1"]
    0.5
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def update(self, logits_or_probs, target, threshold: float = 0.5, from_logits: bool = True,
               mask=None) -> ConfusionCounter:
        """Add the counts of one batch; returns ``self`` (so calls can be chained).

        Args:
            logits_or_probs: model output (logits by default; probabilities with
                ``from_logits=False``; a boolean array is taken as hard predictions).
                Any shape, e.g. (B, 1, H, W); torch tensor, numpy array or xarray.
            target: 0/1 labels of the same shape (singleton dimensions may differ), positive
                where > 0.5 (building fractions: :func:`urbankit.data.schema.is_built` first).
            threshold: probability threshold; positive where ``probability > threshold``.
            from_logits: apply the sigmoid to the predictions first.
            mask: optional, same shape; only pixels where it is true/non-zero are counted
                (e.g. no-data, outside the labelled area).
        """
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(f"ConfusionCounter.update: threshold must lie in [0, 1], got {threshold!r}")
        pred, target, mask, use_torch = _align(logits_or_probs, target, mask, "ConfusionCounter.update")
        prob = _probabilities(pred, from_logits, use_torch)
        pred_pos = pred if prob is None else prob > threshold
        truth, valid = _truth_and_valid(target, mask, use_torch, "ConfusionCounter.update")
        _check_no_nan(prob, valid, use_torch, "ConfusionCounter.update")
        tp, fp, fn, tn = _count(pred_pos, truth, valid, use_torch)
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.tn += tn
        return self

    def reset(self) -> None:
        """Set all counts back to 0."""
        self.tp = self.fp = self.fn = self.tn = 0

    @property
    def n(self) -> int:
        """Number of pixels counted."""
        return self.tp + self.fp + self.fn + self.tn

    def counts(self) -> dict[str, int]:
        """The pooled counts ``{tp, fp, fn, tn}`` (pixels)."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}

    def compute(self, undefined: float = math.nan) -> dict[str, float]:
        """Scores of the pooled counts plus the counts themselves.

        Keys: precision, recall, f1, iou, oa, kappa (floats; ``undefined`` where 0/0),
        tp, fp, fn, tn, n (ints).
        """
        out: dict[str, Any] = scores_from_counts(self.tp, self.fp, self.fn, self.tn, undefined=undefined)
        out.update(self.counts())
        out["n"] = self.n
        return out

    def confusion_matrix(self) -> np.ndarray:
        """The 2x2 matrix ``[[TN, FP], [FN, TP]]`` (rows: truth 0/1, columns: prediction 0/1)."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)

    def __add__(self, other: ConfusionCounter) -> ConfusionCounter:
        if not isinstance(other, ConfusionCounter):
            return NotImplemented
        return ConfusionCounter(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                                self.tn + other.tn)

    def __radd__(self, other):
        if isinstance(other, (int, float)) and other == 0:  # builtin sum() starts at 0
            return ConfusionCounter(self.tp, self.fp, self.fn, self.tn)
        return NotImplemented

    def __iadd__(self, other: ConfusionCounter) -> ConfusionCounter:
        if not isinstance(other, ConfusionCounter):
            return NotImplemented
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn
        return self


def default_thresholds() -> np.ndarray:
    """The DS U-Net sweep: 0.00, 0.01, ..., 1.00 (101 thresholds, float64)."""
    return np.round(np.arange(101) * 0.01, 2)


class ThresholdSweep:
    """Confusion counts at many thresholds at once, accumulated over a data set.

    Each pixel's probability is sorted into the bins between consecutive thresholds (one
    ``searchsorted`` + ``bincount`` per batch for positives and negatives), so all 101
    thresholds of the DS U-Net sweep cost about as much as one. The counts are exact: at
    every threshold they equal those of :class:`ConfusionCounter` with the same threshold
    (the comparison runs in the probabilities' own precision, as ``prob > threshold`` does).

    DS U-Net (Hafner et al. 2022, GRSL) picks the threshold of best F1 on the *training* set and
    applies it to the test set: ``ThresholdSweep().update(...)`` on training predictions,
    then ``best_threshold()``, then a :class:`ConfusionCounter` at that threshold on the
    test set.
    """

    def __init__(self, thresholds: Sequence[float] | None = None):
        t = default_thresholds() if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise ConfigError("ThresholdSweep: thresholds must be a non-empty 1-D sequence")
        if np.any(np.diff(t) <= 0):
            raise ConfigError("ThresholdSweep: thresholds must be strictly increasing")
        if t[0] < 0 or t[-1] > 1:
            raise ConfigError(f"ThresholdSweep: thresholds must lie in [0, 1], got {t[0]}..{t[-1]}")
        self.thresholds = t
        k = t.size + 1
        # hist_pos[j] = number of true-positive-class pixels whose probability exceeds exactly j thresholds
        self._hist_pos = np.zeros(k, dtype=np.int64)
        self._hist_neg = np.zeros(k, dtype=np.int64)

    def reset(self) -> None:
        """Empty the histograms (start a new sweep)."""
        self._hist_pos[:] = 0
        self._hist_neg[:] = 0

    def update(self, logits_or_probs, target, from_logits: bool = True, mask=None) -> ThresholdSweep:
        """Add one batch (see :meth:`ConfusionCounter.update` for the arguments)."""
        pred, target, mask, use_torch = _align(logits_or_probs, target, mask, "ThresholdSweep.update")
        prob = _probabilities(pred, from_logits, use_torch)
        if prob is None:
            raise ConfigError("ThresholdSweep.update: needs probabilities or logits, got boolean predictions")
        truth, valid = _truth_and_valid(target, mask, use_torch, "ThresholdSweep.update")
        _check_no_nan(prob, valid, use_torch, "ThresholdSweep.update")
        k = self.thresholds.size + 1
        if use_torch:
            import torch

            if valid is not None:
                prob, truth = prob[valid], truth[valid]
            prob = prob.reshape(-1).contiguous()
            truth = truth.reshape(-1)
            th = torch.as_tensor(self.thresholds, device=prob.device).to(prob.dtype)
            # number of thresholds strictly below each probability (= thresholds where prob > t)
            idx = torch.searchsorted(th, prob, right=False)
            pos = torch.bincount(idx[truth], minlength=k).cpu().numpy()
            neg = torch.bincount(idx[~truth], minlength=k).cpu().numpy()
        else:
            if valid is not None:
                prob, truth = prob[valid], truth[valid]
            prob = prob.reshape(-1)
            truth = truth.reshape(-1)
            th = self.thresholds.astype(prob.dtype)
            idx = np.searchsorted(th, prob, side="left")
            pos = np.bincount(idx[truth], minlength=k)
            neg = np.bincount(idx[~truth], minlength=k)
        self._hist_pos += pos.astype(np.int64)
        self._hist_neg += neg.astype(np.int64)
        return self

    def counts(self) -> dict[str, np.ndarray]:
        """TP, FP, FN, TN per threshold (int64 arrays of the thresholds' length)."""
        # predicted positive at threshold j <=> the pixel exceeds more than j thresholds
        above_pos = np.cumsum(self._hist_pos[::-1])[::-1][1:]   # sum_{i > j} hist_pos[i]
        above_neg = np.cumsum(self._hist_neg[::-1])[::-1][1:]
        n_pos, n_neg = int(self._hist_pos.sum()), int(self._hist_neg.sum())
        return {"tp": above_pos, "fp": above_neg, "fn": n_pos - above_pos, "tn": n_neg - above_neg}

    def counter_at(self, threshold: float) -> ConfusionCounter:
        """The :class:`ConfusionCounter` at one of the sweep's thresholds."""
        j = int(np.argmin(np.abs(self.thresholds - threshold)))
        if not math.isclose(self.thresholds[j], threshold, abs_tol=1e-9):
            raise ConfigError(
                f"ThresholdSweep.counter_at: {threshold!r} is not one of the sweep's thresholds")
        c = self.counts()
        return ConfusionCounter(*(int(c[name][j]) for name in COUNT_NAMES))

    def compute(self, undefined: float = math.nan):
        """A pandas DataFrame, one row per threshold: threshold, counts and all scores."""
        import pandas as pd

        c = self.counts()
        rows = []
        for j, t in enumerate(self.thresholds):
            counts = {name: int(c[name][j]) for name in COUNT_NAMES}
            scores = scores_from_counts(**counts, undefined=undefined)
            rows.append({"threshold": float(t), **counts, **scores})
        return pd.DataFrame(rows)

    def best_threshold(self, metric: str = "f1") -> tuple[float, float]:
        """(threshold, score) of the best ``metric``.

        Ties go to the lowest threshold (as ``argmax`` in the DS U-Net code). NaN scores are
        ignored.
        """
        if metric not in SCORE_NAMES:
            raise ConfigError(f"best_threshold: metric must be one of {SCORE_NAMES}, got {metric!r}")
        if self._hist_pos.sum() + self._hist_neg.sum() == 0:
            raise ConfigError("ThresholdSweep.best_threshold: no pixels have been counted yet (call update)")
        scores = self.compute()[metric].to_numpy(dtype=float)
        if np.all(np.isnan(scores)):
            raise ConfigError(f"ThresholdSweep.best_threshold: {metric} is undefined at every threshold "
                              "(e.g. no positive pixels in the target)")
        j = int(np.nanargmax(scores))
        return float(self.thresholds[j]), float(scores[j])

    def __add__(self, other: ThresholdSweep) -> ThresholdSweep:
        if not isinstance(other, ThresholdSweep):
            return NotImplemented
        if not np.array_equal(self.thresholds, other.thresholds):
            raise ConfigError("ThresholdSweep: cannot add sweeps with different thresholds")
        out = ThresholdSweep(self.thresholds)
        out._hist_pos = self._hist_pos + other._hist_pos
        out._hist_neg = self._hist_neg + other._hist_neg
        return out

    def __radd__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return self + ThresholdSweep(self.thresholds)
        return NotImplemented

    def __repr__(self) -> str:
        n = int(self._hist_pos.sum() + self._hist_neg.sum())
        return f"ThresholdSweep({self.thresholds.size} thresholds, {n} pixels)"


# --------------------------------------------------------------------------------------
# tables

def _items(results) -> list[tuple[str, ConfusionCounter]]:
    pairs = list(results.items()) if isinstance(results, Mapping) else list(results)
    out = []
    for pair in pairs:
        try:
            name, counter = pair
        except (TypeError, ValueError):
            raise ConfigError(
                "results must be a mapping name -> ConfusionCounter or (name, counter) pairs") from None
        if not isinstance(counter, ConfusionCounter):
            raise ConfigError(f"results[{name!r}] must be a ConfusionCounter, got {type(counter).__name__}")
        out.append((str(name), counter))
    return out


def _row(counter: ConfusionCounter, undefined: float) -> dict[str, Any]:
    s = counter.compute(undefined=undefined)
    return {**{k: s[k] for k in COUNT_NAMES}, "n": s["n"], **{k: s[k] for k in SCORE_NAMES}}


def per_site_table(results: Mapping[str, ConfusionCounter] | Iterable[tuple[str, ConfusionCounter]],
                   regions: Mapping[str, str] | None = None, pooled_label: str = "pooled",
                   undefined: float = math.nan):
    """One row per site (scores of that site's counts) plus a last row of the pooled counts.

    Args:
        results: ``{site: ConfusionCounter}`` (or (site, counter) pairs).
        regions: optional ``{site: region}``; adds a ``region`` column.
        pooled_label: index label of the pooled row (all sites' counts summed, then scored:
            the number the papers report).

    Returns:
        A DataFrame indexed by ``site`` with columns [region], tp, fp, fn, tn, n, precision,
        recall, f1, iou, oa, kappa.
    """
    import pandas as pd

    items = _items(results)
    if not items:
        raise ConfigError("per_site_table: results is empty")
    rows = []
    for site, counter in items:
        row = {"site": site}
        if regions is not None:
            if site not in regions:
                raise ConfigError(f"per_site_table: site {site!r} has no entry in regions")
            row["region"] = regions[site]
        row.update(_row(counter, undefined))
        rows.append(row)
    pooled = {"site": pooled_label}
    if regions is not None:
        pooled["region"] = "all"
    pooled.update(_row(sum(c for _, c in items), undefined))
    rows.append(pooled)
    return pd.DataFrame(rows).set_index("site")


def per_region_table(results: Mapping[str, ConfusionCounter] | Iterable[tuple[str, ConfusionCounter]],
                     regions: Mapping[str, str], pooled_label: str = "pooled",
                     undefined: float = math.nan):
    """One row per region (the counts of its sites pooled) plus a last row pooled over all.

    Returns a DataFrame indexed by ``region`` with columns n_sites, tp, fp, fn, tn, n and the
    scores; regions appear in order of first occurrence.
    """
    import pandas as pd

    items = _items(results)
    if not items:
        raise ConfigError("per_region_table: results is empty")
    grouped: dict[str, list[ConfusionCounter]] = {}
    for site, counter in items:
        if site not in regions:
            raise ConfigError(f"per_region_table: site {site!r} has no entry in regions")
        grouped.setdefault(str(regions[site]), []).append(counter)
    rows = [{"region": r, "n_sites": len(cs), **_row(sum(cs), undefined)} for r, cs in grouped.items()]
    rows.append({"region": pooled_label, "n_sites": len(items), **_row(sum(c for _, c in items), undefined)})
    return pd.DataFrame(rows).set_index("region")


def mean_std_over_seeds(df, group_cols: str | Sequence[str], metric_cols: str | Sequence[str],
                        decimals: int = 3, ddof: int = 1, formatted: bool = True):
    """Mean ± standard deviation of metrics over seeds (runs), per group.

    Args:
        df: one row per run (e.g. columns model, seed, f1, precision, recall).
        group_cols: columns that identify a configuration (the seed column is *not* one).
        metric_cols: numeric columns to summarise.
        decimals: rounding of the formatted strings.
        ddof: 1 (default) = sample standard deviation over seeds; 0 = population.
        formatted: True: strings like ``"0.555 ± 0.016"`` (just ``"0.555"`` when a group has a
            single run and the standard deviation is undefined); False: numeric columns
            ``<metric>_mean`` and ``<metric>_std``.

    Returns:
        A DataFrame indexed by the group columns with an ``n_runs`` column and one column
        per metric. NaN scores (e.g. undefined F1) are skipped, as pandas does.
    """
    group_cols = [group_cols] if isinstance(group_cols, str) else list(group_cols)
    metric_cols = [metric_cols] if isinstance(metric_cols, str) else list(metric_cols)
    missing = [c for c in group_cols + metric_cols if c not in df.columns]
    if missing:
        raise ConfigError(
            f"mean_std_over_seeds: column(s) {missing} not in the table; it has {list(df.columns)}")
    g = df.groupby(group_cols, sort=False)
    mean = g[metric_cols].mean()
    std = g[metric_cols].std(ddof=ddof)
    out = g.size().to_frame("n_runs")
    for col in metric_cols:
        if formatted:
            out[col] = [
                f"{m:.{decimals}f}" if (isinstance(s, float) and math.isnan(s))
                else f"{m:.{decimals}f} ± {s:.{decimals}f}"
                for m, s in zip(mean[col], std[col])
            ]
        else:
            out[f"{col}_mean"] = mean[col]
            out[f"{col}_std"] = std[col]
    return out
