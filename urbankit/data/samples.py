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
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = [
    "CLI_COMMAND",
    "check_samples",
    "library_versions",
    "manifest",
    "raster_difference",
    "recorded_versions",
    "sample_path",
    "write_samples",
]


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


def _writers() -> dict[str, Callable[[Path, int], Path]]:
    """The sample writers, each owned by its reader module (this module only orchestrates)."""
    from .levir_cd import LEVIRCD
    from .oscd import OSCD
    from .population_grids import write_population_sample
    from .spacenet7 import SpaceNet7

    return {"oscd": OSCD.write_sample, "spacenet7": SpaceNet7.write_sample, "levir": LEVIRCD.write_sample,
            "population": write_population_sample}
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
        for writer in _writers().values():
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
    regenerated bytes): missing, extra or different files, named by relative path. A
    regenerated GeoTIFF whose float pixels differ by at most one float32 rounding from the
    committed one is not a problem (:func:`raster_difference`).
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
            elif recorded[rel] != on_disk[rel]:
                problems.append(f"{rel}: sha256 differs (on disk {on_disk[rel][:12]}, manifest "
                                f"{recorded[rel][:12]})")
            elif fresh[rel] != on_disk[rel]:
                why = raster_difference(Path(tmp) / rel, out / rel) if rel.endswith(".tif") else "bytes differ"
                if why:
                    problems.append(f"{rel}: sha256 differs from the regenerated file ({why})")
    return problems


def raster_difference(written: str | os.PathLike, committed: str | os.PathLike, atol: float = 1e-6) -> str | None:
    """Why two GeoTIFFs differ, or None when only float pixels differ, by at most ``atol``.

    The float32 arithmetic of a synthetic band (e.g. SAR dB mapped to [0, 1]) may round one ulp
    differently on a CPU whose numpy takes another SIMD path (seen: 1.2e-7 on 4 % of the pixels
    of the SpaceNet7 S1 rasters on an AVX2-only machine). Another grid, CRS, dtype, tag, band
    description, any integer pixel or a larger float difference is a real difference.
    """
    import rasterio

    with rasterio.open(written) as a, rasterio.open(committed) as b:
        if a.profile != b.profile or a.tags() != b.tags() or a.descriptions != b.descriptions:
            return "another profile, tags or band descriptions"
        if not np.issubdtype(np.dtype(a.dtypes[0]), np.floating):
            return f"{a.dtypes[0]} pixels differ"
        diff = float(np.abs(a.read().astype(np.float64) - b.read().astype(np.float64)).max())
    return None if diff <= atol else f"pixels differ by up to {diff:g}"


def sample_path(name: str = "") -> Path:
    """Path of an embedded sample, or of the samples folder itself (``""``).

    ``name``: ``"oscd"``, ``"oscd_s1"``, ``"spacenet7_s1s2"``, ``"levir"`` or ``"population"``.
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
