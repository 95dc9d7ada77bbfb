"""The scene schema: one ``xarray.Dataset`` per site, its builder and its validator.

=============  ===============================  =======  ====================================
variable       dims                             dtype    meaning
=============  ===============================  =======  ====================================
optical        (time, band, y, x)               float32  reflectance 0..1; NaN = no data
sar            (time, polarisation, y, x)       float32  backscatter sigma0 in dB; NaN = no data
buildings      (time, y, x)                     float32  building mask (0/1) or fraction (0..1)
change         (y, x)                           uint8    1 = new built-up first -> last date
population     (time, y, x)                     float32  persons per pixel (optional)
=============  ===============================  =======  ====================================

Coordinates: ``time`` (datetime64), ``band`` (S2 names or VHR ``R``/``G``/``B``),
``polarisation`` (``VV``/``VH``), pixel-centre ``y``/``x`` in the CRS; ``optical_date`` and
``sar_date`` along ``time``. CRS and transform through rioxarray. attrs ``site``, ``region``,
``dataset``, ``split``, ``source``, ``licence``. Other variables (e.g. ``land_cover``,
``cloud_mask`` of the synthetic twin) may ride along; the validator checks only what it knows.

- :func:`make_scene` assembles a conformant Dataset from arrays (readers and the generator use it).
- :func:`validate_scene` checks a Dataset and raises
  :class:`~urbankit.errors.SceneValidationError` naming the site, the variable and the problem.
- :func:`scene_summary` tabulates a scene (one row per variable).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from ..errors import SceneValidationError
from .bands import KNOWN_OPTICAL_BANDS, S2_BAND_NAMES
from .raster import pixel_centres

__all__ = [
    "BUILT_FRACTION_THRESHOLD", "SCHEMA", "SPLITS", "SAR_POLARISATIONS", "SAR_DB_RANGE", "OPTICAL_TOLERANCE",
    "change_from_buildings", "is_built", "make_scene", "validate_scene", "scene_summary",
]

#: Expected dims and dtype of every schema variable.
SCHEMA: dict[str, tuple[tuple[str, ...], np.dtype]] = {
    "optical": (("time", "band", "y", "x"), np.dtype("float32")),
    "sar": (("time", "polarisation", "y", "x"), np.dtype("float32")),
    "buildings": (("time", "y", "x"), np.dtype("float32")),
    "change": (("y", "x"), np.dtype("uint8")),
    "population": (("time", "y", "x"), np.dtype("float32")),
}
#: Allowed values of the ``split`` attribute.
SPLITS = ("train", "val", "test", "unlabelled")
#: Sentinel-1 polarisation names the schema accepts.
SAR_POLARISATIONS = ("VV", "VH", "HH", "HV")
#: Plausible range of sigma0 in dB; values outside mean linear power, scaled or DN values.
SAR_DB_RANGE = (-50.0, 30.0)
#: How far optical reflectance may stray outside [0, 1] (rounding, bright targets).
OPTICAL_TOLERANCE = 0.01
#: The one definition of "built": a pixel is built-up when its ``buildings`` value (a 0/1 mask or
#: a building fraction 0..1) is above this. SpaceNet7-S1S2 rasterises the SpaceNet 7 footprints
#: at 1 m and averages them to 10 m, and built-up is any fraction > 0 (Hafner et al. 2023).
#: Readers (change labels), the torch layer (built masks and derived change) and inference use it.
BUILT_FRACTION_THRESHOLD = 0.0

_LABELS = ("buildings", "change", "population")


def is_built(buildings: Any) -> np.ndarray:
    """Built-up mask of a ``buildings`` array (any shape): value > :data:`BUILT_FRACTION_THRESHOLD`."""
    return np.asarray(buildings) > BUILT_FRACTION_THRESHOLD


def change_from_buildings(first: Any, last: Any) -> np.ndarray:
    """Construction-only change: built (:func:`is_built`) at ``last`` and not at ``first``; uint8 0/1."""
    return (is_built(last) & ~is_built(first)).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# building scenes
# ---------------------------------------------------------------------------------------------
def _is_lazy(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "dask"


def _as_array(a: Any, dtype: Any) -> Any:
    if isinstance(a, xr.DataArray):
        a = a.data
    if _is_lazy(a):
        return a.astype(dtype)
    return np.asarray(a).astype(dtype, copy=False)


def _affine_params(transform: Any) -> tuple[float, float, float, float, float, float]:
    """(a, b, c, d, e, f) of an affine.Affine, a 6-sequence in that order, or a GDAL tuple."""
    if hasattr(transform, "a") and hasattr(transform, "f"):
        return (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
    vals = tuple(float(v) for v in transform)
    if len(vals) == 9:
        vals = vals[:6]
    if len(vals) != 6:
        raise ValueError(f"transform must be an affine.Affine or 6 numbers, got {transform!r}")
    return vals  # type: ignore[return-value]


def _scene_arrays(site: str, given: dict[str, Any]) -> dict[str, Any]:
    """The given variables as arrays of the schema's dtype, single dates given a time axis."""
    specs = {"optical": (4, np.float32), "sar": (4, np.float32), "buildings": (3, np.float32),
             "change": (2, np.uint8), "population": (3, np.float32)}
    arrays: dict[str, Any] = {}
    for name, (ndim, dtype) in specs.items():
        if given[name] is None:
            continue
        a = _as_array(given[name], dtype)
        if a.ndim == ndim - 1 and name != "change":
            a = a[None]
        if a.ndim != ndim:
            raise SceneValidationError(
                site, name, f"expected a {ndim}-D array {SCHEMA[name][0]}, got shape {tuple(a.shape)}")
        arrays[name] = a
    if not arrays:
        raise SceneValidationError(site, None, "empty scene: no optical, sar or label array was given")
    return arrays


