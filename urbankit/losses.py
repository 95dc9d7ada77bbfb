"""Losses for built-up mapping and urban change detection (PyTorch).

Every loss takes **logits** by default (models return logits, never probabilities; see
CONTRIBUTING.md) and applies the sigmoid itself; pass ``from_logits=False`` to give
probabilities instead.

- :func:`power_jaccard`: the power Jaccard loss of Duque-Arias et al. (VISAPP 2021), the
  supervised and consistency loss of the KTH networks (p = 2 there).
- :func:`jaccard_like_loss`: the "Jaccard-like" loss of the Dual-Stream U-Net code
  (Hafner et al. 2022, GRSL); it equals ``2 * power_jaccard(p=2) - 1``.
- :func:`daudt_class_weights`, :func:`weighted_bce`, :func:`weighted_nll`: the class-weighted
  negative log-likelihood of Daudt et al. (ICIP 2018), for a single logit
  (sigmoid) and for two-class log-softmax outputs.
- :func:`consistency_l2`, :func:`consistency_power_jaccard`: consistency between two
  modalities' predictions on unlabelled data (MMCR, Hafner et al. 2023; Fusion-DA, Hafner et al. 2022, RSE).
- :func:`dsifn_loss`, :func:`deep_supervision_loss`: BCE + Dice per output and its sum over the
  side outputs of a deeply supervised network (DSIFN, Zhang et al. 2020; UNet++).
- :func:`batch_balanced_contrastive_loss`: STANet's metric loss on feature distances
  (Chen & Shi 2020).

All functions return a scalar tensor unless ``reduction`` asks for per-image values, and
raise :class:`urbankit.errors.ConfigError` (a ``ValueError``) on mismatched shapes or
invalid options, naming the argument and what was expected.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F

from .errors import ConfigError

Reduction = Literal["batch", "image", "none"]

__all__ = [
    "LOSSES",
    "LOSS_ALIASES",
    "batch_balanced_contrastive_loss",
    "change_fraction",
    "consistency_l2",
    "consistency_power_jaccard",
    "daudt_class_weights",
    "deep_supervision_loss",
    "dsifn_loss",
    "get_loss",
    "jaccard_like_loss",
    "power_jaccard",
    "resolve_consistency_loss",
    "resolve_loss",
    "weighted_bce",
    "weighted_nll",
]


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise ConfigError(
            f"{name_a} and {name_b} must be torch tensors, got {type(a).__name__} and {type(b).__name__}"
        )
    if a.shape != b.shape:
        raise ConfigError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
            "they must be equal (e.g. both (B, 1, H, W))"
        )


def _probabilities(x: torch.Tensor, from_logits: bool) -> torch.Tensor:
    # Sums of many pixels lose precision in half precision: compute losses in float32 at least.
    x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return torch.sigmoid(x) if from_logits else x


def power_jaccard(
    logits: torch.Tensor,
    target: torch.Tensor,
    p: float = 2.0,
    eps: float = 1e-6,
    smooth: float = 0.0,
    from_logits: bool = True,
    reduction: Reduction = "batch",
) -> torch.Tensor:
    r"""Power Jaccard loss (Duque-Arias et al., VISAPP 2021).

    .. math::

        L = 1 - \frac{\sum_i y_i \hat y_i + s}{\sum_i y_i^{p} + \sum_i \hat y_i^{p}
            - \sum_i y_i \hat y_i + s + \epsilon}

    with :math:`\hat y = \sigma(\text{logits})`. The powers act on each element *before*
    summing (raising the sums to the power p instead is a known porting bug).

    Args:
        logits: predictions, any shape (usually (B, 1, H, W)); logits, or probabilities with
            ``from_logits=False``.
        target: the same shape; 0/1 labels or soft targets in [0, 1] (e.g. another model's
            probabilities in a consistency loss).
        p: the power, 1 <= p <= 2 in the paper; p = 1 is the soft Jaccard loss, the KTH code
            uses p = 2.
        eps: added to the denominator only (the KTH code's 1e-6) so an all-zero prediction
            against an all-zero target does not divide by zero.
        smooth: added to numerator and denominator (the official demo's s = 10). With
            ``smooth > 0`` an empty target and empty prediction give loss 0 instead of 1.
        from_logits: apply the sigmoid to ``logits`` first (default) or take them as
            probabilities.
        reduction: ``"batch"`` (default, as the KTH code): one ratio of sums over the whole
            flattened batch; ``"image"``: one ratio per image (sums over all but the first
            dimension), then the mean over images; ``"none"``: the per-image losses, shape (B,).
            Per image and without ``smooth``, an image with no positive pixel scores 1 whatever
            is predicted (its intersection is 0): use ``smooth > 0`` there.

    Returns:
        A scalar tensor (or shape (B,) with ``reduction="none"``), in [0, 1] for inputs in
        [0, 1]; ~0 for a perfect prediction of a non-empty target.
    """
    _check_same_shape(logits, target, "logits", "target")
    if not p > 0:
        raise ConfigError(f"power_jaccard: p must be positive (the paper uses 1 <= p <= 2), got {p!r}")
    if eps < 0 or smooth < 0:
        raise ConfigError(f"power_jaccard: eps and smooth must be >= 0, got eps={eps!r}, smooth={smooth!r}")
    if reduction not in ("batch", "image", "none"):
        raise ConfigError(f"power_jaccard: reduction must be 'batch', 'image' or 'none', got {reduction!r}")
    yhat = _probabilities(logits, from_logits)
    y = target.to(yhat.dtype)
    if reduction == "batch":
        dims = None
    else:
        if yhat.ndim < 2:
            raise ConfigError(
                f"power_jaccard: reduction={reduction!r} needs a batch dimension, "
                f"got shape {tuple(yhat.shape)}"
            )
        dims = tuple(range(1, yhat.ndim))
    if dims is None:
        inter = (yhat * y).sum()
        denom = y.pow(p).sum() + yhat.pow(p).sum() - inter
    else:
        inter = (yhat * y).sum(dim=dims)
        denom = y.pow(p).sum(dim=dims) + yhat.pow(p).sum(dim=dims) - inter
    loss = 1.0 - (inter + smooth) / (denom + smooth + eps)
    if reduction == "image":
        return loss.mean()
    return loss


def jaccard_like_loss(
    logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, from_logits: bool = True
) -> torch.Tensor:
    r"""The Dual-Stream U-Net's "Jaccard-like" loss (Hafner et al., IEEE GRSL 2022).

    .. math::

        L = 1 - \frac{2 \sum \hat y y}{\sum \hat y^2 + \sum y^2 - \sum \hat y y + \epsilon}

    over the flattened batch. Because of the factor 2 it equals ``2 * power_jaccard(p=2) - 1``
    (same minimiser, gradients twice as large, range [-1, 1], -1 for a perfect binary
    prediction).
    """
    _check_same_shape(logits, target, "logits", "target")
    yhat = _probabilities(logits, from_logits)
    y = target.to(yhat.dtype)
    inter = (yhat * y).sum()
    denom = (yhat * yhat).sum() + (y * y).sum() - inter
    return 1.0 - 2.0 * inter / (denom + eps)


def change_fraction(labels) -> float:
    """Fraction of positive (change) pixels in a label array or tensor (values 0/1)."""
    if isinstance(labels, torch.Tensor):
        t = labels.detach()
        n = t.numel()
        return float((t > 0.5).sum().item()) / n if n else float("nan")
    import numpy as np

    a = np.asarray(labels)
    return float((a > 0.5).sum()) / a.size if a.size else float("nan")


def daudt_class_weights(p: float, fp_modifier: float = 10.0) -> torch.Tensor:
    """Class weights of Daudt et al.'s FC-EF/FC-Siam recipe (ICIP 2018).

    With ``p`` the fraction of change pixels in the training set:
    ``w_nochange = fp_modifier * 2 * p`` and ``w_change = 2 * (1 - p)``. The rare change class
    gets the large weight; ``fp_modifier`` (10 in the original notebook, "use 1 if unsure")
    raises the weight of the no-change class to trade false positives against false negatives.

    Returns:
        float32 tensor ``[w_nochange, w_change]`` (index = class), ready for
        :func:`weighted_nll` / :func:`weighted_bce` or ``torch.nn.NLLLoss(weight=...)``.
    """
    p = float(p)
    if not 0.0 < p < 1.0:
        raise ConfigError(
            f"daudt_class_weights: p (the change-pixel fraction) must be strictly between 0 and 1, got {p!r}"
        )
    if not fp_modifier > 0:
        raise ConfigError(f"daudt_class_weights: fp_modifier must be positive, got {fp_modifier!r}")
    return torch.tensor([fp_modifier * 2.0 * p, 2.0 * (1.0 - p)], dtype=torch.float32)


def _as_weights(weights, device, dtype) -> torch.Tensor | None:
    if weights is None:
        return None
    w = torch.as_tensor(weights, dtype=dtype, device=device).flatten()
    if w.numel() != 2:
        raise ConfigError(f"weights must hold 2 values [w_nochange, w_change], got {w.numel()}")
    if (w < 0).any():
        raise ConfigError(f"weights must be non-negative, got {w.tolist()}")
    return w


def weighted_bce(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] | torch.Tensor | None = None,
    from_logits: bool = True,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    r"""Class-weighted binary cross-entropy on a single logit per pixel.

    Per pixel, with :math:`w_0, w_1` = ``weights`` (no change, change) and :math:`\hat y = \sigma(z)`:

    .. math::

        \ell_i = -\big(w_1 y_i \log \hat y_i + w_0 (1 - y_i) \log(1 - \hat y_i)\big),\qquad
        L = \frac{\sum_i \ell_i}{\sum_i \big(w_1 y_i + w_0 (1 - y_i)\big)}

    The ``"mean"`` reduction divides by the summed weights, as ``torch.nn.NLLLoss(weight=...)``
    does, so that for 0/1 targets this equals :func:`weighted_nll` on the two-class logits
    ``[0, z]`` (Daudt's recipe with a single output channel). Soft targets are allowed.

    Args:
        logits: (B, 1, H, W) or any shape; logits (or probabilities with ``from_logits=False``).
        target: same shape, values in [0, 1].
        weights: ``[w_nochange, w_change]``, e.g. from :func:`daudt_class_weights`; None = [1, 1]
            (plain BCE).
        reduction: ``"mean"`` (weighted mean), ``"sum"`` or ``"none"`` (per-element losses).
    """
    _check_same_shape(logits, target, "logits", "target")
    if reduction not in ("mean", "sum", "none"):
        raise ConfigError(f"weighted_bce: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    y = target.to(x.dtype)
    if from_logits:
        log_p1 = F.logsigmoid(x)        # log sigmoid(z), stable for large |z|
        log_p0 = F.logsigmoid(-x)       # log (1 - sigmoid(z))
    else:
        tiny = torch.finfo(x.dtype).tiny
        log_p1 = torch.log(x.clamp_min(tiny))
        log_p0 = torch.log((1 - x).clamp_min(tiny))
    w = _as_weights(weights, x.device, x.dtype)
    w0, w1 = (1.0, 1.0) if w is None else (w[0], w[1])
    pixel_w = w1 * y + w0 * (1 - y)
    loss = -(w1 * y * log_p1 + w0 * (1 - y) * log_p0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / pixel_w.sum().clamp_min(torch.finfo(x.dtype).tiny)


def weighted_nll(
    log_probs: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] | torch.Tensor | None = None,
    from_logits: bool = False,
) -> torch.Tensor:
    """Class-weighted negative log-likelihood on two-class outputs (Daudt et al. 2018).

    Args:
        log_probs: (B, 2, H, W) log-probabilities (the output of a ``LogSoftmax(dim=1)`` layer,
            as in FC-EF / FC-Siam), or raw two-class logits with ``from_logits=True``.
        target: (B, H, W) or (B, 1, H, W) class indices 0/1 (any integer or float dtype).
        weights: ``[w_nochange, w_change]`` (e.g. :func:`daudt_class_weights`); None = unweighted.

    Returns:
        The weighted mean of ``-log p[target]`` (sum of weighted losses over the sum of the
        weights of the true classes, as ``torch.nn.NLLLoss``).
    """
    if not isinstance(log_probs, torch.Tensor) or log_probs.ndim < 2 or log_probs.shape[1] != 2:
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs).__name__
        raise ConfigError(f"weighted_nll: log_probs must be (B, 2, ...) with 2 classes in dim 1, got {shape}")
    if not isinstance(target, torch.Tensor):
        raise ConfigError(f"weighted_nll: target must be a torch tensor, got {type(target).__name__}")
    if target.ndim == log_probs.ndim and target.shape[1] == 1:
        target = target[:, 0]
    expected = (log_probs.shape[0], *log_probs.shape[2:])
    if tuple(target.shape) != expected:
        raise ConfigError(
            f"weighted_nll: target has shape {tuple(target.shape)}, expected {expected} "
            f"(or with a channel of 1) for log_probs of shape {tuple(log_probs.shape)}"
        )
    x = log_probs.float() if log_probs.dtype in (torch.float16, torch.bfloat16) else log_probs
    if from_logits:
        x = F.log_softmax(x, dim=1)
    idx = target.round().long() if target.is_floating_point() else target.long()
    if idx.numel() and (idx.min() < 0 or idx.max() > 1):
        found = idx.unique().tolist()[:5]
        raise ConfigError(f"weighted_nll: target must hold class indices 0 or 1, found {found}")
    w = _as_weights(weights, x.device, x.dtype)
    return F.nll_loss(x, idx, weight=w)


def consistency_l2(
    logits_a: torch.Tensor,
    logits_b: torch.Tensor,
    from_logits: bool = True,
    detach_target: bool = False,
) -> torch.Tensor:
    """Mean squared difference between two predictions' probabilities.

    The L2 consistency of the early MMCR code (Hafner et al. 2023, branch ``dav5gamma``):
    ``mean((sigmoid(a) - sigmoid(b))**2)``. Gradients flow into both inputs unless
    ``detach_target=True`` (then ``b`` is treated as a fixed target).
    """
    _check_same_shape(logits_a, logits_b, "logits_a", "logits_b")
    pa = _probabilities(logits_a, from_logits)
    pb = _probabilities(logits_b, from_logits)
    if detach_target:
        pb = pb.detach()
    return F.mse_loss(pa, pb.to(pa.dtype))


def consistency_power_jaccard(
    logits_student: torch.Tensor,
    logits_teacher_or_probs: torch.Tensor,
    p: float = 2.0,
    eps: float = 1e-6,
    smooth: float = 0.0,
    teacher_from_logits: bool = True,
    detach_target: bool = False,
    reduction: Reduction = "batch",
) -> torch.Tensor:
    """Power Jaccard consistency with the other modality's probabilities as a soft target.

    ``power_jaccard(logits_student, sigmoid(logits_teacher))``: MMCR scores the SAR logits
    against the optical probabilities (Hafner et al. 2023), Fusion-DA the optical logits against
    the SAR probabilities (Hafner et al. 2022, RSE). As in the KTH code, there is no stop-gradient by default:
    the gradient reaches both networks; ``detach_target=True`` stops it at the target.

    Args:
        logits_student: logits of the prediction being pulled towards the target.
        logits_teacher_or_probs: the other prediction: logits (default) or probabilities with
            ``teacher_from_logits=False``.
        p, eps, smooth, reduction: as in :func:`power_jaccard`.
    """
    _check_same_shape(logits_student, logits_teacher_or_probs, "logits_student", "logits_teacher_or_probs")
    target = _probabilities(logits_teacher_or_probs, teacher_from_logits)
    if detach_target:
        target = target.detach()
    return power_jaccard(logits_student, target, p=p, eps=eps, smooth=smooth, from_logits=True,
                         reduction=reduction)


def dsifn_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """DSIFN's loss of one output: BCE + Dice (Zhang et al. 2020, the authors' ``loss.py``).

    L = BCE(sigmoid(z), y) + 1 - (2 sum(p y) + s) / (sum(p) + sum(y) + s), p = sigmoid(z),
    sums over the whole batch, s = ``smooth`` (1). The authors' code applies the sigmoid in the
    network and again inside the BCE (a double sigmoid) and computes the Dice on the network's
    output; here both terms see p = sigmoid(logits) once.

    Args:
        logits: (B, 1, H, W) logits. target: same shape, 0/1 (or soft labels in [0, 1]).

    Returns:
        a scalar tensor.
    """
    _check_same_shape(logits, target, "logits", "target")
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    t = target.to(z.dtype)
    p = torch.sigmoid(z)
    bce = F.binary_cross_entropy_with_logits(z, t)
    dice = 1 - (2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)
    return bce + dice


def deep_supervision_loss(outputs, target: torch.Tensor, loss: Callable | None = None,
                          keys: Sequence[str] | None = None,
                          weights: Sequence[float] | None = None) -> torch.Tensor:
    """Deep supervision: ``sum_k w_k * loss(outputs[k], target)`` over a model's change outputs.

    DSIFN sums the loss of its five outputs with equal weights (Zhang et al. 2020); the side
    outputs of :class:`urbankit.models.DSIFN` and :class:`urbankit.models.UNetPlusPlusEF`
    (``change_side1``...) come at the input size, so one target fits all.

    Args:
        outputs: the model's output dict.
        target: (B, 1, H, W) change label.
        loss: per-output loss (default :func:`dsifn_loss`).
        keys: outputs to use (default ``change`` and every ``change_side*`` key).
        weights: one weight per key (default 1).
    """
    loss = loss or dsifn_loss
    keys = list(keys) if keys is not None else [k for k in outputs if k == "change" or k.startswith("change_side")]
    if not keys:
        raise ConfigError(f"deep_supervision_loss: no change outputs among {sorted(outputs)}")
    missing = [k for k in keys if k not in outputs]
    if missing:
        raise ConfigError(f"deep_supervision_loss: outputs {missing} missing; the model returned {sorted(outputs)}")
    weights = [1.0] * len(keys) if weights is None else list(weights)
    if len(weights) != len(keys):
        raise ConfigError(f"deep_supervision_loss: {len(weights)} weights for {len(keys)} outputs {keys}")
    return sum(w * loss(outputs[k], target) for k, w in zip(keys, weights))


def batch_balanced_contrastive_loss(distance: torch.Tensor, target: torch.Tensor, margin: float = 2.0,
                                    ignore_index: int | None = 255) -> torch.Tensor:
    """STANet's batch-balanced contrastive loss (BCL; Chen & Shi 2020, the authors' ``loss.py``).

    With d the per-pixel feature distance and y the change label (1 = change):

        L = sum_{y=0} d^2 / (n_nochange + 1e-4) + sum_{y=1} max(0, m - d)^2 / (n_change + 1e-4)

    so unchanged pixels are pulled to distance 0 and changed ones pushed beyond the margin m
    (2); each class is averaged over its own pixels of the batch (the balance). STANet predicts
    change where d > m / 2.

    Args:
        distance: (B, 1, H, W) non-negative distances (``STANet(...)["distance"]``).
        target: same shape, 1 = change, 0 = no change; pixels equal to ``ignore_index`` are
            ignored (None: none).
        margin: m.

    Returns:
        a scalar tensor.
    """
    _check_same_shape(distance, target, "distance", "target")
    if margin <= 0:
        raise ConfigError(f"batch_balanced_contrastive_loss: margin must be > 0, got {margin}")
    d = distance.float() if distance.dtype in (torch.float16, torch.bfloat16) else distance
    t = target.to(d.dtype)
    valid = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    change = (t == 1) & valid
    nochange = (t == 0) & valid
    other = valid & ~change & ~nochange
    if bool(other.any()):
        raise ConfigError("batch_balanced_contrastive_loss: target must hold 0 (no change) and 1 (change), "
                          f"got values {sorted(set(t[other].unique().tolist()))[:5]}")
    pull = (d.pow(2) * nochange).sum() / (nochange.sum() + 1e-4)
    push = (torch.clamp(margin - d, min=0).pow(2) * change).sum() / (change.sum() + 1e-4)
    return pull + push


#: Losses by name, for configuration files and the trainer: ``get_loss("power_jaccard", p=1.5)``.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "power_jaccard": power_jaccard,
    "jaccard_like": jaccard_like_loss,
    "weighted_bce": weighted_bce,
    "weighted_nll": weighted_nll,
    "bce": F.binary_cross_entropy_with_logits,  # plain BCE on logits (= weighted_bce without weights)
    "consistency_l2": consistency_l2,
    "consistency_power_jaccard": consistency_power_jaccard,
    "dsifn": dsifn_loss,
    "bcl": batch_balanced_contrastive_loss,
}


#: Other spellings of the names in :data:`LOSSES` (the papers' code calls power Jaccard "pjacc").
LOSS_ALIASES: dict[str, str] = {"pjacc": "power_jaccard", "pj": "power_jaccard"}


def get_loss(name: str, **kwargs) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss called ``name`` (or an alias of it) with ``kwargs`` bound.

    Args:
        name: a key of :data:`LOSSES` or :data:`LOSS_ALIASES`, e.g. ``"power_jaccard"``.
        **kwargs: keyword arguments bound to the loss, e.g. ``p=1.5``.

    Returns:
        A callable ``loss(logits, target) -> scalar tensor``.

    Raises:
        ConfigError: no loss has that name.
    """
    try:
        fn = LOSSES[LOSS_ALIASES.get(name, name)]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)} "
                          f"(aliases {sorted(LOSS_ALIASES)})") from None
    return partial(fn, **kwargs) if kwargs else fn


