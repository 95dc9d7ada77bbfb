"""Tests of the torch layer (urbankit.datasets): samplers, augmentation, keys, seeding, loaders."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from urbankit.datasets import (
    Augment,
    GridSampler,
    ImportanceSampler,
    RandomSampler,
    SceneDataset,
    collate,
    make_loader,
)
from urbankit.errors import ConfigError, SceneValidationError, UrbankitError

BANDS = ("B02", "B03", "B04", "B08")


def make_test_scene(site="alpha", size=(24, 20), n_dates=3, seed=0, optical=True, sar=True,
                    buildings=True, change=True, split="train"):
    """A tiny schema scene whose inputs encode its labels exactly.

    ``buildings[t]`` is a random 0/1 mask; optical band k at date t is ``buildings[t] * (k + 1) / 4``
    (so ``optical_t[0] > 0`` is the building mask), SAR VV is -20 dB + 15 dB * buildings and VH a
    ramp over x; ``change`` = built at the last date and not at the first.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    b = (rng.random((n_dates, h, w)) < 0.3).astype(np.float32)
    b = np.maximum.accumulate(b, axis=0)  # construction only
    coords = {"time": pd.date_range("2020-01-01", periods=n_dates, freq="MS"),
              "y": np.arange(h, dtype=float)[::-1] * 10.0, "x": np.arange(w, dtype=float) * 10.0}
    data = {}
    if optical:
        opt = np.stack([b * (k + 1) / 4.0 for k in range(len(BANDS))], axis=1).astype(np.float32)
        data["optical"] = (("time", "band", "y", "x"), opt)
        coords["band"] = list(BANDS)
    if sar:
        vv = -20.0 + 15.0 * b
        vh = np.broadcast_to(np.linspace(-25.0, 0.0, w, dtype=np.float32), (n_dates, h, w))
        data["sar"] = (("time", "polarisation", "y", "x"), np.stack([vv, vh], axis=1).astype(np.float32))
        coords["polarisation"] = ["VV", "VH"]
    if buildings:
        data["buildings"] = (("time", "y", "x"), b)
    if change:
        data["change"] = (("y", "x"), ((b[-1] > 0.5) & (b[0] < 0.5)).astype(np.uint8))
    return xr.Dataset(data, coords=coords, attrs={"site": site, "region": "test", "dataset": "unit",
                                                  "split": split, "source": "tests", "licence": "MIT"})


@pytest.fixture(scope="module")
def scenes():
    return [make_test_scene("alpha", seed=1), make_test_scene("beta", size=(20, 28), seed=2)]


def check_alignment(s, single=False):
    """Labels equal what the inputs encode (see make_test_scene)."""
    times = ("t1",) if single else ("t1", "t2")
    for t in times:
        mask = s[f"buildings_{t}"][..., 0, :, :] if s[f"buildings_{t}"].ndim == 4 else s[f"buildings_{t}"][0]
        opt = s[f"optical_{t}"]
        sar = s[f"sar_{t}"]
        for k in range(opt.shape[-3]):  # every band went through the same transform
            assert torch.equal((opt[..., k, :, :] > 0).float(), mask)
        assert torch.equal((sar[..., 0, :, :] > 0.5).float(), mask)  # VV: -20 dB -> 0.2, -5 dB -> 0.8
    if not single:
        b1, b2 = s["buildings_t1"], s["buildings_t2"]
        assert torch.equal(s["change"], ((b2 > 0.5) & (b1 < 0.5)).float())


# -- samplers -----------------------------------------------------------------------------------


def test_grid_sampler_covers_every_pixel_and_aligns_last_patch(scenes):
    ds = SceneDataset(scenes, GridSampler(8, overlap=2))
    for s_idx, (h, w) in enumerate([(24, 20), (20, 28)]):
        cover = np.zeros((h, w), int)
        origins = [(y, x) for (s, y, x) in ds._plan if s == s_idx]
        for y, x in origins:
            assert 0 <= y <= h - 8 and 0 <= x <= w - 8
            cover[y:y + 8, x:x + 8] += 1
        assert cover.min() >= 1
        assert max(y for y, _ in origins) == h - 8 and max(x for _, x in origins) == w - 8
    assert len(GridSampler(10).plan([(20, 20)])) == 4
    assert [o[1:] for o in GridSampler(10, stride=7).plan([(20, 20)])][:3] == [(0, 0), (0, 7), (0, 10)]


