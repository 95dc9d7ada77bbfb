"""Library-equivalence tests of the native VHR baselines and of HDANet's switches.

The canonical implementations (torchvision, smp, the authors' repositories) cannot be imported
here, so equivalence is checked through what can be computed independently: parameter counts
of the canonical layer lists (stated in :data:`urbankit.models.VHR_TABLE` with their source),
the feature-map strides, and properties each architecture must have (pooling indices, weight
sharing, symmetry in the dates, the metric decision rule).
"""
from __future__ import annotations

import pytest
import torch

from urbankit import inference
from urbankit.errors import ConfigError
from urbankit.losses import batch_balanced_contrastive_loss, deep_supervision_loss, dsifn_loss
from urbankit.models import ABLATION_ROWS, VHR_TABLE, ablation_models, build, count_parameters, load_weights
from urbankit.models.blocks import DifferenceAttention, scale_widths
from urbankit.models.resnet import resnet18, resnet50
from urbankit.models.stanet import PAMScale


def meta_count(name: str, part: str = "", **cfg) -> int:
    with torch.device("meta"):
        model = build(name, **cfg)
    return count_parameters(getattr(model, part) if part else model)


def pair(h: int = 64, w: int = 64, b: int = 2, c: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"optical_t1": torch.rand(b, c, h, w, generator=g), "optical_t2": torch.rand(b, c, h, w, generator=g)}


def swapped(batch: dict) -> dict:
    return {"optical_t1": batch["optical_t2"], "optical_t2": batch["optical_t1"]}


# ---------------------------------------------------------------------------------------
# Parameter counts against the canonical implementations
# ---------------------------------------------------------------------------------------

ROWS = [r for r in VHR_TABLE if r.canonical_params]


@pytest.mark.parametrize("row", ROWS, ids=[r.model for r in ROWS])
def test_canonical_parameter_counts_within_one_percent(row):
    n = meta_count(row.model, row.canonical_part, optical_channels=3)
    assert abs(n - row.canonical_params) / row.canonical_params < 0.01, (
        f"{row.label}: {n:,} parameters, canonical {row.canonical_params:,} ({row.canonical_source})")


def test_the_table_has_the_seeds_ten_rows_and_all_build():
    assert [r.label for r in VHR_TABLE] == ["FC_EF", "FC_Siam_conc", "FC_Siam_diff", "SegNet", "DeepLab V3",
                                            "DSIFN", "STANet", "Unet++", "Siam_HRNet", "HDANet"]
    assert all(r.form in ("early fusion", "Siamese", "two-stream") for r in VHR_TABLE)
    for r in VHR_TABLE:
        assert meta_count(r.model) > 0


def test_resnets_have_torchvisions_counts():
    # torchvision resnet50 / resnet18 without the fc layer: 25,557,032 - 2,049,000 and 11,689,512 - 513,000
    assert count_parameters(resnet50(3)) == 23_508_032
    assert count_parameters(resnet18(3)) == 11_176_512
    # STANet's multi-grid layer 4 adds one 512-channel basic block (2 convs + 2 BN)
    assert count_parameters(resnet18(3, layer4_grid=(1, 2, 4))) == 11_176_512 + 2 * (512 * 512 * 9 + 1024)


def test_exact_counts_of_the_derived_variants():
    vgg16_convs = 14_714_688  # the 13 conv layers of VGG16 (with bias), 3 input channels
    assert meta_count("dsifn") - meta_count("dsifn", shared_encoder=True) == vgg16_convs
    assert meta_count("stanet") == 16_929_152  # the official code's STANet-PAM, counted by layer
    assert meta_count("siam_hrnet", "backbone") == 3_860_720  # official HRNet-W18-small-v2 backbone
    assert meta_count("hdanet") == meta_count("siam_hrnet") + meta_count("hdanet", "dams") + (
        meta_count("hdanet", "context") - meta_count("siam_hrnet", "context"))


# ---------------------------------------------------------------------------------------
# Architecture properties
# ---------------------------------------------------------------------------------------

def test_deeplab_has_output_stride_8_and_is_early_fusion():
    model = build("deeplabv3", width=0.125).eval()
    assert model.encoder.stem[0][0].in_channels == 6  # t1 and t2 stacked
    with torch.no_grad():
        feats = model.encoder(torch.zeros(1, 6, 64, 64))
    assert feats[-1].shape[-2:] == (8, 8)
    assert [b.dilation for b in model.aspp.branches[1:] for b in [b[0]]] == [(12, 12), (24, 24), (36, 36)]


