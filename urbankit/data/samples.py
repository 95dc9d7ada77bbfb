"""The embedded samples: small synthetic datasets in the REAL on-disk layouts, made by urbankit.

:func:`write_samples` uses the synthetic city generator (:func:`urbankit.data.synthetic.make_site`)
to write, deterministically (same seed -> byte-identical files), into ``data_samples/``:

``oscd/``
    An OSCD-style copy: three cities (two labelled train cities, one unlabelled test city) in
    the official folder layout, per-band GeoTIFFs at native 10/20/60 m as uint16 DN
    (reflectance x 10000), ``dates.txt``, ``train.txt``/``test.txt``, labels
    ``cm/<city>-cm.tif`` coded 1/2 (no georeference, like the real files) and ``cm/cm.png``
    0/255 (RGBA for one city, RGB for the other). City ``riverton`` has date-2 rasters a few
    pixels smaller than date 1 over the same extent (the abudhabi quirk).
``oscd_s1/data/``
    Sentinel-1 VV in the DS U-Net export convention: ``sentinel1_<city>_<orbit>_t{1,2}.tif``,
    float32, value = (dB + 25) / 30 clipped to [0, 1], on a 9 m grid that differs from the S2 grid;
    ``riverton`` has two relative orbits.
``spacenet7_s1s2/``
    SpaceNet7-S1S2-style sites (two regions) with monthly ``sentinel1``/``sentinel2``/``buildings``
    GeoTIFFs, ``metadata.json`` (with a masked month and a month without S2),
    ``bad_data.json`` and ``spacenet7_regions.json``; one site is unlabelled (no buildings).
``levir/``
    LEVIR-CD-style pairs ``A/``, ``B/``, ``label/`` (256 x 256 RGB PNG, label 0/255) rendered from
    the generator at 0.5 m pixels.
``population/``
    A population grid (GeoTIFF, float32 persons per 100 m cell) for two years.

Everything is synthetic (urbankit's generator, not real data). ``MANIFEST.sha256`` lists the
sha256 of every file; ``urbankit samples --check`` regenerates into a temporary folder and
compares. GeoTIFFs are written with fixed creation options and no timestamps so that the bytes
depend only on the data and on the library builds, whose versions the manifest records
(``# libraries: ...``): regenerate after a library upgrade.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = [
    "CLI_COMMAND",
    "OSCD_CITIES",
    "SN7_SITES",
    "check_samples",
    "library_versions",
    "manifest",
    "recorded_versions",
    "sample_path",
    "write_samples",
]

_IMAGES = "Onera Satellite Change Detection dataset - Images"
_TRAIN_LABELS = "Onera Satellite Change Detection dataset - Train Labels"

#: OSCD-style sample cities: name -> (region, seed offset, split, date-2 pixel shrink, label png mode)
OSCD_CITIES: dict[str, tuple[str, int, str, int, str]] = {
    "riverton": ("north_america", 0, "train", 3, "RGBA"),
    "lakeside": ("sub_saharan_africa", 1, "train", 0, "RGB"),
    "hillcrest": ("south_asia", 2, "test", 0, ""),
}
_OSCD_SIZE = 120          # date-1 10 m grid (multiple of 6 so that the 60 m bands tile it)
_OSCD_DATES = ("20170310", "20190402")
_OSCD_S1_ORBITS = {"riverton": (8, 59), "lakeside": (30,), "hillcrest": (117,)}

#: SpaceNet7-style sample sites: id -> (generator region, region code, labelled)
SN7_SITES: dict[str, tuple[str, str, bool]] = {
    "L15-9001E-0001N_0001_0001_13": ("north_america", "NA", True),
    "L15-9002E-0002N_0002_0002_13": ("north_america", "NA", True),
    "L15-9003E-0003N_0003_0003_13": ("north_america", "NA", True),
    "L15-9004E-0004N_0004_0004_13": ("sub_saharan_africa", "SSA", True),
    "L15-9005E-0005N_0005_0005_13": ("sub_saharan_africa", "SSA", True),
    "L15-9006E-0006N_0006_0006_13": ("sub_saharan_africa", "SSA", True),
    "L15-9007E-0007N_0007_0007_13": ("south_asia", "SA", False),
}
_SN7_SIZE = 64
_SN7_MONTHS = 6
_SN7_START = (2018, 1)
_LEVIR_PAIRS = 4
_LEVIR_SIZE = 256
_POP_SIZE = 200           # 10 m pixels -> 20 x 20 cells of 100 m

_GTIFF_INT = {"driver": "GTiff", "compress": "deflate", "predictor": 2, "zlevel": 9, "interleave": "band"}
_GTIFF_FLOAT = {"driver": "GTiff", "compress": "deflate", "predictor": 3, "zlevel": 9, "interleave": "band"}


# ----------------------------------------------------------------------------------------------
# writers (deterministic bytes)
# ----------------------------------------------------------------------------------------------
def _write_tif(path: Path, arr: np.ndarray, transform=None, crs=None, descriptions=None) -> None:
    """Write (bands, rows, cols) or (rows, cols) deterministically (deflate, no timestamps)."""
    import rasterio

    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    opts = dict(_GTIFF_FLOAT if arr.dtype.kind == "f" else _GTIFF_INT)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=rasterio.errors.NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(
                path, "w", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype,
                crs=crs, transform=transform, **opts) as dst:
            dst.write(arr)
            for i, d in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, d)


def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr)).save(path, format="PNG", optimize=False, compress_level=9)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of the last two axes (sizes must be multiples of k)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def _grid(transform, shape, crs):
    from .raster import Grid

    return Grid(tuple(shape), transform, crs)


def _affine(scene):
    return scene.rio.transform(), scene.rio.crs


# ----------------------------------------------------------------------------------------------
# OSCD-style cities + DS U-Net Sentinel-1
# ----------------------------------------------------------------------------------------------
_RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
        "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}


def _oscd_city(out: Path, city: str, region: str, seed: int, shrink: int, png_mode: str, labelled: bool) -> None:
    from affine import Affine

    from .oscd import OSCD_BANDS
    from .raster import warp_to_grid
    from .synthetic import make_site

    scene = make_site(site=city, size=_OSCD_SIZE, n_dates=12, region=region, seed=seed, growth=0.06,
                      looks=4.4, origin=(400000.0 + 20000 * (seed % 5), 5200000.0))
    t10, crs = _affine(scene)
    optical = scene.optical.values[[0, -1]]                       # (2, 13, H, W) reflectance
    city_dir = out / "oscd" / _IMAGES / city
    city_dir.mkdir(parents=True, exist_ok=True)
    (city_dir / "dates.txt").write_text(f"date_1: {_OSCD_DATES[0]}\ndate_2: {_OSCD_DATES[1]}\n", encoding="utf-8")
    prefixes = (f"S2A_OPER_MSI_L1C_TL_SGS__{_OSCD_DATES[0]}T104021_A009000_T33UUP_",
                f"T33UUP_{_OSCD_DATES[1]}T103021_")
    extent = _OSCD_SIZE * t10.a
    for t in range(2):
        for b, band in enumerate(OSCD_BANDS):
            res = _RES[band]
            k = res // 10
            refl = _block_mean(optical[t, b], k) if k > 1 else optical[t, b]
            transform = Affine(res, 0, t10.c, 0, -res, t10.f)
            if t == 1 and shrink:
                # date 2 on a slightly coarser grid over the same extent (a few pixels fewer)
                n = refl.shape[0] - max(1, shrink // k)
                px = extent / n
                dst = _grid(Affine(px, 0, t10.c, 0, -px, t10.f), (n, n), crs)
                refl = warp_to_grid(refl, _grid(transform, refl.shape, crs), dst, "bilinear")
                transform = dst.transform
            dn = np.clip(np.round(np.nan_to_num(refl) * 10000), 1, 65535).astype(np.uint16)
            _write_tif(city_dir / f"imgs_{t + 1}" / f"{prefixes[t]}{band}.tif", dn, transform, crs)
    if labelled:
        change = scene.change.values.astype(np.uint8)
        cm = out / "oscd" / _TRAIN_LABELS / city / "cm"
        _write_tif(cm / f"{city}-cm.tif", (change + 1).astype(np.uint8))      # 1 = no change, 2 = change
        v = change * 255
        img = np.stack([v, v, v, np.full_like(v, 255)], axis=-1) if png_mode == "RGBA" else np.stack([v, v, v], -1)
        _write_png(cm / "cm.png", img.astype(np.uint8))
    # Sentinel-1 VV, DS U-Net export: 9 m grid, one pixel of margin, (dB + 25) / 30 clipped
    from .normalize import db_to_linear, db_to_unit, linear_to_db

    vv = scene.sar.sel(polarisation="VV").values[[0, -1]]          # (2, H, W) dB
    px = 9.0
    n = int(np.ceil(extent / px)) + 2
    s1_grid = _grid(Affine(px, 0, t10.c - px, 0, -px, t10.f + px), (n, n), crs)
    rng = np.random.default_rng([seed, 101])
    for j, orbit in enumerate(_OSCD_S1_ORBITS[city]):
        for t in range(2):
            lin = np.asarray(db_to_linear(vv[t]), dtype=np.float32)
            if j > 0:  # another orbit: an independent speckle-like fluctuation (~4 looks)
                lin = lin * rng.gamma(4.0, 1 / 4.0, size=lin.shape).astype(np.float32)
            warped = warp_to_grid(lin, _grid(t10, lin.shape, crs), s1_grid, "bilinear")
            warped = np.where(np.isfinite(warped), warped, np.nanmean(lin))
            unit = np.asarray(db_to_unit(linear_to_db(warped), db_range=(-25.0, 5.0), clip=True), dtype=np.float32)
            _write_tif(out / "oscd_s1" / "data" / f"sentinel1_{city}_{orbit}_t{t + 1}.tif", unit,
                       s1_grid.transform, crs, descriptions=["VV"])


def _write_oscd(out: Path, seed: int) -> None:
    train = [c for c, v in OSCD_CITIES.items() if v[2] == "train"]
    test = [c for c, v in OSCD_CITIES.items() if v[2] == "test"]
    images = out / "oscd" / _IMAGES
    images.mkdir(parents=True, exist_ok=True)
    (images / "train.txt").write_text(",".join(train), encoding="utf-8")
    (images / "test.txt").write_text(",".join(test), encoding="utf-8")
    for city, (region, offset, split, shrink, png_mode) in OSCD_CITIES.items():
        _oscd_city(out, city, region, seed + offset, shrink, png_mode, labelled=split == "train")


# ----------------------------------------------------------------------------------------------
# SpaceNet7-S1S2-style sites
# ----------------------------------------------------------------------------------------------
def _write_spacenet7(out: Path, seed: int) -> None:
    from affine import Affine

    from .normalize import db_to_unit
    from .spacenet7 import S2_BANDS
    from .synthetic import make_site

    root = out / "spacenet7_s1s2"
    metadata, bad, regions = {}, {}, {}
    for i, (site, (gen_region, code, labelled)) in enumerate(SN7_SITES.items()):
        scene = make_site(site=site, size=_SN7_SIZE, n_dates=_SN7_MONTHS, region=gen_region, seed=seed + 10 + i,
                          growth=0.08, origin=(600000.0 + 10000 * i, 4000000.0), start="2018-01-01")
        transform, crs = _affine(scene)
        transform = Affine(*tuple(transform)[:6])
        regions[site] = code
        entries = []
        for t in range(_SN7_MONTHS):
            year, month = _SN7_START[0] + (_SN7_START[1] - 1 + t) // 12, (_SN7_START[1] - 1 + t) % 12 + 1
            has_s2 = not (i == 1 and t == 2)            # one month without a usable S2 image
            masked = labelled and i == 2 and t == 3      # one masked month (SN7 UDM)
            tag = f"{site}_{year}_{month:02d}.tif"
            s1 = np.asarray(db_to_unit(scene.sar.values[t], db_range=(-25.0, 0.0), clip=True), dtype=np.float32)
            _write_tif(root / site / "sentinel1" / f"sentinel1_{tag}", s1, transform, crs, descriptions=["VV", "VH"])
            if has_s2:
                s2 = scene.optical.sel(band=list(S2_BANDS)).values[t]
                s2 = (np.round(np.clip(s2, 0, 1) * 10000) / 10000).astype(np.float32)
                _write_tif(root / site / "sentinel2" / f"sentinel2_{tag}", s2, transform, crs,
                           descriptions=list(S2_BANDS))
            if labelled:
                frac = scene.buildings.values[t].astype(np.float32)
                _write_tif(root / site / "buildings" / f"buildings_{tag}", frac, transform, crs)
            entries.append({"aoi_id": site, "year": year, "month": month, "s1": True, "s2": has_s2,
                            "buildings": labelled, "masked": masked})
        metadata[site] = entries
        bad[site] = {"S1": [], "S2": [4] if i == 0 else []}
    _write_json(root / "metadata.json", metadata)
    _write_json(root / "bad_data.json", bad)
    _write_json(root / "spacenet7_regions.json", regions)


# ----------------------------------------------------------------------------------------------
# LEVIR-style RGB pairs and a population grid
# ----------------------------------------------------------------------------------------------
def _write_levir(out: Path, seed: int) -> None:
    from .synthetic import make_site

    for i in range(_LEVIR_PAIRS):
        region = ("north_america", "south_asia", "sub_saharan_africa", "north_america")[i]
        scene = make_site(site=f"levir-{i}", size=_LEVIR_SIZE, n_dates=8, region=region, seed=seed + 40 + i,
                          growth=0.08, pixel_size=0.5, looks=None, modalities=("optical",), crs=None)
        rgb = scene.optical.sel(band=["B04", "B03", "B02"]).values[[0, -1]]  # (2, 3, H, W)
        img = np.clip(rgb / 0.3 * 255.0, 0, 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
        name = f"train_{i + 1}.png"
        _write_png(out / "levir" / "A" / name, img[0])
        _write_png(out / "levir" / "B" / name, img[1])
        _write_png(out / "levir" / "label" / name, (scene.change.values > 0).astype(np.uint8) * 255)


def _write_population(out: Path, seed: int) -> None:
    from affine import Affine

    from .synthetic import make_site

    scene = make_site(site="twin-population", size=_POP_SIZE, n_dates=24, region="south_asia", seed=seed + 60,
                      growth=0.05, modalities=("optical",), origin=(700000.0, 3000000.0), start="2019-01-01")
    t10, crs = _affine(scene)
    transform = Affine(100.0, 0, t10.c, 0, -100.0, t10.f)
    for t, year in ((0, 2019), (-1, 2020)):
        pop = scene.population.values[t].astype(np.float64)
        cells = (_block_mean(pop, 10) * 100.0).astype(np.float32)          # persons per 100 m cell
        cells = np.round(cells, 2).astype(np.float32)
        _write_tif(out / "population" / f"twin-population_{year}_100m.tif", cells, transform, crs,
                   descriptions=["population (persons per cell)"])


# ----------------------------------------------------------------------------------------------
# README, manifest, top-level API
# ----------------------------------------------------------------------------------------------
_README = """# Embedded samples (synthetic)

