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

Nothing is guessed from the values: a change label follows ``label_coding`` (``"0/1"`` by
default, ``"1/2"``, ``"0/255"`` or a pair), and values that do not fit raise; a class label
with negative values (Sen1Floods11's -1) needs ``label_nodata=`` (or ``label_classes=`` listing
the negative class); S1 values must fit ``s1_unit``; an 8-bit S2 file is refused unless
``s2_scale`` says how to read it; +/-inf is refused.

Errors (:class:`~urbankit.errors.DataFormatError`) name the file: missing files, unreadable
files, wrong band counts, a file whose footprint does not overlap the reference grid or covers
less than ``min_coverage`` of it (different CRS included: see :mod:`urbankit.data.raster`), a
reference without CRS, dates that do not increase.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from .bands import S2_BAND_NAMES, S2_L2A_BAND_NAMES
from .checks import check_dn_dtype, check_finite, check_s1_unit, decode_binary_label, parse_label_coding
from .normalize import db_range_attr
from .raster import (
    DEFAULT_MIN_COVERAGE,
    RESAMPLING,
    Grid,
    read_grid,
    read_raster,
    require_coverage,
    same_grid,
    warp_to_grid,
)
from .reader import Reader

__all__ = ["GeoTIFFSeries", "SeriesConfig", "read_geotiff_pair", "read_time_series"]

_S1_UNITS = ("db", "linear", "unit")




def _as_list(paths) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _norm_band_name(name: str | None) -> str | None:
    """'B1' -> 'B01', 'b8a' -> 'B8A'; None for anything that is not an S2 band name."""
    if not name:
        return None
    m = re.fullmatch(r"[Bb](\d{1,2})([Aa]?)", name.strip())
    if not m:
        return None
    out = f"B{int(m.group(1)):02d}{m.group(2).upper()}"
    return out if out in S2_BAND_NAMES else None


def _s2_band_names(info: dict, path: Path, s2_bands: Sequence[str] | None) -> list[str]:
    n = info["count"]
    if s2_bands is not None:
        names = [_norm_band_name(b) or b for b in s2_bands]
        if len(names) != n:
            raise DataFormatError(f"{path}: the file has {n} bands but s2_bands names {len(names)} "
                                  f"({', '.join(names)}); name every band of the file in file order")
        return names
    desc = [_norm_band_name(d) for d in (info["descriptions"] or ())]
    if len(desc) == n and all(desc) and len(set(desc)) == n:
        return desc  # type: ignore[return-value]
    if n == 13:
        return list(S2_BAND_NAMES)
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

        times = pd.to_datetime(given).values.astype("datetime64[ns]")
    else:
        parsed = [_date_from_name(p) for p in paths]
        if not all(d is not None for d in parsed):
            return None, False
        times = np.array(parsed, dtype="datetime64[ns]")
    steps = np.diff(times)
    if (steps <= np.timedelta64(0, "ns")).any():
        i = int(np.argmax(steps <= np.timedelta64(0, "ns")))
        raise DataFormatError(
            f"{role} dates must increase with the file order: {paths[i + 1]} is dated "
            f"{str(times[i + 1])[:10]}, not after {str(times[i])[:10]} of {paths[i]} (reversed or "
            "repeated dates; list the files from first to last date)")
    return times, True


