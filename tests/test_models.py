"""Tests of the model zoo (urbankit.models).

Parameter counts are checked at the papers' sizes (built on the ``meta`` device: no memory, no
forward pass); everything that runs a forward pass uses small widths so the file stays fast.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from urbankit.errors import ConfigError
from urbankit.models import NOT_YET_AVAILABLE, available_models, build, count_parameters, list_models
from urbankit.models.blocks import (
    ASPP,
    CBAM,
    DifferenceAttention,
    DoubleConv,
    Encoder,
    FCDecoder,
    Up,
    scale_widths,
)


def meta_params(name: str, **cfg) -> int:
    with torch.device("meta"):
        return count_parameters(build(name, **cfg))


# ---------------------------------------------------------------------------------------
# Parameter counts of the default (paper) configurations, METHODS.md
# ---------------------------------------------------------------------------------------

PAPER_COUNTS = [
    ("fc_ef", {"optical_channels": 13}, 1.353e6),
    ("fc_siam_conc", {"optical_channels": 13}, 1.547e6),
    ("fc_siam_diff", {"optical_channels": 13}, 1.352e6),
    ("fc_ef", {"optical_channels": 3}, 1.351e6),
    ("fc_siam_conc", {"optical_channels": 3}, 1.546e6),
    ("fc_siam_diff", {"optical_channels": 3}, 1.350e6),
    ("unet", {"optical_channels": 26, "topology": (64, 128, 256, 512)}, 14.80e6),
    ("unet", {"optical_channels": 10}, 0.94e6),   # Fusion-DA's lightweight single-sensor baseline
    ("unet_ef", {"optical_channels": 13}, 14.80e6),
    ("dsunet", {"sar_channels": 1, "optical_channels": 13}, 29.59e6),
    ("fusionda_net", {"sar_channels": 2, "optical_channels": 10}, 1.87e6),
    ("mm_siamdiff", {"sar_channels": 2, "optical_channels": 4}, 40.33e6),
    ("mmcr_net", {"sar_channels": 2, "optical_channels": 4}, 40.33e6),
    ("siamdiff", {"optical_channels": 3}, 14.79e6),
    ("siamdiff_dt", {"optical_channels": 3}, 20.17e6),
]


@pytest.mark.parametrize("name,cfg,expected", PAPER_COUNTS, ids=[f"{n}-{list(c.values())}" for n, c, _ in PAPER_COUNTS])
def test_parameter_counts_match_methods(name, cfg, expected):
    n = meta_params(name, **cfg)
    assert abs(n - expected) / expected < 0.01, f"{name}: {n} parameters, METHODS.md says {expected:.0f}"


def test_default_configurations_are_the_papers():
    # the defaults alone (no channel arguments) reproduce the papers' input bands
    assert meta_params("fc_siam_diff") == meta_params("fc_siam_diff", optical_channels=13)
    assert meta_params("dsunet") == meta_params("dsunet", sar_channels=1, optical_channels=13)
    assert meta_params("fusionda_net") == meta_params("fusionda_net", sar_channels=2, optical_channels=10)
    assert meta_params("mmcr_net") == meta_params("mmcr_net", sar_channels=2, optical_channels=4)
    assert meta_params("siamdiff_dt") == meta_params("siamdiff_dt", optical_channels=3)


def test_double_conv_count_by_hand():
    # conv 2->4 (2*4*9 + 4) + BN(4) (8) + conv 4->4 (4*4*9 + 4) + BN(4) (8) = 76 + 8 + 148 + 8
    assert count_parameters(DoubleConv(2, 4)) == 240


def test_channel_bookkeeping_of_the_hafner_encoder():
    enc = Encoder(26, [64, 128, 256, 512])
    feats = enc(torch.zeros(1, 26, 32, 32))
    assert [f.shape[1] for f in feats] == [512, 512, 256, 128, 64]  # deepest first, deepest keeps 512
    assert [f.shape[-1] for f in feats] == [2, 4, 8, 16, 32]


def test_dual_task_adds_a_decoder_and_two_small_heads():
    siam = meta_params("siamdiff", optical_channels=3)
    dual = meta_params("siamdiff_dt", optical_channels=3)
    with torch.device("meta"):
        model = build("siamdiff_dt", optical_channels=3)
    decoder = count_parameters(model.semantic_decoder)
    assert dual - siam == decoder + (64 + 1) + (2 + 1)  # semantic decoder + OutConv(64->1) + 1x1 (2->1)


def test_width_knob_scales_topology():
    assert scale_widths([64, 128, 256, 512], 0.25) == [16, 32, 64, 128]
    assert build("unet", width=0.25).topology == [16, 32]
    assert build("unet", width=0.25, topology=(64, 128, 256, 512)).topology == [16, 32, 64, 128]
    assert build("fc_ef", width=0.5).widths == [8, 16, 32, 64]
    with pytest.raises(ConfigError):
        scale_widths([64], 0)


# ---------------------------------------------------------------------------------------
# Every registered model: forward + backward, keys, shapes, gradients
# ---------------------------------------------------------------------------------------

SMALL = {
    "unet": {"width": 0.125},
    "unet_ef": {"width": 0.125},
    "dsunet": {"width": 0.125},
    "fc_ef": {"width": 0.5},
    "fc_siam_conc": {"width": 0.5},
    "fc_siam_diff": {"width": 0.5},
    "siamdiff": {"width": 0.125},
    "siamdiff_dt": {"width": 0.125},
    "mm_siamdiff": {"width": 0.125},
    "mmcr_net": {"width": 0.125},
    "fusionda_net": {"width": 0.125},
    "hdanet": {"width": 0.25, "modules": (1, 1, 1), "blocks": 1},
    "siam_hrnet": {"width": 0.25, "modules": (1, 1, 1), "blocks": 1},
    "segnet": {"width": 0.125},
    "deeplabv3": {"width": 0.125},
    "unetpp": {"width": 0.25},
    "dsifn": {"width": 0.125},
    "stanet": {"width": 0.25},
}
OPTIONAL: set[str] = set()  # every registered model is native torch now

EXPECTED_OUTPUTS = {
    "unet": {"buildings_t1"},
    "unet_ef": {"change"},
    "dsunet": {"change"},
    "fc_ef": {"change"},
    "fc_siam_conc": {"change"},
    "fc_siam_diff": {"change"},
    "siamdiff": {"change"},
    "siamdiff_dt": {"change", "buildings_t1", "buildings_t2", "change_semantic"},
    "mm_siamdiff": {"change"},
    "mmcr_net": {"change"} | {f"buildings_{d}{s}" for d in ("t1", "t2") for s in ("", "_sar", "_optical", "_fusion")},
    "fusionda_net": {"buildings_t1", "buildings_t1_sar", "buildings_t1_optical", "buildings_t1_fusion"},
    "hdanet": {"change"},
    "siam_hrnet": {"change"},
    "segnet": {"change"},
    "deeplabv3": {"change"},
    "unetpp": {"change"} | {f"change_side{k}" for k in range(1, 5)},
    "dsifn": {"change"} | {f"change_side{k}" for k in range(1, 5)},
    "stanet": {"change", "distance"},
}


def make_batch(h: int, w: int, b: int = 2, sar: int = 3, optical: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {f"{m}_{d}": torch.rand(b, c, h, w, generator=g) for m, c in (("sar", sar), ("optical", optical))
             for d in ("t1", "t2")}
    batch["site"] = ["a"] * b
    return batch


def test_every_registered_model_is_covered():
    assert set(available_models()) == set(SMALL) | OPTIONAL


@pytest.mark.parametrize("size", [(64, 64), (70, 90)], ids=["64x64", "70x90"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_backward_small(name, size):
    torch.manual_seed(0)
    model = build(name, sar_channels=3, optical_channels=5, **SMALL[name])
    model.train()
    batch = make_batch(*size)
    out = model(batch)
    assert set(out) == EXPECTED_OUTPUTS[name] == set(model.output_keys)
    for key, value in out.items():
        assert value.shape == (2, 1, *size), key
        assert torch.isfinite(value).all(), key
    sum(v.pow(2).mean() for v in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad.abs().sum() > 0
    assert set(model.input_keys) <= set(batch)


@pytest.mark.parametrize("modality,keys", [
    ("sar", {"sar_t1", "sar_t2"}), ("optical", {"optical_t1", "optical_t2"}),
    ("fusion", {"sar_t1", "sar_t2", "optical_t1", "optical_t2"}),
])
@pytest.mark.parametrize("name", ["unet_ef", "fc_ef", "fc_siam_diff", "siamdiff", "hdanet"])
def test_modalities(name, modality, keys):
    model = build(name, modality=modality, sar_channels=3, optical_channels=5, **SMALL[name]).eval()
    assert set(model.input_keys) == keys
    with torch.no_grad():
        assert model(make_batch(32, 32))["change"].shape == (2, 1, 32, 32)


def test_single_date_unet_reads_only_t1_and_can_map_both_dates():
    model = build("unet", modality="fusion", sar_channels=3, optical_channels=5, width=0.125)
    assert model.input_keys == ("sar_t1", "optical_t1")
    both = build("unet", modality="sar", sar_channels=3, width=0.125, dates=("t1", "t2")).eval()
    batch = make_batch(32, 32)
    with torch.no_grad():
        out = both(batch)
        again = both({"sar_t1": batch["sar_t2"], "sar_t2": batch["sar_t1"]})
    assert set(out) == {"buildings_t1", "buildings_t2"}
    torch.testing.assert_close(out["buildings_t2"], again["buildings_t1"])  # one network for both dates


def test_fusion_heads_alias():
    batch = make_batch(32, 32)
    for name in ("mmcr_net", "fusionda_net"):
        model = build(name, sar_channels=3, optical_channels=5, width=0.125).eval()
        with torch.no_grad():
            out = model(batch)
        assert out["buildings_t1"] is out["buildings_t1_fusion"]


# ---------------------------------------------------------------------------------------
# Siamese weight sharing and the FC 2-class output
# ---------------------------------------------------------------------------------------

def swapped(batch: dict) -> dict:
    out = dict(batch)
    for m in ("sar", "optical"):
        out[f"{m}_t1"], out[f"{m}_t2"] = batch[f"{m}_t2"], batch[f"{m}_t1"]
    return out


@pytest.mark.parametrize("name,cfg", [
    ("siamdiff", {"diff": "abs"}), ("mm_siamdiff", {"diff": "abs"}), ("hdanet", {}),
])
def test_abs_difference_models_are_symmetric_in_the_dates(name, cfg):
    torch.manual_seed(0)
    model = build(name, sar_channels=3, optical_channels=5, **SMALL[name], **cfg).eval()
    batch = make_batch(48, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(batch)["change"], model(swapped(batch))["change"])


def test_signed_difference_is_not_symmetric():
    model = build("siamdiff", optical_channels=5, width=0.125).eval()
    batch = make_batch(32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(batch)["change"], model(swapped(batch))["change"])


def test_fc_siam_diff_shares_the_encoder():
    """Skips are |f(t1) - f(t2)| of one shared encoder: with the bottleneck path silenced the
    output is exactly symmetric in t1/t2. With it, it is not: as in Daudt's code the decoder
    upsamples the t2 stream's bottleneck (METHODS.md §1.2)."""
    torch.manual_seed(0)
    model = build("fc_siam_diff", optical_channels=5, width=0.5, diff="abs").eval()
    batch = make_batch(48, 48)
    with torch.no_grad():
        assert not torch.allclose(model(batch)["change"], model(swapped(batch))["change"])
        model.decoder.ups[0].weight.zero_()  # the bottleneck no longer reaches the output
        torch.testing.assert_close(model(batch)["change"], model(swapped(batch))["change"])
    assert sum(isinstance(m, type(model.encoder)) for m in model.modules()) == 1


