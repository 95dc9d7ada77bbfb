"""Metrics: hand-computed confusion matrices, edge cases, pooling, sweeps, tables (urbankit.metrics)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from urbankit.errors import ConfigError
from urbankit.metrics import (
    ConfusionCounter,
    ThresholdSweep,
    cohen_kappa,
    default_thresholds,
    mean_std_over_seeds,
    per_region_table,
    per_site_table,
    scores_from_counts,
)

# Ten pixels: TP at 0-2, FP at 3, FN at 4-5, TN at 6-9  ->  TP=3, FP=1, FN=2, TN=4
PRED = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
TRUTH = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], dtype=np.uint8)


def nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


# ----------------------------------------------------------------------------- counts and scores

def test_hand_computed_confusion_matrix_and_scores():
    c = ConfusionCounter().update(PRED, TRUTH)
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 1, 2, 4)
    assert c.confusion_matrix().tolist() == [[4, 1], [2, 3]]
    s = c.compute()
    assert s["precision"] == pytest.approx(3 / 4)
    assert s["recall"] == pytest.approx(3 / 5)
    assert s["f1"] == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))      # 2/3
    assert s["iou"] == pytest.approx(3 / 6)
    assert s["oa"] == pytest.approx(7 / 10)
    # kappa: p_o = 0.7, p_e = (4 * 5 + 6 * 5) / 100 = 0.5 -> (0.7 - 0.5) / (1 - 0.5) = 0.4
    assert s["kappa"] == pytest.approx(0.4)
    assert s["n"] == 10 and isinstance(s["tp"], int)


def test_fp_fn_are_not_swapped():
    """FP = pred AND NOT gt, FN = NOT pred AND gt (the DS U-Net code swaps them; METHODS.md §0.3)."""
    pred = np.array([1, 1, 1, 1, 1, 0])
    truth = np.array([1, 1, 0, 0, 0, 0])
    c = ConfusionCounter().update(pred.astype(bool), truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 3, 0, 1)
    s = c.compute()
    assert s["precision"] == pytest.approx(2 / 5)     # swapped counts would give 1.0
    assert s["recall"] == pytest.approx(1.0)          # swapped counts would give 0.4
    swapped = scores_from_counts(tp=2, fp=0, fn=3, tn=1)
    assert swapped["precision"] != pytest.approx(s["precision"])
    assert swapped["f1"] == pytest.approx(s["f1"])    # F1 cannot tell: why the bug went unnoticed


def test_kappa_hand_computed_second_example():
    # tp=20, fp=5, fn=10, tn=65: p_o = 0.85, p_e = (25*30 + 75*70) / 100^2 = 0.6 -> 0.25 / 0.4
    assert cohen_kappa(20, 5, 10, 65) == pytest.approx(0.625)
    # two raters who always disagree on a balanced set
    assert cohen_kappa(0, 2, 2, 0) == pytest.approx(-1.0)


def test_scores_from_counts_formula_version_agrees():
    tp, fp, fn, tn = 7, 3, 5, 85
    p, r = tp / (tp + fp), tp / (tp + fn)
    s = scores_from_counts(tp, fp, fn, tn)
    assert s["f1"] == pytest.approx(2 * p * r / (p + r))
    assert s["iou"] == pytest.approx(s["f1"] / (2 - s["f1"]))   # IoU = F1 / (2 - F1)


# ----------------------------------------------------------------------------- edge cases

def test_no_positives_in_truth_and_none_predicted_is_nan():
    s = ConfusionCounter().update(np.zeros(8, bool), np.zeros(8)).compute()
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (0, 0, 0, 8)
    for k in ("precision", "recall", "f1", "iou", "kappa"):
        assert nan(s[k]), k
    assert s["oa"] == 1.0


def test_undefined_convention_can_be_changed():
    s = scores_from_counts(0, 0, 0, 8, undefined=1.0)
    assert s["precision"] == s["recall"] == s["f1"] == s["iou"] == 1.0
    s0 = ConfusionCounter(0, 0, 0, 8).compute(undefined=0.0)
    assert s0["f1"] == 0.0


def test_no_positives_in_truth_some_predicted():
    s = scores_from_counts(tp=0, fp=2, fn=0, tn=6)
    assert s["precision"] == 0.0 and nan(s["recall"]) and s["f1"] == 0.0 and s["iou"] == 0.0
    assert s["kappa"] == 0.0 and s["oa"] == pytest.approx(0.75)


def test_positives_in_truth_none_predicted():
    """Predicting nothing on a site with change: precision undefined, but F1 is 0, not NaN."""
    s = scores_from_counts(tp=0, fp=0, fn=3, tn=5)
    assert nan(s["precision"]) and s["recall"] == 0.0 and s["f1"] == 0.0 and s["iou"] == 0.0
    assert s["kappa"] == 0.0


def test_all_positive_and_predicted():
    s = ConfusionCounter().update(np.ones(5, bool), np.ones(5)).compute()
    assert s["precision"] == s["recall"] == s["f1"] == s["iou"] == s["oa"] == 1.0
    assert nan(s["kappa"])       # chance agreement p_e = 1: kappa undefined


def test_all_correct_and_all_wrong():
    truth = np.array([1, 1, 0, 0, 0, 1])
    right = ConfusionCounter().update(truth.astype(bool), truth).compute()
    assert right["precision"] == right["recall"] == right["f1"] == right["iou"] == right["oa"] == 1.0
    assert right["kappa"] == pytest.approx(1.0)
    wrong = ConfusionCounter().update(~truth.astype(bool), truth).compute()
    assert wrong["precision"] == wrong["recall"] == wrong["f1"] == wrong["iou"] == wrong["oa"] == 0.0
    assert wrong["kappa"] == pytest.approx(-1.0)


def test_empty_input():
    c = ConfusionCounter().update(np.zeros((0,), np.float32), np.zeros((0,)))
    s = c.compute()
    assert s["n"] == 0
    assert all(nan(s[k]) for k in ("precision", "recall", "f1", "iou", "oa", "kappa"))
    assert all(nan(v) for v in scores_from_counts(0, 0, 0, 0).values())


def test_scores_from_counts_rejects_bad_counts_and_handles_huge_ones():
    with pytest.raises(ConfigError, match="fp must be a non-negative integer"):
        scores_from_counts(1, -1, 0, 0)
    with pytest.raises(ConfigError, match="tp must be a non-negative integer"):
        scores_from_counts(1.5, 0, 0, 0)
    big = 2 ** 40           # far beyond int32: a continent of 10 m pixels
    s = scores_from_counts(big, big, big, 5 * big)
    assert s["precision"] == 0.5 and s["f1"] == 0.5 and s["oa"] == pytest.approx(0.75)
    assert np.isfinite(s["kappa"])


# ----------------------------------------------------------------------------- pooling

def test_pooled_counts_differ_from_mean_of_per_batch_f1():
    # batch 1: one change pixel, found. batch 2: nine change pixels, all missed.
    batches = [
        (np.array([1, 0, 0, 0], bool), np.array([1, 0, 0, 0])),
        (np.zeros(10, bool), np.array([1] * 9 + [0])),
    ]
    pooled = ConfusionCounter()
    per_batch_f1 = []
    for pred, truth in batches:
        pooled.update(pred, truth)
        per_batch_f1.append(ConfusionCounter().update(pred, truth).compute()["f1"])
    assert per_batch_f1 == [1.0, 0.0]
    assert np.mean(per_batch_f1) == 0.5
    assert pooled.compute()["f1"] == pytest.approx(2 / 11)   # TP=1, FN=9: 2 / (2 + 9)


def test_counters_add_and_sum_and_reset():
    a = ConfusionCounter().update(PRED, TRUTH)
    b = ConfusionCounter().update(~PRED, TRUTH)
    total = a + b
    # ~PRED against TRUTH: TP at 4-5, FP at 6-9, FN at 0-2, TN at 3
    assert (b.tp, b.fp, b.fn, b.tn) == (2, 4, 3, 1)
    assert (total.tp, total.fp, total.fn, total.tn) == (3 + 2, 1 + 4, 2 + 3, 4 + 1)
    assert sum([a, b]) == total
    a2 = ConfusionCounter().update(PRED, TRUTH)
    a2 += b
    assert a2 == total
    both = ConfusionCounter().update(np.concatenate([PRED, ~PRED]), np.concatenate([TRUTH, TRUTH]))
    assert both == total
    total.reset()
    assert total.n == 0


# ----------------------------------------------------------------------------- inputs

def test_logits_probabilities_threshold_and_strict_comparison():
    probs = np.array([0.9, 0.5, 0.51, 0.2], dtype=np.float32)
    truth = np.array([1, 1, 0, 0])
    c = ConfusionCounter().update(probs, truth, from_logits=False)       # 0.5 is NOT > 0.5
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 1)
    logits = np.log(probs / (1 - probs))
    assert ConfusionCounter().update(logits, truth) == c
    c7 = ConfusionCounter().update(probs, truth, threshold=0.7, from_logits=False)
    assert (c7.tp, c7.fp, c7.fn, c7.tn) == (1, 0, 1, 2)
    with pytest.raises(ConfigError, match="threshold"):
        ConfusionCounter().update(probs, truth, threshold=1.5)


def test_torch_numpy_xarray_agree_and_shapes_with_channel():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 1, 8, 8)).astype(np.float32)
    truth = (rng.random((3, 8, 8)) > 0.6).astype(np.float32)        # (B, H, W) vs (B, 1, H, W)
    a = ConfusionCounter().update(logits, truth)
    b = ConfusionCounter().update(torch.from_numpy(logits), torch.from_numpy(truth))
    c = ConfusionCounter().update(torch.from_numpy(logits), truth)     # mixed
    xr = pytest.importorskip("xarray")
    d = ConfusionCounter().update(xr.DataArray(logits), xr.DataArray(truth))
    assert a == b == c == d
    assert a.n == 3 * 64


def test_mask_excludes_pixels_and_nan_labels_need_a_mask():
    probs = np.array([0.9, 0.9, 0.1, 0.1])
    truth = np.array([1.0, np.nan, 1.0, 0.0])
    with pytest.raises(ConfigError, match="target contains NaN"):
        ConfusionCounter().update(probs, truth, from_logits=False)
    mask = ~np.isnan(truth)
    c = ConfusionCounter().update(probs, truth, from_logits=False, mask=mask)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 0, 1, 1)
    ct = ConfusionCounter().update(torch.tensor(probs), torch.tensor(truth), from_logits=False,
                                   mask=torch.tensor(mask))
    assert ct == c


def test_nan_predictions_raise():
    with pytest.raises(ConfigError, match="predictions contain NaN"):
        ConfusionCounter().update(np.array([np.nan, 0.0]), np.array([1, 0]))
    with pytest.raises(ConfigError, match="predictions contain NaN"):
        ThresholdSweep().update(torch.tensor([np.nan, 0.0]), torch.tensor([1, 0]))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ConfigError, match=r"shape \(2, 1, 4, 4\).*shape \(2, 5, 5\)"):
        ConfusionCounter().update(np.zeros((2, 1, 4, 4)), np.zeros((2, 5, 5)))
    with pytest.raises(ConfigError, match="mask has shape"):
        ConfusionCounter().update(np.zeros((4,)), np.zeros((4,)), mask=np.ones(3, bool))
    with pytest.raises(ConfigError, match="mask has shape"):   # same size, other layout: no silent reshape
        ConfusionCounter().update(np.zeros((4, 8)), np.zeros((4, 8)), mask=np.ones((8, 4), bool))
    c = ConfusionCounter().update(np.ones((2, 1, 3)), np.ones((2, 3)), mask=np.ones((2, 3, 1), bool))
    assert c.tp == 6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_counts_on_cuda_match_cpu():
    torch.manual_seed(0)
    logits = torch.randn(4, 1, 32, 32)
    y = (torch.rand(4, 1, 32, 32) > 0.8).float()
    assert ConfusionCounter().update(logits.cuda(), y.cuda()) == ConfusionCounter().update(logits, y)
    s_gpu = ThresholdSweep().update(logits.cuda(), y.cuda())
    s_cpu = ThresholdSweep().update(logits, y)
    for k, v in s_cpu.counts().items():
        assert np.array_equal(v, s_gpu.counts()[k])


# ----------------------------------------------------------------------------- threshold sweep

def test_default_thresholds():
    t = default_thresholds()
    assert t.size == 101 and t[0] == 0.0 and t[-1] == 1.0 and t[66] == 0.66


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_sweep_equals_counter_at_every_threshold(lib):
    rng = np.random.default_rng(1)
    probs = rng.random((2, 1, 20, 20)).astype(np.float32)
    probs.flat[:101] = default_thresholds().astype(np.float32)      # values exactly on thresholds
    probs.flat[101] = 0.0
    probs.flat[102] = 1.0
    truth = (rng.random((2, 1, 20, 20)) > 0.7).astype(np.float32)
    if lib == "torch":
        probs, truth = torch.from_numpy(probs), torch.from_numpy(truth)
    sweep = ThresholdSweep().update(probs[:1], truth[:1], from_logits=False)
    sweep.update(probs[1:], truth[1:], from_logits=False)      # accumulates over batches
    counts = sweep.counts()
    for j, t in enumerate(default_thresholds()):
        ref = ConfusionCounter().update(probs, truth, threshold=float(t), from_logits=False)
        got = tuple(int(counts[k][j]) for k in ("tp", "fp", "fn", "tn"))
        assert got == (ref.tp, ref.fp, ref.fn, ref.tn), t
        assert sweep.counter_at(float(t)) == ref


def test_sweep_best_threshold_hand_example():
    # positives at 0.95, 0.75, 0.35; negatives at 0.85, 0.25, 0.15
    probs = np.array([0.95, 0.75, 0.35, 0.85, 0.25, 0.15])
    truth = np.array([1, 1, 1, 0, 0, 0])
    sweep = ThresholdSweep().update(probs, truth, from_logits=False)
    table = sweep.compute()
    assert list(table.columns[:5]) == ["threshold", "tp", "fp", "fn", "tn"]
    assert len(table) == 101
    # thresholds 0.25..0.34 predict {0.95, 0.75, 0.35, 0.85}: TP 3, FP 1 -> F1 = 6/7, the maximum
    t, f1 = sweep.best_threshold()
    assert t == pytest.approx(0.25) and f1 == pytest.approx(6 / 7)   # ties: the lowest threshold
    assert table.loc[table.threshold == 0.5, "f1"].item() == pytest.approx(4 / 6)
    assert table.loc[table.threshold == 1.0, "tp"].item() == 0


def test_sweep_add_and_errors():
    rng = np.random.default_rng(2)
    p1, p2 = rng.random(50), rng.random(50)
    y1, y2 = rng.random(50) > 0.5, rng.random(50) > 0.5
    a = ThresholdSweep().update(p1, y1, from_logits=False)
    b = ThresholdSweep().update(p2, y2, from_logits=False)
    both = ThresholdSweep().update(np.concatenate([p1, p2]), np.concatenate([y1, y2]), from_logits=False)
    merged = sum([a, b])
    for k in ("tp", "fp", "fn", "tn"):
        assert np.array_equal(merged.counts()[k], both.counts()[k])
    with pytest.raises(ConfigError, match="different thresholds"):
        _ = a + ThresholdSweep([0.1, 0.5])
    with pytest.raises(ConfigError, match="no pixels"):
        ThresholdSweep().best_threshold()
    with pytest.raises(ConfigError, match="strictly increasing"):
        ThresholdSweep([0.5, 0.2])
    with pytest.raises(ConfigError, match="not one of the sweep's thresholds"):
        a.counter_at(0.555)
    with pytest.raises(ConfigError, match="boolean"):
        ThresholdSweep().update(np.ones(3, bool), np.ones(3))
    custom = ThresholdSweep([0.2, 0.6]).update(np.array([0.5]), np.array([1]), from_logits=False)
    assert custom.counter_at(0.2).tp == 1 and custom.counter_at(0.6).fn == 1


# ----------------------------------------------------------------------------- tables

def _site_results():
    return {
        "a": ConfusionCounter(tp=8, fp=2, fn=2, tn=88),
        "b": ConfusionCounter(tp=1, fp=1, fn=8, tn=90),
        "c": ConfusionCounter(tp=0, fp=0, fn=0, tn=100),     # a site without change
    }


def test_per_site_table_rows_and_pooled_row():
    table = per_site_table(_site_results(), regions={"a": "EU", "b": "EU", "c": "AS"})
    assert list(table.index) == ["a", "b", "c", "pooled"]
    assert table.loc["a", "f1"] == pytest.approx(0.8)
    assert table.loc["b", "f1"] == pytest.approx(2 / 11)
    assert math.isnan(table.loc["c", "f1"])
    pooled = table.loc["pooled"]
    assert (pooled.tp, pooled.fp, pooled.fn, pooled.tn, pooled.n) == (9, 3, 10, 278, 300)
    assert pooled.f1 == pytest.approx(18 / 31)
    assert table.loc["pooled", "region"] == "all"
    # the mean over sites skips the undefined one
    assert table.loc[["a", "b", "c"], "f1"].mean() == pytest.approx((0.8 + 2 / 11) / 2)


def test_per_region_table():
    table = per_region_table(list(_site_results().items()), regions={"a": "EU", "b": "EU", "c": "AS"})
    assert list(table.index) == ["EU", "AS", "pooled"]
    assert table.loc["EU", "n_sites"] == 2 and table.loc["EU", "tp"] == 9
    assert table.loc["EU", "f1"] == pytest.approx(18 / 31)
    assert math.isnan(table.loc["AS", "f1"])
    assert table.loc["pooled", "n_sites"] == 3
    with pytest.raises(ConfigError, match="site 'c' has no entry"):
        per_region_table(_site_results(), regions={"a": "EU", "b": "EU"})
    with pytest.raises(ConfigError, match="empty"):
        per_site_table({})


def test_mean_std_over_seeds_formatting():
    df = pd.DataFrame({
        "model": ["mmcr"] * 3 + ["unet"],
        "seed": [0, 1, 2, 0],
        "f1": [0.539, 0.555, 0.571, 0.4],
        "precision": [0.6, 0.6, 0.6, 0.5],
    })
    out = mean_std_over_seeds(df, "model", ["f1", "precision"])
    assert out.loc["mmcr", "f1"] == "0.555 ± 0.016"
    assert out.loc["mmcr", "precision"] == "0.600 ± 0.000"
    assert out.loc["mmcr", "n_runs"] == 3
    assert out.loc["unet", "f1"] == "0.400"          # one run: no standard deviation
    num = mean_std_over_seeds(df, ["model"], "f1", formatted=False)
    assert num.loc["mmcr", "f1_mean"] == pytest.approx(0.555)
    assert num.loc["mmcr", "f1_std"] == pytest.approx(0.016)
    with pytest.raises(ConfigError, match="not in the table"):
        mean_std_over_seeds(df, "network", "f1")
