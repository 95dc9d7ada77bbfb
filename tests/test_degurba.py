"""GHSL Degree of Urbanisation (urbankit.degurba): small grids with hand-derived answers.

Every grid below has 1 km2 cells unless stated; each test says which cells must get which
class and why, so the expected arrays are written by hand, not computed by the code under test.
"""
from __future__ import annotations

import numpy as np
import pytest

from urbankit import degurba as dg
from urbankit.errors import ConfigError, DataFormatError


def test_4_vs_8_connectivity_of_urban_centres():
    pop = np.zeros((6, 6))
    pop[1, 1] = pop[2, 2] = 30_000  # diagonal neighbours, 30,000 persons each
    g4 = dg.classify(pop, release="R2022A")
    expected = np.full((6, 6), 11, np.uint8)
    expected[1, 1] = expected[2, 2] = 23  # two 4-connected clusters of 30,000: dense urban clusters
    assert np.array_equal(g4.level2, expected)
    g8 = dg.classify(pop, release="R2022A", centre_connectivity=8)
    expected[1, 1] = expected[2, 2] = 30  # one 8-connected cluster of 60,000 >= 50,000: a centre
    assert np.array_equal(g8.level2, expected)
    assert g8.rules.release == "R2022A (modified)" and "8-connected" in g8.rules.describe()
    assert np.array_equal(g8.level1, np.where(expected == 30, 3, 1))


def test_density_per_km2_of_permanent_land_and_water():
    pop = np.zeros((10, 10))
    land = np.ones((10, 10))
    pop[2:7, 2:7] = 1_000  # 25 cells, 25,000 persons
    land[2:7, 2:7] = 0.5  # 2,000 persons per km2 of land
    land[:, 9] = 0.0  # an unpopulated lake column
    g = dg.classify(pop, land_share=land, release="R2022A")
    expected = np.full((10, 10), 11, np.uint8)
    expected[2:7, 2:7] = 23  # dense (>= 1,500 per km2 of land), 25,000 < 50,000: dense urban cluster
    expected[:, 9] = 10  # land share < 50 %, no population: water
    assert np.array_equal(g.level2, expected)
    assert g.density[3, 3] == pytest.approx(2000.0)
    # density per whole cell (no land grid): 1,000 < 1,500, but >= 300 with 25,000 persons:
    # a semi-dense urban cluster (no centre or dense cluster within 3 cells), and no water class
    g0 = dg.classify(pop, release="R2022A")
    expected0 = np.full((10, 10), 11, np.uint8)
    expected0[2:7, 2:7] = 22
    assert np.array_equal(g0.level2, expected0)
    assert any("all land" in n for n in g0.notes)


def _builtup_case():
    pop = np.zeros((10, 10))
    built = np.zeros((10, 10))
    pop[3:5, 3:5] = 12_000  # 48,000 persons in 4 dense cells
    pop[5, 3:7] = 600  # 4 cells of 600 persons (below 1,500) but 60 % built-up
    built[5, 3:7] = 0.6
    return pop, built


def test_builtup_criterion_r2022a_and_majority_rule():
    pop, built = _builtup_case()
    g = dg.classify(pop, built_share=built, release="R2022A")
    expected = np.full((10, 10), 11, np.uint8)
    # the built-up cells (>= 50 %) join the dense block: 48,000 + 2,400 = 50,400 -> urban centre;
    # then (4, 5) has 5 of 8 neighbours in the centre ((3,4), (4,4), (5,4), (5,5), (5,6)) and joins;
    # no other cell reaches 5
    expected[3:5, 3:5] = 30
    expected[5, 3:7] = 30
    expected[4, 5] = 30
    assert np.array_equal(g.level2, expected)
    assert g.built_threshold == 0.5
    # without the built-up grid: the block is a dense urban cluster (48,000 < 50,000) and the
    # 600-person cells are part of its >= 300 cluster, next to it: suburban / peri-urban
    g0 = dg.classify(pop, release="R2022A")
    expected0 = np.full((10, 10), 11, np.uint8)
    expected0[3:5, 3:5] = 23
    expected0[5, 3:7] = 21
    assert np.array_equal(g0.level2, expected0)
    assert any("not applied" in n for n in g0.notes)


