"""Reader for the Onera Satellite Change Detection dataset (OSCD) and its Sentinel-1 extension.

OSCD {cite}`daudt2018oscd` holds 24 Sentinel-2 L1C image pairs (2015-2018) with pixel-wise
labels of urban change. The official layout (IEEE DataPort) is::

    <root>/Onera Satellite Change Detection dataset - Images/
        train.txt, test.txt                 # one line, comma-separated city names
        <city>/dates.txt                    # "date_1: 20160120" / "date_2: 20180328"
        <city>/imgs_1/<anything>_B01.tif .. _B12.tif, _B8A.tif   # native 10/20/60 m, uint16 DN
        <city>/imgs_2/...                   # date 2 (may have a slightly different pixel grid)
        <city>/imgs_1_rect/B01.tif ..       # official 10 m resampled copies (not always present)
        <city>/pair/img1.png, img2.png      # RGB previews (not used)
    <root>/Onera Satellite Change Detection dataset - Train Labels/<city>/cm/{cm.png,<city>-cm.tif}
    <root>/Onera Satellite Change Detection dataset - Test Labels/<city>/cm/...

The DS U-Net layout (``images/``, ``train_labels/``, ``test_labels/``) is accepted as well.

What the reader does (see :func:`read_city`):

- every requested band is read from ``imgs_k_rect`` when that folder holds the band, else from
  ``imgs_k`` at native resolution, converted to reflectance (DN / 10000, clipped to [0, 1];
  DN 0 = no data -> NaN) and **resampled onto the date-1 B02 10 m grid** by georeference with
  rasterio/GDAL ``reproject`` (bilinear by default; ``resampling=`` changes it);
- date 2 is aligned onto the same date-1 grid by georeference, not by array shape (abudhabi,
  saclay_e and others have date-2 rasters a few pixels smaller than date 1);
- every band file, date 2 and each Sentinel-1 file must cover at least ``min_coverage`` (90 %)
  of the date-1 B02 grid (see :func:`urbankit.data.raster.require_coverage`): a band with a
  wrong CRS, a date 2 without overlap or cropped to a corner, or S1 files of another city raise
  a DataFormatError naming the file instead of filling the scene with NaN;
- labels come from ``cm/<city>-cm.tif`` (coded 1 = no change, 2 = change in the real files,
  although the README says 0/1) or, when the TIFF is absent, from ``cm/cm.png`` (RGBA or RGB,
  0 / 255 in channel 0, grey anti-aliased edges > 127 = change). The coding is stated, not
  guessed (:data:`LABEL_CODING`); other values raise, and ``label_coding=`` states another
  coding. The label rasters carry no
  georeference; their grid is the date-1 B02 grid, so their shape must match it;
- Sentinel-1 VV from the DS U-Net export {cite}`hafner2022dsunet`
  (``sentinel1_<city>_<orbit>_t{1,2}.tif``: a 3-month mean before t1 / after t2 per relative
  orbit, value = (sigma0_dB + 25) / 30 clipped to [0, 1]) is decoded to dB, converted to
  linear power, warped onto the label grid (bilinear, in linear power), averaged over the chosen
  orbits **in linear power** and converted back to dB. Pixels at the clip limits stay at
  -25 dB / +5 dB (the export saturates there).

The result is one schema scene (CONTRIBUTING.md) per city with ``optical`` (time=2, band, y, x),
optionally ``sar`` (time=2, polarisation=["VV"], y, x) in dB and ``change`` (y, x) uint8.
Readers never import torch.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from .bands import S2_BAND_NAMES
from .checks import check_dn_dtype, check_finite, check_s1_unit, decode_binary_label, parse_label_coding
from .normalize import DS_UNET_DB_RANGE, db_range_attr
from .raster import DEFAULT_MIN_COVERAGE, Grid, read_raster, require_coverage, warp_to_grid
from .raster import RESAMPLING as _RESAMPLING
from .reader import Reader

__all__ = [
    "OSCD",
    "SAMPLE_CITIES",
    "write_oscd_sample",
    "LICENCE",
    "OSCD_BANDS",
    "OSCD_REGIONS",
    "OSCD_TEST_CITIES",
    "OSCD_TRAIN_CITIES",
    "SOURCE",
    "OSCDPaths",
    "download_oscd",
    "find_layout",
    "list_cities",
    "list_s1_orbits",
    "read_cities",
    "read_city",
    "read_dates",
    "read_label",
    "LABEL_CODING",
    "read_raster",
]

#: The 13 bands of the OSCD files, in OSCD / torchgeo order (= :data:`urbankit.data.bands.S2_BAND_NAMES`).
OSCD_BANDS: tuple[str, ...] = S2_BAND_NAMES

#: The official split (train.txt / test.txt of the dataset, identical to DS U-Net's config).
OSCD_TRAIN_CITIES: tuple[str, ...] = (
    "aguasclaras", "bercy", "bordeaux", "nantes", "paris", "rennes", "saclay_e", "abudhabi",
    "cupertino", "pisa", "beihai", "hongkong", "beirut", "mumbai",
)
OSCD_TEST_CITIES: tuple[str, ...] = (
    "brasilia", "montpellier", "norcia", "rio", "saclay_w", "valencia", "dubai", "lasvegas", "milano",
    "chongqing",
)

#: A coarse region per OSCD city (for per-region tables); unknown cities get "unknown".
OSCD_REGIONS: dict[str, str] = {
    "abudhabi": "middle_east", "dubai": "middle_east", "beirut": "middle_east",
    "aguasclaras": "south_america", "brasilia": "south_america", "rio": "south_america",
    "beihai": "east_asia", "hongkong": "east_asia", "chongqing": "east_asia",
    "mumbai": "south_asia",
    "cupertino": "north_america", "lasvegas": "north_america",
    "bercy": "europe", "bordeaux": "europe", "nantes": "europe", "paris": "europe", "rennes": "europe",
    "saclay_e": "europe", "saclay_w": "europe", "pisa": "europe", "montpellier": "europe",
    "norcia": "europe", "valencia": "europe", "milano": "europe",
}

SOURCE = ("OSCD, Onera Satellite Change Detection dataset (Daudt et al., IGARSS 2018), IEEE DataPort; "
          "Sentinel-1 VV from the DS U-Net repository (Hafner et al., IEEE GRSL 2021)")
LICENCE = ("Contains modified Copernicus Sentinel data 2015-2018; OSCD change labels CC BY-NC-SA 4.0; "
           "Sentinel-1 export from SebastianHafner/DS_UNet (GPL-2.0 repository)")

#: The label coding of each OSCD label file type: (no change, change).
LABEL_CODING: dict[str, str] = {".tif": "1/2", ".png": "0..255"}  # PNG: grey edges, > 127 = change

_IMAGES_DIRS = ("Onera Satellite Change Detection dataset - Images", "images", "Images")
_LABEL_DIRS = ("Onera Satellite Change Detection dataset - Train Labels",
               "Onera Satellite Change Detection dataset - Test Labels",
               "train_labels", "test_labels", "Train Labels", "Test Labels")
_BAND_RE = re.compile(r"(?:^|[_\-.])(B(?:0[1-9]|1[0-2]|8A))\.tiff?$", re.IGNORECASE)
_DATE_RE = re.compile(r"date[_\s]*([12])\s*[:=]\s*(\d{4})-?(\d{2})-?(\d{2})", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------
# layout
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OSCDPaths:
    """Where the parts of an OSCD copy are: the images folder and the label folders found."""

    root: Path
    images: Path
    labels: tuple[Path, ...]


def find_layout(root: str | os.PathLike) -> OSCDPaths:
    """Locate the images folder and label folders of an OSCD copy under ``root``.

    ``root`` may be the folder holding the three "Onera Satellite Change Detection dataset - *"
    folders (or ``images/``, ``train_labels/``, ``test_labels/``), or the images folder itself.
    Raises DataFormatError naming ``root`` when no images folder is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"OSCD root {root} is not a folder")
    images = None
    for name in _IMAGES_DIRS:
        if (root / name).is_dir():
            images = root / name
            break
    if images is None and ((root / "train.txt").is_file() or (root / "test.txt").is_file()):
        images = root
    if images is None:
        raise DataFormatError(
            f"{root}: not an OSCD folder: expected a sub-folder "
            f"'{_IMAGES_DIRS[0]}' (or 'images/') holding train.txt, test.txt and one folder per city"
        )
    labels = [root / name for name in _LABEL_DIRS if (root / name).is_dir() and root / name != images]
    return OSCDPaths(root=root, images=images, labels=tuple(labels))


