"""The torch layer: scenes (xarray Datasets following the scene schema) -> training samples.

One :class:`SceneDataset` turns a list of scenes into samples in the batch-dict layout of
CONTRIBUTING.md (``optical_t1``/``optical_t2``, ``sar_t1``/``sar_t2``, ``buildings_t1``/
``buildings_t2``, ``change``, ``labelled`` and ``site``). Where patches come from is decided by
a *sampler* (:class:`GridSampler`, :class:`RandomSampler`, :class:`ImportanceSampler`); what
is done to them by an :class:`Augment`. :func:`collate` stacks samples into a batch and
:func:`make_loader` builds a seeded, worker-safe ``DataLoader``.

Conversion rules (one place, documented once):

- Every scene is converted **once**, when the dataset is built, into contiguous float32
  numpy arrays (selected bands only); samples are then cut out by slicing. The xarray scenes
  are not kept, so the dataset pickles cheaply into DataLoader workers.
- Optical: reflectance 0..1 as stored in the scene (no further scaling).
- SAR: dB -> [0, 1] with :func:`urbankit.data.normalize.db_to_unit` and ``sar_db_range``
  (clipped).
- **NaN rule**: NaN (no data) in an input becomes 0 after normalisation, i.e. optical
  reflectance 0 and, for SAR, the bottom of the dB range. Labels carry no NaN (schema).
- Buildings are per-date masks or fractions (0..1) in the scene, emitted as the built-up mask
  ``(1, H, W)`` 0/1 (:func:`~urbankit.data.schema.is_built`). The change label
  of the first/last pair is the scene's ``change`` variable when present. For any other pair
  (``pair="random_pair"``), or when a scene has ``buildings`` but no ``change``, it is derived
  as *built at t2 and not built at t1* (construction only), "built" meaning
  :func:`urbankit.data.schema.is_built` (building fraction > 0, the kit's one definition).

Which keys a sample has:

- Input keys: one pair of keys per modality the dataset uses (``modalities=None``: every
  modality that *all* scenes have; naming a modality that a scene lacks is an error naming the
  site). ``pair="single"`` gives only the ``_t1`` keys (the first date).
- Label keys: those that every labelled scene can provide (a scene with ``buildings`` gives
  ``buildings_t1``, ``buildings_t2`` and ``change``; a scene with only ``change`` gives
  ``change``). A scene is *unlabelled* when it has no label variable or its ``split`` attribute
  is ``"unlabelled"``; with ``labelled=False`` every scene is. Unlabelled samples carry the
  same label keys filled with zeros and ``labelled=False``, so they share a batch with labelled
  ones (and :func:`collate` also fills label keys that a sample from another dataset lacks).

Randomness: every random choice of a sample (date pair, patch position, augmentation) comes
from a numpy Generator seeded with ``(seed, epoch, index)``, so a sample is the same whatever
``num_workers`` is and whichever worker builds it. Call :meth:`SceneDataset.set_epoch` (or
``loader.set_epoch`` on a loader from :func:`make_loader`) at the start of every epoch.

Scenes smaller than the patch size raise a :class:`~urbankit.errors.ConfigError` naming the
site (no padding: padded zeros would be read as "not built" labels).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .data.contract import InputContract, common_sar_db_range
from .data.normalize import DEFAULT_DB_RANGE, model_input
from .data.schema import is_built
from .errors import ConfigError, SceneValidationError

__all__ = [
    "LABEL_KEYS",
    "Augment",
    "GridSampler",
    "ImportanceSampler",
    "PatchSampler",
    "RandomSampler",
    "SceneDataset",
    "collate",
    "make_loader",
    "sample_rng",
]

PairMode = Literal["first_last", "random_pair", "single"]

#: Label keys of the batch dict (all float32, zeros for unlabelled samples).
LABEL_KEYS = ("buildings_t1", "buildings_t2", "change")
_MODALITIES = ("optical", "sar")


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index`` in ``epoch`` (independent of workers)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]))


# ----------------------------------------------------------------------------------------------
# samplers


class PatchSampler:
    """Base class: decides which windows of which scenes make the samples.

    :meth:`plan` returns one entry per sample: ``(scene, y0, x0)`` for a fixed window, or
    ``(scene, None, None)`` for a window chosen per sample by :meth:`choose`.
    """

    patch_size: int

    def __init__(self, patch_size: int):
        if not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
            raise ConfigError(f"{type(self).__name__}: patch_size must be a positive int, got {patch_size!r}")
        self.patch_size = int(patch_size)

    def plan(self, shapes: Sequence[tuple[int, int]]) -> list[tuple[int, int | None, int | None]]:
        """The epoch's windows ``(scene index, y0 or None, x0 or None)`` for scenes of ``shapes`` (H, W) px."""
        raise NotImplementedError

    def choose(self, shape: tuple[int, int], rng: np.random.Generator, count_change) -> tuple[int, int]:
        """A random window origin in a scene of ``shape``.

        ``count_change(ys, xs)`` returns the number of change pixels of the windows whose origins
        are in the integer arrays ``ys``, ``xs`` (None for scenes without a change label).
        """
        raise NotImplementedError

    def _random_origin(self, shape, rng, n=None):
        h, w = shape
        p = self.patch_size
        ys = rng.integers(0, h - p + 1, size=n)
        xs = rng.integers(0, w - p + 1, size=n)
        return ys, xs

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _grid_starts(length: int, patch: int, stride: int) -> list[int]:
    if length < patch:
        raise ConfigError(f"GridSampler: a scene side of {length} px is smaller than the patch size {patch}")
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:  # last patch aligned to the border: nothing is missed
        starts.append(length - patch)
    return starts


