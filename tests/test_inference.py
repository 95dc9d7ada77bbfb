"""Tests of whole-image / sliding-window prediction and per-site evaluation (urbankit.inference)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from urbankit import inference as I
from urbankit.errors import UrbankitError


class PixelNet(nn.Module):
    """Purely pixel-wise (1x1 conv) model: windows cannot change its output."""

    input_keys = ("optical_t1", "optical_t2")

    def __init__(self, c: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2 * c, 1, 1)

    def forward(self, batch):
        return {"change": self.conv(torch.cat([batch["optical_t1"], batch["optical_t2"]], 1))}


class ContextNet(nn.Module):
    """Needs H, W divisible by 16 (4 poolings), like a U-Net, and sees spatial context."""

    input_keys = ("optical_t1",)
    pad_multiple = 16

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, batch):
        x = batch["optical_t1"]
        assert x.shape[-1] % 16 == 0 and x.shape[-2] % 16 == 0, x.shape
        f = torch.relu(self.conv(x))
        g = F.interpolate(F.avg_pool2d(f, 16), scale_factor=16)
        return {"change": self.head(f + g)}


def make_scene(site="a", h=70, w=90, seed=0, region="EU"):
    xr = pytest.importorskip("xarray")
    rng = np.random.default_rng(seed)
    opt = rng.random((2, 3, h, w), dtype=np.float32)
    opt[0, :, 0, 0] = np.nan  # no-data pixel
    sar = rng.uniform(-25, 0, (2, 2, h, w)).astype(np.float32)
    change = (opt[1, 0] - np.nan_to_num(opt[0, 0]) > 0.3).astype(np.uint8)
    return xr.Dataset(
        {"optical": (("time", "band", "y", "x"), opt), "sar": (("time", "polarisation", "y", "x"), sar),
         "change": (("y", "x"), change)},
        coords={"time": np.array(["2018-01-01", "2020-01-01"], dtype="datetime64[ns]"),
                "band": ["B04", "B03", "B02"], "polarisation": ["VV", "VH"],
                "y": 1000.0 - 10 * np.arange(h), "x": 500.0 + 10 * np.arange(w)},
        attrs={"site": site, "region": region, "split": "test"})


def arrays(h=70, w=90, b=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (3, h, w) if b is None else (b, 3, h, w)
    return {"optical_t1": torch.rand(shape, generator=g), "optical_t2": torch.rand(shape, generator=g)}


def test_whole_image_pads_and_crops_odd_sizes():
    model = ContextNet()
    x = arrays(70, 90)
    prob = I.predict(model, x, device="cpu")
    assert prob.shape == (70, 90) and prob.dtype == np.float32
    # the same as a direct forward pass on the reflect-padded input, cropped back
    padded = F.pad(x["optical_t1"][None], (0, 96 - 90, 0, 80 - 70), mode="reflect")
    with torch.no_grad():
        ref = torch.sigmoid(model({"optical_t1": padded})["change"])[0, 0, :70, :90].numpy()
    np.testing.assert_allclose(prob, ref, rtol=0, atol=1e-6)
    # batched input keeps the batch axis; other multiples / pad modes work
    assert I.predict(model, arrays(33, 17, b=2), device="cpu").shape == (2, 33, 17)
    assert I.predict(model, arrays(5, 7), device="cpu", pad_mode="replicate").shape == (5, 7)


def test_sliding_equals_whole_for_pixelwise_model():
    model = PixelNet()
    x = arrays(70, 90)
    whole = I.predict(model, x, device="cpu")
    for tile, overlap in ((32, 16), (32, 8), (64, 0), (128, 40)):
        slid = I.predict(model, x, device="cpu", tile=tile, overlap=overlap, batch_size=3)
        np.testing.assert_allclose(slid, whole, rtol=0, atol=1e-6, err_msg=f"tile {tile} overlap {overlap}")
    slid = I.predict(model, arrays(70, 90, b=2), device="cpu", tile=32, overlap=16, window="uniform")
    np.testing.assert_allclose(slid, I.predict(model, arrays(70, 90, b=2), device="cpu"), atol=1e-6)


def test_sliding_window_on_context_model_is_close_and_seamless():
    model = ContextNet()
    x = arrays(100, 100)
    slid = I.predict(model, x, device="cpu", tile=48, overlap=16)
    assert slid.shape == (100, 100) and np.isfinite(slid).all()
    assert ((slid >= 0) & (slid <= 1)).all()
    assert I.predict(model, x, device="cpu", max_whole_pixels=50 * 50).shape == (100, 100)  # auto-sliding


def test_hann_window_is_positive_and_symmetric():
    w = I.hann_window(16)
    assert w.shape == (16, 16) and (w > 0).all()
    assert torch.allclose(w, w.flip(0)) and torch.allclose(w, w.T)
    with pytest.raises(UrbankitError):
        I.hann_window(8, "gauss")


def test_predict_scene_returns_dataarray_with_coords():
    scene = make_scene()
    da = I.predict(PixelNet(), scene, device="cpu")
    assert da.dims == ("y", "x") and da.shape == (70, 90)
    np.testing.assert_array_equal(da["x"].values, scene["x"].values)
    assert da.name == "change_probability"
    assert np.isfinite(da.values).all()  # NaN no-data became 0 before the model
    inputs = I.scene_inputs(scene, ["sar_t1"])
    assert inputs["sar_t1"].shape == (1, 2, 70, 90)
    assert 0 <= float(inputs["sar_t1"].min()) and float(inputs["sar_t1"].max()) <= 1


def test_predict_errors_are_clear():
    with pytest.raises(UrbankitError, match="optical_t2"):
        I.predict(PixelNet(), {"optical_t1": torch.rand(3, 8, 8)}, device="cpu")
    with pytest.raises(UrbankitError, match="no output"):
        I.predict(PixelNet(), arrays(8, 8), output_key="buildings_t1", device="cpu")


def test_evaluate_scenes_per_site_and_pooled():
    scenes = [make_scene("a", seed=1), make_scene("b", 40, 50, seed=2), make_scene("c", 33, 33, seed=3)]
    table, preds = I.evaluate_scenes(PixelNet(), scenes, device="cpu", return_predictions=True)
    assert list(table.index) == ["a", "b", "c", "pooled"]
    assert "region" in table.columns and "f1" in table.columns
    assert table.loc["pooled", "tp"] == table.loc[["a", "b", "c"], "tp"].sum()
    assert table.loc["pooled", "n"] == 70 * 90 + 40 * 50 + 33 * 33
    assert preds["b"].shape == (40, 50)
    # batch dicts: samples pooled per site, unlabelled ones skipped
    g = torch.Generator().manual_seed(0)
    batch = {"optical_t1": torch.rand(4, 3, 16, 16, generator=g),
             "optical_t2": torch.rand(4, 3, 16, 16, generator=g),
             "change": (torch.rand(4, 1, 16, 16, generator=g) > 0.7).float(),
             "labelled": torch.tensor([True, True, True, False]), "site": ["x", "y", "x", "y"]}
    t2 = I.evaluate_scenes(PixelNet(), [batch], device="cpu")
    assert list(t2.index) == ["x", "y", "pooled"]
    assert t2.loc["x", "n"] == 2 * 256 and t2.loc["y", "n"] == 256


def test_pick_examples_and_figure():
    pd = pytest.importorskip("pandas")
    table = pd.DataFrame({"f1": [0.2, 0.9, np.nan, 0.5, 0.7, 0.8]},
                         index=pd.Index(["s1", "s2", "s3", "s4", "s5", "pooled"], name="site"))
    assert I.pick_examples(table) == {"best": "s2", "median": "s4", "worst": "s1"}
    two, one = table.loc[["s1", "s4", "pooled"]], table.loc[["s4", "pooled"]]
    assert I.pick_examples(two) == {"best": "s4", "worst": "s1"}   # no site shown twice
    assert I.pick_examples(one) == {"best": "s4"}
    scenes = [make_scene("a", 32, 32, seed=1), make_scene("b", 32, 40, seed=2),
              make_scene("c", 36, 32, seed=3)]
    t, preds = I.evaluate_scenes(PixelNet(), scenes, device="cpu", return_predictions=True)
    ex = I.pick_examples(t)
    assert set(ex) == {"best", "median", "worst"} and set(ex.values()) <= {"a", "b", "c"}
    fig = I.plot_examples(t, {s.attrs["site"]: s for s in scenes}, preds)
    assert len([a for a in fig.axes if a.get_visible()]) >= 3 * 4
    assert fig.get_size_inches()[0] <= 7.5 and fig.subfigs[0]._suptitle.get_text().split(":")[0] in ex  # row named
    import matplotlib.pyplot as plt

    plt.close(fig)


def _unet_and_image():
    from urbankit.models import build

    torch.manual_seed(0)
    model = build("unet_ef", modality="optical", optical_channels=4, topology=(8, 16, 32))
    g = torch.Generator().manual_seed(1)
    x = {"optical_t1": torch.rand(4, 96, 112, generator=g), "optical_t2": torch.rand(4, 96, 112, generator=g)}
    return model, x


@pytest.mark.parametrize("tile", [None, 64])
def test_channels_last_matches_fp32_and_leaves_the_model_as_it_was(tile):
    model, x = _unet_and_image()
    ref = I.predict(model, x, device="cpu", tile=tile, overlap=16)
    got = I.predict(model, x, device="cpu", tile=tile, overlap=16, channels_last=True)
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)  # stated tolerance: float rounding only
    assert all(p.is_contiguous() for p in model.parameters())


def test_bf16_autocast_on_cpu_runs_and_stays_within_tolerance_of_fp32():
    model, x = _unet_and_image()
    ref = I.predict(model, x, device="cpu")
    got = I.predict(model, x, device="cpu", amp="bf16")
    diff = np.abs(got - ref).max()
    assert 0 < diff < 2e-2  # bf16 ran (not bit-identical) and probabilities agree to 2e-2
    np.testing.assert_array_equal(I.predict(model, x, device="cpu", amp=True), ref)  # True: CPU stays fp32
    with pytest.raises(UrbankitError, match="amp must be"):
        I.predict(model, x, device="cpu", amp="fp8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_and_channels_last_within_tolerance_of_cpu_fp32():
    model, x = _unet_and_image()
    ref = I.predict(model, x, device="cpu")
    np.testing.assert_allclose(I.predict(model, x, device="cuda", channels_last=True), ref, atol=1e-4)
    diff = np.abs(I.predict(model, x, device="cuda", amp="bf16", channels_last=True) - ref).max()
    assert 0 < diff < 2e-2