def test_fc_siam_diff_matches_manual_composition():
    torch.manual_seed(0)
    model = build("fc_siam_diff", optical_channels=5, width=0.5).eval()
    batch = make_batch(40, 56)
    with torch.no_grad():
        s1, _ = model.encoder(batch["optical_t1"])
        s2, b2 = model.encoder(batch["optical_t2"])
        z = model.decoder(b2, [[(a - b).abs()] for a, b in zip(s1, s2)])
        torch.testing.assert_close(model.two_class_logits(batch), z)


def test_fc_change_logit_is_the_class1_softmax():
    model = build("fc_ef", optical_channels=5, width=0.5).eval()
    batch = make_batch(32, 32)
    with torch.no_grad():
        z = model.two_class_logits(batch)
        change = model(batch)["change"]
    assert z.shape == (2, 2, 32, 32)
    torch.testing.assert_close(torch.sigmoid(change), torch.softmax(z, dim=1)[:, 1:2])
    torch.testing.assert_close(change > 0, z.argmax(dim=1, keepdim=True) == 1)


# ---------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------

def test_dam_on_identical_inputs_is_zero():
    torch.manual_seed(0)
    dam = DifferenceAttention(8).eval()
    t = torch.randn(2, 8, 9, 11)
    assert dam(t, t.clone()).abs().max() == 0
    assert dam(t, t + 0.1).abs().max() > 0