def _scene_times(site: str, arrays: dict[str, Any], times: Sequence[Any] | None) -> tuple[tuple[int, int], Any]:
    """((H, W), datetime64 epochs) after checking that shapes agree across variables and dates."""
    ref_name, ref = next(iter(arrays.items()))
    hw = tuple(ref.shape[-2:])
    n_time = None
    for name, a in arrays.items():
        if tuple(a.shape[-2:]) != hw:
            raise SceneValidationError(
                site, name, f"spatial shape {tuple(a.shape[-2:])} does not match {ref_name!r} {hw}")
        if name != "change":
            if n_time is None:
                n_time, time_from = a.shape[0], name
            elif a.shape[0] != n_time:
                raise SceneValidationError(
                    site, name, f"{a.shape[0]} dates do not match {n_time} dates of {time_from!r}")
    n_time = n_time or 1
    if times is None:
        times = pd.date_range("2000-01-01", periods=n_time, freq="MS")
    times = pd.to_datetime(list(times)).values.astype("datetime64[ns]")
    if len(times) != n_time:
        raise SceneValidationError(site, "time", f"{len(times)} times given for {n_time} dates")
    return hw, times


def _scene_xy(site: str, hw: tuple[int, int], transform: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (ys, xs): from a north-up ``transform``, else ``x``/``y`` or indices + 0.5."""
    h, w = hw
    if transform is not None:
        a_, b_, c_, d_, e_, f_ = _affine_params(transform)
        if b_ != 0 or d_ != 0:
            raise SceneValidationError(site, None, "rotated transforms are not supported (north-up only)")
        from affine import Affine

        return pixel_centres(Affine(a_, b_, c_, d_, e_, f_), (h, w))
    xs = np.asarray(x, dtype=np.float64) if x is not None else np.arange(w) + 0.5
    ys = np.asarray(y, dtype=np.float64) if y is not None else np.arange(h) + 0.5
    if xs.shape != (w,) or ys.shape != (h,):
        raise SceneValidationError(
            site, None, f"x/y coordinates of lengths {xs.shape}/{ys.shape} do not match the grid {h}x{w}")
    return ys, xs


def _modality_dates(site: str, arrays: dict[str, Any], times: Any, optical_dates: Any,
                    sar_dates: Any) -> dict[str, Any]:
    """The ``optical_date``/``sar_date`` coordinates along ``time`` (default: the epochs)."""
    coords: dict[str, Any] = {}
    for cname, key, dates in (("optical_date", "optical", optical_dates), ("sar_date", "sar", sar_dates)):
        if key in arrays:
            d = times if dates is None else pd.to_datetime(list(dates)).values.astype("datetime64[ns]")
            if len(d) != len(times):
                raise SceneValidationError(site, cname, f"{len(d)} dates given for {len(times)} epochs")
            coords[cname] = ("time", d)
    return coords


_VAR_ATTRS = {
    "optical": {"units": "reflectance", "long_name": "optical reflectance"},
    "sar": {"units": "dB", "long_name": "backscatter sigma0"},
    "buildings": {"long_name": "building mask or fraction", "units": "1"},
    "change": {"long_name": "new built-up between first and last date", "units": "1"},
    "population": {"long_name": "population", "units": "persons per pixel"},
}


def _channel_names(site: str, arrays: dict[str, Any], bands: Sequence[str] | None,
                   polarisations: Sequence[str]) -> dict[str, list[str]]:
    """The ``band`` / ``polarisation`` coordinates (13 S2 or R, G, B bands by default)."""
    coords: dict[str, list[str]] = {}
    if "optical" in arrays:
        n_b = arrays["optical"].shape[1]
        if bands is None:
            bands = list(S2_BAND_NAMES) if n_b == 13 else (["R", "G", "B"] if n_b == 3 else None)
            if bands is None:
                raise SceneValidationError(site, "optical", f"{n_b} bands: pass their names as bands=")
        if len(bands) != n_b:
            raise SceneValidationError(site, "optical", f"{len(bands)} band names for {n_b} bands")
        coords["band"] = list(bands)
    if "sar" in arrays:
        n_p = arrays["sar"].shape[1]
        if len(polarisations) != n_p:
            raise SceneValidationError(site, "sar", f"{len(polarisations)} polarisation names for {n_p} channels")
        coords["polarisation"] = list(polarisations)
    return coords


def _georeference(ds: xr.Dataset, crs: Any, transform: Any) -> xr.Dataset:
    """Write ``crs`` and the transform (given, else recomputed from x/y) through rioxarray."""
    if crs is None:
        return ds
    ds = ds.rio.write_crs(crs, inplace=True)
    if transform is not None:
        from affine import Affine

        return ds.rio.write_transform(Affine(*_affine_params(transform)), inplace=True)
    return ds.rio.write_transform(ds.rio.transform(recalc=True), inplace=True)


def make_scene(
    *,
    optical: Any = None,
    sar: Any = None,
    buildings: Any = None,
    change: Any = None,
    population: Any = None,
    times: Sequence[Any] | None = None,
    bands: Sequence[str] | None = None,
    polarisations: Sequence[str] = ("VV", "VH"),
    transform: Any = None,
    crs: Any = None,
    x: Sequence[float] | None = None,
    y: Sequence[float] | None = None,
    optical_dates: Sequence[Any] | None = None,
    sar_dates: Sequence[Any] | None = None,
    site: str = "site",
    region: str = "unknown",
    dataset: str = "unknown",
    split: str = "train",
    source: str = "",
    licence: str = "",
    extra_vars: dict[str, tuple[tuple[str, ...], Any] | xr.DataArray] | None = None,
    attrs: dict[str, Any] | None = None,
    validate: bool = True,
) -> xr.Dataset:
    """Assemble a schema-conformant scene from arrays (numpy or dask; dask stays lazy).

    Args:
        optical: (time, band, y, x) reflectance 0..1, or (band, y, x) for one date.
        sar: (time, polarisation, y, x) backscatter in dB, or (polarisation, y, x).
        buildings: (time, y, x) or (y, x) for one date; cast to float32.
        change: (y, x); cast to uint8.
        population: (time, y, x) persons per pixel.
        times: the epochs (anything ``pandas.to_datetime`` reads). Default: monthly from
            2000-01-01 (placeholder epochs; say so in ``source``).
        bands: optical band names; default the 13 Sentinel-2 bands when optical has 13 bands,
            ``R, G, B`` when it has 3.
        polarisations: SAR channel names.
        transform: affine transform of the pixel grid (``affine.Affine``, rasterio's, or
            ``(a, b, c, d, e, f)``) - x/y become pixel centres; north-up only.
        crs: anything rioxarray's ``write_crs`` takes (``"EPSG:32633"``); None for unreferenced
            imagery (LEVIR PNGs).
        x, y: pixel-centre coordinates when no transform is given (default: pixel indices + 0.5).
        optical_dates, sar_dates: per-modality acquisition dates along ``time`` (default: ``times``).
        site, region, dataset, split, source, licence: provenance attrs.
        extra_vars: more variables, ``name -> (dims, array)`` or DataArray.
        attrs: more dataset attrs.
        validate: run :func:`validate_scene` on the result.

    Returns:
        The scene (an ``xarray.Dataset`` following the schema).

    Raises:
        SceneValidationError: shapes disagree across variables or dates, or validation fails.
    """
    arrays = _scene_arrays(site, {"optical": optical, "sar": sar, "buildings": buildings, "change": change,
                                  "population": population})
    hw, times = _scene_times(site, arrays, times)
    ys, xs = _scene_xy(site, hw, transform, x, y)
    coords: dict[str, Any] = {"time": times, "y": ys, "x": xs}
    coords.update(_modality_dates(site, arrays, times, optical_dates, sar_dates))
    coords.update(_channel_names(site, arrays, bands, polarisations))
    data_vars = {name: (SCHEMA[name][0], arrays[name], _VAR_ATTRS[name])
                 for name in ("optical", "sar", *_LABELS) if name in arrays}
    ds = xr.Dataset(data_vars, coords=coords)
    for name, item in (extra_vars or {}).items():
        ds[name] = item if isinstance(item, (xr.DataArray, xr.Variable)) else xr.Variable(*item)
    ds.attrs.update({"site": site, "region": region, "dataset": dataset, "split": split,
                     "source": source, "licence": licence})
    ds.attrs.update(attrs or {})
    ds = _georeference(ds, crs, transform)
    if validate:
        validate_scene(ds, expect_crs=crs is not None)
    return ds


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
def _minmax(arr: Any) -> tuple[float, float, bool, bool]:
    """(nanmin, nanmax, has_nan, has_inf) of an array (computes dask arrays)."""
    a = arr.data if isinstance(arr, xr.DataArray) else arr
    if _is_lazy(a):
        import dask

        a32 = a.astype(np.float64)
        mn, mx, nan, inf = dask.compute(
            _da_nanmin(a32), _da_nanmax(a32), np.isnan(a32).any(), np.isinf(a32).any())
        return float(mn), float(mx), bool(nan), bool(inf)
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return float(a.min()), float(a.max()), False, False
    mn, mx = float(a.min()), float(a.max())
    if np.isfinite(mn) and np.isfinite(mx):
        return mn, mx, False, False
    finite = np.isfinite(a)
    has_nan = bool(np.isnan(a).any())
    has_inf = bool(np.isinf(a).any())
    if not finite.any():
        return float("nan"), float("nan"), has_nan, has_inf
    vals = a[finite]
    return float(vals.min()), float(vals.max()), has_nan, has_inf


def _da_nanmin(a: Any) -> Any:
    import dask.array as da

    return da.nanmin(da.where(da.isinf(a), np.nan, a))


def _da_nanmax(a: Any) -> Any:
    import dask.array as da

    return da.nanmax(da.where(da.isinf(a), np.nan, a))


def _fail(scene: xr.Dataset, variable: str | None, problem: str) -> None:
    """Raise the :class:`SceneValidationError` of ``scene`` (its ``site`` attr named)."""
    raise SceneValidationError(scene.attrs.get("site"), variable, problem)


def _check_variables(scene: xr.Dataset, require: Iterable[str]) -> None:
    """Non-empty, the required variables present, and the schema's dims and dtypes."""
    present = [v for v in scene.data_vars]
    if not present:
        _fail(scene, None, "empty scene: it has no variables")
    for dim, n in scene.sizes.items():
        if n == 0:
            var = next((v for v in present if dim in scene[v].dims), None)
            _fail(scene, var, f"empty scene: dimension {dim!r} has size 0")
    for name in require:
        if name not in scene.data_vars:
            _fail(scene, name, f"required variable is missing (present: {', '.join(present) or 'none'})")
    if not any(v in scene.data_vars for v in SCHEMA):
        _fail(scene, None, f"empty scene: none of the schema variables {', '.join(SCHEMA)} is present "
                           f"(found {', '.join(present)})")
    for name, (dims, dtype) in SCHEMA.items():
        if name not in scene.data_vars:
            continue
        var = scene[name]
        if tuple(var.dims) != dims:
            _fail(scene, name, f"dims {tuple(var.dims)} do not match the schema {dims}")
        if var.dtype != dtype:
            _fail(scene, name, f"dtype {var.dtype} is wrong, expected {dtype}")


def _check_channel_names(scene: xr.Dataset, variable: str, dim: str, known: Iterable[str], expected: str) -> None:
    """The ``dim`` coordinate of ``variable`` names known, distinct channels."""
    if variable not in scene.data_vars:
        return
    if dim not in scene.coords:
        _fail(scene, variable, f"the {dim} dimension has no coordinate of {dim} names")
    names = [str(b) for b in scene[dim].values]
    unknown = [b for b in names if b not in known]
    if unknown:
        _fail(scene, variable, f"unknown {dim} name(s) {unknown}; expected {expected}")
    if len(set(names)) != len(names):
        _fail(scene, variable, f"duplicate {dim} names {names}")


def _check_coords(scene: xr.Dataset) -> None:
    """datetime64 epochs and per-modality dates, known band/polarisation names, regular x/y."""
    if "time" in scene.dims:
        if "time" not in scene.coords:
            _fail(scene, "time", "the time dimension has no coordinate (expected datetime64 epochs)")
        if not np.issubdtype(scene["time"].dtype, np.datetime64):
            _fail(scene, "time", f"time coordinate has dtype {scene['time'].dtype}, expected datetime64")
    for cname in ("optical_date", "sar_date"):
        if cname in scene.coords:
            c = scene[cname]
            if c.dims != ("time",):
                _fail(scene, cname, f"must lie along time, has dims {c.dims}")
            if not np.issubdtype(c.dtype, np.datetime64):
                _fail(scene, cname, f"dtype {c.dtype}, expected datetime64")
    _check_channel_names(scene, "optical", "band", KNOWN_OPTICAL_BANDS,
                         f"Sentinel-2 names {', '.join(S2_BAND_NAMES)} or VHR R, G, B")
    _check_channel_names(scene, "sar", "polarisation", SAR_POLARISATIONS, ", ".join(SAR_POLARISATIONS))
    for dim in ("y", "x"):
        if dim in scene.dims and dim in scene.coords and scene.sizes[dim] > 2:
            step = np.diff(np.asarray(scene[dim].values, dtype=np.float64))
            monotonic = np.all(step > 0) or np.all(step < 0)
            if not monotonic or not np.allclose(step, step[0], rtol=1e-6, atol=1e-9):
                _fail(scene, dim, f"{dim} coordinates are not regularly spaced pixel centres")


def _check_label_values(scene: xr.Dataset) -> None:
    """Labels finite and in range: buildings 0..1, change 0/1, population >= 0."""
    for name in _LABELS:
        if name not in scene.data_vars:
            continue
        mn, mx, has_nan, has_inf = _minmax(scene[name])
        if has_nan or has_inf:
            _fail(scene, name, "labels contain NaN or inf (labels must be finite; mark unlabelled scenes "
                               "with split='unlabelled' and leave the label out)")
        if name == "buildings" and (mn < 0 or mx > 1):
            _fail(scene, name, f"values in [{mn:g}, {mx:g}], expected a mask or fraction in [0, 1]")
        if name == "change" and mx > 1:
            _fail(scene, name, f"values up to {mx:g}, expected 0/1")
        if name == "population" and mn < 0:
            _fail(scene, name, f"negative values (min {mn:g}), expected persons per pixel >= 0")


def _check_image_values(scene: xr.Dataset, optical_tolerance: float, sar_db_range: tuple[float, float]) -> None:
    """Optical reflectance within [0, 1] +/- tolerance; SAR in dB within the range, not all >= 0."""
    if "optical" in scene.data_vars:
        mn, mx, _, has_inf = _minmax(scene["optical"])
        if has_inf:
            _fail(scene, "optical", "contains inf (use NaN for no data)")
        if np.isfinite(mn) and (mn < -optical_tolerance or mx > 1 + optical_tolerance):
            hint = " (digital numbers? use normalize.s2_to_reflectance, or /255 for 8-bit RGB)" if mx > 2 else ""
            _fail(scene, "optical", f"reflectance out of range [{mn:g}, {mx:g}], expected 0..1{hint}")
    if "sar" not in scene.data_vars:
        return
    mn, mx, _, has_inf = _minmax(scene["sar"])
    lo, hi = sar_db_range
    if has_inf:
        _fail(scene, "sar", "contains inf (use NaN for no data; normalize.linear_to_db floors zeros)")
    if not np.isfinite(mn):
        return
    if mn < lo or mx > hi:
        _fail(scene, "sar", f"backscatter out of range [{mn:g}, {mx:g}] dB, expected within "
                            f"[{lo:g}, {hi:g}] dB ({_sar_hint(mn, mx)})")
    n_finite = int(np.isfinite(np.asarray(scene["sar"].values)).sum()) if mn >= 0 else 0
    if mn >= 0 and n_finite >= 16:
        _fail(scene, "sar", f"all values are >= 0 dB (range [{mn:g}, {mx:g}]): this looks like linear "
                            f"power or [0, 1]-scaled values, not dB (use normalize.linear_to_db / unit_to_db)")


def validate_scene(
    scene: xr.Dataset,
    *,
    require: Iterable[str] = (),
    expect_crs: bool | None = None,
    check_values: bool = True,
    optical_tolerance: float = OPTICAL_TOLERANCE,
    sar_db_range: tuple[float, float] = SAR_DB_RANGE,
) -> xr.Dataset:
    """Check that ``scene`` follows the scene schema and return it unchanged.

    Checks: the scene is a non-empty Dataset; ``require``-d variables are present; every schema
    variable has the right dims (names and order) and dtype; ``time`` is datetime64 and the
    per-modality dates lie along it; band and polarisation names are known and unique; x/y are
    regularly spaced; labels hold no NaN/inf and lie in their range (buildings 0..1, change 0/1,
    population >= 0); optical reflectance lies in [0, 1] (+/- ``optical_tolerance``, NaN
    allowed); SAR lies in ``sar_db_range`` dB and is not all non-negative (which would mean
    linear power or [0, 1]-scaled values); a CRS is present when ``expect_crs`` is True; the
    ``split`` attr, when present, is one of train/val/test/unlabelled.

    Args:
        scene: the Dataset.
        require: variables that must be present (e.g. ``("optical", "change")``).
        expect_crs: True: a CRS must be present; False/None: not checked.
        check_values: also check value ranges and NaNs (reads the data; dask arrays compute).
        optical_tolerance: allowed excursion of reflectance outside [0, 1].
        sar_db_range: plausible dB range.

    Returns:
        ``scene``, unchanged.

    Raises:
        SceneValidationError: with ``site``, ``variable`` and ``problem`` set.
    """
    if not isinstance(scene, xr.Dataset):
        raise SceneValidationError(
            None, None, f"a scene must be an xarray.Dataset, got {type(scene).__name__}")
    _check_variables(scene, require)
    _check_coords(scene)
    if expect_crs and scene.rio.crs is None:
        _fail(scene, None, "missing CRS: this scene's source is georeferenced, but no CRS is written "
                           "(use scene.rio.write_crs)")
    split = scene.attrs.get("split")
    if split is not None and split not in SPLITS:
        _fail(scene, None, f"attr split={split!r} is not one of {', '.join(SPLITS)}")
    if check_values:
        _check_label_values(scene)
        _check_image_values(scene, optical_tolerance, sar_db_range)
    return scene


def _sar_hint(mn: float, mx: float) -> str:
    """What out-of-range SAR values probably are, and the function that converts them."""
    if mn >= 0 and mx <= 1:
        return "values in [0, 1] look like a scaled export: convert with normalize.unit_to_db(db_range=...)"
    if mn >= 0:
        return "non-negative values look like linear power: convert with normalize.linear_to_db"
    if mn < -100:
        return ("values far below -100 dB: a [0, 1] export decoded twice, or dB converted to dB again? "
                "check the reader's unit option (e.g. s1_unit=)")
    return "check the unit the file was read with (dB, linear power or a [0, 1] export)"


# ---------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------
def scene_summary(scene: xr.Dataset) -> pd.DataFrame:
    """One row per data variable: dims, shape, dtype, min, max, mean and NaN fraction."""
    rows = []
    for name, var in scene.data_vars.items():
        data = var.data
        if _is_lazy(data):
            data = data.compute()
        a = np.asarray(data)
        if a.dtype.kind in "fiub" and a.size:
            af = a.astype(np.float64)
            finite = np.isfinite(af)
            nan_frac = float(np.isnan(af).mean())
            vals = af[finite]
            mn, mx, mean = ((float(vals.min()), float(vals.max()), float(vals.mean())) if vals.size
                            else (np.nan, np.nan, np.nan))
        else:
            mn = mx = mean = nan_frac = np.nan
        rows.append({"variable": name, "dims": "(" + ", ".join(var.dims) + ")",
                     "shape": "x".join(str(s) for s in var.shape), "dtype": str(var.dtype),
                     "min": mn, "max": mx, "mean": mean, "nan_fraction": nan_frac})
    return pd.DataFrame(rows, columns=["variable", "dims", "shape", "dtype", "min", "max", "mean",
                                       "nan_fraction"]).set_index("variable")
