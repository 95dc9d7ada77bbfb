"""Value checks that every reader shares: label codings, Sentinel-1 units and Sentinel-2 DN types.

A reader never guesses what a file's values mean from the values themselves: the meaning is
stated per dataset (the OSCD TIFF labels are coded 1 = no change / 2 = change, its PNG labels
0 / 255) or told by the caller (``label_coding=``), and values that do not fit raise a
:class:`~urbankit.errors.DataFormatError` that names the file, the values found and the coding
that was expected. The same holds for Sentinel-1 units (dB, linear power or the [0, 1] export
of DS U-Net) and for Sentinel-2 digital numbers (an 8-bit file is not reflectance x 10000).

Readers never import torch.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = ["GREY_CODING", "LABEL_CODINGS", "check_dn_dtype", "check_finite", "check_s1_unit",
           "decode_binary_label", "parse_label_coding"]

#: Binary label codings by name: (value meaning "no change / not built", value meaning "change").
LABEL_CODINGS: dict[str, tuple[int, int]] = {"0/1": (0, 1), "1/2": (1, 2), "0/255": (0, 255)}
#: A grey 8-bit mask: 0 = no change, 255 = change, anti-aliased edges in between (> 127 = change).
#: Values between 0 and 255 are accepted only when both 0 and 255 occur (a real OSCD ``cm.png``
#: has such edges); a mask holding only small values (a 0/1 or 1/2 coding) does not fit.
GREY_CODING = "0..255"


def parse_label_coding(coding: str | tuple[int, int]) -> tuple[int, int]:
    """``"0/1"``, ``"1/2"``, ``"0/255"``, ``"0..255"`` or a (negative, positive) pair -> the two values."""
    if coding == GREY_CODING:
        return 0, 255
    if isinstance(coding, str) and coding in LABEL_CODINGS:
        return LABEL_CODINGS[coding]
    if (isinstance(coding, (tuple, list)) and len(coding) == 2
            and all(isinstance(v, (int, np.integer)) for v in coding) and coding[0] != coding[1]):
        return int(coding[0]), int(coding[1])
    names = ", ".join(map(repr, [*LABEL_CODINGS, GREY_CODING]))
    raise ConfigError(f"label_coding must be one of {names} or a pair "
                      f"(no-change value, change value); got {coding!r}")


def _fitting_codings(values: set) -> list[str]:
    return [name for name, pair in LABEL_CODINGS.items() if values <= set(pair) and len(values) > 1]


def decode_binary_label(arr: np.ndarray, coding: str | tuple[int, int], path: str | os.PathLike,
                        valid: np.ndarray | None = None) -> np.ndarray:
    """Decode a binary label raster stated to follow ``coding`` into uint8 0/1.

    Args:
        arr: label values (rows, cols), any numeric dtype.
        coding: ``"0/1"``, ``"1/2"``, ``"0/255"`` or a (no-change, change) pair.
        path: the label file (named in errors).
        valid: optional bool mask (rows, cols); pixels outside it are ignored and decode to 0.

    Returns:
        uint8 array (rows, cols): 1 where ``arr`` equals the change value, else 0.

    Raises:
        DataFormatError: naming the file when any valid value is not one of the coding's two
            values (the message lists the values found and the codings they would fit).
    """
    neg, pos = parse_label_coding(coding)
    a = np.asarray(arr)
    sel = a if valid is None else a[np.asarray(valid, bool)]
    values = set(np.unique(sel).tolist())
    if coding == GREY_CODING:
        return _decode_grey(a, values, path, valid)
    if not values <= {neg, pos}:
        raise _coding_error(path, values, f"{neg} = no change, {pos} = change")
    out = (a == pos)
    if valid is not None:
        out &= np.asarray(valid, bool)
    return out.astype(np.uint8)


def _coding_error(path, values: set, coding: str) -> DataFormatError:
    shown = ", ".join(f"{v:g}" for v in sorted(values)[:8])
    fits = _fitting_codings(values)
    hint = f"; these values fit label_coding={fits[0]!r}" if fits else ""
    more = " ..." if len(values) > 8 else ""
    return DataFormatError(f"{path}: label values [{shown}{more}] do not fit the coding {coding}{hint} "
                           "(pass label_coding= to state the file's coding)")


def _decode_grey(a: np.ndarray, values: set, path, valid) -> np.ndarray:
    inside = all(0 <= v <= 255 for v in values)
    edges = values - {0, 255}
    if not inside or (edges and not {0, 255} <= values):
        raise _coding_error(path, values, "0 = no change, 255 = change (grey edges allowed only between 0 "
                                          "and 255 areas)")
    out = a > 127
    if valid is not None:
        out &= np.asarray(valid, bool)
    return out.astype(np.uint8)


def check_finite(arr: np.ndarray, path: str | os.PathLike, what: str) -> None:
    """Raise when ``arr`` holds +inf or -inf (NaN is allowed: it marks no data)."""
    a = np.asarray(arr)
    if a.dtype.kind == "f" and np.isinf(a).any():
        n = int(np.isinf(a).sum())
        raise DataFormatError(f"{path}: {n} pixel(s) of {what} are +/-inf; expected finite values "
                              "(NaN or the file's nodata value for no data)")


def check_dn_dtype(dtype, path: str | os.PathLike, scale: float) -> None:
    """Refuse an 8-bit Sentinel-2 file read as DN / ``scale`` with ``scale`` > 255.

    An 8-bit raster (a quick-look or a visualisation) cannot hold reflectance x 10000: dividing
    it by 10000 would give reflectances 40x too low without any error.
    """
    dt = np.dtype(dtype)
    if dt.kind in "ui" and dt.itemsize == 1 and scale > 255:
        raise DataFormatError(
            f"{path}: Sentinel-2 band stored as {dt} (8 bit), but reflectance is read as DN / {scale:g}: "
            "8-bit values cannot hold reflectance x 10000 (is it a quick-look or an RGB "
            "visualisation?). Use the 16-bit product, or state the scaling (s2_scale=255 for a "
            "0..255 reflectance encoding)")


_S1_FIX = {"db": "s1_unit='db'", "linear": "s1_unit='linear'", "unit": "s1_unit='unit' with db_range="}


def _looks_like(lo: float, hi: float) -> str:
    if lo < 0:
        return "db"
    return "unit" if hi <= 1.0 else "linear"


def check_s1_unit(arr: np.ndarray, unit: str, path: str | os.PathLike, *, fix: str | None = None) -> None:
    """Raise when Sentinel-1 values clearly do not have the stated ``unit``.

    Args:
        arr: raw values as read from the file (NaN = no data).
        unit: ``"db"`` (sigma0 in dB: some values negative), ``"linear"`` (power: >= 0) or
            ``"unit"`` (the [0, 1] export of DS U-Net).
        path: the file, named in the error.
        fix: what to suggest instead (default: the ``s1_unit=`` value the values look like).

    Raises:
        DataFormatError: naming the file, the value range and the unit the values look like.
    """
    a = np.asarray(arr, dtype=np.float64)
    finite = a[np.isfinite(a)]
    if finite.size < 16:
        return
    lo, hi = float(finite.min()), float(finite.max())
    bad = {"db": lo >= 0, "linear": lo < 0, "unit": lo < -1e-6 or hi > 1 + 1e-6}[unit]
    if not bad:
        return
    seems = _looks_like(lo, hi)
    names = {"db": "sigma0 in dB", "linear": "linear power", "unit": "values scaled to [0, 1]"}
    raise DataFormatError(
        f"{path}: Sentinel-1 values in [{lo:.4g}, {hi:.4g}] are not {names[unit]} as expected; they look "
        f"like {names[seems]}. {fix or 'Read the file with ' + _S1_FIX[seems]}")
