"""City-scale prediction: a whole scene, read by windows, written as a Cloud-Optimised GeoTIFF.

:func:`urbankit.inference.predict` holds a scene and its probabilities in memory; a full
Sentinel-2 tile (10980 x 10980 px, 13 bands: 6.3 GB of float32) does not fit on a course
laptop. :func:`predict_to_cog` predicts such a scene in windows and writes the map to disk:

- **Input**: a scene (``xarray.Dataset`` of the scene schema, in memory, dask- or zarr-backed),
  the path of a zarr store or netCDF file holding one, or GeoTIFFs (one per modality and date)
  read by window (:class:`GeoTiffScene`). Only the window being predicted is read.
- **Windows**: the scene is cut into core blocks of ``chunk`` px; each is predicted from a
  window of the core plus ``overlap / 2`` px of its neighbours (clipped at the scene's edge).
  Where two windows overlap (a strip of ``overlap`` px around each inner block edge) their
  probabilities are blended with raised-cosine weights that sum to one; everywhere else a
  pixel comes from one window, unweighted. There is no full-size accumulator: memory is bounded
  by the windows in flight, not by the scene.
- **Input contract**: the model's ``input_contract`` (set by
  :func:`urbankit.train.load_checkpoint`) converts every window with
  :meth:`~urbankit.data.contract.InputContract.prepare`, the same rule as training and
  :func:`~urbankit.inference.predict`. Channels are checked before any work; value ranges are
  checked on what the windows met (optical per window, SAR over the whole scene), and a
  mismatch raises :class:`~urbankit.data.contract.InputContractError` naming the site or file.
  Per-image normalisation takes its statistics over the whole scene in a first pass.
- **Output**: probabilities quantised to ``uint8`` (``round(p * 254)``, no-data 255) or
  ``uint16`` (``round(p * 65534)``, no-data 65535), the scale stored as the band's GDAL scale and
  in the tags, or classes (``p > threshold`` as 1, else 0; no-data 255). A pixel is no-data where
  one of the model's inputs has no finite value in any channel. The file keeps the scene's CRS
  and transform and carries provenance tags (``URBANKIT_*``: model, weights and checkpoint
  sha256, input contract, profile, prediction settings, source).
- **Nothing half-written**: finished blocks go (atomically) to a ``.<name>.partial`` folder
  beside the output; at the end they are assembled into a tiled GeoTIFF under a temporary name,
  converted to a COG (GDAL's COG driver: tiles of 512 px, DEFLATE, overviews) and renamed into
  place. An interrupted run resumes from the finished blocks when called again with the same
  model, input and settings.
- **Engines**: the windows and blends form one dask task graph (dask.delayed: one task per
  window, one blend task per block, reading its own and its neighbours' predictions).
  ``scheduler=None`` runs it on dask's threaded scheduler in this process;
  ``scheduler="local"`` on a new ``distributed.LocalCluster``, an address (``"tcp://..."``) or a
  ``distributed.Client`` on that cluster. On a cluster the model and the scene reader are
  broadcast to every worker once (``Client.scatter(..., broadcast=True)``); the finished blocks
  come back to this process, which writes them. Workers must be able to open the input paths.

Why not ``dask.array.map_overlap``: it hands every block its neighbours' *inputs*, so each
input chunk is read by 9 tasks and held until all 9 ran, and blending needs the neighbours'
*predictions*, which map_overlap cannot share. The graph here reads each window once and shares
each prediction with the blocks it overlaps.

The output of one scene, model and settings is the same, byte for byte, on every engine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, DataFormatError

__all__ = [
    "GeoTiffScene", "DatasetScene", "open_scene", "predict_to_cog", "validate_cog", "read_prediction",
    "plan_blocks", "QUANTISATION",
]

#: dtype -> (largest probability code, no-data code): ``code = round(p * max)``.
QUANTISATION = {"uint8": (254, 255), "uint16": (65534, 65535)}
#: Tile size of the written files (px).
COG_BLOCKSIZE = 512
#: GDAL block cache while assembling and converting (MB): keeps the conversion's memory flat.
GDAL_CACHE_MB = 256
_MODALITY_DIM = {"optical": "band", "sar": "polarisation"}


# ----------------------------------------------------------------------------- scene readers
class DatasetScene:
    """Window reader of a scene (``xarray.Dataset``) or of a zarr store / netCDF file holding one.

    A path is opened lazily (``chunks=None``: a window read touches only the chunks it overlaps)
    in every process that reads, so a reader made from a path is cheap to send to cluster
    workers. Store large scenes in chunks of 256-512 px: a window reads every chunk it touches
    whole.

    Args:
        scene: the Dataset, or the path of a ``.zarr`` store or a netCDF file.
        contract: the model's input contract (channel selection and order).
    """

    def __init__(self, scene, contract):
        self.path = None if hasattr(scene, "data_vars") else str(scene)
        self._ds = _grid_mapping_as_coord(scene) if self.path is None else None
        self.contract = contract
        ds = self.dataset
        from .data.raster import grid_of

        self.site = str(ds.attrs.get("site", Path(self.path).name if self.path else "scene"))
        contract.check(ds, values=False)  # channels and source SAR range; values by window
        ref = ds[next(m for m in ("optical", "sar") if contract.channels(m) is not None)]
        self.grid = grid_of(ref)
        self.n_dates = {m: (int(ds[m].sizes["time"]) if "time" in ds[m].dims else 1)
                        for m in ("optical", "sar") if contract.channels(m) is not None}

    @property
    def dataset(self):
        """The Dataset (opened on first use in this process when made from a path)."""
        if self._ds is None:
            self._ds = _grid_mapping_as_coord(_open_dataset(Path(self.path)))
        return self._ds

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_ds"] = None  # reopened by the worker
        return state

    def label(self, modality: str, t: int) -> str:
        """What an error about ``modality`` at date ``t`` names: the site (and the store)."""
        return f"{self.site} ({self.path})" if self.path else self.site

    def read(self, modality: str, times: Sequence[int], ys: slice, xs: slice) -> np.ndarray:
        """Scene values ``(len(times), C, h, w)`` float32 of a window, channels in contract order."""
        da = self.contract.select(self.dataset, modality)
        return np.asarray(da.isel(time=list(times), y=ys, x=xs).values, dtype=np.float32)

    def fingerprint(self) -> str | None:
        """What identifies the input for resuming (file stats, or dask's token); None: unknown.

        Never reads the pixels of a lazily opened scene (xarray would load it to hash it).
        """
        from dask.base import tokenize

        ds = self.dataset
        extent = tokenize(self.grid.shape, list(self.grid.transform)[:6], str(self.grid.crs))
        arrays = [v.variable for v in ds.data_vars.values()]
        if all(v.chunks is not None for v in arrays):  # dask: the graph's token, no compute
            return tokenize(*[v.data for v in arrays]) + extent
        source = self.path or ds.encoding.get("source")
        if source:
            return _stat_fingerprint([source]) + extent
        if all(getattr(v, "_in_memory", False) for v in arrays):  # numpy in memory: hash the values
            return tokenize(*[v.values for v in arrays]) + extent
        return None

    def describe(self) -> str:
        """One line for the provenance tags."""
        return f"scene {self.site}" + (f" ({Path(self.path).name})" if self.path else "")


def _grid_mapping_as_coord(ds):
    """The scene with its CRS variable as a coordinate, where rioxarray looks for it.

    A store opened without ``decode_coords="all"``, or written with an encoding that dropped
    ``grid_mapping``, brings ``spatial_ref`` back as a data variable.
    """
    names = {str(v.attrs.get("grid_mapping", "")) for v in ds.data_vars.values()} | {"spatial_ref"}
    names &= set(ds.data_vars)
    return ds.set_coords(sorted(names)) if names else ds


def _open_dataset(path: Path):
    import rioxarray  # noqa: F401  (registers .rio; reads spatial_ref)
    import xarray as xr

    if not path.exists():
        raise DataFormatError(f"{path}: no such scene (a .zarr store or a netCDF file)")
    try:
        if path.is_dir() or path.suffix == ".zarr":  # decode_coords="all": spatial_ref back as a coordinate
            return xr.open_zarr(path, chunks=None, decode_coords="all")
        return xr.open_dataset(path, chunks=None, decode_coords="all")
    except Exception as exc:  # noqa: BLE001  (zarr/netCDF raise many types: one clear error)
        raise DataFormatError(f"{path}: cannot be opened as a scene ({type(exc).__name__}: {exc})") from None


class GeoTiffScene:
    """Window reader of GeoTIFFs: one file per modality and date, all on one grid.

    A file's bands are matched to the contract's channels by their descriptions (``B02``,
    ``VV``...) when it has them, else by position (then the band count must equal the
    contract's). File no-data values become NaN; ``scale`` multiplies a modality's values
    (e.g. ``{"optical": 1e-4}`` for Sentinel-2 digital numbers).

    Args:
        files: ``{"optical": [date1.tif, date2.tif], "sar": [...]}`` (one or two dates each).
        contract: the model's input contract.
        scale: optional factor per modality.

    Raises:
        InputContractError: naming the file when its bands do not give the contract's channels.
        DataFormatError: naming the files when they are not on one grid or cannot be read.
    """

    def __init__(self, files: Mapping[str, Sequence[str | os.PathLike]], contract,
                 scale: Mapping[str, float] | None = None):
        from .data.contract import InputContractError
        from .data.raster import read_grid, require_same_grid

        self.contract = contract
        self.scale = dict(scale or {})
        self.files = {m: [str(f) for f in ([fs] if isinstance(fs, (str, os.PathLike)) else fs)]
                      for m, fs in files.items() if fs}
        unknown = sorted(set(self.files) - set(_MODALITY_DIM))
        if unknown:
            raise ConfigError(f"GeoTiffScene: modalities must be 'optical' or 'sar', got {unknown}")
        for m in ("optical", "sar"):
            if contract.channels(m) is not None and m not in self.files:
                raise InputContractError("GeoTIFF input", m, f"is missing; the model reads {m} "
                                         f"{list(contract.channels(m))} (give its GeoTIFF(s))")
        self.files = {m: fs for m, fs in self.files.items() if contract.channels(m) is not None}
        self.bands: dict[str, list[list[int]]] = {}
        self.grid, first = None, None
        for m, paths in self.files.items():
            for path in paths:
                grid, info = read_grid(path)
                if self.grid is None:
                    self.grid, first = grid, path
                require_same_grid(first, self.grid, path, grid)
                self.bands.setdefault(m, []).append(self._band_indexes(path, m, info))
        self.site = Path(first).stem
        self.n_dates = {m: len(fs) for m, fs in self.files.items()}

    def _band_indexes(self, path: str, modality: str, info: dict) -> list[int]:
        from .data.contract import InputContractError

        want = list(self.contract.channels(modality))
        names = [str(d) if d else "" for d in info["descriptions"]]
        if any(names):
            missing = [w for w in want if w not in names]
            if missing:
                raise InputContractError(path, modality, f"has bands {names} but the model was trained on "
                                         f"{want} (missing {missing})")
            return [names.index(w) + 1 for w in want]
        if info["count"] != len(want):
            raise InputContractError(path, modality, f"has {info['count']} unnamed band(s); the model reads "
                                     f"{len(want)} ({want}): give a file with these bands in this order, "
                                     "or name its bands (GDAL band descriptions)")
        return list(range(1, len(want) + 1))

    def label(self, modality: str, t: int) -> str:
        """The file of ``modality`` at date ``t`` (named in errors)."""
        return self.files[modality][t]

    def read(self, modality: str, times: Sequence[int], ys: slice, xs: slice) -> np.ndarray:
        """Values ``(len(times), C, h, w)`` float32 of a window (no-data -> NaN, then ``scale``)."""
        import rasterio
        from rasterio.windows import Window

        window = Window.from_slices(ys, xs)
        out = []
        for t in times:
            path = self.files[modality][t]
            try:
                with rasterio.open(path) as src:  # one handle per read: thread-safe, cheap
                    arr = src.read(self.bands[modality][t], window=window, masked=True)
            except Exception as exc:  # noqa: BLE001
                raise DataFormatError(f"{path}: cannot read window {window} ({type(exc).__name__}: {exc})") from None
            arr = arr.astype(np.float32).filled(np.nan)
            if modality in self.scale:
                arr *= np.float32(self.scale[modality])
            out.append(arr)
        return np.stack(out)

    def fingerprint(self) -> str | None:
        """File stats of every input (for resuming)."""
        return _stat_fingerprint([f for fs in self.files.values() for f in fs]) + json.dumps(self.scale)

    def describe(self) -> str:
        """One line for the provenance tags."""
        return "; ".join(f"{m}: {', '.join(Path(f).name for f in fs)}" for m, fs in self.files.items())


def _stat_fingerprint(paths: Sequence[str]) -> str:
    parts = []
    for p in paths:
        st = Path(p).stat()
        parts.append(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def open_scene(inputs, contract, *, scale: Mapping[str, float] | None = None):
    """A window reader for ``inputs``: a Dataset, a zarr/netCDF path, or ``{modality: GeoTIFFs}``."""
    if isinstance(inputs, (DatasetScene, GeoTiffScene)):
        return inputs
    if isinstance(inputs, Mapping) and not hasattr(inputs, "data_vars"):
        return GeoTiffScene(inputs, contract, scale=scale)
    if scale:
        raise ConfigError("open_scene: scale= applies to GeoTIFF inputs only (a scene is in schema units)")
    if isinstance(inputs, (str, os.PathLike)) and Path(inputs).suffix.lower() in (".tif", ".tiff"):
        raise ConfigError(f"{inputs}: give GeoTIFFs as {{'optical': [...], 'sar': [...]}} (one file per date)")
    return DatasetScene(inputs, contract)


def _default_contract(model, inputs):
    """The model's contract, or (no contract) the scene's channels as stored, no normalisation."""
    from .data.contract import InputContract, scene_sar_db_range
    from .data.normalize import DEFAULT_DB_RANGE

    contract = getattr(model, "input_contract", None)
    if contract is not None:
        return contract
    keys = getattr(model, "input_keys", ()) or ()
    mods = {k.rpartition("_")[0] for k in keys}
    if isinstance(inputs, (str, os.PathLike)) or hasattr(inputs, "data_vars"):
        ds = inputs if hasattr(inputs, "data_vars") else _open_dataset(Path(inputs))
        names = {m: tuple(str(v) for v in ds[m][_MODALITY_DIM[m]].values)
                 for m in ("optical", "sar") if m in mods and m in ds.data_vars}
        # the rule of inference.scene_inputs without a contract: the scene's recorded SAR range
        return InputContract(optical_bands=names.get("optical"), sar_pols=names.get("sar"),
                             sar_db_range=scene_sar_db_range(ds) or DEFAULT_DB_RANGE)
    raise ConfigError("predict_to_cog: the model has no input_contract (load it with "
                      "urbankit.train.load_checkpoint, or set model.input_contract): GeoTIFF bands "
                      "cannot be matched to its channels without one")


# ----------------------------------------------------------------------------- blocks and weights
@dataclass(frozen=True)
class Block:
    """One output block: its core ``[y0, y1) x [x0, x1)`` and its window (core + halo, clipped)."""

    row: int
    col: int
    y0: int
    y1: int
    x0: int
    x1: int
    wy0: int
    wy1: int
    wx0: int
    wx1: int

    @property
    def name(self) -> str:
        """File stem of the finished block."""
        return f"r{self.row:04d}c{self.col:04d}"


def _edges(length: int, chunk: int, min_last: int) -> list[int]:
    edges = list(range(0, length, chunk)) + [length]
    if len(edges) > 2 and edges[-1] - edges[-2] < min_last:
        del edges[-2]  # a sliver at the end joins the block before it
    return edges


def plan_blocks(shape: tuple[int, int], chunk: int, overlap: int) -> list[list[Block]]:
    """The grid of output blocks of a ``shape`` scene: rows of :class:`Block`.

    Cores are ``chunk`` px (the last row/column takes the remainder; one thinner than
    ``max(overlap, chunk // 4)`` joins its neighbour); windows add ``overlap // 2`` px on every
    side that has a neighbour.
    """
    if chunk < 1 or overlap < 0 or overlap % 2:
        raise ConfigError(f"chunk must be >= 1 and overlap an even number >= 0, got {chunk}, {overlap}")
    if overlap > chunk:
        raise ConfigError(f"overlap ({overlap} px) must not exceed chunk ({chunk} px)")
    h = overlap // 2
    ey = _edges(shape[0], chunk, max(overlap, chunk // 4))
    ex = _edges(shape[1], chunk, max(overlap, chunk // 4))
    rows = []
    for r, (y0, y1) in enumerate(zip(ey[:-1], ey[1:], strict=True)):
        row = []
        for c, (x0, x1) in enumerate(zip(ex[:-1], ex[1:], strict=True)):
            row.append(Block(r, c, y0, y1, x0, x1, max(0, y0 - h), min(shape[0], y1 + h),
                             max(0, x0 - h), min(shape[1], x1 + h)))
        rows.append(row)
    return rows


def _ramp_1d(n: int, lo_edge: bool, hi_edge: bool, h: int) -> np.ndarray:
    """Weights along one axis of a window of ``n`` px (float32).

    A raised-cosine ramp over the ``2h`` px shared with a neighbour (rising at the low side,
    falling at the high side: the two windows' weights sum to one), 1 elsewhere.
    """
    w = np.ones(n, np.float32)
    if h == 0:
        return w
    t = (np.arange(2 * h, dtype=np.float64) + 0.5) / (2 * h)
    rise = np.sin(0.5 * math.pi * t).astype(np.float32) ** 2
    if lo_edge:
        w[:2 * h] = rise
    if hi_edge:
        w[n - 2 * h:] *= np.float32(1.0) - rise  # the neighbour's rise: the two sum to one
    return w


def _window_weights(block: Block, n_rows: int, n_cols: int, h: int) -> np.ndarray:
    wy = _ramp_1d(block.wy1 - block.wy0, block.row > 0, block.row < n_rows - 1, h)
    wx = _ramp_1d(block.wx1 - block.wx0, block.col > 0, block.col < n_cols - 1, h)
    return wy[:, None] * wx[None, :]


# ----------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class _Settings:
    keys: tuple[str, ...]
    output_key: str
    dates: tuple[int, int]
    multiple: int
    pad_mode: str
    device: str
    amp: Any
    channels_last: bool
    overlap: int
    n_rows: int
    n_cols: int
    kind: str
    dtype: str
    threshold: float

    def times(self, modality: str) -> list[int]:
        """Sorted scene time indexes that the model reads of ``modality``."""
        from .inference import input_key_date

        return sorted({t for k in self.keys if (p := input_key_date(k, self.dates)) and p[0] == modality
                       for t in [p[1]]})


def _finite_range(arr: np.ndarray) -> tuple[float, float, int]:
    """(min, max, count) of the finite values of ``arr`` (inf, -inf, 0 when there are none)."""
    lo, hi = float(arr.min()), float(arr.max())
    if np.isfinite(lo) and np.isfinite(hi):  # no NaN/inf: two passes, no mask
        return lo, hi, int(arr.size)
    ok = np.isfinite(arr)
    n = int(ok.sum())
    if n == 0:
        return math.inf, -math.inf, 0
    return float(arr.min(where=ok, initial=math.inf)), float(arr.max(where=ok, initial=-math.inf)), n


def _read_window(source, settings: _Settings, ys: slice, xs: slice) -> dict[str, np.ndarray]:
    """``{modality: (T_model, C, h, w)}`` scene values of the dates the model reads."""
    return {m: source.read(m, settings.times(m), ys, xs) for m in source.n_dates}


def _stats_task(source, settings: _Settings, block: Block) -> dict[str, np.ndarray]:
    """Per (date, channel) finite count, sum and sum of squares of a core block (model units)."""
    raw = _read_window(source, settings, slice(block.y0, block.y1), slice(block.x0, block.x1))
    out = {}
    for m, arr in raw.items():
        vals = source.contract.scale(arr, m).astype(np.float64)
        ok = np.isfinite(vals)
        vals = np.where(ok, vals, 0.0)
        out[m] = np.stack([ok.sum((-2, -1)), vals.sum((-2, -1)), (vals * vals).sum((-2, -1))])
    return out


def _image_stats(*parts: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Whole-image ``(mean, std)`` per modality, each (T, C, 1, 1), from the blocks' sums."""
    out = {}
    for m in parts[0]:
        count, total, squares = np.sum([p[m] for p in parts], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        out[m] = (mean[..., None, None], std[..., None, None])
    return out


def _window_task(model, source, settings: _Settings, block: Block, image_stats):
    """Predict one window: ``(weighted probabilities, core no-data mask, value ranges)``."""
    import torch

    from .inference import input_key_date, predict_padded
    from .profiles import amp_settings, resolve_device

    raw = _read_window(source, settings, slice(block.wy0, block.wy1), slice(block.wx0, block.wx1))
    ranges = {}
    for m, arr in raw.items():
        for i, t in enumerate(settings.times(m)):
            lo, hi, n = _finite_range(arr[i])
            ranges[(m, t)] = (lo, hi, n)
            if m == "optical" and n:  # holds for any part of a scene: fail at once
                source.contract.check_value_range(lo, hi, m, source.label(m, t))
    tensors, missing = {}, None
    for key in settings.keys:
        m, t = input_key_date(key, settings.dates)
        values = raw[m][settings.times(m).index(t)]
        if ranges[(m, t)][2] < values.size:  # some value is not finite
            gone = ~np.isfinite(values).any(axis=0)
            missing = gone if missing is None else missing | gone
        stats = None
        if image_stats is not None and m in image_stats:
            stats = tuple(s[t] for s in image_stats[m])
        tensors[key] = torch.from_numpy(source.contract.prepare(values, m, image_stats=stats))[None]
    device = resolve_device(settings.device)
    amp_on, amp_dtype, _ = amp_settings(settings.amp, device)
    with torch.no_grad():
        model.to(device)
        probs = predict_padded(model, tensors, settings.multiple, settings.pad_mode, device, amp_on, amp_dtype,
                               [settings.output_key], settings.channels_last)[settings.output_key]
    if probs.shape[1] != 1:
        raise ConfigError(f"predict_to_cog: output {settings.output_key!r} has {probs.shape[1]} channels; "
                          "one probability per pixel is written")
    weighted = probs[0, 0].numpy() * _window_weights(block, settings.n_rows, settings.n_cols,
                                                     settings.overlap // 2)
    if missing is None:
        missing = np.zeros(weighted.shape, bool)
    core = missing[block.y0 - block.wy0:block.y1 - block.wy0, block.x0 - block.wx0:block.x1 - block.wx0]
    return weighted, core, ranges


def _blend_task(settings: _Settings, block: Block, own, neighbours: Sequence[tuple[Block, np.ndarray]]):
    """One output block: the sum of the weighted window probabilities over its core, quantised."""
    _, missing, ranges = own
    prob = np.zeros((block.y1 - block.y0, block.x1 - block.x0), np.float32)
    for nb, weighted in neighbours:
        y0, y1 = max(block.y0, nb.wy0), min(block.y1, nb.wy1)
        x0, x1 = max(block.x0, nb.wx0), min(block.x1, nb.wx1)
        if y0 < y1 and x0 < x1:
            prob[y0 - block.y0:y1 - block.y0, x0 - block.x0:x1 - block.x0] += \
                weighted[y0 - nb.wy0:y1 - nb.wy0, x0 - nb.wx0:x1 - nb.wx0]
    top, nodata = QUANTISATION[settings.dtype] if settings.kind == "probability" else (None, 255)
    if settings.kind == "class":
        out = (prob > settings.threshold).astype(np.uint8)
    else:
        out = np.rint(np.clip(prob, 0.0, 1.0) * top).astype(settings.dtype)
    out[missing] = nodata
    return out, ranges


_READY_LOCK = threading.Lock()


def _ready_model(model, settings: _Settings):
    """Put the model on its device (and in channels_last) once per process; returns the device."""
    import torch

    from .profiles import resolve_device

    device = resolve_device(settings.device)
    state = (str(device), settings.channels_last)
    with _READY_LOCK:
        if getattr(model, "_urbankit_ready", None) != state:
            model.eval()
            model.to(device)
            if settings.channels_last:
                model.to(memory_format=torch.channels_last)
            model._urbankit_ready = state
    return device


# ----------------------------------------------------------------------------- the task graph
def _neighbours(plan: list[list[Block]], block: Block) -> list[Block]:
    return [plan[r][c] for r in range(max(0, block.row - 1), min(len(plan), block.row + 2))
            for c in range(max(0, block.col - 1), min(len(plan[0]), block.col + 2))]


def _build_graph(model_ref, source_ref, settings: _Settings, plan, todo: Sequence[Block], per_image: bool,
                 token: str) -> dict[Block, Any]:
    """``{block: Delayed (codes, ranges)}`` for the blocks in ``todo`` (windows shared between blocks)."""
    import dask

    stats = None
    if per_image:
        parts = [dask.delayed(_stats_task)(source_ref, settings, b, dask_key_name=f"stats-{token}-{b.name}")
                 for row in plan for b in row]
        stats = dask.delayed(_image_stats)(*parts, dask_key_name=f"image-stats-{token}")
    windows: dict[Block, Any] = {}
    for block in todo:
        for nb in _neighbours(plan, block):
            if nb not in windows:
                windows[nb] = dask.delayed(_window_task, nout=3)(
                    model_ref, source_ref, settings, nb, stats, dask_key_name=f"window-{token}-{nb.name}")
    return {block: dask.delayed(_blend_task)(
        settings, block, windows[block], [(nb, windows[nb][0]) for nb in _neighbours(plan, block)],
        dask_key_name=f"blend-{token}-{block.name}") for block in todo}


def _store_task(store, block: Block, result, lock, bar) -> None:
    store.put(block, *result)
    with lock:
        if bar is not None:
            bar.update(1)


def _run_local(graph: dict[Block, Any], store, bar, workers: int) -> None:
    import dask

    lock = threading.Lock()
    sinks = [dask.delayed(_store_task)(store, b, task, lock, bar, dask_key_name=f"store-{b.name}")
             for b, task in graph.items()]
    dask.compute(*sinks, scheduler="threads", num_workers=workers)


def _client(scheduler, n_workers: int):
    """``(client, owned objects to close)`` for ``"local"``/True, an address or a Client."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a runtime requirement, but say what to do
        raise ConfigError("scheduler= needs the 'distributed' package: pip install distributed") from None
    if isinstance(scheduler, Client):
        return scheduler, []
    if scheduler is True or scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, str):
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler!r} ({exc})") from None
        return client, [client]
    raise ConfigError(f"scheduler must be None, 'local', an address or a distributed.Client, got {scheduler!r}")


def _run_distributed(scheduler, n_workers: int, model, source, build, store, bar) -> None:
    from distributed import as_completed

    client, owned = _client(scheduler, n_workers)
    try:
        # the model and the reader travel to every worker once; tasks refer to them by key
        model_ref = client.scatter(model, broadcast=True, hash=False)
        source_ref = client.scatter(source, broadcast=True, hash=False)
        graph = build(model_ref, source_ref)
        futures = client.compute(list(graph.values()))
        blocks = dict(zip((f.key for f in futures), graph, strict=True))
        for future in as_completed(futures):
            store.put(blocks[future.key], *future.result())  # written here: workers need no output path
            future.release()
            if bar is not None:
                bar.update(1)
    finally:
        for obj in owned:
            obj.close()


# ----------------------------------------------------------------------------- finished blocks on disk
class _PartialStore:
    """Finished blocks as ``.npz`` files in ``.<output name>.partial/`` (atomic), with a manifest."""

    def __init__(self, out: Path, fingerprint: str | None, resume: bool):
        self.dir = out.with_name(f".{out.name}.partial")
        manifest = self.dir / "manifest.json"
        if self.dir.exists():
            try:
                same = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint") == fingerprint
            except (OSError, ValueError):
                same = False
            if not (resume and fingerprint is not None and same):
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not manifest.is_file():
            tmp = self.dir / f".manifest.{uuid.uuid4().hex[:8]}.tmp"
            tmp.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
            os.replace(tmp, manifest)

    def done(self) -> set[str]:
        """Names of the blocks already on disk."""
        return {p.name[:-4] for p in self.dir.glob("r*c*.npz")}

    def put(self, block: Block, codes: np.ndarray, ranges: Mapping) -> None:
        """Store one finished block (temporary file + rename)."""
        tmp = self.dir / f".{block.name}.{uuid.uuid4().hex[:8]}.tmp.npz"
        text = json.dumps([[m, int(t), *v] for (m, t), v in ranges.items()])
        with open(tmp, "wb") as fh:
            np.savez(fh, codes=codes, ranges=np.array(text))
        os.replace(tmp, self.dir / f"{block.name}.npz")

    def get(self, block: Block) -> tuple[np.ndarray, list]:
        """``(codes, ranges)`` of a stored block."""
        path = self.dir / f"{block.name}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                return z["codes"], json.loads(str(z["ranges"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DataFormatError(f"{path}: a finished block cannot be read ({exc}); delete {self.dir} "
                                  "to start again") from None

    def remove(self) -> None:
        """Delete the folder."""
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- checks, tags, files
def _check_ranges(store: _PartialStore, plan, source) -> None:
    """The contract's value rules on the range every input met over the whole scene."""
    from .data.contract import InputContractError

    seen: dict[tuple[str, int], list[float]] = {}
    for row in plan:
        for block in row:
            for m, t, lo, hi, n in store.get(block)[1]:
                old = seen.setdefault((m, t), [math.inf, -math.inf, 0])
                seen[(m, t)] = [min(old[0], lo), max(old[1], hi), old[2] + n]
    for (m, t), (lo, hi, n) in seen.items():
        if n == 0:
            raise InputContractError(source.label(m, t), m, "has no finite value")
        source.contract.check_value_range(lo, hi, m, source.label(m, t))


def _weights_sha256(model) -> str:
    import torch

    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _profile_line(profile) -> str:
    if profile is None:
        return ""
    if isinstance(profile, str):
        from .profiles import get_profile

        profile = get_profile(profile)
    return profile.describe()


def _tags(model, source, settings: _Settings, checkpoint, profile, weights: str) -> dict[str, str]:
    from . import __version__

    contract = source.contract
    top = QUANTISATION[settings.dtype][0] if settings.kind == "probability" else None
    what = (f"{settings.output_key} probability, code = round(p * {top}), p = code * URBANKIT_SCALE"
            if top else f"{settings.output_key} class (probability > {settings.threshold:g}) as 1, else 0")
    predict = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("n_rows", "n_cols")}
    tags = {
        "URBANKIT_VERSION": __version__,
        "URBANKIT_OUTPUT": what,
        "URBANKIT_SCALE": repr(1.0 / top) if top else "1",
        "URBANKIT_MODEL": str(getattr(model, "name", None) or type(model).__name__),
        "URBANKIT_WEIGHTS_SHA256": weights,
        "URBANKIT_INPUT_CONTRACT": json.dumps(contract.to_dict(), sort_keys=True),
        "URBANKIT_INPUT_CONTRACT_SUMMARY": contract.describe(),
        "URBANKIT_PREDICT": json.dumps(predict, sort_keys=True, default=str),
        "URBANKIT_PROFILE": _profile_line(profile),
        "URBANKIT_SOURCE": source.describe(),
    }
    if checkpoint is not None:
        from .data.cache import file_digest

        tags["URBANKIT_CHECKPOINT"] = Path(checkpoint).name
        tags["URBANKIT_CHECKPOINT_SHA256"] = file_digest(checkpoint)
    return tags


def _assemble(store: _PartialStore, plan, grid, out: Path, settings: _Settings, tags: dict[str, str]) -> None:
    """Finished blocks -> a tiled GeoTIFF (temporary) -> a COG (temporary) -> ``out`` (rename)."""
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    nodata = QUANTISATION[settings.dtype][1] if settings.kind == "probability" else 255
    dtype = settings.dtype if settings.kind == "probability" else "uint8"
    stem = f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tiled, cog = out.with_name(stem + ".tiled.tif"), out.with_name(stem + ".cog.tif")
    profile = {"driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0], "count": 1, "dtype": dtype,
               "crs": grid.crs, "transform": grid.transform, "nodata": nodata, "tiled": True,
               "blockxsize": COG_BLOCKSIZE, "blockysize": COG_BLOCKSIZE, "compress": "deflate",
               "BIGTIFF": "IF_SAFER"}
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(tiled, "w", **profile) as dst:
                    for row in plan:
                        for b in row:
                            dst.write(store.get(b)[0], 1, window=Window(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0))
                    dst.update_tags(**tags)
                    dst.set_band_description(1, tags["URBANKIT_OUTPUT"].split(",")[0])
                    if settings.kind == "probability":
                        dst.scales, dst.offsets = (float(tags["URBANKIT_SCALE"]),), (0.0,)
                rasterio.shutil.copy(tiled, cog, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=COG_BLOCKSIZE,
                                     OVERVIEW_RESAMPLING="AVERAGE" if settings.kind == "probability" else "NEAREST",
                                     BIGTIFF="IF_SAFER")
        os.replace(cog, out)
    finally:
        for tmp in (tiled, cog):
            tmp.unlink(missing_ok=True)


def validate_cog(path: str | os.PathLike) -> list[str]:
    """Problems that keep ``path`` from being a Cloud-Optimised GeoTIFF (an empty list: none).

    Checked with rasterio/GDAL: GDAL reports ``LAYOUT=COG`` (the COG driver's header), the
    image is tiled, a raster larger than one tile has overviews, the overviews are tiled, and
    the smallest overview's data lies before the full-resolution data (readers fetch the
    coarse view first).
    """
    import rasterio

    path = Path(path)
    problems = []
    with rasterio.open(path) as src:
        if src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
            problems.append("GDAL does not report LAYOUT=COG (not written by the COG driver, or modified since)")
        bh, bw = src.block_shapes[0]
        if (bw >= src.width and src.width > COG_BLOCKSIZE) or bh == 1:
            problems.append(f"not tiled (blocks {bh}x{bw})")
        levels = src.overviews(1)
        if max(src.width, src.height) > bw and not levels:
            problems.append("no overviews")
        first = src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
    if levels:
        with rasterio.open(path, overview_level=len(levels) - 1) as ovr:
            if ovr.block_shapes[0][0] == 1:
                problems.append("overviews are not tiled")
            ovr_first = ovr.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
        if first and ovr_first and int(ovr_first) > int(first):
            problems.append("the overview data follows the full-resolution data")
    return problems


def read_prediction(path: str | os.PathLike, *, overview_level: int | None = None, chunks=None):
    """A written map as an ``xarray.DataArray`` (y, x): probabilities 0..1 (or classes), NaN at no-data.

    Args:
        path: a file written by :func:`predict_to_cog`.
        overview_level: read a coarser overview (0 = the first, half the resolution), e.g. to map
            a whole tile.
        chunks: passed to ``rioxarray.open_rasterio`` (e.g. ``"auto"`` for a lazy dask array).
    """
    import rioxarray

    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    da = rioxarray.open_rasterio(path, mask_and_scale=True, chunks=chunks, **kwargs)
    return da.squeeze("band", drop=True)


# ----------------------------------------------------------------------------- the call
def _output_key(model, output_key: str | None) -> str:
    keys = tuple(getattr(model, "output_keys", ()) or ())
    if output_key is not None:
        if keys and output_key not in keys:
            raise ConfigError(f"predict_to_cog: the model has no output {output_key!r}; it returns {list(keys)}")
        return output_key
    if len(keys) == 1:
        return keys[0]
    if "change" in keys or not keys:
        return "change"
    raise ConfigError(f"predict_to_cog: the model returns {list(keys)}; choose one with output_key=")


def _check_dates(source, keys: Sequence[str], dates: tuple[int, int]) -> None:
    from .inference import input_key_date

    used: dict[str, set[int]] = {}
    for key in keys:
        parts = input_key_date(key, dates)
        if parts is None:
            raise ConfigError(f"predict_to_cog: the model reads {key!r}, which is not an optical_/sar_ t1/t2 input")
        m, t = parts
        n = source.n_dates.get(m, 0)
        if not -n <= t < n:
            raise ConfigError(f"predict_to_cog: {key!r} is date index {t}, but {source.label(m, 0)} has "
                              f"{n} date(s) of {m}")
        used.setdefault(m, set()).add(t % n)
    for m, ts in used.items():
        if len(ts) < sum(1 for k in keys if k.startswith(m + "_")):
            raise ConfigError(f"predict_to_cog: the model reads two dates of {m}, but dates={dates} names one "
                              f"date of the {source.n_dates[m]} the input has (give two dates)")


def predict_to_cog(model, inputs, path: str | os.PathLike, *, output_key: str | None = None,
                   output: str = "probability", dtype: str = "uint8", threshold: float = 0.5,
                   chunk: int = 1024, overlap: int = 64, dates: tuple[int, int] = (0, -1),
                   multiple: int | None = None, pad_mode: str = "reflect", device: str = "auto",
                   amp: bool | str = False, channels_last: bool = False, scheduler=None, workers: int = 1,
                   n_workers: int = 2, scale: Mapping[str, float] | None = None, checkpoint=None,
                   profile=None, resume: bool = True, progress: bool = True) -> Path:
    """Predict a whole scene by windows and write it as a Cloud-Optimised GeoTIFF (module docstring).

    Args:
        model: a trained model (``input_keys``, ``output_keys``; its ``input_contract`` converts
            the inputs; without one the scene's channels are used as stored, unnormalised).
        inputs: a scene (``xarray.Dataset``), the path of a zarr store / netCDF file, or
            ``{"optical": [t1.tif, (t2.tif)], "sar": [...]}`` GeoTIFFs on one grid.
        path: the output ``.tif``; replaced when it exists.
        output_key: the model output to write (default: its only output, else ``change``).
        output: ``"probability"`` or ``"class"``.
        dtype: ``uint8`` or ``uint16``: the code of the probabilities (:data:`QUANTISATION`).
        threshold: ``output="class"`` writes ``probability > threshold`` as 1, else 0 (uint8).
        chunk: core block size (px); windows are ``chunk + overlap`` px. A multiple of 512 keeps
            the file's tiles whole.
        overlap: px shared by neighbouring windows (even), blended with raised-cosine weights.
        dates: the time indexes read as ``_t1`` and ``_t2``.
        multiple: windows are padded to this multiple (default ``model.pad_multiple`` or 32) and
            cropped back, as :func:`urbankit.inference.predict` does.
        pad_mode: ``reflect``, ``replicate`` or ``constant`` padding.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps`` (resolved on each worker).
        amp: autocast as in :func:`urbankit.inference.predict` (CUDA: ``True``/``"bf16"``/``"fp16"``;
            CPU: ``"bf16"``).
        channels_last: run the forward passes in channels-last memory format.
        scheduler: None (dask threads in this process), ``"local"`` (a new
            ``distributed.LocalCluster``), a scheduler address or a ``distributed.Client``.
        workers: dask threads when ``scheduler`` is None.
        n_workers: single-thread worker processes of a new LocalCluster.
        scale: GeoTIFF inputs only: a factor per modality (``{"optical": 1e-4}`` for S2 DN).
        checkpoint: the checkpoint file the weights came from (named and hashed in the tags).
        profile: a :class:`~urbankit.profiles.Profile` or its name (described in the tags).
        resume: continue from the finished blocks of an interrupted run with the same model,
            input and settings (else start again).
        progress: a tqdm bar over the blocks.

    Returns:
        The path of the written COG.

    Raises:
        InputContractError: the input does not fit the model's contract (names the site or file).
        ConfigError: invalid settings; DataFormatError: unreadable inputs.
    """
    out = Path(path)
    source = open_scene(inputs, _default_contract(model, inputs), scale=scale)
    settings, plan = _make_settings(model, source, output_key=output_key, output=output, dtype=dtype,
                                    threshold=threshold, chunk=chunk, overlap=overlap, dates=dates,
                                    multiple=multiple, pad_mode=pad_mode, device=device, amp=amp,
                                    channels_last=channels_last)
    if workers < 1 or n_workers < 1:
        raise ConfigError(f"predict_to_cog: workers and n_workers must be >= 1, got {workers}, {n_workers}")
    weights = _weights_sha256(model)
    tags = _tags(model, source, settings, checkpoint, profile, weights)
    identity = source.fingerprint()
    fingerprint = None if identity is None else hashlib.sha256(json.dumps(
        [identity, weights, tags, list(source.grid.transform)[:6], str(source.grid.crs)],
        default=str).encode()).hexdigest()
    out.parent.mkdir(parents=True, exist_ok=True)
    store = _PartialStore(out, fingerprint, resume)
    _predict_blocks(model, source, settings, plan, store, scheduler=scheduler, workers=workers,
                    n_workers=n_workers, progress=progress, name=out.name)
    _assemble(store, plan, source.grid, out, settings, tags)
    store.remove()
    return out


def _make_settings(model, source, *, output_key, output, dtype, threshold, chunk, overlap, dates, multiple,
                   pad_mode, device, amp, channels_last) -> tuple[_Settings, list[list[Block]]]:
    """The checked settings of a call and its block plan."""
    from .inference import DEFAULT_MULTIPLE

    if output not in ("probability", "class") or dtype not in QUANTISATION:
        raise ConfigError(f"output must be 'probability' or 'class' and dtype one of {list(QUANTISATION)}, "
                          f"got {output!r}, {dtype!r}")
    if pad_mode not in ("reflect", "replicate", "constant"):
        raise ConfigError(f"pad_mode must be 'reflect', 'replicate' or 'constant', got {pad_mode!r}")
    keys = tuple(getattr(model, "input_keys", ()) or ())
    if not keys:
        raise ConfigError("predict_to_cog: the model has no input_keys (which inputs does it read?)")
    _check_dates(source, keys, tuple(dates))
    plan = plan_blocks(source.grid.shape, int(chunk), int(overlap))
    settings = _Settings(keys, _output_key(model, output_key), tuple(dates),
                         int(multiple or getattr(model, "pad_multiple", None) or DEFAULT_MULTIPLE), pad_mode,
                         str(device), amp, bool(channels_last), int(overlap), len(plan), len(plan[0]), output,
                         dtype, float(threshold))
    return settings, plan


def _predict_blocks(model, source, settings: _Settings, plan, store: _PartialStore, *, scheduler, workers: int,
                    n_workers: int, progress: bool, name: str) -> None:
    """Predict the blocks not yet in ``store`` on the chosen engine and check the value ranges met."""
    from tqdm.auto import tqdm

    from .data.contract import InputContractError

    done = store.done()
    todo = [b for row in plan for b in row if b.name not in done]
    per_image = any(getattr(source.contract, f"{m}_norm") == "per_image" for m in source.n_dates)
    token = uuid.uuid4().hex[:10]
    bar = tqdm(total=len(plan) * len(plan[0]), initial=len(done), desc=f"predict {name}", unit="block",
               disable=not progress)
    was_training = model.training
    model.eval()
    try:
        if todo and scheduler is None:
            _ready_model(model, settings)
            _run_local(_build_graph(model, source, settings, plan, todo, per_image, token), store, bar, workers)
        elif todo:
            _run_distributed(scheduler, n_workers, model, source,
                             lambda m, s: _build_graph(m, s, settings, plan, todo, per_image, token), store, bar)
        _check_ranges(store, plan, source)
    except InputContractError:
        store.remove()  # predictions of an input that breaks the contract are not worth resuming
        raise
    finally:
        bar.close()
        model.train(was_training)
        if model.__dict__.pop("_urbankit_ready", None) and settings.channels_last:
            import torch

            model.to(memory_format=torch.contiguous_format)  # as the caller gave it


# ----------------------------------------------------------------------------- the command line
def model_from_checkpoint(checkpoint: str | os.PathLike, name: str, options: Mapping[str, Any] | None = None,
                          *, which: str = "best"):
    """Build registry model ``name`` and load a checkpoint's weights and input contract into it.

    Checkpoints hold weights, not the architecture: ``options`` are the keyword arguments the
    model was built with (e.g. ``{"width": 0.25}``). The channel counts (``optical_channels``,
    ``sar_channels``) and ``modality`` default to what the checkpoint's input contract says.

    Raises:
        CheckpointError: the file is missing, unreadable, or its weights do not fit the model.
    """
    from .data.contract import InputContract
    from .models.registry import build, model_parameters
    from .train import checkpoint_file, load_checkpoint

    path = checkpoint_file(checkpoint, which)
    contract = load_checkpoint(path).get("input_contract")
    cfg = dict(options or {})
    params = model_parameters(name)
    if contract is not None:
        contract = InputContract.from_dict(contract)
        n = {m: len(contract.channels(m) or ()) for m in ("optical", "sar")}
        for m in ("optical", "sar"):
            if n[m] and f"{m}_channels" in params:
                cfg.setdefault(f"{m}_channels", n[m])
        if "modality" in params:
            cfg.setdefault("modality", "fusion" if n["optical"] and n["sar"] else "sar" if n["sar"] else "optical")
    model = build(name, **cfg)
    load_checkpoint(path, model, which=which)
    return model, path


def _add_predict(p) -> None:
    p.add_argument("checkpoint", help="a checkpoint file or checkpoint_dir written by urbankit.train.fit")
    p.add_argument("--model", required=True, help="registry name of the checkpoint's model (e.g. unet_ef)")
    p.add_argument("--model-arg", nargs="+", default=[], metavar="KEY=VALUE",
                   help="arguments the model was built with, e.g. width=0.25 topology=[16,32] (channel counts "
                        "and modality default to the checkpoint's input contract)")
    src = p.add_argument_group("input (a scene, or GeoTIFFs on one grid: one file per date)")
    src.add_argument("--scene", help="a scene as a .zarr store or a netCDF file")
    src.add_argument("--optical", nargs="+", metavar="TIF", help="Sentinel-2 GeoTIFF(s): date 1 [date 2]")
    src.add_argument("--sar", nargs="+", metavar="TIF", help="Sentinel-1 GeoTIFF(s) in dB: date 1 [date 2]")
    src.add_argument("--optical-scale", type=float, default=None,
                     help="multiply the optical GeoTIFFs by this (1e-4 for Sentinel-2 digital numbers)")
    p.add_argument("-o", "--output", required=True, help="the COG to write (.tif)")
    p.add_argument("--output-key", default=None, help="model output to write (default: its only one, or change)")
    p.add_argument("--kind", default="probability", choices=["probability", "class"])
    p.add_argument("--dtype", default="uint8", choices=list(QUANTISATION), help="code of the probabilities")
    p.add_argument("--threshold", type=float, default=0.5, help="--kind class: probability > threshold is 1")
    p.add_argument("--chunk", type=int, default=1024, help="block size in px (default 1024)")
    p.add_argument("--overlap", type=int, default=64, help="px shared by neighbouring windows (default 64)")
    p.add_argument("--dates", type=int, nargs=2, default=(0, -1), metavar=("T1", "T2"),
                   help="scene time indexes read as t1 and t2 (default: first and last)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--amp", default=None, choices=["bf16", "fp16"], help="autocast the forward passes")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--scheduler", default=None,
                   help="'local' (a new dask LocalCluster) or a dask scheduler address (tcp://host:8786); "
                        "default: dask threads in this process")
    p.add_argument("--workers", type=int, default=None,
                   help="threads (no --scheduler, default 1) or LocalCluster processes (default 2)")
    p.add_argument("--profile", default=None, help="profile name recorded in the file's tags")
    p.add_argument("--no-resume", action="store_true", help="start again even if an interrupted run left blocks")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_model_args(items: Sequence[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--model-arg {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def _run_predict(args) -> int:
    tiffs = {m: fs for m, fs in (("optical", args.optical), ("sar", args.sar)) if fs}
    if bool(args.scene) == bool(tiffs):
        raise ConfigError("urbankit predict: give either --scene or GeoTIFFs (--optical and/or --sar)")
    model, ckpt = model_from_checkpoint(args.checkpoint, args.model, _parse_model_args(args.model_arg))
    scale = {"optical": args.optical_scale} if args.optical_scale and tiffs else None
    local = args.scheduler is None
    out = predict_to_cog(
        model, args.scene or tiffs, args.output, output_key=args.output_key, output=args.kind, dtype=args.dtype,
        threshold=args.threshold, chunk=args.chunk, overlap=args.overlap, dates=tuple(args.dates),
        device=args.device, amp=args.amp or False, channels_last=args.channels_last, scheduler=args.scheduler,
        workers=(args.workers or 1) if local else 1, n_workers=args.workers or 2, scale=scale, checkpoint=ckpt,
        profile=args.profile, resume=not args.no_resume, progress=not args.quiet)
    print(f"wrote {out}")
    return 0


#: ``urbankit predict``: registered by :mod:`urbankit.cli`.
CLI_COMMAND = ("predict", "predict a whole scene with a trained checkpoint and write a Cloud-Optimised GeoTIFF",
               _add_predict, _run_predict)