def test_grid_sample_equals_scene_crop(scenes):
    ds = SceneDataset(scenes, GridSampler(8), optical_bands=["B08", "B02"])
    s = ds[len(ds) - 1]  # last window of the last scene: bottom-right corner
    opt = scenes[1]["optical"].sel(band=["B08", "B02"]).values[0, :, -8:, -8:]
    assert s["site"] == "beta"
    np.testing.assert_array_equal(s["optical_t1"].numpy(), opt)
    np.testing.assert_array_equal(s["change"][0].numpy(), scenes[1]["change"].values[-8:, -8:])
    np.testing.assert_array_equal(s["buildings_t2"][0].numpy(), scenes[1]["buildings"].values[-1, -8:, -8:])


def test_random_sampler_length_and_range(scenes):
    ds = SceneDataset(scenes, RandomSampler(16, n_per_scene=5))
    assert len(ds) == 10
    for i in range(len(ds)):
        s_idx, y0, x0, (t1, t2) = ds.window(i)
        h, w = ds._scenes[s_idx].shape
        assert s_idx == i // 5 and 0 <= y0 <= h - 16 and 0 <= x0 <= w - 16 and (t1, t2) == (0, 2)


def test_importance_sampler_favours_change():
    h = w = 64
    sc = make_test_scene(size=(h, w), buildings=False, sar=False, optical=True)
    ch = np.zeros((h, w), np.uint8)
    ch[:16, :16] = 1  # change only in the top-left corner
    sc["change"] = (("y", "x"), ch)
    n = 200

    def hits(sampler):
        ds = SceneDataset(sc, sampler)
        return sum(ds.window(i)[1] < 16 and ds.window(i)[2] < 16 for i in range(n))

    imp, uni = hits(ImportanceSampler(16, n, n_candidates=20, bias=5)), hits(RandomSampler(16, n))
    assert imp > 2 * uni + 20
    # the counter used by the sampler is exact
    counter = SceneDataset(sc, ImportanceSampler(16, 1))._scenes[0].change_counter(0, 2, 16)
    assert counter(np.array([0, 8, 32, 48]), np.array([0, 8, 32, 0])).tolist() == [256, 64, 0, 0]


@pytest.mark.parametrize("pair", [(0, 4), (1, 3), (2, 4), (0, 1)])
@pytest.mark.parametrize("stored_change", [True, False])
def test_change_counts_match_change_labels(pair, stored_change):
    sc = make_test_scene(size=(40, 36), n_dates=5, change=stored_change, seed=9)
    scene = SceneDataset(sc, ImportanceSampler(10, 1), pair="random_pair")._scenes[0]
    ys, xs = np.array([0, 3, 30, 17]), np.array([0, 26, 5, 11])
    expect = [scene.change_window(*pair, y, x, 10).sum() for y, x in zip(ys, xs)]
    assert scene.change_counter(*pair, 10)(ys, xs).tolist() == expect
    b = sc["buildings"].values
    y, x = 3, 26
    derived = ((b[pair[1]] > 0.5) & (b[pair[0]] < 0.5))[y:y + 10, x:x + 10]
    np.testing.assert_array_equal(scene.change_window(*pair, y, x, 10), derived)


def test_importance_sampler_unlabelled_scene_is_uniform():
    sc = make_test_scene(buildings=False, change=False)
    ds = SceneDataset(sc, ImportanceSampler(8, 4))
    assert len(ds) == 4 and ds.label_keys == () and not ds[0]["labelled"]


def test_scene_smaller_than_patch_raises_naming_site(scenes):
    with pytest.raises(ConfigError, match="'alpha' is 24x20 px, smaller than the patch size 21"):
        SceneDataset(scenes, RandomSampler(21))


@pytest.mark.parametrize("bad", [lambda: GridSampler(0), lambda: GridSampler(8, overlap=8),
                                 lambda: RandomSampler(8, 0), lambda: ImportanceSampler(8, 1, bias=0),
                                 lambda: Augment(gamma_range=(0.0, 2.0))])
def test_bad_arguments(bad):
    with pytest.raises(UrbankitError):
        bad()


# -- samples, keys and labels ------------------------------------------------------------------