_CITY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


def _read_split_file(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read the OSCD split file ({exc})") from None
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not a text file (expected comma-separated city names such as "
                              "'abudhabi,aguasclaras,...')") from None
    names = [n.strip() for n in re.split(r"[,\s]+", text) if n.strip()]
    bad = [n for n in names if not _CITY_RE.fullmatch(n)]
    if bad:
        raise DataFormatError(f"{path}: {bad[0]!r} is not a city name (expected comma-separated names of "
                              "letters, digits, '_' and '-')")
    if not names:
        raise DataFormatError(f"{path}: the split file is empty (expected comma-separated city names)")
    return names


def list_cities(root: str | os.PathLike, split: str = "train", *, present_only: bool = True) -> list[str]:
    """City names of an OSCD split, in the order of ``train.txt`` / ``test.txt``.

    Args:
        root: OSCD root (see :func:`find_layout`).
        split: ``"train"``, ``"test"`` or ``"all"`` (train then test).
        present_only: keep only cities whose image folder exists under ``root`` (a partial copy
            such as the shared sample has 9 of the 24 cities).
    """
    if split not in ("train", "test", "all"):
        raise ConfigError(f"OSCD split must be 'train', 'test' or 'all', got {split!r}")
    paths = find_layout(root)
    files = {"train": ["train.txt"], "test": ["test.txt"], "all": ["train.txt", "test.txt"]}[split]
    cities: list[str] = []
    for name in files:
        path = paths.images / name
        if not path.is_file():
            raise DataFormatError(f"{path}: the OSCD split file is missing")
        cities += [c for c in _read_split_file(path) if c not in cities]
    if present_only:
        cities = [c for c in cities if (paths.images / c).is_dir()]
    return cities


def _split_of(paths: OSCDPaths, city: str) -> str:
    for split in ("train", "test"):
        path = paths.images / f"{split}.txt"
        if path.is_file():
            try:
                if city in _read_split_file(path):
                    return split
            except DataFormatError:
                continue
    return "train" if city in OSCD_TRAIN_CITIES else "test" if city in OSCD_TEST_CITIES else "unlabelled"


def read_dates(city_dir: str | os.PathLike) -> tuple[np.datetime64, np.datetime64]:
    """The two acquisition dates of a city from its ``dates.txt`` (``date_1: YYYYMMDD``)."""
    path = Path(city_dir) / "dates.txt"
    if not path.is_file():
        raise DataFormatError(f"{path}: missing (each OSCD city folder has a dates.txt with date_1/date_2)")
    text = path.read_text(encoding="utf-8", errors="replace")
    found: dict[str, np.datetime64] = {}
    for k, y, m, d in _DATE_RE.findall(text):
        try:
            found[k] = np.datetime64(f"{y}-{m}-{d}", "ns")
        except ValueError:
            raise DataFormatError(f"{path}: invalid date {y}{m}{d} for date_{k}") from None
    if set(found) != {"1", "2"}:
        raise DataFormatError(
            f"{path}: expected two lines 'date_1: YYYYMMDD' and 'date_2: YYYYMMDD', got {text.strip()!r}"
        )
    if found["2"] <= found["1"]:
        raise DataFormatError(f"{path}: date_2 ({str(found['2'])[:10]}) is not after date_1 "
                              f"({str(found['1'])[:10]}); the dates are reversed or equal")
    return found["1"], found["2"]


def _band_files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            m = _BAND_RE.search(f.name)
            if m and f.is_file():
                band = m.group(1).upper()
                if band in out:
                    raise DataFormatError(f"{folder}: two files for band {band} ({out[band].name} and "
                                          f"{f.name}); keep one")
                out[band] = f
    return out


def _band_paths(city_dir: Path, date: int, bands: Sequence[str]) -> dict[str, Path]:
    """Path of each band for date 1 or 2: ``imgs_k_rect`` when it has the band, else ``imgs_k``."""
    rect = _band_files(city_dir / f"imgs_{date}_rect")
    native = _band_files(city_dir / f"imgs_{date}")
    if not rect and not native:
        raise DataFormatError(
            f"{city_dir / f'imgs_{date}'}: no band files found (expected *_B01.tif .. *_B12.tif, *_B8A.tif)"
        )
    out = {}
    for band in bands:
        path = rect.get(band) or native.get(band)
        if path is None:
            raise DataFormatError(
                f"{city_dir / f'imgs_{date}'}: band file for {band} is missing (expected a file ending in "
                f"_{band}.tif; found {', '.join(sorted(native)) or 'none'})"
            )
        out[band] = path
    return out


# ----------------------------------------------------------------------------------------------
# raster helpers live in urbankit.data.raster; ``oscd.read_raster`` stays exported as an alias
# because chapter 04 calls it
# ----------------------------------------------------------------------------------------------
def _to_reflectance(dn: np.ndarray, path: Path, dtype) -> np.ndarray:
    """uint16 DN -> float32 reflectance (DN / 10000, clipped to [0, 1]); DN 0 (no data) -> NaN.

    An 8-bit band (not DN x 10000) or +/-inf values raise a DataFormatError naming ``path``.
    """
    from .normalize import s2_to_reflectance

    check_dn_dtype(dtype, path, 10000)
    check_finite(dn, path, "the band")
    refl = np.asarray(s2_to_reflectance(np.asarray(dn, dtype=np.float32), scale=10000, clip=True),
                      dtype=np.float32)
    refl[np.asarray(dn) == 0] = np.nan
    return refl


# ----------------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------------
def _label_candidates(paths: OSCDPaths, city: str) -> list[Path]:
    dirs = [*paths.labels, paths.images]
    return [d / city / "cm" for d in dirs if (d / city / "cm").is_dir()]


def _read_png_channel(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    try:
        with Image.open(path) as im:
            img = np.asarray(im)
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(f"{path}: cannot be read as a PNG ({type(exc).__name__}: {exc})") from None
    return img[..., 0] if img.ndim == 3 else img


def read_label(path: str | os.PathLike, shape: tuple[int, int] | None = None,
               label_coding: str | tuple[int, int] | None = None) -> np.ndarray:
    """Read an OSCD change label (``<city>-cm.tif`` or ``cm.png``) as uint8 0/1 (rows, cols).

    Args:
        path: the label file.
        shape: expected (rows, cols) (the date-1 B02 grid); checked when given.
        label_coding: the file's coding (``"1/2"``, ``"0/1"``, ``"0/255"`` or a (no change,
            change) pair); default the dataset's (:data:`LABEL_CODING`): TIFF 1 = no change,
            2 = change; PNG channel 0, 0 = no change, 255 = change with grey anti-aliased
            edges (> 127 = change; aguasclaras has them), see :data:`checks.GREY_CODING`.

    Raises:
        DataFormatError: naming the file when a value does not fit the coding (an all-1 TIFF is
            "no change" in the 1/2 coding; a PNG coded 0/1 does not fit 0/255), or on a shape
            mismatch.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        arr = read_raster(path, bands=[1])[0][0]
        suffix = ".tif"
    elif suffix == ".png":
        arr = _read_png_channel(path)
    else:
        raise DataFormatError(f"{path}: unknown label format (expected <city>-cm.tif or cm.png)")
    label = decode_binary_label(arr, label_coding or LABEL_CODING[suffix], path)
    if shape is not None and label.shape != tuple(shape):
        raise DataFormatError(
            f"{path}: label is {label.shape[0]}x{label.shape[1]} pixels but the date-1 B02 grid is "
            f"{shape[0]}x{shape[1]} (the label grid must equal the date-1 10 m grid)"
        )
    return label


def _find_label(paths: OSCDPaths, city: str) -> Path | None:
    for cm in _label_candidates(paths, city):
        tifs = [cm / f"{city}-cm.tif", *sorted(cm.glob("*-cm.tif")), *sorted(cm.glob("*.tif"))]
        for tif in tifs:
            if tif.is_file():
                return tif
        if (cm / "cm.png").is_file():
            return cm / "cm.png"
    return None


# ----------------------------------------------------------------------------------------------
# Sentinel-1 (DS U-Net export)
# ----------------------------------------------------------------------------------------------
#: dB range the Sentinel-1 files were scaled from (the DS U-Net export; recorded as ``sar_db_range``)
S1_DB_RANGE: tuple[float, float] = DS_UNET_DB_RANGE
_S1_DB_HINT = ("the DS U-Net export holds (dB + 25) / 30 in [0, 1]; for Sentinel-1 GeoTIFFs in dB use "
               "urbankit.data.generic.read_time_series(s1_paths=..., s1_unit='db')")


def _s1_dir(s1_root: str | os.PathLike) -> Path:
    s1_root = Path(s1_root)
    if not s1_root.is_dir():
        raise DataFormatError(f"Sentinel-1 folder {s1_root} is not a folder")
    if any(s1_root.glob("sentinel1_*.tif")):
        return s1_root
    # the DS U-Net repository keeps them in data/ (an extracted archive adds DS_UNet-<commit>/)
    for cand in (s1_root / "data", *sorted(s1_root.glob("*/data"))):
        if cand.is_dir() and any(cand.glob("sentinel1_*.tif")):
            return cand
    return s1_root


def _s1_files(folder: Path, city: str) -> dict[int, set[str]]:
    pattern = re.compile(rf"^sentinel1_{re.escape(city)}_(\d+)_t([12])\.tif$")
    found: dict[int, set[str]] = {}
    for f in folder.iterdir():
        m = pattern.match(f.name)
        if m:
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    return found


def list_s1_orbits(s1_root: str | os.PathLike, city: str) -> list[int]:
    """Relative orbits with both ``_t1`` and ``_t2`` files for ``city`` in a DS U-Net S1 folder."""
    return sorted(o for o, ts in _s1_files(_s1_dir(s1_root), city).items() if ts == {"1", "2"})


def _choose_orbits(folder: Path, city: str, orbit) -> list[int]:
    found = _s1_files(folder, city)
    available = sorted(o for o, ts in found.items() if ts == {"1", "2"})
    if not found:
        raise DataFormatError(
            f"{folder}: no Sentinel-1 files for {city!r} (expected sentinel1_{city}_<orbit>_t1.tif and _t2.tif)"
        )
    if orbit == "mean":
        orbits = sorted(found)
    elif isinstance(orbit, (int, np.integer)):
        orbits = [int(orbit)]
    elif isinstance(orbit, (list, tuple)) and orbit and all(isinstance(o, (int, np.integer)) for o in orbit):
        orbits = [int(o) for o in orbit]
    else:
        raise ConfigError(f"orbit must be 'mean', an orbit number or a list of them, got {orbit!r}")
    for o in orbits:
        if o in found and found[o] != {"1", "2"}:
            t = ({"1", "2"} - found[o]).pop()
            raise DataFormatError(
                f"{folder / f'sentinel1_{city}_{o}_t{t}.tif'}: missing, but orbit {o} has its other date; "
                f"an orbit needs both dates (restore the file, or choose orbit={available or 'another'})")
    missing = [o for o in orbits if o not in available]
    if missing:
        raise ConfigError(f"Sentinel-1 orbit(s) {missing} not available for {city!r}; available: {available}")
    return orbits


def _s1_linear_on_grid(path: Path, grid: Grid, resampling: str, min_coverage: float) -> np.ndarray:
    """One DS U-Net export file -> linear power on ``grid`` (NaN outside its footprint)."""
    from .normalize import db_to_linear, unit_to_db

    arr, src_grid, _ = read_raster(path, bands=[1])
    unit = arr[0].astype(np.float32)
    if src_grid.crs is None:
        raise DataFormatError(f"{path}: has no CRS; cannot warp it onto the OSCD grid")
    require_coverage(src_grid, grid, path, ref_name="the date-1 B02 grid", min_coverage=min_coverage)
    check_finite(unit, path, "Sentinel-1")
    check_s1_unit(unit, "unit", path, fix=_S1_DB_HINT)
    lin = np.asarray(db_to_linear(np.asarray(unit_to_db(unit, db_range=S1_DB_RANGE), np.float32)),
                     dtype=np.float32)
    return warp_to_grid(lin, src_grid, grid, resampling)


def _read_s1(s1_root, city: str, orbit, grid: Grid, resampling: str,
             min_coverage: float = DEFAULT_MIN_COVERAGE) -> tuple[np.ndarray, list[int], list[Path]]:
    """VV in dB on ``grid`` for t1 and t2: (2, rows, cols), the orbits used and the files read."""
    from .normalize import linear_to_db

    folder = _s1_dir(s1_root)
    orbits = _choose_orbits(folder, city, orbit)
    out = np.empty((2, *grid.shape), dtype=np.float32)
    files = []
    for t in (1, 2):
        acc = np.zeros(grid.shape, dtype=np.float64)
        count = np.zeros(grid.shape, dtype=np.int32)
        for o in orbits:
            path = folder / f"sentinel1_{city}_{o}_t{t}.tif"
            files.append(path)
            warped = _s1_linear_on_grid(path, grid, resampling, min_coverage)
            ok = np.isfinite(warped)
            acc[ok] += warped[ok]
            count[ok] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, acc / np.maximum(count, 1), np.nan)
        out[t - 1] = np.asarray(linear_to_db(mean.astype(np.float32)), dtype=np.float32)
        out[t - 1][count == 0] = np.nan
    return out, orbits, files


# ----------------------------------------------------------------------------------------------
# the reader
# ----------------------------------------------------------------------------------------------
def _resolve_bands(bands) -> tuple[str, ...]:
    from . import bands as band_meta

    names = band_meta.resolve_bands(bands)
    bad = [b for b in names if b not in OSCD_BANDS]
    if bad:
        raise ConfigError(f"OSCD has Sentinel-2 bands {', '.join(OSCD_BANDS)}; not {bad}")
    return names


def _source_files(paths: OSCDPaths, city: str, names: Sequence[str], s1_root, orbit) -> list[Path]:
    city_dir = paths.images / city
    files = [city_dir / "dates.txt", *(_band_paths(city_dir, 1, ("B02", *names)).values()),
             *(_band_paths(city_dir, 2, names).values())]
    files += [p for p in (paths.images / "train.txt", paths.images / "test.txt") if p.is_file()]  # the split
    label = _find_label(paths, city)
    if label is not None:
        files.append(label)
    if s1_root is not None:
        folder = _s1_dir(s1_root)
        orbits = _choose_orbits(folder, city, orbit)
        files += [folder / f"sentinel1_{city}_{o}_t{t}.tif" for o in orbits for t in (1, 2)]
    return files


def read_city(root: str | os.PathLike, city: str, bands: str | Iterable[str] = "all", *,
              s1_root: str | os.PathLike | None = None, orbit: str | int | Sequence[int] = "mean",
              resampling: str = "bilinear", label_coding: str | tuple[int, int] | None = None,
              min_coverage: float = DEFAULT_MIN_COVERAGE, cache: bool = False,
              cache_dir: str | os.PathLike | None = None, validate: bool = True) -> object:
    """Read one OSCD city as a schema scene (an ``xarray.Dataset``).

    Args:
        root: OSCD root (see :func:`find_layout`).
        city: city name as in train.txt/test.txt (e.g. ``"abudhabi"``).
        bands: band subset name (``"rgb"``, ``"rgbn"``, ``"10m"``, ``"10m+20m"``, ``"all"``) or a
            list of band names; the ``band`` coordinate keeps that order.
        s1_root: folder of the DS U-Net Sentinel-1 export (``sentinel1_<city>_<orbit>_t{1,2}.tif``,
            directly or in a ``data/`` sub-folder); None = no ``sar`` variable.
        orbit: ``"mean"`` (all available relative orbits, averaged in linear power), one orbit number,
            or a list of orbit numbers (averaged in linear power).
        resampling: GDAL resampling used to bring 20/60 m bands, date 2 and S1 onto the date-1
            B02 grid (``"bilinear"`` default; ``"nearest"``, ``"cubic"``, ``"average"``, ``"lanczos"``).
        label_coding: coding of the label file (default the dataset's, :data:`LABEL_CODING`:
            TIFF 1 = no change / 2 = change, PNG 0 / 255); values that do not fit raise.
        min_coverage: minimum fraction (0..1) of the date-1 B02 grid that every band file, date 2
            and each Sentinel-1 file must cover (less raises a DataFormatError naming the file).
        cache: store the scene in the scene cache (:mod:`urbankit.data.cache`) and load it from
            there next time (key = options + content fingerprints of the source files, split
            files included).
        cache_dir: cache folder (default: :func:`urbankit.data.cache.default_cache_dir`).
        validate: run :func:`urbankit.data.schema.validate_scene` on the result.

    Returns:
        Dataset with ``optical`` (time=2, band, y, x) float32 reflectance 0..1 (NaN = no data),
        ``sar`` (time=2, polarisation=["VV"], y, x) float32 dB when ``s1_root`` is given, and
        ``change`` (y, x) uint8 when the city has labels; ``time`` = the dates of dates.txt;
        attrs site, region, dataset="oscd", split, source, licence.
    """
    names = _resolve_bands(bands)
    if resampling not in _RESAMPLING:
        raise ConfigError(f"resampling must be one of {_RESAMPLING}, got {resampling!r}")
    if label_coding is not None:
        parse_label_coding(label_coding)
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise ConfigError(f"min_coverage must be in [0, 1], got {min_coverage!r}")
    paths = find_layout(root)
    city_dir = paths.images / city
    if not city_dir.is_dir():
        raise DataFormatError(
            f"{city_dir}: no such OSCD city folder (cities here: {', '.join(list_cities(root, 'all')) or 'none'})"
        )

    opts = {"resampling": resampling, "label_coding": label_coding, "min_coverage": float(min_coverage)}

    def build():
        return _read_city_uncached(paths, city, names, s1_root, orbit, opts, validate)

    if not cache:
        return build()
    from . import cache as scene_cache

    options = {"bands": list(names), "s1_root": str(Path(s1_root).resolve()) if s1_root else None,
               "orbit": orbit if not isinstance(orbit, tuple) else list(orbit), "resampling": resampling,
               "label_coding": list(parse_label_coding(label_coding)) if label_coding else None,
               "min_coverage": float(min_coverage)}
    files = _source_files(paths, city, names, s1_root, orbit)
    return scene_cache.cached_scene("oscd", city, options, files, build, cache_dir=cache_dir)


def _read_optical(city_dir: Path, names: tuple[str, ...], opts: dict) -> tuple[np.ndarray, Grid]:
    """Both dates of every band as reflectance on the date-1 B02 grid: (2, bands, rows, cols)."""
    files1 = _band_paths(city_dir, 1, ("B02", *names))
    files2 = _band_paths(city_dir, 2, names)
    ref_arr, ref, ref_info = read_raster(files1["B02"], bands=[1])
    if ref.crs is None:
        raise DataFormatError(f"{files1['B02']}: has no CRS; the date-1 B02 raster defines the OSCD grid")
    optical = np.empty((2, len(names), *ref.shape), dtype=np.float32)
    for t, files in enumerate((files1, files2)):
        for i, band in enumerate(names):
            if t == 0 and band == "B02":
                dn, grid, info = ref_arr, ref, ref_info
            else:
                dn, grid, info = read_raster(files[band], bands=[1])
            if grid.crs is None:
                raise DataFormatError(f"{files[band]}: has no CRS; cannot align it by georeference")
            require_coverage(grid, ref, files[band], ref_name=f"of date-1 B02 ({files1['B02'].name})",
                             min_coverage=opts["min_coverage"])
            refl = _to_reflectance(dn[0], files[band], info["dtype"])
            optical[t, i] = warp_to_grid(refl, grid, ref, opts["resampling"])
            if not np.isfinite(optical[t, i]).any():
                raise DataFormatError(f"{files[band]}: no valid pixel on the date-1 B02 grid (every value is "
                                      "0 = no data, or NaN); the band file is empty or damaged")
    return optical, ref


def _read_city_uncached(paths: OSCDPaths, city: str, names: tuple[str, ...], s1_root, orbit,
                        opts: dict, validate: bool):
    city_dir = paths.images / city
    d1, d2 = read_dates(city_dir)
    optical, ref = _read_optical(city_dir, names, opts)

    from .schema import make_scene

    attrs = {"grid": "date-1 B02 (10 m)", "resampling": opts["resampling"]}
    change = None
    label_path = _find_label(paths, city)
    if label_path is not None:
        change = read_label(label_path, shape=ref.shape, label_coding=opts["label_coding"])
        attrs["label_file"] = label_path.name
        kind = ".png" if label_path.suffix.lower() == ".png" else ".tif"
        coding = opts["label_coding"] or LABEL_CODING[kind]
        attrs["label_coding"] = coding if isinstance(coding, str) else "/".join(str(v) for v in coding)
    sar = None
    if s1_root is not None:
        sar_db, orbits, _ = _read_s1(s1_root, city, orbit, ref, opts["resampling"], opts["min_coverage"])
        sar = sar_db[:, None]
        attrs["sar_orbits"] = ",".join(str(o) for o in orbits)
        if len(orbits) == 1 and orbit != "mean":  # one relative orbit: a sample of sar_orbit="random"
            attrs["sar_orbit"] = str(orbits[0])
        attrs["sar_db_range"] = db_range_attr(S1_DB_RANGE)
        attrs["sar_processing"] = ("DS U-Net export: 3-month mean before t1 / after t2 per relative orbit; "
                                   "decoded (v*30-25 dB), warped in linear power, orbits averaged in "
                                   "linear power, back to dB")
    return make_scene(optical=optical, sar=sar, change=change, times=[d1, d2], bands=list(names),
                      polarisations=("VV",), transform=ref.transform, crs=ref.crs, site=city,
                      region=OSCD_REGIONS.get(city, "unknown"), dataset="oscd", split=_split_of(paths, city),
                      source=SOURCE, licence=LICENCE, attrs=attrs, validate=validate)


def read_cities(root: str | os.PathLike, split: str = "train", **kwargs) -> list:
    """Read every city of a split that is present under ``root`` (kwargs as :func:`read_city`)."""
    cities = list_cities(root, split)
    if not cities:
        raise DataFormatError(f"{root}: no city folder of the OSCD {split!r} split is present")
    return [read_city(root, c, **kwargs) for c in cities]


def download_oscd(data_root: str | os.PathLike | None = None, *, include_s1: bool = True,
                  allow_unverified: bool = False, **kwargs) -> tuple[Path, Path | None]:
    """Fetch OSCD (and the DS U-Net Sentinel-1 export) with :func:`urbankit.data.download.fetch`.

    The three OSCD zip files come from the public Onera/IMT mirror that torchgeo uses and are
    checked against torchgeo's md5 (the official IEEE DataPort copy needs a login); the same
    happens for files already placed in ``<data_root>/oscd``. The Sentinel-1 export comes from
    the DS U-Net repository at a pinned commit (GitHub archives carry no checksum: pass
    ``allow_unverified=True``). Returns ``(oscd_root, s1_root)`` for :func:`read_city`.
    """
    from .download import fetch

    root = None
    for name in ("oscd_images", "oscd_train_labels", "oscd_test_labels"):
        root = fetch(name, data_root, **kwargs)
    s1 = fetch("oscd_s1", data_root, allow_unverified=allow_unverified, **kwargs) if include_s1 else None
    return Path(root), (_s1_dir(s1) if s1 is not None else None)


# ----------------------------------------------------------------------------------------------
# the embedded sample (synthetic cities in the OSCD layout + the DS U-Net Sentinel-1 export)
# ----------------------------------------------------------------------------------------------
#: sample cities: name -> (region, seed offset, split, date-2 pixel shrink, label png mode)
SAMPLE_CITIES: dict[str, tuple[str, int, str, int, str]] = {
    "riverton": ("north_america", 0, "train", 3, "RGBA"),
    "lakeside": ("sub_saharan_africa", 1, "train", 0, "RGB"),
    "hillcrest": ("south_asia", 2, "test", 0, ""),
}
_SAMPLE_SIZE = 120          # date-1 10 m grid (multiple of 6 so that the 60 m bands tile it)
_SAMPLE_DATES = ("20170310", "20190402")
_SAMPLE_S1_ORBITS = {"riverton": (8, 59), "lakeside": (30,), "hillcrest": (117,)}

_RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
        "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}


def _oscd_city(out: Path, city: str, region: str, seed: int, shrink: int, png_mode: str, labelled: bool) -> None:
    from affine import Affine

    from .sample_files import block_mean, grid, scene_georef, write_png, write_tif
    from .synthetic import make_site

    scene = make_site(site=city, size=_SAMPLE_SIZE, n_dates=12, region=region, seed=seed, growth=0.06,
                      looks=4.4, origin=(400000.0 + 20000 * (seed % 5), 5200000.0))
    t10, crs = scene_georef(scene)
    optical = scene.optical.values[[0, -1]]                       # (2, 13, H, W) reflectance
    city_dir = out / "oscd" / _IMAGES_DIRS[0] / city
    city_dir.mkdir(parents=True, exist_ok=True)
    (city_dir / "dates.txt").write_text(f"date_1: {_SAMPLE_DATES[0]}\ndate_2: {_SAMPLE_DATES[1]}\n", encoding="utf-8")
    prefixes = (f"S2A_OPER_MSI_L1C_TL_SGS__{_SAMPLE_DATES[0]}T104021_A009000_T33UUP_",
                f"T33UUP_{_SAMPLE_DATES[1]}T103021_")
    extent = _SAMPLE_SIZE * t10.a
    for t in range(2):
        for b, band in enumerate(OSCD_BANDS):
            res = _RES[band]
            k = res // 10
            refl = block_mean(optical[t, b], k) if k > 1 else optical[t, b]
            transform = Affine(res, 0, t10.c, 0, -res, t10.f)
            if t == 1 and shrink:
                # date 2 on a slightly coarser grid over the same extent (a few pixels fewer)
                n = refl.shape[0] - max(1, shrink // k)
                px = extent / n
                dst = grid(Affine(px, 0, t10.c, 0, -px, t10.f), (n, n), crs)
                refl = warp_to_grid(refl, grid(transform, refl.shape, crs), dst, "bilinear")
                transform = dst.transform
            dn = np.clip(np.round(np.nan_to_num(refl) * 10000), 1, 65535).astype(np.uint16)
            write_tif(city_dir / f"imgs_{t + 1}" / f"{prefixes[t]}{band}.tif", dn, transform, crs)
    if labelled:
        change = scene.change.values.astype(np.uint8)
        cm = out / "oscd" / _LABEL_DIRS[0] / city / "cm"
        write_tif(cm / f"{city}-cm.tif", (change + 1).astype(np.uint8))      # 1 = no change, 2 = change
        v = change * 255
        img = np.stack([v, v, v, np.full_like(v, 255)], axis=-1) if png_mode == "RGBA" else np.stack([v, v, v], -1)
        write_png(cm / "cm.png", img.astype(np.uint8))
    # Sentinel-1 VV, DS U-Net export: 9 m grid, one pixel of margin, (dB + 25) / 30 clipped
    from .normalize import db_to_linear, db_to_unit, linear_to_db

    vv = scene.sar.sel(polarisation="VV").values[[0, -1]]          # (2, H, W) dB
    px = 9.0
    n = int(np.ceil(extent / px)) + 2
    s1_grid = grid(Affine(px, 0, t10.c - px, 0, -px, t10.f + px), (n, n), crs)
    rng = np.random.default_rng([seed, 101])
    for j, orbit in enumerate(_SAMPLE_S1_ORBITS[city]):
        for t in range(2):
            lin = np.asarray(db_to_linear(vv[t]), dtype=np.float32)
            if j > 0:  # another orbit: an independent speckle-like fluctuation (~4 looks)
                lin = lin * rng.gamma(4.0, 1 / 4.0, size=lin.shape).astype(np.float32)
            warped = warp_to_grid(lin, grid(t10, lin.shape, crs), s1_grid, "bilinear")
            warped = np.where(np.isfinite(warped), warped, np.nanmean(lin))
            unit = np.asarray(db_to_unit(linear_to_db(warped), db_range=(-25.0, 5.0), clip=True), dtype=np.float32)
            write_tif(out / "oscd_s1" / "data" / f"sentinel1_{city}_{orbit}_t{t + 1}.tif", unit,
                       s1_grid.transform, crs, descriptions=["VV"])


def write_oscd_sample(out: Path, seed: int = 0) -> Path:
    """Write the embedded OSCD-style sample: ``out/oscd`` (3 cities) and ``out/oscd_s1``; returns ``out/oscd``."""
    train = [c for c, v in SAMPLE_CITIES.items() if v[2] == "train"]
    test = [c for c, v in SAMPLE_CITIES.items() if v[2] == "test"]
    images = out / "oscd" / _IMAGES_DIRS[0]
    images.mkdir(parents=True, exist_ok=True)
    (images / "train.txt").write_text(",".join(train), encoding="utf-8")
    (images / "test.txt").write_text(",".join(test), encoding="utf-8")
    for city, (region, offset, split, shrink, png_mode) in SAMPLE_CITIES.items():
        _oscd_city(out, city, region, seed + offset, shrink, png_mode, labelled=split == "train")
    return out / "oscd"


# ----------------------------------------------------------------------------------------------
# the reader
# ----------------------------------------------------------------------------------------------
class OSCD(Reader):
    """OSCD (Daudt et al. 2018): 24 cities, two Sentinel-2 L1C dates, change labels for 14.

    Args:
        root: the OSCD folder (:func:`find_layout`).
        split: ``"train"``, ``"test"`` or ``"all"`` (the dataset's train.txt / test.txt).
        bands: band names or a subset name (``"rgb"``, ``"10m"``, ...); None = all 13.
        download, checksum: see :mod:`urbankit.data.reader` (the three OSCD zips, md5-checked).
        s1_root: folder of the DS U-Net Sentinel-1 export (None: no ``sar``).
        orbit: Sentinel-1 orbit rule of :func:`read_city`.
        **options: further :func:`read_city` keywords (``resampling``, ``label_coding``,
            ``min_coverage``, ``cache``, ...).
    """

    key = "oscd"
    title = "OSCD"
    splits = ("train", "test")
    sources = ("oscd_images", "oscd_train_labels", "oscd_test_labels")
    sample_folder = "oscd"

    def __init__(self, root, split: str = "all", bands=None, download: bool = False, checksum: bool = True, *,
                 s1_root=None, orbit="mean", **options):
        super().__init__(root, split, bands, download, checksum)
        self.s1_root, self.orbit, self.options = s1_root, orbit, options

    @property
    def sites(self) -> list[str]:
        """The cities of the split present under ``root``."""
        return list_cities(self.root, self.split)

    def read(self, site: str):
        """The city as a scene (:func:`read_city`)."""
        return read_city(self.root, site, self.bands or "all", s1_root=self.s1_root, orbit=self.orbit,
                         **self.options)

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write the OSCD sample and its Sentinel-1 export under ``folder``; returns ``folder/oscd``."""
        return write_oscd_sample(Path(folder), seed)
