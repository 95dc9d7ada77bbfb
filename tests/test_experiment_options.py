"""run_experiment's options for chapters 06-09: unlabelled scenes, no validation sites, further heads,
per-model strategies and set-up hooks, several models in one call, scores pooled per group of sites."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_experiments import _city  # scenes whose change is a bright square

from urbankit import experiments, recipes, train
from urbankit.errors import ConfigError

FAST = {"epochs": 2, "steps_per_epoch": 2, "patch_size": 32, "batch_size": 4}


def _parts(loader):
    ds = loader.dataset
    return [len(d) for d in ds.datasets], [bool(d[0]["labelled"]) for d in ds.datasets]


def test_unlabelled_scenes_are_balanced_or_weighted_like_every_scene():
    recipe = recipes.get_recipe("fc_siam_diff", profile="quick", overrides=FAST)
    labelled, unlabelled = [_city("a", 1), _city("b", 2)], [_city(f"u{k}", 10 + k) for k in range(4)]
    contract = experiments.make_contract(recipe, labelled, ["optical"])
    plain = experiments.make_train_loader(recipe, labelled, contract, seed=0)
    assert not hasattr(plain.dataset, "datasets") and plain.batch_size == 4  # the old loader, unchanged
    balanced = experiments.make_train_loader(recipe, labelled, contract, 0, unlabelled_scenes=unlabelled)
    (n_lab, n_unl), flags = _parts(balanced)
    assert flags == [True, False] and n_lab == n_unl == 8 and balanced.batch_size == 8  # 2 steps x 4 each
    batch = next(iter(balanced))
    assert 0 < int(batch["labelled"].sum()) < 8
    even = experiments.make_train_loader(recipe, labelled, contract, 0, unlabelled_scenes=unlabelled,
                                         balance_unlabelled=False)
    (n_lab, n_unl), _ = _parts(even)
    assert (n_lab / 2, n_unl / 4) == (2, 2) and even.batch_size == 4  # the same patches per scene


def test_run_without_validation_keeps_the_last_epoch_at_the_fixed_threshold(monkeypatch):
    train_s, test_s = [_city("t0", 0), _city("t1", 1)], [_city("x", 11)]
    calls, fit = [], train.fit

    def spy(*args, **kwargs):
        calls.append((args[2], kwargs.get("restore_best", True)))
        return fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", spy)
    with pytest.raises(ConfigError, match="no val scenes"):
        experiments.run_experiment("fc_siam_diff", train_s, [], test_s, overrides=FAST, device="cpu")
    with pytest.raises(ConfigError, match="validation=False, but validation scenes"):
        experiments.run_experiment("fc_siam_diff", train_s, [_city("v", 3)], test_s, validation=False,
                                   overrides=FAST, device="cpu")
    result = experiments.run_experiment("fc_siam_diff", train_s, [], test_s, validation=False, overrides=FAST,
                                        device="cpu")
    assert result.val_table is None and np.isnan(result.f1("val")) and result.threshold == 0.5
    assert result.recipe.threshold == "fixed" and "no validation sites" in result.recipe.deviations[-1]
    assert "no validation sites" in result.summary() and "val_f1" not in result.history
    assert calls == [(None, False)]  # no validation loader, and the last epoch's weights are kept
    with pytest.raises(ConfigError, match="no val table"):
        experiments.scores_table({"fc": result}, split="val")


def test_unlabelled_run_with_a_strategy_for_the_built_model_and_further_heads(monkeypatch):
    from urbankit import inference

    calls = []
    original = inference.predict

    def counting_predict(model, inputs, **kw):
        calls.append(getattr(inputs, "attrs", {}).get("site"))
        return original(model, inputs, **kw)

    monkeypatch.setattr(inference, "predict", counting_predict)
    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 3)], [_city("x", 11)]
    unlabelled = [_city("u0", 20)]
    seen = {}

    def strategy_for(model):
        seen["strategy"] = model
        return train.Supervised(loss="power_jaccard")

    def configure(model):
        seen["configured"] = model
        model.inference_window = 32

    result = experiments.run_experiment(
        "fc_siam_diff", train_s, val_s, test_s, overrides=FAST, device="cpu", unlabelled_scenes=unlabelled,
        strategy_for=strategy_for, configure_model=configure, score_outputs={"change": "change"})
    assert seen["strategy"] is seen["configured"] is result.model and result.model.inference_window == 32
    assert list(result.output_tables) == ["change"]
    pd.testing.assert_frame_equal(result.output_tables["change"], result.test_table)
    assert calls.count("x") == 1  # one forward pass of the test scene serves every scored head
    with pytest.raises(ConfigError, match="both test and unlabelled"):
        experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, unlabelled_scenes=test_s,
                                   overrides=FAST, device="cpu")
    with pytest.raises(ConfigError, match="strategy or strategy_for"):
        experiments.run_experiment("fc_siam_diff", train_s, val_s, test_s, strategy=train.Supervised(),
                                   strategy_for=strategy_for, overrides=FAST, device="cpu")


def test_run_models_trains_each_configuration_and_tables_their_scores():
    train_s, val_s, test_s = [_city("t0", 0)], [_city("v", 3)], [_city("x", 11), _city("y", 12)]
    lines = []
    results = experiments.run_models({"diff": "fc_siam_diff", "ef": ("fc_ef", {"seed": 3})}, train_s, val_s,
                                     test_s, overrides=FAST, device="cpu", progress=lines.append)
    assert [r.model_name for r in results.values()] == ["fc_siam_diff", "fc_ef"] and results["ef"].seed == 3
    assert len(lines) == 2 and lines[1].startswith("ef: fc_ef (seed 3)")
    table = experiments.scores_table(results)
    assert list(table.index) == ["diff", "ef"] and table.loc["ef", "f1"] == results["ef"].f1()


def test_pooled_groups_sums_the_counts_of_each_group():
    table = pd.DataFrame({"tp": [1, 3, 5], "fp": [1, 0, 5], "fn": [0, 1, 0], "tn": [8, 6, 0]},
                         index=["a", "b", "pooled"])
    out = experiments.pooled_groups(table, {"first": ["a"], "both": ["a", "b"]})
    assert out.loc["both", ["tp", "fp", "fn", "tn", "n"]].tolist() == [4, 1, 1, 14, 20]
    assert out.loc["both", "f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))
    assert out.loc["first", "precision"] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="group 'x': no row for site"):
        experiments.pooled_groups(table, {"x": ["c"]})
