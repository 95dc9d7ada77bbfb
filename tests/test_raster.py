"""Tests of urbankit.data.raster: grids, reading, warping and coverage."""
from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from urbankit.data import raster
from urbankit.errors import ConfigError, DataFormatError

CRS = "EPSG:32633"


def _write(path, arr, transform, crs=CRS):
    import rasterio

    arr = np.asarray(arr)
    arr = arr[None] if arr.ndim == 2 else arr
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype, crs=crs, transform=transform) as dst:
        dst.write(arr)
    return path


def _grid(n=20, px=10.0, x0=500000.0, y0=5200000.0, crs=CRS):
    from rasterio.crs import CRS as RCRS

    return raster.Grid((n, n), Affine(px, 0, x0, 0, -px, y0), RCRS.from_user_input(crs))


def test_pixel_centres_from_affine():
    y, x = raster.pixel_centres(Affine(10, 0, 100, 0, -10, 500), (2, 3))
    assert x.tolist() == [105, 115, 125]
    assert y.tolist() == [495, 485]
    assert _grid().bounds == (500000.0, 5199800.0, 500200.0, 5200000.0)


def test_read_raster_and_grid(tmp_path):
    p = _write(tmp_path / "a.tif", np.arange(12, dtype=np.uint16).reshape(3, 4), Affine(10, 0, 0, 0, -10, 30))
    arr, grid, info = raster.read_raster(p)
    assert arr.shape == (1, 3, 4) and info["dtype"] == "uint16" and grid.shape == (3, 4)
    g2, info2 = raster.read_grid(p)
    assert raster.same_grid(grid, g2) and info2["count"] == 1
    with pytest.raises(DataFormatError, match="has 1 band"):
        raster.read_raster(p, bands=[2])
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataFormatError, match="bad.tif"):
        raster.read_raster(tmp_path / "bad.tif")
    with pytest.raises(DataFormatError, match="not found"):
        raster.read_grid(tmp_path / "none.tif")


def test_warp_to_grid_shift_and_outside():
    src = _grid(n=10)
    dst = _grid(n=10, x0=500050.0)                    # 5 px to the east
    arr = np.tile(np.arange(10, dtype=np.float32), (10, 1))
    out = raster.warp_to_grid(arr, src, dst, "nearest")
    assert np.array_equal(out[:, :5], arr[:, 5:])
    assert np.isnan(out[:, 5:]).all()
    assert np.array_equal(raster.warp_to_grid(arr, src, src), arr)
    with pytest.raises(ConfigError):
        raster.warp_to_grid(arr, src, dst, "spline")


@pytest.mark.parametrize("x0, expected",
                         [(500000.0, 1.0), (500100.0, 0.5), (500190.0, 0.05), (501000.0, 0.0)])
def test_coverage_fraction(x0, expected):
    assert raster.coverage(_grid(x0=x0), _grid()) == pytest.approx(expected)


def test_coverage_other_crs_and_wrong_crs():
    ref = _grid()
    # the same footprint expressed in geographic coordinates covers the reference fully
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(CRS, "EPSG:4326", *ref.bounds)
    geo = raster.Grid((20, 20), Affine((right - left) / 18, 0, left - (right - left) / 18, 0,
                                       -(top - bottom) / 18, top + (top - bottom) / 18), "EPSG:4326")
    assert raster.coverage(geo, ref) == pytest.approx(1.0)
    # UTM numbers labelled as EPSG:4326 (a wrong CRS) cover nothing
    wrong = raster.Grid(ref.shape, ref.transform, "EPSG:4326")
    assert raster.coverage(wrong, ref) == 0.0
    with pytest.raises(DataFormatError, match="wrong.tif.*does not overlap"):
        raster.require_coverage(wrong, ref, "wrong.tif", ref_name="ref.tif")


def test_require_coverage_threshold():
    ref = _grid()
    half = _grid(x0=500100.0)
    with pytest.raises(DataFormatError, match=r"covers only 50.0 %"):
        raster.require_coverage(half, ref, "half.tif", ref_name="ref.tif")
    frac = raster.require_coverage(half, ref, "half.tif", ref_name="ref.tif", min_coverage=0.4)
    assert frac == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        raster.require_coverage(half, ref, "half.tif", ref_name="ref.tif", min_coverage=2)