def test_optimal_builtup_threshold_r2023a():
    pop = np.zeros((8, 8))
    built = np.zeros((8, 8))
    pop[2, 2:4] = 3_000  # one dense 6,000-person cluster with built-up shares 0.3 and 0.5
    built[2, 2], built[2, 3] = 0.3, 0.5
    pop[3, 2] = 100  # a sparse cell, 45 % built-up
    built[3, 2] = 0.45
    g = dg.classify(pop, built_share=built, release="R2023A")
    assert g.built_threshold == pytest.approx(0.4)  # mean share of the dense cluster
    expected = np.full((8, 8), 11, np.uint8)
    expected[2, 2:4] = 23
    expected[3, 2] = 23  # 0.45 >= 0.4: joins the dense cluster (6,100 persons)
    assert np.array_equal(g.level2, expected)
    g22 = dg.classify(pop, built_share=built, release="R2022A")
    expected[3, 2] = 12  # 0.45 < 0.5 and 100 persons/km2: low density rural
    assert np.array_equal(g22.level2, expected)


def test_majority_rule_variants_near_water():
    centre = np.zeros((5, 5), bool)
    centre[1:4, 1] = True  # left column of the neighbourhood of (2, 2)
    centre[1, 2] = True  # above -> 4 centre neighbours of (2, 2)
    land = np.ones((5, 5))
    pop = np.zeros((5, 5))
    land[3, 2:4] = 0.0  # below and below-right: water
    land[2, 3] = 0.0  # right: water
    water = land < 0.5
    # R2022A: 4 of 8 < 5: (2, 2) stays out
    r22 = dg.majority_rule(centre, "R2022A", max_iterations=1)
    assert not r22[2, 2]
    # R2023A: counted neighbours are land or centre: 8 - 3 water = 5, of which 4 in the centre > 5/2
    r23 = dg.majority_rule(centre, "R2023A", land_share=land, population=pop, water=water, max_iterations=1)
    assert r23[2, 2]
    # a water cell with 5 of 8 centre neighbours: R2022A adds it, R2023A never does
    c2 = np.zeros((5, 5), bool)
    c2[1, 1:4] = True
    c2[2:4, 1] = True  # (2, 2) has neighbours (1,1), (1,2), (1,3), (2,1), (3,1) = 5
    w2 = np.zeros((5, 5), bool)
    w2[2, 2] = True
    assert dg.majority_rule(c2, "R2022A", max_iterations=1)[2, 2]
    assert not dg.majority_rule(c2, "R2023A", land_share=np.where(w2, 0.0, 1.0), population=pop, water=w2,
                                max_iterations=1)[2, 2]


def test_majority_rule_counts_one_centre_only():
    labels = np.zeros((5, 5), bool)
    labels[1, 1:4] = True  # centre A: 3 neighbours of (2, 2) above
    labels[3, 1:4] = True  # centre B: 3 neighbours below (not 4-connected to A)
    # 6 centre neighbours in total but at most 3 from one centre: not added
    assert not dg.majority_rule(labels, "R2022A", max_iterations=1)[2, 2]
    labels[2, 1] = True  # joins A and B into one centre through (2, 1): now 7 neighbours of one centre
    assert dg.majority_rule(labels, "R2022A", max_iterations=1)[2, 2]


def _ring(hole_cells_side: int, size: int = 12):
    pop = np.zeros((size, size))
    pop[2:10, 2:10] = 2000  # 8 x 8 block
    lo = 2 + (8 - hole_cells_side) // 2
    pop[lo:lo + hole_cells_side, lo:lo + hole_cells_side] = 0
    return pop, lo


def test_gap_size_threshold():
    rules = {"release": "R2022A", "majority": None}
    pop = np.zeros((11, 11))
    pop[1:10, 1:10] = 2000
    pop[4:7, 3:8] = 0  # a hole of 3 x 5 = 15 km2: not < 15, stays
    g = dg.classify(pop, **rules)
    assert (g.level2[4:7, 3:8] == 11).all()
    pop[4, 3] = 2000  # now 14 km2: filled
    g = dg.classify(pop, **rules)
    assert (g.level2[4:7, 3:8] == 30).all()
    # with 0.9 km2 cells the 15-cell hole is 13.5 km2 < 15: filled
    pop[4, 3] = 0
    g = dg.classify(pop, np.full(pop.shape, 0.9), **rules)
    assert (g.level2[4:7, 3:8] == 30).all()


