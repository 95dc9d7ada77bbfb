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
    "SCHEMA", "SPLITS", "SAR_POLARISATIONS", "SAR_DB_RANGE", "OPTICAL_TOLERANCE", "make_scene",
    "validate_scene", "scene_summary",
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

_LABELS = ("buildings", "change", "population")


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

    Raises:
        SceneValidationError: shapes disagree across variables or dates, or validation fails.
    """
    arrays: dict[str, Any] = {}
    specs = {"optical": (optical, 4, np.float32), "sar": (sar, 4, np.float32),
             "buildings": (buildings, 3, np.float32), "change": (change, 2, np.uint8),
             "population": (population, 3, np.float32)}
    for name, (arr, ndim, dtype) in specs.items():
        if arr is None:
            continue
        a = _as_array(arr, dtype)
        if a.ndim == ndim - 1 and name != "change":
            a = a[None]
        if a.ndim != ndim:
            raise SceneValidationError(
                site, name, f"expected a {ndim}-D array {SCHEMA[name][0]}, got shape {tuple(a.shape)}")
        arrays[name] = a
    if not arrays:
        raise SceneValidationError(site, None, "empty scene: no optical, sar or label array was given")

    # ---- shapes agree across variables and dates
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

    # ---- coordinates
    h, w = hw
    if transform is not None:
        a_, b_, c_, d_, e_, f_ = _affine_params(transform)
        if b_ != 0 or d_ != 0:
            raise SceneValidationError(site, None, "rotated transforms are not supported (north-up only)")
        from affine import Affine

        ys, xs = pixel_centres(Affine(a_, b_, c_, d_, e_, f_), (h, w))
    else:
        xs = np.asarray(x, dtype=np.float64) if x is not None else np.arange(w) + 0.5
        ys = np.asarray(y, dtype=np.float64) if y is not None else np.arange(h) + 0.5
        if xs.shape != (w,) or ys.shape != (h,):
            raise SceneValidationError(
                site, None, f"x/y coordinates of lengths {xs.shape}/{ys.shape} do not match the "
                            f"grid {h}x{w}")
    coords: dict[str, Any] = {"time": times, "y": ys, "x": xs}
    for cname, dates in (("optical_date", optical_dates), ("sar_date", sar_dates)):
        key = "optical" if cname == "optical_date" else "sar"
        if key in arrays:
            d = times if dates is None else pd.to_datetime(list(dates)).values.astype("datetime64[ns]")
            if len(d) != n_time:
                raise SceneValidationError(site, cname, f"{len(d)} dates given for {n_time} epochs")
            coords[cname] = ("time", d)

    data_vars: dict[str, Any] = {}
    if "optical" in arrays:
        n_b = arrays["optical"].shape[1]
        if bands is None:
            bands = list(S2_BAND_NAMES) if n_b == 13 else (["R", "G", "B"] if n_b == 3 else None)
            if bands is None:
                raise SceneValidationError(site, "optical", f"{n_b} bands: pass their names as bands=")
        if len(bands) != n_b:
            raise SceneValidationError(site, "optical", f"{len(bands)} band names for {n_b} bands")
        coords["band"] = list(bands)
        data_vars["optical"] = (SCHEMA["optical"][0], arrays["optical"],
                                {"units": "reflectance", "long_name": "optical reflectance"})
    if "sar" in arrays:
        n_p = arrays["sar"].shape[1]
        if len(polarisations) != n_p:
            raise SceneValidationError(
                site, "sar", f"{len(polarisations)} polarisation names for {n_p} channels")
        coords["polarisation"] = list(polarisations)
        data_vars["sar"] = (SCHEMA["sar"][0], arrays["sar"],
                            {"units": "dB", "long_name": "backscatter sigma0"})
    label_attrs = {"buildings": {"long_name": "building mask or fraction", "units": "1"},
                   "change": {"long_name": "new built-up between first and last date", "units": "1"},
                   "population": {"long_name": "population", "units": "persons per pixel"}}
    for name in _LABELS:
        if name in arrays:
            data_vars[name] = (SCHEMA[name][0], arrays[name], label_attrs[name])
    ds = xr.Dataset(data_vars, coords=coords)
    for name, item in (extra_vars or {}).items():
        ds[name] = item if isinstance(item, (xr.DataArray, xr.Variable)) else xr.Variable(*item)
    ds.attrs.update({"site": site, "region": region, "dataset": dataset, "split": split,
                     "source": source, "licence": licence})
    ds.attrs.update(attrs or {})
    if crs is not None:
        ds = ds.rio.write_crs(crs, inplace=True)
        if transform is not None:
            from affine import Affine

            ds = ds.rio.write_transform(Affine(*_affine_params(transform)), inplace=True)
        else:
            ds = ds.rio.write_transform(ds.rio.transform(recalc=True), inplace=True)
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

    Raises:
        SceneValidationError: with ``site``, ``variable`` and ``problem`` set.
    """
    if not isinstance(scene, xr.Dataset):
        raise SceneValidationError(
            None, None, f"a scene must be an xarray.Dataset, got {type(scene).__name__}")
    site = scene.attrs.get("site")

    def fail(variable: str | None, problem: str) -> None:
        raise SceneValidationError(site, variable, problem)

    present = [v for v in scene.data_vars]
    if not present:
        fail(None, "empty scene: it has no variables")
    for dim, n in scene.sizes.items():
        if n == 0:
            var = next((v for v in present if dim in scene[v].dims), None)
            fail(var, f"empty scene: dimension {dim!r} has size 0")
    for name in require:
        if name not in scene.data_vars:
            fail(name, f"required variable is missing (present: {', '.join(present) or 'none'})")
    if not any(v in scene.data_vars for v in SCHEMA):
        fail(None, f"empty scene: none of the schema variables {', '.join(SCHEMA)} is present "
                   f"(found {', '.join(present)})")

    # ---- dims and dtypes
    for name, (dims, dtype) in SCHEMA.items():
        if name not in scene.data_vars:
            continue
        var = scene[name]
        if tuple(var.dims) != dims:
            fail(name, f"dims {tuple(var.dims)} do not match the schema {dims}")
        if var.dtype != dtype:
            fail(name, f"dtype {var.dtype} is wrong, expected {dtype}")

    # ---- coordinates
    if "time" in scene.dims:
        if "time" not in scene.coords:
            fail("time", "the time dimension has no coordinate (expected datetime64 epochs)")
        if not np.issubdtype(scene["time"].dtype, np.datetime64):
            fail("time", f"time coordinate has dtype {scene['time'].dtype}, expected datetime64")
    for cname in ("optical_date", "sar_date"):
        if cname in scene.coords:
            c = scene[cname]
            if c.dims != ("time",):
                fail(cname, f"must lie along time, has dims {c.dims}")
            if not np.issubdtype(c.dtype, np.datetime64):
                fail(cname, f"dtype {c.dtype}, expected datetime64")
    if "optical" in scene.data_vars:
        if "band" not in scene.coords:
            fail("optical", "the band dimension has no coordinate of band names")
        names = [str(b) for b in scene["band"].values]
        unknown = [b for b in names if b not in KNOWN_OPTICAL_BANDS]
        if unknown:
            fail("optical", f"unknown band name(s) {unknown}; expected Sentinel-2 names "
                            f"{', '.join(S2_BAND_NAMES)} or VHR R, G, B")
        if len(set(names)) != len(names):
            fail("optical", f"duplicate band names {names}")
    if "sar" in scene.data_vars:
        if "polarisation" not in scene.coords:
            fail("sar", "the polarisation dimension has no coordinate of polarisation names")
        names = [str(p) for p in scene["polarisation"].values]
        unknown = [p for p in names if p not in SAR_POLARISATIONS]
        if unknown:
            fail("sar", f"unknown polarisation name(s) {unknown}; expected {', '.join(SAR_POLARISATIONS)}")
        if len(set(names)) != len(names):
            fail("sar", f"duplicate polarisation names {names}")
    for dim in ("y", "x"):
        if dim in scene.dims and dim in scene.coords and scene.sizes[dim] > 2:
            step = np.diff(np.asarray(scene[dim].values, dtype=np.float64))
            if not (np.all(step > 0) or np.all(step < 0)) or not np.allclose(step, step[0], rtol=1e-6,
                                                                             atol=1e-9):
                fail(dim, f"{dim} coordinates are not regularly spaced pixel centres")

    # ---- CRS
    if expect_crs:
        crs = scene.rio.crs
        if crs is None:
            fail(None, "missing CRS: this scene's source is georeferenced, but no CRS is written "
                       "(use scene.rio.write_crs)")

    # ---- attrs
    split = scene.attrs.get("split")
    if split is not None and split not in SPLITS:
        fail(None, f"attr split={split!r} is not one of {', '.join(SPLITS)}")

    if not check_values:
        return scene

    # ---- values
    for name in _LABELS:
        if name not in scene.data_vars:
            continue
        mn, mx, has_nan, has_inf = _minmax(scene[name])
        if has_nan or has_inf:
            fail(name, "labels contain NaN or inf (labels must be finite; mark unlabelled scenes "
                       "with split='unlabelled' and leave the label out)")
        if name == "buildings" and (mn < 0 or mx > 1):
            fail(name, f"values in [{mn:g}, {mx:g}], expected a mask or fraction in [0, 1]")
        if name == "change" and mx > 1:
            fail(name, f"values up to {mx:g}, expected 0/1")
        if name == "population" and mn < 0:
            fail(name, f"negative values (min {mn:g}), expected persons per pixel >= 0")
    if "optical" in scene.data_vars:
        mn, mx, _, has_inf = _minmax(scene["optical"])
        if has_inf:
            fail("optical", "contains inf (use NaN for no data)")
        if np.isfinite(mn) and (mn < -optical_tolerance or mx > 1 + optical_tolerance):
            hint = " (digital numbers? use normalize.s2_to_reflectance, or /255 for 8-bit RGB)" \
                if mx > 2 else ""
            fail("optical", f"reflectance out of range [{mn:g}, {mx:g}], expected 0..1{hint}")
    if "sar" in scene.data_vars:
        mn, mx, _, has_inf = _minmax(scene["sar"])
        lo, hi = sar_db_range
        if has_inf:
            fail("sar", "contains inf (use NaN for no data; normalize.linear_to_db floors zeros)")
        if np.isfinite(mn):
            if mn < lo or mx > hi:
                fail("sar", f"backscatter out of range [{mn:g}, {mx:g}] dB, expected within "
                            f"[{lo:g}, {hi:g}] dB ({_sar_hint(mn, mx)})")
            n_finite = int(np.isfinite(np.asarray(scene["sar"].values)).sum()) if mn >= 0 else 0
            if mn >= 0 and n_finite >= 16:
                fail("sar", f"all values are >= 0 dB (range [{mn:g}, {mx:g}]): this looks like linear "
                            f"power or [0, 1]-scaled values, not dB (use normalize.linear_to_db / "
                            f"unit_to_db)")
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