class _Reference:
    """The reference grid of a read and the per-file checks against it."""

    def __init__(self, path: Path, min_coverage: float):
        grid, _ = read_grid(path)
        if grid.crs is None:
            raise DataFormatError(f"{path}: the reference file has no CRS; a georeferenced GeoTIFF is "
                                  "needed to align the files")
        self.path, self.grid, self.min_coverage = path, grid, min_coverage

    def load(self, path: Path, role: str) -> tuple[np.ndarray, Grid, dict]:
        """Read ``path`` as float32 (nodata -> NaN) after checking its coverage of the reference."""
        if not path.is_file():
            raise DataFormatError(f"{path}: {role} file not found")
        arr, grid, info = read_raster(path)
        if grid.crs is not None:
            require_coverage(grid, self.grid, path, ref_name=str(self.path), min_coverage=self.min_coverage)
        check_finite(arr, path, role)
        data = arr.astype(np.float32)
        nodata = info["nodata"]
        if nodata is not None and not np.isnan(nodata):
            data[arr == nodata] = np.nan
        return data, grid, info

    def warp(self, data: np.ndarray, grid: Grid, path: Path, resampling: str) -> np.ndarray:
        """``data`` (bands, h, w) on ``grid`` -> (bands, H, W) float32 on the reference grid."""
        if same_grid(grid, self.grid, tol=1e-9 * max(abs(self.grid.transform.a), 1.0)):
            return data
        if grid.crs is None:
            raise DataFormatError(f"{path}: has no CRS, so it cannot be aligned by georeference onto the "
                                  f"reference grid ({self.path})")
        return warp_to_grid(data, grid, self.grid, resampling)


def _read_s2(ref: _Reference, s2: list[Path], s2_bands, s2_scale: float, s2_offset: float, resampling: str):
    from .normalize import s2_to_reflectance

    stack, band_names = [], None
    for p in s2:
        data, grid, info = ref.load(p, "S2")
        names = _s2_band_names(info, p, s2_bands)
        if band_names is None:
            band_names = names
        elif names != band_names:
            raise DataFormatError(f"{p}: bands {names} differ from {band_names} of {s2[0]}")
        check_dn_dtype(info["dtype"], p, s2_scale)
        refl = np.asarray(s2_to_reflectance(data, scale=s2_scale, clip=True, offset=s2_offset), np.float32)
        stack.append(_require_valid(ref.warp(refl, grid, p, resampling), p, ref))
    return np.stack(stack).astype(np.float32), band_names


def _require_valid(data: np.ndarray, path: Path, ref: _Reference) -> np.ndarray:
    """Raise when a file contributes no valid pixel at all to the reference grid."""
    if not np.isfinite(data).any():
        raise DataFormatError(f"{path}: no valid pixel on the reference grid of {ref.path} (every value is "
                              "the file's nodata or NaN); drop the file or fix its nodata value")
    return data


def _read_s1(ref: _Reference, s1: list[Path], s1_pols, s1_unit: str, db_range, resampling: str):
    from .normalize import linear_to_db, unit_to_db

    stack = []
    for p in s1:
        data, grid, info = ref.load(p, "S1")
        if info["count"] != len(s1_pols):
            raise DataFormatError(f"{p}: the file has {info['count']} band(s) but s1_pols names "
                                  f"{len(s1_pols)} ({', '.join(s1_pols)}); pass s1_pols= naming "
                                  "every band in file order")
        check_s1_unit(data, s1_unit, p)
        if s1_unit == "db":
            db = data
        elif s1_unit == "linear":
            db = np.asarray(linear_to_db(data), np.float32)
        else:
            db = np.asarray(unit_to_db(data, db_range=db_range), np.float32)
        if same_grid(grid, ref.grid):
            stack.append(_require_valid(np.asarray(db, np.float32), p, ref))
            continue
        # resample in linear power (averaging dB values would bias dark pixels), then back to dB
        linear = np.power(np.float32(10.0), db / np.float32(10.0), dtype=np.float32)
        warped = ref.warp(linear, grid, p, resampling)
        with np.errstate(divide="ignore", invalid="ignore"):
            back = np.asarray(linear_to_db(warped), np.float32)
            back = np.where(np.isfinite(warped), back, np.nan).astype(np.float32)
            stack.append(_require_valid(back, p, ref))
    return np.stack(stack).astype(np.float32)