def test_step_order_changes_the_answer():
    pop, lo = _ring(4)  # a 4 x 4 = 16 km2 hole in a 48-cell, 96,000-person centre
    hole = np.zeros(pop.shape, bool)
    hole[lo:lo + 4, lo:lo + 4] = True
    corners = np.zeros(pop.shape, bool)
    for r, c in ((0, 0), (0, 3), (3, 0), (3, 3)):
        corners[lo + r, lo + c] = True  # each hole corner has 5 of 8 neighbours in the centre
    block = np.zeros(pop.shape, bool)
    block[2:10, 2:10] = True
    # smooth first: the 4 corners join, the hole shrinks to 12 km2 < 15 and is filled
    g = dg.classify(pop, release="R2022A", step_order="smooth_then_fill")
    assert np.array_equal(g.level2 == 30, block)
    # fill first: 16 km2 is kept; smoothing then adds the 4 corners only (edge cells have 4 of 8)
    g = dg.classify(pop, release="R2022A", step_order="fill_then_smooth")
    assert np.array_equal(g.level2 == 30, block & ~(hole & ~corners))
    # iterate (both until stable) ends like smooth_then_fill here
    g = dg.classify(pop, release="R2022A", step_order="iterate")
    assert np.array_equal(g.level2 == 30, block)


def test_full_level2_classes_by_hand():
    pop = np.zeros((20, 30))
    land = np.ones((20, 30))
    pop[2:5, 2:5] = 6_000  # 54,000 -> urban centre (30)
    pop[5, 2:5] = 400  # >= 300, in the centre's 300-cluster, within 3 cells -> suburban (21)
    pop[2:4, 20:22] = 2_000  # 8,000 dense -> dense urban cluster (23)
    pop[12:14, 10:13] = 1_000  # 6,000 at 1,000/km2, far from both -> semi-dense (22)
    pop[16, 20:22] = 400  # 800 >= 500 -> rural cluster (13)
    pop[18, 5] = 100  # >= 50 -> low density rural (12)
    pop[18, 8] = 40  # < 50 -> very low density rural (11)
    land[:, 28:] = 0.2  # unpopulated, < 50 % land -> water (10)
    g = dg.classify(pop, land_share=land, release="R2023A")
    e = np.full((20, 30), 11, np.uint8)
    e[2:5, 2:5] = 30
    e[5, 2:5] = 21
    e[2:4, 20:22] = 23
    e[12:14, 10:13] = 22
    e[16, 20:22] = 13
    e[18, 5] = 12
    e[:, 28:] = 10
    assert np.array_equal(g.level2, e)
    lut = {30: 3, 23: 2, 22: 2, 21: 2, 13: 1, 12: 1, 11: 1, 10: 0}
    assert np.array_equal(g.level1, np.vectorize(lut.get)(e))
    s = g.summary().set_index("code")
    assert s.loc[30, "population"] == 54_000 and s.loc[10, "cells"] == 40
    # the same semi-dense cluster within 3 cells of the dense cluster becomes suburban
    pop2 = pop.copy()
    pop2[12:14, 10:13] = 0
    pop2[5:7, 19:22] = 1_000  # rows 5-6: 2 and 3 cells below the dense cluster (rows 2-3)
    g2 = dg.classify(pop2, land_share=land, release="R2023A")
    assert (g2.level2[5:7, 19:22] == 21).all()


def test_rules_and_inputs_are_checked():
    assert dg.RELEASES["R2022A"].built_threshold == 0.5 and dg.RELEASES["R2023A"].built_threshold == "optimal"
    with pytest.raises(ConfigError, match="release"):
        dg.classify(np.zeros((3, 3)), release="R2019A")
    with pytest.raises(ConfigError, match="step_order"):
        dg.classify(np.zeros((3, 3)), step_order="sideways")
    with pytest.raises(ConfigError, match="unknown"):
        dg.rules_for("R2023A", centre_densty=1)
    with pytest.raises(DataFormatError, match="population"):
        dg.classify(np.full((3, 3), -1.0))
    with pytest.raises(DataFormatError, match="non-empty"):
        dg.classify(np.zeros((0, 0)))
    with pytest.raises(DataFormatError, match="land_share"):
        dg.classify(np.zeros((3, 3)), land_share=np.full((3, 3), 2.0))


def test_r2023a_majority_does_not_grow_from_the_grid_edge():
    centre = np.zeros((6, 6), bool)
    centre[1:4, 1:4] = True  # a 3 x 3 centre touching rows/columns 0 only diagonally
    # (0, 2) has 3 centre neighbours ((1, 1), (1, 2), (1, 3)) of its 5 in-grid ones: outside the grid
    # is unknown land, so 3 of 8 is no majority, under both releases
    for version in ("R2022A", "R2023A"):
        out = dg.majority_rule(centre, version, land_share=np.ones((6, 6)), population=np.ones((6, 6)))
        assert np.array_equal(out, centre), version
