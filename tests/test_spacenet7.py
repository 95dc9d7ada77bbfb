"""SpaceNet7-S1S2 reader on the embedded SpaceNet7-style samples."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from urbankit.data import spacenet7 as sn7
from urbankit.errors import ConfigError, DataFormatError

SITES = [f"L15-900{i}E-000{i}N_000{i}_000{i}_13" for i in range(1, 8)]


@pytest.fixture(scope="module")
def root(repo_root: Path) -> Path:
    return repo_root / "data_samples" / "spacenet7_s1s2"


@pytest.fixture()
def copy(root, tmp_path) -> Path:
    shutil.copytree(root, tmp_path / "sn7")
    return tmp_path / "sn7"


def _file(root: Path, site: str, modality: str, year: int, month: int) -> Path:
    return root / site / modality / f"{modality}_{site}_{year}_{month:02d}.tif"


def test_metadata_regions_and_sites(root):
    meta = sn7.read_metadata(root)
    assert sorted(meta) == SITES and all(len(v) == 6 for v in meta.values())
    first = meta[SITES[0]][0]
    assert (first.year, first.month, first.s1, first.s2, first.buildings, first.masked) == (2018, 1, True, True,
                                                                                               True, False)
    assert str(first.date)[:10] == "2018-01-01"
    regions = sn7.read_regions(root)
    assert [regions[s] for s in SITES] == ["NA"] * 3 + ["SSA"] * 3 + ["SA"]
    assert sn7.list_sites(root) == SITES
    assert sn7.read_bad_data(root)[SITES[0]] == {"s1": set(), "s2": {4}}


def test_read_site_shapes_units_and_change(root):
    site = SITES[4]
    s = sn7.read_site(root, site)
    assert s.optical.shape == (6, 10, 64, 64) and list(s.band.values) == list(sn7.S2_FILE_BANDS)
    assert s.sar.shape == (6, 2, 64, 64) and list(s.polarisation.values) == ["VV", "VH"]
    assert s.buildings.shape == (6, 64, 64) and s.change.dtype == np.uint8
    assert [str(t)[:7] for t in s.time.values] == [f"2018-{m:02d}" for m in range(1, 7)]
    assert s.attrs["region"] == "SSA" and s.attrs["dataset"] == "spacenet7_s1s2" and s.attrs["split"] == "train"
    # S1: [0, 1] <- -25..0 dB, decoded back to dB by hand
    with rasterio.open(_file(root, site, "sentinel1", 2018, 3)) as src:
        unit = src.read()
        assert s.rio.transform() == src.transform and s.rio.crs == src.crs
    np.testing.assert_allclose(s.sar.isel(time=2).values, unit * 25.0 - 25.0, atol=1e-4)
    assert float(s.sar.max()) <= 0.0 + 1e-5 and float(s.sar.min()) >= -25.0 - 1e-5
    # S2 and buildings unchanged, change = built at last and not at first
    with rasterio.open(_file(root, site, "sentinel2", 2018, 6)) as src:
        np.testing.assert_array_equal(s.optical.isel(time=5).values, src.read())
    b0, b5 = s.buildings.values[0], s.buildings.values[-1]
    np.testing.assert_array_equal(s.change.values, ((b5 > 0) & ~(b0 > 0)).astype(np.uint8))
    assert s.change.values.sum() > 0 and 0 <= float(s.buildings.min()) and float(s.buildings.max()) <= 1


def test_masked_missing_and_bad_months_are_skipped(root):
    def months(s):
        return [str(t)[:7] for t in s.time.values]

    bad = sn7.read_site(root, SITES[0])                    # bad_data.json: S2 index 4 (2018-05)
    assert "2018-05" not in months(bad) and len(months(bad)) == 5
    assert "2018-05" in months(sn7.read_site(root, SITES[0], drop_bad=False))
    no_s2 = sn7.read_site(root, SITES[1])                  # metadata: s2 false for 2018-03
    assert "2018-03" not in months(no_s2)
    assert "2018-03" in months(sn7.read_site(root, SITES[1], modalities=("s1", "buildings")))
    masked = sn7.read_site(root, SITES[2])                 # metadata: masked 2018-04
    assert "2018-04" not in months(masked)
    assert "2018-04" in months(sn7.read_site(root, SITES[2], drop_masked=False))


def test_first_last_pair_and_explicit_months(root):
    s = sn7.read_site(root, SITES[3], months="first_last")
    assert [str(t)[:7] for t in s.time.values] == ["2018-01", "2018-06"]
    full = sn7.read_site(root, SITES[3])
    np.testing.assert_array_equal(s.change.values, full.change.values)
    s = sn7.read_site(root, SITES[3], months=[(2018, 2), (2018, 4)], s2_bands="rgbn")
    assert list(s.band.values) == ["B04", "B03", "B02", "B08"] and s.sizes["time"] == 2
    with pytest.raises(DataFormatError, match=r"2018, 9"):
        sn7.read_site(root, SITES[3], months=[(2018, 9)])
    with pytest.raises(ConfigError):
        sn7.read_site(root, SITES[3], s2_bands=["B01"])     # not in the 10-band files


def test_unlabelled_site_has_no_labels(root):
    s = sn7.read_site(root, SITES[6])
    assert "buildings" not in s and "change" not in s
    assert s.attrs["split"] == "unlabelled" and s.sizes["time"] == 6


def test_published_split_and_label_fractions():
    sizes = {k: len(v) for k, v in sn7.PUBLISHED_SPLIT.items()}
    assert sizes == {"train": 30, "val": 15, "test": 14, "unlabelled": 20}
    all_ids = [i for v in sn7.PUBLISHED_SPLIT.values() for i in v]
    assert len(all_ids) == len(set(all_ids))
    for frac, n in ((10, 3), (20, 6), (40, 12), (100, 30)):
        ids = sn7.published_label_fraction(frac)
        assert len(ids) == n and set(ids) <= set(sn7.PUBLISHED_SPLIT["train"])
    assert set(sn7.published_label_fraction(10)) <= set(sn7.published_label_fraction(20))
    assert sn7.split_of("L15-0331E-1257N_1327_3160_13") == "train"
    assert sn7.split_of(SITES[0]) is None


def test_label_fraction_ids_are_deterministic_and_nested():
    train = sn7.PUBLISHED_SPLIT["train"]
    sub = {f: sn7.label_fraction_ids(train, f, seed=3) for f in (10, 20, 40, 100)}
    assert [len(sub[f]) for f in (10, 20, 40, 100)] == [3, 6, 12, 30]
    assert set(sub[10]) <= set(sub[20]) <= set(sub[40]) <= set(sub[100]) == set(train)
    assert sn7.label_fraction_ids(list(reversed(train)), 20, seed=3) == sub[20]   # order-independent
    assert sn7.label_fraction_ids(train, 20, seed=4) != sub[20]
    assert sn7.label_fraction_ids(["a", "b"], 10) in (["a"], ["b"])               # at least one
    with pytest.raises(ConfigError):
        sn7.label_fraction_ids(train, 0)


def test_domain_gap_split_by_region(root):
    regions = sn7.read_regions(root)
    split = sn7.domain_gap_split(regions, ["NA"], val_fraction=0.34, seed=0, unlabelled=[SITES[6]])
    assert split["test"] == SITES[3:6] and split["unlabelled"] == [SITES[6]]
    assert len(split["val"]) == 1 and sorted(split["train"] + split["val"]) == SITES[:3]
    assert sn7.list_sites(root, "test", splits=split) == SITES[3:6]
    scenes = sn7.read_sites(root, "val", splits=split, modalities=("s1",))
    assert len(scenes) == 1 and scenes[0].attrs["split"] == "val" and "optical" not in scenes[0]
    with pytest.raises(ConfigError, match="EU"):
        sn7.domain_gap_split(regions, ["EU"])


def test_published_folder_names_s1_s2_are_accepted(root, copy):
    site = SITES[0]
    for long, short in (("sentinel1", "s1"), ("sentinel2", "s2")):
        folder = copy / site / long
        for f in folder.iterdir():
            f.rename(folder / f.name.replace(f"{long}_", f"{short}_"))
        folder.rename(copy / site / short)
    a = sn7.read_site(copy, site)
    b = sn7.read_site(root, site)                 # the sentinel1/sentinel2 spelling
    np.testing.assert_array_equal(a.sar.values, b.sar.values)
    np.testing.assert_array_equal(a.optical.values, b.optical.values)
    assert a.sizes["time"] == 5


def test_without_metadata_timestamps_come_from_the_files(copy):
    (copy / "metadata.json").unlink()
    meta = sn7.read_metadata(copy)
    stamps = meta[SITES[1]]
    assert len(stamps) == 6 and not stamps[2].s2 and stamps[2].s1        # the month without an S2 file
    assert not any(ts.buildings for ts in meta[SITES[6]])
    assert sn7.read_site(copy, SITES[0]).sizes["time"] == 5


def test_building_percent_is_scaled_to_a_fraction(copy):
    from urbankit.data.sample_files import write_tif

    site = SITES[3]
    path = _file(copy, site, "buildings", 2018, 2)
    with rasterio.open(path) as src:
        frac, transform, crs = src.read(1), src.transform, src.crs
    write_tif(path, (frac * 100).astype(np.float32), transform, crs)
    s = sn7.read_site(copy, site)
    np.testing.assert_allclose(s.buildings.isel(time=1).values, frac, atol=1e-6)


def test_cache(root, tmp_path):
    a = sn7.read_site(root, SITES[5], cache=True, cache_dir=tmp_path)
    b = sn7.read_site(root, SITES[5], cache=True, cache_dir=tmp_path)
    assert (a.attrs["cache"], b.attrs["cache"]) == ("miss", "hit")
    np.testing.assert_array_equal(a.buildings.values, b.buildings.values)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_wrong_band_count(copy):
    from urbankit.data.sample_files import write_tif

    site = SITES[3]
    path = _file(copy, site, "sentinel2", 2018, 4)
    with rasterio.open(path) as src:
        arr, transform, crs = src.read()[:4], src.transform, src.crs
    write_tif(path, arr, transform, crs)
    with pytest.raises(DataFormatError, match=rf"{path.name}.*4 band\(s\), expected 10"):
        sn7.read_site(copy, site)


def test_missing_file_listed_in_metadata(copy):
    site = SITES[4]
    path = _file(copy, site, "sentinel1", 2018, 5)
    path.unlink()
    with pytest.raises(DataFormatError, match=rf"{path.name}: missing"):
        sn7.read_site(copy, site)


def test_truncated_raster(copy):
    site = SITES[4]
    path = _file(copy, site, "buildings", 2018, 1)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=path.name):
        sn7.read_site(copy, site)


def test_invalid_json_files(copy):
    (copy / "metadata.json").write_text("{ oops")
    with pytest.raises(DataFormatError, match=r"metadata\.json.*not valid JSON"):
        sn7.read_site(copy, SITES[0])
    (copy / "metadata.json").write_text(json.dumps({SITES[0]: [{"year": 2018}]}))
    with pytest.raises(DataFormatError, match=r"metadata\.json.*'year' and 'month'"):
        sn7.read_metadata(copy)
    (copy / "spacenet7_regions.json").write_text(json.dumps({SITES[0]: 3}))
    with pytest.raises(DataFormatError, match="spacenet7_regions.json"):
        sn7.read_regions(copy)


def test_unknown_site(root):
    with pytest.raises(DataFormatError, match="no such site"):
        sn7.read_site(root, "L15-0000E-0000N_0000_0000_13")


def test_download_spacenet7_finds_the_root_inside_the_archive(root, tmp_path, monkeypatch):
    from urbankit.data import download

    def fake_fetch(name, data_root=None, **kwargs):
        assert name == "sen12_mtum" and kwargs["allow_unverified"] is True
        shutil.copytree(root, tmp_path / "sen12_mtum" / "spacenet7_s1s2")   # one extra folder level
        return tmp_path / "sen12_mtum"

    monkeypatch.setattr(download, "fetch", fake_fetch)
    found = sn7.download_spacenet7(tmp_path, allow_unverified=True)
    assert found == tmp_path / "sen12_mtum" / "spacenet7_s1s2"
    assert sn7.list_sites(tmp_path / "sen12_mtum") == SITES


# ------------------------------------------------------------------ issue 13: no silent wrong values
def _rewrite(path: Path, values=None, shift=0.0):
    from affine import Affine

    with rasterio.open(path) as src:
        arr, t, profile = src.read(), src.transform, src.profile
    if values is not None:
        arr = values(arr).astype(np.float32)
        profile["dtype"] = "float32"
    profile["transform"] = Affine(t.a, 0, t.c + shift, 0, t.e, t.f)
    profile.pop("predictor", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)


def test_s1_in_db_raises_naming_the_file(copy):
    path = _file(copy, SITES[0], "sentinel1", 2018, 3)
    _rewrite(path, values=lambda a: a * 25.0 - 25.0)        # the old reader clipped dB to 0 -> -25 dB
    with pytest.raises(DataFormatError, match=rf"{path.name}: Sentinel-1 values .* look like sigma0 in dB"):
        sn7.read_site(copy, SITES[0])


def test_raster_of_another_place_raises(copy):
    path = _file(copy, SITES[0], "sentinel2", 2018, 3)
    _rewrite(path, shift=1.0e5)
    with pytest.raises(DataFormatError, match=rf"{path.name}: its footprint .* does not overlap"):
        sn7.read_site(copy, SITES[0])
