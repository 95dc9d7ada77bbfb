"""Recipes as data, the experiment pipeline and its protocol, resume refusals, the data-root rule."""
from __future__ import annotations

import numpy as np
import pytest

from urbankit import experiments, recipes, train
from urbankit.data.schema import make_scene
from urbankit.datasets import GridSampler, RandomSampler, SceneDataset, make_loader
from urbankit.errors import ConfigError
from urbankit.models import build, list_models
from urbankit.paths import data_root_for
from urbankit.train import CheckpointError


def _city(site, seed, size=48):
    """A scene whose change is a bright square (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    opt = rng.uniform(0.05, 0.15, (2, 4, size, size)).astype(np.float32)
    change = np.zeros((size, size), np.uint8)
    y, x = rng.integers(4, size - 20, 2)
    change[y:y + 14, x:x + 14] = 1
    opt[1, :, change == 1] += 0.3
    sar = rng.uniform(-20, -5, (2, 1, size, size)).astype(np.float32)
    return make_scene(optical=opt, sar=sar, change=change, bands=["B02", "B03", "B04", "B08"],
                      polarisations=["VV"], times=["2018-01-01", "2019-01-01"], site=site, dataset="test",
                      validate=False)


# ------------------------------------------------------------------------------------- recipes
def test_full_recipes_carry_the_papers_values_with_sources():
    fc = recipes.get_recipe("fc_siam_diff", profile="full")
    assert (fc.optimizer, fc.lr, fc.weight_decay, fc.batch_size, fc.patch_size, fc.epochs) == \
        ("adam", 1e-3, 1e-4, 32, 96, 50)
    assert fc.sampler_options["stride"] == 47 and fc.optical_norm == "per_image"
    ds = recipes.get_recipe("dsunet", profile="full")
    assert (ds.lr, ds.weight_decay, ds.batch_size, ds.patch_size, ds.sar_orbit) == (5e-5, 5e-4, 64, 32, "random")
    mm = recipes.get_recipe("mmcr_net", profile="full")
    assert (mm.optimizer, mm.lr, mm.patience) == ("adamw", 1e-4, 10)
    for r in recipes.RECIPES.values():
        assert r.sources.get("lr"), f"recipe {r.name} has no source for its learning rate"
        for model in r.models:
            assert model in set(list_models()["name"]), f"recipe {r.name} lists unknown model {model}"


def test_shrunk_profiles_list_every_non_size_change():
    real = recipes.get_recipe("dsunet", profile="real")
    full = recipes.get_recipe("dsunet", profile="full")
    assert real.optical_norm != full.optical_norm
    assert any(d.startswith("optical_norm") for d in real.deviations)
    assert real.deviations[:len(full.deviations)] == full.deviations
    assert not any(d.startswith("width") for d in real.deviations)   # size changes need no reason


def test_a_model_budget_changes_only_its_network_in_its_profile_and_says_why():
    conc = recipes.get_recipe("fc_siam_conc", profile="real")
    assert conc.optical_bands == ("B02", "B03", "B04", "B08")
    assert any(d.startswith("optical_bands = B02, B03, B04, B08: FC-Siam-conc only") for d in conc.deviations)
    for other in (recipes.get_recipe("fc_siam_diff", profile="real"), recipes.get_recipe("fc_ef", profile="real"),
                  recipes.get_recipe("daudt_fc", profile="real"), recipes.get_recipe("fc_siam_conc", profile="full"),
                  recipes.get_recipe("fc_siam_conc", profile="quick")):
        assert other.optical_bands is None and not any(d.startswith("optical_bands") for d in other.deviations)
    assert conc.augment["identity_pairs"] == 0.25 and (conc.patch_size, conc.batch_size) == (128, 9)
    for field in recipes.MODEL_BUDGETS["real"]["fc_siam_conc"]:
        assert sum(d.startswith(f"{field} = ") and "FC-Siam-conc only" in d for d in conc.deviations) == 1
    diff = recipes.get_recipe("fc_siam_diff", profile="real")
    assert "identity_pairs" not in diff.augment and diff.patch_size == 96
    unchanged = {field: getattr(diff, field) for field in recipes.MODEL_BUDGETS["real"]["fc_siam_conc"]}
    assert conc.replace(**unchanged, deviations=()) == diff.replace(deviations=())   # nothing else differs
    assert "no-change pairs 25%" in conc.describe() and "bands B02/B03/B04/B08" in conc.describe()
    assert "no-change pairs" not in diff.describe() and "bands" not in diff.describe()
    assert recipes.get_recipe("fc_siam_conc", profile="real", overrides=["optical_bands=null"]).optical_bands is None


def test_a_results_caption_names_the_bands_only_where_they_differ_from_the_paper():
    paper = recipes.get_recipe("fusion_da", profile="full")
    assert paper.optical_bands is not None and "bands" not in paper.describe()
    assert ", bands all," in recipes.get_recipe("fusion_da", overrides=["optical_bands=null"]).describe()
    assert ", bands B02/B03/B04," in recipes.get_recipe("fc_ef", overrides=["optical_bands=[B02, B03, B04]"]).describe()


def test_overrides_are_typed_listed_and_unknown_fields_refused():
    r = recipes.get_recipe("fc_siam_diff", profile="quick", overrides=["lr=1e-4", "epochs=2"])
    assert r.lr == 1e-4 and r.epochs == 2
    assert any("set by the user" in d for d in r.deviations)
    with pytest.raises(ConfigError, match="unknown field"):
        recipes.get_recipe("fc_siam_diff", overrides={"learning_rate": 1})
    with pytest.raises(ConfigError, match="field=value"):
        recipes.parse_overrides(["lr"])
    with pytest.raises(ConfigError, match="no recipe lists"):
        recipes.get_recipe("no_such_model")


def test_recipe_augment_switches_reach_the_loader_and_unknown_ones_are_refused():
    r = recipes.get_recipe("fc_siam_conc", profile="quick",
                           overrides=["augment={flips: false, rot90: true, swap_dates: true}"])
    aug = experiments._augment(r)
    assert (aug.hflip, aug.vflip, aug.rot90, aug.gamma, aug.swap_dates) == (False, False, True, False, True)
    assert not experiments._augment(recipes.get_recipe("fc_siam_conc", profile="quick")).swap_dates
    r = recipes.get_recipe("fc_siam_conc", overrides=["augment={flips: true, identity_pairs: 0.25}"])
    assert experiments._augment(r).identity_pairs == 0.25
    with pytest.raises(ConfigError, match=r"unknown augment key\(s\) \['swap'\]"):
        recipes.get_recipe("fc_siam_conc", overrides=["augment={swap: true}"])


# ------------------------------------------------------------------------------------- folds
def test_leave_sites_out_partitions_the_test_sites_without_overlap():
    sites = ["a", "b", "c", "d", "e", "f"]
    folds = experiments.leave_sites_out(sites, n_test=2, n_val=1)
    assert sorted(s for f in folds for s in f.test) == sites
    for f in folds:
        assert not (set(f.test) & set(f.val)) and not (set(f.train) & (set(f.test) | set(f.val)))
        assert len(f.train) == 3
    with pytest.raises(ConfigError, match="cannot give"):
        experiments.leave_sites_out(["a", "b", "c"], n_test=2, n_val=1)


def test_run_experiment_refuses_a_site_in_two_roles():
    a, b = _city("a", 1), _city("b", 2)
    with pytest.raises(ConfigError, match="both train and test"):
        experiments.run_experiment("fc_siam_diff", [a], [b], [a], profile="quick")


def test_a_recipe_can_be_compared_on_the_validation_sites_alone():
    """No test scenes: the run is scored on its validation site only (no test table to peek at)."""
    train_s, val_s = [_city("t0", 0)], [_city("v", 10)]
    run = experiments.run_experiment("fc_siam_diff", train_s, val_s, [], profile="quick", device="cpu",
                                     overrides={"epochs": 1, "steps_per_epoch": 1, "patch_size": 32})
    assert run.test_table is None and run.predictions == {} and np.isnan(run.f1("test"))
    assert run.val_table is not None and "no test scenes; validation F1" in run.summary()
    with pytest.raises(ConfigError, match="nothing would be scored"):
        experiments.run_experiment("fc_siam_diff", train_s, [], [], profile="quick", validation=False)


def test_random_sampler_per_scene_counts():
    s = [_city("a", 1), _city("b", 2)]
    ds = SceneDataset(s, RandomSampler(16, n_per_scene=[3, 1]))
    assert len(ds) == 4 and ds.sites == ["a", "b"]
    with pytest.raises(ConfigError, match="counts for"):
        SceneDataset(s, RandomSampler(16, n_per_scene=[3]))


@pytest.mark.slow
def test_run_experiment_learns_and_chooses_threshold_on_validation():
    train_s = [_city(f"t{k}", k) for k in range(3)]
    val_s, test_s = [_city("v", 10)], [_city("x", 11)]
    result = experiments.run_experiment(
        "fc_siam_diff", train_s, val_s, test_s, profile="quick",
        overrides={"epochs": 4, "steps_per_epoch": 6, "patch_size": 32, "lr": 3e-3}, device="cpu")
    hist = result.history
    best = hist.loc[hist["epoch"] == result.fit.best_epoch].iloc[0]
    assert result.threshold == pytest.approx(best["val_best_threshold"])
    assert best["val_best_f1"] == hist["val_best_f1"].max()
    assert result.model.input_contract is result.contract and result.contract.optical_norm == "dataset"
    assert result.f1() > 2 * 0.085  # far above the all-change F1 of a 14x14 square in 48x48
    q, cva = experiments.cva_experiment(val_s, test_s, bands=("B02", "B03", "B04", "B08"))
    assert 80 <= q < 100 and "pooled" in cva.index
    assert "pass train_scenes" in experiments.estimate_full_time(result)  # grid epochs: length from data
    full = recipes.get_recipe("fc_siam_diff", profile="full")
    big = [_city("big", 5, size=190)]  # grid starts 0, 47, 94 per axis: 9 patches, ceil(9/32) = 1 step
    assert experiments.full_recipe_steps(full, big) == 50
    assert "50 steps" in experiments.estimate_full_time(result, train_scenes=big)


def test_ensemble_recipe_averages_member_probabilities_and_rechooses_the_threshold():
    import torch

    from urbankit.models import ProbabilityEnsemble

    train_s = [_city(f"t{k}", k) for k in range(2)]
    val_s, test_s = [_city("v", 10)], [_city("x", 11)]
    result = experiments.run_experiment(
        "fc_siam_diff", train_s, val_s, test_s, profile="quick", device="cpu",
        overrides={"epochs": 2, "steps_per_epoch": 3, "patch_size": 32, "ensemble": 2})
    model = result.model
    assert isinstance(model, ProbabilityEnsemble) and len(model.members) == 2
    assert len(result.member_fits) == 2 and result.steps == 2 * 2 * 3
    assert "ensemble of 2 runs" in result.recipe.describe() and "+" in result.summary()
    a, b = model.members
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # other seeds
    batch = {k: torch.rand(1, 4, 32, 32) for k in model.input_keys}
    with torch.no_grad():
        model.eval()
        mean = (torch.sigmoid(a(batch)["change"]) + torch.sigmoid(b(batch)["change"])) / 2
        assert torch.allclose(torch.sigmoid(model(batch)["change"]), mean, atol=1e-6)
    # the threshold is the best-F1 threshold of the averaged probabilities on the validation patches
    loader = experiments.make_eval_loader(result.recipe, val_s, result.contract)
    sweep = train.evaluate(model, loader, device="cpu", sweep=True)["sweep"]
    assert result.threshold == pytest.approx(sweep.best_threshold("f1")[0])
    with pytest.raises(ConfigError, match="ensemble must be a positive int"):
        recipes.get_recipe("fc_siam_diff", overrides={"ensemble": 0})
    with pytest.raises(ConfigError, match="different inputs"):
        ProbabilityEnsemble([a, build("unet", optical_channels=4)])


def test_same_seed_gives_the_same_weights_whatever_the_global_random_state():
    """The initial weights are seeded too: a run does not depend on what ran before it."""
    import torch

    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 10)], [_city("x", 11)]
    options = {"profile": "quick", "device": "cpu",
               "overrides": {"epochs": 1, "steps_per_epoch": 1, "patch_size": 32}}
    torch.manual_seed(123)
    first = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, seed=4, **options)
    torch.rand(1000)  # another global random state before the second run
    again = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, seed=4, **options)
    other = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, seed=5, **options)
    pairs = list(zip(first.model.parameters(), again.model.parameters()))
    assert all(torch.equal(p, q) for p, q in pairs)
    assert any(not torch.equal(p, q) for p, q in zip(first.model.parameters(), other.model.parameters()))


def test_ensemble_members_checkpoint_in_their_own_folders_and_resume_from_latest(tmp_path):
    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 10)], [_city("x", 11)]
    options = {"profile": "quick", "device": "cpu", "checkpoint_dir": tmp_path,
               "overrides": {"epochs": 1, "steps_per_epoch": 2, "patch_size": 32, "ensemble": 2}}
    first = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, **options)
    assert all(any((tmp_path / f"member{k}").iterdir()) for k in range(2))
    again = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, resume="latest", **options)
    assert again.threshold == pytest.approx(first.threshold)
    with pytest.raises(ConfigError, match="cannot resume from one checkpoint file"):
        experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, resume=tmp_path / "last.ckpt", **options)


def test_run_cache_reuses_only_the_same_run_and_keeps_its_training_time(tmp_path):
    """A finished run is loaded, not retrained; another seed, recipe value or scene content trains anew."""
    import torch

    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 10)], [_city("x", 11)]
    options = {"profile": "quick", "device": "cpu", "run_cache": tmp_path,
               "overrides": {"epochs": 2, "steps_per_epoch": 2, "patch_size": 32, "ensemble": 2}}
    first = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, **options)
    assert first.epochs_trained == 4  # 2 members x 2 epochs
    folders = list((tmp_path / "fc_siam_diff").iterdir())
    assert len(folders) == 1 and (folders[0] / "run.json").exists()
    assert all((folders[0] / f"member{k}" / "last.ckpt").exists() for k in range(2))
    torch.manual_seed(99)  # a cached run must not depend on the random state either
    again = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, **options)
    assert all(torch.equal(p, q) for p, q in zip(first.model.parameters(), again.model.parameters()))
    assert again.threshold == first.threshold and again.epochs_trained == 0
    assert again.seconds == pytest.approx(first.seconds)  # the epochs' recorded time, not the load time
    assert list(again.history["epoch"]) == [1, 2]
    changed_pixels = _city("t0", 0)
    changed_pixels["optical"][0, 0, 0, 0] += 0.01
    for changed in ({"seed": 1}, {"overrides": {**options["overrides"], "lr": 1e-4}},
                    {"train_scenes": [changed_pixels]}):
        kwargs = {**options, **changed}
        experiments.run_experiment("fc_siam_diff", kwargs.pop("train_scenes", train_s), val_s, test_s, **kwargs)
    assert len(list((tmp_path / "fc_siam_diff").iterdir())) == 4
    with pytest.raises(ConfigError, match="run_cache or checkpoint_dir"):
        experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, checkpoint_dir=tmp_path, **options)
    with pytest.raises(ConfigError, match="custom strategy"):
        experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, strategy=train.Supervised(), **options)


def test_run_cache_key_sees_every_scene_of_a_site_with_several_orbits(tmp_path):
    recipe = recipes.get_recipe("dsunet", profile="quick")
    orbit_a, orbit_b, val = _city("t0", 0), _city("t0", 1), [_city("v", 10)]
    other_b = _city("t0", 1)
    other_b["sar"][0, 0, 0, 0] -= 1.0
    key = experiments.cached_run_dir(tmp_path, "dsunet", recipe, [orbit_a, orbit_b], val, 0)
    assert key == experiments.cached_run_dir(tmp_path, "dsunet", recipe, [orbit_a, orbit_b], val, 0)
    assert key != experiments.cached_run_dir(tmp_path, "dsunet", recipe, [orbit_a, other_b], val, 0)
    assert key != experiments.cached_run_dir(tmp_path, "dsunet", recipe, [orbit_a], val, 0)


def test_percentile_rule_flags_each_citys_top_pixels_at_the_validation_percentile():
    val_s, test_s = [_city("v", 10)], [_city("x", 11)]
    maps = {s.attrs["site"]: s["change"].values + 0.01 * np.arange(s["change"].size).reshape(48, 48) / s["change"].size
            for s in val_s + test_s}
    maps["x"] = maps["x"] * 50.0  # another scale on the test city: the rule is per city, so no matter
    q, table = experiments.percentile_rule(maps, val_s, test_s, percentiles=(50.0, 80.0, 90.0, 95.0))
    assert q == 90.0  # 196 / 2304 = 8.5 % changed: the top 10 % holds every change pixel, the top 5 % too few
    row = table.loc["x"]
    assert row["recall"] == 1.0 and row["precision"] == pytest.approx(196 / 230, abs=0.01)
    with pytest.raises(ConfigError, match="no score map for site"):
        experiments.percentile_rule({"v": maps["v"]}, val_s, test_s)


def test_pooled_table_recomputes_scores_from_summed_counts():
    import pandas as pd

    def table(tp, fp, fn, tn, site):
        return pd.DataFrame([{"tp": tp, "fp": fp, "fn": fn, "tn": tn}, {"tp": tp, "fp": fp, "fn": fn, "tn": tn}],
                            index=pd.Index([site, "pooled"], name="site"))
    out = experiments.pooled_table([table(10, 10, 0, 80, "a"), table(0, 0, 10, 90, "b")])
    assert list(out.index) == ["a", "b", "pooled"]
    assert out.loc["pooled", "tp"] == 10 and out.loc["pooled", "f1"] == pytest.approx(2 * 10 / (20 + 10 + 10))


# ------------------------------------------------------------------------------------- resume
def _loader(seed=0):
    ds = SceneDataset([_city("a", 1)], GridSampler(16))
    return make_loader(ds, batch_size=4, seed=seed)


def test_resume_refuses_a_changed_learning_rate_or_seed_unless_overridden(tmp_path, capsys):
    model = build("fc_siam_diff", optical_channels=4, width=0.25)
    train.fit(model, _loader(), epochs=1, steps_per_epoch=1, lr=1e-3, seed=0, device="cpu", progress=False,
              amp=False, checkpoint_dir=tmp_path)
    for change in ({"lr": 5e-4}, {"seed": 1}):
        again = build("fc_siam_diff", optical_channels=4, width=0.25)
        kwargs = {"lr": 1e-3, "seed": 0, **change}
        with pytest.raises(CheckpointError, match=f"{next(iter(change))}: checkpoint"):
            train.fit(again, _loader(), epochs=2, steps_per_epoch=1, device="cpu", progress=False, amp=False,
                      checkpoint_dir=tmp_path, resume="latest", **kwargs)
    again = build("fc_siam_diff", optical_channels=4, width=0.25)
    out = train.fit(again, _loader(), epochs=2, steps_per_epoch=1, lr=5e-4, seed=0, device="cpu", progress=False,
                    amp=False, checkpoint_dir=tmp_path, resume="latest", resume_override=["lr"])
    assert "lr changed from 0.001" in capsys.readouterr().out
    assert out.history["lr"].iloc[-1] == pytest.approx(5e-4)
    with pytest.raises(ConfigError, match="unknown settings"):
        train.fit(again, _loader(), epochs=3, steps_per_epoch=1, lr=5e-4, device="cpu", progress=False,
                  amp=False, checkpoint_dir=tmp_path, resume="latest", resume_override=["learning_rate"])


# ------------------------------------------------------------------------------------- data root
def test_data_root_rule(tmp_path, monkeypatch):
    assert data_root_for("quick") is None
    assert data_root_for("real", tmp_path) == tmp_path
    with pytest.raises(ConfigError, match="not a folder"):
        data_root_for("real", tmp_path / "missing")
    monkeypatch.setenv("URBANKIT_REAL_DATA", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="profile 'real' reads real data"):
        data_root_for("real")
    monkeypatch.setenv("URBANKIT_DATA", str(tmp_path / "dl"))
    assert data_root_for("full") == tmp_path / "dl"


def test_single_date_scenes_label_each_date_with_the_built_rule():
    from urbankit.data.schema import is_built
    from urbankit.data.synthetic import make_site

    twin = make_site("t", size=32, n_dates=3, seed=1)
    ones = experiments.single_date_scenes(twin, dates=[0, 2], variables=["optical", "buildings"])
    assert [o.attrs["site"] for o in ones] == ["t 2019-01", "t 2019-03"] and ones[0].attrs["aoi"] == "t"
    assert list(ones[1].data_vars) == ["optical", "buildings"] and ones[1].sizes["time"] == 1
    np.testing.assert_array_equal(ones[1]["buildings"].values[0], is_built(twin["buildings"].values[2]))
    assert "change" not in experiments.single_date_scenes(twin)[0].data_vars
    with pytest.raises(ConfigError, match="no date 5"):
        experiments.single_date_scenes(twin, dates=[5])
    with pytest.raises(ConfigError, match="no 'buildings' label"):
        experiments.single_date_scenes(twin.drop_vars("buildings"))


def test_test_time_flips_average_the_four_flipped_views_and_rechoose_the_threshold():
    import torch

    from urbankit.models import FlipAverage

    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 10)], [_city("x", 11)]
    result = experiments.run_experiment(
        "fc_siam_diff", train_s, val_s, test_s, profile="quick", device="cpu",
        overrides={"epochs": 1, "steps_per_epoch": 2, "patch_size": 32, "test_time_flips": True})
    model = result.model
    assert isinstance(model, FlipAverage) and "test-time flips" in result.recipe.describe()
    assert model.input_contract is result.contract
    inner = model.model
    batch = {k: torch.rand(1, 4, 32, 40) for k in model.input_keys}  # not square: flips keep the shape
    with torch.no_grad():
        model.eval()
        views = []
        for dims in ((), (-1,), (-2,), (-2, -1)):
            out = inner({k: torch.flip(v, dims) if dims else v for k, v in batch.items()})["change"]
            views.append(torch.sigmoid(torch.flip(out, dims) if dims else out))
        expected = torch.stack(views).mean(0)
        got = torch.sigmoid(model(batch)["change"])
    assert got.shape == (1, 1, 32, 40)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, views[0], atol=1e-6)  # the views differ: averaging does something
    loader = experiments.make_eval_loader(result.recipe, val_s, result.contract)
    sweep = train.evaluate(model, loader, device="cpu", sweep=True)["sweep"]
    assert result.threshold == pytest.approx(sweep.best_threshold("f1")[0])
    assert result.threshold == pytest.approx(
        experiments.validation_threshold(model, result.recipe, val_s, device="cpu"))


def test_overrides_of_a_recipe_object_are_parsed_and_listed_like_get_recipes():
    recipe = recipes.get_recipe("fc_siam_diff", profile="quick").replace(patch_size=32)
    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 10)], [_city("x", 11)]
    result = experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, recipe=recipe, device="cpu",
                                        overrides=["epochs=1", "steps_per_epoch=1"])
    assert (result.recipe.epochs, result.recipe.steps_per_epoch) == (1, 1)
    assert "epochs = 1: set by the user" in result.recipe.deviations
