"""SDG 11.3.1 indicators and DEGURBA city definition: hand-computed examples."""
from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from urbankit import sdg
from urbankit.data.raster import Grid, mask_to_grid
from urbankit.data.synthetic_region import make_city_region, truth_indicators

UTM = "EPSG:32633"


def _grid(n=10, cell=100.0):
    return Affine(cell, 0, 500_000.0, 0, -cell, 5_000_000.0)


# ---------------------------------------------------------------- indicator formulas by hand


def test_lcr_pgr_lcrpgr_by_hand():
    # 10 years, built-up 100 -> 150 km2, population 1.0 -> 1.2 M
    assert sdg.lcr(100, 150, 10) == pytest.approx(math.log(1.5) / 10)
    assert sdg.pgr(1e6, 1.2e6, 10) == pytest.approx(math.log(1.2) / 10)
    assert math.isnan(sdg.lcr(0, 10, 5))
    assert math.isnan(sdg.pgr(10, 10, 0))


def test_sdg_whole_grid_hand_example():
    # 10 x 10 cells of 100 m (0.01 km2): t1 4 built cells, t2 9 (a 3x3 block)
    b1 = np.zeros((10, 10), np.uint8)
    b1[4:6, 4:6] = 1
    b2 = np.zeros((10, 10), np.uint8)
    b2[4:7, 4:7] = 1
    pop1 = np.full((10, 10), 10.0)
    pop2 = np.full((10, 10), 11.0)
    r = sdg.sdg_11_3_1(b1, b2, pop1, pop2, 2000, 2010, city_definition=None, transform=_grid(), crs=UTM)
    lcr = math.log(0.09 / 0.04) / 10
    pgr = math.log(1100 / 1000) / 10
    assert r["built_up_area_t1"] == pytest.approx(0.04)
    assert r["built_up_area_t2"] == pytest.approx(0.09)
    assert r["population_t1"] == pytest.approx(1000)
    assert r["LCR"] == pytest.approx(lcr)
    assert r["PGR"] == pytest.approx(pgr)
    assert r["LCRPGR"] == pytest.approx(lcr / pgr)
    assert r["built_up_per_capita_t1"] == pytest.approx(0.04e6 / 1000)  # 40 m2/person
    assert r["built_up_per_capita_t2"] == pytest.approx(0.09e6 / 1100)
    assert r["built_up_per_capita_change"] == pytest.approx(0.09e6 / 1100 - 40.0)
    assert r["built_up_per_capita_change_pct"] == pytest.approx((0.09e6 / 1100 - 40.0) / 40.0 * 100)
    assert r["built_up_change_pct"] == pytest.approx(125.0)
    assert r["new_development_km2"] == pytest.approx(0.05)
    assert r["city_extent_area"] == pytest.approx(1.0)
    # the 5 new cells touch the t1 block: all extension
    assert r["new_extension_km2"] == pytest.approx(0.05)
    assert r["new_infill_km2"] == 0 and r["new_leapfrog_km2"] == 0
    assert r["new_extension_pct"] == pytest.approx(100.0)
    assert "city_definition" in r.parameters and "built share >= 0.1" in r.parameters["builtup_rule"]
    text = repr(r)
    assert "builtup_rule" in text and "LCRPGR" in text
    md = r.to_markdown()
    assert "| LCRPGR |" in md and "- extent:" in md


def test_new_development_infill_extension_leapfrog():
    b1 = np.zeros((12, 12), bool)
    b1[2:7, 2:7] = True
    b1[4, 4] = False  # an enclosed gap -> infill when built
    b2 = b1.copy()
    b2[4, 4] = True  # infill
    b2[2:5, 7] = True  # extension (touching, 3 cells)
    b2[10:12, 10:12] = True  # leapfrog (4 cells, far away)
    codes, extent = sdg.new_development(b1, b2)
    assert extent[4, 4] and not extent[0, 0]
    assert (codes == 1).sum() == 1 and codes[4, 4] == 1
    assert (codes == 2).sum() == 3
    assert (codes == 3).sum() == 4
    # diagonal contact is contiguous (8-connectivity)
    b3 = b1.copy()
    b3[7, 7] = True
    codes3, _ = sdg.new_development(b1, b3)
    assert codes3[7, 7] == 2
    # a chain of new cells that touches the extent is extension as a whole
    b4 = b1.copy()
    b4[4, 7:11] = True
    codes4, _ = sdg.new_development(b1, b4)
    assert (codes4 == 2).sum() == 4


