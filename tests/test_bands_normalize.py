"""Band metadata and normalisation (hand-computed values)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from urbankit.data import bands, normalize
from urbankit.errors import ConfigError


def test_band_order_and_metadata():
    assert bands.S2_BAND_NAMES == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                                   "B10", "B11", "B12")
    assert bands.BANDS_10M == ("B02", "B03", "B04", "B08")
    assert bands.BANDS_20M == ("B05", "B06", "B07", "B8A", "B11", "B12")
    assert bands.BANDS_60M == ("B01", "B09", "B10")
    assert len(bands.BANDS_10M_20M) == 10 and "B10" not in bands.BANDS_10M_20M
    assert bands.RGB == ("B04", "B03", "B02")
    assert bands.get_band("B8A").resolution_m == 20
    wl = [b.wavelength_nm for b in bands.S2_BAND_INFO]
    assert wl == sorted(wl)
    assert bands.S1_POLARISATION_NAMES == ("VV", "VH")
    table = bands.band_table()
    assert list(table.index) == list(bands.S2_BAND_NAMES)
    assert table.loc["B04", "resolution_m"] == 10


def test_resolve_and_indices():
    assert bands.resolve_bands("10m") == bands.BANDS_10M
    assert bands.resolve_bands("10m+20m") == bands.BANDS_10M_20M
    assert bands.resolve_bands(["B8A", "B11"]) == ("B8A", "B11")
    assert bands.band_indices("rgb") == [3, 2, 1]
    assert bands.band_indices(["B8A"]) == [8]
    with pytest.raises(ConfigError, match="B13"):
        bands.resolve_bands(["B13"])
    with pytest.raises(ConfigError, match="unknown band subset"):
        bands.resolve_bands("infrared")
    with pytest.raises(ConfigError, match="known bands"):
        bands.get_band("B8")


def test_s2_to_reflectance():
    out = normalize.s2_to_reflectance(np.array([0, 1234, 10000, 12000], dtype=np.uint16))
    np.testing.assert_allclose(out, [0.0, 0.1234, 1.0, 1.0], rtol=1e-6)
    assert out.dtype == np.float32
    raw = normalize.s2_to_reflectance(np.array([12000.0]), clip=False)
    np.testing.assert_allclose(raw, [1.2])
    offs = normalize.s2_to_reflectance(np.array([1000, 3000]), offset=-1000)
    np.testing.assert_allclose(offs, [0.0, 0.2], atol=1e-7)
    nd = normalize.s2_to_reflectance(np.array([0, 500]), nodata=0)
    assert np.isnan(nd[0]) and nd[1] == pytest.approx(0.05)


def test_db_linear_roundtrip_and_floor():
    np.testing.assert_allclose(normalize.db_to_linear(np.array([-10.0, 0.0, 10.0])), [0.1, 1.0, 10.0],
                               rtol=1e-6)
    np.testing.assert_allclose(normalize.linear_to_db(np.array([0.01, 1.0, 100.0])), [-20.0, 0.0, 20.0],
                               rtol=1e-6)
    floored = normalize.linear_to_db(np.array([0.0, -1.0]))
    np.testing.assert_allclose(floored, [-100.0, -100.0])
    assert np.isfinite(floored).all()
    np.testing.assert_allclose(normalize.linear_to_db(np.array([0.0]), floor=1e-3), [-30.0])
    x = np.array([-22.5, -7.0, 3.3], dtype=np.float32)
    np.testing.assert_allclose(normalize.linear_to_db(normalize.db_to_linear(x)), x, atol=1e-5)
    nan = normalize.linear_to_db(np.array([np.nan]))
    assert np.isnan(nan[0])


def test_db_to_unit_and_back():
    np.testing.assert_allclose(normalize.db_to_unit(np.array([-25.0, -12.5, 0.0, -30.0, 4.0])),
                               [0.0, 0.5, 1.0, 0.0, 1.0])
    # DS U-Net range [-25, 5]: -10 dB -> 0.5
    np.testing.assert_allclose(normalize.db_to_unit(np.array([-10.0]), db_range=(-25.0, 5.0)), [0.5])
    np.testing.assert_allclose(normalize.db_to_unit(np.array([5.0]), clip=False), [1.2])
    np.testing.assert_allclose(normalize.unit_to_db(np.array([0.0, 0.5, 1.0])), [-25.0, -12.5, 0.0])
    x = np.array([-24.0, -11.0, -1.5], dtype=np.float32)
    np.testing.assert_allclose(normalize.unit_to_db(normalize.db_to_unit(x)), x, atol=1e-5)
    with pytest.raises(ConfigError, match="db_range"):
        normalize.db_to_unit(np.array([1.0]), db_range=(0.0, -25.0))


def test_xarray_keeps_coords_and_attrs():
    da = xr.DataArray(np.array([[-25.0, 0.0]], dtype=np.float64), dims=("polarisation", "x"),
                      coords={"polarisation": ["VV"], "x": [0.5, 1.5]}, attrs={"site": "a"})
    out = normalize.db_to_unit(da)
    assert isinstance(out, xr.DataArray)
    assert out.dtype == np.float32
    assert out.attrs["site"] == "a"
    assert list(out["polarisation"].values) == ["VV"]
    np.testing.assert_allclose(out.values, [[0.0, 1.0]])
    lin = normalize.db_to_linear(da)
    assert lin.attrs["units"] == "linear power" and lin.attrs["site"] == "a"
    refl = normalize.s2_to_reflectance(xr.DataArray(np.array([5000], np.uint16), dims="x"))
    assert isinstance(refl, xr.DataArray) and float(refl[0]) == pytest.approx(0.5)


def test_percentile_stretch():
    ramp = np.arange(101, dtype=np.float32)       # percentiles p -> value p
    out = normalize.percentile_stretch(ramp, 10, 90)
    assert out[10] == pytest.approx(0.0) and out[90] == pytest.approx(1.0) and out[50] == pytest.approx(0.5)
    assert out[0] == 0.0 and out[100] == 1.0
    img = np.stack([ramp.reshape(1, -1), 10 * ramp.reshape(1, -1)])   # (2, 1, 101)
    img[0, 0, 0] = np.nan
    per = normalize.percentile_stretch(img, 0, 100, per_band=True)
    assert np.isnan(per[0, 0, 0])
    assert np.nanmax(per[0]) == pytest.approx(1.0) and per[1, 0, 100] == pytest.approx(1.0)
    glob = normalize.percentile_stretch(img, 0, 100, per_band=False)
    assert glob[0, 0, 100] == pytest.approx(0.1)
    da = xr.DataArray(img, dims=("band", "y", "x"), coords={"band": ["B04", "B03"]})
    out_da = normalize.percentile_stretch(da, 0, 100)
    assert list(out_da["band"].values) == ["B04", "B03"] and out_da.dtype == np.float32
    allnan = normalize.percentile_stretch(np.full((3, 2, 2), np.nan))
    assert np.isnan(allnan).all()
    with pytest.raises(ConfigError):
        normalize.percentile_stretch(ramp, 98, 2)
