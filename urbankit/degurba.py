"""The Degree of Urbanisation, stage I (grid classification), as the GHSL releases implement it.

The Degree of Urbanisation {cite}`dijkstra2021degurba` classifies the cells of a ~1 km2
population grid. Densities are persons per km2 of **permanent land** (cell area times its land
share), not of the whole cell. The GHSL settlement model (GHS-SMOD) applies it in two levels
(GHSL Data Package 2022 and 2023, {cite}`pesaresi2023ghsl`; the same rules as reconstructed
by the flexurba package, {cite}`vanmigerode2024flexurba`):

=====  =========================  ====================================================================
code   class (level 2)            rule (thresholds of :class:`DegurbaRules`)
=====  =========================  ====================================================================
30     urban centre               4-connected cells with density >= 1,500 inh/km2 of land *or* a
                                  built-up share of land >= the built-up threshold; cluster
                                  population >= 50,000; edges smoothed by the majority rule, gaps
                                  < 15 km2 filled
23     dense urban cluster        same cells (4-connected), population >= 5,000, not in a centre
22     semi-dense urban cluster   8-connected cells >= 300 inh/km2, population >= 5,000, farther
                                  than 3 cells from any urban centre or dense urban cluster
21     suburban or peri-urban     the other cells of such 300 / 5,000 clusters
13     rural cluster              8-connected cells >= 300 inh/km2, population >= 500
12     low density rural          other cells >= 50 inh/km2
11     very low density rural     other cells
10     water                      very low density cells with a land share < 50 %, no population
                                  and no built-up surface
=====  =========================  ====================================================================

Level 1 aggregates level 2 (GHSL: "the first level can be obtained aggregating L2"):
3 urban centre (30), 2 urban cluster (23, 22, 21), 1 rural (13, 12, 11), 0 water (10).

The two releases differ in (:data:`RELEASES`):

- **R2022A**: built-up criterion 50 % of permanent land (Data Package 2022, footnote 25);
  majority rule: a cell joins a centre when at least 5 of its 8 neighbours belong to that one
  centre, repeated until nothing changes.
- **R2023A**: the "reduce fragmentation option": an *optimal* built-up threshold, the average
  built-up share of land of the 4-connected clusters >= 1,500 inh/km2 with >= 5,000 persons
  (Data Package 2023, footnote 30; GHSL computes it globally, 20 % for 2020 by flexurba's
  estimate, here it is computed on the grid given unless a number is passed); majority rule
  counted only over land (share > 0.5) or populated neighbours, and water cells are never added
  (footnote 29).

Both releases smooth the edges first and fill the gaps afterwards (``step_order=
"smooth_then_fill"``, the order of the flexurba reconstruction); ``"fill_then_smooth"`` and
``"iterate"`` (both steps repeated until stable, urbankit's earlier rule) are options. Every
choice is printed by :meth:`DegurbaGrid.describe`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import ndimage

from .errors import ConfigError, DataFormatError

__all__ = [
    "L1_CLASSES", "L2_CLASSES", "L2_TO_L1", "RELEASES", "DegurbaGrid", "DegurbaRules", "classify",
    "clusters", "density_per_land", "fill_gaps", "majority_rule", "optimal_builtup_threshold",
    "rules_for", "structure", "urban_centres",
]

#: level-2 codes of GHS-SMOD and their names
L2_CLASSES = {30: "urban centre", 23: "dense urban cluster", 22: "semi-dense urban cluster",
              21: "suburban or peri-urban", 13: "rural cluster", 12: "low density rural",
              11: "very low density rural", 10: "water"}
#: level-1 codes (urbankit: 3/2/1/0) and their names
L1_CLASSES = {3: "urban centre", 2: "urban cluster", 1: "rural", 0: "water"}
#: level 2 -> level 1
L2_TO_L1 = {30: 3, 23: 2, 22: 2, 21: 2, 13: 1, 12: 1, 11: 1, 10: 0}

_STEP_ORDERS = ("smooth_then_fill", "fill_then_smooth", "iterate")


@dataclass(frozen=True)
class DegurbaRules:
    """Thresholds and rules of the grid classification (densities in persons per km2 of land).

    Attributes:
        release: name of the rule set (``R2022A``, ``R2023A`` or a custom label).
        centre_density, centre_population, centre_connectivity: urban-centre cells (inh/km2),
            cluster population (persons), contiguity (4 or 8).
        built_threshold: built-up share of permanent land (0..1) that makes a cell a centre /
            dense-cluster cell regardless of density; ``"optimal"`` (R2023A, computed on the
            grid) or None (no built-up criterion).
        majority: majority rule ``"R2022A"``, ``"R2023A"`` or None (no edge smoothing).
        majority_min_neighbours: neighbours (of 8) the R2022A rule needs.
        gap_km2: gaps (holes) in a centre with an area below this are filled (0: none).
        step_order: ``smooth_then_fill``, ``fill_then_smooth`` or ``iterate``.
        dense_population, dense_connectivity: dense urban clusters (class 23).
        cluster_density, cluster_population, cluster_connectivity: urban clusters (22/21).
        semi_dense_distance_cells: a 300/5,000 cluster within this many cells (chessboard
            distance) of a centre or dense cluster is suburban (21), otherwise semi-dense (22).
        rural_cluster_population: rural clusters (13) at ``cluster_density``.
        low_density: low density rural cells (12), inh/km2.
        water_land_share: a cell with less land than this, no population, no built-up is water.
        max_iterations: cap on the repetitions of the majority rule / ``iterate`` loop.
    """

    release: str = "R2023A"
    centre_density: float = 1500.0
    centre_population: float = 50_000.0
    centre_connectivity: int = 4
    built_threshold: float | str | None = "optimal"
    majority: str | None = "R2023A"
    majority_min_neighbours: int = 5
    gap_km2: float = 15.0
    step_order: str = "smooth_then_fill"
    dense_population: float = 5_000.0
    dense_connectivity: int = 4
    cluster_density: float = 300.0
    cluster_population: float = 5_000.0
    cluster_connectivity: int = 8
    semi_dense_distance_cells: int = 3
    rural_cluster_population: float = 500.0
    low_density: float = 50.0
    water_land_share: float = 0.5
    max_iterations: int = 100

    def check(self) -> DegurbaRules:
        """Validate the values; returns self. Raises ConfigError naming the bad field."""
        for name in ("centre_connectivity", "dense_connectivity", "cluster_connectivity"):
            if getattr(self, name) not in (4, 8):
                raise ConfigError(f"DegurbaRules.{name} must be 4 or 8, got {getattr(self, name)!r}")
        if self.majority not in (None, "R2022A", "R2023A"):
            raise ConfigError(f"DegurbaRules.majority must be R2022A, R2023A or None, got {self.majority!r}")
        if self.step_order not in _STEP_ORDERS:
            raise ConfigError(
                f"DegurbaRules.step_order must be one of {_STEP_ORDERS}, got {self.step_order!r}"
            )
        bt = self.built_threshold
        if not (bt is None or bt == "optimal" or (isinstance(bt, (int, float)) and 0 < bt <= 1)):
            raise ConfigError(
                f"DegurbaRules.built_threshold must be a share in (0, 1], 'optimal' or None, got {bt!r}"
            )
        return self

    def describe(self) -> str:
        """One line with every threshold and rule."""
        bt = self.built_threshold
        built = "no built-up criterion" if bt is None else f"or built-up share of land >= {bt}"
        return (
            f"DEGURBA {self.release}: centre >= {self.centre_density:g} inh/km2 of land {built}, "
            f">= {self.centre_population:,.0f} persons, {self.centre_connectivity}-connected; "
            f"majority rule {self.majority or 'off'}; gaps < {self.gap_km2:g} km2 filled; "
            f"order {self.step_order}; dense cluster >= {self.dense_population:,.0f} "
            f"({self.dense_connectivity}-conn.); urban cluster >= {self.cluster_density:g} inh/km2, "
            f">= {self.cluster_population:,.0f} ({self.cluster_connectivity}-conn.), semi-dense if "
            f"> {self.semi_dense_distance_cells} cells from centres; rural cluster >= "
            f"{self.rural_cluster_population:,.0f}; low density >= {self.low_density:g} inh/km2; "
            f"water: land share < {self.water_land_share:g}, no population, no built-up"
        )


#: the rule sets of the GHSL releases
RELEASES: dict[str, DegurbaRules] = {
    "R2022A": DegurbaRules(release="R2022A", built_threshold=0.5, majority="R2022A"),
    "R2023A": DegurbaRules(release="R2023A", built_threshold="optimal", majority="R2023A"),
}


def rules_for(release: str | DegurbaRules = "R2023A", **overrides) -> DegurbaRules:
    """The :class:`DegurbaRules` of a release (``R2022A``/``R2023A``), with fields overridden.

    Example: ``rules_for("R2022A", centre_connectivity=8)``. An override relabels the release
    (``"R2022A (modified)"``) so that printed results never claim the published rules.
    """
    if isinstance(release, DegurbaRules):
        base = release
    elif release in RELEASES:
        base = RELEASES[release]
    else:
        raise ConfigError(f"release must be one of {sorted(RELEASES)} or a DegurbaRules, got {release!r}")
    if overrides:
        unknown = set(overrides) - set(DegurbaRules.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown DegurbaRules fields {sorted(unknown)}")
        changed = {k: v for k, v in overrides.items() if getattr(base, k) != v}
        base = replace(base, **overrides)
        if changed and "release" not in overrides and not base.release.endswith("(modified)"):
            base = replace(base, release=f"{base.release} (modified)")
    return base.check()


# --------------------------------------------------------------------------------------------
# building blocks


def structure(connectivity: int) -> np.ndarray:
    """The 3x3 bool neighbourhood of 4- (edges) or 8-connectivity (edges and corners)."""
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    if connectivity == 8:
        return np.ones((3, 3), bool)
    raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")


def density_per_land(
    population: np.ndarray, area_km2: np.ndarray, land_share: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Persons per km2 of permanent land, and the land area of each cell.

    Args:
        population: (ny, nx) persons per cell.
        area_km2: (ny, nx) true cell area in km2.
        land_share: (ny, nx) share of permanent land 0..1, or None (all land).

    Returns:
        ``(density, land_km2)``, both (ny, nx) float64. A cell with no land keeps its whole area
        as denominator (so populated cells on a coarse coastline are not infinitely dense).
    """
    if land_share is None:
        land = np.asarray(area_km2, np.float64)
    else:
        land = np.where(land_share > 0, area_km2 * land_share, area_km2)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(land > 0, population / land, 0.0)
    return density, land


