"""Reader for SpaceNet7-S1S2, the "SEN12 Multi-Temporal Urban Mapping" dataset of Hafner et al.

The dataset {cite}`hafner2023sen12mtum` (Zenodo, doi 10.5281/zenodo.7794693) enriches the
SpaceNet 7 areas of interest (AOIs, e.g. ``L15-0331E-1257N_1327_3160_13``) with monthly
Sentinel-1 and Sentinel-2 rasters at 10 m and monthly building-percentage rasters. Layout::

    <root>/metadata.json                 # per site: list of {year, month, s1, s2, buildings, masked}
    <root>/bad_data.json                 # optional: per site {"S1": [i, ...], "S2": [i, ...]}
    <root>/spacenet7_regions.json        # optional: region code per site
    <root>/<site>/sentinel1/sentinel1_<site>_<year>_<MM>.tif   # 2 bands VV, VH in [0, 1]
    <root>/<site>/sentinel2/sentinel2_<site>_<year>_<MM>.tif   # 10 bands B2..B12 reflectance 0..1
    <root>/<site>/buildings/buildings_<site>_<year>_<MM>.tif   # building percentage 0..1

The published code of the Remote Sensing 2023 paper (``SebastianHafner/SemiSupervisedMultiModalCD``)
names the folders ``s1``/``s2`` with files ``s1_<site>_<year>_<MM>.tif``; both spellings are
accepted. The real files were not available when this reader was written; it follows the
published code and data description and states its assumptions:

- **months** are zero-padded (``2018_01``); an unpadded month (``2018_1``) is also found;
- **metadata.json**: ``{site: [{"year", "month", "s1", "s2", "buildings", "masked"}, ...]}``
  (the published file); the flag aliases ``sentinel1``/``sentinel2``/``label``/``mask`` and a
  top-level ``{"sites": {...}}`` wrapper are accepted. Without metadata.json the timestamps are
  inferred from the files present (``masked`` = False);
- **bad_data.json**: indices into the site's metadata list whose S1 (``"S1"``) or S2 (``"S2"``)
  image is bad; those images are treated as unavailable;
- **S1**: VV, VH linearly scaled from [-25, 0] dB to [0, 1] (the dataset's ``unitScale(-25, 0)``);
  decoded back to dB here; **S2**: 10 bands ``B02 B03 B04 B05 B06 B07 B08 B8A B11 B12`` as
  reflectance 0..1 (an integer file is taken as DN and divided by 10000); **buildings**: the
  fraction of each 10 m pixel covered by SpaceNet 7 footprints, 0..1 (a file whose maximum
  exceeds 1 is taken as percent and divided by 100; NaN becomes 0, labels carry no NaN); built-up =
  fraction > 0;
- **spacenet7_regions.json**: either ``{site: region}`` or ``{region: [site, ...]}``;
- all rasters of a site share one grid; a raster on a slightly different grid is warped onto the
  grid of the site's first raster by georeference (bilinear; buildings: bilinear on fractions).

Change between two dates follows the dataset's convention (Hafner et al. 2023, Remote Sensing): built at the later
date AND not built at the earlier one (construction only). Anything that differs from the
assumptions raises :class:`urbankit.errors.DataFormatError` naming the file and what was expected.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from .bands import BANDS_10M_20M, S1_POLARISATION_NAMES
from .checks import check_dn_dtype, check_finite, check_s1_unit
from .normalize import SEN12_MTUM_DB_RANGE, db_range_attr
from .raster import Grid, read_raster, require_coverage, same_grid, warp_to_grid
from .reader import Reader
from .schema import change_from_buildings

__all__ = [
    "SAMPLE_SITES",
    "SpaceNet7",
    "write_spacenet7_sample",
    "LICENCE",
    "PUBLISHED_LABEL_FRACTIONS",
    "PUBLISHED_SPLIT",
    "S1_DB_RANGE",
    "S1_FILE_POLARISATIONS",
    "S2_FILE_BANDS",
    "SOURCE",
    "Timestamp",
    "change_from_buildings",
    "domain_gap_split",
    "download_spacenet7",
    "label_fraction_ids",
    "list_sites",
    "published_label_fraction",
    "read_bad_data",
    "read_metadata",
    "read_regions",
    "read_site",
    "read_sites",
    "site_timestamps",
    "split_of",
]

#: The 10 Sentinel-2 bands of the S2 files, in file order (Hafner: B2,B3,B4,B5,B6,B7,B8,B8A,B11,B12).
S2_FILE_BANDS: tuple[str, ...] = BANDS_10M_20M
#: The two polarisations of the S1 files, in file order.
S1_FILE_POLARISATIONS: tuple[str, ...] = S1_POLARISATION_NAMES
#: dB range that the S1 files were scaled from ([0, 1] = -25..0 dB).
S1_DB_RANGE: tuple[float, float] = SEN12_MTUM_DB_RANGE

SOURCE = ("SpaceNet7-S1S2 / SEN12 Multi-Temporal Urban Mapping (Hafner, Ban, Nascetti 2023), "
          "Zenodo doi 10.5281/zenodo.7794693; labels from SpaceNet 7 (Van Etten et al. 2021)")
LICENCE = ("Contains modified Copernicus Sentinel data; SpaceNet 7 building labels CC BY-SA 4.0; "
           "see the Zenodo record for the dataset licence")

# The published split of Hafner, Ban & Nascetti (Remote Sensing 2023), configs/base.yaml of
# SebastianHafner/SemiSupervisedMultiModalCD: 30 train / 15 validation / 14 test labelled AOIs
# and 20 unlabelled AOIs (the SpaceNet 7 test AOIs).
PUBLISHED_SPLIT: dict[str, tuple[str, ...]] = {
    "train": (
        "L15-0331E-1257N_1327_3160_13", "L15-0358E-1220N_1433_3310_13", "L15-0457E-1135N_1831_3648_13",
        "L15-0487E-1246N_1950_3207_13", "L15-0577E-1243N_2309_3217_13", "L15-0586E-1127N_2345_3680_13",
        "L15-0595E-1278N_2383_3079_13", "L15-0632E-0892N_2528_4620_13", "L15-0683E-1006N_2732_4164_13",
        "L15-0924E-1108N_3699_3757_13", "L15-1015E-1062N_4061_3941_13", "L15-1138E-1216N_4553_3325_13",
        "L15-1203E-1203N_4815_3378_13", "L15-1204E-1202N_4816_3380_13", "L15-1209E-1113N_4838_3737_13",
        "L15-1210E-1025N_4840_4088_13", "L15-1276E-1107N_5105_3761_13", "L15-1298E-1322N_5193_2903_13",
        "L15-1389E-1284N_5557_3054_13", "L15-1438E-1134N_5753_3655_13", "L15-1439E-1134N_5759_3655_13",
        "L15-1481E-1119N_5927_3715_13", "L15-1538E-1163N_6154_3539_13", "L15-1615E-1206N_6460_3366_13",
        "L15-1669E-1153N_6678_3579_13", "L15-1669E-1160N_6679_3549_13", "L15-1672E-1207N_6691_3363_13",
        "L15-1703E-1219N_6813_3313_13", "L15-1709E-1112N_6838_3742_13", "L15-1716E-1211N_6864_3345_13",
    ),
    "val": (
        "L15-0357E-1223N_1429_3296_13", "L15-0361E-1300N_1446_2989_13", "L15-0368E-1245N_1474_3210_13",
        "L15-0566E-1185N_2265_3451_13", "L15-0614E-0946N_2459_4406_13", "L15-0760E-0887N_3041_4643_13",
        "L15-1014E-1375N_4056_2688_13", "L15-1049E-1370N_4196_2710_13", "L15-1185E-0935N_4742_4450_13",
        "L15-1289E-1169N_5156_3514_13", "L15-1296E-1198N_5184_3399_13", "L15-1615E-1205N_6460_3370_13",
        "L15-1617E-1207N_6468_3360_13", "L15-1669E-1160N_6678_3548_13", "L15-1748E-1247N_6993_3202_13",
    ),
    "test": (
        "L15-0387E-1276N_1549_3087_13", "L15-0434E-1218N_1736_3318_13", "L15-0506E-1204N_2027_3374_13",
        "L15-0544E-1228N_2176_3279_13", "L15-0977E-1187N_3911_3441_13", "L15-1025E-1366N_4102_2726_13",
        "L15-1172E-1306N_4688_2967_13", "L15-1200E-0847N_4802_4803_13", "L15-1204E-1204N_4819_3372_13",
        "L15-1335E-1166N_5342_3524_13", "L15-1479E-1101N_5916_3785_13", "L15-1690E-1211N_6763_3346_13",
        "L15-1691E-1211N_6764_3347_13", "L15-1848E-0793N_7394_5018_13",
    ),
    "unlabelled": (
        "L15-0369E-1244N_1479_3214_13", "L15-0391E-1219N_1567_3314_13", "L15-0509E-1108N_2037_3758_13",
        "L15-0571E-1302N_2284_2983_13", "L15-0697E-0874N_2789_4694_13", "L15-0744E-0927N_2979_4481_13",
        "L15-1031E-1300N_4127_2991_13", "L15-1129E-0819N_4517_4915_13", "L15-1203E-1203N_4815_3379_13",
        "L15-1213E-1238N_4852_3239_13", "L15-1249E-1167N_4999_3521_13", "L15-1281E-1035N_5125_4049_13",
        "L15-1438E-1227N_5753_3282_13", "L15-1546E-1154N_6186_3574_13", "L15-1615E-1205N_6461_3368_13",
        "L15-1630E-0988N_6522_4239_13", "L15-1666E-1189N_6665_3433_13", "L15-1670E-1159N_6681_3552_13",
        "L15-1690E-1210N_6762_3348_13", "L15-1749E-1266N_6997_3126_13",
    ),
}

#: The published label-fraction subsets of the train AOIs (10 % = 3, 20 % = 6, 40 % = 12, 100 % = 30).
PUBLISHED_LABEL_FRACTIONS: dict[int, tuple[str, ...]] = {
    10: ("L15-0632E-0892N_2528_4620_13", "L15-1204E-1202N_4816_3380_13", "L15-1438E-1134N_5753_3655_13"),
    20: ("L15-0331E-1257N_1327_3160_13", "L15-0632E-0892N_2528_4620_13", "L15-1204E-1202N_4816_3380_13",
         "L15-1276E-1107N_5105_3761_13", "L15-1438E-1134N_5753_3655_13", "L15-1669E-1160N_6679_3549_13"),
    40: ("L15-0331E-1257N_1327_3160_13", "L15-0457E-1135N_1831_3648_13", "L15-0632E-0892N_2528_4620_13",
         "L15-0683E-1006N_2732_4164_13", "L15-1203E-1203N_4815_3378_13", "L15-1204E-1202N_4816_3380_13",
         "L15-1209E-1113N_4838_3737_13", "L15-1276E-1107N_5105_3761_13", "L15-1298E-1322N_5193_2903_13",
         "L15-1438E-1134N_5753_3655_13", "L15-1538E-1163N_6154_3539_13", "L15-1669E-1160N_6679_3549_13"),
    100: PUBLISHED_SPLIT["train"],
}

_MODALITY_DIRS = {"s1": ("sentinel1", "s1"), "s2": ("sentinel2", "s2"), "buildings": ("buildings",)}
_FLAG_ALIASES = {"s1": ("s1", "sentinel1", "S1"), "s2": ("s2", "sentinel2", "S2"),
                 "buildings": ("buildings", "label", "labels"), "masked": ("masked", "mask")}
_REGION_FILES = ("spacenet7_regions.json", "regions.json")
_SPLITS = ("train", "val", "test", "unlabelled")


# ----------------------------------------------------------------------------------------------
# metadata
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timestamp:
    """One monthly timestamp of a site and what is available for it."""

    year: int
    month: int
    s1: bool = True
    s2: bool = True
    buildings: bool = True
    masked: bool = False

    @property
    def date(self) -> np.datetime64:
        """The first day of the month (datetime64[ns])."""
        return np.datetime64(f"{self.year:04d}-{self.month:02d}-01", "ns")


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc})") from None


def _flag(entry: Mapping, name: str, default: bool, path: Path, site: str) -> bool:
    for key in _FLAG_ALIASES[name]:
        if key in entry:
            return bool(entry[key])
    return default


def _parse_entry(entry, path: Path, site: str) -> Timestamp:
    if isinstance(entry, Mapping):
        try:
            year, month = int(entry["year"]), int(entry["month"])
        except (KeyError, TypeError, ValueError):
            raise DataFormatError(
                f"{path}: site {site!r} has a timestamp without integer 'year' and 'month': {entry!r}"
            ) from None
        ts = Timestamp(year, month, _flag(entry, "s1", True, path, site), _flag(entry, "s2", True, path, site),
                       _flag(entry, "buildings", True, path, site), _flag(entry, "masked", False, path, site))
    elif isinstance(entry, (list, tuple)) and len(entry) >= 2:
        # older layout: [year, month, masked, s1, s2]
        year, month = int(entry[0]), int(entry[1])
        masked = bool(entry[2]) if len(entry) > 2 else False
        s1 = bool(entry[3]) if len(entry) > 3 else True
        s2 = bool(entry[4]) if len(entry) > 4 else True
        ts = Timestamp(year, month, s1, s2, True, masked)
    else:
        raise DataFormatError(f"{path}: site {site!r} has a timestamp entry of unknown form: {entry!r}")
    if not 1 <= ts.month <= 12:
        raise DataFormatError(f"{path}: site {site!r} has month {ts.month} (expected 1..12)")
    return ts


def _find_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"SpaceNet7-S1S2 root {root} is not a folder")
    if not (root / "metadata.json").is_file() and not _site_folders(root):
        # an extracted archive may add one folder level: use the folder holding metadata.json
        inner = sorted(p.parent for p in root.glob("*/metadata.json"))
        if len(inner) == 1:
            return inner[0]
    return root


def _site_dir_has_data(folder: Path) -> bool:
    return any((folder / d).is_dir() for dirs in _MODALITY_DIRS.values() for d in dirs)


def read_metadata(root: str | os.PathLike) -> dict[str, list[Timestamp]]:
    """Timestamps per site from ``<root>/metadata.json`` (or inferred from the files when absent).

    Returns ``{site: [Timestamp, ...]}`` in the file's order (chronological in the real file).
    """
    root = _find_root(root)
    path = root / "metadata.json"
    if not path.is_file():
        return {site: _infer_timestamps(root, site) for site in _site_folders(root)}
    data = _load_json(path)
    if isinstance(data, Mapping) and "sites" in data and isinstance(data["sites"], Mapping):
        data = data["sites"]
    if not isinstance(data, Mapping) or not data:
        raise DataFormatError(f"{path}: expected a JSON object {{site: [timestamps]}} with at least one site")
    out: dict[str, list[Timestamp]] = {}
    for site, entries in data.items():
        if not isinstance(entries, list):
            raise DataFormatError(
                f"{path}: site {site!r} must map to a list of timestamps, got {type(entries).__name__}")
        out[site] = [_parse_entry(e, path, site) for e in entries]
    return out


def read_bad_data(root: str | os.PathLike) -> dict[str, dict[str, set[int]]]:
    """``{site: {"s1": {indices}, "s2": {indices}}}`` from ``<root>/bad_data.json`` (empty when absent)."""
    path = _find_root(root) / "bad_data.json"
    if not path.is_file():
        return {}
    data = _load_json(path)
    if not isinstance(data, Mapping):
        raise DataFormatError(f"{path}: expected a JSON object {{site: {{'S1': [...], 'S2': [...]}}}}")
    out = {}
    for site, entry in data.items():
        if not isinstance(entry, Mapping):
            raise DataFormatError(f"{path}: site {site!r} must map to {{'S1': [...], 'S2': [...]}}")
        try:
            out[site] = {m: {int(i) for i in entry.get(m.upper(), entry.get(m, []))} for m in ("s1", "s2")}
        except (TypeError, ValueError):
            raise DataFormatError(f"{path}: site {site!r}: S1/S2 must be lists of integer indices") from None
    return out


def read_regions(root_or_file: str | os.PathLike) -> dict[str, str]:
    """``{site: region}`` from ``spacenet7_regions.json``; empty when the file is absent.

    The file holds ``{site: region}`` or ``{region: [sites]}``; ``root_or_file`` is the dataset
    root or the JSON file.
    """
    path = Path(root_or_file)
    if path.is_dir():
        found = [path / n for n in _REGION_FILES if (path / n).is_file()]
        if not found:
            return {}
        path = found[0]
    data = _load_json(path)
    if isinstance(data, Mapping) and "regions" in data and isinstance(data["regions"], Mapping):
        data = data["regions"]
    if not isinstance(data, Mapping):
        raise DataFormatError(f"{path}: expected {{site: region}} or {{region: [sites]}}")
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            for site in value:
                out[site] = key
        else:
            raise DataFormatError(f"{path}: entry {key!r} is neither a region name nor a list of sites")
    return out


def _site_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _site_dir_has_data(p))


def _modality_file(root: Path, site: str, modality: str, year: int, month: int) -> Path | None:
    for folder in _MODALITY_DIRS[modality]:
        d = root / site / folder
        if not d.is_dir():
            continue
        for mm in (f"{month:02d}", f"{month}"):
            f = d / f"{folder}_{site}_{year}_{mm}.tif"
            if f.is_file():
                return f
    return None


def _expected_name(site: str, modality: str, year: int, month: int) -> str:
    folder = _MODALITY_DIRS[modality][0]
    return f"{site}/{folder}/{folder}_{site}_{year}_{month:02d}.tif"


_FILE_RE = re.compile(r"_(\d{4})_(\d{1,2})\.tif$")


def _infer_timestamps(root: Path, site: str) -> list[Timestamp]:
    found: dict[tuple[int, int], set[str]] = {}
    for modality, folders in _MODALITY_DIRS.items():
        for folder in folders:
            d = root / site / folder
            if d.is_dir():
                for f in d.glob(f"{folder}_{site}_*.tif"):
                    m = _FILE_RE.search(f.name)
                    if m:
                        found.setdefault((int(m.group(1)), int(m.group(2))), set()).add(modality)
    return [Timestamp(y, m, "s1" in mods, "s2" in mods, "buildings" in mods, False)
            for (y, m), mods in sorted(found.items())]


# ----------------------------------------------------------------------------------------------
# sites and splits
# ----------------------------------------------------------------------------------------------
def split_of(site: str, splits: Mapping[str, Iterable[str]] | None = None) -> str | None:
    """The split (``train``/``val``/``test``/``unlabelled``) of ``site`` in ``splits``, or None.

    ``splits`` defaults to :data:`PUBLISHED_SPLIT`.
    """
    for name, ids in (splits or PUBLISHED_SPLIT).items():
        if site in set(ids):
            return name
    return None


def list_sites(root: str | os.PathLike, split: str = "all",
               splits: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """Sites present under ``root`` (a folder per site), optionally of one split.

    Args:
        split: ``"all"`` or one of ``train``/``val``/``test``/``unlabelled``.
        splits: ``{split: [site ids]}``; default :data:`PUBLISHED_SPLIT` (pass your own lists,
            e.g. :func:`domain_gap_split`, for other protocols).
    """
    root = _find_root(root)
    present = _site_folders(root)
    if split == "all":
        return present
    if split not in _SPLITS:
        raise ConfigError(f"split must be 'all' or one of {_SPLITS}, got {split!r}")
    wanted = list((splits or PUBLISHED_SPLIT).get(split, ()))
    return [s for s in wanted if s in set(present)]


def label_fraction_ids(train_ids: Sequence[str], fraction: float, seed: int = 0) -> list[str]:
    """A deterministic subset of ``train_ids`` holding ``fraction`` percent of them (at least one).

    The subsets are nested: for one seed, the 10 % sites are among the 20 % sites, which are among
    the 40 % sites (prefixes of one seeded permutation of the sorted ids). The result is sorted.
    """
    if not 0 < fraction <= 100:
        raise ConfigError(f"label fraction must be in (0, 100] percent, got {fraction}")
    ids = sorted(set(train_ids))
    if not ids:
        raise ConfigError("label_fraction_ids needs a non-empty list of train ids")
    order = np.random.default_rng(seed).permutation(len(ids))
    n = max(1, round(len(ids) * fraction / 100.0))
    return sorted(ids[i] for i in order[:n])


def published_label_fraction(fraction: int) -> list[str]:
    """The published train AOIs for a label fraction of 10, 20, 40 or 100 percent."""
    if fraction not in PUBLISHED_LABEL_FRACTIONS:
        raise ConfigError(f"published label fractions are {sorted(PUBLISHED_LABEL_FRACTIONS)}, got {fraction}")
    return list(PUBLISHED_LABEL_FRACTIONS[fraction])


def domain_gap_split(regions: Mapping[str, str], train_regions: Iterable[str], *,
                     val_fraction: float = 0.3, seed: int = 0,
                     unlabelled: Iterable[str] = ()) -> dict[str, list[str]]:
    """A split by region (domain gap): sites of ``train_regions`` -> train/val, all others -> test.

    Args:
        regions: ``{site: region}`` (:func:`read_regions`).
        train_regions: region codes used for training (e.g. ``["NA", "EU"]``).
        val_fraction: share of the training-region sites held out for validation (deterministic
            by ``seed``; at least one when there are two or more training-region sites).
        unlabelled: site ids to list as ``unlabelled`` (they are removed from the other splits).
    """
    train_regions = set(train_regions)
    unknown = train_regions - set(regions.values())
    if unknown:
        raise ConfigError(f"train region(s) {sorted(unknown)} not among {sorted(set(regions.values()))}")
    unl = sorted(set(unlabelled))
    source = sorted(s for s, r in regions.items() if r in train_regions and s not in unl)
    target = sorted(s for s, r in regions.items() if r not in train_regions and s not in unl)
    order = np.random.default_rng(seed).permutation(len(source))
    n_val = round(len(source) * val_fraction)
    if len(source) >= 2:
        n_val = min(max(n_val, 1), len(source) - 1)
    val = sorted(source[i] for i in order[:n_val])
    train = sorted(source[i] for i in order[n_val:])
    return {"train": train, "val": val, "test": target, "unlabelled": unl}


def site_timestamps(root: str | os.PathLike, site: str, *, require: Iterable[str] = ("s1", "s2", "buildings"),
                    drop_masked: bool = True, drop_bad: bool = True,
                    metadata: Mapping[str, list[Timestamp]] | None = None) -> list[Timestamp]:
    """The usable timestamps of a site.

    Those with every modality in ``require`` available, not masked (``drop_masked``) and not
    listed in bad_data.json (``drop_bad``).
    """
    root = _find_root(root)
    meta = metadata if metadata is not None else read_metadata(root)
    if site not in meta:
        raise DataFormatError(f"{root / 'metadata.json'}: no entry for site {site!r}")
    stamps = list(meta[site])
    if drop_bad:
        bad = read_bad_data(root).get(site, {"s1": set(), "s2": set()})
        stamps = [replace(ts, s1=ts.s1 and i not in bad["s1"], s2=ts.s2 and i not in bad["s2"])
                  for i, ts in enumerate(stamps)]
    req = set(require)
    if req - set(_MODALITY_DIRS):
        raise ConfigError(f"require must be a subset of {tuple(_MODALITY_DIRS)}, got {sorted(req)}")
    out = [ts for ts in stamps if all(getattr(ts, m) for m in req)]
    if drop_masked:
        out = [ts for ts in out if not ts.masked]
    return out


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def _read_on_grid(path: Path, grid: Grid | None, expect_bands: int, what: str,
                  resampling: str = "bilinear") -> tuple[np.ndarray, Grid, dict]:
    arr, g, info = read_raster(path)
    if arr.shape[0] != expect_bands:
        raise DataFormatError(f"{path}: has {arr.shape[0]} band(s), expected {expect_bands} ({what})")
    check_finite(arr, path, what)
    arr = arr.astype(np.float32)
    if grid is None or same_grid(g, grid, tol=1e-6 * max(abs(grid.transform.a), 1e-12)):
        if grid is not None and g.shape != grid.shape:
            raise DataFormatError(f"{path}: is {g.shape} pixels, the site grid is {grid.shape}")
        return arr, g, info
    if g.crs is None or grid.crs is None:
        raise DataFormatError(
            f"{path}: grid {g.shape} differs from the site grid {grid.shape} and there is no CRS to align it"
        )
    require_coverage(g, grid, path, ref_name="of the site (its first raster)")
    return warp_to_grid(arr, g, grid, resampling), grid, info


def _choose_months(folder: Path, stamps: list[Timestamp], months, mods: tuple[str, ...]) -> list[Timestamp]:
    """The usable timestamps that ``months`` asks for (``"all"``, ``"first_last"`` or (year, month) pairs)."""
    if isinstance(months, str):
        if months == "first_last":
            return [stamps[0], stamps[-1]] if len(stamps) >= 2 else stamps
        if months != "all":
            raise ConfigError(f"months must be 'all', 'first_last' or a list of (year, month), got {months!r}")
        return stamps
    wanted = [(int(y), int(m)) for y, m in months]
    by_key = {(ts.year, ts.month): ts for ts in stamps}
    missing = [w for w in wanted if w not in by_key]
    if missing:
        raise DataFormatError(f"{folder}: month(s) {missing} are not usable for modalities {mods}")
    return [by_key[w] for w in wanted]


def _site_files(root: Path, site: str, stamps: list[Timestamp], mods: tuple[str, ...]) -> list[Path]:
    """The raster of every (timestamp, modality); raises naming the first one missing."""
    files = []
    for ts in stamps:
        for m in mods:
            f = _modality_file(root, site, m, ts.year, ts.month)
            if f is None:
                raise DataFormatError(f"{root / _expected_name(site, m, ts.year, ts.month)}: missing "
                                      f"(metadata.json lists {m} for {ts.year}-{ts.month:02d})")
            files.append(f)
    return files


def read_site(root: str | os.PathLike, site: str, *, months: str | Sequence[tuple[int, int]] = "all",
              modalities: Iterable[str] = ("s1", "s2", "buildings"), s2_bands: str | Iterable[str] = "all",
              drop_masked: bool = True, drop_bad: bool = True, split: str | None = None,
              splits: Mapping[str, Iterable[str]] | None = None, cache: bool = False,
              cache_dir: str | os.PathLike | None = None, validate: bool = True):
    """Read one SpaceNet7-S1S2 site as a schema scene (``xarray.Dataset``).

    Args:
        root: dataset root (holding metadata.json and one folder per site).
        site: AOI id, e.g. ``"L15-0331E-1257N_1327_3160_13"``.
        months: ``"all"`` usable timestamps, ``"first_last"`` (the pair for change detection), or a
            list of ``(year, month)``.
        modalities: any of ``"s1"``, ``"s2"``, ``"buildings"``; a site without building rasters
            (the unlabelled AOIs) is read without them automatically.
        s2_bands: subset of the 10 S2 bands (name like ``"rgbn"``, ``"10m"`` or a list).
        drop_masked, drop_bad: skip masked months / images listed in bad_data.json.
        split: the ``split`` attribute; default: looked up in ``splits`` (default the published
            split), else ``"unlabelled"`` for a site without buildings and ``"train"`` otherwise.
        cache, cache_dir: use the scene cache (:mod:`urbankit.data.cache`).
        validate: run the schema validator.

    Returns:
        Dataset with ``optical`` (time, band, y, x) reflectance 0..1, ``sar`` (time, polarisation
        = VV/VH, y, x) in dB, ``buildings`` (time, y, x) fraction 0..1 and ``change`` (y, x) uint8
        (built at the last month and not at the first) when buildings are read; ``time`` = first
        day of each month; attrs site, region, dataset="spacenet7_s1s2", split, source, licence.
    """
    from . import bands as band_meta

    root = _find_root(root)
    mods = tuple(dict.fromkeys(modalities))
    if not mods or set(mods) - set(_MODALITY_DIRS):
        raise ConfigError(f"modalities must be a non-empty subset of {tuple(_MODALITY_DIRS)}, got {modalities!r}")
    names = band_meta.resolve_bands(s2_bands) if s2_bands != "all" else S2_FILE_BANDS
    bad = [b for b in names if b not in S2_FILE_BANDS]
    if bad:
        raise ConfigError(f"SpaceNet7-S1S2 S2 files hold {', '.join(S2_FILE_BANDS)}; not {bad}")
    if not (root / site).is_dir():
        raise DataFormatError(f"{root / site}: no such site folder")
    meta = read_metadata(root)
    if site not in meta:
        raise DataFormatError(f"{root / 'metadata.json'}: no entry for site {site!r}")
    has_buildings = any(ts.buildings for ts in meta[site]) and \
        any((root / site / d).is_dir() for d in _MODALITY_DIRS["buildings"])
    if not has_buildings:
        mods = tuple(m for m in mods if m != "buildings")
        if not mods:
            raise DataFormatError(f"{root / site}: site has no building rasters and no other modality was asked")
    stamps = site_timestamps(root, site, require=mods, drop_masked=drop_masked and has_buildings,
                             drop_bad=drop_bad, metadata=meta)
    stamps = _choose_months(root / site, stamps, months, mods)
    if len(stamps) == 0:
        raise DataFormatError(f"{root / site}: no usable month with {', '.join(mods)} "
                              f"(masked/bad months dropped: {drop_masked}/{drop_bad})")
    files = _site_files(root, site, stamps, mods)
    region = read_regions(root).get(site, "unknown")
    split_attr = split or split_of(site, splits) or ("train" if has_buildings else "unlabelled")

    def build():
        return _read_site_uncached(root, site, stamps, mods, names, region, split_attr, validate)

    if not cache:
        return build()
    from . import cache as scene_cache

    options = {"months": [[ts.year, ts.month] for ts in stamps], "modalities": list(mods),
               "s2_bands": list(names), "region": region, "split": split_attr}
    return scene_cache.cached_scene("spacenet7_s1s2", site, options, files, build, cache_dir=cache_dir)


def _read_site_uncached(root: Path, site: str, stamps: list[Timestamp], mods: tuple[str, ...],
                        names: tuple[str, ...], region: str, split: str, validate: bool):
    from .normalize import s2_to_reflectance, unit_to_db

    band_idx = [S2_FILE_BANDS.index(b) for b in names]
    grid: Grid | None = None
    s1_list, s2_list, b_list = [], [], []
    for ts in stamps:
        if "buildings" in mods:
            path = _modality_file(root, site, "buildings", ts.year, ts.month)
            arr, grid, _ = _read_on_grid(path, grid, 1, "building fraction")
            frac = arr[0]
            if np.isnan(frac).any():
                frac = np.nan_to_num(frac, nan=0.0)
            top = float(frac.max()) if frac.size else 0.0
            if top > 1.0 + 1e-6:
                if top > 100.0 + 1e-6:
                    raise DataFormatError(
                        f"{path}: building values up to {top:g} (expected a fraction 0..1 or percent)")
                frac = frac / 100.0
            if float(frac.min()) < 0:
                raise DataFormatError(f"{path}: negative building fraction {float(frac.min()):g}")
            b_list.append(frac.astype(np.float32))
        if "s1" in mods:
            path = _modality_file(root, site, "s1", ts.year, ts.month)
            arr, grid, _ = _read_on_grid(path, grid, 2, "Sentinel-1 VV, VH scaled to [0, 1]")
            check_s1_unit(arr, "unit", path, fix="SpaceNet7-S1S2 stores VV, VH as (dB + 25) / 25 in [0, 1]; "
                          "for S1 GeoTIFFs in dB use urbankit.data.generic.read_time_series(s1_unit='db')")
            s1_list.append(np.asarray(unit_to_db(np.clip(arr, 0, 1), db_range=S1_DB_RANGE), dtype=np.float32))
        if "s2" in mods:
            path = _modality_file(root, site, "s2", ts.year, ts.month)
            arr, grid, info = _read_on_grid(path, grid, len(S2_FILE_BANDS), "Sentinel-2 B02..B12 reflectance")
            if np.dtype(info["dtype"]).kind in "ui":
                check_dn_dtype(info["dtype"], path, 10000)
                refl = s2_to_reflectance(arr, scale=10000, clip=True)
            else:
                refl = np.clip(arr, 0, 1)
            s2_list.append(np.asarray(refl, dtype=np.float32)[band_idx])
    assert grid is not None
    if grid.crs is None:
        raise DataFormatError(f"{root / site}: the site rasters have no CRS")
    from .schema import make_scene

    return make_scene(
        optical=np.stack(s2_list) if s2_list else None, sar=np.stack(s1_list) if s1_list else None,
        buildings=np.stack(b_list) if b_list else None,
        change=change_from_buildings(b_list[0], b_list[-1]) if b_list else None,
        times=[ts.date for ts in stamps], bands=list(names), polarisations=S1_FILE_POLARISATIONS,
        transform=grid.transform, crs=grid.crs, site=site, region=region, dataset="spacenet7_s1s2",
        split=split, source=SOURCE, licence=LICENCE,
        attrs={"sar_db_range": db_range_attr(S1_DB_RANGE)} if "s1" in mods else None, validate=validate)


def read_sites(root: str | os.PathLike, split: str = "all", splits: Mapping[str, Iterable[str]] | None = None,
               **kwargs) -> list:
    """Read every present site of a split (kwargs as :func:`read_site`)."""
    sites = list_sites(root, split, splits)
    if not sites:
        raise DataFormatError(f"{root}: no site of split {split!r} is present")
    return [read_site(root, s, split=None if split == "all" else split, splits=splits, **kwargs) for s in sites]


def download_spacenet7(data_root: str | os.PathLike | None = None, *, allow_unverified: bool = False,
                       **kwargs) -> Path:
    """Fetch the SEN12 multi-temporal urban mapping record and return its root for :func:`read_site`.

    The record is Zenodo 10.5281/zenodo.7794693, fetched with :func:`urbankit.data.download.fetch`.

    Zenodo builds the "all files" archive on the fly, so it has no fixed checksum: pass
    ``allow_unverified=True`` to accept it (the download manager says so otherwise). Large.
    """
    from .download import fetch

    return _find_root(fetch("sen12_mtum", data_root, allow_unverified=allow_unverified, **kwargs))


# ----------------------------------------------------------------------------------------------
# the embedded sample (synthetic sites in the SpaceNet7-S1S2 layout)
# ----------------------------------------------------------------------------------------------
#: sample sites: id -> (generator region, region code, labelled)
SAMPLE_SITES: dict[str, tuple[str, str, bool]] = {
    "L15-9001E-0001N_0001_0001_13": ("north_america", "NA", True),
    "L15-9002E-0002N_0002_0002_13": ("north_america", "NA", True),
    "L15-9003E-0003N_0003_0003_13": ("north_america", "NA", True),
    "L15-9004E-0004N_0004_0004_13": ("sub_saharan_africa", "SSA", True),
    "L15-9005E-0005N_0005_0005_13": ("sub_saharan_africa", "SSA", True),
    "L15-9006E-0006N_0006_0006_13": ("sub_saharan_africa", "SSA", True),
    "L15-9007E-0007N_0007_0007_13": ("south_asia", "SA", False),
}
_SAMPLE_SIZE = 64
_SAMPLE_MONTHS = 6
_SAMPLE_START = (2018, 1)

def write_spacenet7_sample(out: Path, seed: int = 0) -> Path:
    """Write the embedded SpaceNet7-S1S2-style sample (7 sites) to ``out/spacenet7_s1s2``; returns it."""
    from affine import Affine

    from .normalize import db_to_unit
    from .sample_files import scene_georef, write_json, write_tif
    from .synthetic import make_site

    root = out / "spacenet7_s1s2"
    metadata, bad, regions = {}, {}, {}
    for i, (site, (gen_region, code, labelled)) in enumerate(SAMPLE_SITES.items()):
        scene = make_site(site=site, size=_SAMPLE_SIZE, n_dates=_SAMPLE_MONTHS, region=gen_region, seed=seed + 10 + i,
                          growth=0.08, origin=(600000.0 + 10000 * i, 4000000.0), start="2018-01-01")
        transform, crs = scene_georef(scene)
        transform = Affine(*tuple(transform)[:6])
        regions[site] = code
        entries = []
        for t in range(_SAMPLE_MONTHS):
            year, month = _SAMPLE_START[0] + (_SAMPLE_START[1] - 1 + t) // 12, (_SAMPLE_START[1] - 1 + t) % 12 + 1
            has_s2 = not (i == 1 and t == 2)            # one month without a usable S2 image
            masked = labelled and i == 2 and t == 3      # one masked month (SN7 UDM)
            tag = f"{site}_{year}_{month:02d}.tif"
            s1 = np.asarray(db_to_unit(scene.sar.values[t], db_range=(-25.0, 0.0), clip=True), dtype=np.float32)
            write_tif(root / site / "sentinel1" / f"sentinel1_{tag}", s1, transform, crs, descriptions=["VV", "VH"])
            if has_s2:
                s2 = scene.optical.sel(band=list(S2_FILE_BANDS)).values[t]
                s2 = (np.round(np.clip(s2, 0, 1) * 10000) / 10000).astype(np.float32)
                write_tif(root / site / "sentinel2" / f"sentinel2_{tag}", s2, transform, crs,
                           descriptions=list(S2_FILE_BANDS))
            if labelled:
                frac = scene.buildings.values[t].astype(np.float32)
                write_tif(root / site / "buildings" / f"buildings_{tag}", frac, transform, crs)
            entries.append({"aoi_id": site, "year": year, "month": month, "s1": True, "s2": has_s2,
                            "buildings": labelled, "masked": masked})
        metadata[site] = entries
        bad[site] = {"S1": [], "S2": [4] if i == 0 else []}
    write_json(root / "metadata.json", metadata)
    write_json(root / "bad_data.json", bad)
    write_json(root / "spacenet7_regions.json", regions)
    return root


# ----------------------------------------------------------------------------------------------
# the reader
# ----------------------------------------------------------------------------------------------
class SpaceNet7(Reader):
    """SpaceNet7-S1S2 / SEN12-MTUM (Hafner et al. 2023): monthly S1 and S2 with building fractions.

    Args:
        root: the dataset folder (metadata.json and one folder per site).
        split: ``"all"`` or ``train``/``val``/``test``/``unlabelled`` of ``splits``.
        bands: S2 bands (a subset of :data:`S2_FILE_BANDS` or a subset name); None = all 10.
        download, checksum: see :mod:`urbankit.data.reader` (the Zenodo record).
        splits: ``{split: [site ids]}``; default :data:`PUBLISHED_SPLIT`.
        **options: further :func:`read_site` keywords (``months``, ``modalities``, ``cache``, ...).
    """

    key = "spacenet7_s1s2"
    title = "SpaceNet7-S1S2"
    splits = _SPLITS
    sources = ("sen12_mtum",)
    sample_folder = "spacenet7_s1s2"

    def __init__(self, root, split: str = "all", bands=None, download: bool = False, checksum: bool = True, *,
                 splits: Mapping[str, Iterable[str]] | None = None, **options):
        super().__init__(root, split, bands, download, checksum)
        self.site_splits, self.options = splits, options

    @property
    def sites(self) -> list[str]:
        """The sites of the split present under ``root``."""
        return list_sites(self.root, self.split, self.site_splits)

    def read(self, site: str):
        """The site as a scene (:func:`read_site`)."""
        return read_site(self.root, site, s2_bands=self.bands or "all", splits=self.site_splits, **self.options)

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write the SpaceNet7-S1S2 sample under ``folder``; returns ``folder/spacenet7_s1s2``."""
        return write_spacenet7_sample(Path(folder), seed)