def test_buffer_extent_makes_near_cells_infill():
    b1 = np.zeros((15, 15), bool)
    b1[5:10, 5:10] = True
    b2 = b1.copy()
    b2[7, 11] = True  # one cell gap from the block
    codes, _ = sdg.new_development(b1, b2)
    assert codes[7, 11] == 3  # leapfrog without buffer
    codes_b, _ = sdg.new_development(b1, b2, method="buffer", buffer_cells=2)
    assert codes_b[7, 11] == 1  # inside a 2-cell buffer -> infill


def test_shrinking_city_warns_and_keeps_lcr_pgr():
    b1 = np.zeros((10, 10), np.uint8)
    b1[3:6, 3:6] = 1
    b2 = b1.copy()
    b2[3:6, 6] = 1
    pop1 = np.full((10, 10), 20.0)
    pop2 = np.full((10, 10), 18.0)
    with pytest.warns(sdg.PopulationDeclineWarning, match="negative"):
        r = sdg.sdg_11_3_1(b1, b2, pop1, pop2, 2010, 2020, city_definition=None, transform=_grid(), crs=UTM)
    assert r["PGR"] == pytest.approx(math.log(0.9) / 10)
    assert r["PGR"] < 0
    assert r["LCR"] == pytest.approx(math.log(12 / 9) / 10)
    assert r["LCRPGR"] < 0
    assert r["built_up_per_capita_t2"] > r["built_up_per_capita_t1"]
    assert any("negative" in w for w in r.warnings)


def test_zero_population_growth_gives_nan_ratio():
    b1 = np.zeros((10, 10), np.uint8)
    b1[3:6, 3:6] = 1
    b2 = b1.copy()
    b2[6, 3] = 1
    pop = np.full((10, 10), 5.0)
    with pytest.warns(sdg.ZeroPopulationGrowthWarning):
        r = sdg.sdg_11_3_1(b1, b2, pop, pop, 2000, 2010, city_definition=None, transform=_grid(), crs=UTM)
    assert math.isnan(r["LCRPGR"]) and r["PGR"] == 0 and r["LCR"] > 0


def test_empty_extent_warns():
    b = np.zeros((20, 20), np.uint8)
    pop = np.full((20, 20), 0.1)  # far below any density threshold
    with pytest.warns(sdg.EmptyExtentWarning):
        r = sdg.sdg_11_3_1(b, b, pop, pop, 2000, 2010, transform=_grid(), crs=UTM)
    assert r["city_extent_area"] == 0
    assert math.isnan(r["LCR"])


def test_fraction_threshold_and_fraction_area():
    f1 = np.zeros((10, 10), np.float32)
    f1[0, :4] = [0.05, 0.1, 0.5, 1.0]  # 0.05 is below 10 %
    f2 = f1.copy()
    f2[1, 0] = 0.2
    r = sdg.sdg_11_3_1(f1, f2, np.ones((10, 10)), np.ones((10, 10)) * 2, 2000, 2010, city_definition=None,
                       transform=_grid(), crs=UTM)
    assert r["built_up_area_t1"] == pytest.approx(0.03)
    r2 = sdg.sdg_11_3_1(f1, f2, np.ones((10, 10)), np.ones((10, 10)) * 2, 2000, 2010, city_definition=None,
                        transform=_grid(), crs=UTM, builtup_area="fraction")
    assert r2["built_up_area_t1"] == pytest.approx((0.05 + 0.1 + 0.5 + 1.0) * 0.01)
    # m2 of built surface per 100 m cell: 1,000 m2 = 10 % -> built-up
    m2 = np.zeros((10, 10), np.float32)
    m2[0, 0], m2[0, 1] = 999.0, 1000.0
    mask = sdg.builtup_mask(m2, 0.1, "m2", np.full(10, 10_000.0))
    assert not mask[0, 0] and mask[0, 1]