def test_dam_change_intensity_by_hand():
    dam = DifferenceAttention(2, channel=False, eps=0.0)
    with torch.no_grad():
        dam.spatial.weight.zero_()
        dam.spatial.weight[0, 0, 1, 1] = 1.0  # identity 3x3 kernel: A = sigmoid(CIM)
        dam.spatial.bias.zero_()
    t1 = torch.zeros(1, 2, 3, 3)
    t2 = torch.zeros(1, 2, 3, 3)
    t2[0, 0, 1, 1], t2[0, 1, 1, 1] = 3.0, -4.0  # CIM = 5 at the centre, 0 elsewhere
    out = dam(t1, t2)
    expected = torch.sigmoid(torch.tensor(5.0))
    torch.testing.assert_close(out[0, :, 1, 1], torch.tensor([3.0, 4.0]) * expected)
    assert out[0, :, 0, 0].abs().sum() == 0


def test_up_pads_to_odd_skip_sizes():
    up = Up(16, 4)
    out = up(torch.zeros(1, 8, 8, 11), torch.zeros(1, 8, 17, 23))
    assert out.shape == (1, 4, 17, 23)


def test_fc_decoder_replication_pads_to_skip_sizes():
    dec = FCDecoder([4, 4, 4, 4], skip_parts=1, n_classes=2)
    skips = [[torch.zeros(1, 4, s, s + 3)] for s in (35, 17, 8, 4)]
    assert dec(torch.zeros(1, 4, 2, 3), skips).shape == (1, 2, 35, 38)


