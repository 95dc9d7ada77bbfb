"""A model's input contract: which bands, units, SAR range and normalisation it was trained on.

A network learns the numbers it is shown. If it was trained on per-band standardised
Sentinel-2 reflectance of 13 bands and is later given 4 bands, raw digital numbers or SAR
clipped to another dB range, it still returns a map, and the map is wrong without any error.
:class:`InputContract` writes the input rules down once, so that

- the torch layer (:class:`urbankit.datasets.SceneDataset`) and inference
  (:func:`urbankit.inference.predict`) turn scene values into model inputs with the *same*
  function (:meth:`InputContract.prepare`), and
- every checkpoint stores the contract, and a scene that does not fit it is rejected with an
  :class:`InputContractError` naming the site and the mismatch.

Optical normalisations (``optical_norm``):

- ``"none"``: reflectance 0..1 as stored in the scene.
- ``"dataset"``: per-band z-score with the mean and standard deviation of the *training*
  scenes (:meth:`InputContract.fit`), the usual choice for networks trained from scratch.
- ``"per_image"``: each band of each image standardised by its own mean and standard
  deviation, as Daudt et al. (2018) did for OSCD.

SAR is scaled from dB to [0, 1] with ``sar_db_range`` (clipped); ``sar_norm="dataset"``
additionally standardises it per polarisation with training statistics. No-data (NaN) pixels
become 0 *after* normalisation, i.e. the training mean under a z-score.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, SceneValidationError
from .normalize import DEFAULT_DB_RANGE, db_to_unit

__all__ = ["OPTICAL_NORMS", "SAR_NORMS", "InputContract", "InputContractError", "common_sar_db_range",
           "scene_sar_db_range"]

#: Optical normalisations a contract can use.
OPTICAL_NORMS = ("none", "dataset", "per_image")
#: SAR normalisations a contract can use (after dB -> [0, 1]).
SAR_NORMS = ("none", "dataset")
_MIN_STD = 1e-6
_MODALITY_DIM = {"optical": "band", "sar": "polarisation"}


class InputContractError(SceneValidationError):
    """A scene does not fit the input contract of the model that should read it."""


def _parse_range(value: Any, site: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.replace(" ", "").split(",")
    else:
        parts = list(np.asarray(value).ravel())
    try:
        lo, hi = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise SceneValidationError(site, "sar", f"attribute sar_db_range={value!r} is not 'low,high' dB") from None
    return lo, hi


def scene_sar_db_range(scene) -> tuple[float, float] | None:
    """The dB range a scene's SAR was clipped to by its source, from its attrs (None: unknown).

    Readers record it as ``sar_db_range`` (on the scene or on its ``sar`` variable), e.g.
    ``"-25,5"`` for the DS U-Net export of OSCD Sentinel-1.
    """
    site = str(scene.attrs.get("site", "scene"))
    value = scene.attrs.get("sar_db_range")
    if value is None and "sar" in scene.data_vars:
        value = scene["sar"].attrs.get("sar_db_range")
    return _parse_range(value, site)


def _names(scene, modality: str) -> tuple[str, ...]:
    dim = _MODALITY_DIM[modality]
    da = scene[modality]
    return tuple(str(v) for v in da[dim].values) if dim in da.coords else ()


def _zscore(arr: np.ndarray, mean, std) -> np.ndarray:
    """``(arr - mean) / std`` with the kit's rules: no mean (NaN) -> 0, a std <= 1e-6 or NaN -> 1."""
    mean = np.nan_to_num(np.asarray(mean, dtype=np.float32))
    std = np.asarray(std, dtype=np.float32)
    std = np.where(np.isfinite(std) & (std > _MIN_STD), std, np.float32(1.0))
    return (arr - mean) / std


def _per_image_zscore(arr: np.ndarray) -> np.ndarray:
    """Standardise every (H, W) image of ``arr`` (..., C, H, W) by its own finite pixels."""
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(arr, axis=(-2, -1), keepdims=True)
        std = np.nanstd(arr, axis=(-2, -1), keepdims=True)
    return _zscore(arr, mean, std)


