"""Tests of out-of-core prediction to a Cloud-Optimised GeoTIFF (urbankit.cityscale)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from urbankit import cityscale as cs  # noqa: E402
from urbankit.data.contract import InputContract, InputContractError  # noqa: E402
from urbankit.errors import ConfigError  # noqa: E402
from urbankit.inference import predict  # noqa: E402
from urbankit.models import build  # noqa: E402

BANDS = ["B02", "B03", "B04", "B08"]


def make_scene(h=150, w=170, seed=0, n_dates=2, sar=False):
    """A small georeferenced scene (EPSG:32633, 10 m), smooth enough that a U-Net sees context."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(xx / 9.0)[None] * np.cos(yy / 7.0)[None]
    opt = np.clip(base[None] + 0.05 * rng.standard_normal((n_dates, len(BANDS), h, w)), 0, 1).astype(np.float32)
    opt[0, :, :3, :4] = np.nan  # a no-data corner on date 1
    data = {"optical": (("time", "band", "y", "x"), opt)}
    coords = {"time": np.arange(n_dates).astype("datetime64[Y]").astype("datetime64[ns]"), "band": BANDS,
              "y": 5_000_000.0 - 10 * (np.arange(h) + 0.5), "x": 500_000.0 + 10 * (np.arange(w) + 0.5)}
    if sar:
        data["sar"] = (("time", "polarisation", "y", "x"),
                       rng.uniform(-25, 0, (n_dates, 2, h, w)).astype(np.float32))
        coords["polarisation"] = ["VV", "VH"]
    ds = xr.Dataset(data, coords=coords, attrs={"site": f"test-{seed}"})
    return ds.rio.write_crs("EPSG:32633")


def make_model(scene, norm="dataset", modality="optical"):
    torch.manual_seed(0)
    model = build("unet_ef", modality=modality, optical_channels=len(BANDS), sar_channels=2, topology=(8, 16))
    model.input_contract = InputContract.fit([scene], modalities=("optical", "sar") if modality == "fusion"
                                             else (modality,), optical_norm=norm)
    return model.eval()


def codes(path):
    with rasterio.open(path) as src:
        return src.read(1)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def scene():
    return make_scene()


@pytest.fixture(scope="module")
def model(scene):
    return make_model(scene)


def test_one_block_equals_in_memory_predict_and_keeps_the_georeference(scene, model, tmp_path):
    out = cs.predict_to_cog(model, scene, tmp_path / "map.tif", chunk=512, overlap=0, progress=False)
    ref = predict(model, scene, output_key="change").values
    got = codes(out)
    ok = ~np.isnan(scene["optical"].values).all(axis=1).any(axis=0)
    np.testing.assert_array_equal(got[ok], np.rint(ref[ok] * 254).astype(np.uint8))
    assert (got[~ok] == 255).all() and (~ok).sum() == 12  # the no-data corner
    with rasterio.open(out) as src:
        assert src.crs == scene.rio.crs
        assert src.transform.almost_equals(scene.rio.transform(recalc=True))
        assert src.nodata == 255 and src.scales == (1 / 254,)
        tags = src.tags()
    assert InputContract.from_dict(json.loads(tags["URBANKIT_INPUT_CONTRACT"])) == model.input_contract
    assert tags["URBANKIT_WEIGHTS_SHA256"] == cs._weights_sha256(model)
    assert json.loads(tags["URBANKIT_PREDICT"])["overlap"] == 0
    back = cs.read_prediction(out)
    np.testing.assert_allclose(back.values[ok], got[ok] / 254, atol=1e-6)
    assert np.isnan(back.values[~ok]).all()
    np.testing.assert_allclose(back["x"].values, scene["x"].values)
    np.testing.assert_allclose(back["y"].values, scene["y"].values)