Everything in this folder is **synthetic**: made by urbankit's city generator
(`urbankit.data.synthetic.make_site`), **not real satellite data**. The files follow the
on-disk layouts of the real datasets so that the real readers are exercised on every test run
and the `quick` profile of the book runs offline. Regenerate with

    urbankit samples            # writes data_samples/ (deterministic, seed 0)
    urbankit samples --check    # regenerate into a temporary folder and compare sha256

`MANIFEST.sha256` holds the sha256 of every file. Total size well under 20 MB.

| folder | imitates | content | read by |
|---|---|---|---|
| `oscd/` | OSCD (Daudt et al. 2018), official layout | 3 cities (`riverton`, `lakeside` train, labelled; `hillcrest` test, unlabelled), 2 dates, 13 bands as per-band GeoTIFFs at native 10/20/60 m, uint16 DN = reflectance x 10000, `dates.txt`, `train.txt`/`test.txt`; labels `cm/<city>-cm.tif` coded 1 = no change / 2 = change without georeference, and `cm/cm.png` 0/255 (RGBA for riverton, RGB for lakeside). `riverton` date 2 is a few pixels smaller than date 1 over the same extent. 120 x 120 px at 10 m, UTM (EPSG:32633; the real files are EPSG:4326) | `urbankit.data.oscd.read_city` |
| `oscd_s1/data/` | DS U-Net Sentinel-1 export (Hafner et al. 2021) | `sentinel1_<city>_<orbit>_t{1,2}.tif`: VV, float32, value = (dB + 25) / 30 clipped to [0, 1], 9 m grid with a one-pixel margin (differs from the S2 grid); riverton has orbits 8 and 59 | `read_city(..., s1_root=...)` |
| `spacenet7_s1s2/` | SpaceNet7-S1S2 / SEN12 multi-temporal urban mapping (Hafner et al. 2023) | 7 sites (3 region `NA`, 3 region `SSA`, 1 unlabelled `SA`), 6 months each, 64 x 64 px at 10 m: `sentinel1/` (VV, VH scaled from -25..0 dB to [0, 1]), `sentinel2/` (10 bands B02..B12 reflectance 0..1), `buildings/` (building fraction 0..1); `metadata.json` (one masked month, one month without S2), `bad_data.json` (one bad S2 month), `spacenet7_regions.json` | `urbankit.data.spacenet7.read_site` |
| `levir/` | LEVIR-CD crops (Chen & Shi 2020), flat `A/ B/ label/` layout | 4 pairs of 256 x 256 RGB PNG rendered from the generator at 0.5 m pixels; label PNG 0/255 | `urbankit.data.vhr` |
| `population/` | a population grid (WorldPop/GHS-POP style) | `twin-population_<year>_100m.tif`: float32 persons per 100 m cell, 20 x 20 cells, 2019 and 2020 | rasterio / rioxarray |

