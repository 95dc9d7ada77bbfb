"""OSCD reader, DS U-Net Sentinel-1 and the scene cache on the embedded OSCD-style samples."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbankit.data import cache as scene_cache
from urbankit.data import oscd
from urbankit.errors import ConfigError, DataFormatError

IMAGES = "Onera Satellite Change Detection dataset - Images"
LABELS = "Onera Satellite Change Detection dataset - Train Labels"


@pytest.fixture(scope="module")
def root(repo_root: Path) -> Path:
    return repo_root / "data_samples" / "oscd"


@pytest.fixture(scope="module")
def s1_root(repo_root: Path) -> Path:
    return repo_root / "data_samples" / "oscd_s1"


@pytest.fixture(scope="module")
def riverton(root, s1_root):
    return oscd.read_city(root, "riverton", s1_root=s1_root)


@pytest.fixture()
def broken(root, s1_root, tmp_path) -> tuple[Path, Path]:
    """A writable copy of the OSCD sample to break."""
    shutil.copytree(root, tmp_path / "oscd")
    shutil.copytree(s1_root, tmp_path / "oscd_s1")
    return tmp_path / "oscd", tmp_path / "oscd_s1"


def _band_file(root: Path, city: str, date: int, band: str) -> Path:
    return next((root / IMAGES / city / f"imgs_{date}").glob(f"*_{band}.tif"))


def _gradient_corr(a: np.ndarray, b: np.ndarray, shift: int = 0, margin: int = 8) -> float:
    """Correlation of the gradient magnitudes of a and b (b shifted by `shift` px in y and x)."""
    from scipy import ndimage

    ga = ndimage.gaussian_gradient_magnitude(np.nan_to_num(a - np.nanmean(a)), 1.0)
    gb = ndimage.gaussian_gradient_magnitude(np.nan_to_num(b - np.nanmean(b)), 1.0)
    gb = np.roll(gb, (shift, shift), axis=(0, 1))
    sl = (slice(margin, -margin), slice(margin, -margin))
    return float(np.corrcoef(ga[sl].ravel(), gb[sl].ravel())[0, 1])


# --------------------------------------------------------------------------------------------
# layout, splits, dates
# --------------------------------------------------------------------------------------------
def test_list_cities_follows_split_files(root):
    assert oscd.list_cities(root, "train") == ["riverton", "lakeside"]
    assert oscd.list_cities(root, "test") == ["hillcrest"]
    assert oscd.list_cities(root, "all") == ["riverton", "lakeside", "hillcrest"]
    with pytest.raises(ConfigError, match="split"):
        oscd.list_cities(root, "val")


def test_find_layout_accepts_images_folder_and_rejects_other_folders(root, tmp_path):
    assert oscd.find_layout(root / IMAGES).images == root / IMAGES
    assert oscd.find_layout(root).labels == (root / LABELS,)
    with pytest.raises(DataFormatError, match="not an OSCD folder"):
        oscd.find_layout(tmp_path)


def test_read_dates(root):
    d1, d2 = oscd.read_dates(root / IMAGES / "riverton")
    assert str(d1)[:10] == "2017-03-10" and str(d2)[:10] == "2019-04-02"


# --------------------------------------------------------------------------------------------
# reading a city
# --------------------------------------------------------------------------------------------
def test_read_city_shapes_coords_and_attrs(root, riverton):
    s = riverton
    assert s.optical.dims == ("time", "band", "y", "x")
    assert s.optical.shape == (2, 13, 120, 120) and s.optical.dtype == np.float32
    assert list(s.band.values) == list(oscd.OSCD_BANDS)
    assert [str(t)[:10] for t in s.time.values] == ["2017-03-10", "2019-04-02"]
    assert s.attrs["dataset"] == "oscd" and s.attrs["split"] == "train" and s.attrs["site"] == "riverton"
    assert s.attrs["region"] == "unknown" and "Copernicus" in s.attrs["licence"]
    assert s.rio.crs.to_epsg() == 32633
    # the grid is the date-1 B02 grid: same transform, pixel centres half a pixel in
    with rasterio.open(_band_file(root, "riverton", 1, "B02")) as src:
        assert s.rio.transform() == src.transform
        assert np.isclose(float(s.x[0]), src.transform.c + src.transform.a / 2)
    assert float(np.nanmin(s.optical)) >= 0 and float(np.nanmax(s.optical)) <= 1
    assert not np.isnan(s.optical.values).any()


def test_10m_band_equals_dn_over_10000(root, riverton):
    with rasterio.open(_band_file(root, "riverton", 1, "B03")) as src:
        dn = src.read(1)
    np.testing.assert_allclose(riverton.optical.sel(band="B03").isel(time=0).values, dn / 10000.0, rtol=1e-6)


def test_20m_and_60m_bands_are_resampled_onto_the_10m_grid(root, riverton):
    with rasterio.open(_band_file(root, "riverton", 1, "B11")) as src:
        dn20 = src.read(1)
    assert dn20.shape == (60, 60)
    b11 = riverton.optical.sel(band="B11").isel(time=0).values
    assert b11.shape == (120, 120)
    # bilinear upsampling by 2 preserves the mean of a 2x2 block closely
    blocks = b11.reshape(60, 2, 60, 2).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), dn20.ravel() / 1e4)[0, 1] > 0.95
    assert abs(float(b11.mean()) - float(dn20.mean()) / 1e4) < 0.01


@pytest.mark.parametrize("spec, expected", [
    ("rgb", ["B04", "B03", "B02"]),
    ("rgbn", ["B04", "B03", "B02", "B08"]),
    ("10m", ["B02", "B03", "B04", "B08"]),
    ("10m+20m", ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]),
    (["B8A", "B01"], ["B8A", "B01"]),
])
def test_band_subsets(root, riverton, spec, expected):
    s = oscd.read_city(root, "riverton", bands=spec)
    assert list(s.band.values) == expected
    np.testing.assert_array_equal(s.optical.values, riverton.optical.sel(band=expected).values)


def test_unknown_band_is_a_config_error(root):
    with pytest.raises(ConfigError):
        oscd.read_city(root, "riverton", bands=["B13"])


def test_date2_with_smaller_grid_is_aligned_by_georeference(root, riverton):
    with rasterio.open(_band_file(root, "riverton", 2, "B04")) as src2, \
            rasterio.open(_band_file(root, "riverton", 1, "B04")) as src1:
        assert src2.shape == (117, 117) and src1.shape == (120, 120)   # the abudhabi quirk
        # same extent, coarser pixels
        assert np.isclose(src2.bounds.right, src1.bounds.right) and np.isclose(src2.bounds.bottom, src1.bounds.bottom)
    t1 = riverton.optical.sel(band="B04").isel(time=0).values
    t2 = riverton.optical.sel(band="B04").isel(time=1).values
    assert t2.shape == t1.shape and not np.isnan(t2).any()
    aligned = _gradient_corr(t1, t2, 0)
    assert aligned > 0.7
    assert aligned > _gradient_corr(t1, t2, 2) + 0.2


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # labels have no georeference
def test_labels_from_tif_are_recoded_1_2_to_0_1(root, riverton):
    with rasterio.open(root / LABELS / "riverton" / "cm" / "riverton-cm.tif") as src:
        raw = src.read(1)
    assert set(np.unique(raw)) == {1, 2}
    assert riverton.change.dtype == np.uint8
    np.testing.assert_array_equal(riverton.change.values, (raw == 2).astype(np.uint8))
    assert 0.005 < float(riverton.change.mean()) < 0.2


@pytest.mark.parametrize("city", ["riverton", "lakeside"])  # cm.png is RGBA for riverton, RGB for lakeside
def test_png_label_used_when_tif_absent(broken, city):
    root, _ = broken
    from_tif = oscd.read_city(root, city, bands="rgb").change.values
    (root / LABELS / city / "cm" / f"{city}-cm.tif").unlink()
    s = oscd.read_city(root, city, bands="rgb")
    assert s.attrs["label_file"] == "cm.png"
    np.testing.assert_array_equal(s.change.values, from_tif)


def test_unlabelled_test_city_has_no_change(root):
    s = oscd.read_city(root, "hillcrest", bands="10m")
    assert "change" not in s and s.attrs["split"] == "test"


def test_read_cities_reads_the_split(root):
    scenes = oscd.read_cities(root, "train", bands="rgb")
    assert [s.attrs["site"] for s in scenes] == ["riverton", "lakeside"]


# --------------------------------------------------------------------------------------------
# Sentinel-1
# --------------------------------------------------------------------------------------------
def test_s1_orbits_and_variable(s1_root, riverton):
    assert oscd.list_s1_orbits(s1_root, "riverton") == [8, 59]
    assert oscd.list_s1_orbits(s1_root / "data", "lakeside") == [30]
    s = riverton
    assert s.sar.dims == ("time", "polarisation", "y", "x") and s.sar.shape == (2, 1, 120, 120)
    assert list(s.polarisation.values) == ["VV"] and s.sar.dtype == np.float32
    assert s.attrs["sar_orbits"] == "8,59" and "sar_orbit" not in s.attrs  # a mean is no one orbit's sample
    assert -25.01 <= float(s.sar.min()) and float(s.sar.max()) <= 5.01


def test_s1_decoding_is_the_ds_unet_scaling():
    from urbankit.data.normalize import unit_to_db

    np.testing.assert_allclose(unit_to_db(np.array([0.0, 0.5, 1.0], np.float32), db_range=oscd.S1_DB_RANGE),
                               [-25.0, -10.0, 5.0], atol=1e-5)


def test_s1_mean_of_orbits_is_taken_in_linear_power(root, s1_root, riverton):
    a = oscd.read_city(root, "riverton", bands="rgb", s1_root=s1_root, orbit=8).sar.values
    b = oscd.read_city(root, "riverton", bands="rgb", s1_root=s1_root, orbit=59).sar.values
    expected = 10 * np.log10((10 ** (a / 10) + 10 ** (b / 10)) / 2)
    np.testing.assert_allclose(riverton.sar.values, expected, atol=1e-3)
    # and it is not the mean in dB (those differ wherever the orbits disagree)
    assert np.abs(riverton.sar.values - (a + b) / 2).max() > 0.1


def test_s1_lines_up_with_s2(riverton):
    vv = riverton.sar.isel(time=0, polarisation=0).values
    b08 = riverton.optical.sel(band="B08").isel(time=0).values
    assert _gradient_corr(b08, vv, 0) > _gradient_corr(b08, vv, 3) + 0.1


def test_unknown_orbit_is_a_config_error(root, s1_root):
    with pytest.raises(ConfigError, match="available"):
        oscd.read_city(root, "riverton", s1_root=s1_root, orbit=999)


# --------------------------------------------------------------------------------------------
# bad input: clear DataFormatError naming the file
# --------------------------------------------------------------------------------------------
def test_truncated_geotiff(broken):
    root, _ = broken
    path = _band_file(root, "riverton", 1, "B03")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=path.name):
        oscd.read_city(root, "riverton")


def test_missing_band_file(broken):
    root, _ = broken
    path = _band_file(root, "riverton", 2, "B8A")
    path.unlink()
    with pytest.raises(DataFormatError, match=r"imgs_2.*B8A"):
        oscd.read_city(root, "riverton")
    # a subset without B8A still reads
    assert oscd.read_city(root, "riverton", bands="10m").sizes["band"] == 4


def test_label_of_wrong_size(broken):
    root, _ = broken
    from urbankit.data.sample_files import write_tif

    path = root / LABELS / "riverton" / "cm" / "riverton-cm.tif"
    write_tif(path, np.ones((100, 100), np.uint8))
    with pytest.raises(DataFormatError, match=r"riverton-cm\.tif.*100x100.*120x120"):
        oscd.read_city(root, "riverton")


def test_label_with_unknown_values(broken):
    root, _ = broken
    from urbankit.data.sample_files import write_tif

    path = root / LABELS / "riverton" / "cm" / "riverton-cm.tif"
    write_tif(path, np.full((120, 120), 7, np.uint8))
    with pytest.raises(DataFormatError, match=r"riverton-cm\.tif: label values \[7\] do not fit"):
        oscd.read_city(root, "riverton")


def test_city_folder_without_dates(broken):
    root, _ = broken
    (root / IMAGES / "lakeside" / "dates.txt").unlink()
    with pytest.raises(DataFormatError, match=r"lakeside.dates\.txt"):
        oscd.read_city(root, "lakeside")


def test_malformed_dates(broken):
    root, _ = broken
    (root / IMAGES / "lakeside" / "dates.txt").write_text("date_1: 2017\n")
    with pytest.raises(DataFormatError, match=r"dates\.txt.*date_1"):
        oscd.read_city(root, "lakeside")


def test_empty_split_list(broken):
    root, _ = broken
    (root / IMAGES / "train.txt").write_text(" \n")
    with pytest.raises(DataFormatError, match=r"train\.txt.*empty"):
        oscd.list_cities(root, "train")


def test_missing_city_and_missing_s1(broken):
    root, s1 = broken
    with pytest.raises(DataFormatError, match="atlantis"):
        oscd.read_city(root, "atlantis")
    for f in s1.glob("data/sentinel1_lakeside_*"):
        f.unlink()
    with pytest.raises(DataFormatError, match="sentinel1_lakeside"):
        oscd.read_city(root, "lakeside", s1_root=s1)


def test_truncated_s1_file(broken):
    root, s1 = broken
    path = s1 / "data" / "sentinel1_lakeside_30_t2.tif"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataFormatError, match=path.name):
        oscd.read_city(root, "lakeside", bands="rgb", s1_root=s1)


# --------------------------------------------------------------------------------------------
# issue 13: label codings are stated, alignment is checked, nothing silently wrong
# --------------------------------------------------------------------------------------------
def _write(path: Path, arr, transform=None, crs=None):
    from urbankit.data.sample_files import write_tif

    write_tif(path, np.asarray(arr), transform, crs)
    return path


def test_all_one_tif_label_is_no_change(broken):
    root, _ = broken
    _write(root / LABELS / "riverton" / "cm" / "riverton-cm.tif", np.ones((120, 120), np.uint8))
    s = oscd.read_city(root, "riverton", bands="rgb")          # the old reader: 100 % change
    assert int(s.change.sum()) == 0 and s.attrs["label_coding"] == "1/2"


def test_tif_label_coded_0_1_needs_label_coding(broken):
    root, _ = broken
    lab = np.zeros((120, 120), np.uint8)
    lab[:30] = 1
    _write(root / LABELS / "riverton" / "cm" / "riverton-cm.tif", lab)
    with pytest.raises(DataFormatError, match=r"riverton-cm\.tif: label values \[0, 1\].*label_coding='0/1'"):
        oscd.read_city(root, "riverton", bands="rgb")
    s = oscd.read_city(root, "riverton", bands="rgb", label_coding="0/1")
    assert int(s.change.sum()) == 30 * 120


def test_png_label_coded_0_1_is_refused(broken):
    from PIL import Image

    root, _ = broken
    cm = root / LABELS / "lakeside" / "cm"
    (cm / "lakeside-cm.tif").unlink()
    v = np.zeros((120, 120), np.uint8)
    v[60:] = 1
    Image.fromarray(np.stack([v, v, v], -1)).save(cm / "cm.png")
    with pytest.raises(DataFormatError,
                       match=r"cm\.png: label values \[0, 1\] do not fit the coding 0 = no change, 255 = change"):
        oscd.read_city(root, "lakeside", bands="rgb")              # the old reader: no change
    assert int(oscd.read_city(root, "lakeside", bands="rgb", label_coding="0/1").change.sum()) == 60 * 120
    with pytest.raises(ConfigError, match="label_coding"):
        oscd.read_city(root, "lakeside", bands="rgb", label_coding="1-2")


def _rewrite_band(path: Path, *, crs=None, shift=(0.0, 0.0), crop=None, dtype=None, values=None):
    with rasterio.open(path) as src:
        arr, t, c = src.read(1), src.transform, src.crs
    from affine import Affine

    t = Affine(t.a, 0, t.c + shift[0], 0, t.e, t.f + shift[1])
    if crop:
        arr = arr[:crop, :crop]
    if values is not None:
        arr = values(arr)
    path.unlink()
    _write(path, arr.astype(dtype or arr.dtype), t, crs or c)


def test_band_with_wrong_crs_raises(broken):
    root, _ = broken
    path = _band_file(root, "riverton", 1, "B03")
    _rewrite_band(path, crs="EPSG:4326")                            # UTM numbers labelled as degrees
    with pytest.raises(DataFormatError, match=rf"{path.name}: its footprint \(CRS EPSG:4326\) does not"):
        oscd.read_city(root, "riverton", bands="rgb")              # the old reader: 100 % NaN


@pytest.mark.parametrize("how, match", [({"shift": (50000.0, 0.0)}, "does not overlap"),
                                        ({"crop": 10}, r"covers only 0.7 %")])
def test_date2_without_overlap_or_cropped_raises(broken, how, match):
    root, _ = broken
    path = _band_file(root, "lakeside", 2, "B04")
    _rewrite_band(path, **how)
    with pytest.raises(DataFormatError, match=rf"{path.name}: .*{match}"):
        oscd.read_city(root, "lakeside", bands="rgb")
    if "crop" in how:  # told explicitly (min_coverage=0), the NaN outside the crop is accepted
        s = oscd.read_city(root, "lakeside", bands="rgb", min_coverage=0.0)
        assert np.isnan(s.optical.sel(band="B04").isel(time=1).values).mean() > 0.9


def test_s1_of_another_city_raises(broken):
    root, s1 = broken
    for f in sorted((s1 / "data").glob("sentinel1_riverton_8_t*.tif")):
        _rewrite_band(f, shift=(0.0, 300000.0))
    with pytest.raises(DataFormatError, match=r"sentinel1_riverton_8_t1\.tif: its footprint .* does not "
                                              r"overlap the reference grid the date-1 B02 grid"):
        oscd.read_city(root, "riverton", bands="rgb", s1_root=s1, orbit=8)


def test_s1_in_db_error_names_the_file_and_the_right_function(broken):
    root, s1 = broken
    path = s1 / "data" / "sentinel1_riverton_8_t1.tif"
    _rewrite_band(path, values=lambda a: a * 30 - 25)               # dB instead of the [0, 1] export
    with pytest.raises(DataFormatError, match=r"sentinel1_riverton_8_t1\.tif: Sentinel-1 values .* look like "
                                              r"sigma0 in dB.*read_time_series\(s1_paths=\.\.\., s1_unit='db'\)"):
        oscd.read_city(root, "riverton", bands="rgb", s1_root=s1, orbit=8)


def test_uint8_band_and_inf_band_raise(broken):
    root, _ = broken
    b03 = _band_file(root, "riverton", 1, "B03")
    _rewrite_band(b03, dtype=np.uint8, values=lambda a: (a // 40))
    with pytest.raises(DataFormatError, match=rf"{b03.name}: Sentinel-2 band stored as uint8"):
        oscd.read_city(root, "riverton", bands="rgb")
    root2 = root
    b04 = _band_file(root2, "lakeside", 1, "B04")

    def with_inf(a):
        a = a.astype(np.float32)
        a[5, 5] = np.inf
        return a

    _rewrite_band(b04, values=with_inf)
    with pytest.raises(DataFormatError, match=rf"{b04.name}: 1 pixel\(s\) of the band are \+/-inf"):
        oscd.read_city(root, "lakeside", bands="rgb")


def test_band_without_any_valid_pixel_raises(broken):
    root, _ = broken
    path = _band_file(root, "lakeside", 2, "B03")
    _rewrite_band(path, values=lambda a: np.zeros_like(a))             # all DN 0 = no data: 100 % NaN before
    with pytest.raises(DataFormatError, match=rf"{path.name}: no valid pixel on the date-1 B02 grid"):
        oscd.read_city(root, "lakeside", bands="rgb")


def test_duplicate_band_file_raises(broken):
    root, _ = broken
    path = _band_file(root, "riverton", 1, "B04")
    shutil.copy(path, path.with_name("zzz_copy_B04.tif"))
    with pytest.raises(DataFormatError, match=r"imgs_1: two files for band B04"):
        oscd.read_city(root, "riverton", bands="rgb")


def test_orbit_missing_its_t2_file_raises(broken):
    root, s1 = broken
    (s1 / "data" / "sentinel1_riverton_59_t2.tif").unlink()
    # the old reader dropped orbit 59 from the mean without a word
    with pytest.raises(DataFormatError, match=r"sentinel1_riverton_59_t2\.tif: missing, but orbit 59 has its"):
        oscd.read_city(root, "riverton", bands="rgb", s1_root=s1)
    one = oscd.read_city(root, "riverton", bands="rgb", s1_root=s1, orbit=8)
    assert one.attrs["sar_orbits"] == "8" and one.attrs["sar_orbit"] == "8"  # a sample for sar_orbit="random"


def test_reversed_dates_raise(broken):
    root, _ = broken
    (root / IMAGES / "riverton" / "dates.txt").write_text("date_1: 20190402\ndate_2: 20170310\n")
    with pytest.raises(DataFormatError, match=r"dates\.txt: date_2 \(2017-03-10\) is not after date_1"):
        oscd.read_city(root, "riverton", bands="rgb")


def test_binary_split_file_raises(broken):
    root, _ = broken
    (root / IMAGES / "train.txt").write_bytes(bytes(range(256)))
    with pytest.raises(DataFormatError, match=r"train\.txt: not a text file"):
        oscd.list_cities(root, "train")                             # the old reader: []
    (root / IMAGES / "train.txt").write_bytes(b"riverton,lake\x00side")
    with pytest.raises(DataFormatError, match=r"train\.txt: 'lake\\x00side' is not a city name"):
        oscd.list_cities(root, "train")


# --------------------------------------------------------------------------------------------
# the scene cache
# --------------------------------------------------------------------------------------------
def test_cache_second_read_loads_the_same_scene(root, s1_root, tmp_path):
    import xarray as xr

    cache_dir = tmp_path / "cache"
    first = oscd.read_city(root, "riverton", s1_root=s1_root, cache=True, cache_dir=cache_dir)
    second = oscd.read_city(root, "riverton", s1_root=s1_root, cache=True, cache_dir=cache_dir)
    assert first.attrs["cache"] == "miss" and second.attrs["cache"] == "hit"
    entries = list((cache_dir / "oscd").iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("riverton-") and entries[0].suffix == ".zarr"
    for name in ("optical", "sar", "change"):
        xr.testing.assert_equal(first[name], second[name])
        assert second[name].dtype == first[name].dtype
    assert second.rio.crs == first.rio.crs and second.rio.transform() == first.rio.transform()
    assert second.attrs["site"] == "riverton" and second.attrs["split"] == "train"
    # other options -> another entry, never the old one
    third = oscd.read_city(root, "riverton", bands="rgb", cache=True, cache_dir=cache_dir)
    assert third.attrs["cache"] == "miss" and third.sizes["band"] == 3
    assert len(list((cache_dir / "oscd").iterdir())) == 2
    assert scene_cache.clear_cache(cache_dir, "oscd") == 2


def _rewrite_uncompressed(path: Path, fn) -> None:
    with rasterio.open(path) as src:
        arr, profile = src.read(), src.profile
    profile.update(compress=None)
    profile.pop("predictor", None)
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(fn(arr).astype(arr.dtype))


def test_cache_misses_when_a_source_file_changes(broken, tmp_path):
    root, _ = broken
    cache_dir = tmp_path / "cache"
    path = _band_file(root, "lakeside", 2, "B04")
    _rewrite_uncompressed(path, lambda a: a)
    first = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=cache_dir)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))     # touched, same content: a hit
    touched = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=cache_dir)
    assert touched.attrs["cache"] == "hit"
    # rewritten with other values, same size, old mtime restored: the old code served it stale (issue 13)
    st = path.stat()
    _rewrite_uncompressed(path, lambda a: a // 2)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    again = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=cache_dir)
    assert again.attrs["cache"] == "miss"
    b04 = again.optical.sel(band="B04").isel(time=1).values
    assert float(np.nanmean(b04)) < 0.6 * float(np.nanmean(first.optical.sel(band="B04").isel(time=1).values))


def test_cache_write_is_atomic_and_damaged_entries_are_rebuilt(root, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    scene = oscd.read_city(root, "lakeside", bands="rgb")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(scene), "to_zarr", boom)
    with pytest.raises(RuntimeError):
        oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=cache_dir)
    monkeypatch.undo()
    folder = cache_dir / "oscd"
    assert not folder.exists() or list(folder.iterdir()) == []   # no half-written entry
    ok = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=cache_dir)
    entry = next(folder.iterdir())
    (entry / ".zmetadata").write_text("{not json")                # damage it
    rebuilt = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=cache_dir)
    assert rebuilt.attrs["cache"] == "miss"
    np.testing.assert_array_equal(rebuilt.optical.values, ok.optical.values)


def test_default_cache_dir_respects_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("URBANKIT_CACHE", str(tmp_path / "c"))
    assert scene_cache.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("URBANKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert scene_cache.default_cache_dir() == tmp_path / "x" / "urbankit" / "scenes"


def test_download_oscd_fetches_the_registry_entries(tmp_path, monkeypatch):
    from urbankit.data import download

    calls = []

    def fake_fetch(name, root=None, **kwargs):
        calls.append((name, kwargs.get("allow_unverified", False)))
        if name == "oscd_s1":
            data = tmp_path / "oscd_s1" / "DS_UNet-abc" / "data"
            data.mkdir(parents=True, exist_ok=True)
            (data / "sentinel1_paris_8_t1.tif").write_bytes(b"")
            return tmp_path / "oscd_s1"
        return tmp_path / "oscd"

    monkeypatch.setattr(download, "fetch", fake_fetch)
    root, s1 = oscd.download_oscd(tmp_path, allow_unverified=True)
    assert calls == [("oscd_images", False), ("oscd_train_labels", False), ("oscd_test_labels", False),
                     ("oscd_s1", True)]
    assert root == tmp_path / "oscd" and s1 == tmp_path / "oscd_s1" / "DS_UNet-abc" / "data"


def test_official_rect_folder_is_preferred_when_present(broken):
    root, _ = broken
    from urbankit.data.sample_files import write_tif

    with rasterio.open(_band_file(root, "riverton", 1, "B02")) as src:
        transform, crs, shape = src.transform, src.crs, src.shape
    rect = root / IMAGES / "riverton" / "imgs_1_rect"
    write_tif(rect / "B05.tif", np.full(shape, 5000, np.uint16), transform, crs)   # official 10 m copy
    s = oscd.read_city(root, "riverton", bands=["B05", "B06"])
    np.testing.assert_array_equal(s.optical.sel(band="B05").isel(time=0).values, 0.5)
    assert float(s.optical.sel(band="B06").isel(time=0).std()) > 0            # still the native file


def test_cached_store_is_plain_zarr_readable_by_xarray(root, tmp_path):
    import xarray as xr

    scene = oscd.read_city(root, "lakeside", bands="rgbn")
    path = scene_cache.save_scene(scene, tmp_path / "lakeside.zarr")
    fast = scene_cache.load_scene(path)
    with xr.open_zarr(path, consolidated=True, chunks=None) as ds:      # any zarr reader
        generic = ds.load()
    for name in generic.variables:
        generic[name].encoding = {}
    xr.testing.assert_identical(fast, generic)
    xr.testing.assert_identical(fast.drop_vars("spatial_ref"), scene.drop_vars("spatial_ref"))
    assert fast.rio.crs == scene.rio.crs