class GridSampler(PatchSampler):
    """A regular grid of patches covering every scene completely.

    Windows step by ``stride`` (default ``patch_size - overlap``); the last window on each axis
    is aligned to the scene border (so it may overlap its neighbour more), hence every pixel is
    covered. Deterministic; samples are ordered scene by scene, row by row.
    """

    def __init__(self, patch_size: int, overlap: int = 0, stride: int | None = None):
        super().__init__(patch_size)
        if stride is None:
            if not 0 <= overlap < self.patch_size:
                raise ConfigError(f"GridSampler: overlap must be in [0, patch_size), got {overlap!r}")
            stride = self.patch_size - int(overlap)
        elif overlap:
            raise ConfigError("GridSampler: give overlap or stride, not both")
        if not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ConfigError(f"GridSampler: stride must be a positive int, got {stride!r}")
        self.stride = int(stride)

    def plan(self, shapes):
        """Every grid window origin of every scene: ``(scene index, y0, x0)`` in px."""
        out = []
        for s, (h, w) in enumerate(shapes):
            for y0 in _grid_starts(h, self.patch_size, self.stride):
                for x0 in _grid_starts(w, self.patch_size, self.stride):
                    out.append((s, y0, x0))
        return out


class RandomSampler(PatchSampler):
    """``n_per_scene`` uniformly random patches per scene and epoch.

    ``n_per_scene`` is one count for every scene, or a sequence with one count per scene
    (e.g. fewer patches from each of a city's per-orbit scenes, so that every city weighs the
    same whatever its number of Sentinel-1 orbits).
    """

    def __init__(self, patch_size: int, n_per_scene: int | Sequence[int] = 1):
        super().__init__(patch_size)
        counts = [n_per_scene] if isinstance(n_per_scene, (int, np.integer)) else list(n_per_scene)
        if not counts or any(not isinstance(n, (int, np.integer)) or n < 0 for n in counts) or sum(counts) < 1:
            raise ConfigError(f"{type(self).__name__}: n_per_scene must be a positive int or a sequence of "
                              f"non-negative ints (one per scene), got {n_per_scene!r}")
        self.n_per_scene = int(n_per_scene) if isinstance(n_per_scene, (int, np.integer)) else tuple(map(int, counts))

    def plan(self, shapes):
        """``n_per_scene`` random windows per scene, origins drawn later by :meth:`choose` (None, None)."""
        counts = self.n_per_scene
        if isinstance(counts, tuple):
            if len(counts) != len(shapes):
                raise ConfigError(f"{type(self).__name__}: n_per_scene has {len(counts)} counts for "
                                  f"{len(shapes)} scenes")
        else:
            counts = (counts,) * len(shapes)
        return [(s, None, None) for s in range(len(shapes)) for _ in range(counts[s])]

    def choose(self, shape, rng, count_change):
        """A uniformly random window origin ``(y0, x0)`` in px in a scene of ``shape``."""
        y, x = self._random_origin(shape, rng)
        return int(y), int(x)


class ImportanceSampler(RandomSampler):
    """Random patches that favour change (the KTH papers' code, e.g. Hafner et al. 2022, GRSL).

    Draws ``n_candidates`` random windows and picks one with probability proportional to
    ``#change pixels + bias``. Scenes without a change label (unlabelled) give uniform picks.
    """

    def __init__(self, patch_size: int, n_per_scene: int = 1, n_candidates: int = 20, bias: float = 5.0):
        super().__init__(patch_size, n_per_scene)
        if not isinstance(n_candidates, (int, np.integer)) or n_candidates < 1:
            raise ConfigError(f"ImportanceSampler: n_candidates must be a positive int, got {n_candidates!r}")
        if not bias > 0:
            raise ConfigError(f"ImportanceSampler: bias must be > 0, got {bias!r}")
        self.n_candidates = int(n_candidates)
        self.bias = float(bias)

    def choose(self, shape, rng, count_change):
        """The origin ``(y0, x0)`` of one of ``n_candidates`` random windows.

        Each candidate is drawn with weight (its change pixels + ``bias``).
        """
        ys, xs = self._random_origin(shape, rng, self.n_candidates)
        if count_change is None:
            weights = np.full(self.n_candidates, self.bias)
        else:
            weights = np.asarray(count_change(ys, xs), dtype=np.float64) + self.bias
        k = rng.choice(self.n_candidates, p=weights / weights.sum())
        return int(ys[k]), int(xs[k])


