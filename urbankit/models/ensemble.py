"""Deep ensembles: several independently trained networks used as one.

Lakshminarayanan et al. (2017) average the predicted probabilities of networks trained from
different random seeds. With few training sites one run depends a lot on its seed (the
initial weights and which patches it sees first): averaging a few short runs reduces that
variance, which a single longer run does not. :func:`urbankit.experiments.run_experiment`
builds one when a recipe asks for ``ensemble > 1``.

:class:`FlipAverage` is test-time augmentation with flips: the probabilities of one network
(or ensemble) for the image and its horizontal, vertical and double flips, flipped back and
averaged. A fully convolutional network is not exactly flip-equivariant, so the four views
differ a little; their mean is a smoother, less noisy score map (a free ensemble of views).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["ProbabilityEnsemble", "FlipAverage"]

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit (float32 keeps them distinct).
EPS = 1e-7


#: The flips of :class:`FlipAverage`: tensor dims flipped (H is -2, W is -1); shapes are kept.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def _copy_model_attrs(target: nn.Module, source: nn.Module) -> None:
    """Give a wrapper the attributes that inference reads from the model it wraps."""
    for name in ("input_keys", "input_contract", "output_keys", "pad_multiple", "size_dependent",
                 "inference_window"):
        if hasattr(source, name):
            setattr(target, name, getattr(source, name))


def _mean_logit(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Logit of the mean probability of ``logits`` (each the same shape)."""
    prob = torch.stack([torch.sigmoid(t.float()) for t in logits]).mean(dim=0)
    return torch.logit(prob.clamp(EPS, 1 - EPS))


class ProbabilityEnsemble(nn.Module):
    """Members whose sigmoid probabilities are averaged; the output is the logit of the mean.

    The ensemble reads the same batch dict as its members and returns what they return (a
    dict of logits, or one logit tensor), so :func:`urbankit.inference.predict`,
    ``evaluate_scenes`` and :mod:`urbankit.cityscale` use it like any model.

    Args:
        members: trained modules with the same ``input_keys`` and, where they have one, the
            same ``input_contract`` (members of one experiment share the training scenes).

    Raises:
        ConfigError: no members, or members that read different inputs or contracts.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        members = list(members)
        if not members:
            raise ConfigError("ProbabilityEnsemble: needs at least one member")
        keys = [tuple(getattr(m, "input_keys", ()) or ()) for m in members]
        if len(set(keys)) != 1:
            raise ConfigError(f"ProbabilityEnsemble: members read different inputs: {sorted(set(keys))}")
        contracts = [getattr(m, "input_contract", None) for m in members]
        described = {repr(c.to_dict()) if c is not None else None for c in contracts}
        if len(described) != 1:
            raise ConfigError("ProbabilityEnsemble: members were trained with different input contracts")
        self.members = nn.ModuleList(members)
        _copy_model_attrs(self, members[0])
        self.input_keys = keys[0]
        self.input_contract = contracts[0]

    def forward(self, batch: Mapping[str, torch.Tensor]):
        """Averaged outputs of the members for ``batch`` (logits, as each member returns them)."""
        outputs = [member(batch) for member in self.members]
        if isinstance(outputs[0], Mapping):
            return {key: _mean_logit([out[key] for out in outputs]) for key in outputs[0]}
        return _mean_logit(outputs)


def _flip(value, dims: tuple[int, ...]):
    """``value`` flipped along ``dims`` when it is an image tensor (ndim >= 3), else unchanged."""
    if not dims or not isinstance(value, torch.Tensor) or value.ndim < 3:
        return value
    return torch.flip(value, dims)


class FlipAverage(nn.Module):
    """Test-time flips: the mean probability over the image and its three flips (module docstring).

    Args:
        model: a trained network or :class:`ProbabilityEnsemble` reading a batch dict of
            ``(N, C, H, W)`` tensors and returning per-pixel logits ``(N, K, H, W)`` (a dict of
            them or one tensor). Every input tensor is flipped alike; outputs are flipped back.

    The output is the logit of the mean probability, so thresholds apply as for ``model``.
    Costs four forward passes. Flips keep the tile shape, so any tile size works.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        _copy_model_attrs(self, model)

    def forward(self, batch: Mapping[str, torch.Tensor]):
        """Flip-averaged outputs of the wrapped model for ``batch`` (logits)."""
        outputs = []
        for dims in FLIPS:
            out = self.model({k: _flip(v, dims) for k, v in batch.items()})
            if isinstance(out, Mapping):
                outputs.append({k: _flip(v, dims) for k, v in out.items()})
            else:
                outputs.append(_flip(out, dims))
        if isinstance(outputs[0], Mapping):
            return {key: _mean_logit([out[key] for out in outputs]) for key in outputs[0]}
        return _mean_logit(outputs)