# ---------------------------------------------------------------- true cell areas


def test_projected_cell_area():
    g = Grid((5, 5), _grid(cell=30.0), CRS.from_user_input(UTM))
    assert sdg.cell_area_km2(g) == pytest.approx(np.full(5, 0.0009))
    moll = Grid((3, 3), _grid(cell=100.0), CRS.from_user_input("ESRI:54009"))
    assert sdg.cell_area_km2(moll)[0] == pytest.approx(0.01)


def test_geographic_cell_area_against_hand_computation():
    # one 1 x 1 degree cell at the equator (0..1 N): sphere R^2 * dlon * (sin 1deg - sin 0)
    g = Grid((1, 1), Affine(1.0, 0, 10.0, 0, -1.0, 1.0), CRS.from_user_input("EPSG:4326"))
    r = 6371007.181
    hand = r * r * math.radians(1) * math.sin(math.radians(1)) / 1e6
    assert hand == pytest.approx(12363.7, abs=0.1)
    assert sdg.cell_area_km2(g, "spherical")[0] == pytest.approx(hand)
    # ellipsoid: 1 deg of longitude at the equator (111.3195 km) x ~1 deg latitude (110.574 km)
    assert sdg.cell_area_km2(g)[0] == pytest.approx(111.3195 * 110.574, rel=2e-4)
    # at 60 N a cell is about half as large (cos 60 = 0.5)
    g60 = Grid((1, 1), Affine(1.0, 0, 10.0, 0, -1.0, 60.5), CRS.from_user_input("EPSG:4326"))
    assert sdg.cell_area_km2(g60, "spherical")[0] / hand == pytest.approx(0.5, rel=0.01)


def test_sdg_on_geographic_grid():
    # 0.001 deg cells near 45 N; area per row from the latitude
    tr = Affine(0.001, 0, 10.0, 0, -0.001, 45.01)
    b1 = np.zeros((10, 10), bool)
    b1[2, 2:5] = True
    b2 = b1.copy()
    b2[3, 2:5] = True
    rows = sdg.cell_area_km2(Grid((10, 10), tr, CRS.from_user_input("EPSG:4326")))
    r = sdg.sdg_11_3_1(b1, b2, np.ones((10, 10)), np.ones((10, 10)) * 1.1, 2000, 2005, city_definition=None,
                       transform=tr, crs="EPSG:4326")
    assert r["built_up_area_t1"] == pytest.approx(3 * rows[2])
    assert r["built_up_area_t2"] == pytest.approx(3 * rows[2] + 3 * rows[3])
    assert rows[3] > rows[2] > 0  # row 3 lies south of row 2: cells grow towards the equator
    assert "geographic" in r.parameters["cell_areas"]


# ---------------------------------------------------------------- DEGURBA


def _area(shape):
    return np.ones(shape)


def test_degurba_population_threshold():
    pop = np.zeros((8, 8))
    pop[1:3, 1:3] = 20_000  # 80,000 in 4 cells -> centre
    pop[5:7, 5:7] = 10_000  # 40,000 -> dense but too small
    mask, labels, table = sdg.degurba(pop, _area(pop.shape), "degurba_centre")
    assert mask[1:3, 1:3].all() and not mask[5:7, 5:7].any()
    assert len(table) == 1 and table["population"][0] == pytest.approx(80_000)
    # a lower min_population keeps both
    mask2, _, table2 = sdg.degurba(pop, _area(pop.shape), "degurba_centre", min_population=30_000)
    assert mask2[5:7, 5:7].all() and len(table2) == 2


def test_degurba_4_vs_8_connectivity():
    pop = np.zeros((6, 6))
    pop[1, 1] = pop[2, 2] = 30_000  # diagonal neighbours, 30,000 each
    centre = sdg.CityDefinition("c", 1500, 50_000, 4, 0.0, False)
    cluster = sdg.CityDefinition("k", 1500, 50_000, 8, 0.0, False)
    m4, _, t4 = sdg.degurba(pop, _area(pop.shape), centre)
    m8, _, t8 = sdg.degurba(pop, _area(pop.shape), cluster)
    assert not m4.any() and len(t4) == 0  # two clusters of 30,000 < 50,000
    assert m8[1, 1] and m8[2, 2] and len(t8) == 1  # one cluster of 60,000


