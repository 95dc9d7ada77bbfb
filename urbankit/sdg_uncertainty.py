"""Error-adjusted areas and SDG 11.3.1 with confidence intervals.

A built-up map made by a classifier has omission and commission errors, so the area counted on
the map is biased. Olofsson et al. (2014) {cite}`olofsson2014good` give the good-practice
estimator: draw a **stratified random sample** (strata = the map classes), label it with
reference data, and from the sample's confusion matrix ``n[i, j]`` (rows: map class i, columns:
reference class j) and the mapped area share ``W_i`` of each map class estimate

    p_ij      = W_i * n_ij / n_i.                                  (eq. 4 / 9)
    p_.j      = sum_i p_ij                                         (area share of class j)
    S(p_.j)   = sqrt( sum_i W_i^2 * (n_ij/n_i.) * (1 - n_ij/n_i.) / (n_i. - 1) )   (eq. 10)
    A_j       = A * p_.j,   S(A_j) = A * S(p_.j),   CI = A_j +- z * S(A_j)          (eq. 11)

and the user's, producer's and overall accuracies. :func:`sdg_intervals` carries the two
dates' area estimates into LCR and LCRPGR: by the delta method (the default; the two samples are
independent, population is taken as exact) or by Monte Carlo draws of the two areas.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ConfigError, DataFormatError
from .sdg import RATE_FORMULAS, lcr, pgr

__all__ = ["AreaEstimate", "confusion_matrix", "error_adjusted_area", "format_interval", "sdg_intervals",
           "stratified_sample", "area_estimate_from_maps"]


@dataclass(frozen=True)
class AreaEstimate:
    """Error-adjusted area of one class.

    Attributes:
        area: estimated area (units of the total area given, e.g. km2).
        se: its standard error; ci_low, ci_high: the confidence interval at ``confidence``.
        mapped_area: the area the map counts; confidence: e.g. 0.95.
    """

    area: float
    se: float
    ci_low: float
    ci_high: float
    mapped_area: float
    confidence: float = 0.95

    def covers(self, value: float) -> bool:
        """True when ``value`` lies inside the confidence interval (up to rounding, 1e-9 relative)."""
        tol = 1e-9 * max(abs(value), abs(self.area), 1e-12)
        return self.ci_low - tol <= value <= self.ci_high + tol


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def confusion_matrix(map_values, reference_values, classes=(0, 1)) -> np.ndarray:
    """Sample counts ``n[i, j]``: map class ``classes[i]``, reference class ``classes[j]``.

    Args:
        map_values, reference_values: 1-D sequences of the same length (one item per sample unit).
        classes: the class values, in the order of the rows/columns.

    Raises:
        DataFormatError: lengths differ, or a value is not in ``classes``.
    """
    m = np.asarray(map_values).ravel()
    r = np.asarray(reference_values).ravel()
    if m.shape != r.shape:
        raise DataFormatError(f"map sample ({m.size}) and reference sample ({r.size}) differ in length")
    index = {c: k for k, c in enumerate(classes)}
    for name, v in (("map", m), ("reference", r)):
        extra = set(np.unique(v).tolist()) - set(index)
        if extra:
            raise DataFormatError(
                f"{name} sample holds values {sorted(extra)} not in classes {list(classes)}"
            )
    out = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(out, (np.vectorize(index.get)(m), np.vectorize(index.get)(r)), 1)
    return out


def error_adjusted_area(confusion, mapped_area, *, confidence: float = 0.95, classes=None) -> pd.DataFrame:
    """Olofsson et al. (2014) stratified estimator of the area of every class.

    Args:
        confusion: (k, k) sample counts, rows = map class (stratum), columns = reference class.
        mapped_area: (k,) area of each map class (e.g. km2), the strata sizes.
        confidence: level of the intervals (0.95 -> z = 1.96).
        classes: names of the k classes (default 0..k-1).

    Returns:
        DataFrame, one row per class: ``mapped_area``, ``area`` (error-adjusted), ``se``,
        ``ci_low``, ``ci_high``, ``users_accuracy``, ``producers_accuracy``; ``attrs`` holds
        ``overall_accuracy`` and ``confidence``.

    Raises:
        DataFormatError: a stratum with fewer than 2 sample units (its variance is undefined),
            or shapes that do not agree.
    """
    n = np.asarray(confusion, np.float64)
    a = np.asarray(mapped_area, np.float64).ravel()
    if n.ndim != 2 or n.shape[0] != n.shape[1] or a.size != n.shape[0]:
        raise DataFormatError(f"confusion must be (k, k) and mapped_area (k,), got {n.shape} and {a.shape}")
    n_i = n.sum(axis=1)
    if (n_i < 2).any():
        raise DataFormatError(f"every map class needs >= 2 sample units, got row sums {n_i.tolist()}")
    total = a.sum()
    w = a / total
    frac = n / n_i[:, None]
    p = w[:, None] * frac
    p_j = p.sum(axis=0)
    se_p = np.sqrt((w[:, None] ** 2 * frac * (1 - frac) / (n_i[:, None] - 1)).sum(axis=0))
    z = _z(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        producers = np.diag(p) / p_j
    table = pd.DataFrame(
        {
            "class": list(classes) if classes is not None else list(range(len(a))),
            "mapped_area": a,
            "area": total * p_j,
            "se": total * se_p,
            "ci_low": total * (p_j - z * se_p),
            "ci_high": total * (p_j + z * se_p),
            "users_accuracy": np.diag(frac),
            "producers_accuracy": producers,
        }
    )
    table.attrs.update(overall_accuracy=float(np.trace(p)), confidence=confidence)
    return table


def stratified_sample(map_labels, n_per_class, *, seed: int = 0, classes=(0, 1)) -> np.ndarray:
    """Flat indices of a stratified random sample (without replacement) of a class map.

    Args:
        map_labels: (y, x) class map; n_per_class: sample size per class (int or dict).
        seed: random seed; classes: the strata.

    Raises:
        DataFormatError: a class with fewer cells than its sample size.
    """
    flat = np.asarray(map_labels).ravel()
    rng = np.random.default_rng(seed)
    picks = []
    for c in classes:
        k = n_per_class[c] if isinstance(n_per_class, dict) else int(n_per_class)
        cells = np.flatnonzero(flat == c)
        if cells.size < k:
            raise DataFormatError(f"map class {c!r} has {cells.size} cells, fewer than the {k} to sample")
        picks.append(rng.choice(cells, size=k, replace=False))
    return np.concatenate(picks)


def area_estimate_from_maps(
    map_mask,
    reference_mask,
    cell_area: float,
    n_per_class: int | dict = 100,
    *,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[AreaEstimate, np.ndarray]:
    """Error-adjusted built-up area of a bool map, validated on a stratified sample of cells.

    ``reference_mask`` plays the reference data (in practice: photo-interpreted sample units;
    only the sampled cells are read). ``n_per_class``: sample size per stratum, an int or
    ``{0: n_not_built, 1: n_built}`` (give the large stratum more units when its errors are rare).
    Returns the :class:`AreaEstimate` of the built class and the (2, 2) confusion matrix (rows
    map 0/1, columns reference 0/1).
    """
    m = np.asarray(map_mask, bool)
    if m.shape != np.shape(reference_mask):
        raise DataFormatError(f"map {m.shape} and reference {np.shape(reference_mask)} differ in shape")
    idx = stratified_sample(m.astype(np.uint8), n_per_class, seed=seed)
    ref = np.asarray(reference_mask, bool).ravel()[idx]
    conf = confusion_matrix(m.ravel()[idx].astype(np.uint8), ref.astype(np.uint8))
    mapped = np.array([(~m).sum(), m.sum()], np.float64) * cell_area
    row = error_adjusted_area(conf, mapped, confidence=confidence).iloc[1]
    est = AreaEstimate(
        float(row["area"]),
        float(row["se"]),
        float(row["ci_low"]),
        float(row["ci_high"]),
        float(row["mapped_area"]),
        confidence,
    )
    return est, conf


def _delta_lcr(a1: AreaEstimate, a2: AreaEstimate, years: float, formula: str) -> float:
    if formula == "ln":
        return math.sqrt((a1.se / a1.area) ** 2 + (a2.se / a2.area) ** 2) / years
    return math.sqrt((a2.se / (a1.area * years)) ** 2 + (a2.area * a1.se / (a1.area**2 * years)) ** 2)


def _mc_lcr(
    a1: AreaEstimate, a2: AreaEstimate, years: float, formula: str, n_draws: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d1 = rng.normal(a1.area, a1.se, n_draws)
    d2 = rng.normal(a2.area, a2.se, n_draws)
    ok = (d1 > 0) & (d2 > 0)
    d1, d2 = d1[ok], d2[ok]
    return np.log(d2 / d1) / years if formula == "ln" else (d2 - d1) / (d1 * years)


def sdg_intervals(
    area_t1: AreaEstimate,
    area_t2: AreaEstimate,
    pop_t1: float,
    pop_t2: float,
    years: float,
    *,
    lcr_formula: str = "ln",
    method: str = "delta",
    n_draws: int = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """LCR and LCRPGR with confidence intervals from two error-adjusted built-up areas.

    Args:
        area_t1, area_t2: :class:`AreaEstimate` of the built-up area at both dates (independent
            validation samples; same confidence level).
        pop_t1, pop_t2: populations (taken as exact: their error is not propagated).
        years: y = t2 - t1; lcr_formula: ``ln`` or ``linear`` (:data:`urbankit.sdg.RATE_FORMULAS`).
        method: ``delta`` (first-order, symmetric) or ``monte_carlo`` (normal draws of both
            areas, percentile interval).

    Returns:
        DataFrame with rows ``built_up_area_t1``, ``built_up_area_t2``, ``LCR``, ``PGR``,
        ``LCRPGR`` and columns ``estimate``, ``ci_low``, ``ci_high``; ``attrs`` holds the
        method, formula and confidence.
    """
    if lcr_formula not in RATE_FORMULAS:
        raise ConfigError(f"lcr_formula must be one of {sorted(RATE_FORMULAS)}, got {lcr_formula!r}")
    if abs(area_t1.confidence - area_t2.confidence) > 1e-12:
        raise ConfigError("both area estimates must have the same confidence level")
    conf = area_t1.confidence
    est = lcr(area_t1.area, area_t2.area, years, lcr_formula)
    if method == "delta":
        half = _z(conf) * _delta_lcr(area_t1, area_t2, years, lcr_formula)
        lo, hi = est - half, est + half
    elif method == "monte_carlo":
        draws = _mc_lcr(area_t1, area_t2, years, lcr_formula, n_draws, seed)
        lo, hi = np.quantile(draws, [(1 - conf) / 2, (1 + conf) / 2])
    else:
        raise ConfigError(f"method must be 'delta' or 'monte_carlo', got {method!r}")
    p = pgr(pop_t1, pop_t2, years, lcr_formula)
    ratio = sorted((lo / p, hi / p)) if p and math.isfinite(p) else [float("nan")] * 2
    rows = {
        "built_up_area_t1": (area_t1.area, area_t1.ci_low, area_t1.ci_high),
        "built_up_area_t2": (area_t2.area, area_t2.ci_low, area_t2.ci_high),
        "LCR": (est, float(lo), float(hi)),
        "PGR": (p, p, p),
        "LCRPGR": (est / p if p else float("nan"), ratio[0], ratio[1]),
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "ci_low", "ci_high"])
    table.attrs.update(method=method, lcr_formula=lcr_formula, confidence=conf)
    return table


def format_interval(
    name: str, estimate: float, low: float, high: float, confidence: float = 0.95, digits: int = 2
) -> str:
    """``"LCRPGR 1.40 (95 % CI 1.10-1.80)"``."""
    return (
        f"{name} {estimate:.{digits}f} ({confidence:.0%} CI {low:.{digits}f} to {high:.{digits}f})".replace(
            "% CI", " % CI"
        )
    )
