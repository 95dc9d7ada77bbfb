"""Scene schema: make_scene, validate_scene (every error path), scene_summary."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from urbankit.data.schema import make_scene, scene_summary, validate_scene
from urbankit.errors import SceneValidationError

T, H, W = 2, 8, 10
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)


def _scene(site="site-a", crs="EPSG:32633", **over):
    rng = np.random.default_rng(0)
    kw = dict(
        optical=rng.uniform(0, 0.5, (T, 13, H, W)),
        sar=rng.uniform(-25, -5, (T, 2, H, W)),
        buildings=(rng.random((T, H, W)) > 0.5),
        change=(rng.random((H, W)) > 0.8),
        population=rng.uniform(0, 3, (T, H, W)),
        times=["2020-01-01", "2021-01-01"],
        transform=TRANSFORM, crs=crs, site=site, region="europe", dataset="test",
    )
    kw.update(over)
    return make_scene(**kw)


def _raises(scene_or_callable, variable, *words, **kw):
    """Assert a SceneValidationError naming the site, the variable and the problem."""
    with pytest.raises(SceneValidationError) as info:
        if callable(scene_or_callable):
            scene_or_callable()
        else:
            validate_scene(scene_or_callable, **kw)
    err = info.value
    msg = str(err)
    assert err.site == "site-a" and "site-a" in msg, msg
    assert err.variable == variable, (err.variable, msg)
    if variable:
        assert repr(variable) in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    return err


def test_make_scene_is_schema_conformant():
    ds = _scene()
    assert ds["optical"].dims == ("time", "band", "y", "x") and ds["optical"].dtype == np.float32
    assert ds["sar"].dims == ("time", "polarisation", "y", "x")
    assert ds["buildings"].dtype == np.float32 and ds["change"].dtype == np.uint8
    assert list(ds["band"].values)[:3] == ["B01", "B02", "B03"]
    assert list(ds["polarisation"].values) == ["VV", "VH"]
    assert np.issubdtype(ds["time"].dtype, np.datetime64)
    assert ds["optical_date"].dims == ("time",) and ds["sar_date"].dims == ("time",)
    # pixel centres from the transform, CRS and transform through rioxarray
    assert ds["x"].values[0] == pytest.approx(500005.0) and ds["y"].values[0] == pytest.approx(4999995.0)
    assert ds.rio.crs.to_epsg() == 32633
    assert tuple(ds.rio.transform())[:6] == tuple(TRANSFORM)[:6]
    for key in ("site", "region", "dataset", "split", "source", "licence"):
        assert key in ds.attrs
    assert validate_scene(ds, expect_crs=True, require=("optical", "change")) is ds


def test_make_scene_single_date_vhr_without_crs():
    rng = np.random.default_rng(1)
    ds = make_scene(optical=rng.random((3, 4, 5)), change=np.zeros((4, 5)), site="levir-1")
    assert ds.sizes["time"] == 1 and list(ds["band"].values) == ["R", "G", "B"]
    assert ds.rio.crs is None
    validate_scene(ds, expect_crs=False)


def test_make_scene_keeps_dask_lazy():
    da = pytest.importorskip("dask.array")
    opt = da.random.random((T, 13, H, W), chunks=(1, 13, H, W))
    ds = make_scene(optical=opt, site="lazy", validate=False)
    assert type(ds["optical"].data).__module__.startswith("dask")
    validate_scene(ds)


def test_shape_mismatch_across_variables():
    _raises(lambda: _scene(buildings=np.zeros((T, H, W + 1))), "buildings", "spatial shape")


def test_shape_mismatch_across_dates():
    _raises(lambda: _scene(sar=np.full((T + 1, 2, H, W), -10.0)), "sar", "dates")


def test_wrong_number_of_band_names():
    _raises(lambda: _scene(bands=["B02", "B03"]), "optical", "band names")


def test_missing_crs():
    ds = _scene(crs=None)
    _raises(ds, None, "missing CRS", expect_crs=True)
    validate_scene(ds, expect_crs=None)      # not checked unless asked


def test_missing_required_variable():
    ds = _scene().drop_vars("change")
    _raises(ds, "change", "required", require=("change",))


def test_wrong_dtype():
    ds = _scene()
    ds["optical"] = ds["optical"].astype(np.float64)
    _raises(ds, "optical", "dtype", "float32")
    ds = _scene()
    ds["change"] = ds["change"].astype(np.float32)
    _raises(ds, "change", "dtype", "uint8")


def test_wrong_dims_order_and_names():
    ds = _scene()
    ds["optical"] = ds["optical"].transpose("band", "time", "y", "x")
    _raises(ds, "optical", "dims")
    ds = _scene().rename({"y": "rows"})
    _raises(ds, "optical", "dims", "rows")


def test_nan_and_inf_in_labels():
    ds = _scene()
    ds["buildings"][0, 0, 0] = np.nan
    _raises(ds, "buildings", "NaN")
    ds = _scene()
    ds["population"][1, 2, 3] = np.inf
    _raises(ds, "population", "inf")


def test_label_ranges():
    ds = _scene()
    ds["buildings"][0, 0, 0] = 2.0
    _raises(ds, "buildings", "[0, 1]")
    ds = _scene()
    ds["change"][0, 0] = 3
    _raises(ds, "change", "0/1")
    ds = _scene()
    ds["population"][0, 0, 0] = -1.0
    _raises(ds, "population", "negative")


def test_optical_out_of_range():
    ds = _scene()
    ds["optical"] = ds["optical"] * 10000      # forgot to scale the digital numbers
    err = _raises(ds, "optical", "out of range", "s2_to_reflectance")
    assert "reflectance" in err.problem
    ds = _scene()
    ds["optical"][0, 0, 0, 0] = 1.005          # within tolerance
    validate_scene(ds)
    ds["optical"][0, 0, 0, 0] = np.nan         # NaN = no data is fine
    validate_scene(ds)
    ds["optical"][0, 0, 0, 1] = -0.2
    _raises(ds, "optical", "out of range")


def test_sar_out_of_range_and_linear():
    ds = _scene()
    ds["sar"][0, 0, 0, 0] = 60.0
    _raises(ds, "sar", "out of range", "dB")
    ds = _scene()
    ds["sar"] = (10.0 ** (ds["sar"] / 10.0)).astype(np.float32)    # linear power, not dB
    _raises(ds, "sar", "linear")
    ds = _scene()
    ds["sar"] = ((ds["sar"] + 25.0) / 25.0).clip(0, 1).astype(np.float32)   # [0, 1]-scaled
    _raises(ds, "sar", "linear")
    ds = _scene()
    ds["sar"][0, 0, 0, 0] = np.nan
    validate_scene(ds)


def test_unknown_band_and_polarisation_names():
    ds = _scene().assign_coords(band=[f"B{i:02d}" for i in range(1, 14)])
    _raises(ds, "optical", "unknown band", "B13")
    ds = _scene().assign_coords(polarisation=["VV", "XX"])
    _raises(ds, "sar", "unknown polarisation", "XX")


def test_empty_scene():
    ds = xr.Dataset(attrs={"site": "site-a"})
    _raises(ds, None, "empty scene")
    ds = _scene().isel(x=slice(0, 0))
    err = _raises(ds, "optical", "size 0")
    assert "empty" in err.problem
    _raises(lambda: make_scene(site="site-a"), None, "empty scene")
    only_extra = xr.Dataset({"foo": (("y", "x"), np.zeros((2, 2)))}, attrs={"site": "site-a"})
    _raises(only_extra, None, "none of the schema variables")


def test_time_coordinate_and_split():
    ds = _scene().assign_coords(time=[0, 1])
    _raises(ds, "time", "datetime64")
    ds = _scene()
    ds.attrs["split"] = "training"
    _raises(ds, None, "split")


def test_irregular_coordinates():
    ds = _scene()
    x = ds["x"].values.copy()
    x[3] += 3.0
    _raises(ds.assign_coords(x=x), "x", "regularly spaced")


def test_not_a_dataset():
    with pytest.raises(SceneValidationError, match="xarray.Dataset"):
        validate_scene(np.zeros(3))


def test_scene_summary():
    ds = _scene()
    ds["optical"][0, 0, 0, 0] = np.nan
    table = scene_summary(ds)
    assert list(table.index) == ["optical", "sar", "buildings", "change", "population"]
    assert list(table.columns) == ["dims", "shape", "dtype", "min", "max", "mean", "nan_fraction"]
    assert table.loc["optical", "shape"] == f"{T}x13x{H}x{W}"
    assert table.loc["optical", "nan_fraction"] == pytest.approx(1 / (T * 13 * H * W))
    assert table.loc["change", "dtype"] == "uint8"
    assert 0 <= table.loc["optical", "min"] <= table.loc["optical", "max"] <= 0.5
    assert table.loc["sar", "max"] <= -5


# ---- the remaining error paths, each checked for site, variable and problem -----------------
def _spoil_time_coord(ds):
    return ds.drop_vars(["time", "optical_date", "sar_date"])


def _spoil_optical_date(ds):
    return ds.assign_coords(optical_date=("time", np.array([1, 2])))


def _spoil_sar_date_dims(ds):
    return ds.assign_coords(sar_date=(("time", "y"), np.zeros((T, H), "datetime64[ns]")))


def _spoil_band_coord(ds):
    return ds.drop_vars("band")


def _spoil_dup_band(ds):
    return ds.assign_coords(band=["B02"] * 12 + ["B03"])


def _spoil_pol_coord(ds):
    return ds.drop_vars("polarisation")


def _spoil_dup_pol(ds):
    return ds.assign_coords(polarisation=["VV", "VV"])


def _spoil_optical_inf(ds):
    ds["optical"][0, 0, 0, 0] = np.inf
    return ds


def _spoil_sar_inf(ds):
    ds["sar"][0, 0, 0, 0] = -np.inf
    return ds


@pytest.mark.parametrize("spoil, variable, words", [
    (_spoil_time_coord, "time", ("no coordinate",)),
    (_spoil_optical_date, "optical_date", ("datetime64",)),
    (_spoil_sar_date_dims, "sar_date", ("along time",)),
    (_spoil_band_coord, "optical", ("band names",)),
    (_spoil_dup_band, "optical", ("duplicate band",)),
    (_spoil_pol_coord, "sar", ("polarisation names",)),
    (_spoil_dup_pol, "sar", ("duplicate polarisation",)),
    (_spoil_optical_inf, "optical", ("inf",)),
    (_spoil_sar_inf, "sar", ("inf",)),
])
def test_more_validation_errors(spoil, variable, words):
    _raises(spoil(_scene()), variable, *words)


@pytest.mark.parametrize("over, variable, words", [
    (dict(change=np.zeros((2, H, W))), "change", ("2-D array",)),
    (dict(times=["2020-01-01"]), "time", ("1 times", "2 dates")),
    (dict(transform=Affine(10.0, 0.5, 500000.0, 0.0, -10.0, 5000000.0)), None, ("rotated",)),
    (dict(transform=None, x=np.arange(3.0), crs=None), None, ("do not match the grid",)),
    (dict(optical_dates=["2020-01-01"]), "optical_date", ("1 dates", "2 epochs")),
    (dict(optical=np.zeros((T, 5, H, W))), "optical", ("5 bands", "bands=")),
    (dict(polarisations=("VV",)), "sar", ("1 polarisation names", "2 channels")),
])
def test_make_scene_errors(over, variable, words):
    _raises(lambda: _scene(**over), variable, *words)


def test_make_scene_extra_vars_and_attrs():
    ds = _scene(extra_vars={"land_cover": (("y", "x"), np.zeros((H, W), np.uint8))}, attrs={"seed": 3})
    assert ds["land_cover"].dims == ("y", "x") and ds.attrs["seed"] == 3
    validate_scene(ds)
    unchecked = _scene()
    unchecked["optical"] = unchecked["optical"] * 100
    validate_scene(unchecked, check_values=False)      # structure only


def test_sar_hint_names_the_right_conversion():
    """Issue 13: a [0, 1] export or a double decoding is not pointed to linear_to_db."""
    ds = _scene()
    ds["sar"][0, 0, 0, 0] = -400.0                                  # a [0, 1] export decoded twice
    err = _raises(ds, "sar", "out of range", "below -100 dB")
    assert "linear_to_db" not in err.problem
    ds = _scene()
    ds["sar"][0, 0, 0, 0] = 60.0
    assert "linear_to_db" not in _raises(ds, "sar", "out of range").problem
