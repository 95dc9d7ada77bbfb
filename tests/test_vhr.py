"""VHR change-detection readers (LEVIR-CD, WHU-CD, DSIFN, SYSU-CD) on small files made in tmp_path."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from urbankit.data.vhr import (
    VHRChangeDataset,
    WHUEpochTiles,
    read_dsifn,
    read_levir_cd,
    read_pair,
    read_sysu_cd,
    read_whu_cd,
    tile_scene,
)
from urbankit.errors import DataFormatError


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """RGB uint8 image whose pixels encode their position (so patches can be located)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(yy // 4) % 256, (xx // 4) % 256, np.full((h, w), seed * 40 % 256)], -1).astype(np.uint8)


def _label(h: int, w: int, value: int = 255) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[h // 4: h // 2, w // 4: w // 2] = value  # change in one block
    return lab


def _write_pair(base, names, stem, h, w, seed, *, ext=(".png", ".png", ".png"), label_value=255):
    for folder, e, arr in zip(names, ext, (_pattern(h, w, seed), _pattern(h, w, seed + 1),
                                           _label(h, w, label_value))):
        (base / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(base / folder / f"{stem}{e}")


@pytest.fixture
def levir_root(tmp_path):
    root = tmp_path / "LEVIR-CD"
    _write_pair(root / "train", ("A", "B", "label"), "train_1", 1024, 1024, 1)
    _write_pair(root / "train", ("A", "B", "label"), "train_2", 1024, 1024, 2)
    _write_pair(root / "val", ("A", "B", "label"), "val_1", 1024, 1024, 3)
    _write_pair(root / "test", ("A", "B", "label"), "test_1", 1024, 1024, 4)
    return root


def test_levir_official_layout_and_splits(levir_root):
    ds = read_levir_cd(levir_root)
    assert len(ds) == 4
    assert sorted(ds.table()["split"]) == ["test", "train", "train", "val"]
    assert len(read_levir_cd(levir_root, "train")) == 2
    scene = read_levir_cd(levir_root, "val")[0]
    assert scene.optical.dims == ("time", "band", "y", "x")
    assert scene.optical.shape == (2, 3, 1024, 1024)
    assert scene.optical.dtype == np.float32
    assert list(scene.band.values) == ["R", "G", "B"]
    assert 0.0 <= float(scene.optical.min()) and float(scene.optical.max()) <= 1.0
    assert scene.change.dtype == np.uint8 and set(np.unique(scene.change.values)) == {0, 1}
    assert float(scene.change.mean()) == pytest.approx(1 / 16)
    assert scene.attrs["site"] == "val_1" and scene.attrs["split"] == "val"
    assert scene.attrs["dataset"] == "levir_cd"
    assert scene.rio.crs is None
    from urbankit.data.schema import validate_scene

    validate_scene(scene, require=("optical", "change"), expect_crs=False)
    # optical = pixel / 255 exactly
    np.testing.assert_allclose(scene.optical.values[0, 0], _pattern(1024, 1024, 3)[..., 0] / 255, atol=1e-7)


def test_levir_tiles_into_16_standard_patches(levir_root):
    ds = read_levir_cd(levir_root, "train", tile_size=256)
    assert len(ds) == 32
    names = ds.names
    assert names[:5] == ["train_1_0000_0000", "train_1_0000_0256", "train_1_0000_0512", "train_1_0000_0768",
                         "train_1_0256_0000"]
    patch = ds.scene("train_1_0256_0512")
    assert patch.optical.shape == (2, 3, 256, 256)
    expected = _pattern(1024, 1024, 1)[256:512, 512:768]
    np.testing.assert_array_equal(np.round(patch.optical.values[0] * 255).astype(np.uint8),
                                  np.moveaxis(expected, -1, 0))
    assert patch.attrs["tile"] == "train_1"
    assert (patch.attrs["row_off"], patch.attrs["col_off"]) == (256, 512)
    assert float(patch.x[0]) == 512.5 and float(patch.y[0]) == 256.5
    # label block [256:512, 256:512] falls exactly in patch (1, 1)
    assert ds.scene("train_1_0256_0256").change.values.all()
    assert not ds.scene("train_1_0000_0000").change.values.any()
    # the patches cover the tile: total change = one 256x256 block per tile
    assert sum(int(s.change.sum()) for s in ds) == 2 * 256 * 256


def test_tile_scene_helper(levir_root):
    scene = read_levir_cd(levir_root, "test")[0]
    patches = tile_scene(scene, 256)
    assert len(patches) == 16
    assert patches[5].attrs["site"] == "test_1_0256_0256"
    assert tile_scene(patches[0], 256) == [patches[0]]
    odd = scene.isel(y=slice(0, 600), x=slice(0, 700))
    assert len(tile_scene(odd, 256)) == 4  # partial edge patches dropped
    with pytest.raises(DataFormatError, match="smaller than one"):
        tile_scene(patches[0], 512)


def test_levir_flat_layout_split_from_prefix_and_lists(tmp_path):
    root = tmp_path / "flat"
    for stem, seed in (("train_5_0000_0256", 1), ("val_3_0512_0000", 2), ("test_9_0256_0768", 3)):
        _write_pair(root, ("A", "B", "label"), stem, 256, 256, seed)
    ds = read_levir_cd(root)
    assert dict(zip(ds.names, ds.table()["split"])) == {
        "test_9_0256_0768": "test", "train_5_0000_0256": "train", "val_3_0512_0000": "val"}
    s = ds.scene("test_9_0256_0768")
    assert (s.attrs["tile"], s.attrs["row_off"], s.attrs["col_off"]) == ("test_9", 256, 768)
    # list/ files win over name prefixes
    (root / "list").mkdir()
    (root / "list" / "train.txt").write_text("test_9_0256_0768.png\n")
    assert read_levir_cd(root).scene("test_9_0256_0768").attrs["split"] == "train"


def test_dsifn_as_distributed(tmp_path):
    root = tmp_path / "DSIFN"
    _write_pair(root / "train", ("t1", "t2", "mask"), "0", 512, 512, 1, ext=(".jpg", ".jpg", ".png"))
    _write_pair(root / "test", ("t1", "t2", "mask"), "1", 512, 512, 2, ext=(".jpg", ".jpg", ".tif"))
    ds = read_dsifn(root)
    assert len(ds) == 2 and ds.table()["split"].tolist() == ["train", "test"]
    scene = ds[1]
    assert scene.optical.shape == (2, 3, 512, 512)
    assert float(scene.change.mean()) == pytest.approx(1 / 16)
    tiles = read_dsifn(root, "train", tile_size=256)
    assert tiles.names == ["0_0000_0000", "0_0000_0256", "0_0256_0000", "0_0256_0256"]


def test_dsifn_changeformer_names_give_patch_offsets(tmp_path):
    root = tmp_path / "dsifn256"
    _write_pair(root, ("A", "B", "label"), "7_4", 256, 256, 1)
    s = read_dsifn(root)[0]
    assert s.attrs["split"] == "test"  # flat folder: split recorded nowhere -> evaluation only
    assert (s.attrs["tile"], s.attrs["row_off"], s.attrs["col_off"]) == ("7", 256, 256)


def test_sysu_layout_all_splits_and_its_0_255_labels(tmp_path):
    root = tmp_path / "SYSU-CD"
    for split, stem in (("train", "00001"), ("val", "00002"), ("test", "00003")):
        _write_pair(root / split, ("time1", "time2", "label"), stem, 256, 256, 1)
    ds = read_sysu_cd(root)
    assert [p.split for p in ds.pairs] == ["train", "val", "test"] and len(read_sysu_cd(root, "val")) == 1
    scene = ds[1]
    assert scene.attrs["dataset"] == "sysu_cd" and scene.attrs["split"] == "val"
    assert scene.attrs["label_coding"] == "0/255"
    assert str(scene.time.values[0])[:4] == "2007" and str(scene.time.values[1])[:4] == "2014"
    assert float(scene.change.mean()) == pytest.approx(1 / 16)


def test_sysu_01_labels_are_rejected_unless_the_coding_is_given(tmp_path):
    root = tmp_path / "SYSU-CD"
    _write_pair(root / "val", ("time1", "time2", "label"), "00001", 256, 256, 1, label_value=1)
    with pytest.raises(DataFormatError, match=r"val/label/00001\.png.*\[1\].*'0/255'.*label_coding='0/1'"):
        read_sysu_cd(root)[0]
    scene = read_sysu_cd(root, label_coding="0/1")[0]
    assert float(scene.change.mean()) == pytest.approx(1 / 16)


def _label_file(tmp_path, values: np.ndarray):
    _write_pair(tmp_path, ("A", "B", "label"), "train_1", 16, 16, 1)
    Image.fromarray(values.astype(np.uint8)).save(tmp_path / "label" / "train_1.png")
    return [tmp_path / d / "train_1.png" for d in ("A", "B", "label")]


def test_label_codings_decode_exactly(tmp_path):
    lab = np.zeros((16, 16), np.uint8)
    lab[:4] = 1
    paths = _label_file(tmp_path, lab + 1)  # 1/2 coding: 1 = no change, 2 = change
    assert float(read_pair(*paths, label_coding="1/2").change.mean()) == 0.25
    all_one = _label_file(tmp_path, np.ones((16, 16)))  # an all-"no change" 1/2 tile
    assert float(read_pair(*all_one, label_coding="1/2").change.sum()) == 0
    assert float(read_pair(*_label_file(tmp_path, lab), label_coding="0/1").change.mean()) == 0.25
    assert float(read_pair(*_label_file(tmp_path, lab * 255)).change.mean()) == 0.25


@pytest.mark.parametrize("values,coding", [
    ([0, 1], "0/255"),      # a 0/1 label read as LEVIR's 0/255: change would be lost
    ([1, 2], "0/255"),      # a 1/2 label: change would be lost, "1" read as change
    ([1], "0/255"),         # an all-1 no-change tile (1/2 coding) would become all change
    ([0, 3, 5], "0/255"),   # nothing a label coding has
    ([0, 255], "0/1"),
    ([0, 3, 5], "1/2"),
])
def test_labels_that_do_not_fit_the_coding_are_rejected(tmp_path, values, coding):
    lab = np.array(values, np.uint8)[np.arange(256) % len(values)].reshape(16, 16)
    paths = _label_file(tmp_path, lab)
    with pytest.raises(DataFormatError, match=r"label/train_1\.png: change label holds value"):
        read_pair(*paths, label_coding=coding)


def test_unknown_label_coding_is_an_error(tmp_path):
    paths = _label_file(tmp_path, np.zeros((16, 16)))
    with pytest.raises(DataFormatError, match="label_coding must be one of"):
        read_pair(*paths, label_coding="auto")
    with pytest.raises(DataFormatError, match="label_coding must be one of"):
        read_levir_cd(tmp_path, label_coding="0-255")


def test_random_codings_read_correctly_or_raise(tmp_path):
    """Property test: a label written in any coding reads back exactly under that coding and
    raises (never relabels) under every other coding that lacks one of its values."""
    from urbankit.data.vhr import LABEL_CODINGS

    rng = np.random.default_rng(0)
    for trial in range(12):
        written = list(LABEL_CODINGS)[trial % 3]
        truth = (rng.random((16, 16)) < 0.3).astype(np.uint8)
        truth[0, 0], truth[0, 1] = 0, 1  # both classes present
        lo, hi = LABEL_CODINGS[written]
        paths = _label_file(tmp_path, np.where(truth == 1, hi, lo))
        for coding, (c_lo, c_hi) in LABEL_CODINGS.items():
            if {lo, hi} <= {c_lo, c_hi} and (c_lo, c_hi) == (lo, hi):
                np.testing.assert_array_equal(read_pair(*paths, label_coding=coding).change.values, truth)
            else:
                with pytest.raises(DataFormatError, match="change label holds"):
                    read_pair(*paths, label_coding=coding)


def test_rgba_label_uses_first_channel(tmp_path):
    _write_pair(tmp_path, ("A", "B", "x"), "p", 64, 64, 1)
    lab = np.zeros((64, 64, 4), np.uint8)
    lab[:32, :, 0] = 255
    lab[..., 3] = 255
    Image.fromarray(lab, "RGBA").save(tmp_path / "lab.png")
    s = read_pair(tmp_path / "A" / "p.png", tmp_path / "B" / "p.png", tmp_path / "lab.png", dataset="levir")
    assert float(s.change.mean()) == 0.5


def test_whu_pre_cut_tiles(tmp_path):
    root = tmp_path / "WHU-CD-256"
    _write_pair(root / "train", ("A", "B", "label"), "whu_1", 256, 256, 1)
    _write_pair(root / "test", ("A", "B", "label"), "whu_2", 256, 256, 2)
    ds = read_whu_cd(root)
    assert isinstance(ds, VHRChangeDataset) and len(ds) == 2
    assert ds[0].attrs["dataset"] == "whu_cd"


def test_whu_prev_curr_label_tiles(tmp_path):
    root = tmp_path / "WHU"
    _write_pair(root, ("prev", "curr", "label"), "train_7", 256, 256, 1)
    _write_pair(root, ("prev", "curr", "label"), "test_8", 256, 256, 2)
    ds = read_whu_cd(root)
    assert isinstance(ds, VHRChangeDataset) and [p.split for p in ds.pairs] == ["test", "train"]
    scene = ds.scene("train_7")
    assert scene.attrs["dataset"] == "whu_cd" and float(scene.change.mean()) == pytest.approx(1 / 16)
    np.testing.assert_array_equal(np.round(scene.optical.values[1] * 255).astype(np.uint8),
                                  np.moveaxis(_pattern(256, 256, 2), -1, 0))  # curr = the later date
    split = tmp_path / "WHU-split"
    _write_pair(split / "val", ("prev", "curr", "label"), "0001", 256, 256, 1)
    assert read_whu_cd(split, "val")[0].attrs["split"] == "val"


def _write_geotiff(path, arr, transform, crs="EPSG:2193"):
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = arr if arr.ndim == 3 else arr[None]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype, crs=crs, transform=transform) as dst:
        dst.write(arr)


def test_whu_epoch_geotiffs_tiles_and_spatial_split(tmp_path):
    from rasterio.transform import from_origin

    h, w = 512, 2560
    tr = from_origin(1570000.0, 5180000.0, 0.3, 0.3)
    root = tmp_path / "whu"
    a = np.moveaxis(_pattern(h, w, 1), -1, 0)
    _write_geotiff(root / "1. The two-period image data" / "before" / "before.tif", a, tr)
    _write_geotiff(root / "1. The two-period image data" / "after" / "after.tif",
                   np.moveaxis(_pattern(h, w, 2), -1, 0), tr)
    _write_geotiff(root / "1. The two-period image data" / "change label" / "change_label.tif",
                   _label(h, w, 255), tr)
    ds = read_whu_cd(root)
    assert isinstance(ds, WHUEpochTiles)
    table = ds.split_table()
    assert len(table) == 2 * 10
    assert table["split"].value_counts().to_dict() == {"train": 16, "val": 2, "test": 2}
    # spatially separated strips: every train tile west of every val tile, val west of test
    assert table[table.split == "train"].x0.max() < table[table.split == "val"].x0.min()
    assert table[table.split == "val"].x0.max() < table[table.split == "test"].x0.min()
    test = read_whu_cd(root, "test")
    assert len(test) == 2
    scene = test[0]
    assert scene.attrs["site"] == "whu_00000_02304" and scene.attrs["split"] == "test"
    assert scene.rio.crs.to_epsg() == 2193
    assert scene.rio.transform().c == pytest.approx(1570000.0 + 2304 * 0.3)
    np.testing.assert_array_equal(np.round(scene.optical.values[0] * 255).astype(np.uint8),
                                  a[:, 0:256, 2304:2560])
    out = ds.write_split_file(tmp_path / "whu_split.csv")
    assert out.read_text().startswith("name,y0,x0,split")
    from urbankit.data.whu_cd import WHUCD

    reader = WHUCD(root, split="test")  # the reader class on the epoch GeoTIFFs: same tiles, same names
    assert reader.sites == ["whu_00000_02304", "whu_00256_02304"] == test.names
    assert reader.read("whu_00256_02304").attrs["row_off"] == 256
    with pytest.raises(DataFormatError, match="no WHU-CD tile named 'whu_00000_00000' in split 'test'"):
        reader.read("whu_00000_00000")


def test_whu_epoch_grid_mismatch_is_reported(tmp_path):
    from rasterio.transform import from_origin

    tr = from_origin(0, 0, 1, 1)
    _write_geotiff(tmp_path / "before.tif", np.zeros((3, 256, 512), np.uint8), tr)
    _write_geotiff(tmp_path / "after.tif", np.zeros((3, 256, 500), np.uint8), tr)
    _write_geotiff(tmp_path / "change_label.tif", np.zeros((256, 512), np.uint8), tr)
    with pytest.raises(DataFormatError, match="after.tif.*share one grid"):
        read_whu_cd(tmp_path)


# ------------------------------------------------------------------ bad input
def test_missing_counterpart_names_the_file(tmp_path):
    _write_pair(tmp_path, ("A", "B", "label"), "train_1", 64, 64, 1)
    (tmp_path / "B" / "train_1.png").unlink()
    Image.fromarray(_pattern(64, 64, 1)).save(tmp_path / "B" / "other.png")
    with pytest.raises(DataFormatError, match=r"A/train_1\.png: no matching image"):
        read_levir_cd(tmp_path)


def test_label_of_wrong_size(tmp_path):
    _write_pair(tmp_path, ("A", "B", "label"), "train_1", 64, 64, 1)
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(tmp_path / "label" / "train_1.png")
    with pytest.raises(DataFormatError, match=r"label/train_1\.png: label size 32x64 differs"):
        read_levir_cd(tmp_path)[0]


def test_truncated_png(tmp_path):
    _write_pair(tmp_path, ("A", "B", "label"), "train_1", 128, 128, 1)
    f = tmp_path / "B" / "train_1.png"
    f.write_bytes(f.read_bytes()[:300])
    with pytest.raises(DataFormatError, match=r"B/train_1\.png: cannot read image"):
        read_levir_cd(tmp_path)[0]


def test_grayscale_image_is_rejected(tmp_path):
    _write_pair(tmp_path, ("A", "B", "label"), "train_1", 64, 64, 1)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "A" / "train_1.png")
    with pytest.raises(DataFormatError, match="expected an RGB image"):
        read_levir_cd(tmp_path)[0]


def test_empty_and_missing_folders(tmp_path):
    for d in ("A", "B", "label"):
        (tmp_path / d).mkdir()
    with pytest.raises(DataFormatError, match=r"A: folder holds no images"):
        read_levir_cd(tmp_path)
    with pytest.raises(DataFormatError, match="not found"):
        read_levir_cd(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    with pytest.raises(DataFormatError, match="no LEVIR-CD image pairs"):
        read_levir_cd(tmp_path / "other")
    with pytest.raises(DataFormatError, match="unknown VHR dataset"):
        VHRChangeDataset(tmp_path, "cdd")


def test_missing_split_is_an_error(levir_root):
    import shutil

    shutil.rmtree(levir_root / "val")
    with pytest.raises(DataFormatError, match="split 'val'"):
        read_levir_cd(levir_root, "val")


def test_whu_ambiguous_epochs_ask_for_explicit_paths(tmp_path):
    from rasterio.transform import from_origin

    tr = from_origin(0, 256, 1, 1)
    for name in ("2012_train.tif", "2012_test.tif", "2016_train.tif"):
        _write_geotiff(tmp_path / name, np.zeros((3, 256, 256), np.uint8), tr)
    _write_geotiff(tmp_path / "change_label.tif", np.zeros((256, 256), np.uint8), tr)
    with pytest.raises(DataFormatError, match=r"cannot tell the WHU-CD epoch GeoTIFFs apart.*WHUEpochTiles"):
        read_whu_cd(tmp_path)
    tiles = WHUEpochTiles(tmp_path / "2012_train.tif", tmp_path / "2016_train.tif",
                          tmp_path / "change_label.tif", fractions=(0.8, 0.1, 0.1))
    assert len(tiles) == 1 and tiles[0].attrs["split"] == "test"  # one tile column: floor(0.8)=0 -> test


def test_whu_epoch_label_coding_is_checked_per_tile(tmp_path):
    from rasterio.transform import from_origin

    tr = from_origin(1_570_000, 5_180_000, 0.3, 0.3)
    _write_geotiff(tmp_path / "before.tif", np.moveaxis(_pattern(256, 512, 1), -1, 0), tr)
    _write_geotiff(tmp_path / "after.tif", np.moveaxis(_pattern(256, 512, 2), -1, 0), tr)
    _write_geotiff(tmp_path / "change_label.tif", _label(256, 512, 1), tr)  # re-coded 0/1
    ds = read_whu_cd(tmp_path)
    with pytest.raises(DataFormatError, match=r"change_label\.tif.*\[1\].*label_coding=.0/1.*tile whu_00000_00000"):
        ds[0]
    ds01 = read_whu_cd(tmp_path, label_coding="0/1")
    assert ds01[0].attrs["label_coding"] == "0/1" and float(ds01[0].change.sum()) > 0


def test_write_levir_pair_round_trips_through_the_reader(tmp_path):
    from urbankit.data.synthetic import make_site
    from urbankit.data.vhr import write_levir_pair

    twin = make_site(site="t", size=64, n_dates=4, seed=1, growth=0.1, pixel_size=0.5, looks=None,
                     modalities=("optical",), crs=None)
    write_levir_pair(tmp_path, "test_9", twin)
    write_levir_pair(tmp_path, "val_3", twin)
    assert not list(tmp_path.rglob(".*"))  # no temporary file left
    ds = read_levir_cd(tmp_path)
    assert {p.name: p.split for p in ds.pairs} == {"test_9": "test", "val_3": "val"}
    np.testing.assert_array_equal(ds.scene("test_9").change.values, (twin.change.values > 0).astype(np.uint8))
    assert set(np.unique(np.asarray(Image.open(tmp_path / "label" / "test_9.png")))) <= {0, 255}
    with pytest.raises(DataFormatError, match="pair name"):
        write_levir_pair(tmp_path, "../escape", twin)
