"""Bring your own city: read any Sentinel-2 / Sentinel-1 GeoTIFFs into one schema scene.

:func:`read_time_series` takes lists of GeoTIFFs (one file per date: all S2 bands of that date
in one file, all S1 polarisations of that date in one file) and an optional label raster, and
aligns everything **by georeference** onto one pixel grid: the grid of the first S2 file by
default, or of ``reference``. Files on another grid or in another CRS are reprojected
(rasterio.warp): optical and SAR with bilinear resampling (SAR in linear power, then back to
dB), labels with nearest neighbour. Pixels outside a file's footprint become NaN.

Values are normalised the kit's way (``urbankit.data.normalize``): S2 digital numbers
``/ s2_scale`` (10000) clipped to [0, 1] with the file's nodata (e.g. 0) as NaN; S1 to dB
from ``s1_unit`` = ``"db"`` (as is), ``"linear"`` (power) or ``"unit"`` (values scaled to [0, 1]
from ``db_range``, like the DS U-Net export).

Dates come from ``dates=`` / ``s1_dates=``, else from a ``YYYYMMDD`` or ``YYYY-MM-DD`` in each
file name, else placeholders (monthly from 2000-01-01, noted in ``attrs['time_note']``).
S2 and S1 files are paired by position (the i-th S1 file goes with the i-th S2 date; its own
date rides along as ``sar_date``).

Errors (:class:`~urbankit.errors.DataFormatError`) name the file: missing files, unreadable
files, wrong band counts, a file whose footprint does not overlap the reference grid
(different CRS without overlap included), a reference without CRS.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataFormatError

__all__ = ["read_time_series", "read_geotiff_pair", "S2_L2A_BAND_NAMES"]

_S1_UNITS = ("db", "linear", "unit")


def _s2_names() -> tuple[str, ...]:
    from .bands import S2_BAND_NAMES

    return tuple(S2_BAND_NAMES)


#: The 12 bands of Sentinel-2 L2A products (no B10), in the usual file order.
S2_L2A_BAND_NAMES = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


def _as_list(paths) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _open(path: Path, role: str):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    if not path.is_file():
        raise DataFormatError(f"{path}: {role} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except (RasterioError, OSError) as exc:
        raise DataFormatError(f"{path}: cannot read {role} GeoTIFF ({exc})") from exc


def _norm_band_name(name: str | None) -> str | None:
    """'B1' -> 'B01', 'b8a' -> 'B8A'; None for anything that is not an S2 band name."""
    if not name:
        return None
    m = re.fullmatch(r"[Bb](\d{1,2})([Aa]?)", name.strip())
    if not m:
        return None
    out = f"B{int(m.group(1)):02d}{m.group(2).upper()}"
    return out if out in _s2_names() else None


def _s2_band_names(src, path: Path, s2_bands: Sequence[str] | None) -> list[str]:
    n = src.count
    if s2_bands is not None:
        names = [_norm_band_name(b) or b for b in s2_bands]
        if len(names) != n:
            raise DataFormatError(f"{path}: the file has {n} bands but s2_bands names {len(names)} "
                                  f"({', '.join(names)}); name every band of the file in file order")
        return names
    desc = [_norm_band_name(d) for d in (src.descriptions or ())]
    if len(desc) == n and all(desc) and len(set(desc)) == n:
        return desc  # type: ignore[return-value]
    if n == 13:
        return list(_s2_names())
    if n == 12:
        return list(S2_L2A_BAND_NAMES)
    raise DataFormatError(f"{path}: {n} bands and no S2 band names in the file; expected 13 (L1C) or 12 "
                          f"(L2A) bands, or pass s2_bands=[...] naming the {n} bands in file order")


def _date_from_name(path: Path):
    m = re.search(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)", path.name)
    if not m:
        return None
    try:
        return np.datetime64(f"{m.group(1)}-{m.group(2)}-{m.group(3)}", "ns")
    except ValueError:
        return None


def _dates(paths: list[Path], given, role: str):
    if given is not None:
        given = list(given)
        if len(given) != len(paths):
            raise DataFormatError(f"{len(given)} {role} dates given for {len(paths)} {role} files")
        import pandas as pd

        return pd.to_datetime(given).values.astype("datetime64[ns]"), True
    parsed = [_date_from_name(p) for p in paths]
    if all(d is not None for d in parsed):
        return np.array(parsed, dtype="datetime64[ns]"), True
    return None, False


def _bounds_overlap(src, ref_crs, ref_bounds) -> bool:
    from rasterio.warp import transform_bounds

    b = src.bounds
    if src.crs is not None and ref_crs is not None and src.crs != ref_crs:
        try:
            b = transform_bounds(src.crs, ref_crs, *b, densify_pts=21)
        except Exception:  # noqa: BLE001 - projection failure = no usable overlap
            return False
    left, bottom, right, top = b
    rl, rb, rr, rt = ref_bounds
    return left < rr and right > rl and bottom < rt and top > rb


def _same_grid(src: dict, ref: dict) -> bool:
    return (src["crs"] == ref["crs"] and src["transform"].almost_equals(ref["transform"])
            and (src["height"], src["width"]) == (ref["height"], ref["width"]))


def _warp(src: dict, path: Path, ref, data: np.ndarray, resampling: str) -> np.ndarray:
    """``data`` (bands, h, w) float32 on src's grid -> (bands, H, W) float32 on the reference grid."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    if _same_grid(src, ref):
        return data
    if src["crs"] is None:
        raise DataFormatError(f"{path}: has no CRS, so it cannot be aligned by georeference onto the "
                              f"reference grid ({ref['path']})")
    out = np.full((data.shape[0], ref["height"], ref["width"]), np.nan, np.float32)
    reproject(source=data, destination=out, src_transform=src["transform"], src_crs=src["crs"],
              src_nodata=np.nan, dst_transform=ref["transform"], dst_crs=ref["crs"], dst_nodata=np.nan,
              resampling=getattr(Resampling, resampling))
    return out


