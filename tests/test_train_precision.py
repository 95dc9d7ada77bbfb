"""fit with channels_last and with bf16 autocast on the CPU, against fp32 (issue 17, item 3).

Stated tolerances: channels_last changes only the memory layout, so losses and (SGD-trained)
weights agree with fp32 to float rounding (1e-5); bf16 autocast rounds activations to 8 bits of mantissa, so it is
not bit-identical but the per-step losses stay within 2e-2 of fp32's and the weights within 5e-3
over a few SGD steps.
"""
from __future__ import annotations

import copy

import pytest
import torch

from urbankit.models import build
from urbankit.train import Supervised, fit


def _batches(n=3, batch=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.rand(batch, 4, size, size, generator=g)
        out.append({"optical_t1": x, "buildings_t1": (x[:, :1] > 0.6).float(),
                    "labelled": torch.ones(batch, dtype=torch.bool)})
    return out


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model0 = build("unet", modality="optical", optical_channels=4, width=0.125, topology=(64, 128))
    batches = _batches()

    def run(**options):
        model = copy.deepcopy(model0)
        # SGD: weight differences stay proportional to gradient differences (Adam's normalised
        # steps turn a rounding difference in a near-zero gradient into a full lr-sized step).
        res = fit(model, batches, None, strategy=Supervised(targets={"buildings_t1": "buildings_t1"}), epochs=2,
                  optimizer="sgd", lr=0.05, device="cpu", progress=False, restore_best=False, seed=0, **options)
        return list(res.history["train_loss"]), {k: v.detach().clone() for k, v in model.state_dict().items()}

    return {"fp32": run(amp=False), "channels_last": run(amp=False, channels_last=True), "bf16": run(amp="bf16"),
            "cpu_true": run(amp=True)}


def _max_weight_gap(a, b):
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())


def test_channels_last_equals_fp32_to_float_rounding(trained):
    (loss32, w32), (loss_cl, w_cl) = trained["fp32"], trained["channels_last"]
    assert loss_cl == pytest.approx(loss32, abs=1e-5)
    assert _max_weight_gap(w32, w_cl) < 1e-5


def test_bf16_autocast_on_cpu_runs_and_stays_within_tolerance(trained):
    (loss32, w32), (loss16, w16) = trained["fp32"], trained["bf16"]
    assert loss16 != loss32                                   # autocast really ran in bf16
    assert loss16 == pytest.approx(loss32, abs=2e-2)
    assert _max_weight_gap(w32, w16) < 5e-3                  # 7e-4 measured after 6 SGD steps
    assert all(v.dtype == torch.float32 for v in w16.values() if v.is_floating_point())   # weights stay fp32


def test_amp_true_is_off_on_cpu(trained):
    # A GPU profile's amp=True must not change CPU results: only amp="bf16" autocasts on a CPU.
    assert trained["cpu_true"][0] == trained["fp32"][0]
    assert _max_weight_gap(trained["cpu_true"][1], trained["fp32"][1]) == 0.0