def test_segnet_decoder_upsamples_with_the_pooling_indices():
    model = build("segnet", width=0.125).eval()
    seen = {}
    model.decoder[0].register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    with torch.no_grad():
        model(pair(64, 64, b=1))
    x = seen["x"]  # the unpooled deepest map: exactly one non-zero per 2x2 block at most
    blocks = (x != 0).float().unfold(2, 2, 2).unfold(3, 2, 2).sum(dim=(-1, -2))
    assert blocks.max() <= 1 and (x == 0).float().mean() >= 0.75
    assert model.encoder[0][0][0].in_channels == 6


def test_unetpp_deep_supervision_averages_the_four_heads():
    model = build("unetpp", width=0.25).eval()
    with torch.no_grad():
        out = model(pair(48, 48))
    sides = torch.stack([out[f"change_side{k}"] for k in range(1, 5)])
    torch.testing.assert_close(out["change"], sides.mean(0))
    plain = build("unetpp", width=0.25, deep_supervision=False)
    assert plain.output_keys == ("change",)
    assert count_parameters(model) - count_parameters(plain) == 3 * (8 + 1)


def test_dsifn_side_outputs_are_coarse_and_the_encoder_can_be_shared():
    model = build("dsifn", width=0.125).eval()
    with torch.no_grad():
        out = model(pair(64, 64))
    side1 = out["change_side1"]  # the 1/16 output, nearest-upsampled: constant on 16x16 blocks
    assert torch.equal(side1, side1[..., ::16, ::16].repeat_interleave(16, -2).repeat_interleave(16, -1))
    shared = build("dsifn", width=0.125, shared_encoder=True)
    assert shared.encoder_t1 is shared.encoder_t2 and model.encoder_t1 is not model.encoder_t2
    assert model.deep_supervision_targets() == {k: "change" for k in model.output_keys}


def test_stanet_is_symmetric_and_decides_at_half_the_margin():
    torch.manual_seed(0)
    for attention in ("pam", "bam", "none"):
        model = build("stanet", width=0.25, attention=attention).eval()
        batch = pair(64, 64)
        with torch.no_grad():
            out, back = model(batch), model(swapped(batch))
        torch.testing.assert_close(out["distance"], back["distance"], atol=1e-5, rtol=1e-5)
        assert (out["distance"] >= 0).all()
        torch.testing.assert_close(out["change"], out["distance"] - 1.0)
    assert build("stanet", width=0.25, attention="none").size_dependent is False


def test_pam_scale_one_is_global_attention_over_both_dates():
    torch.manual_seed(0)
    pam = PAMScale(16, scale=1).eval()
    x = torch.randn(1, 16, 4, 6)  # two 4x3 dates side by side
    with torch.no_grad():
        q, k, v = pam.query(x).flatten(2), pam.key(x).flatten(2), pam.value(x).flatten(2)
        att = torch.softmax(q.transpose(1, 2) @ k / 2 ** 0.5, dim=-1)  # key width 16 // 8 = 2
        expected = (v @ att.transpose(1, 2)).view(1, 16, 4, 6)
        torch.testing.assert_close(pam(x), expected)


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------

def test_bcl_by_hand():
    d = torch.tensor([0.5, 1.0, 0.5, 3.0]).view(1, 1, 2, 2)
    y = torch.tensor([0.0, 0.0, 1.0, 1.0]).view(1, 1, 2, 2)
    pull = (0.25 + 1.0) / (2 + 1e-4)
    push = ((2 - 0.5) ** 2 + 0.0) / (2 + 1e-4)
    torch.testing.assert_close(batch_balanced_contrastive_loss(d, y), torch.tensor(pull + push))
    y255 = y.clone()
    y255[0, 0, 0, 0] = 255  # ignored pixel
    torch.testing.assert_close(batch_balanced_contrastive_loss(d, y255), torch.tensor(1.0 / (1 + 1e-4) + push))
    with pytest.raises(ConfigError, match="0 .*and 1"):
        batch_balanced_contrastive_loss(d, y * 2)