def test_degurba_hole_filling():
    pop = np.zeros((9, 9))
    pop[1:8, 1:8] = 5_000
    pop[4, 4] = 0  # a 1 km2 hole inside a dense block
    nofill = sdg.CityDefinition("c", 1500, 50_000, 4, 0.0, False)
    m0, _, _ = sdg.degurba(pop, _area(pop.shape), nofill)
    assert not m0[4, 4]
    fill = sdg.CityDefinition("c", 1500, 50_000, 4, 15.0, False)
    m1, _, _ = sdg.degurba(pop, _area(pop.shape), fill)
    assert m1[4, 4]
    # a hole of 16 km2 (4x4) is kept, one of 15 km2 or more is not filled
    pop2 = np.zeros((10, 10))
    pop2[0:10, 0:10] = 5_000
    pop2[3:7, 3:7] = 0
    m2, _, _ = sdg.degurba(pop2, _area(pop2.shape), fill)
    assert not m2[3:7, 3:7].any()
    # the same hole with cells of 0.9 km2 (14.4 km2 < 15) is filled
    m3, _, _ = sdg.degurba(pop2, np.full(pop2.shape, 0.9), fill)
    assert m3[3:7, 3:7].all()


def test_degurba_majority_smoothing():
    pop = np.zeros((7, 7))
    pop[1:6, 1:6] = 5_000
    pop[1, 3] = 0  # a notch at the top edge: 5 of its 8 neighbours are in the centre
    m_plain, _, _ = sdg.degurba(pop, _area(pop.shape), sdg.CityDefinition("c", 1500, 50_000, 4, 0.0, False))
    assert not m_plain[1, 3]
    m_smooth, _, _ = sdg.degurba(pop, _area(pop.shape), sdg.CityDefinition("c", 1500, 50_000, 4, 0.0, True))
    assert m_smooth[1, 3]
    # an outside corner cell (3 of 8 neighbours) is not added
    assert not m_smooth[0, 0] and not m_smooth[0, 3]


def test_presets_and_gee_app_unverified():
    assert sdg.CITY_PRESETS["degurba_centre"].density_threshold == 1500
    assert sdg.CITY_PRESETS["degurba_centre"].min_population == 50_000
    assert sdg.CITY_PRESETS["degurba_cluster"].connectivity == 8
    gee = sdg.CITY_PRESETS["gee_app"]
    assert (gee.density_threshold, gee.min_population) == (300, 1_000_000)
    assert not gee.verified and "unverified" in gee.note.lower()
    with pytest.raises(sdg.ConfigError):
        sdg.degurba(np.zeros((3, 3)), np.ones((3, 3)), "no_such_preset")


def test_population_is_summed_to_1km():
    # 100 m cells with 20 persons each: 2,000 persons per km2 after summing 10x10 blocks
    pop = np.full((25, 30), 20.0, np.float32)
    p1, a1, g1, factor = sdg.aggregate_population(pop, transform=_grid(cell=100.0), crs=UTM)
    assert factor == 10 and p1.shape == (3, 3)
    assert p1[0, 0] == pytest.approx(2000.0) and a1[0, 0] == pytest.approx(1.0)
    # the partial edge block has its true, smaller area: same density
    assert p1[2, 0] == pytest.approx(1000.0) and a1[2, 0] == pytest.approx(0.5)
    assert p1.sum() == pytest.approx(pop.sum())
    assert g1.res == (1000.0, 1000.0)


def test_mask_to_grid_same_crs():
    src = Grid((2, 2), _grid(cell=1000.0), CRS.from_user_input(UTM))
    dst = Grid((20, 20), _grid(cell=100.0), CRS.from_user_input(UTM))
    m = np.array([[True, False], [False, True]])
    out = mask_to_grid(m, src, dst)
    assert out[:10, :10].all() and not out[:10, 10:].any() and out[10:, 10:].all()