def clusters(
    mask: np.ndarray, population: np.ndarray, min_population: float, connectivity: int
) -> tuple[np.ndarray, np.ndarray]:
    """Connected groups of ``mask`` cells whose population sum is >= ``min_population``.

    Returns ``(kept, labels)``: the bool (ny, nx) mask of kept cells and the int32 labels of all
    groups (0 = background), so callers can ask which groups touch something.
    """
    labels, n = ndimage.label(mask, structure=structure(connectivity))
    if n == 0:
        return np.zeros(mask.shape, bool), labels.astype(np.int32)
    sums = ndimage.sum_labels(population, labels, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = sums >= min_population
    return keep[labels], labels.astype(np.int32)


def fill_gaps(mask: np.ndarray, area_km2: np.ndarray, max_km2: float, connectivity: int = 4) -> np.ndarray:
    """Fill the enclosed holes of ``mask`` whose total area is < ``max_km2``.

    The holes use the complementary connectivity (8 for 4-connected foreground and vice versa),
    as digital topology requires; background touching the grid's border is not a hole.
    """
    if max_km2 <= 0:
        return mask
    bg_conn = 8 if connectivity == 4 else 4
    labels, n = ndimage.label(~mask, structure=structure(bg_conn))
    if n == 0:
        return mask
    hole_area = ndimage.sum_labels(np.broadcast_to(area_km2, mask.shape), labels, index=np.arange(1, n + 1))
    fill = np.zeros(n + 1, bool)
    fill[1:] = hole_area < max_km2
    fill[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = False
    fill[0] = False
    return mask | fill[labels]


_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], bool)


