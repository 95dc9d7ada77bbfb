"""The model registry: ``build(name, **cfg)`` and ``list_models()``.

>>> from urbankit.models import build
>>> model = build("fc_siam_diff", optical_channels=4, width=0.5)
>>> model.input_keys
('optical_t1', 'optical_t2')
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError, UrbankitError


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        name: registry name.
        factory: the model class (called with the user's keyword arguments).
        description: one line for :func:`list_models`.
        paper: bib key in ``book/references.bib``.
        optional: the name of the optional package the model needs (None: plain torch).
        inputs, outputs: batch keys of the default configuration, for models whose default
            cannot be built here (optional package missing).
    """

    name: str
    factory: Callable[..., nn.Module]
    description: str
    paper: str
    optional: str | None = None
    inputs: tuple[str, ...] = field(default=())
    outputs: tuple[str, ...] = field(default=())


_REGISTRY: dict[str, ModelSpec] = {}

#: Methods of the seed that the kit does not provide yet (listed, never registered as fakes).
#: name -> (description, bib key or ""). Empty since every network of the HDANet paper's VHR table is
#: native (SegNet, DeepLabV3, UNet++, DSIFN, STANet, Siam-HRNet).
NOT_YET_AVAILABLE: dict[str, tuple[str, str]] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ConfigError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def available_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def model_parameters(name: str) -> list[str]:
    """The keyword arguments registered model ``name`` is built with (ConfigError for an unknown name)."""
    try:
        spec = _REGISTRY[name]
    except KeyError:
        hint = " (listed as not yet available)" if name in NOT_YET_AVAILABLE else ""
        raise ConfigError(f"unknown model {name!r}{hint}; registered models: {available_models()}") from None
    return list(inspect.signature(spec.factory).parameters)


def build(name: str, **cfg) -> nn.Module:
    """Build a registered model: ``build("siamdiff", optical_channels=4, width=0.25)``.

    Unknown names or keyword arguments raise ConfigError listing what is accepted. Models from
    optional packages raise ConfigError with the install command when the package is missing.
    """
    params = model_parameters(name)
    unknown = sorted(set(cfg) - set(params))
    if unknown:
        raise ConfigError(f"model {name!r} got unknown argument(s) {unknown}; it accepts {sorted(params)}")
    return _REGISTRY[name].factory(**cfg)


def load_weights(model: nn.Module, source, *, part: str = "", strict: bool = True,
                 prefix: str = "") -> nn.Module:
    """Load a state dict from a **local** file (or a dict) into ``model`` or one of its parts.

    The kit never downloads weights: to start a backbone from ImageNet weights, save them to a
    file elsewhere and load them here, e.g.
    ``load_weights(model, "resnet50.pth", part="encoder", strict=False)``.

    Args:
        model: the model.
        source: path of a ``torch.save``-d state dict (read with ``weights_only=True``), or a
            mapping name -> tensor.
        part: dotted attribute path of the sub-module to load into (``""`` = the whole model).
        strict: as :meth:`torch.nn.Module.load_state_dict`; with False, missing and unexpected
            keys are allowed but **shape mismatches still raise**.
        prefix: keep only keys starting with this prefix, and strip it (e.g. ``"backbone."``).

    Returns:
        the model. Raises ConfigError naming the file for a missing/unreadable file, an unknown
        part, or keys/shapes that do not fit.
    """
    from pathlib import Path

    target = model
    for attr in filter(None, part.split(".")):
        if not hasattr(target, attr):
            raise ConfigError(f"load_weights: {type(model).__name__} has no part {part!r}")
        target = getattr(target, attr)
    where = "the given state dict"
    if not isinstance(source, dict):
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"load_weights: {path}: file not found (weights are never downloaded)")
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling/format error
            raise ConfigError(f"load_weights: {path}: not a readable torch state dict ({exc})") from exc
        if isinstance(source, dict) and isinstance(source.get("state_dict"), dict):
            source = source["state_dict"]
    state = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
    own = target.state_dict()
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ConfigError(f"load_weights: {where}: tensor shapes do not fit {part or 'the model'}: {bad[:5]}")
    try:
        target.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise ConfigError(f"load_weights: {where} does not fit {part or 'the model'}: {exc}") from exc
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@functools.cache
def _default_summary(name: str) -> tuple[tuple[str, ...], tuple[str, ...], int | None, str]:
    """(inputs, outputs, parameter count, status) of the default configuration.

    The model is built on the ``meta`` device: shapes only, no memory, no initialisation cost.
    """
    spec = _REGISTRY[name]
    try:
        with torch.device("meta"):
            model = spec.factory()
    except UrbankitError:
        return spec.inputs, spec.outputs, None, f"needs {spec.optional} (optional extra urbankit[baselines])"
    return model.input_keys, model.output_keys, count_parameters(model), "available"


def list_models(include_unavailable: bool = True):
    """A pandas DataFrame of the zoo, one row per model.

    Columns: name, description, inputs (batch keys), outputs, params (default configuration,
    the papers' sizes; None where the optional package is missing), paper (bib key), status
    (``available``, ``needs ...``, ``not yet available``).
    """
    import pandas as pd

    rows = []
    for name, spec in _REGISTRY.items():  # registration order groups the families
        inputs, outputs, n_params, status = _default_summary(name)
        rows.append({"name": name, "description": spec.description, "inputs": ", ".join(inputs),
                     "outputs": ", ".join(outputs), "params": n_params, "paper": spec.paper, "status": status})
    if include_unavailable:
        for name, (description, paper) in NOT_YET_AVAILABLE.items():
            rows.append({"name": name, "description": description, "inputs": "", "outputs": "",
                         "params": None, "paper": paper, "status": "not yet available"})
    df = pd.DataFrame(rows, columns=["name", "description", "inputs", "outputs", "params", "paper", "status"])
    df["params"] = df["params"].astype("Int64")
    return df