# ---------------------------------------------------------------- synthetic region truth


def test_synthetic_region_truth_matches_indicators():
    ds = make_city_region(seed=3, size_km=20, population_start=300_000)
    b, p = ds["built_up"], ds["population"]
    truth = truth_indicators(ds, 2000, 2010)
    r = sdg.sdg_11_3_1(b.isel(time=0), b.isel(time=1), p.isel(time=0), p.isel(time=1), 2000, 2010,
                       city_definition=None)
    for name, value in truth.items():
        assert r[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_synthetic_shrinking_region_and_city_definition():
    ds = make_city_region(seed=1, size_km=30, population_growth=-0.01)
    b, p = ds["built_up"], ds["population"]
    with pytest.warns(sdg.PopulationDeclineWarning):
        r = sdg.sdg_11_3_1(b.isel(time=0), b.isel(time=2), p.isel(time=0), p.isel(time=2), 2000, 2020)
    assert r["LCR"] > 0 and r["PGR"] < 0
    assert 0 < r["city_extent_area"] < 900
    assert r.city["t1"].factor == 10
    fc = r.polygons("city_extent", to_crs="EPSG:4326")
    assert fc["features"] and fc["features"][0]["geometry"]["type"] == "Polygon"
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 5 < lon < 25 and 45 < lat < 55  # UTM 33N, central Europe


def test_boundary_geometry():
    b1 = np.zeros((10, 10), np.uint8)
    b1[0:5, 0:5] = 1
    b2 = np.ones((10, 10), np.uint8)
    t = _grid()
    x0, y0 = t.c, t.f
    ring = [(x0, y0), (x0 + 500, y0), (x0 + 500, y0 - 500), (x0, y0 - 500), (x0, y0)]
    poly = {"type": "Polygon", "coordinates": [ring]}
    r = sdg.sdg_11_3_1(b1, b2, np.ones((10, 10)), np.ones((10, 10)) * 2, 2000, 2010, boundary=poly,
                       transform=t, crs=UTM)
    assert r["city_extent_area"] == pytest.approx(0.25)
    assert r["built_up_area_t1"] == pytest.approx(0.25) and r["built_up_area_t2"] == pytest.approx(0.25)
    assert r["population_t1"] == pytest.approx(25)


def test_synthetic_region_is_deterministic_and_validates_arguments():
    a = make_city_region(seed=4, size_km=10, population_start=100_000)
    b = make_city_region(seed=4, size_km=10, population_start=100_000)
    assert np.array_equal(a["built_up"].values, b["built_up"].values)
    assert np.array_equal(a["population"].values, b["population"].values)
    assert a.rio.crs.to_epsg() == 32633 and a.attrs["cell_area_km2"] == pytest.approx(0.01)
    # built-up cells are >= 15 %, the rest < 8 %: the 10 % rule recovers the binary truth
    frac = a["built_up"].values
    assert not ((frac >= 0.08) & (frac < 0.15)).any()
    # population consistent: the region total follows the growth rate
    tr = a.attrs["truth"]
    assert tr["population"]["2010"] / tr["population"]["2000"] == pytest.approx(math.exp(0.2), rel=1e-5)
    with pytest.raises(sdg.ConfigError):
        make_city_region(region="mars")
    with pytest.raises(sdg.ConfigError):
        make_city_region(years=(2010, 2000))


def test_mask_to_grid_across_crs_and_population_in_another_crs():
    from rasterio.warp import transform_bounds

    utm = Grid((10, 10), _grid(cell=1000.0), CRS.from_user_input(UTM))
    m = np.zeros((10, 10), bool)
    m[2:8, 2:8] = True
    left, bottom, right, top = transform_bounds(UTM, "EPSG:4326", 500_000, 4_990_000, 510_000, 5_000_000)
    geo_transform = Affine((right - left) / 40, 0, left, 0, -(top - bottom) / 40, top)
    geo = Grid((40, 40), geo_transform, CRS.from_user_input("EPSG:4326"))
    out = mask_to_grid(m, utm, geo)
    frac = out.mean()
    assert 0.25 < frac < 0.45  # 36 of 100 km2, up to the edge effects of the lat/lon box
    # a population grid in EPSG:4326 with a built-up grid in UTM: the boundary maps across
    b = np.zeros((10, 10), np.uint8)
    b[4:6, 4:6] = 1
    pop = np.ones((40, 40))
    r = sdg.sdg_11_3_1(b, b, pop, pop * 1.1, 2000, 2010, boundary=m, transform=utm.transform, crs=UTM,
                       pop_transform=geo.transform, pop_crs="EPSG:4326")
    assert r["built_up_area_t1"] == pytest.approx(4.0)
    assert r["population_t1"] == pytest.approx(out.sum())


def test_non_divisor_grid_warns_and_sums():
    pop = np.full((70, 70), 1.0)
    with pytest.warns(sdg.GridWarning, match="990"):
        p1, a1, g1, factor = sdg.aggregate_population(pop, transform=_grid(cell=30.0), crs=UTM)
    assert factor == 33 and p1.sum() == pytest.approx(pop.sum())
    assert a1[0, 0] == pytest.approx(33 * 33 * 0.0009)


# ------------------------------------------------ bad input (issue 13): errors, not silent results


def _da(values, crs=UTM, cell=100.0, x0=500_000.0, y0=5_000_000.0):
    import rioxarray  # noqa: F401
    import xarray as xr

    ny, nx = values.shape
    da = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": y0 - cell * (np.arange(ny) + 0.5), "x": x0 + cell * (np.arange(nx) + 0.5)},
    )
    return da.rio.write_crs(crs)


