"""The generic GeoTIFF reader: small GeoTIFFs written in tmp_path on different grids and CRS,
checked against known patterns, plus the real Sen1Floods11 chip (skipped when absent)."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from urbankit.data.generic import read_geotiff_pair, read_time_series
from urbankit.errors import DataFormatError

X0, Y0, RES, N = 500000.0, 4650000.0, 10.0, 64  # UTM 33N reference grid: 64x64 at 10 m


def _write(path, data, transform, crs="EPSG:32633", nodata=None, descriptions=None):
    data = data if data.ndim == 3 else data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype, crs=crs, transform=transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


def _ramp_dn(xs: np.ndarray) -> np.ndarray:
    """S2 DN that grows linearly with the map x coordinate (bilinear resampling keeps it exact)."""
    return 1000.0 + (xs - X0) * 5.0  # 1000 .. 4200 DN over 640 m


def _s2_on_grid(path, x0, y0, res, n, nbands=13, dtype=np.uint16, nodata=None, descriptions=None):
    xs = x0 + res * (np.arange(n) + 0.5)
    ramp = np.broadcast_to(_ramp_dn(xs)[None, :], (n, n))
    data = np.stack([ramp + 10 * b for b in range(nbands)]).astype(dtype)
    return _write(path, data, from_origin(x0, y0, res, res), nodata=nodata, descriptions=descriptions)


@pytest.fixture
def ref_s2(tmp_path):
    return _s2_on_grid(tmp_path / "S2_20190105.tif", X0, Y0, RES, N, nodata=0)


def test_single_s2_on_its_own_grid(ref_s2):
    scene = read_time_series(s2_paths=[ref_s2])
    assert scene.optical.shape == (1, 13, N, N)
    assert list(scene.band.values)[:4] == ["B01", "B02", "B03", "B04"] and "B8A" in scene.band.values
    assert str(scene.time.values[0])[:10] == "2019-01-05"  # date parsed from the file name
    assert scene.rio.crs.to_epsg() == 32633
    assert scene.rio.transform() == from_origin(X0, Y0, RES, RES)
    xs = X0 + RES * (np.arange(N) + 0.5)
    np.testing.assert_allclose(scene.optical.values[0, 0, 3], _ramp_dn(xs) / 10000, rtol=1e-5)
    assert scene.attrs["split"] == "unlabelled"


def test_second_date_on_coarser_shifted_grid_is_aligned(tmp_path, ref_s2):
    # date 2: 20 m pixels, origin shifted by 35 m west / 25 m north, bigger footprint
    other = _s2_on_grid(tmp_path / "S2_20200110.tif", X0 - 35, Y0 + 25, 20.0, 40)
    scene = read_time_series(s2_paths=[ref_s2, other])
    assert scene.optical.shape == (2, 13, N, N)
    xs = X0 + RES * (np.arange(N) + 0.5)
    # a linear ramp survives bilinear resampling: date 2 matches the ramp at the reference pixel centres
    got = scene.optical.values[1, 0, 10, 2:-2]
    np.testing.assert_allclose(got, _ramp_dn(xs)[2:-2] / 10000, atol=2e-4)
    assert [str(t)[:10] for t in scene.time.values] == ["2019-01-05", "2020-01-10"]


def test_nodata_and_outside_footprint_become_nan(tmp_path, ref_s2):
    small = _s2_on_grid(tmp_path / "small.tif", X0, Y0, RES, 32)  # covers only the top-left quarter
    with pytest.raises(DataFormatError, match=r"small\.tif: its footprint .* covers only 25.0 %"):
        read_time_series(s2_paths=[ref_s2, small], dates=["2019-01-01", "2019-02-01"])
    scene = read_time_series(s2_paths=[ref_s2, small], dates=["2019-01-01", "2019-02-01"], min_coverage=0.2)
    d2 = scene.optical.values[1, 0]
    assert np.isfinite(d2[:30, :30]).all()
    assert np.isnan(d2[40:, 40:]).all()
    # nodata=0 pixels of the reference become NaN
    with rasterio.open(ref_s2, "r+") as dst:
        arr = dst.read()
        arr[:, 0, 0] = 0
        dst.write(arr)
    assert np.isnan(read_time_series(s2_paths=[ref_s2]).optical.values[0, :, 0, 0]).all()


def test_s1_in_another_crs_is_reprojected_in_db(tmp_path, ref_s2):
    from rasterio.warp import transform_bounds

    # S1 in EPSG:4326 over the same area: -5 dB west of the reference centre line, -20 dB east
    left, bottom, right, top = transform_bounds("EPSG:32633", "EPSG:4326", X0 - 100, Y0 - 740, X0 + 740,
                                                Y0 + 100)
    n = 200
    tr = from_origin(left, top, (right - left) / n, (top - bottom) / n)
    lon = left + (right - left) * (np.arange(n) + 0.5) / n
    from rasterio.warp import transform as warp_xy

    cx, _ = warp_xy("EPSG:32633", "EPSG:4326", [X0 + 320], [Y0 - 320])
    vv = np.where(lon[None, :] < cx[0], -5.0, -20.0).repeat(n, 0).astype(np.float32)
    vh = vv - 7
    s1 = _write(tmp_path / "S1_20190106.tif", np.stack([vv, vh]), tr, crs="EPSG:4326")
    scene = read_time_series(s2_paths=[ref_s2], s1_paths=[s1])
    assert scene.sar.shape == (1, 2, N, N)
    assert list(scene.polarisation.values) == ["VV", "VH"]
    np.testing.assert_allclose(scene.sar.values[0, 0, :, :25], -5.0, atol=1e-3)
    np.testing.assert_allclose(scene.sar.values[0, 0, :, 40:], -20.0, atol=1e-3)
    np.testing.assert_allclose(scene.sar.values[0, 1, :, 40:], -27.0, atol=1e-3)
    assert str(scene.sar_date.values[0])[:10] == "2019-01-06"


@pytest.mark.parametrize("unit,values,expected",
                         [("linear", 0.1, -10.0), ("unit", 0.5, -10.0), ("db", -7.5, -7.5)])
def test_s1_units(tmp_path, ref_s2, unit, values, expected):
    s1 = _write(tmp_path / "s1.tif", np.full((2, N, N), values, np.float32), from_origin(X0, Y0, RES, RES))
    scene = read_time_series(s1_paths=[s1], s1_unit=unit, db_range=(-25.0, 5.0))
    np.testing.assert_allclose(scene.sar.values, expected, atol=1e-4)
    assert "optical" not in scene


def test_change_label_on_other_grid_nearest(tmp_path, ref_s2):
    # label on a 5 m grid in EPSG:3857? keep UTM but finer: block of change in the east half
    n = 128
    lab = np.zeros((n, n), np.uint8)
    lab[:, 64:] = 255
    lp = _write(tmp_path / "cm.tif", lab, from_origin(X0, Y0, 5.0, 5.0))
    t2 = _s2_on_grid(tmp_path / "t2.tif", X0, Y0, RES, N)
    scene = read_geotiff_pair(ref_s2, t2, lp, dates=["2018-06-01", "2020-06-01"], label_coding="0/255")
    assert scene.change.dtype == np.uint8
    assert scene.change.values[:, :32].sum() == 0 and scene.change.values[:, 32:].all()
    assert scene.attrs["split"] == "test"
    assert scene.label_valid.values.all()


def test_band_descriptions_and_l2a_count(tmp_path):
    names = ["B2", "B3", "B4", "B8"]
    p = _s2_on_grid(tmp_path / "rgbn.tif", X0, Y0, RES, 16, nbands=4, descriptions=names)
    scene = read_time_series(s2_paths=[p])
    assert list(scene.band.values) == ["B02", "B03", "B04", "B08"]
    p12 = _s2_on_grid(tmp_path / "l2a.tif", X0, Y0, RES, 16, nbands=12)
    assert "B10" not in read_time_series(s2_paths=[p12]).band.values


# ------------------------------------------------------------------ errors
def test_wrong_band_counts(tmp_path, ref_s2):
    p4 = _s2_on_grid(tmp_path / "four.tif", X0, Y0, RES, 16, nbands=4)
    with pytest.raises(DataFormatError, match=r"four\.tif: 4 bands.*s2_bands"):
        read_time_series(s2_paths=[p4])
    with pytest.raises(DataFormatError, match=r"four\.tif: the file has 4 bands but s2_bands names 3"):
        read_time_series(s2_paths=[p4], s2_bands=["B02", "B03", "B04"])
    s1 = _write(tmp_path / "vv.tif", np.full((1, N, N), -5, np.float32), from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match=r"vv\.tif: the file has 1 band\(s\) but s1_pols names 2"):
        read_time_series(s2_paths=[ref_s2], s1_paths=[s1])
    assert read_time_series(s1_paths=[s1], s1_pols=("VV",)).sar.shape == (1, 1, N, N)


def test_missing_files(tmp_path, ref_s2):
    with pytest.raises(DataFormatError, match=r"nope\.tif: S2 file not found"):
        read_time_series(s2_paths=[ref_s2, tmp_path / "nope.tif"])
    with pytest.raises(DataFormatError, match=r"lab\.tif: label file not found"):
        read_time_series(s2_paths=[ref_s2], label_path=tmp_path / "lab.tif")
    with pytest.raises(DataFormatError, match="at least one"):
        read_time_series()


def test_no_overlap_in_other_crs(tmp_path, ref_s2):
    far = _write(tmp_path / "far.tif", np.full((2, 10, 10), -5, np.float32),
                 from_origin(140.0, -30.0, 0.01, 0.01), crs="EPSG:4326")  # Australia vs. UTM 33N Italy
    with pytest.raises(DataFormatError, match=r"far\.tif: its footprint \(CRS EPSG:4326\) does not overlap"):
        read_time_series(s2_paths=[ref_s2], s1_paths=[far])


def test_unpaired_s1_s2_and_bad_labels(tmp_path, ref_s2):
    s1 = _write(tmp_path / "s1.tif", np.full((2, N, N), -5, np.float32), from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match="paired by position"):
        read_time_series(s2_paths=[ref_s2], s1_paths=[s1, s1])
    bad = _write(tmp_path / "bad.tif", np.full((N, N), 3, np.int16) * 100, from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match=r"bad\.tif: label values \[300\] do not fit"):
        read_time_series(s2_paths=[ref_s2], label_path=bad)
    two = _write(tmp_path / "two.tif", np.zeros((2, N, N), np.uint8), from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match="1 band"):
        read_time_series(s2_paths=[ref_s2], label_path=two)


def test_reference_without_crs(tmp_path):
    p = tmp_path / "nocrs.tif"
    with rasterio.open(p, "w", driver="GTiff", width=8, height=8, count=13, dtype="uint16") as dst:
        dst.write(np.ones((13, 8, 8), np.uint16))
    with pytest.raises(DataFormatError, match="no CRS"):
        read_time_series(s2_paths=[p])


# ------------------------------------------------------------------ issue 13: nothing guessed from values
def _label(tmp_path, values, name="cm.tif", dtype=np.uint8):
    lab = np.full((N, N), values[0], dtype)
    lab[:, N // 2:] = values[1]
    return _write(tmp_path / name, lab, from_origin(X0, Y0, RES, RES))


def test_label_coded_1_2_is_refused_by_default_and_read_when_told(tmp_path, ref_s2):
    lp = _label(tmp_path, (1, 2))          # 1 = no change, 2 = change (the old code read "no change")
    with pytest.raises(DataFormatError, match=r"cm\.tif: label values \[1, 2\].*label_coding='1/2'"):
        read_time_series(s2_paths=[ref_s2], label_path=lp)
    scene = read_time_series(s2_paths=[ref_s2], label_path=lp, label_coding="1/2")
    assert scene.change.values[:, N // 2:].all() and not scene.change.values[:, :N // 2].any()
    assert scene.attrs["label_coding"] == "1/2"
    # an all-1 file in the 1/2 coding is "no change" everywhere, not "all change"
    ones = _label(tmp_path, (1, 1), name="ones.tif")
    assert read_time_series(s2_paths=[ref_s2], label_path=ones, label_coding="1/2").change.values.sum() == 0


def test_uint8_s2_band_refused_unless_scale_given(tmp_path):
    p = _s2_on_grid(tmp_path / "q.tif", X0, Y0, RES, 16, dtype=np.uint8)
    with pytest.raises(DataFormatError, match=r"q\.tif: Sentinel-2 band stored as uint8"):
        read_time_series(s2_paths=[p])
    scene = read_time_series(s2_paths=[p], s2_scale=255)
    assert float(scene.optical.max()) > 0.5


def test_inf_is_refused(tmp_path):
    data = np.full((13, 16, 16), 0.2, np.float32)
    data[3, 2, 2] = np.inf
    p = _write(tmp_path / "inf.tif", data, from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match=r"inf\.tif: 1 pixel\(s\) of S2 are \+/-inf"):
        read_time_series(s2_paths=[p])


def test_reversed_dates_are_refused(tmp_path, ref_s2):
    t2 = _s2_on_grid(tmp_path / "S2_20180101.tif", X0, Y0, RES, N)
    with pytest.raises(DataFormatError, match=r"S2_20180101\.tif is dated 2018-01-01, not after 2019-01-05"):
        read_time_series(s2_paths=[ref_s2, t2])
    with pytest.raises(DataFormatError, match="dates must increase"):
        read_time_series(s2_paths=[ref_s2, t2], dates=["2020-01-01", "2020-01-01"])


def test_negative_class_needs_nodata_or_classes(tmp_path, ref_s2):
    lab = np.zeros((N, N), np.int16)
    lab[:4] = -1
    lab[10:20] = 1
    lp = _write(tmp_path / "LabelHand.tif", lab, from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match=r"LabelHand\.tif: class label holds negative.*label_nodata=-1"):
        read_time_series(s2_paths=[ref_s2], label_path=lp, label_var="label")
    scene = read_time_series(s2_paths=[ref_s2], label_path=lp, label_var="label", label_nodata=-1)
    assert np.isnan(scene.label.values[:4]).all() and np.nanmax(scene.label.values) == 1
    kept = read_time_series(s2_paths=[ref_s2], label_path=lp, label_var="label", label_classes=[-1, 0, 1])
    assert float(kept.label.values.min()) == -1
    with pytest.raises(DataFormatError, match=r"label values \[1.0\] are not among"):
        read_time_series(s2_paths=[ref_s2], label_path=lp, label_var="label", label_classes=[-1, 0])


@pytest.mark.parametrize("unit, values, looks", [("unit", -12.0, "s1_unit='db'"),
                                                 ("linear", -12.0, "s1_unit='db'"),
                                                 ("db", 0.4, "s1_unit='unit'")])
def test_s1_values_that_do_not_fit_the_unit(tmp_path, unit, values, looks):
    s1 = _write(tmp_path / "S1_x.tif", np.full((2, N, N), values, np.float32), from_origin(X0, Y0, RES, RES))
    with pytest.raises(DataFormatError, match=rf"S1_x\.tif: Sentinel-1 values .*{looks}"):
        read_time_series(s1_paths=[s1], s1_unit=unit)


def test_date2_cropped_or_wrong_crs_raises(tmp_path, ref_s2):
    crop = _s2_on_grid(tmp_path / "crop.tif", X0, Y0, RES, 10)            # 10x10 px of 64x64
    with pytest.raises(DataFormatError, match=r"crop\.tif: .*covers only 2.4 %"):
        read_time_series(s2_paths=[ref_s2, crop], dates=["2019-01-01", "2020-01-01"])
    wrong = _s2_on_grid(tmp_path / "wrong.tif", X0, Y0, RES, N)
    with rasterio.open(wrong, "r+") as dst:
        dst.crs = "EPSG:4326"
    with pytest.raises(DataFormatError, match=r"wrong\.tif: its footprint \(CRS EPSG:4326\) does not"):
        read_time_series(s2_paths=[ref_s2, wrong], dates=["2019-01-01", "2020-01-01"])


# ------------------------------------------------------------------ real data
@pytest.mark.real_data
def test_sen1floods11_chip(real_data):
    base = real_data / "sen1floods11"
    s2 = base / "S2" / "Spain_7370579_S2Hand.tif"
    s1 = base / "S1" / "Spain_7370579_S1Hand.tif"
    lab = base / "Labels" / "Spain_7370579_LabelHand.tif"
    if not s2.is_file():
        pytest.skip("Sen1Floods11 chip not present")
    scene = read_time_series(s2_paths=[s2], s1_paths=[s1], label_path=lab, label_var="label", label_nodata=-1,
                             site="Spain_7370579", source="Sen1Floods11")
    assert scene.optical.shape == (1, 13, 512, 512) and scene.sar.shape == (1, 2, 512, 512)
    assert scene.rio.crs.to_epsg() == 4326
    # co-registered chip: S1 stays exactly as in the file (dB), S2 = DN / 10000
    with rasterio.open(s1) as src:
        np.testing.assert_array_equal(scene.sar.values[0], src.read())
    with rasterio.open(s2) as src:
        dn = src.read(4).astype(np.float32)
    np.testing.assert_allclose(scene.optical.sel(band="B04").values[0], np.clip(dn / 10000, 0, 1), rtol=1e-6)
    assert list(scene.polarisation.values) == ["VV", "VH"]
    vv = scene.sar.sel(polarisation="VV").values
    assert -30 < float(np.nanmedian(vv)) < 0
    label = scene.label.values
    with rasterio.open(lab) as src:
        raw = src.read(1)
    np.testing.assert_array_equal(np.isnan(label), raw == -1)
    water = float(np.nanmean(label))
    assert water == pytest.approx(float((raw == 1).sum() / (raw >= 0).sum()))
    # water is dark in VV: median VV of water pixels well below that of land pixels
    assert np.nanmedian(vv[0][label == 1]) < np.nanmedian(vv[0][label == 0]) - 5


def test_file_without_any_valid_pixel_raises(tmp_path, ref_s2):
    empty = _s2_on_grid(tmp_path / "S2_20200101.tif", X0, Y0, RES, N, nodata=0)
    with rasterio.open(empty, "r+") as dst:
        dst.write(np.zeros((13, N, N), np.uint16))                  # all nodata: a 100 % NaN date before
    with pytest.raises(DataFormatError, match=r"S2_20200101\.tif: no valid pixel on the reference grid"):
        read_time_series(s2_paths=[ref_s2, empty])