def test_dsifn_loss_and_its_deep_supervision_sum():
    z = torch.tensor([2.0, -1.0, 0.0, 3.0]).view(1, 1, 2, 2)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)
    p = torch.sigmoid(z)
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    torch.testing.assert_close(dsifn_loss(z, y), bce + dice)
    outputs = {"change": z, "change_side1": -z, "distance": z}
    torch.testing.assert_close(deep_supervision_loss(outputs, y), dsifn_loss(z, y) + dsifn_loss(-z, y))
    with pytest.raises(ConfigError, match="missing"):
        deep_supervision_loss(outputs, y, keys=["change_side3"])


# ---------------------------------------------------------------------------------------
# HDANet: the paper's default, the ablation rows and the unverified switches
# ---------------------------------------------------------------------------------------

SMALL = dict(width=0.25, modules=(1, 1, 1), blocks=1)


def test_hdanet_default_is_the_papers_model():
    model = build("hdanet", **SMALL)
    assert (model.use_aspp, model.use_dam, model.use_cbam) == (True, True, False)
    assert model.size_dependent and model.inference_window == 256
    assert all(m.align_corners for m in model.backbone.modules() if hasattr(m, "fuse"))


def test_ablation_builds_exactly_the_seeds_five_rows():
    models = ablation_models(**SMALL)
    assert list(models) == ["Baseline", "Baseline+ASPP", "Baseline+DAM", "HDANet+CBAM", "HDANet+DAM"]
    flags = {r: (m.use_aspp, m.use_dam, m.use_cbam) for r, m in models.items()}
    assert flags == {"Baseline": (False, False, False), "Baseline+ASPP": (True, False, False),
                     "Baseline+DAM": (False, True, False), "HDANet+CBAM": (True, False, True),
                     "HDANet+DAM": (True, True, False)}
    assert models["HDANet+CBAM"].dams is None and len(models["HDANet+CBAM"].cbams) == 4
    torch.manual_seed(1)
    base = ablation_models(["Baseline"], **SMALL)["Baseline"].eval()
    torch.manual_seed(1)
    siam = build("siam_hrnet", **SMALL).eval()
    with torch.no_grad():  # Baseline is Siam-HRNet: same parameters, same outputs
        torch.testing.assert_close(base(pair(64, 64))["change"], siam(pair(64, 64))["change"])
    assert not siam.size_dependent and siam.inference_window is None
    assert set(ABLATION_ROWS) == set(models)
    with pytest.raises(ConfigError, match="ablation row"):
        ablation_models(["+CBAM"])
    with pytest.raises(ConfigError, match="per row"):
        ablation_models(use_cbam=True)


def test_dam_residual_switch_decides_whether_attention_can_suppress():
    torch.manual_seed(0)
    t1, t2 = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    di = (t1 - t2).abs()
    with_res = DifferenceAttention(8, residual=True).eval()
    without = DifferenceAttention(8, residual=False).eval()
    without.load_state_dict(with_res.state_dict())
    with torch.no_grad():
        a, b = with_res(t1, t2), without(t1, t2)
    assert (a >= di).all()              # + DI: attention can only add to the difference
    assert (b < di)[di > 0].all()       # without: every changed pixel is scaled down by A * w < 1
    torch.testing.assert_close(a - di, b)
    model = build("hdanet", dam_residual=False, **SMALL)
    assert not any(d.residual for d in model.dams)


def test_cbam_placement_switch():
    branch = build("hdanet", use_dam=False, use_cbam=True, **SMALL)
    agg = build("hdanet", use_dam=False, use_cbam=True, cbam_placement="aggregate", **SMALL)
    assert branch.cbam is None and len(branch.cbams) == 4
    assert agg.cbams is None and agg.cbam.channel.mlp[0].in_channels == sum(scale_widths([18, 36, 72, 144], 0.25))
    with torch.no_grad():
        a = branch.eval()(pair(64, 64))["change"]
        b = agg.eval()(pair(64, 64))["change"]
    assert a.shape == b.shape == (2, 1, 64, 64)


def test_align_corners_switch_changes_the_fusion():
    torch.manual_seed(0)
    on = build("siam_hrnet", **SMALL).eval()
    off = build("siam_hrnet", align_corners=False, **SMALL).eval()
    off.load_state_dict(on.state_dict())
    with torch.no_grad():
        assert not torch.allclose(on(pair(64, 64))["change"], off(pair(64, 64))["change"])


# ---------------------------------------------------------------------------------------
# Size dependence and inference
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [("hdanet", True), ("deeplabv3", True), ("dsifn", True),
                                           ("stanet", True), ("siam_hrnet", False), ("segnet", False),
                                           ("unetpp", False), ("fc_siam_diff", False)])