def test_built_maps_of_two_dates_in_different_crs_are_refused():
    b = np.zeros((10, 10), np.uint8)
    b[3:6, 3:6] = 1
    pop = np.ones((10, 10))
    b1, b2 = _da(b), _da(b, crs="EPSG:32634")
    with pytest.raises(sdg.DataFormatError, match="built_t1 is in EPSG:32633 but built_t2 in EPSG:32634"):
        sdg.sdg_11_3_1(b1, b2, _da(pop), _da(pop * 2), 2000, 2010, city_definition=None)
    with pytest.raises(sdg.DataFormatError, match="different transforms"):
        sdg.sdg_11_3_1(b1, _da(b, x0=600_000.0), _da(pop), _da(pop * 2), 2000, 2010, city_definition=None)
    with pytest.raises(sdg.DataFormatError, match="pop_t1 is in"):
        sdg.sdg_11_3_1(b1, b1, _da(pop), _da(pop * 2, crs="EPSG:32634"), 2000, 2010, city_definition=None)


def test_population_grid_elsewhere_is_refused():
    b = np.ones((10, 10), np.uint8)
    far = _da(np.ones((10, 10)), x0=900_000.0)  # same CRS, 400 km east: no overlap
    with pytest.raises(sdg.DataFormatError, match="covers only 0%"):
        sdg.sdg_11_3_1(_da(b), _da(b), far, far, 2000, 2010, city_definition=None)


def test_negative_population_raises_and_declared_nodata_is_zero():
    b1 = np.zeros((10, 10), np.uint8)
    b1[3:6, 3:6] = 1
    pop1 = np.full((10, 10), 20.0)
    pop2 = np.full((10, 10), 22.0)
    pop2[0, 0] = -5.0
    with pytest.raises(sdg.DataFormatError, match="pop_t2 holds 1 negative cells"):
        sdg.sdg_11_3_1(b1, b1, pop1, pop2, 2000, 2010, city_definition=None, transform=_grid(), crs=UTM)
    # a DataArray that declares its nodata (WorldPop: -3.4e38) counts those cells as 0 persons
    nodata = np.float32(-3.4e38)
    p2 = _da(np.where(np.arange(100).reshape(10, 10) == 0, nodata, np.float32(22.0)))
    p2 = p2.rio.write_nodata(nodata)
    r = sdg.sdg_11_3_1(_da(b1), _da(b1), _da(pop1), p2, 2000, 2010, city_definition=None)
    assert r["population_t2"] == pytest.approx(22.0 * 99)