def test_sample_keys_shapes_dtypes(scenes):
    ds = SceneDataset(scenes, RandomSampler(8, 2))
    s = ds[0]
    assert set(s) == {"optical_t1", "optical_t2", "sar_t1", "sar_t2", "buildings_t1", "buildings_t2",
                      "change", "labelled", "site"}
    assert s["optical_t1"].shape == (4, 8, 8) and s["sar_t2"].shape == (2, 8, 8)
    assert s["change"].shape == s["buildings_t1"].shape == (1, 8, 8)
    assert all(v.dtype == torch.float32 for k, v in s.items() if k not in ("labelled", "site"))
    assert s["labelled"].dtype == torch.bool and bool(s["labelled"])
    assert ds.channels == {"optical": 4, "sar": 2}
    check_alignment(s)


def test_modality_selection_and_missing_modality():
    a, b = make_test_scene("a"), make_test_scene("b", sar=False)
    ds = SceneDataset([a, b], RandomSampler(8), sar_pols=["VH"])  # None: modalities all scenes have
    assert ds.modalities == ("optical",) and "sar_t1" not in ds[0]
    with pytest.raises(SceneValidationError, match="site 'b', variable 'sar'"):
        SceneDataset([a, b], RandomSampler(8), modalities=["sar"])
    with pytest.raises(SceneValidationError, match="B12"):
        SceneDataset(a, RandomSampler(8), optical_bands=["B04", "B12"])
    ds = SceneDataset(a, RandomSampler(8), modalities=["sar"], sar_pols="VH")
    assert set(ds[0]) == {"sar_t1", "sar_t2", "buildings_t1", "buildings_t2", "change", "labelled", "site"}
    assert ds[0]["sar_t1"].shape == (1, 8, 8)


def test_sar_scaling_and_nan_rule():
    sc = make_test_scene(size=(8, 8))
    sc["sar"][:] = -10.0
    sc["sar"][0, 0, 0, 0] = np.nan
    sc["sar"][0, 0, 0, 1] = 5.0  # above the range: clipped
    sc["optical"][0, 1, 2, 3] = np.nan
    s = SceneDataset(sc, GridSampler(8), sar_db_range=(-20.0, 0.0))[0]
    sar = s["sar_t1"].numpy()
    assert sar[0, 0, 0] == 0.0 and sar[0, 0, 1] == 1.0 and sar[1, 5, 5] == pytest.approx(0.5)
    assert s["optical_t1"][1, 2, 3] == 0.0 and torch.isfinite(s["optical_t1"]).all()


def test_change_derived_from_buildings_when_missing():
    sc = make_test_scene(change=False)
    ds = SceneDataset(sc, GridSampler(8))
    assert ds.label_keys == ("buildings_t1", "buildings_t2", "change")
    for i in range(len(ds)):
        check_alignment(ds[i])


def test_random_pair_draws_sorted_distinct_dates():
    sc = make_test_scene(n_dates=5, change=False)
    ds = SceneDataset(sc, RandomSampler(8, 200), pair="random_pair", seed=3)
    pairs = {ds.window(i)[3] for i in range(len(ds))}
    assert pairs == {(i, j) for i in range(5) for j in range(i + 1, 5)}
    for i in range(0, 200, 17):
        s, (_, y0, x0, (t1, _)) = ds[i], ds.window(i)
        np.testing.assert_array_equal(s["buildings_t1"][0].numpy(), sc["buildings"].values[t1][y0:y0 + 8, x0:x0 + 8])
        check_alignment(s)


def test_random_pair_without_buildings_raises():
    sc = make_test_scene(n_dates=4, buildings=False)
    with pytest.raises(SceneValidationError, match="random_pair"):
        SceneDataset(sc, RandomSampler(8), pair="random_pair")


def test_single_date_mode():
    ds = SceneDataset(make_test_scene(n_dates=1, change=False), RandomSampler(8, 3), pair="single",
                      augment=Augment())
    s = ds[1]
    assert set(s) == {"optical_t1", "sar_t1", "buildings_t1", "labelled", "site"}
    check_alignment(s, single=True)
    with pytest.raises(SceneValidationError, match="needs >= 2"):
        SceneDataset(make_test_scene(n_dates=1), RandomSampler(8))