# ----------------------------------------------------------------------------------------------
# augmentation


@dataclass(frozen=True)
class Augment:
    """Geometric (and optional radiometric) augmentation, identical for every date, modality and label.

    Attributes:
        hflip: flip left-right with probability 0.5.
        vflip: flip up-down with probability 0.5 (independent of ``hflip``).
        rot90: rotate by ``k * 90`` degrees, ``k`` uniform in {0, 1, 2, 3}.
        gamma: per optical band ``x ** g``, ``g ~ U(gamma_range)``, after clipping to [0, 1]
            (Fusion-DA code, Hafner et al. 2022, RSE); the same ``g`` for a band at both dates.
            SAR and labels untouched.
        gamma_range: the range of ``g``.
        swap_dates: with probability 0.5 exchange the two dates: every ``<modality>_t1`` input
            with its ``_t2``, and ``buildings_t1`` with ``buildings_t2``. The ``change`` label is
            kept, so it must not depend on the order of the dates (OSCD's "any change" label);
            :class:`SceneDataset` refuses it where the change is derived from buildings (new
            construction, which a swap turns into demolition) and with ``pair="single"``.
            Drawn after every other parameter, so turning it on leaves the other draws unchanged.
        identity_pairs: probability that a sample becomes a *no-change pair*: one of its two
            dates (either, with probability 0.5 each) replaces the other in every modality, and
            the change label becomes all zeros (an image has not changed against itself). A
            network that predicts change from one date's appearance (e.g. from the date-2
            bottleneck of the FC-Siam networks) is penalised by these pairs; one that compares
            the dates is not. :class:`SceneDataset` refuses it with ``pair="single"``. Drawn
            after ``swap_dates``, so turning it on leaves the other draws unchanged.
    """

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    gamma: bool = False
    gamma_range: tuple[float, float] = (0.25, 2.0)
    swap_dates: bool = False
    identity_pairs: float = 0.0

    def __post_init__(self):
        lo, hi = self.gamma_range
        if not 0 < lo <= hi:
            raise ConfigError(f"Augment: gamma_range must satisfy 0 < low <= high, got {self.gamma_range!r}")
        p = self.identity_pairs
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ConfigError(f"Augment: identity_pairs is a probability in [0, 1], got {p!r}")

    def draw(self, rng: np.random.Generator, n_optical_bands: int) -> dict[str, Any]:
        """The random parameters of one sample (drawn in a fixed order)."""
        params = {
            "hflip": bool(rng.random() < 0.5) if self.hflip else False,
            "vflip": bool(rng.random() < 0.5) if self.vflip else False,
            "k": int(rng.integers(0, 4)) if self.rot90 else 0,
            "gamma": None,
        }
        if self.gamma and n_optical_bands:
            params["gamma"] = rng.uniform(*self.gamma_range, size=n_optical_bands).astype(np.float32)
        params["swap"] = bool(rng.random() < 0.5) if self.swap_dates else False
        params["identity"] = None
        if self.identity_pairs > 0 and rng.random() < self.identity_pairs:
            params["identity"] = "t1" if rng.random() < 0.5 else "t2"  # the date that is kept
        return params

    @staticmethod
    def apply_geometry(arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Flip/rotate the last two axes of ``arr`` (a view; make contiguous afterwards)."""
        if params["hflip"]:
            arr = arr[..., :, ::-1]
        if params["vflip"]:
            arr = arr[..., ::-1, :]
        if params["k"]:
            arr = np.rot90(arr, params["k"], axes=(-2, -1))
        return arr

    @staticmethod
    def apply_gamma(optical: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Per-band gamma on a (C, H, W) optical crop (a new array)."""
        g = params["gamma"]
        if g is None:
            return optical
        return np.power(np.clip(optical, 0.0, 1.0), g[:, None, None]).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------------------------
# dataset


class _Scene:
    """A scene converted once to contiguous float32 numpy arrays."""

    __slots__ = (
        "_change_cumsum",
        "buildings",
        "built",
        "change",
        "label_vars",
        "labelled",
        "n_dates",
        "optical",
        "sar",
        "shape",
        "site",
    )

    def __init__(self, site, shape, n_dates):
        self.site, self.shape, self.n_dates = site, shape, n_dates
        self.optical = self.sar = self.buildings = self.built = self.change = None
        self.labelled = False
        self.label_vars: set[str] = set()
        self._change_cumsum = None

    def drop_labels(self) -> None:
        self.labelled = False
        self.buildings = self.built = self.change = self._change_cumsum = None

    def _use_stored_change(self, i: int, j: int) -> bool:
        return self.change is not None and ((i == 0 and j == self.n_dates - 1) or self.built is None)

    def change_window(self, i: int, j: int, y0: int, x0: int, p: int) -> np.ndarray:
        """float32 (p, p) change label of dates (i, j) in a window (see the module docstring)."""
        if self._use_stored_change(i, j):
            return self.change[y0:y0 + p, x0:x0 + p]
        w = (slice(y0, y0 + p), slice(x0, x0 + p))
        return (self.built[j][w] & ~self.built[i][w]).astype(np.float32)

    def prepare_counts(self) -> None:
        """Summed-area table of the first/last change label (O(1) window counts); built once."""
        if self._change_cumsum is None and self.labelled and (self.change is not None or self.built is not None):
            h, w = self.shape
            full = self.change_window(0, self.n_dates - 1, 0, 0, max(h, w)) > 0.5
            c = np.zeros((h + 1, w + 1), dtype=np.int64)
            c[1:, 1:] = full.cumsum(0).cumsum(1)
            self._change_cumsum = c

    def change_counter(self, i: int, j: int, p: int):
        """``count(ys, xs)``: change pixels in the windows at (ys, xs) (arrays); None when unlabelled."""
        if not self.labelled or (self.change is None and self.built is None):
            return None
        if (i == 0 and j == self.n_dates - 1) or self.built is None:
            self.prepare_counts()
            c = self._change_cumsum
            return lambda ys, xs: c[ys + p, xs + p] - c[ys, xs + p] - c[ys + p, xs] + c[ys, xs]
        win_i = np.lib.stride_tricks.sliding_window_view(self.built[i], (p, p))
        win_j = np.lib.stride_tricks.sliding_window_view(self.built[j], (p, p))
        return lambda ys, xs: (win_j[ys, xs] & ~win_i[ys, xs]).sum(axis=(1, 2))


def _swap_dates(sample: dict[str, Any]) -> None:
    """Exchange every ``*_t1`` entry of ``sample`` with its ``*_t2`` (in place)."""
    for key in [k for k in sample if k.endswith("_t1")]:
        other = key[:-3] + "_t2"
        if other in sample:
            sample[key], sample[other] = sample[other], sample[key]


def _make_identity_pair(sample: dict[str, Any], keep: str) -> None:
    """Make ``sample`` a no-change pair in place: date ``keep`` ("t1"/"t2") replaces the other.

    Every ``<name>_t1``/``<name>_t2`` entry (inputs and building labels) gets date ``keep``'s
    tensor (a copy), and ``change`` becomes zeros.
    """
    other = "t2" if keep == "t1" else "t1"
    for key in [k for k in sample if k.endswith("_" + keep)]:
        twin = key[: -len(keep)] + other
        if twin in sample:
            sample[twin] = sample[key].clone()
    if "change" in sample:
        sample["change"] = torch.zeros_like(sample["change"])


def _as_list(scenes) -> list:
    import xarray as xr

    if isinstance(scenes, xr.Dataset):
        return [scenes]
    scenes = list(scenes)
    for k, s in enumerate(scenes):
        if not isinstance(s, xr.Dataset):
            raise ConfigError(f"SceneDataset: scenes[{k}] is a {type(s).__name__}, expected an xarray.Dataset")
    return scenes


def _select(da, dim: str, names, site: str, var: str) -> np.ndarray:
    """(time, C, y, x) float32 values of ``da``, with the coordinate ``dim`` selected by name."""
    if names is not None:
        have = [str(v) for v in da[dim].values] if dim in da.coords else []
        missing = [n for n in names if n not in have]
        if missing:
            raise SceneValidationError(site, var, f"has no {dim} {missing} (has {have})")
        da = da.sel({dim: list(names)})
    return da.transpose("time", dim, "y", "x").values


class SceneDataset(Dataset):
    """Patches of a list of scenes as batch-dict samples (see the module docstring).

    Args:
        scenes: an ``xarray.Dataset`` or a list of them, following the scene schema.
        sampler: a :class:`PatchSampler` (which windows make the samples).
        modalities: input modalities to emit (``"optical"``, ``"sar"``); None: those all scenes have.
        optical_bands: optical band names to keep, in this order (None: all, in scene order;
            all scenes must then have the same bands).
        sar_pols: SAR polarisations to keep (None: all).
        sar_db_range: dB range mapped to [0, 1] (clipped); None: the range the scenes' reader
            recorded (``sar_db_range`` attr, :func:`urbankit.data.contract.common_sar_db_range`;
            scenes recording different ranges raise), else the kit's default (-25, 0) dB
            (:data:`urbankit.data.normalize.DEFAULT_DB_RANGE`); with a contract, the contract's.
        pair: ``"first_last"`` (t1 = first date, t2 = last), ``"random_pair"`` (a random sorted
            pair of distinct dates per sample) or ``"single"`` (t1 = first date only).
        augment: an :class:`Augment`, or None.
        labelled: False treats every scene as unlabelled (zero labels, ``labelled=False``).
        seed: the seed of all per-sample randomness.
        validate: check every scene with :func:`urbankit.data.schema.validate_scene` first
            (dims, dtypes, value ranges); False skips it for scenes already validated.
        contract: an :class:`urbankit.data.contract.InputContract` (channels, SAR range and
            normalisation, e.g. per-band z-scores fitted on the training scenes). When given,
            it decides the modalities, bands, polarisations and ``sar_db_range`` (those
            arguments must then be left at their defaults), every scene is checked against it,
            and inputs are converted with :meth:`InputContract.prepare` on whole scenes.
    """

    def __init__(self, scenes, sampler: PatchSampler, *, modalities: Sequence[str] | None = None,
                 optical_bands: Sequence[str] | None = None, sar_pols: Sequence[str] | None = None,
                 sar_db_range: tuple[float, float] | None = None, pair: PairMode = "first_last",
                 augment: Augment | None = None, labelled: bool = True, seed: int = 0,
                 validate: bool = True, contract: InputContract | None = None):
        if not isinstance(sampler, PatchSampler):
            raise ConfigError(f"SceneDataset: sampler must be a PatchSampler, got {type(sampler).__name__}")
        if pair not in ("first_last", "random_pair", "single"):
            raise ConfigError(f"SceneDataset: pair must be 'first_last', 'random_pair' or 'single', got {pair!r}")
        if augment is not None and not isinstance(augment, Augment):
            raise ConfigError(f"SceneDataset: augment must be an Augment or None, got {type(augment).__name__}")
        if contract is not None:
            if not isinstance(contract, InputContract):
                raise ConfigError(f"SceneDataset: contract must be an InputContract, got {type(contract).__name__}")
            if any(v is not None for v in (optical_bands, sar_pols, modalities, sar_db_range)):
                raise ConfigError("SceneDataset: pass either contract= or modalities/optical_bands/sar_pols/"
                                  "sar_db_range, not both (the contract names the channels and the SAR range)")
            modalities = [m for m in _MODALITIES if contract.channels(m) is not None]
            optical_bands, sar_pols = contract.optical_bands, contract.sar_pols
            sar_db_range = contract.sar_db_range
        self.contract = contract
        scenes = _as_list(scenes)
        if not scenes:
            raise ConfigError("SceneDataset: no scenes given")
        if sar_db_range is None:
            sar_db_range = common_sar_db_range(scenes, "SceneDataset") or DEFAULT_DB_RANGE
        lo, hi = sar_db_range
        if not lo < hi:
            raise ConfigError(f"SceneDataset: sar_db_range must be (low, high) with low < high, got {sar_db_range!r}")
        if validate:
            from .data.schema import validate_scene

            for scene in scenes:
                validate_scene(scene)
        self.sampler, self.pair, self.augment = sampler, pair, augment
        self.sar_db_range = (float(lo), float(hi))
        self.seed, self.epoch = int(seed), 0
        self.modalities = self._resolve_modalities(scenes, modalities)
        self.optical_bands = self._resolve_names(scenes, "optical", "band", optical_bands)
        self.sar_pols = self._resolve_names(scenes, "sar", "polarisation", sar_pols)
        self._scenes = [self._convert(s, k, labelled) for k, s in enumerate(scenes)]
        self.label_keys = self._resolve_label_keys()
        if augment is not None and augment.swap_dates:
            self._check_swappable()
        if augment is not None and augment.identity_pairs and pair == "single":
            raise ConfigError("SceneDataset: augment.identity_pairs needs two dates, but pair='single'")
        self._plan = sampler.plan([s.shape for s in self._scenes])

    # -- construction helpers ------------------------------------------------------------------

    @staticmethod
    def _site(scene, k) -> str:
        return str(scene.attrs.get("site", f"scene {k}"))

    def _resolve_modalities(self, scenes, modalities) -> tuple[str, ...]:
        if modalities is None:
            mods = tuple(m for m in _MODALITIES if all(m in s.data_vars for s in scenes))
            if not mods:
                raise ConfigError("SceneDataset: no input modality (optical or sar) is present in every scene: "
                                  + ", ".join(f"{self._site(s, k)} has {sorted(set(_MODALITIES) & set(s.data_vars))}"
                                              for k, s in enumerate(scenes)))
            return mods
        mods = tuple(modalities)
        for m in mods:
            if m not in _MODALITIES:
                raise ConfigError(f"SceneDataset: unknown modality {m!r} (expected one of {_MODALITIES})")
            for k, s in enumerate(scenes):
                if m not in s.data_vars:
                    raise SceneValidationError(self._site(s, k), m, "is missing but the dataset asks for it")
        if not mods:
            raise ConfigError("SceneDataset: modalities is empty")
        return mods

    def _resolve_names(self, scenes, var, dim, names) -> tuple[str, ...] | None:
        if var not in self.modalities:
            return None
        if names is not None:
            names = tuple(str(n) for n in ([names] if isinstance(names, str) else names))
            if not names:
                raise ConfigError(f"SceneDataset: the {dim} list for {var!r} is empty")
            return names
        first = None
        for k, s in enumerate(scenes):
            have = tuple(str(v) for v in s[var][dim].values) if dim in s[var].coords else None
            if first is None:
                first = have
            elif have != first:
                raise SceneValidationError(self._site(s, k), var,
                                           f"has {dim} {have} but the first scene has {first}; "
                                           f"pass {'optical_bands' if var == 'optical' else 'sar_pols'}=[...]")
        return first

    def _convert(self, scene, k, labelled) -> _Scene:
        site = self._site(scene, k)
        for var in list(self.modalities) + [v for v in ("buildings", "change") if v in scene.data_vars]:
            need = {"optical": ("time", "band", "y", "x"), "sar": ("time", "polarisation", "y", "x"),
                    "buildings": ("time", "y", "x"), "change": ("y", "x")}[var]
            if set(scene[var].dims) != set(need):
                raise SceneValidationError(site, var, f"has dims {scene[var].dims}, expected {need}")
        if "y" not in scene.sizes or "x" not in scene.sizes:
            raise SceneValidationError(site, None, "has no y/x dimensions")
        shape = (int(scene.sizes["y"]), int(scene.sizes["x"]))
        p = self.sampler.patch_size
        if shape[0] < p or shape[1] < p:
            raise ConfigError(f"SceneDataset: site {site!r} is {shape[0]}x{shape[1]} px, smaller than the "
                              f"patch size {p}; use a smaller patch (scenes are not padded)")
        n_dates = int(scene.sizes.get("time", 1))
        if self.pair != "single" and n_dates < 2:
            raise SceneValidationError(site, "time", f"has {n_dates} date(s); pair={self.pair!r} needs >= 2 "
                                       "(use pair='single')")
        out = _Scene(site, shape, n_dates)
        if self.contract is not None:
            self.contract.check(scene, modalities=self.modalities)
        for m in self.modalities:
            dim, names = ("band", self.optical_bands) if m == "optical" else ("polarisation", self.sar_pols)
            values = _select(scene[m], dim, names, site, m)
            if self.contract is not None:
                arr = self.contract.prepare(values, m)
            else:
                arr = model_input(values, m, self.sar_db_range)
            setattr(out, m, arr)
        if "buildings" in scene.data_vars:
            out.buildings = np.ascontiguousarray(
                scene["buildings"].transpose("time", "y", "x").values.astype(np.float32))
            out.built = is_built(out.buildings)
            out.label_vars.add("buildings")
        if "change" in scene.data_vars:
            out.change = np.ascontiguousarray(scene["change"].transpose("y", "x").values.astype(np.float32))
            out.label_vars.add("change")
        unlabelled_split = str(scene.attrs.get("split", "")) == "unlabelled"
        out.labelled = bool(labelled and out.label_vars and not unlabelled_split)
        if self.pair == "random_pair" and out.labelled and n_dates > 2 and out.buildings is None:
            raise SceneValidationError(site, "buildings", "is missing: pair='random_pair' derives the change "
                                       "label of intermediate dates from buildings (the scene has only 'change')")
        if not out.labelled:  # unlabelled scenes keep no label arrays (label_vars still says what it had)
            out.drop_labels()
        return out

    def _provides(self, s: _Scene) -> set[str]:
        if self.pair == "single":
            return {"buildings_t1"} if "buildings" in s.label_vars else set()
        keys = set()
        if "buildings" in s.label_vars:
            keys |= {"buildings_t1", "buildings_t2", "change"}
        if "change" in s.label_vars:
            keys.add("change")
        return keys

    def _resolve_label_keys(self) -> tuple[str, ...]:
        # from what the scenes have, whether or not they are used as labelled (labelled=False,
        # split "unlabelled"), so that such a dataset still emits (zero) label keys
        sets = [self._provides(s) for s in self._scenes if s.label_vars]
        keys = set.intersection(*sets) if sets else set()
        for s in self._scenes:  # a labelled scene that provides none of the keys is unlabelled here
            if s.labelled and not (self._provides(s) & keys):
                s.drop_labels()
            if isinstance(self.sampler, ImportanceSampler) and self.pair != "single":
                s.prepare_counts()  # once here, not in every worker
        return tuple(k for k in LABEL_KEYS if k in keys)

    def _check_swappable(self) -> None:
        """Raise unless every labelled scene's change label survives a swap of the two dates."""
        if self.pair == "single":
            raise ConfigError("SceneDataset: augment.swap_dates needs two dates, but pair='single'")
        if "change" not in self.label_keys:
            return
        for s in self._scenes:
            # first_last draws (0, last); random_pair may draw (0, 1), the pair least likely stored
            i, j = (0, s.n_dates - 1) if self.pair == "first_last" else (0, 1)
            if s.labelled and not s._use_stored_change(i, j):
                raise ConfigError(
                    f"SceneDataset: augment.swap_dates with site {s.site!r}: its change label is derived "
                    f"from the buildings of the two dates (built at t2 and not at t1), which a swap of the "
                    f"dates turns into demolition; use swap_dates only with a stored change label that "
                    f"does not depend on the order of the dates (pair={self.pair!r})")

    # -- public API ----------------------------------------------------------------------------

    @property
    def sites(self) -> list[str]:
        """The site name of every scene, in order."""
        return [s.site for s in self._scenes]

    @property
    def keys(self) -> tuple[str, ...]:
        """The tensor keys of every sample (besides ``labelled`` and ``site``)."""
        times = ("t1",) if self.pair == "single" else ("t1", "t2")
        return tuple(f"{m}_{t}" for m in self.modalities for t in times) + self.label_keys

    @property
    def channels(self) -> dict[str, int]:
        """Channels per input modality, e.g. ``{"optical": 4, "sar": 2}``."""
        first = self._scenes[0]
        return {m: (first.optical if m == "optical" else first.sar).shape[1] for m in self.modalities}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws the next samples use (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._plan)

    def window(self, index: int, epoch: int | None = None) -> tuple[int, int, int, tuple[int, int]]:
        """``(scene, y0, x0, (i, j))`` of sample ``index``: scene, window origin and dates."""
        return self._draw(index, sample_rng(self.seed, self.epoch if epoch is None else epoch, index))[:4]

    def _draw(self, index, rng):
        s_idx, y0, x0 = self._plan[index]
        sc = self._scenes[s_idx]
        if self.pair == "first_last":
            i, j = 0, sc.n_dates - 1
        elif self.pair == "single":
            i, j = 0, 0
        else:
            i, j = sorted(int(v) for v in rng.choice(sc.n_dates, size=2, replace=False))
        if y0 is None:
            # single-date samples have no change label: importance picks are then uniform
            counter = sc.change_counter(i, j, self.sampler.patch_size) if self.pair != "single" else None
            y0, x0 = self.sampler.choose(sc.shape, rng, counter)
        return s_idx, y0, x0, (i, j), sc

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"SceneDataset index {index} out of range (0..{len(self) - 1})")
        rng = sample_rng(self.seed, self.epoch, index)
        _, y0, x0, (i, j), sc = self._draw(index, rng)
        p = self.sampler.patch_size
        ys, xs = slice(y0, y0 + p), slice(x0, x0 + p)
        dates = (("t1", i),) if self.pair == "single" else (("t1", i), ("t2", j))
        params = None
        if self.augment is not None:
            n_opt = sc.optical.shape[1] if sc.optical is not None else 0
            params = self.augment.draw(rng, n_opt)

        def finish(arr, gamma=False):
            if params is not None:
                if gamma:
                    arr = Augment.apply_gamma(arr, params)
                arr = Augment.apply_geometry(arr, params)
            # always a copy: a sample never shares memory with the dataset's cache
            return torch.from_numpy(np.array(arr, dtype=np.float32, order="C"))

        out: dict[str, Any] = {}
        for m in self.modalities:
            data = sc.optical if m == "optical" else sc.sar
            for t, d in dates:
                out[f"{m}_{t}"] = finish(data[d, :, ys, xs], gamma=(m == "optical"))
        for key in self.label_keys:
            if not sc.labelled:
                out[key] = torch.zeros((1, p, p), dtype=torch.float32)
            elif key == "change":
                out[key] = finish(sc.change_window(i, j, y0, x0, p)[None])
            else:
                d = i if key == "buildings_t1" else j
                out[key] = finish(sc.built[d, ys, xs][None].astype(np.float32))
        if params is not None and params["swap"]:
            _swap_dates(out)
        if params is not None and params["identity"]:
            _make_identity_pair(out, params["identity"])
        out["labelled"] = torch.tensor(sc.labelled)
        out["site"] = sc.site
        return out

    def __repr__(self) -> str:
        if not hasattr(self, "_plan"):
            return "SceneDataset(<not initialised>)"
        return (f"SceneDataset({len(self._scenes)} scenes, {len(self)} samples, keys={list(self.keys)}, "
                f"sampler={self.sampler!r}, pair={self.pair!r}, augment={self.augment!r})")