def test_uint8_0_255_mask_is_binary_and_ambiguous_bytes_raise():
    b1 = np.zeros((10, 10), np.uint8)
    b1[3:6, 3:6] = 255
    b2 = b1.copy()
    b2[3:6, 6] = 255
    r = sdg.sdg_11_3_1(
        b1,
        b2,
        np.ones((10, 10)),
        np.ones((10, 10)) * 2,
        2000,
        2010,
        city_definition=None,
        transform=_grid(),
        crs=UTM,
    )
    assert r["built_up_area_t1"] == pytest.approx(0.09) and r["built_up_area_t2"] == pytest.approx(0.12)
    odd = b1.copy()
    odd[0, 0] = 17
    with pytest.raises(sdg.DataFormatError, match="built_t1: uint8 values 0..255"):
        sdg.sdg_11_3_1(
            odd,
            b2,
            np.ones((10, 10)),
            np.ones((10, 10)),
            2000,
            2010,
            city_definition=None,
            transform=_grid(),
            crs=UTM,
        )
    # m2 of built surface above the cell area (10,000 m2) is a wrong coding, not a big city
    m2 = np.full((10, 10), 20_000, np.uint16)
    with pytest.raises(sdg.DataFormatError, match="exceeds"):
        sdg.builtup_mask(m2, 0.1, "auto", np.full(10, 10_000.0))


def test_empty_maps_raise_a_clear_error():
    empty = np.zeros((0, 0))
    with pytest.raises(sdg.DataFormatError, match="built_t1 must be a non-empty"):
        sdg.sdg_11_3_1(empty, empty, empty, empty, 2000, 2010, transform=_grid(), crs=UTM)
    b = np.ones((4, 4), np.uint8)
    with pytest.raises(sdg.DataFormatError, match="pop_t1 must be a non-empty"):
        sdg.sdg_11_3_1(b, b, empty, empty, 2000, 2010, transform=_grid(), crs=UTM)


def test_lcr_formula_variant_and_trajectory_are_printed():
    b1 = np.zeros((10, 10), np.uint8)
    b1[4:6, 4:6] = 1
    b2 = np.zeros((10, 10), np.uint8)
    b2[4:7, 4:7] = 1
    args = (b1, b2, np.full((10, 10), 10.0), np.full((10, 10), 11.0), 2000, 2010)
    kw = {"city_definition": None, "transform": _grid(), "crs": UTM}
    r = sdg.sdg_11_3_1(*args, lcr_formula="linear", **kw)
    assert r["LCR"] == pytest.approx((0.09 - 0.04) / 0.04 / 10)
    assert r["PGR"] == pytest.approx(0.1 / 10)
    assert "linear" in r.parameters["lcr_formula"] and "lcr_formula" in repr(r)
    assert "LCRPGR > 1" in r.parameters["trajectory"]
    assert r["land_use_efficiency_t1"] == pytest.approx(1000 / 0.04)
    with pytest.raises(sdg.ConfigError, match="lcr_formula"):
        sdg.sdg_11_3_1(*args, lcr_formula="log10", **kw)
    # a shrinking population: the trajectory says to read the land-use efficiency instead
    with pytest.warns(sdg.PopulationDeclineWarning):
        s = sdg.sdg_11_3_1(b1, b2, np.full((10, 10), 10.0), np.full((10, 10), 9.0), 2000, 2010, **kw)
    assert "shrinking population" in s.parameters["trajectory"]
    assert s["land_use_efficiency_change_pct"] < 0


@pytest.mark.filterwarnings("ignore::urbankit.sdg.PopulationDeclineWarning")
def test_three_steps_give_the_same_result_as_the_one_call():
    ds = make_city_region(seed=2, size_km=20, population_start=300_000)
    b, p = ds["built_up"], ds["population"]
    inputs = sdg.prepare_inputs(b.isel(time=0), b.isel(time=1), p.isel(time=0), p.isel(time=1), 2000, 2010)
    city = sdg.delineate_city(inputs, city_definition="degurba_centre")
    table = sdg.indicators(sdg.measure(inputs, city), inputs.years)
    r = sdg.sdg_11_3_1(b.isel(time=0), b.isel(time=1), p.isel(time=0), p.isel(time=1), 2000, 2010)
    assert np.allclose(table["value"].values, r.table["value"].values, equal_nan=True)


