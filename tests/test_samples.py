"""The embedded samples: deterministic regeneration, manifest, CLI, size, and what is in them."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from urbankit.cli import build_parser, main
from urbankit.data import samples


@pytest.fixture(scope="module")
def committed(repo_root: Path) -> Path:
    return repo_root / "data_samples"


def _manifest_lines(folder: Path) -> dict[str, str]:
    out = {}
    for line in (folder / "MANIFEST.sha256").read_text().splitlines():
        if line.startswith("#"):
            continue
        sha, rel = line.split(None, 1)
        out[rel] = sha
    return out


def test_committed_files_match_the_manifest(committed):
    recorded = _manifest_lines(committed)
    on_disk = sorted(p.relative_to(committed).as_posix() for p in committed.rglob("*")
                     if p.is_file() and p.name != "MANIFEST.sha256")
    assert sorted(recorded) == on_disk
    for rel, sha in recorded.items():
        assert hashlib.sha256((committed / rel).read_bytes()).hexdigest() == sha, rel


def test_samples_are_small_and_say_they_are_synthetic(committed):
    total = sum(p.stat().st_size for p in committed.rglob("*") if p.is_file())
    assert total < 20e6
    readme = (committed / "README.md").read_text()
    assert "synthetic" in readme.lower() and "not real" in readme.lower()
    for part in ("oscd/", "oscd_s1/data/", "spacenet7_s1s2/", "levir/", "population/"):
        assert f"`{part}`" in readme


def test_regeneration_is_byte_identical_and_check_finds_tampering(committed, tmp_path, capsys):
    """One regeneration: the CLI --check on a copy with one tampered file reports exactly that file,
    so every other committed file equals its fresh regeneration."""
    if samples.recorded_versions(committed) != samples.library_versions():
        pytest.skip(f"samples written with {samples.recorded_versions(committed)}, this is "
                    f"{samples.library_versions()}: compressed bytes may differ; run `urbankit samples`")
    copy = tmp_path / "data_samples"
    shutil.copytree(committed, copy)
    victim = copy / "levir" / "label" / "train_2.png"
    victim.write_bytes(victim.read_bytes() + b"\0")
    rc = main(["samples", "--check", "--out", str(copy)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "1 problem(s)" in out and "levir/label/train_2.png: sha256 differs" in out


def test_raster_difference_allows_one_float32_rounding_and_nothing_else(tmp_path):
    from urbankit.data.sample_files import write_tif

    base = np.linspace(0, 1, 2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    write_tif(tmp_path / "a.tif", base, descriptions=["VV", "VH"])
    write_tif(tmp_path / "ulp.tif", np.nextafter(base, np.float32(2)), descriptions=["VV", "VH"])
    write_tif(tmp_path / "far.tif", base + np.float32(1e-3), descriptions=["VV", "VH"])
    write_tif(tmp_path / "names.tif", base, descriptions=["HH", "HV"])
    write_tif(tmp_path / "int_a.tif", (base * 100).astype(np.uint8))
    write_tif(tmp_path / "int_b.tif", (base * 100).astype(np.uint8) + 1)
    assert samples.raster_difference(tmp_path / "ulp.tif", tmp_path / "a.tif") is None
    assert "up to 0.001" in samples.raster_difference(tmp_path / "far.tif", tmp_path / "a.tif")
    assert "descriptions" in samples.raster_difference(tmp_path / "names.tif", tmp_path / "a.tif")
    assert "uint8 pixels differ" in samples.raster_difference(tmp_path / "int_b.tif", tmp_path / "int_a.tif")


def test_cli_is_registered():
    args = build_parser().parse_args(["samples", "--out", "x", "--check"])
    assert args.command == "samples" and args.check and args.out == "x"
    name, _, add, run = samples.CLI_COMMAND
    assert name == "samples" and callable(add) and callable(run)


def test_oscd_sample_layout_matches_the_real_one(committed):
    images = committed / "oscd" / "Onera Satellite Change Detection dataset - Images"
    assert (images / "train.txt").read_text() == "riverton,lakeside"
    assert (images / "riverton" / "dates.txt").read_text().startswith("date_1: ")
    files = sorted(p.name[-7:] for p in (images / "riverton" / "imgs_1").iterdir())
    assert len(files) == 13 and "B8A.tif" in files
    sizes = {}
    for band in ("B02", "B05", "B01"):
        with rasterio.open(next((images / "riverton" / "imgs_1").glob(f"*_{band}.tif"))) as src:
            sizes[band] = (src.shape, src.dtypes[0], round(src.res[0]))
    assert sizes == {"B02": ((120, 120), "uint16", 10), "B05": ((60, 60), "uint16", 20),
                     "B01": ((20, 20), "uint16", 60)}
    cm = committed / "oscd" / "Onera Satellite Change Detection dataset - Train Labels" / "riverton" / "cm"
    assert Image.open(cm / "cm.png").mode == "RGBA"
    lakeside = cm.parents[1] / "lakeside" / "cm" / "cm.png"
    assert Image.open(lakeside).mode == "RGB"
    with rasterio.open(committed / "oscd_s1" / "data" / "sentinel1_riverton_8_t1.tif") as src:
        s1 = src.read(1)
        assert src.dtypes[0] == "float32" and src.descriptions == ("VV",) and round(src.res[0]) == 9
    assert 0 <= s1.min() and s1.max() <= 1


def test_levir_and_population_samples(committed):
    names = sorted(p.name for p in (committed / "levir" / "A").iterdir())
    assert len(names) == 4
    for name in names:
        a = np.asarray(Image.open(committed / "levir" / "A" / name))
        b = np.asarray(Image.open(committed / "levir" / "B" / name))
        lab = np.asarray(Image.open(committed / "levir" / "label" / name))
        assert a.shape == b.shape == (256, 256, 3) and lab.shape == (256, 256)
        assert set(np.unique(lab)) <= {0, 255} and (lab == 255).any()
    with rasterio.open(committed / "population" / "twin-population_2020_100m.tif") as src:
        pop20 = src.read(1)
        assert src.res == (100.0, 100.0) and src.crs is not None
    with rasterio.open(committed / "population" / "twin-population_2019_100m.tif") as src:
        pop19 = src.read(1)
    assert pop20.shape == (20, 20) and pop20.min() >= 0 and pop20.sum() > pop19.sum() > 0


def test_sample_path(committed, monkeypatch):
    monkeypatch.setenv("URBANKIT_SAMPLES", str(committed))
    assert samples.sample_path("oscd") == committed / "oscd"
    assert samples.sample_path() == committed
    with pytest.raises(Exception, match="unknown sample"):
        samples.sample_path("nope")
