"""The input contract: fitted on training scenes, stored in checkpoints, enforced at prediction."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from urbankit import inference, train
from urbankit.data.contract import InputContract, InputContractError
from urbankit.data.schema import make_scene
from urbankit.datasets import GridSampler, SceneDataset, make_loader
from urbankit.errors import ConfigError
from urbankit.models import build

BANDS = ("B02", "B03", "B04", "B08")


def _scene(site="a", bands=BANDS, optical_scale=1.0, sar_db=True, sar_range=None, seed=0, size=32):
    rng = np.random.default_rng(seed)
    opt = (rng.uniform(0.02, 0.3, (2, len(bands), size, size)) * optical_scale).astype(np.float32)
    sar = rng.uniform(-22, -2, (2, 1, size, size)).astype(np.float32)
    if not sar_db:
        sar = 10 ** (sar / 10)
    change = (rng.random((size, size)) > 0.9).astype(np.uint8)
    attrs = {"sar_db_range": sar_range} if sar_range else None
    return make_scene(optical=opt, sar=sar, change=change, bands=list(bands), polarisations=["VV"],
                      times=["2018-01-01", "2019-01-01"], site=site, dataset="test", split="train",
                      validate=False, attrs=attrs)


def test_fit_statistics_are_the_training_scenes_per_band_mean_and_std():
    scenes = [_scene("a", seed=1), _scene("b", seed=2)]
    c = InputContract.fit(scenes, modalities=("optical",), optical_norm="dataset")
    stacked = np.concatenate([s["optical"].transpose("band", "time", "y", "x").values.reshape(4, -1)
                              for s in scenes], axis=1)
    np.testing.assert_allclose(c.optical_mean, stacked.mean(1), rtol=1e-5)
    np.testing.assert_allclose(c.optical_std, stacked.std(1), rtol=1e-4)
    out = c.prepare(scenes[0]["optical"].values, "optical")
    assert out.dtype == np.float32 and out.shape == (2, 4, 32, 32)
    both = np.concatenate([c.prepare(s["optical"].values, "optical") for s in scenes], axis=2)
    np.testing.assert_allclose(both.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(both.std(axis=(0, 2, 3)), 1.0, atol=1e-3)


def test_per_image_zscore_standardises_each_image_and_nan_becomes_zero():
    s = _scene()
    c = InputContract.fit([s], modalities=("optical",), optical_norm="per_image")
    values = s["optical"].values.copy()
    values[0, 0, 0, 0] = np.nan
    out = c.prepare(values, "optical")
    assert out[0, 0, 0, 0] == 0.0
    np.testing.assert_allclose(out[1].mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[1].std(axis=(1, 2)), 1.0, atol=1e-4)


def test_dict_round_trip_and_unknown_fields():
    c = InputContract.fit([_scene()], optical_norm="dataset", sar_db_range=(-25.0, 5.0))
    again = InputContract.from_dict(c.to_dict())
    assert again == c
    with pytest.raises(ConfigError, match="unknown fields"):
        InputContract.from_dict({**c.to_dict(), "bogus": 1})


@pytest.mark.parametrize("bad, match", [
    (dict(bands=("B02", "B03", "B04", "B05")), "missing"),      # other bands
    (dict(optical_scale=10000.0), "reflectance"),               # digital numbers, not reflectance
    (dict(sar_db=False), "linear power"),                        # SAR not in dB (linear power)
    (dict(sar_range="-25,0"), "clipped"),                        # another SAR source range
])
def test_contract_rejects_scenes_that_do_not_fit(bad, match):
    contract = InputContract.fit([_scene(sar_range="-25,5")], optical_norm="dataset")
    with pytest.raises(InputContractError, match=match):
        contract.check(_scene(site="other", **{"sar_range": "-25,5", **bad}))


def test_sar_scaled_to_unit_is_rejected_as_not_db():
    contract = InputContract.fit([_scene()])
    s = _scene()
    s["sar"] = s["sar"] * 0 + 0.5
    with pytest.raises(InputContractError, match=r"\[0, 1\]"):
        contract.check(s)


def test_checkpoint_stores_contract_and_predict_enforces_it(tmp_path):
    train_scene = _scene("a", sar_range="-25,5")
    contract = InputContract.fit([train_scene], modalities=("optical",), optical_norm="dataset")
    ds = SceneDataset([train_scene], GridSampler(16), contract=contract)
    loader = make_loader(ds, batch_size=4, seed=0)
    model = build("fc_siam_diff", optical_channels=4, width=0.25)
    train.fit(model, loader, epochs=1, steps_per_epoch=1, device="cpu", progress=False, amp=False,
              checkpoint_dir=tmp_path)
    fresh = build("fc_siam_diff", optical_channels=4, width=0.25)
    assert getattr(fresh, "input_contract", None) is None
    train.load_checkpoint(tmp_path, fresh)
    assert fresh.input_contract == contract
    prob = inference.predict(fresh, _scene("b", seed=3))
    assert prob.shape == (32, 32) and np.isfinite(prob.values).all()
    with pytest.raises(InputContractError, match="missing"):
        inference.predict(fresh, _scene("c", bands=("B02", "B03", "B04", "B05")))
    with pytest.raises(InputContractError, match="reflectance"):
        inference.predict(fresh, _scene("d", optical_scale=10000.0))
    with pytest.raises(ConfigError, match="contract sets them"):
        inference.predict(fresh, _scene("e"), scene_options={"sar_db_range": (-25, 5)})


def test_dataset_and_inference_give_the_same_model_input():
    s = _scene(size=32)
    contract = InputContract.fit([s], optical_norm="per_image")
    ds = SceneDataset([s], GridSampler(32), contract=contract)
    sample = ds[0]
    whole = inference.scene_inputs(s, ["optical_t1", "sar_t2"], contract=contract)
    torch.testing.assert_close(sample["optical_t1"], whole["optical_t1"][0])
    torch.testing.assert_close(sample["sar_t2"], whole["sar_t2"][0])


def test_dataset_refuses_contract_plus_channel_arguments():
    s = _scene()
    contract = InputContract.fit([s])
    with pytest.raises(ConfigError, match="either contract"):
        SceneDataset([s], GridSampler(16), contract=contract, optical_bands=["B02"])


def test_predict_dict_input_zeroes_nan_and_rejects_empty_images():
    model = build("fc_siam_diff", optical_channels=4, width=0.25)
    x = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)
    x[:, :4, :4] = np.nan
    prob = inference.predict(model, {"optical_t1": x, "optical_t2": x}, device="cpu")
    assert np.isfinite(prob).all()
    with pytest.raises(ConfigError, match="at least 1x1"):
        inference.predict(model, {"optical_t1": x[:, :0], "optical_t2": x[:, :0]}, device="cpu")


def test_predict_refuses_outputs_larger_than_memory_allows():
    model = build("fc_siam_diff", optical_channels=1, width=0.25)
    big = torch.zeros(1, 1, 1, 1).expand(1, 1, 60000, 60000)
    with pytest.raises(ConfigError, match="GiB"):
        inference.predict(model, {"optical_t1": big, "optical_t2": big}, device="cpu")
