"""Property-style tests per reader (issue 13): random label codings, CRSs and overlaps are either
read correctly or raise an urbankit error; a reader never returns a NaN-filled or relabelled
scene without one.

Each case draws its parameters from a seeded generator (the seed is the test id), writes small
GeoTIFFs in tmp_path and checks the outcome against what the parameters imply.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from urbankit.data import oscd, spacenet7
from urbankit.data.checks import LABEL_CODINGS
from urbankit.data.generic import read_time_series
from urbankit.data.raster import DEFAULT_MIN_COVERAGE
from urbankit.errors import UrbankitError

X0, Y0, RES, N = 500000.0, 4650000.0, 10.0, 48
CODINGS = list(LABEL_CODINGS)
SEEDS = range(12)


def _write(path: Path, data: np.ndarray, transform, crs="EPSG:32633", nodata=None) -> Path:
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
    return path


def _truth(rng: np.random.Generator, shape: tuple[int, int], single: bool) -> np.ndarray:
    if single:
        return np.full(shape, int(rng.integers(0, 2)), np.uint8)
    truth = (rng.random(shape) < 0.3).astype(np.uint8)
    truth[0, 0], truth[0, 1] = 0, 1                                   # both classes present
    return truth


def _encode(truth: np.ndarray, coding: str) -> np.ndarray:
    neg, pos = LABEL_CODINGS[coding]
    return np.where(truth == 1, pos, neg).astype(np.uint8)


def _shift_fraction(rng: np.random.Generator) -> float:
    """A shift as a fraction of the width: half the draws small (read), half large (raise)."""
    return float(rng.uniform(0.0, 0.1) if rng.integers(2) else rng.uniform(0.1, 1.3))


def _s2(path: Path, x0: float = X0, y0: float = Y0, n: int = N, res: float = RES) -> Path:
    xs = x0 + res * (np.arange(n) + 0.5)
    ramp = np.broadcast_to((1000.0 + (xs - X0) * 2.0)[None, :], (n, n))
    return _write(path, np.stack([ramp + 10 * b for b in range(13)]).astype(np.uint16),
                  from_origin(x0, y0, res, res), nodata=0)


# ------------------------------------------------------------------ GeoTIFF reader
@pytest.mark.parametrize("seed", SEEDS)
def test_generic_label_codings(tmp_path, seed):
    rng = np.random.default_rng([13, seed])
    file_coding, told = CODINGS[rng.integers(3)], CODINGS[rng.integers(3)]
    single = bool(rng.integers(0, 4) == 0) and file_coding == told   # one-class: only the right coding
    truth = _truth(rng, (N, N), single)
    lp = _write(tmp_path / "cm.tif", _encode(truth, file_coding), from_origin(X0, Y0, RES, RES))
    ref = _s2(tmp_path / "S2_20190101.tif")
    try:
        scene = read_time_series(s2_paths=[ref], label_path=lp, label_coding=told)
    except UrbankitError as exc:
        assert file_coding != told and "cm.tif" in str(exc)
        return
    np.testing.assert_array_equal(scene.change.values, truth)       # read correctly, never relabelled
    assert file_coding == told or single


@pytest.mark.parametrize("seed", SEEDS)
def test_generic_crs_and_overlap(tmp_path, seed):
    from rasterio.warp import transform_bounds

    rng = np.random.default_rng([14, seed])
    ref = _s2(tmp_path / "S2_20190101.tif")
    kind = ["shift", "other_crs", "wrong_crs"][rng.integers(3)]
    frac = _shift_fraction(rng)                               # shift as a fraction of the width
    if kind == "shift":
        other = _s2(tmp_path / "S2_20200101.tif", x0=X0 + frac * N * RES)
        coverage = max(0.0, 1.0 - frac)
    elif kind == "other_crs":                                        # the same area in geographic degrees
        left, bottom, right, top = transform_bounds("EPSG:32633", "EPSG:4326", X0 - 50, Y0 - N * RES - 50,
                                                    X0 + N * RES + 50, Y0 + 50)
        n = 60
        data = np.full((13, n, n), 1500, np.uint16)
        transform = from_origin(left, top, (right - left) / n, (top - bottom) / n)
        other = _write(tmp_path / "S2_20200101.tif", data, transform, crs="EPSG:4326", nodata=0)
        coverage = 1.0
    else:                                                            # UTM numbers labelled as degrees
        other = _s2(tmp_path / "S2_20200101.tif")
        with rasterio.open(other, "r+") as dst:
            dst.crs = "EPSG:4326"
        coverage = 0.0
    try:
        scene = read_time_series(s2_paths=[ref, other])
    except UrbankitError as exc:
        assert coverage < DEFAULT_MIN_COVERAGE and "S2_20200101.tif" in str(exc)
        return
    assert coverage >= DEFAULT_MIN_COVERAGE
    nan = float(np.isnan(scene.optical.values[1]).mean())
    assert nan <= 1.0 - coverage + 0.05                              # no NaN beyond what the overlap implies


# ------------------------------------------------------------------ OSCD reader
@pytest.fixture
def oscd_copy(repo_root, tmp_path) -> Path:
    shutil.copytree(repo_root / "data_samples" / "oscd", tmp_path / "oscd")
    return tmp_path / "oscd"


_LABEL = "Onera Satellite Change Detection dataset - Train Labels/lakeside/cm/lakeside-cm.tif"
_IMAGES = "Onera Satellite Change Detection dataset - Images"


@pytest.mark.parametrize("seed", SEEDS)
def test_oscd_label_codings(oscd_copy, seed):
    from urbankit.data.sample_files import write_tif

    rng = np.random.default_rng([15, seed])
    file_coding = CODINGS[rng.integers(3)]
    told = None if rng.integers(2) else CODINGS[rng.integers(3)]
    effective = told or "1/2"                                        # the dataset's stated TIFF coding
    single = bool(rng.integers(0, 4) == 0) and file_coding == effective
    truth = _truth(rng, (120, 120), single)
    write_tif(oscd_copy / _LABEL, _encode(truth, file_coding))
    try:
        scene = oscd.read_city(oscd_copy, "lakeside", bands="rgb", label_coding=told)
    except UrbankitError as exc:
        assert file_coding != effective and "lakeside-cm.tif" in str(exc)
        return
    np.testing.assert_array_equal(scene.change.values, truth)
    assert file_coding == effective or single


@pytest.mark.parametrize("seed", SEEDS)
def test_oscd_date2_overlap_and_crs(oscd_copy, seed):
    rng = np.random.default_rng([16, seed])
    folder = oscd_copy / _IMAGES / "lakeside" / "imgs_2"
    band = ["B02", "B03", "B04"][rng.integers(3)]
    path = next(folder.glob(f"*_{band}.tif"))
    frac = _shift_fraction(rng)
    wrong_crs = bool(rng.integers(0, 3) == 0)
    with rasterio.open(path) as src:
        arr, t, crs = src.read(), src.transform, src.crs
    shift = frac * arr.shape[2] * t.a
    _write(path, arr, from_origin(t.c + shift, t.f, t.a, -t.e), crs="EPSG:4326" if wrong_crs else crs)
    coverage = 0.0 if wrong_crs else max(0.0, 1.0 - frac)
    try:
        scene = oscd.read_city(oscd_copy, "lakeside", bands="rgb")
    except UrbankitError as exc:
        assert coverage < DEFAULT_MIN_COVERAGE and path.name in str(exc)
        return
    assert coverage >= DEFAULT_MIN_COVERAGE
    nan = float(np.isnan(scene.optical.sel(band=band).isel(time=1).values).mean())
    assert nan <= 1.0 - coverage + 0.05


# ------------------------------------------------------------------ SpaceNet7-S1S2 reader
@pytest.mark.parametrize("seed", range(6))
def test_spacenet7_overlap(repo_root, tmp_path, seed):
    rng = np.random.default_rng([17, seed])
    root = tmp_path / "sn7"
    shutil.copytree(repo_root / "data_samples" / "spacenet7_s1s2", root)
    site = spacenet7.list_sites(root)[0]
    path = sorted((root / site / "sentinel2").glob("*.tif"))[-1]
    frac = _shift_fraction(rng)
    with rasterio.open(path) as src:
        arr, t, crs = src.read(), src.transform, src.crs
    _write(path, arr, from_origin(t.c + frac * arr.shape[2] * t.a, t.f, t.a, -t.e), crs=crs)
    coverage = max(0.0, 1.0 - frac)
    try:
        scene = spacenet7.read_site(root, site)
    except UrbankitError as exc:
        assert coverage < DEFAULT_MIN_COVERAGE and path.name in str(exc)
        return
    assert coverage >= DEFAULT_MIN_COVERAGE
    assert float(np.isnan(scene.optical.values[-1]).mean()) <= 1.0 - coverage + 0.05
