"""OSCD and its Sentinel-1 extension on the REAL files in ../shared/data/real (skipped when absent).

Nothing read here is written into the project. A couple of cities keep this well under a minute.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbankit.data import oscd

pytestmark = pytest.mark.real_data

LABELLED = ("abudhabi", "aguasclaras", "beihai", "bercy", "bordeaux", "paris")
UNLABELLED = ("montpellier", "norcia", "rio")


@pytest.fixture(scope="module")
def root(real_data: Path) -> Path:
    path = real_data / "oscd"
    if not path.is_dir():
        pytest.skip("../shared/data/real/oscd is not present")
    return path


@pytest.fixture(scope="module")
def s1_root(real_data: Path) -> Path:
    return real_data / "oscd_s1"


@pytest.fixture(scope="module")
def abudhabi(root, s1_root):
    return oscd.read_city(root, "abudhabi", s1_root=s1_root)


@pytest.fixture(scope="module")
def bordeaux(root, s1_root):
    return oscd.read_city(root, "bordeaux", s1_root=s1_root)


def _gm(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_gradient_magnitude(np.nan_to_num(a - np.nanmean(a)), sigma)


def _corr(a: np.ndarray, b: np.ndarray, dy: int, dx: int, margin: int = 12) -> float:
    b = np.roll(b, (dy, dx), axis=(0, 1))
    sl = (slice(margin, -margin), slice(margin, -margin))
    return float(np.corrcoef(a[sl].ravel(), b[sl].ravel())[0, 1])


def _best_shift(a: np.ndarray, b: np.ndarray, r: int = 4) -> tuple[int, int]:
    scores = {(dy, dx): _corr(a, b, dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)}
    return max(scores, key=scores.get)


def test_splits_of_the_shared_copy(root):
    assert sorted(oscd.list_cities(root, "train")) == sorted(LABELLED)
    assert sorted(oscd.list_cities(root, "test")) == sorted(UNLABELLED)
    assert len(oscd.list_cities(root, "all", present_only=False)) == 24


def test_abudhabi_date2_is_aligned_onto_the_date1_grid(root, abudhabi):
    images = root / "Onera Satellite Change Detection dataset - Images" / "abudhabi"
    with rasterio.open(next((images / "imgs_1").glob("*_B02.tif"))) as s1, \
            rasterio.open(next((images / "imgs_2").glob("*_B02.tif"))) as s2:
        assert s1.shape == (799, 785) and s2.shape == (795, 782)          # the size mismatch
    s = abudhabi
    assert s.optical.shape == (2, 13, 799, 785) and s.rio.crs.to_epsg() == 4326
    assert not np.isnan(s.optical.values).any()
    g1 = _gm(s.optical.sel(band="B08").isel(time=0).values, 1.5)
    g2 = _gm(s.optical.sel(band="B08").isel(time=1).values, 1.5)
    dy, dx = _best_shift(g1, g2)
    assert abs(dy) <= 1 and abs(dx) <= 1                                # georeference alignment (the data
    assert _corr(g1, g2, 0, 0) > _corr(g1, g2, 4, 4) + 0.15             # itself has ~1 px residual)


def test_label_fractions_and_grids(root):
    paths = oscd.find_layout(root)
    fractions = {}
    for city in LABELLED:
        tif = paths.labels[0] / city / "cm" / f"{city}-cm.tif"
        images = paths.images / city / "imgs_1"
        with rasterio.open(next(images.glob("*_B02.tif"))) as src:
            shape = src.shape
        label = oscd.read_label(tif, shape=shape)
        png = oscd.read_label(tif.parent / "cm.png", shape=shape)
        np.testing.assert_array_equal(label, png)        # the two label files agree after decoding
        fractions[city] = float(label.mean())
    assert all(0.0025 < f < 0.04 for f in fractions.values()), fractions
    assert round(fractions["paris"], 4) == 0.0029 and round(fractions["abudhabi"], 4) == 0.0376


def test_abudhabi_scene(abudhabi):
    s = abudhabi
    assert s.change.shape == (799, 785) and 0.03 < float(s.change.mean()) < 0.045
    assert s.attrs["split"] == "train" and s.attrs["region"] == "middle_east"
    assert s.attrs["sar_orbits"] == "130" and list(s.polarisation.values) == ["VV"]
    assert -25.01 < float(s.sar.min()) and float(s.sar.max()) < 5.01
    assert 0.9 < float(np.nanmax(s.optical.sel(band="B08"))) <= 1.0 or float(np.nanmax(s.optical)) <= 1.0


def test_s1_lines_up_with_s2(bordeaux):
    s = bordeaux
    assert s.attrs["sar_orbits"] == "8,30,81"
    b08 = _gm(s.optical.sel(band="B08").isel(time=0).values, 1.5)
    vv = _gm(s.sar.isel(time=0, polarisation=0).values, 2.0)
    dy, dx = _best_shift(b08, vv)
    assert abs(dy) <= 1 and abs(dx) <= 1
    assert _corr(b08, vv, 0, 0) > _corr(b08, vv, 4, 4) + 0.08


def test_unlabelled_test_city_and_single_orbit(root, s1_root):
    assert oscd.list_s1_orbits(s1_root, "norcia") == [22, 44, 95, 117]
    s = oscd.read_city(root, "norcia", bands="rgb", s1_root=s1_root, orbit=44)
    assert "change" not in s and s.attrs["split"] == "test" and s.attrs["sar_orbits"] == "44"
    assert s.optical.shape == (2, 3, 241, 385) and s.sar.shape == (2, 1, 241, 385)


def test_real_codings_and_coverage_margins(root, s1_root):
    """Issue 13 on the real files: the stated codings fit, a wrong one raises, and the real
    date-2 / Sentinel-1 rasters cover the date-1 grid far above the 90 % threshold."""
    from urbankit.data import raster
    from urbankit.errors import DataFormatError

    paths = oscd.find_layout(root)
    tif = paths.labels[0] / "paris" / "cm" / "paris-cm.tif"
    with pytest.raises(DataFormatError, match=r"paris-cm\.tif: label values \[1, 2\].*label_coding='1/2'"):
        oscd.read_label(tif, label_coding="0/1")
    worst = 1.0
    for city in ("abudhabi", "norcia"):
        ref, _ = raster.read_grid(next((paths.images / city / "imgs_1").glob("*_B02.tif")))
        others = [*(paths.images / city / "imgs_2").glob("*.tif"),
                  *(s1_root / "data").glob(f"sentinel1_{city}_*.tif")]
        for path in others:
            worst = min(worst, raster.coverage(raster.read_grid(path)[0], ref))
    assert raster.DEFAULT_MIN_COVERAGE < 0.97 < worst
