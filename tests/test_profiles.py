"""Profiles, device resolution and seeding."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys

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


_PIN_PROBE = """
import json
import torch
from numpy._core import _multiarray_umath as umath
torch.nn.Conv2d(8, 8, 3)(torch.ones(2, 8, 32, 32))   # a size torch gives to oneDNN
torch.ones(8, 8) @ torch.ones(8, 8)
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(),
                  "numpy_found": [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]}))
"""


def test_cpu_kernel_pins_are_honoured_by_the_installed_torch_and_numpy():
    """A process started with the pins runs AVX2-level torch, oneDNN, MKL-CNR and numpy kernels.

    On an AVX-512 machine each check fails if a library stops reading its variable; on an
    AVX2-only machine the MKL check (CNR mode is named in MKL's own log) still can.
    """
    from urbankit.profiles import cpu_kernel_pins

    pins = cpu_kernel_pins()
    if not pins:
        pytest.skip("no CPU-kernel pins on this CPU (not x86-64 with AVX2)")
    if not hasattr(__import__("numpy")._core, "_multiarray_umath"):
        pytest.skip("numpy 1.x: the probe reads numpy 2's dispatch tables")
    env = {**os.environ, **pins, "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", _PIN_PROBE], env=env, capture_output=True, text=True, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["aten"] in ("AVX2", "DEFAULT")
    assert not set(report["numpy_found"]) & set(pins.get("NPY_DISABLE_CPU_FEATURES", "").split())
    isa = re.search(r"onednn_verbose,.*info,cpu,isa:(.*)", out)
    assert isa and "512" not in isa.group(1) and "AMX" not in isa.group(1), isa
    assert "CNR:COMPATIBLE" in out


def test_pin_cpu_kernels_keeps_an_explicit_setting_and_reports_it(monkeypatch):
    from urbankit import profiles

    pins = profiles.cpu_kernel_pins()
    if not pins:
        pytest.skip("no CPU-kernel pins on this CPU (not x86-64 with AVX2)")
    env = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert profiles.pin_cpu_kernels(env) == {"ATEN_CPU_CAPABILITY": ("default", "avx2")}
    assert env == {**pins, "ATEN_CPU_CAPABILITY": "default"}
    monkeypatch.setattr("platform.machine", lambda: "aarch64")   # an ARM laptop: no pin applies
    assert profiles.cpu_kernel_pins() == {}
    env = {}
    assert profiles.pin_cpu_kernels(env) == {} and env == {}
