"""Tests of urbankit.noise: exact counts, determinism by seed, rate 0 = identity, the sweep."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from urbankit import noise
from urbankit.errors import ConfigError, UrbankitError


def _images(shape=(3, 20, 30), seed=0) -> np.ndarray:
    # values strictly inside (0.1, 0.9): no pixel equals the max (1.0) or the min (0) by chance
    return np.random.default_rng(seed).uniform(0.1, 0.9, size=shape).astype(np.float32)


@pytest.mark.parametrize("rate, expected_rows", [(0.1, 2), (0.5, 10), (0.26, 5), (1.0, 20)])
def test_strip_rows_exact_count_same_rows_all_bands(rate, expected_rows):
    x = _images()
    y = noise.strip_noise(x, rate, 0)
    full = np.all(y == 1.0, axis=2)                      # (C, H): row entirely at max
    assert full.sum(axis=1).tolist() == [expected_rows] * 3
    assert (full == full[:1]).all()                      # same rows on every band
    changed = np.any(y != x, axis=(0, 2))
    assert changed.sum() == expected_rows                # nothing outside those rows
    assert np.array_equal(x, _images())                  # input untouched


def test_strip_columns_and_uint8_max():
    x = (np.arange(3 * 10 * 40) % 200).astype(np.uint8).reshape(3, 10, 40)
    y = noise.strip_noise(x, 0.25, 1, axis="columns")
    assert y.dtype == np.uint8
    cols = np.all(y == 255, axis=(0, 1))
    assert cols.sum() == 10                              # floor(0.25 * 40)
    assert np.array_equal(y[:, :, ~cols], x[:, :, ~cols])


def test_strip_offset_mode_changes_only_rows_and_clips():
    x = _images((2, 16, 16))
    y = noise.strip_noise(x, 0.25, 3, mode="offset", sigma=0.5)
    changed_rows = np.any(y != x, axis=(0, 2))
    assert changed_rows.sum() <= 4 and changed_rows.sum() >= 1
    assert y.min() >= 0.0 and y.max() <= 1.0


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.333])
def test_salt_exact_pixel_count(rate):
    x = _images((4, 25, 16))
    y = noise.salt_noise(x, rate, 7)
    n = int(np.floor(rate * 25 * 16))
    salted = np.all(y == 1.0, axis=0)
    assert salted.sum() == n
    assert np.any(y != x, axis=0).sum() == n             # every band at the same locations


def test_salt_and_pepper_split():
    x = _images((3, 10, 11))
    y = noise.salt_and_pepper_noise(x, 0.5, 2)           # n = floor(55) = 55 -> 27 pepper, 28 salt
    assert np.all(y == 0.0, axis=0).sum() == 27
    assert np.all(y == 1.0, axis=0).sum() == 28
    assert np.any(y != x, axis=0).sum() == 55


@pytest.mark.parametrize("fn", [noise.strip_noise, noise.salt_noise, noise.salt_and_pepper_noise,
                                noise.speckle_noise, noise.cloud_noise])
def test_rate_zero_is_identity_and_seed_determinism(fn):
    x = _images((2, 3, 32, 32))
    y0 = fn(x, 0.0, 5)
    assert np.array_equal(y0, x) and y0 is not x
    a, b, c = fn(x, 0.3, 11), fn(x, 0.3, 11), fn(x, 0.3, 12)
    assert np.array_equal(a, b, equal_nan=True)
    assert not np.array_equal(a, c, equal_nan=True)
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    assert np.array_equal(fn(x, 0.3, g1), fn(x, 0.3, g2), equal_nan=True)


def test_batch_draws_independently_per_image():
    x = np.stack([_images((3, 40, 40))] * 2)
    y = noise.strip_noise(x, 0.5, 0)
    rows0 = np.all(y[0] == 1.0, axis=(0, 2))
    rows1 = np.all(y[1] == 1.0, axis=(0, 2))
    assert rows0.sum() == rows1.sum() == 20
    assert not np.array_equal(rows0, rows1)


def test_torch_tensor_roundtrip():
    x = torch.from_numpy(_images((1, 3, 16, 16)))
    y = noise.salt_noise(x, 0.25, 0)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == x.shape
    assert int(torch.all(y[0] == 1.0, dim=0).sum()) == 64
    assert torch.equal(x, torch.from_numpy(_images((1, 3, 16, 16))))


def test_speckle_statistics():
    x = np.full((1, 200, 200), 0.5, dtype=np.float32)
    y = noise.speckle_noise(x, 0.2, 0, clip=False)
    ratio = y / 0.5
    assert abs(ratio.mean() - 1.0) < 0.01                # mean-1 multiplicative factor
    assert abs(ratio.std() - 0.2) < 0.01                 # std = rate
    assert noise.speckle_noise(x * 2, 0.9, 0).max() <= 1.0


def test_cloud_mask_exact_and_blobby():
    m = noise.cloud_mask((64, 48), 0.3, 0)
    assert m.sum() == int(np.floor(0.3 * 64 * 48))
    # smooth blobs: far fewer cloud/clear boundaries than for random pixels of the same count
    edges = np.sum(m[1:] != m[:-1]) + np.sum(m[:, 1:] != m[:, :-1])
    assert edges < 0.2 * (63 * 48 + 64 * 47)


def test_cloud_noise_nan_fill():
    x = _images((3, 32, 32))
    y = noise.cloud_noise(x, 0.25, 0, fill="nan")
    assert np.all(np.isnan(y), axis=0).sum() == 256
    assert np.isnan(y).sum() == 3 * 256
    with pytest.raises(ConfigError, match="float images"):
        noise.cloud_noise((x * 255).astype(np.uint8), 0.1, 0, fill="nan")


def test_errors():
    x = _images()
    with pytest.raises(UrbankitError, match="rate must be in"):
        noise.salt_noise(x, 1.5, 0)
    with pytest.raises(ConfigError, match="shape"):
        noise.strip_noise(np.zeros((5, 5)), 0.1, 0)
    with pytest.raises(ConfigError, match="unknown corruption 'fog'"):
        noise.corrupt(x, "fog", 0.1, 0)
    with pytest.raises(ConfigError, match="rng"):
        noise.salt_noise(x, 0.1, -3)


def _samples():
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2):
        t1 = rng.uniform(0.1, 0.4, size=(3, 16, 16)).astype(np.float32)
        t2 = t1.copy()
        t2[:, 4:10, 4:10] = 0.8                          # a new bright building
        label = np.zeros((16, 16), np.uint8)
        label[4:10, 4:10] = 1
        out.append({"optical_t1": t1, "optical_t2": t2, "change": label})
    return out


def _oracle(sample):
    # "change" wherever t2 is much brighter than t1 (perfect on clean pairs)
    return (sample["optical_t2"].mean(0) - sample["optical_t1"].mean(0) > 0.3).astype(np.float32)


def test_robustness_sweep_known_answers():
    df = noise.robustness_sweep(_oracle, _samples(), ["strip", "salt"], [0.0, 0.5], seed=0)
    assert list(df["corruption"]) == ["strip", "strip", "salt", "salt"]
    clean = df[df["rate"] == 0]
    assert (clean["f1"] == 1.0).all() and (clean["f1_drop"] == 0.0).all()
    assert (clean["tp"] == 72).all() and (clean["fp"] == 0).all()   # 2 x 36 changed pixels
    noisy = df[df["rate"] == 0.5]
    # salt at t2 on a building leaves it bright; salt at t1 on a building (1.0 vs 0.8) hides it,
    # salt at t2 off the buildings creates false alarms: F1 must drop
    assert (noisy["f1"] < 1.0).all() and (noisy["f1_drop"] > 0).all()
    assert np.allclose(noisy["f1_drop"], 1.0 - noisy["f1"])
    again = noise.robustness_sweep(_oracle, _samples(), ["strip", "salt"], [0.0, 0.5], seed=0)
    assert again.equals(df)


def test_robustness_sweep_strip_counts_by_hand():
    # strip rows at max on both dates: a stripe on t2 outside the building adds 16 - 6 or 16
    # false pixels per row; a predictor on t2 alone lets us count them exactly
    samples = _samples()[:1]

    def t2_bright(s):
        return (s["optical_t2"].mean(0) > 0.7).astype(np.float32)

    df = noise.robustness_sweep(t2_bright, samples, ["strip"], [0.0, 0.25], seed=3)
    gen = np.random.default_rng([3, 0, 1])
    _ = noise.strip_noise(samples[0]["optical_t1"], 0.25, gen)      # t1 draws first
    t2 = noise.strip_noise(samples[0]["optical_t2"], 0.25, gen)
    pred = t2.mean(0) > 0.7
    truth = samples[0]["change"] > 0
    row = df[df["rate"] == 0.25].iloc[0]
    assert row["tp"] == int(np.sum(pred & truth)) and row["fp"] == int(np.sum(pred & ~truth))
    rows = np.flatnonzero(np.all(t2 == 1.0, axis=(0, 2)))
    assert len(rows) == 4                                # floor(0.25 * 16)
    # each stripe row adds 16 false pixels, or 10 where it crosses the 6-px wide building
    assert row["fp"] == sum(10 if 4 <= r < 10 else 16 for r in rows)


def test_counts_robust_to_float_round_off():
    # 0.29 * 100 = 28.999999999999996 in floating point; the count must still be 29
    x = np.full((1, 100, 1), 0.5, dtype=np.float32)
    assert int((noise.strip_noise(x, 0.29, 0) == 1.0).sum()) == 29
    assert int(np.all(noise.salt_noise(np.full((2, 10, 10), 0.5), 0.29, 0) == 1.0, axis=0).sum()) == 29


# ----------------------------------------------------------------------------- Sentinel corruptions
def test_sar_speckle_db_mean_matches_gamma_log_moment():
    from scipy.special import digamma

    x = np.full((1, 200, 200), -10.0)
    out = noise.sar_speckle(x, 4.0, 0, db_range=None)
    # E[10 log10 g] for g ~ Gamma(L, 1/L) is 10 / ln 10 * (digamma(L) - ln L) = -0.565 dB at L = 4
    expected = -10.0 + 10.0 / np.log(10.0) * (digamma(4.0) - np.log(4.0))
    assert abs(out.mean() - expected) < 0.02
    assert noise.sar_speckle(x, 1.0, 0, db_range=None).std() > out.std() * 1.5   # fewer looks, more noise
    assert np.array_equal(noise.sar_speckle(x, np.inf, 0, db_range=None), x)


def test_sar_speckle_scaled_units_and_clipping():
    x = np.full((2, 50, 50), 0.6, dtype=np.float32)       # -10 dB on the [-25, 0] scale
    out = noise.sar_speckle(x, 1.0, 1)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    db = noise.sar_speckle(x * 25.0 - 25.0, 1.0, 1, db_range=None)
    assert np.allclose(out, np.clip((db + 25.0) / 25.0, 0, 1), atol=1e-5)
    with pytest.raises(ConfigError, match="looks"):
        noise.sar_speckle(x, 0.0)
    with pytest.raises(ConfigError, match="float"):
        noise.sar_speckle(np.zeros((1, 4, 4), np.uint8), 4.0)


def test_haze_bounds_reach_both_ends():
    x = np.full((3, 40, 40), 0.1)
    out = noise.haze_noise(x, 0.6, 2, airlight=0.3)
    lo, hi = 0.1 * (1 - 0.3) + 0.3 * 0.3, 0.1 * (1 - 0.6) + 0.3 * 0.6   # t = r/2 and t = r
    assert np.isclose(out.min(), lo) and np.isclose(out.max(), hi)
    assert np.array_equal(out[0], out[2])                                   # same t on all bands
    weighted = noise.haze_noise(x, 0.6, 2, band_weights=[1.0, 0.5, 0.0])
    assert np.array_equal(weighted[2], x[2]) and np.allclose(weighted[0], out[0])
    assert np.array_equal(noise.haze_noise(x, 0.0, 2), x)
    with pytest.raises(ConfigError, match="band_weights"):
        noise.haze_noise(x, 0.5, 0, band_weights=[1.0])


def test_shift_image_exact_and_edges():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = noise.shift_image(x, 1, -2)
    assert out[0, 1, 0] == x[0, 0, 2] and out[0, 3, 1] == x[0, 2, 3]
    assert np.array_equal(out[0, 0], out[0, 1])                   # top row replicated
    assert np.array_equal(out[0, :, 2], out[0, :, 3])             # right column replicated
    assert np.array_equal(noise.shift_image(x, 0, 0), x)
    with pytest.raises(ConfigError, match="smaller than the image"):
        noise.shift_image(x, 4, 0)


def test_misregistration_is_a_shift_of_the_given_length():
    x = np.random.default_rng(0).random((2, 1, 20, 20))
    out = noise.misregistration(x, 3.0, 5)
    for b in range(2):
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if np.array_equal(out[b], noise.shift_image(x[b], dy, dx))]
        assert len(matches) == 1
        dy, dx = matches[0]
        assert 2.0 <= np.hypot(dy, dx) <= 3.0 * np.sqrt(2) and max(abs(dy), abs(dx)) <= 3
    assert np.array_equal(noise.misregistration(x, 0, 5), x)


def test_drop_modality_and_missing_corruption():
    import torch

    s = {"optical_t1": np.ones((3, 4, 4)), "optical_t2": np.ones((3, 4, 4)),
         "sar_t1": torch.ones(2, 4, 4), "sar_t2": torch.ones(2, 4, 4), "change": np.ones((4, 4))}
    out = noise.drop_modality(s, "sar")
    assert torch.is_tensor(out["sar_t1"]) and float(out["sar_t1"].abs().sum()) == 0.0
    assert out["optical_t1"] is s["optical_t1"] and float(s["sar_t1"].sum()) == 32.0   # input untouched
    assert noise.corrupt_sample(s, "missing", "optical")["optical_t2"].sum() == 0
    only_optical = {k: v for k, v in s.items() if not k.startswith("sar")}
    assert noise.corrupt_sample(only_optical, "missing", "sar").keys() == only_optical.keys()
    with pytest.raises(ConfigError, match="no sar input"):
        noise.drop_modality(only_optical, "sar")
    with pytest.raises(ConfigError, match="unknown corruption"):
        noise.corrupt_sample(s, "fog", 0.1)


def test_robustness_table_known_answers():
    samples = _samples()

    def bright_t2(s):
        return (s["optical_t2"].mean(0) > 0.7).astype(np.float32)

    def sar_t2(s):
        return (s["sar_t2"][0] > 0.5).astype(np.float32)

    for s in samples:
        s["sar_t2"] = np.repeat(s["optical_t2"][:1], 2, axis=0)
    df = noise.robustness_table({"opt": bright_t2, "sar": sar_t2}, samples,
                                [("clean", None), ("missing", "optical"), ("misregistration", 0), ("salt", 0.1)])
    clean = df[(df.corruption == "clean") & (df.model == "opt")].iloc[0]
    truth = np.concatenate([s["change"].ravel() > 0 for s in samples])
    pred = np.concatenate([bright_t2(s).ravel() > 0.5 for s in samples])
    assert clean["tp"] == int(np.sum(pred & truth)) and clean["fp"] == int(np.sum(pred & ~truth))
    missing = df[df.corruption == "missing"].set_index("model")
    assert missing.loc["opt", "f1"] == 0.0                    # no optical input, no prediction
    assert missing.loc["sar", "f1"] == df[(df.corruption == "clean") & (df.model == "sar")]["f1"].iloc[0]
    shift0 = df[(df.corruption == "misregistration") & (df.model == "opt")].iloc[0]
    assert shift0["f1"] == clean["f1"]
    salt = df[df.corruption == "salt"].set_index("model")
    assert salt.loc["opt", "fp"] > clean["fp"]                 # salt on t2 adds false bright pixels
    assert {"precision", "recall", "f1", "iou", "kappa"} <= set(df.columns)
    with pytest.raises(ConfigError, match="unknown corruption"):
        noise.robustness_table({"opt": bright_t2}, samples, [("fog", 0.1)])