def test_unlabelled_scenes_and_mixed_batches():
    lab = make_test_scene("lab")
    unl = make_test_scene("unl", buildings=False, change=False)
    split_unl = make_test_scene("split", split="unlabelled")
    ds = SceneDataset([lab, unl, split_unl], RandomSampler(8, 2), augment=Augment())
    flags = [bool(ds[i]["labelled"]) for i in range(len(ds))]
    assert flags == [True, True, False, False, False, False]
    s = ds[4]
    assert s["change"].shape == (1, 8, 8) and not s["change"].any() and not s["buildings_t2"].any()
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["site"] == ["lab", "lab", "unl", "unl", "split", "split"]
    assert batch["labelled"].tolist() == flags and batch["optical_t1"].shape == (6, 4, 8, 8)
    # labelled=False: same keys, zero labels
    s = SceneDataset(lab, RandomSampler(8), labelled=False)[0]
    assert not s["labelled"] and not s["buildings_t1"].any() and "change" in s
    # samples of an unlabelled-only dataset (no label keys) share a batch with labelled ones
    only_unl = SceneDataset(unl, RandomSampler(8), modalities=["optical", "sar"])
    assert only_unl.label_keys == ()
    b = collate([ds[0], only_unl[0]])
    assert b["change"].shape == (2, 1, 8, 8) and not b["change"][1].any()
    with pytest.raises(ConfigError, match="has no 'optical_t1'"):
        collate([ds[0], SceneDataset(lab, RandomSampler(8), modalities=["sar"])[0]])


def test_label_keys_are_what_every_labelled_scene_provides():
    only_change = make_test_scene("cd", buildings=False)
    ds = SceneDataset([make_test_scene("full"), only_change], RandomSampler(8))
    assert ds.label_keys == ("change",) and all(bool(ds[i]["labelled"]) for i in range(2))


# -- augmentation -------------------------------------------------------------------------------


def test_augmentation_keeps_inputs_and_labels_aligned():
    sc = make_test_scene(size=(16, 16), n_dates=4)
    ds = SceneDataset(sc, RandomSampler(12, 64), augment=Augment(gamma=True), pair="random_pair", seed=5)
    ref = SceneDataset(sc, RandomSampler(12, 64), pair="random_pair", seed=5)
    changed = 0
    for i in range(len(ds)):
        s, r = ds[i], ref[i]
        check_alignment(s)
        changed += not torch.equal(s["buildings_t1"], r["buildings_t1"])
        # the augmented sample is a flip/rotation of the plain one (same window and dates)
        found = False
        for hf in (False, True):
            for vf in (False, True):
                for k in range(4):
                    p = {"hflip": hf, "vflip": vf, "k": k}
                    if all(np.array_equal(Augment.apply_geometry(r[key].numpy(), p), s[key].numpy())
                           for key in ("buildings_t1", "buildings_t2", "change", "sar_t1", "sar_t2")):
                        found = True
        assert found
    assert changed > 10


def test_gamma_is_per_band_optical_only_and_same_for_both_dates():
    sc = make_test_scene(size=(8, 8), n_dates=2)
    sc["optical"][:] = 0.5
    s = SceneDataset(sc, GridSampler(8), augment=Augment(hflip=False, vflip=False, rot90=False, gamma=True))[0]
    plain = SceneDataset(sc, GridSampler(8))[0]
    g = torch.log(s["optical_t1"][:, 0, 0]) / np.log(0.5)  # recovered gamma per band
    assert ((g > 0.25 - 1e-4) & (g < 2.0 + 1e-4)).all() and len(set(np.round(g.numpy(), 4))) == 4
    assert torch.equal(s["optical_t1"], s["optical_t2"])
    assert torch.equal(s["sar_t1"], plain["sar_t1"]) and torch.equal(s["change"], plain["change"])


def test_swap_dates_exchanges_the_dates_of_about_half_the_samples_and_keeps_the_change():
    sc = make_test_scene(size=(16, 16), n_dates=2, seed=3)
    kw = dict(sampler=RandomSampler(8, 40), seed=2)
    swapped = SceneDataset(sc, augment=Augment(gamma=True, swap_dates=True), **kw)
    plain = SceneDataset(sc, augment=Augment(gamma=True), **kw)  # the same draws, no swap
    n_swapped = 0
    for i in range(len(plain)):
        s, r = swapped[i], plain[i]
        assert torch.equal(s["change"], r["change"])
        exchanged = all(torch.equal(s[f"{k}_t1"], r[f"{k}_t2"]) and torch.equal(s[f"{k}_t2"], r[f"{k}_t1"])
                        for k in ("optical", "sar", "buildings"))
        same = all(torch.equal(s[k], r[k]) for k in swapped.keys)
        assert exchanged != same  # the dates differ in every sample of this scene
        n_swapped += exchanged
    assert 10 <= n_swapped <= 30