def test_window_weights_sum_to_one_and_are_one_outside_the_overlaps():
    shape, chunk, overlap = (300, 260), 64, 16
    plan = cs.plan_blocks(shape, chunk, overlap)
    total = np.zeros(shape, np.float64)
    for row in plan:
        for b in row:
            w = cs._window_weights(b, len(plan), len(plan[0]), overlap // 2)
            total[b.wy0:b.wy1, b.wx0:b.wx1] += w
            # inside the core, farther than overlap/2 from an inner edge, the window alone counts
            inner = w[overlap:-overlap, overlap:-overlap]
            assert (inner == 1.0).all()
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    # the last sliver (300 = 4 * 64 + 44 -> kept; 260 = 4 * 64 + 4 -> joined) never gets thinner than overlap
    assert [len(plan), len(plan[0])] == [5, 4] and plan[0][-1].x1 - plan[0][-1].x0 == 68


def test_blending_stays_close_to_whole_image_prediction(scene, model, tmp_path):
    whole = codes(cs.predict_to_cog(model, scene, tmp_path / "whole.tif", chunk=512, overlap=0, progress=False))
    blended = codes(cs.predict_to_cog(model, scene, tmp_path / "b.tif", chunk=64, overlap=32, progress=False))
    cropped = codes(cs.predict_to_cog(model, scene, tmp_path / "c.tif", chunk=64, overlap=0, progress=False))
    d_blend = np.abs(blended.astype(int) - whole)
    d_crop = np.abs(cropped.astype(int) - whole)
    assert d_blend.max() <= 3 and d_blend.mean() < d_crop.mean()  # codes of 1/254


def test_the_file_is_a_cog_with_overviews_and_a_plain_tiff_is_not(tmp_path):
    big = make_scene(h=700, w=600, seed=1)
    model = make_model(big)
    out = cs.predict_to_cog(model, big, tmp_path / "big.tif", chunk=512, overlap=32, progress=False)
    assert cs.validate_cog(out) == []
    with rasterio.open(out) as src:
        assert src.overviews(1) and src.block_shapes[0] == (512, 512)
        assert src.crs == big.rio.crs and src.transform.almost_equals(big.rio.transform(recalc=True))
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=600, height=700, count=1, dtype="uint8") as dst:
        dst.write(codes(out), 1)
    problems = cs.validate_cog(plain)
    assert any("LAYOUT=COG" in p for p in problems) and any("overviews" in p for p in problems)
    assert not list(tmp_path.glob(".*"))  # no temporary or partial files left


def test_local_cluster_with_two_workers_writes_the_same_bytes(scene, model, tmp_path):
    pytest.importorskip("distributed")
    a = cs.predict_to_cog(model, scene, tmp_path / "here.tif", chunk=64, overlap=16, progress=False)
    b = cs.predict_to_cog(model, scene, tmp_path / "cluster.tif", chunk=64, overlap=16, progress=False,
                          scheduler="local", n_workers=2)
    assert sha(a) == sha(b)


def _write_geotiff(path, arr, scene, names):
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[-1], height=arr.shape[-2], count=arr.shape[0],
                       dtype="float32", crs=scene.rio.crs, transform=scene.rio.transform(recalc=True)) as dst:
        dst.write(arr)
        for i, name in enumerate(names or [], start=1):
            dst.set_band_description(i, name)
    return path


def test_geotiff_and_zarr_inputs_give_the_scene_result(scene, model, tmp_path):
    from urbankit.data.cache import save_scene

    ref = codes(cs.predict_to_cog(model, scene, tmp_path / "ref.tif", chunk=64, overlap=16, progress=False))
    opt = scene["optical"].values
    # bands named in another order: matched by description
    files = [_write_geotiff(tmp_path / f"s2_{t}.tif", opt[t][::-1], scene, BANDS[::-1]) for t in (0, 1)]
    got = codes(cs.predict_to_cog(model, {"optical": files}, tmp_path / "tif.tif", chunk=64, overlap=16,
                                  progress=False))
    np.testing.assert_array_equal(got, ref)
    store = save_scene(scene, tmp_path / "scene.zarr")
    out = cs.predict_to_cog(model, store, tmp_path / "zarr.tif", chunk=64, overlap=16, progress=False)
    np.testing.assert_array_equal(codes(out), ref)
    with rasterio.open(out) as src:  # the CRS came back from the store's spatial_ref
        assert src.crs == scene.rio.crs and src.transform.almost_equals(scene.rio.transform(recalc=True))


