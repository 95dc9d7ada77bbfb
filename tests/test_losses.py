"""Losses: hand-computed values, identities, gradients and edge cases (urbankit.losses)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from urbankit.errors import ConfigError
from urbankit.losses import (
    change_fraction,
    consistency_l2,
    consistency_power_jaccard,
    daudt_class_weights,
    get_loss,
    jaccard_like_loss,
    power_jaccard,
    weighted_bce,
    weighted_nll,
)

# A 4-pixel example used throughout: probabilities and labels.
PROBS = torch.tensor([0.5, 0.25, 1.0, 0.0], dtype=torch.float64)
LABELS = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


# ----------------------------------------------------------------------------- power Jaccard

def test_power_jaccard_p2_hand_computed():
    # sum(y*yhat) = 0.5 + 1 = 1.5; sum(y^2) = 2; sum(yhat^2) = 0.25 + 0.0625 + 1 = 1.3125
    expected = 1 - 1.5 / (2 + 1.3125 - 1.5 + 1e-6)
    got = power_jaccard(PROBS, LABELS, p=2, from_logits=False)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert got.item() == pytest.approx(0.172414, abs=1e-6)


def test_power_jaccard_p1_is_soft_jaccard():
    # sum(y) = 2, sum(yhat) = 1.75 -> 1 - 1.5 / 2.25 = 1/3
    got = power_jaccard(PROBS, LABELS, p=1, eps=0.0, from_logits=False)
    assert got.item() == pytest.approx(1 / 3, abs=1e-12)


def test_power_jaccard_p15_hand_computed():
    yhat_p = 0.5 ** 1.5 + 0.25 ** 1.5 + 1.0  # elements raised to 1.5, then summed
    expected = 1 - 1.5 / (2 + yhat_p - 1.5 + 1e-6)
    assert power_jaccard(PROBS, LABELS, p=1.5, from_logits=False).item() == pytest.approx(expected, abs=1e-12)


def test_powers_of_sums_pitfall_would_be_caught():
    """Raising the sums (not the elements) to p gives another number: the test above would fail."""
    wrong = 1 - 1.5 / (LABELS.sum() ** 2 + PROBS.sum() ** 2 - 1.5 + 1e-6)   # 1 - 1.5 / 5.5625
    right = power_jaccard(PROBS, LABELS, p=2, from_logits=False)
    assert wrong.item() == pytest.approx(0.730337, abs=1e-6)
    assert abs(right.item() - wrong.item()) > 0.5


def test_power_jaccard_numerator_and_denominator_smoothing():
    expected = 1 - (1.5 + 10) / (1.8125 + 10 + 1e-6)     # the official demo's s = 10
    got = power_jaccard(PROBS, LABELS, p=2, smooth=10.0, from_logits=False)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    # empty target and empty prediction: loss 1 without smoothing (0/eps), 0 with smoothing
    zeros = torch.zeros(4, dtype=torch.float64)
    assert power_jaccard(zeros, zeros, from_logits=False).item() == pytest.approx(1.0)
    assert power_jaccard(zeros, zeros, smooth=1.0, eps=0.0, from_logits=False).item() == pytest.approx(0.0)


def test_power_jaccard_from_logits_applies_sigmoid():
    logits = torch.tensor([0.0, _logit(0.25), 30.0, -30.0], dtype=torch.float64)
    a = power_jaccard(logits, LABELS)
    b = power_jaccard(PROBS, LABELS, from_logits=False)
    assert a.item() == pytest.approx(b.item(), abs=1e-9)


def test_power_jaccard_batch_vs_image_reduction():
    probs = PROBS.reshape(2, 1, 1, 2)
    labels = LABELS.reshape(2, 1, 1, 2)
    # image 1: yhat (0.5, 0.25), y (1, 0): inter 0.5, denom 1 + 0.3125 - 0.5 = 0.8125
    # image 2: yhat (1, 0),     y (1, 0): inter 1,   denom 1 + 1 - 1 = 1
    per_image = torch.tensor([1 - 0.5 / (0.8125 + 1e-6), 1 - 1 / (1 + 1e-6)], dtype=torch.float64)
    none = power_jaccard(probs, labels, from_logits=False, reduction="none")
    assert torch.allclose(none, per_image, atol=1e-12)
    image = power_jaccard(probs, labels, from_logits=False, reduction="image")
    assert image.item() == pytest.approx(per_image.mean().item(), abs=1e-12)
    batch = power_jaccard(probs, labels, from_logits=False, reduction="batch")
    assert batch.item() == pytest.approx(0.172414, abs=1e-6)      # one ratio over all 4 pixels
    assert abs(batch.item() - image.item()) > 0.01


def test_power_jaccard_perfect_prediction_is_near_zero():
    torch.manual_seed(0)
    y = (torch.rand(2, 1, 16, 16) > 0.7).float()
    logits = (y * 2 - 1) * 25.0            # confident and right
    assert power_jaccard(logits, y).item() < 1e-5
    assert power_jaccard(y, y, from_logits=False).item() < 1e-6
    # and a confidently wrong prediction is near the maximum 1
    assert power_jaccard(-logits, y).item() > 0.999


def test_power_jaccard_soft_target_minimum_at_the_target_for_p2():
    # p = 2: sum y^2 + sum yhat^2 - sum y yhat >= sum y yhat, equality iff yhat = y
    y = torch.tensor([0.5, 0.2, 0.9], dtype=torch.float64)
    assert power_jaccard(y, y, p=2, eps=0.0, from_logits=False).item() == pytest.approx(0.0, abs=1e-12)
    # p = 1 is not minimal at a soft target: 1 - 0.25 / (0.5 + 0.5 - 0.25) for one pixel of 0.5
    half = torch.tensor([0.5], dtype=torch.float64)
    assert power_jaccard(half, half, p=1, eps=0.0, from_logits=False).item() == pytest.approx(2 / 3)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
def test_power_jaccard_gradients_finite_and_right_sign(p):
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    logits = torch.tensor([[0.3, -2.0, 0.5, -1.0]], requires_grad=True)
    power_jaccard(logits, y, p=p).backward()
    g = logits.grad
    assert torch.isfinite(g).all()
    assert (g[0, :2] < 0).all()   # raising the logit of a positive pixel lowers the loss
    assert (g[0, 2:] > 0).all()   # raising the logit of a negative pixel raises it


def test_power_jaccard_gradient_finite_at_extremes_and_empty_target():
    logits = torch.tensor([100.0, -100.0, 0.0, 50.0], requires_grad=True)
    y = torch.zeros(4)
    loss = power_jaccard(logits, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_power_jaccard_gradcheck_double():
    torch.manual_seed(1)
    logits = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: power_jaccard(z, y, p=1.5), (logits,))


def test_power_jaccard_half_precision_is_computed_in_float32():
    logits = torch.zeros(1, 1, 64, 64, dtype=torch.bfloat16)
    y = torch.ones(1, 1, 64, 64)
    loss = power_jaccard(logits, y)
    assert loss.dtype == torch.float32
    # yhat = 0.5 everywhere: inter = 0.5 N, denom = N + 0.25 N - 0.5 N = 0.75 N -> 1/3
    assert loss.item() == pytest.approx(1 / 3, abs=1e-6)


def test_power_jaccard_errors_name_the_problem():
    with pytest.raises(ConfigError, match=r"logits has shape \(2, 1, 4, 4\).*target has shape \(2, 4, 4\)"):
        power_jaccard(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ConfigError, match="reduction"):
        power_jaccard(torch.zeros(2, 1), torch.zeros(2, 1), reduction="mean")
    with pytest.raises(ConfigError, match="p must be positive"):
        power_jaccard(torch.zeros(2, 1), torch.zeros(2, 1), p=0)
    with pytest.raises(ConfigError, match="torch tensors"):
        power_jaccard([0.0], torch.zeros(1))


# ----------------------------------------------------------------------------- DS U-Net loss

def test_jaccard_like_equals_two_pj2_minus_one():
    torch.manual_seed(2)
    logits = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    y = (torch.rand(3, 1, 8, 8) > 0.8).double()
    a = jaccard_like_loss(logits, y)
    b = 2 * power_jaccard(logits, y, p=2) - 1
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


def test_jaccard_like_hand_computed_and_range():
    expected = 1 - 2 * 1.5 / (1.3125 + 2 - 1.5 + 1e-6)
    assert jaccard_like_loss(PROBS, LABELS, from_logits=False).item() == pytest.approx(expected, abs=1e-12)
    assert jaccard_like_loss(LABELS, LABELS, from_logits=False).item() == pytest.approx(-1.0, abs=1e-6)
    assert jaccard_like_loss(1 - LABELS, LABELS, from_logits=False).item() == pytest.approx(1.0, abs=1e-6)


def test_jaccard_like_gradient_is_twice_pj2():
    logits = torch.tensor([0.3, -1.2, 0.8, -0.4], dtype=torch.float64, requires_grad=True)
    jaccard_like_loss(logits, LABELS).backward()
    g_like = logits.grad.clone()
    logits.grad = None
    power_jaccard(logits, LABELS, p=2).backward()
    assert torch.allclose(g_like, 2 * logits.grad, atol=1e-12)


# ----------------------------------------------------------------------------- Daudt's weighted NLL

def test_daudt_class_weights():
    w = daudt_class_weights(0.1)                    # fp_modifier 10: [10 * 2 * 0.1, 2 * 0.9]
    assert w.tolist() == pytest.approx([2.0, 1.8])
    w = daudt_class_weights(0.02, fp_modifier=1)   # [0.04, 1.96]: the rare change class weighs 49x
    assert w.tolist() == pytest.approx([0.04, 1.96])
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="strictly between 0 and 1"):
            daudt_class_weights(bad)
    with pytest.raises(ConfigError, match="fp_modifier"):
        daudt_class_weights(0.1, fp_modifier=0)


def test_change_fraction():
    assert change_fraction(torch.tensor([0, 1, 0, 0])) == pytest.approx(0.25)
    assert change_fraction([[1, 1], [0, 0]]) == pytest.approx(0.5)


def test_weighted_bce_hand_computed():
    yhat = torch.tensor([0.8, 0.4], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    # w_nochange = 2, w_change = 1: (-1 * ln 0.8 - 2 * ln 0.6) / (1 + 2)
    expected = (-math.log(0.8) - 2 * math.log(0.6)) / 3
    got = weighted_bce(yhat, y, weights=[2.0, 1.0], from_logits=False)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    logits = torch.tensor([_logit(0.8), _logit(0.4)], dtype=torch.float64)
    got_logits = weighted_bce(logits, y, weights=[2.0, 1.0])
    assert got_logits.item() == pytest.approx(expected, abs=1e-12)


def test_weighted_bce_unweighted_is_plain_bce():
    torch.manual_seed(3)
    logits = torch.randn(2, 1, 5, 5)
    y = (torch.rand(2, 1, 5, 5) > 0.5).float()
    ref = F.binary_cross_entropy_with_logits(logits, y).item()
    assert weighted_bce(logits, y).item() == pytest.approx(ref, abs=1e-6)
    assert get_loss("bce")(logits, y).item() == pytest.approx(weighted_bce(logits, y).item())


def test_weighted_nll_hand_computed():
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=torch.float64)   # 2 pixels x 2 classes
    log_probs = probs.log().T.reshape(1, 2, 1, 2)                          # (B=1, C=2, H=1, W=2)
    target = torch.tensor([[[0, 1]]])
    w0, w1 = 0.5, 3.0
    expected = (w0 * -math.log(0.8) + w1 * -math.log(0.7)) / (w0 + w1)
    assert weighted_nll(log_probs, target, weights=[w0, w1]).item() == pytest.approx(expected, abs=1e-12)
    # a (B, 1, H, W) float target works too
    got = weighted_nll(log_probs, target[:, None].double(), weights=[w0, w1])
    assert got.item() == pytest.approx(expected)


def test_single_logit_and_two_class_forms_agree():
    """Daudt's two-class log-softmax with logits [0, z] is the sigmoid of z: same weighted loss."""
    torch.manual_seed(4)
    z = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    y = (torch.rand(2, 1, 6, 6) > 0.9).double()
    w = daudt_class_weights(change_fraction(y) or 0.05)
    two_class = torch.cat([torch.zeros_like(z), z], dim=1)
    a = weighted_bce(z, y, weights=w)
    b = weighted_nll(two_class.log_softmax(dim=1), y, weights=w)
    c = weighted_nll(two_class, y, weights=w, from_logits=True)
    assert a.item() == pytest.approx(b.item(), abs=1e-9)
    assert b.item() == pytest.approx(c.item(), abs=1e-12)