Made with seed 0 by `urbankit/data/samples.py` from `urbankit.data.synthetic.make_site`: a
change of the generator changes these files, so regenerate them (and this manifest) with it.
GeoTIFFs are deflate-compressed with fixed options and no timestamps. Licence: MIT (synthetic
data generated by urbankit).
"""  # noqa: E501 (a Markdown table keeps one row per line)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(folder: str | os.PathLike) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``folder`` except MANIFEST.sha256."""
    folder = Path(folder)
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "MANIFEST.sha256":
            out[path.relative_to(folder).as_posix()] = _sha256(path)
    return out


def library_versions() -> str:
    """The library versions that determine the sample bytes (recorded in MANIFEST.sha256)."""
    import PIL
    import rasterio
    import scipy

    return (f"numpy {np.__version__}, scipy {scipy.__version__}, rasterio {rasterio.__version__}, "
            f"GDAL {rasterio.__gdal_version__}, Pillow {PIL.__version__}")


def recorded_versions(folder: str | os.PathLike) -> str | None:
    """The library versions recorded in ``folder/MANIFEST.sha256`` (None when not recorded)."""
    path = Path(folder) / "MANIFEST.sha256"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# libraries: "):
                return line[len("# libraries: "):].strip()
    return None


def _write_manifest(folder: Path) -> None:
    lines = [f"# libraries: {library_versions()}"]
    lines += [f"{sha}  {rel}" for rel, sha in manifest(folder).items()]
    (folder / "MANIFEST.sha256").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _read_manifest(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DataFormatError(f"{path}: missing (regenerate the samples with `urbankit samples`)")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            sha, rel = line.split(None, 1)
            out[rel.strip()] = sha
    return out


_PARTS: dict[str, Callable[[Path, int], None]] = {
    "oscd": _write_oscd, "spacenet7": _write_spacenet7, "levir": _write_levir, "population": _write_population,
}
_TOP_LEVEL = ("oscd", "oscd_s1", "spacenet7_s1s2", "levir", "population", "README.md", "MANIFEST.sha256")


def write_samples(out_dir: str | os.PathLike = "data_samples", seed: int = 0) -> Path:
    """Write all embedded samples into ``out_dir`` (deterministic for a given ``seed``).

    The samples are built in a temporary folder beside ``out_dir`` and then moved into place
    entry by entry (``oscd/``, ``oscd_s1/``, ``spacenet7_s1s2/``, ``levir/``, ``population/``,
    ``README.md``, ``MANIFEST.sha256``); other files in ``out_dir`` are left alone.
    Returns ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".samples-", dir=out.parent))
    try:
        for writer in _PARTS.values():
            writer(tmp, seed)
        (tmp / "README.md").write_text(_README, encoding="utf-8")
        _write_manifest(tmp)
        for name in _TOP_LEVEL:
            src, dst = tmp / name, out / name
            if dst.is_dir():
                shutil.rmtree(dst)
            elif dst.exists():
                dst.unlink()
            os.replace(src, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def check_samples(out_dir: str | os.PathLike = "data_samples", seed: int = 0) -> list[str]:
    """Regenerate the samples in a temporary folder and compare with ``out_dir``.

    Returns a list of problems (empty when every file matches its MANIFEST entry and the
    regenerated bytes): missing, extra or different files, named by relative path.
    """
    out = Path(out_dir)
    recorded = _read_manifest(out / "MANIFEST.sha256")
    problems = []
    on_disk = manifest(out)
    with tempfile.TemporaryDirectory(prefix="urbankit-samples-") as tmp:
        write_samples(tmp, seed=seed)
        fresh = manifest(tmp)
    for rel in sorted(set(recorded) | set(fresh) | set(on_disk)):
        if rel not in fresh:
            problems.append(f"{rel}: not produced by the generator (stale file?)")
        elif rel not in recorded:
            problems.append(f"{rel}: missing from MANIFEST.sha256")
        elif rel not in on_disk:
            problems.append(f"{rel}: listed in MANIFEST.sha256 but missing on disk")
        elif not (fresh[rel] == recorded[rel] == on_disk[rel]):
            problems.append(f"{rel}: sha256 differs (regenerated {fresh[rel][:12]}, manifest "
                            f"{recorded[rel][:12]}, on disk {on_disk[rel][:12]})")
    return problems


def sample_path(name: str = "") -> Path:
    """Path of an embedded sample (``"oscd"``, ``"oscd_s1"``, ``"spacenet7_s1s2"``, ``"levir"``,
    ``"population"``) or of the samples folder itself (``""``).
    """
    from ..paths import samples_dir

    base = samples_dir()
    if not name:
        return base
    if name not in _TOP_LEVEL[:5]:
        raise ConfigError(f"unknown sample {name!r}; samples are {', '.join(_TOP_LEVEL[:5])}")
    path = base / name
    if not path.exists():
        raise DataFormatError(f"{path}: the embedded sample is missing (run `urbankit samples`)")
    return path


# ----------------------------------------------------------------------------------------------
# CLI: urbankit samples [--out DIR] [--check] [--seed N]
# ----------------------------------------------------------------------------------------------
def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: data_samples/ of the checkout)")
    p.add_argument("--check", action="store_true",
                   help="regenerate into a temporary folder and compare with the committed files")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0, the committed samples)")


def _run(args: argparse.Namespace) -> int:
    from ..paths import repo_root

    out = Path(args.out) if args.out else repo_root() / "data_samples"
    if args.check:
        problems = check_samples(out, seed=args.seed)
        if problems:
            recorded, current = recorded_versions(out), library_versions()
            if recorded != current:
                print(f"note: the samples were written with {recorded}; this is {current} "
                      "(other library builds may compress to other bytes)")
            print(f"{len(problems)} problem(s) in {out}:")
            for p in problems:
                print("  " + p)
            return 1
        print(f"{out}: all {len(_read_manifest(out / 'MANIFEST.sha256'))} files match a fresh regeneration")
        return 0
    write_samples(out, seed=args.seed)
    files = manifest(out)
    size = sum((out / rel).stat().st_size for rel in files)
    print(f"wrote {len(files)} files ({size / 1e6:.2f} MB) to {out}")
    return 0


#: Picked up by urbankit.cli: ``urbankit samples [--out DIR] [--check]``.
CLI_COMMAND = ("samples", "write (or --check) the embedded synthetic samples in data_samples/",
               _add_arguments, _run)
