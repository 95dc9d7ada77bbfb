"""GHSL and WorldPop readers: file names, codings, bbox, 100 m -> 1 km aggregation.

Synthetic GeoTIFFs written to a temporary folder in the real naming schemes; the real samples in
../shared/data/real are read at the end (skipped when absent).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import rasterio
from affine import Affine

from urbankit.data.ghsl import GHSL, GHSLBuiltEpochs
from urbankit.data.worldpop import WorldPop
from urbankit.errors import ConfigError, DataFormatError

MOLL = "ESRI:54009"


def _write(path, values, transform, crs, nodata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1], count=1,
                       dtype=values.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(values, 1)
    return path


@pytest.fixture()
def ghsl_root(tmp_path):
    t = Affine(100.0, 0, 1_000_000.0, 0, -100.0, 5_000_000.0)
    pop = np.full((25, 30), 20.0, np.float32)
    pop[0, 0] = -200.0  # GHS-POP nodata
    built = np.full((25, 30), 2500.0, np.float32)  # 25 % of a 100 m cell
    land = np.ones((25, 30), np.float32)
    land[:, 20:] = 0.0  # a lake: the right third of the grid
    for name, values, nodata in (("GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0_R4_C19.tif", pop, -200.0),
                                 ("GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0_R4_C19.tif", built, None),
                                 ("GHS_LAND_E2018_GLOBE_R2022A_54009_100_V1_0.tif", land, None),
                                 ("GHS_POP_E2000_GLOBE_R2023A_54009_100_V1_0_R4_C19.tif", pop * 0.5, -200.0)):
        _write(tmp_path / "ghsl" / name, values, t, MOLL, nodata)
    return tmp_path / "ghsl"


def test_ghsl_pop_sites_epochs_and_1km_sums(ghsl_root):
    g = GHSL(ghsl_root, product="POP")
    assert g.sites == ["R4_C19"] and g.epochs == [2000, 2020]
    da = g.read_epoch(2020)
    assert np.isnan(da.values[0, 0]) and da.attrs["units"].startswith("residential population")
    km = g.read_1km(2020)
    # 10 x 10 cells of 20 persons = 2,000 per km2 (the nodata cell is left out, not -200)
    assert km.shape == (3, 3) and km.values[1, 1] == pytest.approx(2000.0)
    assert km.values[0, 0] == pytest.approx(99 * 20.0)
    # partial edge blocks (5 rows, 10 columns) sum what exists
    assert km.values[2, 1] == pytest.approx(50 * 20.0)
    assert float(km.sum()) == pytest.approx(float(da.sum()))
    assert km.rio.resolution() == (1000.0, -1000.0) and km.rio.crs.to_string() == MOLL
    assert "sum" in km.attrs["aggregated"]


def test_population_readers_never_import_torch():
    """Readers never import torch (checked in a fresh interpreter: other tests import it here)."""
    import subprocess

    code = ("import sys, urbankit.data.ghsl, urbankit.data.worldpop; "
            "raise SystemExit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_ghsl_builtup_share_land_share_and_bbox(ghsl_root):
    b = GHSL(ghsl_root, product="BUILT_S").read_1km(2020)
    assert np.allclose(b.values[:2, :], 0.25)  # 100 x 2,500 m2 / 1 km2
    land = GHSL(ghsl_root, product="LAND", release="R2022A").read_1km(2018)
    # land share is averaged, not summed: blocks 0 and 1 are land, block 2 is lake
    assert land.values[0, 0] == pytest.approx(1.0) and land.values[0, 2] == pytest.approx(0.0)
    small = GHSL(ghsl_root, product="POP").read_epoch(2020, bbox=(1_000_000, 4_999_000, 1_000_500, 5_000_000))
    assert small.shape == (10, 5)
    with pytest.raises(DataFormatError, match="overlaps no GHS_POP tile"):
        GHSL(ghsl_root, product="POP").read_epoch(2020, bbox=(0, 0, 10, 10))


def test_ghsl_codings_are_checked(tmp_path, ghsl_root):
    t = Affine(100.0, 0, 0.0, 0, -100.0, 0.0)
    _write(tmp_path / "bad" / "GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0.tif",
           np.full((4, 4), 20_000.0, np.float32), t, MOLL)  # more built-up than the cell has
    with pytest.raises(DataFormatError, match="GHS-BUILT-S"):
        GHSL(tmp_path / "bad", product="BUILT_S").read_epoch(2020)
    _write(tmp_path / "smod" / "GHS_SMOD_E2020_GLOBE_R2023A_54009_1000_V2_0.tif",
           np.full((4, 4), 25, np.uint8), Affine(1000.0, 0, 0, 0, -1000.0, 0), MOLL)
    with pytest.raises(DataFormatError, match="GHS-SMOD codes"):
        GHSL(tmp_path / "smod", product="SMOD").read_epoch(2020)
    with pytest.raises(DataFormatError, match="no GHS_SMOD"):
        GHSL(ghsl_root, product="SMOD")
    with pytest.raises(ConfigError, match="product"):
        GHSL(ghsl_root, product="NTL")
    with pytest.raises(DataFormatError, match="epoch 1990"):
        GHSL(ghsl_root, product="POP").read_epoch(1990)


def test_worldpop_100m_to_1km_and_nodata(tmp_path):
    res = 3 / 3600  # 3 arc-seconds
    t = Affine(res, 0, 30.0, 0, -res, -3.0)
    pop = np.full((20, 20), 1.5, np.float32)
    pop[5, 5] = np.float32(-3.4e38)  # WorldPop nodata
    _write(tmp_path / "bdi_ppp_2020.tif", pop, t, "EPSG:4326", float(np.float32(-3.4e38)))
    _write(tmp_path / "bdi_ppp_2020_1km_Aggregated.tif", np.full((2, 2), 150.0, np.float32),
           Affine(10 * res, 0, 30.0, 0, -10 * res, -3.0), "EPSG:4326")
    wp = WorldPop(tmp_path, resolution="100m")
    assert wp.sites == ["bdi"] and wp.years == [2020]
    km = wp.read_1km(2020)
    assert km.shape == (2, 2)
    assert km.values[0, 0] == pytest.approx(99 * 1.5) and km.values[1, 1] == pytest.approx(150.0)
    one_km = WorldPop(tmp_path, resolution="1km").read_1km(2020)
    assert np.allclose(one_km.values, 150.0)  # already 1 km: kept
    with pytest.raises(DataFormatError, match="2 WorldPop files"):
        WorldPop(tmp_path).read_epoch(2020)
    _write(tmp_path / "neg" / "ppp_2010.tif", np.full((3, 3), -1.0, np.float32), t, "EPSG:4326")
    with pytest.raises(DataFormatError, match="persons per cell"):
        WorldPop(tmp_path / "neg").read_epoch(2010)


def test_real_worldpop_and_ghsl_samples(real_data):
    folder = real_data / "worldpop" / "worldpop"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    wp = WorldPop(folder)
    assert wp.years[0] == 2007 and len(wp.years) == 12
    da = wp.read_epoch(2020)
    assert da.rio.crs.to_epsg() == 4326 and float(da.min()) >= 0 and not np.isnan(da.values).all()
    bdi = WorldPop(real_data / "worldpop" / "extdata" / "burundi_worldpop.tif", year=2020).read_epoch(2020)
    assert 5e6 < float(bdi.sum()) < 2e7  # Burundi: several million persons; 65535 nodata left out
    epochs = GHSLBuiltEpochs(real_data / "ghsl" / "GHSL.tif")
    assert epochs.epochs[0] == 1975 and epochs.epochs[-1] <= 2030
    b2000, b2020 = epochs.read(2000), epochs.read(2020)
    assert b2000.dtype == bool and int(b2020.sum()) >= int(b2000.sum()) > 0


def test_readers_plot(ghsl_root, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = GHSL(ghsl_root, product="POP").plot_epoch(2020)
    assert ax.get_title() == "GHS-POP 2020" and ax.images
    res = 3 / 3600
    _write(tmp_path / "wp" / "ppp_2015.tif", np.full((4, 4), 3.0, np.float32), Affine(res, 0, 0, 0, -res, 0),
           "EPSG:4326")
    ax = WorldPop(tmp_path / "wp").plot_epoch(2015)
    assert ax.get_title() == "WorldPop 2015"
    epochs = np.full((5, 5), 65535, np.uint16)
    epochs[1:3, 1:3] = 1990
    path = _write(tmp_path / "GHSL.tif", epochs, Affine(100.0, 0, 0, 0, -100.0, 0), MOLL, 65535)
    reader = GHSLBuiltEpochs(path)
    assert reader.epochs == [1990] and int(reader.read(1985).sum()) == 0 and int(reader.read(2000).sum()) == 4
    assert reader.plot().images
    bad = epochs.copy()
    bad[0, 0] = 1950
    with pytest.raises(DataFormatError, match="1975..2030"):
        GHSLBuiltEpochs(_write(tmp_path / "bad.tif", bad, Affine(100.0, 0, 0, 0, -100.0, 0), MOLL, 65535))
    plt.close("all")


def test_ghsl_tiles_are_merged_and_clipped(tmp_path):
    # two neighbouring 1 km GHS-POP tiles (R4_C19 west, R4_C20 east), 3 x 3 cells each
    for col, x0, value in ((19, 0.0, 100.0), (20, 3000.0, 200.0)):
        name = f"GHS_POP_E2020_GLOBE_R2023A_54009_1000_V1_0_R4_C{col}.tif"
        tile = Affine(1000.0, 0, x0, 0, -1000.0, 3000.0)
        _write(tmp_path / name, np.full((3, 3), value, np.float32), tile, MOLL)
    g = GHSL(tmp_path, product="POP")
    assert g.sites == ["R4_C19", "R4_C20"]
    both = g.read_epoch(2020)
    assert both.shape == (3, 6) and float(both.sum()) == pytest.approx(9 * 300.0)
    assert float(g.read_1km(2020, site="R4_C20").sum()) == pytest.approx(1800.0)  # 1 km: kept as is
    across = g.read_epoch(2020, bbox=(2000, 0, 4000, 3000))  # one column of each tile
    assert across.shape == (3, 2) and sorted(np.unique(across.values)) == [100.0, 200.0]
