"""CA-Markov: Markov matrix on a tiny map, matrix powers, allocation, kappa and FoM."""
from __future__ import annotations

import numpy as np
import pytest

from urbankit import growth
from urbankit.data.synthetic_region import make_city_region


def test_transition_matrix_tiny_map():
    t0 = np.array([[0, 0, 0, 1],
                   [0, 0, 2, 1],
                   [2, 2, 2, 1]])
    t1 = np.array([[0, 1, 1, 1],
                   [0, 0, 2, 1],
                   [2, 2, 1, 1]])
    tm = growth.transition_matrix(t0, t1, years=10)
    assert tm.classes.tolist() == [0, 1, 2]
    # from 0 (5 px): 3 stay, 2 -> 1; from 1 (3 px): stay; from 2 (4 px): 3 stay, 1 -> 1
    assert tm.counts.tolist() == [[3, 2, 0], [0, 3, 0], [0, 1, 3]]
    assert tm.probabilities[0].tolist() == pytest.approx([0.6, 0.4, 0.0])
    assert tm.probabilities[2].tolist() == pytest.approx([0.0, 0.25, 0.75])
    assert np.allclose(tm.probabilities.sum(axis=1), 1)
    assert tm.table("counts").loc["0", "1"] == 2


def test_absent_class_row_is_identity_and_absorbing():
    tm = growth.transition_matrix(np.array([0, 0, 1]), np.array([1, 0, 0]), classes=[0, 1, 2])
    assert tm.probabilities[2].tolist() == [0, 0, 1]
    tm2 = growth.transition_matrix(np.array([0, 0, 1]), np.array([1, 0, 0]), absorbing=1)
    assert tm2.probabilities[1].tolist() == [0, 1]


def test_matrix_power_integer_and_fractional():
    P = np.array([[0.9, 0.1], [0.0, 1.0]])
    assert growth.matrix_power(P, 2).matrix == pytest.approx(P @ P)
    half = growth.matrix_power(P, 0.5)
    assert half.matrix @ half.matrix == pytest.approx(P, abs=1e-12)
    assert not half.adjusted
    # annual matrix of a 10-year interval, raised to 10, gives P back
    tm = growth.TransitionMatrix(np.array([0, 1]), np.zeros((2, 2)), P, years=10)
    assert np.linalg.matrix_power(tm.annual().matrix, 10) == pytest.approx(P, abs=1e-10)
    assert growth.project_counts([100, 0], P, 2) == pytest.approx([81, 19])


def test_distance_decay():
    roads = np.zeros((1, 21), bool)
    roads[0, 0] = True
    s = growth.distance_decay(roads, cell_km=0.1, scale_km=1.0)
    assert s[0, 0] == pytest.approx(1.0) and s[0, 10] == pytest.approx(np.exp(-1.0), rel=1e-6)


def test_neighbourhood_share():
    m = np.zeros((5, 5), int)
    m[2, 2] = 1
    s = growth.neighbourhood_share(m, 1, size=5)
    assert s[2, 2] == pytest.approx(1 / 25)


def test_ca_markov_meets_quota_and_respects_constraints():
    m = np.zeros((30, 30), int)
    m[12:18, 12:18] = 1
    P = np.array([[0.95, 0.05], [0.0, 1.0]])
    water = np.zeros((30, 30), bool)
    water[:, :3] = True
    sim = growth.ca_markov(m, P, 1.0, classes=[0, 1], constraints=water, n_iterations=3)
    expected = round((m == 0).sum() * 0.05)
    assert sim.allocated_transitions[0, 1] == expected
    assert (sim.map == 1).sum() == (m == 1).sum() + expected
    assert not (sim.map[water] == 1).any()
    # the neighbourhood term grows the existing patch: new cells are adjacent to it
    new = (sim.map == 1) & (m == 0)
    ys, xs = np.nonzero(new)
    assert np.all((ys >= 8) & (ys <= 21) & (xs >= 8) & (xs <= 21))