def test_geotiffs_that_break_the_contract_are_named(scene, model, tmp_path):
    opt = scene["optical"].values
    three = _write_geotiff(tmp_path / "three.tif", opt[0, :3], scene, None)
    with pytest.raises(InputContractError, match="three.tif.*4"):
        cs.predict_to_cog(model, {"optical": [three, three]}, tmp_path / "x.tif", progress=False)
    dn = [_write_geotiff(tmp_path / f"dn_{t}.tif", opt[t] * 10000, scene, BANDS) for t in (0, 1)]
    with pytest.raises(InputContractError, match=r"dn_[01]\.tif.*reflectance"):
        cs.predict_to_cog(model, {"optical": dn}, tmp_path / "x.tif", chunk=64, overlap=16, progress=False)
    assert not (tmp_path / "x.tif").exists() and not list(tmp_path.glob(".x.tif*"))
    got = codes(cs.predict_to_cog(model, {"optical": dn}, tmp_path / "scaled.tif", chunk=64, overlap=16,
                                  scale={"optical": 1e-4}, progress=False))
    ref = codes(cs.predict_to_cog(model, scene, tmp_path / "ref.tif", chunk=64, overlap=16, progress=False))
    assert np.abs(got.astype(int) - ref).max() <= 1  # DN * 1e-4 rounds differently from the scene
    with pytest.raises(ConfigError, match="two dates"):
        cs.predict_to_cog(model, {"optical": dn[:1]}, tmp_path / "x.tif", progress=False)


def test_an_interrupted_run_resumes_from_its_finished_blocks(scene, model, tmp_path, monkeypatch):
    fresh = cs.predict_to_cog(model, scene, tmp_path / "fresh.tif", chunk=64, overlap=16, progress=False)
    real_put, calls = cs._PartialStore.put, []

    def put_then_fail(self, block, *args):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(block)
        real_put(self, block, *args)

    monkeypatch.setattr(cs._PartialStore, "put", put_then_fail)
    out = tmp_path / "resumed.tif"
    with pytest.raises(KeyboardInterrupt):
        cs.predict_to_cog(model, scene, out, chunk=64, overlap=16, progress=False)
    assert not out.exists() and len(list((tmp_path / ".resumed.tif.partial").glob("*.npz"))) == 4
    monkeypatch.setattr(cs._PartialStore, "put", real_put)
    seen = []
    monkeypatch.setattr(cs, "_blend_task", lambda *a, _f=cs._blend_task: seen.append(a[1]) or _f(*a))
    cs.predict_to_cog(model, scene, out, chunk=64, overlap=16, progress=False)
    assert len(seen) == 9 - 4 and sha(out) == sha(fresh)
    assert not (tmp_path / ".resumed.tif.partial").exists()


@pytest.mark.parametrize("kw", [{"dtype": "uint16"}, {"output": "class", "threshold": 0.4}])
def test_uint16_probabilities_and_classes(scene, model, tmp_path, kw):
    out = cs.predict_to_cog(model, scene, tmp_path / "m.tif", chunk=512, overlap=0, progress=False, **kw)
    ref = predict(model, scene, output_key="change").values
    got = codes(out)
    ok = got != (65535 if kw.get("dtype") == "uint16" else 255)
    if "threshold" in kw:
        np.testing.assert_array_equal(got[ok], (ref[ok] > 0.4).astype(np.uint8))
    else:
        np.testing.assert_array_equal(got[ok], np.rint(ref[ok] * 65534).astype(np.uint16))


def test_per_image_norm_uses_whole_scene_statistics(tmp_path):
    big = make_scene(h=150, w=170, seed=3, sar=True)
    model = make_model(big, norm="per_image", modality="fusion")
    got = codes(cs.predict_to_cog(model, big, tmp_path / "p.tif", chunk=64, overlap=16, progress=False))
    ref = predict(model, big, output_key="change").values  # whole images: per-image stats of the scene
    ok = got != 255
    # windows of 64 px with their own statistics would differ by far more than the blending does
    assert np.abs(got[ok].astype(float) - np.rint(ref[ok] * 254)).max() <= 3