def _read_label(ref: _Reference, lp: Path, label_var: str, label_nodata, label_coding, label_classes):
    data, grid, info = ref.load(lp, "label")
    if info["count"] != 1:
        raise DataFormatError(f"{lp}: a label raster must have 1 band, this one has {info['count']}")
    lab = data[0]
    if label_nodata is not None and not np.isnan(label_nodata):
        lab[lab == np.float32(label_nodata)] = np.nan
    lab = ref.warp(lab[None], grid, lp, "nearest")[0]
    valid = np.isfinite(lab)
    if label_var == "change":
        change = decode_binary_label(np.where(valid, lab, 0), label_coding, lp, valid=valid)
        return change, {"label_valid": (("y", "x"), valid.astype(np.uint8))}
    values = set(np.unique(lab[valid]).tolist())
    if label_classes is not None:
        extra = sorted(values - {float(c) for c in label_classes})
        if extra:
            raise DataFormatError(f"{lp}: label values {extra[:8]} are not among label_classes="
                                  f"{list(label_classes)} (pass label_nodata= for a no-data code)")
    elif any(v < 0 for v in values):
        raise DataFormatError(
            f"{lp}: class label holds negative values {sorted(v for v in values if v < 0)[:4]} and no "
            "no-data code is known: pass label_nodata=-1 when -1 means no data (Sen1Floods11), or "
            "label_classes=[...] to keep negative values as classes")
    return None, {"label": (("y", "x"), lab.astype(np.float32))}


def _check_args(s2, s1, label_path, s1_unit: str, label_var: str, resampling: str, label_coding) -> None:
    if not s2 and not s1:
        raise DataFormatError("read_time_series needs at least one S2 or S1 GeoTIFF (s2_paths / s1_paths)")
    if s1_unit not in _S1_UNITS:
        raise DataFormatError(f"s1_unit must be one of {_S1_UNITS}, not {s1_unit!r}")
    if label_var not in ("change", "label"):
        raise DataFormatError(f"label_var must be 'change' or 'label', not {label_var!r}")
    if resampling not in RESAMPLING:
        raise DataFormatError(f"unknown resampling {resampling!r} (one of {', '.join(RESAMPLING)})")
    parse_label_coding(label_coding)
    for p, role in [(p, "S2") for p in s2] + [(p, "S1") for p in s1] + (
            [(Path(label_path), "label")] if label_path is not None else []):
        if not p.is_file():
            raise DataFormatError(f"{p}: {role} file not found")
    if s2 and s1 and len(s2) != len(s1):
        raise DataFormatError(f"{len(s2)} S2 files but {len(s1)} S1 files: S1 and S2 are paired by position "
                              "(one S1 file per S2 date); give as many of each")


def _times(s2, s1, dates, s1_dates, notes: list[str]):
    n_dates = len(s2) if s2 else len(s1)
    s2_times, _ = _dates(s2, dates, "S2") if s2 else (None, False)
    s1_times, _ = _dates(s1, s1_dates if s2 else (s1_dates if s1_dates is not None else dates), "S1") \
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
    return times, s1_times


@dataclass(frozen=True)
class SeriesConfig:
    """How to read a GeoTIFF series: units, codings, bands, resampling and provenance.

    Attributes:
        s2_bands: names of the S2 file bands; None: the file's band descriptions (``B1``/``B01``...),
            else 13 bands = L1C order B01..B12 with B8A after B08, 12 bands = L2A order (no B10).
        s1_pols: the polarisations of each S1 file, in file order.
        s1_unit: ``"db"``, ``"linear"`` (power) or ``"unit"`` ([0, 1] scaled from ``db_range``);
            values that do not fit raise.
        db_range: the dB range of ``s1_unit="unit"`` files; stored as the scene's ``sar_db_range``.
        s2_scale, s2_offset: DN -> reflectance ``(dn + offset) / scale``, clipped to [0, 1]; an
            8-bit file needs a scale of at most 255.
        label_var: ``"change"``: a binary change label coded as ``label_coding`` -> ``change`` uint8
            (nodata pixels -> 0, and ``label_valid`` (y, x) uint8 marks valid pixels); ``"label"``:
            any class raster -> ``label`` (y, x) float32 with NaN for nodata.
        label_nodata: label value meaning "no data" (default: the file's nodata).
        label_coding: coding of a change label: ``"0/1"`` (default), ``"1/2"`` (1 = no change,
            2 = change), ``"0/255"`` or a (no-change, change) pair; other values raise.
        label_classes: for ``label_var="label"``: the allowed class values (others raise);
            default: any non-negative value (a negative value needs ``label_nodata``).
        min_coverage: minimum fraction (0..1) of the reference grid that every file must cover.
        resampling: rasterio resampling name for optical/SAR (``"bilinear"``, ``"nearest"``, ...).
        region, source, licence: provenance attrs.
        validate: run the schema validator on the result.
    """

    s2_bands: Sequence[str] | None = None
    s1_pols: Sequence[str] = ("VV", "VH")
    s1_unit: str = "db"
    db_range: tuple[float, float] = (-25.0, 0.0)
    s2_scale: float = 10000.0
    s2_offset: float = 0.0
    label_var: str = "change"
    label_nodata: float | None = None
    label_coding: str | tuple[int, int] = "0/1"
    label_classes: Sequence[float] | None = None
    min_coverage: float = DEFAULT_MIN_COVERAGE
    resampling: str = "bilinear"
    region: str = "unknown"
    source: str = ""
    licence: str = ""
    validate: bool = True