# ----------------------------------------------------------------------------------------------
# batching and loading


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack sample dicts into a batch dict; ``site`` stays a list, ``labelled`` becomes (B,) bool.

    Samples from different datasets may share a batch: a label key that some samples lack is
    filled with zeros for them, provided they are unlabelled. Any other key mismatch is an error.
    """
    if not samples:
        raise ConfigError("collate: empty batch")
    keys: list[str] = []
    for smp in samples:
        keys += [k for k in smp if k not in keys]
    batch: dict[str, Any] = {}
    for key in keys:
        if key == "site":
            batch["site"] = [str(smp.get("site", "")) for smp in samples]
            continue
        if key == "labelled":
            batch["labelled"] = torch.tensor([bool(smp.get("labelled", False)) for smp in samples])
            continue
        ref = next(smp[key] for smp in samples if key in smp)
        parts = []
        for smp in samples:
            if key in smp:
                parts.append(smp[key])
            elif key in LABEL_KEYS and not bool(smp.get("labelled", False)):
                parts.append(torch.zeros_like(ref))
            else:
                raise ConfigError(f"collate: sample from site {smp.get('site')!r} has no {key!r} "
                                  f"(keys {sorted(smp)}), but other samples in the batch have it")
        try:
            batch[key] = torch.stack(parts)
        except RuntimeError as err:
            shapes = sorted({tuple(t.shape) for t in parts})
            raise ConfigError(f"collate: {key!r} has different shapes in one batch: {shapes}") from err
    return batch


class EpochShuffle(Sampler[int]):
    """Sample order that depends only on ``(seed, dataset.epoch)`` (not on call history)."""

    def __init__(self, dataset, seed: int = 0, shuffle: bool = True):
        self.dataset, self.seed, self.shuffle = dataset, int(seed), shuffle

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if not self.shuffle:
            return iter(range(n))
        epoch = int(getattr(self.dataset, "epoch", 0))
        state = np.random.SeedSequence([self.seed & 0xFFFFFFFF, epoch, 0x5EED]).generate_state(2, np.uint64)
        g = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        return iter(torch.randperm(n, generator=g).tolist())


def _worker_init(worker_id: int) -> None:
    """Seed the global RNGs of a worker (urbankit's own draws do not use them) and keep it single-threaded."""
    import random

    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)