def test_aspp_and_cbam_shapes():
    x = torch.randn(2, 12, 20, 24)
    assert ASPP(12, 8).eval()(x).shape == (2, 8, 20, 24)
    assert CBAM(12, reduction=4)(x).shape == x.shape
    aspp = ASPP(12, 8).train()
    aspp(torch.randn(1, 12, 20, 24)).sum().backward()  # batch of one trains (no BN in image pooling)


def test_hdanet_ablation_switches():
    full = build("hdanet", **SMALL["hdanet"])
    base = build("hdanet", use_aspp=False, use_dam=False, use_cbam=False, **SMALL["hdanet"])
    assert full.dams is not None and full.cbam is None and full.cbams is None  # the paper's: no CBAM
    assert base.dams is None and base.cbam is None and base.cbams is None
    assert count_parameters(base) < count_parameters(full)
    with torch.no_grad():
        assert base.eval()(make_batch(35, 45, optical=3))["change"].shape == (2, 1, 35, 45)


# ---------------------------------------------------------------------------------------
# Registry, errors, optional baselines
# ---------------------------------------------------------------------------------------

def test_build_errors():
    with pytest.raises(ConfigError, match="unknown model"):
        build("no_such_model")
    with pytest.raises(ConfigError, match="unknown argument"):
        build("fc_ef", n_bands=3)
    with pytest.raises(ConfigError, match="modality"):
        build("unet", modality="lidar")
    with pytest.raises(ConfigError, match="diff"):
        build("siamdiff", diff="ratio")
    with pytest.raises(ConfigError, match="attention"):
        build("stanet", attention="global")
    with pytest.raises(ConfigError, match="cbam_placement"):
        build("hdanet", cbam_placement="everywhere")


def test_batch_errors_name_the_key():
    model = build("fc_ef", optical_channels=5, width=0.5)
    with pytest.raises(ConfigError, match="optical_t2"):
        model({"optical_t1": torch.zeros(1, 5, 16, 16)})
    with pytest.raises(ConfigError, match="3 channels.*built for 5"):
        model({"optical_t1": torch.zeros(1, 3, 16, 16), "optical_t2": torch.zeros(1, 3, 16, 16)})
    with pytest.raises(ConfigError, match=r"\(B, C, H, W\)"):
        model({"optical_t1": torch.zeros(5, 16, 16), "optical_t2": torch.zeros(5, 16, 16)})


def test_list_models_table():
    df = list_models()
    assert list(df.columns) == ["name", "description", "inputs", "outputs", "params", "paper", "status"]
    assert set(available_models()) | set(NOT_YET_AVAILABLE) == set(df["name"])
    row = df.set_index("name").loc["dsunet"]
    assert row["inputs"] == "sar_t1, sar_t2, optical_t1, optical_t2"
    assert abs(row["params"] - 29.59e6) / 29.59e6 < 0.01
    assert row["paper"] == "hafner2022dsunet"
    assert (df.set_index("name").loc[list(NOT_YET_AVAILABLE), "status"] == "not yet available").all()
    assert (df["status"] == "available").all()  # the seed's VHR table is complete and native
    bib = (__import__("pathlib").Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text()
    for key in df["paper"]:
        if key:
            assert f"{{{key}," in bib, key


def test_pad_multiple_is_the_networks_total_stride():
    assert build("unet", width=0.125).pad_multiple == 4
    assert build("unet", width=0.125, topology=(64, 128, 256, 512)).pad_multiple == 16
    assert build("fusionda_net", width=0.125).pad_multiple == 4
    assert build("fc_siam_conc", width=0.5).pad_multiple == 16
    assert build("hdanet", **SMALL["hdanet"]).pad_multiple == 32
    model = build("siamdiff", optical_channels=5, width=0.125).eval()
    # at a multiple no padding happens: the encoder's deepest map is exactly H/16
    feats = model.encoder(torch.zeros(1, 5, 48, 80))
    assert feats[0].shape[-2:] == (48 // 16, 80 // 16)