def test_weighted_losses_gradient_sign_and_weights_matter():
    z = torch.zeros(2, requires_grad=True)
    y = torch.tensor([1.0, 0.0])
    weighted_bce(z, y, weights=[1.0, 9.0], reduction="sum").backward()
    assert z.grad[0] < 0 < z.grad[1]
    assert abs(z.grad[0]) == pytest.approx(9 * abs(z.grad[1]))


def test_weighted_nll_errors():
    with pytest.raises(ConfigError, match="2 classes"):
        weighted_nll(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ConfigError, match="expected"):
        weighted_nll(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 3))
    with pytest.raises(ConfigError, match="class indices 0 or 1"):
        weighted_nll(torch.zeros(1, 2, 1, 1), torch.full((1, 1, 1), 2))
    with pytest.raises(ConfigError, match="2 values"):
        weighted_bce(torch.zeros(2), torch.zeros(2), weights=[1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------- consistency

def test_consistency_l2_hand_computed_and_gradients():
    a = torch.tensor([0.0, 0.0], requires_grad=True)
    b = torch.tensor([math.log(3), -math.log(3)], requires_grad=True)   # probabilities 0.75, 0.25
    loss = consistency_l2(a, b)
    assert loss.item() == pytest.approx((0.25 ** 2 + 0.25 ** 2) / 2)
    loss.backward()
    assert a.grad is not None and b.grad is not None          # no stop-gradient by default
    assert a.grad[0] < 0 < a.grad[1]                           # pulled towards the other's probability
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    consistency_l2(a2, b2, detach_target=True).backward()
    assert b2.grad is None and a2.grad is not None
    assert consistency_l2(b, b).item() == 0.0


def test_consistency_power_jaccard_matches_soft_target_pj():
    torch.manual_seed(5)
    student = torch.randn(2, 1, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 1, 4, 4, requires_grad=True)
    loss = consistency_power_jaccard(student, teacher)
    ref = power_jaccard(student, torch.sigmoid(teacher))
    assert loss.item() == pytest.approx(ref.item(), abs=1e-7)
    loss.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad.abs().sum() > 0   # both networks learn
    # probabilities as the target
    probs = torch.sigmoid(teacher).detach()
    got = consistency_power_jaccard(student, probs, teacher_from_logits=False)
    assert got.item() == pytest.approx(ref.item(), abs=1e-7)
    # detach_target: no gradient reaches the teacher
    s2 = student.detach().clone().requires_grad_()
    t2 = teacher.detach().clone().requires_grad_()
    consistency_power_jaccard(s2, t2, detach_target=True).backward()
    assert t2.grad is None and s2.grad is not None
    # agreeing predictions: ~0 loss (p = 2 is minimal at the soft target)
    same = consistency_power_jaccard(teacher.detach(), teacher.detach(), eps=0.0)
    assert same.item() == pytest.approx(0.0, abs=1e-6)


def test_consistency_shape_mismatch():
    with pytest.raises(ConfigError, match="logits_student has shape"):
        consistency_power_jaccard(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ConfigError, match="logits_a has shape"):
        consistency_l2(torch.zeros(2), torch.zeros(3))


def test_get_loss_registry():
    f = get_loss("power_jaccard", p=1.5)
    assert f(PROBS, LABELS, from_logits=False).item() == pytest.approx(
        power_jaccard(PROBS, LABELS, p=1.5, from_logits=False).item())
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss("dice")


def test_one_loss_registry_for_trainer_and_recipes():
    from urbankit import losses
    from urbankit.train import Supervised

    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    target = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    assert losses.resolve_loss(None) is power_jaccard and losses.resolve_loss("pjacc") is power_jaccard
    # "bce" is plain BCE on logits everywhere, and weighted_bce without weights is the same loss
    assert losses.resolve_loss("bce") is F.binary_cross_entropy_with_logits
    assert losses.resolve_loss("bce")(logits, target).item() == pytest.approx(weighted_bce(logits, target).item())
    assert Supervised(loss="bce").loss_fn is losses.resolve_loss("bce")
    assert losses.resolve_loss(weighted_nll) is weighted_nll
    with pytest.raises(ConfigError, match="unknown loss 'dice'"):
        Supervised(loss="dice")
    with pytest.raises(ConfigError, match="consistency loss must be"):
        losses.resolve_consistency_loss("dice")
