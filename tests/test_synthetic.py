"""The synthetic urban twin: determinism, physics-like statistics, labels, regions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from urbankit.data import synthetic
from urbankit.data.schema import validate_scene
from urbankit.data.synthetic import BARE_SOIL, BUILDING, ROAD, VEGETATION, WATER, make_site

SIZE, DATES = 96, 6


@pytest.fixture(scope="module")
def na():
    return make_site(size=SIZE, n_dates=DATES, region="north_america", seed=3)


@pytest.fixture(scope="module")
def ssa():
    return make_site(size=SIZE, n_dates=DATES, region="sub_saharan_africa", seed=3)


def _band(ds, name, t=-1):
    return ds["optical"].isel(time=t).sel(band=name).values


def _class_mean(values, lc, code):
    m = lc == code
    assert m.sum() > 10, f"class {code} has only {m.sum()} pixels"
    return float(values[m].mean())


def test_schema_and_metadata(na):
    validate_scene(na, expect_crs=True, require=("optical", "sar", "buildings", "change", "population"))
    assert na.sizes == {"time": DATES, "band": 13, "y": SIZE, "x": SIZE, "polarisation": 2}
    assert na.attrs["dataset"] == "synthetic" and na.attrs["region"] == "north_america"
    assert na.attrs["site"] == "twin-01" and na.attrs["split"] == "train"
    assert na.attrs["licence"] and "make_site(" in na.attrs["source"]
    assert na.rio.crs.to_epsg() == 32633
    assert float(na["x"][1] - na["x"][0]) == pytest.approx(10.0)
    times = pd.DatetimeIndex(na["time"].values)
    assert list(times.month) == [1, 2, 3, 4, 5, 6] and times[0] == pd.Timestamp("2019-01-01")
    assert (na["optical_date"].values >= na["time"].values).all()
    assert na["land_cover"].dims == ("time", "y", "x") and na["land_cover"].dtype == np.uint8
    assert not np.isnan(na["optical"].values).any() and not np.isnan(na["sar"].values).any()


def test_deterministic_by_seed(na):
    again = make_site(size=SIZE, n_dates=DATES, region="north_america", seed=3)
    for var in ("optical", "sar", "buildings", "change", "population", "land_cover"):
        np.testing.assert_array_equal(na[var].values, again[var].values)
    other = make_site(size=SIZE, n_dates=DATES, region="north_america", seed=4)
    assert not np.array_equal(na["optical"].values, other["optical"].values)
    assert not np.array_equal(na["buildings"].values, other["buildings"].values)


@pytest.mark.parametrize("region", sorted(synthetic.REGIONS))
def test_spectra_behave(region):
    ds = make_site(size=SIZE, n_dates=2, region=region, seed=1)
    lc = ds["land_cover"].isel(time=-1).values
    red, nir = _band(ds, "B04"), _band(ds, "B08")
    ndvi = (nir - red) / (nir + red + 1e-6)
    assert _class_mean(ndvi, lc, VEGETATION) > _class_mean(ndvi, lc, BUILDING) + 0.2
    assert _class_mean(nir, lc, WATER) < 0.03 < _class_mean(nir, lc, VEGETATION)
    for swir in ("B11", "B12"):
        assert _class_mean(_band(ds, swir), lc, BUILDING) > _class_mean(_band(ds, swir), lc, VEGETATION)
    # bare soil rises with wavelength
    soil = [_class_mean(_band(ds, b), lc, BARE_SOIL) for b in ("B02", "B04", "B08", "B11")]
    assert soil == sorted(soil)


@pytest.mark.parametrize("region", sorted(synthetic.REGIONS))
def test_backscatter_behaves(region):
    ds = make_site(size=SIZE, n_dates=2, region=region, seed=1)
    lc = ds["land_cover"].isel(time=-1).values
    vv = ds["sar"].isel(time=-1).sel(polarisation="VV").values
    vh = ds["sar"].isel(time=-1).sel(polarisation="VH").values
    b, v, w = (_class_mean(vv, lc, c) for c in (BUILDING, VEGETATION, WATER))
    assert b > v > w
    assert w < -20
    assert _class_mean(vh, lc, VEGETATION) < v     # VH below VV


def test_speckle_decreases_with_looks():
    stds = []
    for looks in (1, 4.4, 16, None):
        ds = make_site(size=64, n_dates=2, seed=5, looks=looks, modalities=("sar",))
        lc = ds["land_cover"].isel(time=0).values
        vv = ds["sar"].isel(time=0).sel(polarisation="VV").values
        stds.append(float(vv[lc == WATER].std()))
    assert stds == sorted(stds, reverse=True), stds
    assert stds[0] > 4.0      # single-look speckle is ~5.6 dB


def test_buildings_monotone_and_change_convention(na):
    b = na["buildings"].values
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert (np.diff(b, axis=0) >= 0).all(), "a building disappeared"
    change = na["change"].values
    np.testing.assert_array_equal(change, ((b[-1] == 1) & (b[0] == 0)).astype(np.uint8))
    assert not (change.astype(bool) & (b[0] == 1)).any()
    assert 0 < change.mean() < 0.2
    lc = na["land_cover"].values
    np.testing.assert_array_equal(lc == BUILDING, b == 1)


def test_population_follows_buildings(na):
    pop, b = na["population"].values, na["buildings"].values
    assert (pop[b == 0] == 0).all()
    assert (pop[b == 1] > 0).all()
    totals = pop.sum(axis=(1, 2))
    assert (np.diff(totals) > 0).all()
    counts = b.sum(axis=(1, 2))
    assert np.corrcoef(totals, counts)[0, 1] > 0.95
    # denser in the centre: mean persons per building pixel, inner vs outer ring
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    last, built = pop[-1], b[-1] == 1
    assert last[built & (r < SIZE / 6)].mean() > last[built & (r > SIZE / 3)].mean()


def test_growth_knob_and_growth_types():
    none = make_site(size=SIZE, n_dates=4, seed=2, growth=0.0)
    assert none["change"].values.sum() == 0
    slow = make_site(size=SIZE, n_dates=8, seed=2, growth=0.02)
    fast = make_site(size=SIZE, n_dates=8, seed=2, growth=0.10)
    assert fast["change"].values.mean() > 2 * slow["change"].values.mean() > 0
    gt = fast["growth_type"].values
    b = fast["buildings"].values
    assert set(np.unique(gt[b[-1] == 1])) == {1, 2, 3, 4}       # initial, infill, extension, leapfrog
    assert (gt[b[-1] == 0] == 0).all()
    np.testing.assert_array_equal(gt == 1, b[0] == 1)
    only_infill = make_site(size=SIZE, n_dates=6, seed=2, growth=0.05, growth_mix=(1, 0, 0))
    assert set(np.unique(only_infill["growth_type"].values)) <= {0, 1, 2}


def test_leapfrog_is_detached():
    from scipy.ndimage import distance_transform_edt

    ds = make_site(size=128, n_dates=8, seed=2, growth=0.1, growth_mix=(0, 0, 1))
    gt = ds["growth_type"].values
    initial = gt == 1
    leap = gt == 4
    assert leap.any()
    dist = distance_transform_edt(~initial)
    assert np.median(dist[leap]) > 10       # pixels; new clusters well away from the old city


def test_regions_differ(na, ssa):
    def density(ds):
        # share of the developed area (buildings + yards + streets) covered by buildings
        lc = ds["land_cover"].values[-1]
        b = ds["buildings"].values[-1] == 1
        return b.sum() / max(1, ((lc == BUILDING) | (lc == ROAD)).sum() + (b.sum()))

    assert density(ssa) > density(na)
    lc_na, lc_ssa = na["land_cover"].values[-1], ssa["land_cover"].values[-1]
    blue_na = _class_mean(_band(na, "B02"), lc_na, BUILDING)
    blue_ssa = _class_mean(_band(ssa, "B02"), lc_ssa, BUILDING)
    assert abs(blue_ssa - blue_na) > 0.03          # metal/earth roofs vs shingle/concrete
    vv_na = _class_mean(na["sar"].values[-1, 0], lc_na, BUILDING)
    vv_ssa = _class_mean(ssa["sar"].values[-1, 0], lc_ssa, BUILDING)
    assert abs(vv_na - vv_ssa) > 2.0
    veg = [(ds["land_cover"].values[-1] == VEGETATION).mean() for ds in (na, ssa)]
    assert veg[0] > veg[1]                          # sparser vegetation
    assert (ssa["population"].values[-1].sum() / ssa["buildings"].values[-1].sum()
            > na["population"].values[-1].sum() / na["buildings"].values[-1].sum())


def test_clouds_and_mask():
    ds = make_site(size=SIZE, n_dates=4, seed=1, cloud_fraction=0.3)
    mask = ds["cloud_mask"].values.astype(bool)
    assert 0.05 < mask.mean() < 0.6
    assert not np.isnan(ds["optical"].values).any()
    blue = ds["optical"].sel(band="B02").values
    assert blue[mask].mean() > 0.3 > blue[~mask].mean()
    clear = make_site(size=SIZE, n_dates=4, seed=1)
    assert clear["cloud_mask"].values.sum() == 0
    # labels do not depend on clouds
    np.testing.assert_array_equal(ds["buildings"].values, clear["buildings"].values)


def test_seasonal_vegetation():
    ds = make_site(size=64, n_dates=12, seed=1, region="north_america")
    flat = make_site(size=64, n_dates=12, seed=1, region="north_america", seasonal=False)

    def ndvi_by_month(d):
        lc = d["land_cover"].values
        red = d["optical"].sel(band="B04").values
        nir = d["optical"].sel(band="B08").values
        nd = (nir - red) / (nir + red)
        return np.array([nd[t][lc[t] == VEGETATION].mean() for t in range(12)])

    seasonal, steady = ndvi_by_month(ds), ndvi_by_month(flat)
    assert seasonal[6] > seasonal[0] + 0.1          # July greener than January
    assert np.ptp(steady) < np.ptp(seasonal) / 3


def test_modalities_size_and_errors():
    opt = make_site(size=(40, 56), n_dates=2, modalities=("optical",), crs=None)
    assert "sar" not in opt and opt.sizes["y"] == 40 and opt.sizes["x"] == 56
    assert opt.rio.crs is None
    with pytest.raises(Exception, match="region"):
        make_site(region="atlantis")
    with pytest.raises(Exception, match="cloud_fraction"):
        make_site(cloud_fraction=1.5)
    lake = make_site(size=64, n_dates=1, water="lake")
    assert (lake["land_cover"].values == WATER).mean() > 0.01


def test_make_sites():
    sites = synthetic.make_sites(3, regions=("north_america", "south_asia"), size=32, n_dates=2,
                                 splits=("train", "val", "test"))
    assert [s.attrs["region"] for s in sites] == ["north_america", "south_asia", "north_america"]
    assert [s.attrs["split"] for s in sites] == ["train", "val", "test"]
    assert len({s.attrs["site"] for s in sites}) == 3


def test_tiny_sentinel2():
    img = synthetic.tiny_sentinel2()
    assert img.dims == ("band", "y", "x") and img.shape == (13, 32, 32) and img.dtype == np.float32
    assert list(img["band"].values) == list(synthetic.S2_BAND_NAMES)
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    lc = img["land_cover"].values
    assert lc.dtype == np.uint8 and lc.shape == (32, 32)
    assert set(np.unique(lc)) == {WATER, VEGETATION, BARE_SOIL, ROAD, BUILDING}
    assert img.attrs["classes"][BUILDING] == "building"
    np.testing.assert_array_equal(img.values, synthetic.tiny_sentinel2(seed=0).values)
    assert not np.array_equal(img.values, synthetic.tiny_sentinel2(seed=1).values)
    nir = img.sel(band="B08").values
    assert nir[lc == WATER].mean() < 0.03 < nir[lc == VEGETATION].mean()
    assert synthetic.tiny_sentinel2(64).shape == (13, 64, 64)
    with pytest.raises(ValueError):
        synthetic.tiny_sentinel2(4)


def test_incidence_pixel_size_and_start():
    steep = make_site(size=48, n_dates=1, seed=1, incidence_deg=30.0, looks=None, modalities=("sar",))
    flat = make_site(size=48, n_dates=1, seed=1, incidence_deg=45.0, looks=None, modalities=("sar",))
    lc = steep["land_cover"].values[0]
    veg = lc == VEGETATION
    diff = steep["sar"].values[0, 0][veg].mean() - flat["sar"].values[0, 0][veg].mean()
    assert diff == pytest.approx(0.15 * 15, abs=0.05)        # -0.15 dB per degree of incidence
    ds = make_site(size=32, n_dates=3, pixel_size=20.0, start="2020-06-01", origin=(1000.0, 2000.0))
    assert float(ds["x"][0]) == pytest.approx(1010.0) and float(ds["y"][0]) == pytest.approx(1990.0)
    assert pd.Timestamp(ds["time"].values[-1]) == pd.Timestamp("2020-08-01")


def test_huge_make_site_is_refused_before_allocating(monkeypatch):
    """Issue 13: a size that cannot fit gives a ConfigError saying what fits, not a numpy MemoryError."""
    import urbankit.data.synthetic as synthetic
    from urbankit.errors import ConfigError

    monkeypatch.setattr(synthetic, "_available_memory", lambda: 2 * 2**30)       # pretend 2 GiB are free
    with pytest.raises(ConfigError, match=r"100000x100000 px site with 12 dates needs about \d+.* GiB.*"
                                          r"only 2.0 GiB are available; what fits: size <= \d+ px"):
        synthetic.make_site(size=100_000, n_dates=12)
    assert synthetic.make_site(size=32, n_dates=2).optical.shape[-1] == 32   # small sites unaffected