def _neighbour_label_range(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    big = np.iinfo(np.int32).max
    hi = ndimage.maximum_filter(labels, footprint=_RING, mode="constant", cval=0)
    lo = ndimage.minimum_filter(np.where(labels > 0, labels, big), footprint=_RING, mode="constant", cval=big)
    return lo, hi


def _dominant_counts(labels: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """For each (row, col) of ``cells``: the largest number of its 8 neighbours in one label."""
    padded = np.pad(labels, 1)
    out = np.zeros(len(cells), np.int64)
    for k, (r, c) in enumerate(cells):
        ring = padded[r : r + 3, c : c + 3][_RING]
        ring = ring[ring > 0]
        out[k] = np.bincount(ring).max() if ring.size else 0
    return out


def _majority_additions(
    mask: np.ndarray,
    version: str,
    counted: np.ndarray | None,
    allowed: np.ndarray | None,
    connectivity: int,
    min_neighbours: int,
) -> np.ndarray:
    labels, _ = ndimage.label(mask, structure=structure(connectivity))
    labels = labels.astype(np.int32)
    n_in = ndimage.convolve(mask.astype(np.uint8), _RING.astype(np.uint8), mode="constant", cval=0)
    if version == "R2022A":
        need = np.full(mask.shape, min_neighbours, np.int64)
    else:  # strict majority of the neighbours that are land, populated or already in a centre;
        # beyond the grid's edge lies unknown land: counted, never centre (no growth from a crop edge)
        valid = (counted | mask).astype(np.uint8)
        n_valid = ndimage.convolve(valid, _RING.astype(np.uint8), mode="constant", cval=1)
        need = n_valid // 2 + 1
    candidates = ~mask & (n_in >= need) & (n_in > 0)
    if allowed is not None:
        candidates &= allowed
    if not candidates.any():
        return candidates
    lo, hi = _neighbour_label_range(labels)
    mixed = candidates & (lo != hi)
    if mixed.any():  # neighbours from two centres: only the largest one counts
        cells = np.argwhere(mixed)
        ok = _dominant_counts(labels, cells) >= need[mixed]
        candidates[tuple(cells[~ok].T)] = False
    return candidates


def majority_rule(
    mask: np.ndarray,
    version: str = "R2022A",
    *,
    land_share: np.ndarray | None = None,
    population: np.ndarray | None = None,
    water: np.ndarray | None = None,
    connectivity: int = 4,
    min_neighbours: int = 5,
    max_iterations: int = 100,
) -> np.ndarray:
    """Smooth the edges of centres by the GHSL majority rule, repeated until nothing is added.

    Args:
        mask: (ny, nx) bool centre cells.
        version: ``"R2022A"``: a cell joins when >= ``min_neighbours`` of its 8 neighbours belong
            to one centre. ``"R2023A"``: when more than half of its *counted* neighbours (land
            share > 0.5 or population > 0, or already centre) belong to one centre; cells in
            ``water`` never join. Neighbours outside the grid count as land outside the centre
            (so a cropped grid does not grow its centres from the crop edge).
        land_share, population, water: (ny, nx) grids for R2023A (None: every cell counts,
            no water).
        connectivity: the centres' contiguity (labels which neighbours form "one" centre).

    Returns:
        The smoothed (ny, nx) bool mask.
    """
    if version not in ("R2022A", "R2023A"):
        raise ConfigError(f"majority rule version must be 'R2022A' or 'R2023A', got {version!r}")
    counted = None
    if version == "R2023A":
        counted = np.ones(mask.shape, bool)
        if land_share is not None or population is not None:
            counted = np.zeros(mask.shape, bool)
            if land_share is not None:
                counted |= land_share > 0.5
            if population is not None:
                counted |= population > 0
    allowed = None if (version == "R2022A" or water is None) else ~water
    out = mask.copy()
    for _ in range(max_iterations):
        add = _majority_additions(out, version, counted, allowed, connectivity, min_neighbours)
        if not add.any():
            break
        out |= add
    return out


# --------------------------------------------------------------------------------------------
# urban centres and the full classification


def optimal_builtup_threshold(
    density: np.ndarray,
    population: np.ndarray,
    land_km2: np.ndarray,
    built_land_share: np.ndarray,
    rules: DegurbaRules,
) -> float:
    """The R2023A "optimal" built-up threshold computed on this grid.

    The average built-up share of permanent land (built-up km2 / land km2, area-weighted) of the
    cells in ``dense_connectivity``-connected clusters with density >= ``centre_density`` and
    population >= ``dense_population`` (GHSL Data Package 2023, footnote 30). NaN when no such
    cluster exists. GHSL derives it from the whole globe: on a small area this is a local estimate.
    """
    dense, _ = clusters(
        density >= rules.centre_density, population, rules.dense_population, rules.dense_connectivity
    )
    land = land_km2[dense].sum()
    if land <= 0:
        return float("nan")
    return float((built_land_share[dense] * land_km2[dense]).sum() / land)


def _smooth_and_fill(mask, area_km2, land_share, population, water, rules: DegurbaRules) -> np.ndarray:
    def smooth(m):
        if rules.majority is None:
            return m
        return majority_rule(
            m,
            rules.majority,
            land_share=land_share,
            population=population,
            water=water,
            connectivity=rules.centre_connectivity,
            min_neighbours=rules.majority_min_neighbours,
            max_iterations=rules.max_iterations,
        )

    def fill(m):
        return fill_gaps(m, area_km2, rules.gap_km2, rules.centre_connectivity)

    if rules.step_order == "smooth_then_fill":
        return fill(smooth(mask))
    if rules.step_order == "fill_then_smooth":
        return smooth(fill(mask))
    for _ in range(rules.max_iterations):  # iterate: both steps until stable
        before = mask
        mask = smooth(fill(mask))
        if np.array_equal(mask, before):
            break
    return mask


def urban_centres(
    dense: np.ndarray,
    population: np.ndarray,
    area_km2: np.ndarray,
    rules: DegurbaRules,
    *,
    land_share: np.ndarray | None = None,
    water: np.ndarray | None = None,
) -> np.ndarray:
    """Urban-centre cells: clusters of ``dense`` cells >= ``centre_population``, smoothed and filled.

    Args:
        dense: (ny, nx) bool cells that pass the density or built-up criterion.
        population, area_km2: (ny, nx) persons and km2 per cell.
        rules: thresholds and rules (majority version, gap size, step order).
        land_share, water: (ny, nx) land share and water cells for the R2023A majority rule.
    """
    mask, _ = clusters(dense, population, rules.centre_population, rules.centre_connectivity)
    return _smooth_and_fill(mask, area_km2, land_share, population, water, rules)


@dataclass
class DegurbaGrid:
    """The classified grid: level-2 codes (:data:`L2_CLASSES`) and what produced them.

    Attributes:
        level2: (ny, nx) uint8 GHS-SMOD level-2 codes.
        population, area_km2, land_km2, density: (ny, nx) float64 inputs and persons per km2 of land.
        rules: the :class:`DegurbaRules` applied.
        built_threshold: the built-up share of land actually used (None: criterion not applied).
        notes: what was assumed (missing land or built-up grid, optimal threshold undefined, ...).
    """

    level2: np.ndarray
    population: np.ndarray
    area_km2: np.ndarray
    land_km2: np.ndarray
    density: np.ndarray
    rules: DegurbaRules
    built_threshold: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def level1(self) -> np.ndarray:
        """(ny, nx) uint8 level-1 codes (3 urban centre, 2 urban cluster, 1 rural, 0 water)."""
        lut = np.zeros(31, np.uint8)
        for l2, l1 in L2_TO_L1.items():
            lut[l2] = l1
        return lut[self.level2]

    def summary(self, level: int = 2) -> pd.DataFrame:
        """Cells, population (persons) and area (km2) per class of ``level`` 1 or 2."""
        codes, names = (self.level2, L2_CLASSES) if level == 2 else (self.level1, L1_CLASSES)
        rows = [
            {
                "code": c,
                "class": n,
                "cells": int((codes == c).sum()),
                "population": float(self.population[codes == c].sum()),
                "area_km2": float(self.area_km2[codes == c].sum()),
            }
            for c, n in names.items()
        ]
        return pd.DataFrame(rows)

    def describe(self) -> str:
        """The rules, the built-up threshold used and the notes, as printed text."""
        bt = "not applied" if self.built_threshold is None else f"{self.built_threshold:.3f}"
        lines = [self.rules.describe(), f"built-up threshold used: {bt}"] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _as_grid(name: str, arr, shape=None, lo=None, hi=None) -> np.ndarray:
    a = np.asarray(arr.values if hasattr(arr, "values") else arr, dtype=np.float64)
    if shape is not None:
        a = np.broadcast_to(a.reshape((-1, 1)) if a.ndim == 1 else a, shape)
    if a.ndim != 2 or 0 in a.shape:
        raise DataFormatError(f"{name} must be a non-empty 2-D (y, x) grid, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataFormatError(
            f"{name} holds {int((~np.isfinite(a)).sum())} NaN/inf cells: mask or fill them first"
        )
    if lo is not None and a.min() < lo or hi is not None and a.max() > hi + 1e-9:
        raise DataFormatError(f"{name} must lie in [{lo}, {hi}], got {a.min():g}..{a.max():g}")
    return a


def _built_criterion(density, population, land_km2, area, built_share, rules, notes):
    """The built-up share of land (or None) and the threshold used (or None)."""
    if rules.built_threshold is None:
        return None, None
    if built_share is None:
        notes.append("no built-up grid given: the built-up criterion was not applied")
        return None, None
    built_land = np.clip(built_share * area / np.where(land_km2 > 0, land_km2, 1.0), 0, 1)
    if rules.built_threshold != "optimal":
        return built_land, float(rules.built_threshold)
    bt = optimal_builtup_threshold(density, population, land_km2, built_land, rules)
    if math.isnan(bt):
        notes.append(
            "optimal built-up threshold undefined (no cluster >= "
            f"{rules.centre_density:g} inh/km2 and {rules.dense_population:,.0f} persons): not applied"
        )
        return None, None
    notes.append(f"optimal built-up threshold computed on this grid: {bt:.3f} (GHSL computes it globally)")
    return built_land, bt


def _urban_cluster_classes(codes, density, population, core, rules) -> None:
    """Classes 22 and 21 in place: 300/5,000 clusters far from / near centres and dense clusters."""
    kept, labels = clusters(
        density >= rules.cluster_density, population, rules.cluster_population, rules.cluster_connectivity
    )
    near = (
        ndimage.binary_dilation(
            core, structure=np.ones((3, 3), bool), iterations=rules.semi_dense_distance_cells
        )
        if core.any()
        else core
    )
    touching = np.unique(labels[near & kept])
    is_near = np.isin(labels, touching[touching > 0]) & kept
    free = codes == 0
    codes[free & kept & ~is_near] = 22
    codes[free & kept & is_near] = 21


def classify(
    population,
    area_km2=1.0,
    *,
    land_share=None,
    built_share=None,
    release: str | DegurbaRules = "R2023A",
    **overrides,
) -> DegurbaGrid:
    """Classify a ~1 km population grid into the GHS-SMOD level-2 classes.

    Args:
        population: (ny, nx) persons per cell (numpy or DataArray), finite and >= 0.
        area_km2: true cell areas in km2: scalar, (ny,) per row or (ny, nx).
        land_share: (ny, nx) share of permanent land 0..1 (GHS-LAND), or None (all land).
        built_share: (ny, nx) built-up surface / cell area 0..1 (GHS-BUILT-S / cell area), or
            None (no built-up criterion).
        release: ``"R2022A"``, ``"R2023A"`` or a :class:`DegurbaRules`.
        **overrides: fields of :class:`DegurbaRules` to change (the release is then "modified").

    Returns:
        :class:`DegurbaGrid` (``level2``, ``level1``, ``summary()``, ``describe()``).
    """
    rules = rules_for(release, **overrides)
    pop = _as_grid("population", population, lo=0)
    area = _as_grid("area_km2", np.asarray(area_km2, np.float64), pop.shape, lo=0)
    land = None if land_share is None else _as_grid("land_share", land_share, pop.shape, 0, 1)
    built = None if built_share is None else _as_grid("built_share", built_share, pop.shape, 0, 1)
    notes = [] if land is not None else ["no land-share grid given: every cell is counted as all land"]
    density, land_km2 = density_per_land(pop, area, land)
    built_land, bt = _built_criterion(density, pop, land_km2, area, built, rules, notes)
    dense = density >= rules.centre_density
    if built_land is not None:
        dense = dense | (built_land >= bt)
    water = np.zeros(pop.shape, bool)
    if land is not None:
        water = (land < rules.water_land_share) & (pop <= 0) & (built is None or built <= 0)
    codes = np.zeros(pop.shape, np.uint8)
    counted_land = land if land is not None else np.ones(pop.shape)
    centre = urban_centres(dense, pop, area, rules, land_share=counted_land, water=water)
    codes[centre] = 30
    dense_cl, _ = clusters(dense, pop, rules.dense_population, rules.dense_connectivity)
    codes[dense_cl & (codes == 0)] = 23
    _urban_cluster_classes(codes, density, pop, codes > 0, rules)
    rural, _ = clusters(
        density >= rules.cluster_density, pop, rules.rural_cluster_population, rules.cluster_connectivity
    )
    codes[rural & (codes == 0)] = 13
    codes[(density >= rules.low_density) & (codes == 0)] = 12
    codes[codes == 0] = 11
    codes[(codes == 11) & water] = 10
    return DegurbaGrid(codes, pop, np.ascontiguousarray(area), land_km2, density, rules, bt, notes)
