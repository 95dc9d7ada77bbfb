"""Real data: the GHSL built-up epoch raster (../shared/data/real/ghsl/GHSL.tif) and WorldPop.

Skipped when ../shared/data/real is absent (tests/conftest.py `real_data` fixture).
"""
from __future__ import annotations

import numpy as np
import pytest

from urbankit import sdg
from urbankit.data.raster import Grid

pytestmark = pytest.mark.real_data


def _ghsl(real_data):
    path = real_data / "ghsl" / "GHSL.tif"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    rasterio = pytest.importorskip("rasterio")
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.crs, src.nodata


def test_ghsl_builtup_area_per_epoch_increases(real_data):
    epochs, transform, crs, nodata = _ghsl(real_data)
    grid = Grid(epochs.shape, transform, crs)
    areas = sdg.cell_area_km2(grid)
    assert areas[0] == pytest.approx(0.01)  # 100 m Mollweide (equal-area) cell
    valid = epochs != nodata
    years = list(range(1975, 2031, 5))
    series = []
    for year in years:
        built = valid & (epochs <= year)
        series.append(sdg.builtup_area_km2(built, areas))
    assert all(b >= a for a, b in zip(series, series[1:]))
    assert series[-1] > series[0] > 0
    # plausible for Baltimore-Washington: a few thousand km2 of built-up cells
    assert 1000 < series[0] < 10_000 and series[-1] < 1407 * 869 * 0.01


def test_ghsl_sdg_with_whole_grid(real_data):
    epochs, transform, crs, nodata = _ghsl(real_data)
    valid = epochs != nodata
    b1 = valid & (epochs <= 2000)
    b2 = valid & (epochs <= 2020)
    # population is not co-located here: a flat, clearly synthetic population (+1 %/yr)
    pop1 = np.full(epochs.shape, 1.0, np.float32)
    pop2 = pop1 * np.float32(np.exp(0.2))
    r = sdg.sdg_11_3_1(b1, b2, pop1, pop2, 2000, 2020, city_definition=None, transform=transform, crs=crs)
    assert r["LCR"] > 0
    assert r["PGR"] == pytest.approx(0.01, rel=1e-5)
    assert r["new_development_km2"] == pytest.approx(r["built_up_area_t2"] - r["built_up_area_t1"])
    assert r["new_infill_pct"] + r["new_extension_pct"] + r["new_leapfrog_pct"] == pytest.approx(100)


def test_worldpop_geographic_degurba(real_data):
    path = real_data / "worldpop" / "extdata" / "burundi_worldpop.tif"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    rasterio = pytest.importorskip("rasterio")
    with rasterio.open(path) as src:
        pop = src.read(1).astype(np.float64)
        pop[pop == src.nodata] = 0
        city = sdg.city_extent(pop, "degurba_centre", transform=src.transform, crs=src.crs)
    # 30 arc-second cells near 3 S are ~0.86 km2 (true area per row), kept as the DEGURBA grid
    assert city.factor == 1
    assert city.area_km2.mean() == pytest.approx(0.855, rel=0.01)
    # Bujumbura is an urban centre (213,000 persons in its largest centre: the majority rule adds a
    # cell only when 5 of its 8 neighbours belong to one centre, so its two cores stay apart)
    assert len(city.table) >= 1 and city.table["population"].iloc[0] > 100_000


def test_ghsl_reader_gives_the_same_builtup_areas(real_data):
    """The GHSLBuiltEpochs reader and the raw rasterio read agree on every epoch's built-up area."""
    from urbankit.data.ghsl import GHSLBuiltEpochs

    epochs, transform, crs, nodata = _ghsl(real_data)
    reader = GHSLBuiltEpochs(real_data / "ghsl" / "GHSL.tif")
    grid = sdg.grid_info(reader.data)
    assert grid.transform == transform and grid.crs == crs
    areas = sdg.cell_area_km2(grid)
    for year in (1975, 2000, 2020):
        raw = (epochs != nodata) & (epochs <= year)
        assert np.array_equal(reader.read(year).values, raw)
        assert sdg.builtup_area_km2(reader.read(year).values, areas) == pytest.approx(raw.sum() * 0.01)


def test_worldpop_reader_and_both_ghsl_releases(real_data):
    """WorldPop Burundi through the reader: both GHSL releases find Bujumbura as an urban centre."""
    from urbankit import degurba
    from urbankit.data.worldpop import WorldPop

    path = real_data / "worldpop" / "extdata" / "burundi_worldpop.tif"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    wp = WorldPop(path, year=2020).read_epoch(2020)
    assert int(wp.isnull().sum()) > 0 and float(wp.min()) >= 0  # 65535 nodata is NaN, not 65,535 persons
    city = sdg.city_extent(wp.fillna(0), "degurba_centre")
    classes = {rel: degurba.classify(city.population, city.area_km2, release=rel)
               for rel in ("R2022A", "R2023A")}
    for rel, g in classes.items():
        top = g.summary().set_index("code").loc[30]
        assert top["population"] > 100_000, rel  # Bujumbura's centre
        assert set(np.unique(g.level2)) <= set(degurba.L2_CLASSES)
    # without land or built-up grids the releases differ only by the majority rule (at the grid edge)
    diff = classes["R2022A"].level2 != classes["R2023A"].level2
    assert diff.sum() <= 0.01 * diff.size