def test_kappa_and_fom_by_hand():
    ref = np.array([0, 0, 0, 0, 1, 1])
    obs = np.array([1, 1, 0, 0, 1, 1])  # 2 changes
    sim = np.array([1, 0, 1, 0, 1, 1])  # 1 hit, 1 miss, 1 false alarm
    f = growth.figure_of_merit(ref, obs, sim)
    assert (f["hits"], f["misses"], f["false_alarms"], f["wrong_hits"]) == (1, 1, 1, 0)
    assert f["fom"] == pytest.approx(1 / 3)
    # kappa: agreement 4/6; both maps have 2 zeros and 4 ones -> chance (2/6)^2 + (4/6)^2
    po = 4 / 6
    pe = (2 / 6) ** 2 + (4 / 6) ** 2
    assert growth.cohen_kappa(obs, sim) == pytest.approx((po - pe) / (1 - pe))
    assert growth.cohen_kappa(obs, obs) == pytest.approx(1.0)
    # one definition with urbankit.metrics: the same 2x2 counts give the same kappa, and one
    # single class in both maps is undefined (0/0), not 1
    from urbankit.metrics import cohen_kappa
    assert growth.cohen_kappa(obs, sim) == pytest.approx(cohen_kappa(tp=3, fp=1, fn=1, tn=1))
    assert np.isnan(growth.cohen_kappa(np.zeros(4), np.zeros(4)))
    v = growth.validate(ref, obs, sim)
    assert v["fom"] == pytest.approx(1 / 3) and "kappa" in v
    # same class amounts, two pixels swapped: no quantity, all allocation disagreement
    assert v["quantity_disagreement"] == pytest.approx(0.0)
    assert v["allocation_disagreement"] == pytest.approx(2 / 6)
    total = v["quantity_disagreement"] + v["allocation_disagreement"]
    assert total == pytest.approx(1 - v["overall_accuracy"])
    d = growth.disagreement(np.array([1, 1, 0, 0]), np.array([1, 1, 1, 0]))
    assert d["quantity_disagreement"] == pytest.approx(0.25) and d["allocation_disagreement"] == 0


def test_ca_markov_on_synthetic_city_beats_random_allocation():
    ds = make_city_region(seed=2, size_km=20, population_start=300_000)
    lc = ds["land_cover"].values
    tm = growth.transition_matrix(lc[0], lc[1], years=10, absorbing=1)
    from scipy import ndimage

    road_km = ndimage.distance_transform_edt(~ds["roads"].values) * 0.1
    suit = {1: np.exp(-road_km) * np.exp(-ds["distance_to_centre_km"].values / 15)}
    sim = growth.ca_markov(lc[1], tm, 1.0, suitability=suit, constraints=ds["water"].values, absorbing=1)
    rnd = growth.ca_markov(lc[1], tm, 1.0, constraints=ds["water"].values, absorbing=1,
                           neighbourhood_weight=0.0)
    v, v0 = growth.validate(lc[1], lc[2], sim.map), growth.validate(lc[1], lc[2], rnd.map)
    assert v["fom"] > 2 * v0["fom"]
    assert v["kappa"] > v0["kappa"]


def test_ca_markov_takes_cells_of_equal_potential_in_the_seeds_random_order():
    """Equal potentials (no suitability, no neighbourhood term) are ranked by the seed alone.

    The cells converted are exactly the quota's lowest ranks of ``permutation(cells)`` drawn from
    the seed, not whichever ties a partition algorithm (which differs between CPUs) leaves first.
    """
    m = np.zeros((20, 20), np.int64)
    P = np.array([[0.9, 0.1], [0.0, 1.0]])
    for seed in (0, 7):
        sim = growth.ca_markov(m, P, 1.0, classes=[0, 1], neighbourhood_weight=0.0, n_iterations=1, seed=seed)
        rank = np.random.default_rng(seed).permutation(m.size)
        expected = np.zeros(m.size, bool)
        expected[np.argsort(rank)[:40]] = True
        np.testing.assert_array_equal(sim.map.ravel() == 1, expected)
    assert not np.array_equal(growth.ca_markov(m, P, 1.0, classes=[0, 1], neighbourhood_weight=0.0, seed=0).map,
                              growth.ca_markov(m, P, 1.0, classes=[0, 1], neighbourhood_weight=0.0, seed=1).map)