class _EpochLoader(DataLoader):
    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the dataset (sample draws and order); call before iterating."""
        ds = self.dataset
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        elif hasattr(ds, "datasets"):  # ConcatDataset
            for d in ds.datasets:
                if hasattr(d, "set_epoch"):
                    d.set_epoch(epoch)
            ds.epoch = int(epoch)
        else:
            ds.epoch = int(epoch)


def make_loader(dataset, batch_size: int, shuffle: bool = True, num_workers: int = 0, seed: int = 0,
                drop_last: bool = False, pin_memory: bool = False, **kwargs) -> DataLoader:
    """A ``DataLoader`` whose batches depend only on ``(seed, epoch)``, whatever ``num_workers``.

    The order comes from :class:`EpochShuffle`, the samples from the dataset's per-sample RNG;
    workers are re-created every epoch (``persistent_workers=False``) so they see the epoch set
    with ``loader.set_epoch(epoch)``. Batches are built by :func:`collate`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"make_loader: batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"make_loader: num_workers must be an int >= 0, got {num_workers!r}")
    generator = torch.Generator().manual_seed(int(seed))
    return _EpochLoader(dataset, batch_size=batch_size, sampler=EpochShuffle(dataset, seed, shuffle),
                        num_workers=num_workers, collate_fn=kwargs.pop("collate_fn", collate),
                        worker_init_fn=_worker_init if num_workers else None, generator=generator,
                        drop_last=drop_last, pin_memory=pin_memory, persistent_workers=False, **kwargs)
