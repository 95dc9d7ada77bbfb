"""The VHR readers on the real LEVIR-CD and DSIFN crops in ../shared/data/real (skipped when absent).

Nothing from the shared folder is copied into the repository: bad-input cases copy a file into
pytest's tmp_path and damage the copy there.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from urbankit.data.vhr import read_dsifn, read_levir_cd, tile_scene
from urbankit.errors import DataFormatError

pytestmark = pytest.mark.real_data

LEVIR_NAMES = ["test_121_0768_0256", "test_2_0000_0000", "test_2_0000_0512", "test_55_0256_0000",
               "test_77_0512_0256", "train_36_0512_0512", "train_386_0512_0768", "train_412_0512_0768",
               "val_27_0000_0256"]


def _samples(real_data, name: str):
    d = real_data / name
    if not (d / "A").is_dir():
        pytest.skip(f"{name} samples not present")
    return d


@pytest.fixture(scope="module")
def levir_dir(real_data):
    return _samples(real_data, "levir_cd")


@pytest.fixture(scope="module")
def dsifn_dir(real_data):
    return _samples(real_data, "dsifn")


def test_levir_crops(levir_dir):
    ds = read_levir_cd(levir_dir)
    assert ds.names == LEVIR_NAMES
    splits = dict(zip(ds.names, ds.table()["split"]))
    assert splits["val_27_0000_0256"] == "val" and splits["train_36_0512_0512"] == "train"
    assert sum(s == "test" for s in splits.values()) == 5
    fractions = {}
    for scene in ds:
        assert scene.optical.shape == (2, 3, 256, 256)
        assert scene.optical.dtype == np.float32 and scene.change.dtype == np.uint8
        assert 0.0 <= float(scene.optical.min()) and float(scene.optical.max()) <= 1.0
        assert set(np.unique(scene.change.values)) <= {0, 1}
        assert scene.attrs["dataset"] == "levir_cd"
        fractions[scene.attrs["site"]] = float(scene.change.mean())
    assert fractions["train_386_0512_0768"] == 0.0  # the crop without change
    assert all(f > 0.1 for n, f in fractions.items() if n != "train_386_0512_0768")
    assert fractions["test_2_0000_0000"] == pytest.approx(0.2518, abs=1e-4)
    s = ds.scene("test_2_0000_0512")
    assert (s.attrs["tile"], s.attrs["row_off"], s.attrs["col_off"]) == ("test_2", 0, 512)
    assert len(read_levir_cd(levir_dir, "train")) == 3


def test_levir_label_is_0_255_png_and_mapped_to_01(levir_dir):
    raw = np.asarray(Image.open(levir_dir / "label" / "test_2_0000_0000.png"))
    assert set(np.unique(raw)) == {0, 255}
    scene = read_levir_cd(levir_dir).scene("test_2_0000_0000")
    np.testing.assert_array_equal(scene.change.values, (raw == 255).astype(np.uint8))
    a = np.asarray(Image.open(levir_dir / "A" / "test_2_0000_0000.png"))
    np.testing.assert_allclose(scene.optical.values[0], np.moveaxis(a, -1, 0) / 255.0, atol=1e-7)


def test_dsifn_crops(dsifn_dir):
    ds = read_dsifn(dsifn_dir)
    assert len(ds) == 10
    fr = {}
    for scene in ds:
        assert scene.optical.shape == (2, 3, 256, 256)
        assert scene.attrs["split"] == "test"  # flat sample folder: no split recorded
        fr[scene.attrs["site"]] = float(scene.change.mean())
    assert fr["4_4"] == pytest.approx(0.6522, abs=1e-4)
    assert fr["0_2"] == pytest.approx(0.0929, abs=1e-4)
    assert all(0.05 < f < 0.7 for f in fr.values())
    s = ds.scene("7_4")
    assert (s.attrs["tile"], s.attrs["row_off"], s.attrs["col_off"]) == ("7", 256, 256)


def test_tiling_a_real_crop(levir_dir):
    scene = read_levir_cd(levir_dir).scene("test_121_0768_0256")
    patches = tile_scene(scene, 128)
    assert len(patches) == 4
    assert sum(int(p.change.sum()) for p in patches) == int(scene.change.sum())
    assert patches[3].attrs["row_off"] == 768 + 128 and patches[3].attrs["col_off"] == 256 + 128


def _copy_layout(src, dst, names):
    for sub in ("A", "B", "label"):
        (dst / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(src / sub / f"{n}.png", dst / sub / f"{n}.png")


def test_truncated_real_png_names_the_file(levir_dir, tmp_path):
    _copy_layout(levir_dir, tmp_path, ["train_36_0512_0512"])
    f = tmp_path / "A" / "train_36_0512_0512.png"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    ds = read_levir_cd(tmp_path)
    with pytest.raises(DataFormatError, match=r"A/train_36_0512_0512\.png: cannot read image"):
        ds[0]


def test_label_of_the_wrong_size(dsifn_dir, tmp_path):
    _copy_layout(dsifn_dir, tmp_path, ["1_1"])
    lab = Image.open(dsifn_dir / "label" / "1_1.png").resize((128, 128), Image.NEAREST)
    lab.save(tmp_path / "label" / "1_1.png")
    with pytest.raises(DataFormatError,
                       match=r"label/1_1\.png: label size 128x128 differs from the image size 256x256"):
        read_dsifn(tmp_path)[0]


def test_empty_folder(tmp_path):
    for sub in ("A", "B", "label"):
        (tmp_path / sub).mkdir()
    with pytest.raises(DataFormatError, match="folder holds no images"):
        read_levir_cd(tmp_path)
    with pytest.raises(DataFormatError, match="no DSIFN-CD image pairs"):
        read_dsifn(tmp_path / "A")


def test_real_labels_fit_the_stated_0_255_coding_and_no_other(levir_dir, dsifn_dir):
    from urbankit.data.vhr import VHR_DATASETS

    assert VHR_DATASETS["levir_cd"]["label_coding"] == VHR_DATASETS["dsifn"]["label_coding"] == "0/255"
    for d in (levir_dir, dsifn_dir):
        for p in sorted((d / "label").iterdir()):
            assert set(np.unique(np.asarray(Image.open(p)))) <= {0, 255}, p
    levir = read_levir_cd(levir_dir)
    assert sum(float(s.change.sum()) > 0 for s in levir) >= 7  # change survives the decoding
    changed = next(s.attrs["site"] for s in levir if float(s.change.sum()) > 0)
    with pytest.raises(DataFormatError, match=rf"{changed}\.png: change label holds value\(s\) \[255\]"):
        read_levir_cd(levir_dir, label_coding="0/1").scene(changed)
    assert [p.split for p in levir.pairs].count("test") == 5  # the official split, by name prefix