def _config(config: SeriesConfig | None, options: dict) -> SeriesConfig:
    known = {f.name for f in fields(SeriesConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"read_time_series: unknown option(s) {unknown}; SeriesConfig has {sorted(known)}")
    return replace(config or SeriesConfig(), **options)


def read_time_series(s2_paths: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
                     s1_paths: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
                     label_path: str | os.PathLike | None = None, *, reference: str | os.PathLike | None = None,
                     dates: Sequence | None = None, s1_dates: Sequence | None = None, site: str | None = None,
                     split: str | None = None, config: SeriesConfig | None = None, **options):
    """Read S2 and/or S1 GeoTIFF time series (+ label) into one scene on a common grid.

    Args:
        s2_paths: one GeoTIFF per date with all S2 bands (DN).
        s1_paths: one GeoTIFF per date with the polarisations ``config.s1_pols`` (in file order).
        label_path: one single-band raster on any grid (read as ``config.label_var``).
        reference: the file whose grid (CRS, transform, size) the scene uses; default the first
            S2 file, else the first S1 file.
        dates, s1_dates: acquisition dates, increasing (else parsed from the file names, else
            placeholders).
        site: the site name (default: the first file's stem).
        split: default ``"test"`` with a label and ``"unlabelled"`` without.
        config: how to read the files (:class:`SeriesConfig`).
        **options: :class:`SeriesConfig` fields overriding ``config`` (e.g. ``s1_unit="linear"``).

    Returns:
        an ``xarray.Dataset`` scene (``optical`` and/or ``sar``, plus the label), validated;
        ``attrs["dataset"] = "geotiff"`` (:mod:`urbankit.data.reader`).
    """
    from .schema import make_scene

    cfg = _config(config, options)
    s2, s1 = _as_list(s2_paths), _as_list(s1_paths)
    _check_args(s2, s1, label_path, cfg.s1_unit, cfg.label_var, cfg.resampling, cfg.label_coding)
    ref = _Reference(Path(reference) if reference is not None else (s2[0] if s2 else s1[0]), cfg.min_coverage)
    optical, band_names = (_read_s2(ref, s2, cfg.s2_bands, cfg.s2_scale, cfg.s2_offset, cfg.resampling)
                           if s2 else (None, None))
    sar = _read_s1(ref, s1, cfg.s1_pols, cfg.s1_unit, cfg.db_range, cfg.resampling) if s1 else None
    notes: list[str] = []
    times, s1_times = _times(s2, s1, dates, s1_dates, notes)
    change, extra = None, {}
    if label_path is not None:
        change, extra = _read_label(ref, Path(label_path), cfg.label_var, cfg.label_nodata, cfg.label_coding,
                                    cfg.label_classes)
    if split is None:
        split = "test" if label_path is not None else "unlabelled"
    attrs = {"reference_grid": str(ref.path), "files_s2": ", ".join(str(p) for p in s2),
             "files_s1": ", ".join(str(p) for p in s1), "min_coverage": float(cfg.min_coverage)}
    if label_path is not None and cfg.label_var == "change":
        attrs["label_coding"] = "/".join(str(v) for v in parse_label_coding(cfg.label_coding))
    if notes:
        attrs["time_note"] = "; ".join(notes)
    if s1 and cfg.s1_unit == "unit":
        attrs["sar_db_range"] = db_range_attr(cfg.db_range)
    return make_scene(optical=optical, sar=sar, change=change, times=times, bands=band_names,
                      polarisations=tuple(cfg.s1_pols), transform=ref.grid.transform, crs=ref.grid.crs,
                      sar_dates=s1_times if s1 else None, site=site or (s2[0] if s2 else s1[0]).stem,
                      region=cfg.region, dataset=GeoTIFFSeries.key, split=split,
                      source=cfg.source or "user-provided GeoTIFFs", licence=cfg.licence, extra_vars=extra,
                      attrs=attrs, validate=cfg.validate)


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


# ----------------------------------------------------------------------------------------------
# the reader: a folder of sites, each a GeoTIFF series
# ----------------------------------------------------------------------------------------------
class GeoTIFFSeries(Reader):
    """Your own GeoTIFFs as a dataset: one folder per site, every site read by :func:`read_time_series`.

    Layout: ``root/<site>/{s2,s1}/*.tif`` (one file per date, in name order) and an optional
    ``root/<site>/label.tif``.

    Args:
        root: the folder of site folders.
        split: ``"all"``, or the split of every site (``train``/``val``/``test``/``unlabelled``).
        bands: names of the S2 file bands (:attr:`SeriesConfig.s2_bands`).
        download, checksum: no registry entry (your own files): ``download=True`` raises.
        config: :class:`SeriesConfig` for every site.
    """

    key = "geotiff"
    title = "GeoTIFF series"
    splits = ("train", "val", "test", "unlabelled")

    def __init__(self, root, split: str = "all", bands=None, download: bool = False, checksum: bool = True, *,
                 config: SeriesConfig | None = None):
        super().__init__(root, split, bands, download, checksum)
        self.config = replace(config or SeriesConfig(), s2_bands=self.bands) if bands else (config or SeriesConfig())
        if not self.root.is_dir():
            raise DataFormatError(f"{self.root}: GeoTIFF series folder not found")

    def files(self, site: str) -> tuple[list[Path], list[Path], Path | None]:
        """``(s2 files, s1 files, label or None)`` of ``site``."""
        folder = self.root / site
        if not folder.is_dir():
            raise DataFormatError(f"{folder}: no such site folder (sites here: {', '.join(self.sites) or 'none'})")
        s2, s1 = (sorted((folder / m).glob("*.tif")) for m in ("s2", "s1"))
        label = folder / "label.tif"
        return s2, s1, label if label.is_file() else None

    @property
    def sites(self) -> list[str]:
        """Site folders holding an ``s2/`` or ``s1/`` GeoTIFF."""
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and any((p / m).glob("*.tif") for m in ("s2", "s1")))

    def read(self, site: str):
        """The site's series as one scene (:func:`read_time_series`)."""
        s2, s1, label = self.files(site)
        return read_time_series(s2 or None, s1 or None, label, site=site,
                                split=None if self.split == "all" else self.split, config=self.config)

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write one synthetic 32 x 32 site (3 S2 dates of 13 bands, 3 S1 dates, a 0/1 change label)."""
        from .sample_files import scene_georef, write_tif
        from .synthetic import make_site

        root = Path(folder) / cls.key
        scene = make_site(site="twin", size=32, n_dates=3, seed=seed, start="2020-01-01")
        transform, crs = scene_georef(scene)
        for t, day in enumerate(np.datetime_as_string(scene["time"].values, unit="D")):
            dn = np.round(np.clip(scene.optical.values[t], 0, 1) * 10000).astype(np.uint16)
            write_tif(root / "twin" / "s2" / f"s2_{day}.tif", dn, transform, crs)
            write_tif(root / "twin" / "s1" / f"s1_{day}.tif", scene.sar.values[t].astype(np.float32), transform, crs)
        write_tif(root / "twin" / "label.tif", scene.change.values.astype(np.uint8), transform, crs)
        return root
