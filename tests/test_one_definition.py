"""One definition each: "built" (schema.is_built), the SAR dB range of a reader (scene attr read by
the torch layer and inference) and the band lists (urbankit.data.bands)."""

from __future__ import annotations

import numpy as np
import pytest

from urbankit.data.schema import BUILT_FRACTION_THRESHOLD, change_from_buildings, is_built, make_scene


def _fraction_scene():
    rng = np.random.default_rng(0)
    first = np.zeros((8, 8), np.float32)
    last = np.zeros((8, 8), np.float32)
    last[:4, :4] = 0.3        # low building fraction: built (fraction > 0), below the old 0.5 cut
    last[4:, 4:] = 0.9
    first[4:, 4:] = 0.2       # already built at t1: not new construction
    optical = rng.uniform(0, 0.3, size=(2, 13, 8, 8)).astype(np.float32)
    return make_scene(optical=optical, buildings=np.stack([first, last]), times=["2018-01-01", "2019-01-01"],
                      site="fractions", dataset="test", split="train")


def test_built_is_any_positive_fraction():
    assert BUILT_FRACTION_THRESHOLD == 0.0
    assert is_built(np.array([0.0, 1e-3, 0.3, 1.0])).tolist() == [False, True, True, True]
    change = change_from_buildings(np.array([0.0, 0.2, 0.0]), np.array([0.3, 0.9, 0.0]))
    assert change.dtype == np.uint8 and change.tolist() == [1, 0, 0]


def test_torch_layer_and_inference_use_the_same_rule():
    from urbankit.datasets import GridSampler, SceneDataset
    from urbankit.inference import scene_label

    scene = _fraction_scene()
    expected = change_from_buildings(scene.buildings.values[0], scene.buildings.values[-1]).astype(np.float32)
    assert expected.sum() == 16  # the 0.3 block counts; the block built at t1 does not
    np.testing.assert_array_equal(scene_label(scene, "change"), expected)
    np.testing.assert_array_equal(scene_label(scene, "buildings_t2"), is_built(scene.buildings.values[-1]))
    sample = SceneDataset([scene], GridSampler(8))[0]
    np.testing.assert_array_equal(sample["change"].numpy()[0], expected)
    np.testing.assert_array_equal(sample["buildings_t2"].numpy()[0], is_built(scene.buildings.values[-1]))


def _sar_scene(site: str, db_range: str | None):
    sar = np.full((2, 1, 8, 8), -10.0, np.float32)
    sar[:, :, :4] = 2.0  # above 0 dB: clipped to 1 by (-25, 0), 27/30 by (-25, 5)
    return make_scene(sar=sar, polarisations=["VV"], times=["2018-01-01", "2019-01-01"], site=site, dataset="test",
                      split="train", attrs={"sar_db_range": db_range} if db_range else None)


def test_readers_record_their_sar_range_and_the_torch_layer_reads_it(tmp_path):
    from urbankit.data.contract import scene_sar_db_range
    from urbankit.data.normalize import DS_UNET_DB_RANGE, SEN12_MTUM_DB_RANGE
    from urbankit.data.oscd import OSCD
    from urbankit.data.spacenet7 import SpaceNet7
    from urbankit.datasets import GridSampler, SceneDataset
    from urbankit.errors import ConfigError
    from urbankit.inference import scene_inputs

    oscd_root = OSCD.write_sample(tmp_path)
    oscd_scene = OSCD(oscd_root, s1_root=tmp_path / "oscd_s1").read("riverton")
    assert scene_sar_db_range(oscd_scene) == DS_UNET_DB_RANGE == (-25.0, 5.0)
    sn7 = SpaceNet7(SpaceNet7.write_sample(tmp_path))
    assert scene_sar_db_range(sn7.read(sn7.sites[0])) == SEN12_MTUM_DB_RANGE == (-25.0, 0.0)

    five, none = _sar_scene("five", "-25,5"), _sar_scene("none", None)
    assert SceneDataset([five], GridSampler(8)).sar_db_range == (-25.0, 5.0)
    assert SceneDataset([none], GridSampler(8)).sar_db_range == (-25.0, 0.0)  # nothing recorded: the default
    assert SceneDataset([five], GridSampler(8), sar_db_range=(-30.0, 0.0)).sar_db_range == (-30.0, 0.0)
    np.testing.assert_allclose(SceneDataset([five], GridSampler(8))[0]["sar_t1"].numpy()[0, 0, 0], 27 / 30, rtol=1e-6)
    np.testing.assert_allclose(scene_inputs(five, ["sar_t1"])["sar_t1"].numpy()[0, 0, 0, 0], 27 / 30, rtol=1e-6)
    with pytest.raises(ConfigError, match="SceneDataset: the scenes' SAR was clipped to different dB ranges"):
        SceneDataset([five, _sar_scene("zero", "-25,0")], GridSampler(8))


def test_band_lists_have_one_home():
    from urbankit.data import bands, generic, oscd, spacenet7

    assert all(isinstance(b, bands.Band) for b in bands.S2_BAND_INFO) and len(bands.S2_BAND_INFO) == 13
    assert oscd.OSCD_BANDS == bands.S2_BAND_NAMES and len(bands.S2_L2A_BAND_NAMES) == 12
    assert "B10" not in bands.S2_L2A_BAND_NAMES and generic.S2_L2A_BAND_NAMES is bands.S2_L2A_BAND_NAMES
    assert spacenet7.S2_FILE_BANDS == bands.BANDS_10M_20M and len(spacenet7.S2_FILE_BANDS) == 10
    assert spacenet7.S1_FILE_POLARISATIONS == bands.S1_POLARISATION_NAMES == ("VV", "VH")