def test_models_declare_size_dependence(name, expected):
    with torch.device("meta"):
        model = build(name)
    assert model.size_dependent is expected
    assert (model.inference_window == 256) if expected else model.inference_window is None


def test_hdanet_output_depends_on_the_input_size_and_predict_tiles_with_its_window():
    torch.manual_seed(0)
    model = build("hdanet", **SMALL).eval()
    model.inference_window = 64
    x = pair(128, 128, b=1)
    with torch.no_grad():
        whole = torch.sigmoid(model(x)["change"])[0, 0].numpy()
        corner = torch.sigmoid(model({k: v[..., :64, :64] for k, v in x.items()})["change"])[0, 0].numpy()
    assert abs(whole[:64, :64] - corner).max() > 1e-5  # same pixels, another input size: another answer
    inputs = {k: v[0] for k, v in x.items()}
    auto = inference.predict(model, inputs, device="cpu")
    tiled = inference.predict(model, inputs, tile=64, overlap=16, device="cpu")
    assert abs(auto - tiled).max() == 0 and abs(auto - whole).max() > 1e-5
    siam = build("siam_hrnet", **SMALL).eval()  # size-independent: predicted whole
    with torch.no_grad():
        direct = torch.sigmoid(siam(x)["change"])[0, 0].numpy()
    assert abs(inference.predict(siam, inputs, device="cpu") - direct).max() < 1e-5


# ---------------------------------------------------------------------------------------
# Loading weights from a local file
# ---------------------------------------------------------------------------------------

def test_load_weights_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    a = build("deeplabv3", width=0.125).eval()
    torch.manual_seed(1)
    b = build("deeplabv3", width=0.125).eval()
    path = tmp_path / "encoder.pth"
    torch.save(a.encoder.state_dict(), path)
    load_weights(b, path, part="encoder")
    assert all(torch.equal(p, q) for p, q in zip(a.encoder.parameters(), b.encoder.parameters()))
    assert not torch.equal(a.aspp.project[0].weight, b.aspp.project[0].weight)
    full = tmp_path / "full.pth"
    torch.save({"state_dict": {"net." + k: v for k, v in a.state_dict().items()}}, full)
    load_weights(b, full, prefix="net.")
    with torch.no_grad():
        torch.testing.assert_close(a(pair(32, 32))["change"], b(pair(32, 32))["change"])
    with pytest.raises(ConfigError, match="missing.pth: file not found"):
        load_weights(b, tmp_path / "missing.pth")
    wrong = build("deeplabv3", width=0.25)
    with pytest.raises(ConfigError, match="full.pth.*shapes"):
        load_weights(wrong, full, prefix="net.")
    with pytest.raises(ConfigError, match="no part"):
        load_weights(b, path, part="backbone")


# ---------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------

def test_every_table_row_has_a_recipe_with_a_source_per_value():
    from urbankit.models.vhr_recipes import VHR_RECIPES, vhr_recipe

    for row in VHR_TABLE:
        recipe = vhr_recipe(row.model)
        assert recipe["model"] == row.model and recipe["form"] == row.form
        values = set(recipe) - {"sources"}
        assert values == set(recipe["sources"]), (row.model, sorted(values ^ set(recipe["sources"])))
        assert all(isinstance(v, str) and v for v in recipe["sources"].values())
        if recipe["optimizer"] == "sgd":
            assert "momentum" in recipe
        if recipe["optimizer"] == "adam":
            assert "betas" in recipe
    assert vhr_recipe("stanet")["loss"].startswith("batch-balanced contrastive")
    recipe = vhr_recipe("hdanet")
    recipe["lr"] = 1.0
    assert VHR_RECIPES["hdanet"]["lr"] == 1e-4  # copies, never the shared dict
    with pytest.raises(ConfigError, match="no VHR recipe"):
        vhr_recipe("segformer")


def test_segnet_unpooling_equals_torchs_max_unpool():
    from urbankit.models.segnet import unpool2x2

    x = torch.randn(2, 3, 8, 10, requires_grad=True)
    pooled, idx = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    torch.testing.assert_close(unpool2x2(pooled, idx), torch.nn.functional.max_unpool2d(pooled, idx, 2, 2))
    unpool2x2(pooled, idx).sum().backward()
    assert x.grad.sum() == pooled.numel()  # one gradient path per pooled value