def test_contract_errors_survive_pickling_from_a_worker():
    import pickle

    err = pickle.loads(pickle.dumps(InputContractError("a.tif", "optical", "has 3 bands")))
    assert isinstance(err, InputContractError) and str(err) == "site 'a.tif', variable 'optical': has 3 bands"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny U-Net trained for 2 steps on a synthetic scene, with its input contract."""
    from urbankit import datasets
    from urbankit.train import fit

    sc = make_scene(seed=5)
    sc["change"] = (("y", "x"), (np.nan_to_num(sc["optical"].values[1, 0] - sc["optical"].values[0, 0]) > 0.05
                                 ).astype(np.uint8))
    contract = InputContract.fit([sc], modalities=("optical",))
    ds = datasets.SceneDataset([sc], datasets.RandomSampler(32, 8), contract=contract)
    torch.manual_seed(0)
    model = build("unet_ef", modality="optical", optical_channels=len(BANDS), topology=(8, 16))
    folder = tmp_path_factory.mktemp("ckpt")
    fit(model, datasets.make_loader(ds, batch_size=4, seed=0), epochs=1, steps_per_epoch=2, device="cpu",
        amp=False, progress=False, checkpoint_dir=folder)
    return folder, sc


def test_urbankit_predict_writes_a_cog_from_a_checkpoint(checkpoint, tmp_path, capsys):
    from urbankit import cli
    from urbankit.data.cache import save_scene

    folder, sc = checkpoint
    files = [str(_write_geotiff(tmp_path / f"t{t}.tif", sc["optical"].values[t], sc, BANDS)) for t in (0, 1)]
    out = tmp_path / "city.tif"
    rc = cli.main(["predict", str(folder), "--model", "unet_ef", "--model-arg", "topology=[8,16]",
                   "--optical", *files, "-o", str(out), "--chunk", "64", "--overlap", "16", "--quiet"])
    assert rc == 0 and cs.validate_cog(out) == []
    model, ckpt = cs.model_from_checkpoint(folder, "unet_ef", {"topology": [8, 16]})
    with rasterio.open(out) as src:
        tags = src.tags()
        assert src.crs == sc.rio.crs
    assert tags["URBANKIT_CHECKPOINT"] == ckpt.name and len(tags["URBANKIT_CHECKPOINT_SHA256"]) == 64
    ref = codes(cs.predict_to_cog(model, sc, tmp_path / "api.tif", chunk=64, overlap=16, progress=False))
    np.testing.assert_array_equal(codes(out), ref)
    store = save_scene(sc, tmp_path / "city.zarr")
    assert cli.main(["predict", str(folder), "--model", "unet_ef", "--model-arg", "topology=[8,16]",
                     "--scene", str(store), "-o", str(tmp_path / "z.tif"), "--quiet"]) == 0
    # GeoTIFFs that do not fit the checkpoint's contract: the file and the expected bands are named
    three = str(_write_geotiff(tmp_path / "three.tif", sc["optical"].values[0, :3], sc, BANDS[:3]))
    capsys.readouterr()
    rc = cli.main(["predict", str(folder), "--model", "unet_ef", "--model-arg", "topology=[8,16]",
                   "--optical", three, files[1], "-o", str(tmp_path / "bad.tif"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "three.tif" in err and "B08" in err and not (tmp_path / "bad.tif").exists()
    rc = cli.main(["predict", str(folder), "--model", "unet_ef", "--optical", *files, "-o", str(tmp_path / "w.tif")])
    assert rc == 1 and "does not fit this model" in capsys.readouterr().err  # default topology: other weights


def test_bf16_and_channels_last_windows_stay_within_tolerance_of_fp32(scene, model, tmp_path):
    kw = {"chunk": 64, "overlap": 16, "progress": False}
    ref = codes(cs.predict_to_cog(model, scene, tmp_path / "fp32.tif", **kw)).astype(int)
    last = codes(cs.predict_to_cog(model, scene, tmp_path / "cl.tif", channels_last=True, **kw))
    bf16 = codes(cs.predict_to_cog(model, scene, tmp_path / "bf16.tif", amp="bf16", **kw))
    assert np.abs(last - ref).max() <= 1  # float rounding can move a code by one
    assert all(p.is_contiguous() for p in model.parameters())
    d = np.abs(bf16 - ref)
    assert d.max() <= 5 and d.mean() > 0  # bf16 ran; probabilities within 5/254 = 2e-2
    with rasterio.open(tmp_path / "bf16.tif") as src:
        assert json.loads(src.tags()["URBANKIT_PREDICT"])["amp"] == "bf16"


def test_a_model_without_contract_reads_the_scene_as_predict_does(tmp_path):
    sc = make_scene(h=90, w=100, seed=7, sar=True)
    sc.attrs["sar_db_range"] = "-25,5"  # recorded by the source: both paths scale SAR with it
    model = make_model(sc, modality="fusion")
    del model.input_contract
    got = codes(cs.predict_to_cog(model, sc, tmp_path / "n.tif", chunk=512, overlap=0, progress=False))
    ref = predict(model, sc, output_key="change").values
    ok = got != 255
    np.testing.assert_array_equal(got[ok], np.rint(ref[ok] * 254).astype(np.uint8))
    with pytest.raises(ConfigError, match="input_contract"):
        cs.predict_to_cog(model, {"optical": ["a.tif"]}, tmp_path / "x.tif", progress=False)
