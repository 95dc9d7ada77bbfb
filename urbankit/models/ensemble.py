"""Deep ensembles: several independently trained networks used as one.

Lakshminarayanan et al. (2017) average the predicted probabilities of networks trained from
different random seeds. With few training sites one run depends a lot on its seed (the
initial weights and which patches it sees first): averaging a few short runs reduces that
variance, which a single longer run does not. :func:`urbankit.experiments.run_experiment`
builds one when a recipe asks for ``ensemble > 1``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["ProbabilityEnsemble"]

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit (float32 keeps them distinct).
EPS = 1e-7


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
        self.input_keys = keys[0]
        self.input_contract = contracts[0]
        for name in ("output_keys", "pad_multiple", "size_dependent", "inference_window"):
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))

    def forward(self, batch: Mapping[str, torch.Tensor]):
        """Averaged outputs of the members for ``batch`` (logits, as each member returns them)."""
        outputs = [member(batch) for member in self.members]
        if isinstance(outputs[0], Mapping):
            return {key: _mean_logit([out[key] for out in outputs]) for key in outputs[0]}
        return _mean_logit(outputs)