def _read_float(src, path: Path) -> np.ndarray:
    data = src.read().astype(np.float32)
    nodata = src.nodata
    if nodata is not None and not np.isnan(nodata):
        data[data == np.float32(nodata)] = np.nan
    data[~np.isfinite(data)] = np.nan
    return data


def read_time_series(s2_paths: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
                     s1_paths: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
                     label_path: str | os.PathLike | None = None, *,
                     s2_bands: Sequence[str] | None = None, s1_pols: Sequence[str] = ("VV", "VH"),
                     s1_unit: str = "db", db_range: tuple[float, float] = (-25.0, 0.0),
                     s2_scale: float = 10000.0, s2_offset: float = 0.0,
                     reference: str | os.PathLike | None = None,
                     dates: Sequence | None = None, s1_dates: Sequence | None = None,
                     label_var: str = "change", label_nodata: float | None = None,
                     resampling: str = "bilinear", site: str | None = None, region: str = "unknown",
                     dataset: str = "user GeoTIFFs", split: str | None = None, source: str = "",
                     licence: str = "", validate: bool = True):
    """Read S2 and/or S1 GeoTIFF time series (+ label) into one scene on a common grid.

    Args:
        s2_paths: one GeoTIFF per date with all S2 bands (DN). Bands named by ``s2_bands``, else
            by the file's band descriptions (``B1``/``B01``...), else 13 bands = L1C order
            B01..B12 with B8A after B08, 12 bands = L2A order (no B10).
        s1_paths: one GeoTIFF per date with the polarisations ``s1_pols`` (in file order).
        label_path: one single-band raster on any grid. ``label_var="change"``: 0/1 (or 0/255)
            change label -> ``change`` uint8 (nodata pixels -> 0, and ``label_valid`` (y, x) uint8
            marks valid pixels); ``label_var="label"``: any class raster -> ``label`` (y, x)
            float32 with NaN for nodata (e.g. Sen1Floods11's -1).
        s1_unit: ``"db"``, ``"linear"`` (power) or ``"unit"`` ([0, 1] scaled from ``db_range``).
        s2_scale, s2_offset: DN -> reflectance ``(dn + offset) / scale``, clipped to [0, 1].
        reference: the file whose grid (CRS, transform, size) the scene uses; default the first
            S2 file, else the first S1 file.
        dates, s1_dates: acquisition dates (else parsed from the file names, else placeholders).
        label_nodata: label value meaning "no data" (default: the file's nodata).
        resampling: rasterio resampling name for optical/SAR (``"bilinear"``, ``"nearest"``, ...).
        site, region, dataset, split, source, licence: provenance attrs (``split`` defaults to
            ``"test"`` with a label and ``"unlabelled"`` without).

    Returns:
        an ``xarray.Dataset`` scene (``optical`` and/or ``sar``, plus the label), validated.
    """
    from rasterio.enums import Resampling

    from .normalize import linear_to_db, s2_to_reflectance, unit_to_db
    from .schema import make_scene

    s2 = _as_list(s2_paths)
    s1 = _as_list(s1_paths)
    if not s2 and not s1:
        raise DataFormatError("read_time_series needs at least one S2 or S1 GeoTIFF (s2_paths / s1_paths)")
    if s1_unit not in _S1_UNITS:
        raise DataFormatError(f"s1_unit must be one of {_S1_UNITS}, not {s1_unit!r}")
    if label_var not in ("change", "label"):
        raise DataFormatError(f"label_var must be 'change' or 'label', not {label_var!r}")
    if not hasattr(Resampling, resampling):
        raise DataFormatError(f"unknown resampling {resampling!r}")
    for p, role in [(p, "S2") for p in s2] + [(p, "S1") for p in s1] + (
            [(Path(label_path), "label")] if label_path is not None else []):
        if not p.is_file():
            raise DataFormatError(f"{p}: {role} file not found")
    if s2 and s1 and len(s2) != len(s1):
        raise DataFormatError(f"{len(s2)} S2 files but {len(s1)} S1 files: S1 and S2 are paired by position "
                              "(one S1 file per S2 date); give as many of each")

    # ---- the reference grid
    ref_path = Path(reference) if reference is not None else (s2[0] if s2 else s1[0])
    with _open(ref_path, "reference") as r:
        if r.crs is None:
            raise DataFormatError(f"{ref_path}: the reference file has no CRS; a georeferenced GeoTIFF is "
                                  "needed to align the files")
        ref = dict(path=ref_path, crs=r.crs, transform=r.transform, height=r.height, width=r.width,
                   bounds=r.bounds)

    def load(path: Path, role: str):
        with _open(path, role) as src:
            if src.crs is not None and not _bounds_overlap(src, ref["crs"], ref["bounds"]):
                raise DataFormatError(
                    f"{path}: its footprint (CRS {src.crs}) does not overlap the reference grid of "
                    f"{ref_path} "
                    f"(CRS {ref['crs']}); the files must cover the same area")
            meta = dict(crs=src.crs, transform=src.transform, height=src.height, width=src.width)
            return meta, _read_float(src, path)

    # ---- Sentinel-2
    optical = band_names = None
    if s2:
        stack = []
        for i, p in enumerate(s2):
            with _open(p, "S2") as src:
                names = _s2_band_names(src, p, s2_bands)
                if band_names is None:
                    band_names = names
                elif names != band_names:
                    raise DataFormatError(f"{p}: bands {names} differ from {band_names} of {s2[0]}")
            src, data = load(p, "S2")
            refl = s2_to_reflectance(data, scale=s2_scale, clip=True, offset=s2_offset)
            stack.append(_warp(src, p, ref, np.asarray(refl, np.float32), resampling))
        optical = np.stack(stack).astype(np.float32)

    # ---- Sentinel-1
    sar = None
    if s1:
        stack = []
        for p in s1:
            with _open(p, "S1") as src:
                if src.count != len(s1_pols):
                    raise DataFormatError(f"{p}: the file has {src.count} band(s) but s1_pols names "
                                          f"{len(s1_pols)} ({', '.join(s1_pols)}); pass s1_pols= naming "
                                          "every band in file order")
            src, data = load(p, "S1")
            if s1_unit == "db":
                db = data
            elif s1_unit == "linear":
                db = np.asarray(linear_to_db(data), np.float32)
            else:
                db = np.asarray(unit_to_db(data, db_range=db_range), np.float32)
            if _same_grid(src, ref):
                stack.append(np.asarray(db, np.float32))
                continue
            # resample in linear power (averaging dB values would bias dark pixels), then back to dB
            linear = np.power(np.float32(10.0), db / np.float32(10.0), dtype=np.float32)
            warped = _warp(src, p, ref, linear, resampling)
            with np.errstate(divide="ignore", invalid="ignore"):
                back = np.asarray(linear_to_db(warped), np.float32)
                stack.append(np.where(np.isfinite(warped), back, np.nan).astype(np.float32))
        sar = np.stack(stack).astype(np.float32)

    # ---- dates
    notes = []
    n_dates = len(s2) if s2 else len(s1)
    s2_times, ok2 = _dates(s2, dates, "S2") if s2 else (None, False)
    s1_times, ok1 = _dates(s1, s1_dates if s2 else (s1_dates if s1_dates is not None else dates), "S1") \
        if s1 else (None, False)
    times = s2_times if s2 else s1_times
    if times is None:
        import pandas as pd

        times = pd.date_range("2000-01-01", periods=n_dates, freq="MS").values.astype("datetime64[ns]")
        notes.append("acquisition dates unknown (not given, not in the file names): time holds monthly "
                     "placeholders from 2000-01-01")
    if s2 and s1 and s1_times is None:
        s1_times = times
        notes.append("S1 dates unknown: sar_date = the S2 dates")

    # ---- label
    change = None
    extra = {}
    if label_path is not None:
        lp = Path(label_path)
        with _open(lp, "label") as src:
            if src.count != 1:
                raise DataFormatError(f"{lp}: a label raster must have 1 band, this one has {src.count}")
            nod = label_nodata if label_nodata is not None else src.nodata
            if src.crs is not None and not _bounds_overlap(src, ref["crs"], ref["bounds"]):
                raise DataFormatError(f"{lp}: its footprint (CRS {src.crs}) does not overlap the reference "
                                      f"grid of {ref_path} (CRS {ref['crs']})")
            lab = src.read(1).astype(np.float32)
            meta = dict(crs=src.crs, transform=src.transform, height=src.height, width=src.width)
        if nod is not None and not np.isnan(nod):
            lab[lab == np.float32(nod)] = np.nan
        lab = _warp(meta, lp, ref, lab[None], "nearest")[0]
        if label_var == "change":
            valid = np.isfinite(lab)
            vals = lab[valid]
            hi = float(vals.max()) if vals.size else 0.0
            if vals.size and (vals.min() < 0 or hi > 255):
                raise DataFormatError(f"{lp}: change label values in [{vals.min():g}, {hi:g}]; "
                                      "expected 0/1 or "
                                      "0/255 (pass label_nodata= for a no-data code)")
            thr = 128 if hi > 1 else 0.5
            change = np.where(valid & (lab >= thr), 1, 0).astype(np.uint8)
            extra["label_valid"] = (("y", "x"), valid.astype(np.uint8))
        else:
            extra["label"] = (("y", "x"), lab.astype(np.float32))

    if split is None:
        split = "test" if label_path is not None else "unlabelled"
    attrs = {"reference_grid": str(ref_path), "files_s2": [str(p) for p in s2],
             "files_s1": [str(p) for p in s1]}
    attrs = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in attrs.items()}
    if notes:
        attrs["time_note"] = "; ".join(notes)
    scene = make_scene(optical=optical, sar=sar, change=change, times=times, bands=band_names,
                       polarisations=tuple(s1_pols), transform=ref["transform"], crs=ref["crs"],
                       sar_dates=s1_times if s1 else None, site=site or (s2[0] if s2 else s1[0]).stem,
                       region=region, dataset=dataset, split=split, source=source or "user-provided GeoTIFFs",
                       licence=licence, extra_vars=extra, attrs=attrs, validate=validate)
    return scene


def read_geotiff_pair(t1: str | os.PathLike, t2: str | os.PathLike,
                      label_path: str | os.PathLike | None = None, *, modality: str = "s2", **kwargs):
    """Two dates of S2 (``modality="s2"``) or S1 (``"s1"``) plus an optional change label.

    A thin wrapper of :func:`read_time_series` (same keyword arguments); the label becomes
    ``change``.
    """
    if modality == "s2":
        return read_time_series(s2_paths=[t1, t2], label_path=label_path, **kwargs)
    if modality == "s1":
        return read_time_series(s1_paths=[t1, t2], label_path=label_path, **kwargs)
    raise DataFormatError(f"modality must be 's2' or 's1', not {modality!r}")