def resolve_loss(loss: str | Callable | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The supervised loss a setting names: the one registry of the trainer and the recipes.

    Args:
        loss: None (power Jaccard, p=2, the KTH papers' loss), a name of :data:`LOSSES`
            (``"bce"`` is plain BCE on logits) or of :data:`LOSS_ALIASES`, or a callable
            ``loss(logits, target) -> scalar``, returned as it is.

    Returns:
        The loss callable.

    Raises:
        ConfigError: ``loss`` is neither a known name nor a callable.
    """
    if callable(loss):
        return loss
    if loss is None:
        return power_jaccard
    if isinstance(loss, str):
        return get_loss(loss)
    raise ConfigError(f"loss must be a name of urbankit.losses.LOSSES or a callable loss(logits, target); "
                      f"got {loss!r}")


def resolve_consistency_loss(kind: str | Callable, detach_target: bool = True) -> Callable:
    """A consistency loss ``loss(student_logits, teacher_logits)`` by name.

    Args:
        kind: ``"pjacc"``/``"power_jaccard"`` (:func:`consistency_power_jaccard`, p=2: the
            student's logits against the teacher's probabilities as soft target), ``"l2"``/
            ``"mse"`` (:func:`consistency_l2`: MSE between both probabilities), or a callable,
            returned as it is.
        detach_target: stop the gradient through the teacher's side.

    Returns:
        The loss callable.

    Raises:
        ConfigError: ``kind`` is not one of those.
    """
    if callable(kind):
        return kind
    if kind in ("pjacc", "power_jaccard"):
        return partial(consistency_power_jaccard, p=2.0, detach_target=detach_target)
    if kind in ("l2", "mse"):
        return partial(consistency_l2, detach_target=detach_target)
    raise ConfigError(f"consistency loss must be 'pjacc', 'l2' or a callable, got {kind!r}")