@dataclass(frozen=True)
class InputContract:
    """The input rules of one trained model (stored in its checkpoint).

    Attributes:
        optical_bands: optical band names in model order (None: the model reads no optical input).
        sar_pols: SAR polarisations in model order (None: no SAR input).
        sar_db_range: (low, high) dB mapped to [0, 1] (clipped).
        source_sar_db_range: the dB range the *training scenes'* SAR was clipped to by its
            source (e.g. (-25, 5) for the DS U-Net export), None when unknown. A scene whose
            source clipped to another range is rejected.
        optical_norm: ``"none"``, ``"dataset"`` or ``"per_image"`` (module docstring).
        optical_mean, optical_std: per-band training statistics (reflectance) for ``"dataset"``.
        sar_norm: ``"none"`` or ``"dataset"``.
        sar_mean, sar_std: per-polarisation statistics of the [0, 1]-scaled SAR for ``"dataset"``.
    """

    optical_bands: tuple[str, ...] | None = None
    sar_pols: tuple[str, ...] | None = None
    sar_db_range: tuple[float, float] = DEFAULT_DB_RANGE
    source_sar_db_range: tuple[float, float] | None = None
    optical_norm: str = "none"
    optical_mean: tuple[float, ...] | None = None
    optical_std: tuple[float, ...] | None = None
    sar_norm: str = "none"
    sar_mean: tuple[float, ...] | None = None
    sar_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.optical_norm not in OPTICAL_NORMS:
            raise ConfigError(f"InputContract: optical_norm must be one of {OPTICAL_NORMS}, got {self.optical_norm!r}")
        if self.sar_norm not in SAR_NORMS:
            raise ConfigError(f"InputContract: sar_norm must be one of {SAR_NORMS}, got {self.sar_norm!r}")
        lo, hi = (float(v) for v in self.sar_db_range)
        if not lo < hi:
            raise ConfigError(f"InputContract: sar_db_range must be (low, high) with low < high, "
                              f"got {self.sar_db_range!r}")
        for norm, names, mean, std, what in (
                (self.optical_norm, self.optical_bands, self.optical_mean, self.optical_std, "optical"),
                (self.sar_norm, self.sar_pols, self.sar_mean, self.sar_std, "sar")):
            if norm != "dataset":
                continue
            if names is None or mean is None or std is None or not len(mean) == len(std) == len(names):
                raise ConfigError(f"InputContract: {what} norm 'dataset' needs a mean and std per channel "
                                  f"({names!r}); use InputContract.fit(scenes, ...)")

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def fit(cls, scenes: Iterable[Any], *, modalities: Sequence[str] = ("optical", "sar"),
            optical_bands: Sequence[str] | None = None, sar_pols: Sequence[str] | None = None,
            sar_db_range: tuple[float, float] | None = None, optical_norm: str = "dataset",
            sar_norm: str = "none") -> InputContract:
        """A contract whose statistics come from ``scenes`` (the *training* scenes only).

        Args:
            scenes: schema scenes; every one must have the modalities asked for.
            modalities: which inputs the model reads (those absent from the scenes are dropped
                only when no scene has them).
            optical_bands, sar_pols: channel names in model order (None: the first scene's).
            sar_db_range: dB range for [0, 1] scaling (None: the scenes' source range, else the
                kit's default (-25, 0) dB).
            optical_norm, sar_norm: see the class docstring.

        Returns:
            The contract, with per-channel mean/std over every finite pixel of every date.
        """
        scenes = list(scenes)
        if not scenes:
            raise ConfigError("InputContract.fit: no scenes given")
        mods = [m for m in modalities if any(m in s.data_vars for s in scenes)]
        source = common_sar_db_range(scenes) if "sar" in mods else None
        db_range = tuple(float(v) for v in (sar_db_range or source or DEFAULT_DB_RANGE))
        bands = tuple(optical_bands or _names(scenes[0], "optical")) if "optical" in mods else None
        pols = tuple(sar_pols or _names(scenes[0], "sar")) if "sar" in mods else None
        base = cls(optical_bands=bands, sar_pols=pols, sar_db_range=db_range, source_sar_db_range=source)
        stats: dict[str, Any] = {}
        if bands is not None and optical_norm == "dataset":
            stats["optical_mean"], stats["optical_std"] = base._channel_stats(scenes, "optical")
        if pols is not None and sar_norm == "dataset":
            stats["sar_mean"], stats["sar_std"] = base._channel_stats(scenes, "sar")
        return dataclasses.replace(base, optical_norm=optical_norm if bands else "none",
                                   sar_norm=sar_norm if pols else "none", **stats)

    def _channel_stats(self, scenes, modality: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) of the unnormalised model values of ``scenes`` (float64 sums)."""
        total = count = squares = None
        for scene in scenes:
            arr = self._scaled(scene, modality)  # (T, C, H, W), NaN kept
            arr = np.moveaxis(arr, 1, 0).reshape(arr.shape[1], -1).astype(np.float64)
            ok = np.isfinite(arr)
            vals = np.where(ok, arr, 0.0)
            n, s, q = ok.sum(1), vals.sum(1), (vals * vals).sum(1)
            total, count, squares = (s, n, q) if total is None else (total + s, count + n, squares + q)
        if count is None or (count == 0).any():
            raise ConfigError(f"InputContract.fit: a {modality} channel has no finite pixel in the scenes")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        std = np.where(std > _MIN_STD, std, 1.0)
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)

    # -- the one conversion rule ---------------------------------------------------------------
    def channels(self, modality: str) -> tuple[str, ...] | None:
        """Channel names of ``modality`` (``"optical"`` or ``"sar"``) in model order."""
        return self.optical_bands if modality == "optical" else self.sar_pols

    def select(self, scene, modality: str):
        """The ``(time, band|polarisation, y, x)`` DataArray of ``modality``, contract channels in order.

        Lazy: nothing is read; a scene without ``time`` gets one date.
        """
        dim = _MODALITY_DIM[modality]
        da = scene[modality].sel({dim: list(self.channels(modality))})
        if "time" not in da.dims:
            da = da.expand_dims("time")
        return da.transpose("time", dim, "y", "x")

    def scale(self, values: np.ndarray, modality: str) -> np.ndarray:
        """float32 model units before normalisation: reflectance as is, SAR dB -> [0, 1]; NaN kept."""
        arr = np.asarray(values, dtype=np.float32)
        if modality == "sar":
            arr = np.asarray(db_to_unit(arr, db_range=self.sar_db_range, clip=True), dtype=np.float32)
        return arr

    def _scaled(self, scene, modality: str) -> np.ndarray:
        """(T, C, H, W) float32 values: reflectance, or SAR dB scaled to [0, 1]; NaN kept."""
        return self.scale(self.select(scene, modality).values, modality)

    def prepare(self, values: np.ndarray, modality: str, image_stats=None) -> np.ndarray:
        """Scene values (..., C, H, W) of one modality -> model-ready float32 (C-contiguous).

        ``values`` are in the scene schema's units (optical reflectance, SAR dB) with the
        contract's channels in its order. The steps: SAR dB -> [0, 1]; the normalisation;
        NaN/inf -> 0. Per-image statistics are taken over the last two axes, so pass whole
        images, never patches, unless ``image_stats`` gives them: ``(mean, std)`` of the whole
        images in model units (:meth:`scale`), broadcastable to ``values``, e.g. (T, C, 1, 1)
        for a window of a scene too large to read at once (:mod:`urbankit.cityscale`).
        """
        if modality not in _MODALITY_DIM:
            raise ConfigError(f"InputContract.prepare: modality must be 'optical' or 'sar', got {modality!r}")
        norm, mean, std = ((self.sar_norm, self.sar_mean, self.sar_std) if modality == "sar"
                           else (self.optical_norm, self.optical_mean, self.optical_std))
        arr = np.array(values, dtype=np.float32, order="C")  # our own copy: the steps below work in place
        if modality == "sar" or (norm == "per_image" and image_stats is None):
            # inf -> NaN first: SAR clipping would turn inf into 1 and per-image means would be inf.
            # Elsewhere an inf ends as +-inf after the normalisation and becomes 0 with the NaNs.
            arr[np.isinf(arr)] = np.nan
        if modality == "sar":
            arr = self.scale(arr, "sar")
        n = arr.shape[-3]
        if len(self.channels(modality) or ()) != n:
            raise ConfigError(f"InputContract.prepare: {modality} has {n} channels, the contract "
                              f"{len(self.channels(modality) or ())} ({self.channels(modality)})")
        if norm == "dataset":
            arr -= np.asarray(mean, np.float32).reshape(n, 1, 1)
            arr /= np.asarray(std, np.float32).reshape(n, 1, 1)
        elif norm == "per_image":
            arr = _per_image_zscore(arr) if image_stats is None else _zscore(arr, *image_stats)
        return np.ascontiguousarray(np.nan_to_num(arr, copy=False, nan=0.0, posinf=0.0, neginf=0.0),
                                    dtype=np.float32)

    def scene_arrays(self, scene, modality: str) -> np.ndarray:
        """Model-ready (T, C, H, W) float32 of one modality of a whole scene (checked first)."""
        self.check(scene, modalities=(modality,))
        return self.prepare(self.select(scene, modality).values, modality)

    # -- checks --------------------------------------------------------------------------------
    def check(self, scene, modalities: Sequence[str] | None = None, *, values: bool = True) -> None:
        """Raise :class:`InputContractError` when ``scene`` does not fit this contract.

        Checked: the channels exist; optical values look like reflectance (not digital
        numbers); SAR values look like dB (not [0, 1] or linear power); the scene's source SAR
        range equals the training one (when both are known). ``values=False`` skips the value
        checks (which read every pixel): a caller reading the scene by windows checks the
        value range it met with :meth:`check_value_range` instead.
        """
        site = str(scene.attrs.get("site", "scene"))
        mods = modalities or [m for m in ("optical", "sar") if self.channels(m) is not None]
        for m in mods:
            names = self.channels(m)
            if names is None:
                raise InputContractError(site, m, "the model was not trained on this modality")
            if m not in scene.data_vars:
                raise InputContractError(site, m, f"is missing; the model reads {m} {list(names)}")
            have = _names(scene, m)
            missing = [n for n in names if n not in have]
            if missing:
                raise InputContractError(site, m, f"has {_MODALITY_DIM[m]}s {list(have)} but the model was "
                                         f"trained on {list(names)} (missing {missing})")
            if values:
                self._check_units(scene, m, site)
            self._check_source_range(scene, m, site)

    def _check_units(self, scene, modality: str, site: str) -> None:
        values = np.asarray(scene[modality].values, dtype=np.float32)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise InputContractError(site, modality, "has no finite value")
        self.check_value_range(float(finite.min()), float(finite.max()), modality, site)

    @staticmethod
    def check_value_range(lo: float, hi: float, modality: str, site: str) -> None:
        """Raise :class:`InputContractError` when values of ``modality`` are not in the schema's units.

        ``site`` (a site or a file) is named in the error; ``lo..hi`` is the finite values' span.

        Optical must look like reflectance (within -0.5..1.5); SAR like dB (some value below 0).
        The optical rule holds for any part of a scene; the SAR rule only for the whole scene.
        """
        if modality == "optical" and (hi > 1.5 or lo < -0.5):
            raise InputContractError(site, "optical", f"values span {lo:.4g}..{hi:.4g}; the model was trained on "
                                     "reflectance 0..1 (divide digital numbers by 10000 with "
                                     "urbankit.data.normalize.s2_to_reflectance)")
        if modality == "sar":
            if lo >= 0.0 and hi <= 1.0:
                raise InputContractError(site, "sar", f"values span {lo:.3g}..{hi:.3g}, which looks like SAR already "
                                         "scaled to [0, 1] (urbankit.data.normalize.unit_to_db converts back) or "
                                         "linear power (linear_to_db); the scene schema and the model expect dB")
            if lo >= 0.0:
                raise InputContractError(site, "sar", f"values span {lo:.3g}..{hi:.3g} (all >= 0), which looks like "
                                         "linear power; convert with urbankit.data.normalize.linear_to_db")

    def _check_source_range(self, scene, modality: str, site: str) -> None:
        if modality == "sar":
            source = scene_sar_db_range(scene)
            if (source is not None and self.source_sar_db_range is not None
                    and not np.allclose(source, self.source_sar_db_range)):
                raise InputContractError(site, "sar", f"was clipped by its source to {source} dB, but the model was "
                                         f"trained on SAR clipped to {self.source_sar_db_range} dB")

    # -- storage -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain python dict (lists and floats) for checkpoints and JSON."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputContract:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer checkpoint format)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"InputContract.from_dict: unknown fields {unknown}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def describe(self) -> str:
        """One line for a chapter: channels, SAR range and normalisation."""
        parts = []
        if self.optical_bands:
            parts.append(f"optical {len(self.optical_bands)} bands ({self.optical_norm} norm)")
        if self.sar_pols:
            parts.append(f"SAR {'/'.join(self.sar_pols)} dB {self.sar_db_range} -> [0, 1] ({self.sar_norm} norm)")
        return "; ".join(parts) or "no inputs"


def common_sar_db_range(scenes, who: str = "InputContract.fit") -> tuple[float, float] | None:
    """The one SAR source range (:func:`scene_sar_db_range`) of scenes with SAR; None when none records one.

    Raises:
        ConfigError: naming ``who`` when the scenes record different ranges.
    """
    ranges = {scene_sar_db_range(s) for s in scenes if "sar" in s.data_vars}
    ranges.discard(None)
    if len(ranges) > 1:
        raise ConfigError(f"{who}: the scenes' SAR was clipped to different dB ranges {sorted(ranges)}; "
                          "train on scenes from one source or rescale them first")
    return next(iter(ranges)) if ranges else None