def test_ghsl_release_as_city_definition():
    ds = make_city_region(seed=3, size_km=20, population_start=300_000)
    b, p = ds["built_up"], ds["population"]
    r = sdg.sdg_11_3_1(
        b.isel(time=0), b.isel(time=1), p.isel(time=0), p.isel(time=1), 2000, 2010, city_definition="R2023A"
    )
    assert r.parameters["city_definition"] == "ghsl_R2023A"
    assert "majority rule R2023A" in r.parameters["city_extent"] and "built-up" in r.parameters["city_extent"]
    assert r.city["t1"].degurba is not None and (r.city["t1"].degurba.level2 == 30).any()
    assert 0 < r["city_extent_area"] < 400


def test_land_share_changes_density_for_presets():
    pop = np.zeros((6, 6))
    pop[1:5, 1:5] = 1_000  # 16,000 persons: 1,000 per km2 of cell
    land = np.ones((6, 6))
    mask0, _, _ = sdg.degurba(pop, np.ones((6, 6)), "degurba_cluster")
    assert mask0[1:5, 1:5].all()  # >= 300 per km2, >= 5,000 persons
    centre = sdg.CityDefinition("c", 1500, 10_000, 4)
    assert not sdg.degurba(pop, np.ones((6, 6)), centre)[0].any()
    land[1:5, 1:5] = 0.5  # 2,000 per km2 of land: dense
    assert sdg.degurba(pop, np.ones((6, 6)), centre, land_share=land)[0][1:5, 1:5].all()
    with pytest.raises(sdg.DataFormatError, match="land_share"):
        sdg.degurba(pop, np.ones((6, 6)), centre, land_share=np.full((6, 6), 3.0))


def test_population_without_crs_next_to_a_georeferenced_map_is_refused():
    b = np.ones((10, 10), np.uint8)
    import xarray as xr

    pop = xr.DataArray(np.ones((10, 10)), dims=("y", "x"))
    with pytest.raises(sdg.ConfigError, match="pop_t1 has no CRS"):
        sdg.sdg_11_3_1(_da(b), _da(b), pop, pop, 2000, 2010, city_definition=None)


@pytest.mark.parametrize("seed", range(6))
def test_property_random_built_codings_read_right_or_raise(seed):
    """Random codings of one binary truth: the built-up mask equals the truth, or an urbankit error."""
    rng = np.random.default_rng(seed)
    truth = rng.random((12, 12)) < 0.3
    cell_m2 = np.full(12, 10_000.0)  # 100 m cells
    codings = {
        "bool": (truth, "auto"),
        "0/1 uint8": (truth.astype(np.uint8), "auto"),
        "0/255 uint8": (truth.astype(np.uint8) * 255, "auto"),
        "fraction": (np.where(truth, rng.uniform(0.1, 1, (12, 12)), rng.uniform(0, 0.09, (12, 12))), "auto"),
        "percent": (np.where(truth, rng.uniform(10, 100, (12, 12)), rng.uniform(0, 9, (12, 12))), "percent"),
        "m2 uint16": (np.where(truth, rng.integers(1000, 10_000, truth.shape), 0).astype(np.uint16), "auto"),
        "odd uint8": (np.where(truth, rng.integers(2, 200, truth.shape), 0).astype(np.uint8), "auto"),
        "m2 above the cell": (np.where(truth, 50_000.0, 0.0), "m2"),
        "negative": (np.where(truth, 1.0, -0.5), "auto"),
    }
    for name, (arr, units) in codings.items():
        try:
            mask = sdg.builtup_mask(arr, 0.1, units, cell_m2, name=name)
        except sdg.DataFormatError as exc:
            assert name in str(exc)
            assert name in ("odd uint8", "m2 above the cell", "negative"), name
            continue
        assert np.array_equal(mask, truth), name
