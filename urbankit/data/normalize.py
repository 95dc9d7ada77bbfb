"""Normalisation, defined once for every reader, the torch layer and the chapters.

- Sentinel-2 digital numbers -> reflectance: ``(dn + offset) / 10000``, clipped to [0, 1].
  Products of processing baseline 04.00 and later (from 25 January 2022) carry an offset of
  -1000 (``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET``); pass ``offset=-1000`` for those.
- Sentinel-1 backscatter: linear power <-> dB (``10 log10``), and dB -> [0, 1] by a linear map
  of a fixed dB range. The range is a knob: DS U-Net rescaled [-25, +5] dB, MMCR [-25, 0] dB
  (Hafner et al. 2022 GRSL; 2023 Remote Sensing); urbankit's default is **[-25, 0] dB**.
- ``percentile_stretch`` for display (ignores NaNs).

Every function accepts numpy arrays and xarray DataArrays (coords and attrs are kept) and
returns float32. NaN stays NaN.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "DEFAULT_DB_RANGE", "DS_UNET_DB_RANGE", "MMCR_DB_RANGE", "SEN12_MTUM_DB_RANGE", "db_range_attr",
    "s2_to_reflectance", "db_to_linear",
    "linear_to_db", "db_to_unit", "unit_to_db", "model_input", "percentile_stretch",
]

# The SAR dB ranges of the sources. A reader records the range its files were scaled from in the
# scene's ``sar_db_range`` attr (:func:`db_range_attr`); the torch layer and inference read it from
# there (:func:`urbankit.data.contract.scene_sar_db_range`), so no chapter passes it by hand.

#: urbankit's default dB range for scaling SAR to [0, 1] when a scene records none (MMCR's choice).
DEFAULT_DB_RANGE: tuple[float, float] = (-25.0, 0.0)
#: The OSCD Sentinel-1 export of DS U-Net (Hafner et al. 2022): value = (dB + 25) / 30, clipped.
DS_UNET_DB_RANGE: tuple[float, float] = (-25.0, 5.0)
#: The SpaceNet7-S1S2 / SEN12-MTUM export (Hafner et al. 2023): GEE ``unitScale(-25, 0)``, clamped.
SEN12_MTUM_DB_RANGE: tuple[float, float] = (-25.0, 0.0)
#: The range MMCR scales SAR with (Hafner et al. 2023): its dataset's export range.
MMCR_DB_RANGE: tuple[float, float] = SEN12_MTUM_DB_RANGE


def db_range_attr(db_range: tuple[float, float]) -> str:
    """The ``sar_db_range`` scene attr of a (low, high) dB range: ``"-25,5"``."""
    lo, hi = (float(v) for v in db_range)
    return f"{lo:g},{hi:g}"


def _f32(x: Any) -> Any:
    """float32 view of the input: DataArrays keep coords/attrs, anything else -> numpy (or dask)."""
    if isinstance(x, xr.DataArray):
        return x.astype(np.float32, copy=False)
    if hasattr(x, "dask") or type(x).__module__.startswith("dask"):
        return x.astype(np.float32)
    return np.asarray(x, dtype=np.float32)


def _finish(out: Any, like: Any, units: str | None = None) -> Any:
    if isinstance(out, xr.DataArray):
        out = out.astype(np.float32, copy=False)
        if isinstance(like, xr.DataArray):
            out.attrs = dict(like.attrs)
        if units is not None:
            out.attrs["units"] = units
        return out
    return out.astype(np.float32, copy=False)


def s2_to_reflectance(dn: Any, scale: float = 10000.0, clip: bool = True, offset: float = 0.0,
                      nodata: float | None = None) -> Any:
    """Sentinel-2 digital numbers to reflectance: ``(dn + offset) / scale``, clipped to [0, 1].

    Args:
        dn: digital numbers (any numeric dtype), numpy array or DataArray.
        scale: quantification value (10000 for L1C and L2A).
        clip: clip the result to [0, 1].
        offset: radiometric offset added before scaling (-1000 for baseline >= 04.00).
        nodata: DN value that marks missing data (0 in ESA products); becomes NaN.

    >>> s2_to_reflectance(np.array([0, 1234, 12000]))
    array([0.    , 0.1234, 1.    ], dtype=float32)
    """
    x = _f32(dn)
    out = (x + np.float32(offset)) / np.float32(scale)
    if clip:
        out = out.clip(np.float32(0.0), np.float32(1.0))
    if nodata is not None:
        missing = x == np.float32(nodata)
        out = out.where(~missing) if isinstance(out, xr.DataArray) else np.where(missing, np.nan, out)
    return _finish(out, dn, units="reflectance")


def db_to_linear(db: Any) -> Any:
    """Backscatter in dB to linear power: ``10 ** (db / 10)``.

    >>> db_to_linear(np.array([-10.0, 0.0, 3.0])).round(4)
    array([0.1   , 1.    , 1.9953], dtype=float32)
    """
    x = _f32(db)
    out = np.float32(10.0) ** (x / np.float32(10.0))
    return _finish(out, db, units="linear power")


def linear_to_db(linear: Any, floor: float = 1e-10) -> Any:
    """Linear power to dB: ``10 log10(max(linear, floor))``.

    The floor (default 1e-10, i.e. -100 dB) avoids ``log(0) = -inf`` for zero or negative
    values (e.g. border pixels, or noise-subtracted products).

    >>> linear_to_db(np.array([0.1, 1.0, 0.0]))
    array([ -10.,    0., -100.], dtype=float32)
    """
    x = _f32(linear)
    floored = x.clip(min=floor) if isinstance(x, xr.DataArray) else np.where(x < floor, floor, x)
    out = np.float32(10.0) * np.log10(floored)
    return _finish(out, linear, units="dB")


def _check_range(db_range: tuple[float, float]) -> tuple[np.float32, np.float32]:
    lo, hi = (float(v) for v in db_range)
    if not hi > lo:
        from ..errors import ConfigError

        raise ConfigError(f"db_range must be (low, high) with high > low, got {db_range!r}")
    return np.float32(lo), np.float32(hi)


def db_to_unit(db: Any, db_range: tuple[float, float] = DEFAULT_DB_RANGE, clip: bool = True) -> Any:
    """Scale backscatter in dB linearly from ``db_range`` to [0, 1] (clipped by default).

    Default [-25, 0] dB as in MMCR; DS U-Net used [-25, +5] dB (:data:`DS_UNET_DB_RANGE`).

    >>> db_to_unit(np.array([-25.0, -12.5, 0.0, 4.0]))
    array([0. , 0.5, 1. , 1. ], dtype=float32)
    """
    lo, hi = _check_range(db_range)
    x = _f32(db)
    out = (x - lo) / (hi - lo)
    if clip:
        out = out.clip(np.float32(0.0), np.float32(1.0))
    return _finish(out, db, units="1")


def model_input(values: Any, modality: str, db_range: tuple[float, float] = DEFAULT_DB_RANGE) -> np.ndarray:
    """Scene values -> model-ready float32 numpy (the one rule shared by training and inference).

    ``optical`` reflectance is kept as is; ``sar`` dB is scaled to [0, 1] with
    :func:`db_to_unit` (clipped). NaN/inf (no data) become 0 afterwards, i.e. reflectance 0 or
    the bottom of the dB range. Returns a C-contiguous array of the input's shape.
    """
    arr = np.asarray(getattr(values, "values", values), dtype=np.float32)
    if modality == "sar":
        arr = np.asarray(db_to_unit(arr, db_range=db_range, clip=True), dtype=np.float32)
    elif modality != "optical":
        raise ValueError(f"model_input: modality must be 'optical' or 'sar', got {modality!r}")
    return np.ascontiguousarray(np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0))


def unit_to_db(unit: Any, db_range: tuple[float, float] = DEFAULT_DB_RANGE) -> Any:
    """Inverse of :func:`db_to_unit` (values clipped there cannot be recovered).

    >>> unit_to_db(np.array([0.0, 0.5, 1.0]))
    array([-25. , -12.5,   0. ], dtype=float32)
    """
    lo, hi = _check_range(db_range)
    x = _f32(unit)
    out = x * (hi - lo) + lo
    return _finish(out, unit, units="dB")


def percentile_stretch(img: Any, lower: float = 2, upper: float = 98, per_band: bool = True,
                       axis: int | str | None = None) -> Any:
    """Stretch values linearly so the ``lower``/``upper`` percentiles map to 0/1 (then clip).

    Percentiles ignore NaNs (NaN stays NaN). With ``per_band`` each band is stretched on its
    own (colour balance changes); otherwise one pair of percentiles for the whole array.

    Args:
        img: numpy array or DataArray.
        lower, upper: percentiles in 0..100.
        per_band: stretch each band separately.
        axis: the band axis. Default: for DataArrays the ``band`` or ``polarisation`` dim if
            present (else the whole array is one band); for numpy arrays axis 0 of 3-D input
            (channel-first, like the scene schema), none for 2-D input. Pass ``axis=-1`` for
            an (H, W, 3) display array.

    Returns:
        float32 in [0, 1] of the same shape (a DataArray keeps coords and attrs).
    """
    if not 0 <= lower < upper <= 100:
        from ..errors import ConfigError

        raise ConfigError(f"percentile_stretch: need 0 <= lower < upper <= 100, got {lower}, {upper}")
    if isinstance(img, xr.DataArray):
        dim = axis if isinstance(axis, str) else None
        if dim is None and axis is None:
            dim = next((d for d in ("band", "polarisation") if d in img.dims), None)
        if dim is None and isinstance(axis, int):
            dim = img.dims[axis]
        data = np.asarray(img.values, dtype=np.float32)
        ax = img.dims.index(dim) if dim is not None else None
        out = _stretch_np(data, lower, upper, per_band, ax)
        res = img.copy(data=out)
        res.attrs = dict(img.attrs)
        res.attrs["units"] = "1"
        return res
    data = np.asarray(img, dtype=np.float32)
    if axis is None:
        axis = 0 if data.ndim == 3 else None
    return _stretch_np(data, lower, upper, per_band, axis)


def _stretch_np(data: np.ndarray, lower: float, upper: float, per_band: bool, axis: int | None) -> np.ndarray:
    if data.size == 0 or not np.isfinite(data).any():
        return data.astype(np.float32, copy=True)
    if per_band and axis is not None:
        moved = np.moveaxis(data, axis, 0)
        flat = moved.reshape(moved.shape[0], -1)
        lo = np.full(flat.shape[0], np.nan, np.float32)
        hi = np.full(flat.shape[0], np.nan, np.float32)
        for i, row in enumerate(flat):
            finite = row[np.isfinite(row)]
            if finite.size:
                lo[i], hi[i] = np.percentile(finite, [lower, upper])
        shape = [1] * data.ndim
        shape[axis] = -1
        lo, hi = lo.reshape(shape), hi.reshape(shape)
    else:
        finite = data[np.isfinite(data)]
        lo, hi = (np.float32(v) for v in np.percentile(finite, [lower, upper]))
    span = np.where(hi > lo, hi - lo, np.float32(1.0))
    out = np.clip((data - lo) / span, 0.0, 1.0)
    out = np.where(np.isfinite(data), out, np.nan)
    return out.astype(np.float32)