def test_identity_pairs_make_a_share_of_samples_no_change_pairs_of_either_date():
    sc = make_test_scene(size=(16, 16), n_dates=2, seed=3)
    kw = dict(sampler=RandomSampler(8, 60), seed=2)
    pairs = SceneDataset(sc, augment=Augment(gamma=True, identity_pairs=0.5), **kw)
    plain = SceneDataset(sc, augment=Augment(gamma=True), **kw)  # the same draws, no identity pairs
    kept = {"t1": 0, "t2": 0}
    for i in range(len(plain)):
        s, r = pairs[i], plain[i]
        if torch.equal(s["change"], r["change"]) and all(torch.equal(s[k], r[k]) for k in pairs.keys):
            continue  # an ordinary sample
        assert not s["change"].any()
        for t, other in (("t1", "t2"), ("t2", "t1")):
            if all(torch.equal(s[f"{k}_{t}"], r[f"{k}_{t}"]) and torch.equal(s[f"{k}_{other}"], r[f"{k}_{t}"])
                   for k in ("optical", "sar", "buildings")):
                kept[t] += 1
                break
        else:
            raise AssertionError(f"sample {i} is neither ordinary nor an identity pair of one date")
        assert s["optical_t1"].data_ptr() != s["optical_t2"].data_ptr()  # copies, not shared memory
    assert kept["t1"] >= 8 and kept["t2"] >= 8 and 18 <= kept["t1"] + kept["t2"] <= 42


@pytest.mark.parametrize("value", [-0.1, 1.5, True, "half"])
def test_identity_pairs_must_be_a_probability(value):
    with pytest.raises(ConfigError, match="identity_pairs is a probability"):
        Augment(identity_pairs=value)


def test_identity_pairs_need_two_dates():
    with pytest.raises(ConfigError, match="identity_pairs needs two dates"):
        SceneDataset(make_test_scene("one", n_dates=2), RandomSampler(8), pair="single",
                     augment=Augment(identity_pairs=0.25))


@pytest.mark.parametrize("scene, pair, message", [
    (make_test_scene("built_only", n_dates=2, change=False), "first_last", "built_only"),
    (make_test_scene("series", n_dates=3), "random_pair", "series"),
    (make_test_scene("one", n_dates=2), "single", "pair='single'"),
])
def test_swap_dates_refuses_an_order_dependent_change_label(scene, pair, message):
    with pytest.raises(ConfigError, match=message):
        SceneDataset(scene, RandomSampler(8), pair=pair, augment=Augment(swap_dates=True))


# -- seeding, epochs, loaders -------------------------------------------------------------------


def test_per_sample_rng_depends_on_seed_epoch_index(scenes):
    ds = SceneDataset(scenes, ImportanceSampler(8, 6), augment=Augment(gamma=True), pair="random_pair",
                      seed=7)
    a = [ds[i] for i in range(len(ds))]
    b = [ds[i] for i in reversed(range(len(ds)))][::-1]  # order of access does not matter
    assert all(torch.equal(x["optical_t1"], y["optical_t1"]) for x, y in zip(a, b))
    w0 = [ds.window(i) for i in range(len(ds))]
    ds.set_epoch(1)
    assert [ds.window(i) for i in range(len(ds))] != w0
    ds.set_epoch(0)
    assert [ds.window(i) for i in range(len(ds))] == w0
    other = SceneDataset(scenes, ImportanceSampler(8, 6), pair="random_pair", seed=8)
    assert [other.window(i) for i in range(len(ds))] != w0


def _batches(loader, epochs=(0, 1)):
    out = []
    for e in epochs:
        loader.set_epoch(e)
        out += list(loader)
    return out


def _same(b1, b2):
    assert len(b1) == len(b2)
    for x, y in zip(b1, b2):
        assert x["site"] == y["site"] and x.keys() == y.keys()
        for k in x:
            if k != "site":
                assert torch.equal(x[k], y[k]), k


