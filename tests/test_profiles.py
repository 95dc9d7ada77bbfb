"""Profiles, device resolution and seeding."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import urbankit
from urbankit.errors import ConfigError
from urbankit.profiles import PROFILES, Profile, get_profile, resolve_device, seed_everything


def test_profiles_defined_once_with_expected_roles():
    assert set(PROFILES) == {"quick", "full", "real"}
    quick, full = get_profile("quick"), get_profile("full")
    assert quick.data_source == "samples" and quick.device == "cpu"
    assert full.data_source == "download" and full.width == 1.0
    # the quick profile must be smaller than the full one in every run-size knob
    assert quick.patch_size < full.patch_size and quick.epochs < full.epochs and quick.width < full.width


def test_replace_ignores_none_and_rejects_unknown():
    quick = get_profile("quick")
    assert quick.replace(epochs=None, seed=None) == quick
    assert quick.replace(epochs=7).epochs == 7
    with pytest.raises(ConfigError, match="unknown field"):
        quick.replace(epoch=3)


def test_profile_is_immutable():
    with pytest.raises(Exception):
        get_profile("quick").epochs = 10  # type: ignore[misc]


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(patch_size=-1), dict(width=0), dict(device="tpu"),
                                 dict(data_source="web")])
def test_invalid_profile_values_raise_clear_errors(bad):
    with pytest.raises(ConfigError, match="profile 'x'"):
        Profile(name="x", **{"data_source": "samples", **bad})


def test_unknown_profile_names_choices():
    with pytest.raises(ConfigError, match="full.*quick.*real"):
        get_profile("huge")


def test_describe_names_data_and_sizes():
    text = get_profile("quick").describe()
    assert "quick" in text and "synthetic" in text and "patch 64" in text


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    if not torch.cuda.is_available():
        assert auto.type in ("cpu", "mps")
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(ConfigError):
        resolve_device("gpu0")


def test_seed_everything_makes_all_generators_repeatable():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first
    assert torch.are_deterministic_algorithms_enabled()


def test_seed_everything_rejects_negative():
    with pytest.raises(ConfigError):
        seed_everything(-1)


def test_environment_report_lists_core_packages():
    report = urbankit.environment_report()
    for name in ("python", "numpy", "torch", "xarray"):
        assert name in report.index
    assert report.loc["urbankit", "version"] == urbankit.__version__