def test_loaders_with_same_seed_give_identical_batches(scenes):
    def loader(seed):
        ds = SceneDataset(scenes, ImportanceSampler(8, 4), augment=Augment(gamma=True), pair="random_pair",
                          seed=seed)
        return make_loader(ds, batch_size=3, shuffle=True, seed=seed)

    b1, b2 = _batches(loader(11)), _batches(loader(11))
    _same(b1, b2)
    assert b1[0]["optical_t1"].shape == (3, 4, 8, 8) and len(b1) == 6
    assert [b["site"] for b in b1[:3]] != [b["site"] for b in b1[3:]] or not all(
        torch.equal(x["optical_t1"], y["optical_t1"]) for x, y in zip(b1[:3], b1[3:]))  # epochs differ
    b3 = _batches(loader(12))
    assert not all(torch.equal(x["optical_t1"], y["optical_t1"]) for x, y in zip(b1, b3))


def test_num_workers_do_not_change_batches(scenes):
    ds = SceneDataset(scenes, ImportanceSampler(8, 3), augment=Augment(gamma=True), pair="random_pair", seed=4)
    b0 = _batches(make_loader(ds, batch_size=2, num_workers=0, seed=4))
    b2 = _batches(make_loader(ds, batch_size=2, num_workers=2, seed=4))
    _same(b0, b2)


def test_concat_dataset_of_labelled_and_unlabelled(scenes):
    lab = SceneDataset(scenes, RandomSampler(8, 2), seed=1)
    unl = SceneDataset(make_test_scene("u", change=False, buildings=False), RandomSampler(8, 2), seed=2)
    loader = make_loader(torch.utils.data.ConcatDataset([lab, unl]), batch_size=6, seed=0)
    loader.set_epoch(3)
    (batch,) = list(loader)
    assert lab.epoch == unl.epoch == 3
    assert batch["labelled"].sum() == 4 and batch["change"][~batch["labelled"]].sum() == 0


# -- with the synthetic generator ---------------------------------------------------------------


@pytest.fixture(scope="module")
def twins():
    from urbankit.data.synthetic import make_site

    return [make_site(site="twin-a", size=40, n_dates=4, seed=0),
            make_site(site="twin-b", size=(36, 44), n_dates=4, region="south_asia", seed=1),
            make_site(site="twin-u", size=32, n_dates=3, seed=2, split="unlabelled")]


def test_synthetic_sites_end_to_end(twins):
    ds = SceneDataset(twins, ImportanceSampler(16, 4), optical_bands=["B04", "B03", "B02", "B08"],
                      pair="random_pair", augment=Augment(gamma=True), seed=1)
    assert ds.sites == ["twin-a", "twin-b", "twin-u"] and len(ds) == 12
    assert ds.keys == ("optical_t1", "optical_t2", "sar_t1", "sar_t2", "buildings_t1", "buildings_t2", "change")
    loader = make_loader(ds, batch_size=4, seed=1)
    batches = _batches(loader, epochs=(0,))
    b = collate([ds[i] for i in range(len(ds))])
    assert b["labelled"].tolist() == [True] * 8 + [False] * 4
    assert b["optical_t1"].shape == (12, 4, 16, 16) and b["sar_t2"].shape == (12, 2, 16, 16)
    for key in ds.keys:
        assert torch.isfinite(b[key]).all() and b[key].min() >= 0 and b[key].max() <= 1, key
    lab = b["labelled"]
    derived = ((b["buildings_t2"] > 0.5) & (b["buildings_t1"] <= 0.5)).float()
    assert torch.equal(b["change"][lab], derived[lab]) and not b["change"][~lab].any()
    assert sum(len(x["site"]) for x in batches) == 12


def test_synthetic_first_last_uses_stored_change_and_grid_reassembles(twins):
    sc = twins[1]
    ds = SceneDataset(sc, GridSampler(16, overlap=4), optical_bands=["B08"], modalities=["optical"])
    h, w = sc.sizes["y"], sc.sizes["x"]
    change, opt = np.full((h, w), -1.0, np.float32), np.full((h, w), -1.0, np.float32)
    for i in range(len(ds)):
        s, (_, y0, x0, _) = ds[i], ds.window(i)
        change[y0:y0 + 16, x0:x0 + 16] = s["change"][0].numpy()
        opt[y0:y0 + 16, x0:x0 + 16] = s["optical_t2"][0].numpy()
    np.testing.assert_array_equal(change, sc["change"].values)
    np.testing.assert_array_equal(opt, sc["optical"].sel(band="B08").values[-1])


def test_invalid_scene_is_rejected_naming_the_site(twins):
    bad = twins[0].copy()
    bad["buildings"] = bad["buildings"].transpose("y", "x", "time")
    with pytest.raises(SceneValidationError, match="twin-a"):
        SceneDataset(bad, RandomSampler(8))
