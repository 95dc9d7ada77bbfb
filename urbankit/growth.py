"""CA-Markov urban growth simulation and its validation (Pontius & Millones 2011 for the latter).

1. **Markov chain**: cross-tabulate two class maps (t0 -> t1) into transition counts n_ij and
   row-normalised probabilities P_ij = n_ij / sum_j n_ij for the interval of Δ years
   (:func:`transition_matrix`). Projection k intervals ahead uses P^k
   (:func:`matrix_power`); a non-integer k (e.g. one year = 1/Δ intervals) uses the
   eigendecomposition P = V diag(λ) V^-1, P^k = V diag(λ^k) V^-1, keeping the real part,
   clipping negative entries to 0 and renormalising the rows (a fractional power of a
   stochastic matrix need not be stochastic: the clipping is the usual practical fix and is
   reported by :attr:`MatrixPower.adjusted`). Expected class areas: A(t1 + kΔ) = A(t1) P^k.
   An optional absorbing urban class forbids urban -> anything else.
2. **Cellular automaton allocation** (:func:`ca_markov`): for each class j a transition
   potential = suitability S_j(x) (drivers, e.g. distance to roads/centre; constraints such as
   water = 0) x neighbourhood term ((1 - w) + w N_j(x)), where N_j is the share of class j in a
   5 x 5 window (the IDRISI contiguity filter). Over ``n_iterations`` (default: the number of
   years) the Markov quotas n_i (P^k)_ij are met step by step: each iteration converts, per
   transition i -> j (largest first), the highest-potential cells still in class i, then the
   neighbourhoods are updated.
3. **Validation** (:func:`validate`): overall Cohen's kappa of the simulated vs. the observed
   map, quantity and allocation disagreement (Pontius and Millones 2011), and the Figure of
   Merit on change pixels (Pontius et al.):
   FoM = hits / (hits + misses + wrong hits + false alarms), where a hit is observed and
   simulated change to the same class, a wrong hit is both changed to different classes
   (0 for two classes, then FoM = hits / (hits + misses + false alarms)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage

from .errors import ConfigError, DataFormatError

__all__ = ["TransitionMatrix", "MatrixPower", "transition_matrix", "matrix_power", "project_counts",
           "neighbourhood_share", "distance_decay", "ca_markov", "Simulation", "cohen_kappa", "disagreement",
           "figure_of_merit", "validate"]


def _arr(x) -> np.ndarray:
    return np.asarray(x.values if hasattr(x, "values") else x)


@dataclass
class TransitionMatrix:
    """Markov transition counts and probabilities between two class maps."""

    classes: np.ndarray
    counts: np.ndarray  # (k, k) int64, rows = from-class at t0, columns = to-class at t1
    probabilities: np.ndarray  # (k, k) float64, rows sum to 1
    years: float | None = None

    def table(self, which: str = "probabilities") -> pd.DataFrame:
        """A DataFrame (from x to) of the ``probabilities`` or the ``counts``, labelled by class."""
        data = self.probabilities if which == "probabilities" else self.counts
        labels = [str(c) for c in self.classes]
        return pd.DataFrame(data, index=pd.Index(labels, name="from"), columns=pd.Index(labels, name="to"))

    def power(self, k: float) -> MatrixPower:
        """The matrix power P^k (``k`` intervals, may be fractional) as a :class:`MatrixPower`."""
        return matrix_power(self.probabilities, k)

    def annual(self) -> MatrixPower:
        """The one-year matrix P^(1/Δ) (needs ``years``)."""
        if not self.years:
            raise ConfigError("TransitionMatrix.annual() needs the interval length (years=...)")
        return matrix_power(self.probabilities, 1.0 / self.years)


def transition_matrix(map_t0, map_t1, classes=None, mask=None, years: float | None = None,
                      absorbing=None) -> TransitionMatrix:
    """Cross-tabulate two class maps into Markov transition counts and probabilities.

    Rows without any pixel at t0 get the identity row (the class stays). ``mask`` (bool)
    restricts the pixels; ``absorbing`` (a class value) makes that class absorbing (its row
    becomes the identity: e.g. urban never reverts).
    """
    a, b = _arr(map_t0), _arr(map_t1)
    if a.shape != b.shape:
        raise DataFormatError(f"transition_matrix: maps differ in shape {a.shape} vs {b.shape}")
    if mask is not None:
        m = _arr(mask).astype(bool)
        a, b = a[m], b[m]
    if classes is None:
        classes = np.unique(np.concatenate([np.unique(a), np.unique(b)]))
    classes = np.asarray(classes)
    k = len(classes)
    lut = {int(c): i for i, c in enumerate(classes)}
    ia = np.searchsorted(classes, a.ravel())
    ib = np.searchsorted(classes, b.ravel())
    ok = (ia < k) & (ib < k)
    ok[ok] &= (classes[ia[ok]] == a.ravel()[ok]) & (classes[ib[ok]] == b.ravel()[ok])
    counts = np.bincount(ia[ok] * k + ib[ok], minlength=k * k).reshape(k, k).astype(np.int64)
    probs = _row_normalise(counts.astype(np.float64))
    if absorbing is not None:
        i = lut.get(int(absorbing))
        if i is None:
            raise ConfigError(f"absorbing class {absorbing!r} not among the classes {classes.tolist()}")
        probs[i] = 0.0
        probs[i, i] = 1.0
    return TransitionMatrix(classes, counts, probs, years)


def _row_normalise(m: np.ndarray) -> np.ndarray:
    m = m.copy()
    sums = m.sum(axis=1)
    empty = sums <= 0
    m[empty] = 0.0
    m[empty, np.flatnonzero(empty)] = 1.0
    sums[empty] = 1.0
    return m / sums[:, None]


@dataclass
class MatrixPower:
    """P^k and whether it had to be adjusted (clipped/renormalised) to stay stochastic."""

    matrix: np.ndarray
    k: float
    adjusted: bool
    max_adjustment: float


def matrix_power(P, k: float) -> MatrixPower:
    """P^k for a row-stochastic P: integer k by repeated products, other k by eigendecomposition.

    For a non-integer k the real part of V diag(λ^k) V^-1 is taken, negative entries are set to
    0 and the rows renormalised; ``adjusted``/``max_adjustment`` report how much that changed.
    """
    P = np.asarray(P, np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ConfigError(f"matrix_power: P must be square, got shape {P.shape}")
    if k < 0:
        raise ConfigError(f"matrix_power: k must be >= 0, got {k}")
    if float(k).is_integer():
        return MatrixPower(np.linalg.matrix_power(P, int(k)), float(k), False, 0.0)
    vals, vecs = np.linalg.eig(P)
    lam = vals.astype(np.complex128) ** k
    raw = (vecs @ np.diag(lam) @ np.linalg.inv(vecs)).real
    fixed = _row_normalise(np.clip(raw, 0.0, None))
    adj = float(np.abs(fixed - raw).max())
    return MatrixPower(fixed, float(k), adj > 1e-9, adj)


def project_counts(counts, P, k: float = 1.0) -> np.ndarray:
    """Expected class counts (or areas) k intervals ahead: counts @ P^k."""
    return np.asarray(counts, np.float64) @ matrix_power(P, k).matrix


def distance_decay(features, cell_km: float, scale_km: float) -> np.ndarray:
    """Suitability that decays with the distance to ``features`` (bool map): exp(-d / scale_km).

    E.g. ``distance_decay(roads, 0.1, 1.0)`` is 1 on a road and 0.37 one km away (float32).
    """
    d = ndimage.distance_transform_edt(~_arr(features).astype(bool)) * cell_km
    return np.exp(-d / scale_km).astype(np.float32)


def neighbourhood_share(class_map, cls, size: int = 5) -> np.ndarray:
    """Share of class ``cls`` in a ``size`` x ``size`` window around each cell (float32)."""
    m = (_arr(class_map) == cls).astype(np.float32)
    return ndimage.uniform_filter(m, size=size, mode="nearest")


@dataclass
class Simulation:
    """Result of :func:`ca_markov`."""

    map: np.ndarray
    classes: np.ndarray
    expected_transitions: np.ndarray  # (k, k) Markov quotas n_i (P^k)_ij
    allocated_transitions: np.ndarray  # (k, k) what the CA actually converted
    matrix_power: MatrixPower
    n_iterations: int
    parameters: dict = field(default_factory=dict)

    def class_counts(self) -> pd.Series:
        """Cells per class in the simulated map (a Series named ``cells``)."""
        return pd.Series({str(c): int((self.map == c).sum()) for c in self.classes}, name="cells")


def _suitability_maps(suitability: dict | None, classes: np.ndarray, shape: tuple[int, ...]) -> dict[int, np.ndarray]:
    """``{target class index: suitability map >= 0}`` (1 everywhere for classes not given)."""
    suit = {}
    for j, c in enumerate(classes):
        s = None
        if suitability is not None:
            s = suitability.get(c.item() if hasattr(c, "item") else c)
        suit[j] = np.ones(shape, np.float32) if s is None else np.clip(_arr(s).astype(np.float32), 0, None)
    return suit


def ca_markov(map_now, transition: TransitionMatrix | np.ndarray, steps: float = 1.0, *, classes=None,
              suitability: dict | None = None, constraints=None, n_iterations: int | None = None,
              absorbing=None, neighbourhood: int = 5, neighbourhood_weight: float = 0.9,
              seed: int = 0) -> Simulation:
    """Simulate a future class map with CA-Markov.

    Args:
        map_now: class map at the start (2-D integer array or DataArray).
        transition: a :class:`TransitionMatrix` (its classes and interval) or a probability
            matrix (then give ``classes``).
        steps: how many Markov intervals ahead (non-integer allowed, see :func:`matrix_power`).
        suitability: ``{class: 2-D array >= 0}`` per target class (default 1 everywhere).
        constraints: bool array of cells that never change (e.g. water, protected areas).
        n_iterations: allocation iterations (default: the number of years, ``steps`` x the
            interval length, at least 1).
        classes: the class codes of a plain probability matrix (in its row order).
        absorbing: class that never changes once reached (e.g. urban).
        neighbourhood: window side of the neighbourhood term (5 = 5 x 5).
        neighbourhood_weight: w in potential = S_j x ((1 - w) + w N_j).
        seed: seeds the random order in which cells of equal potential are taken.

    Returns:
        The :class:`Simulation` (map, expected and allocated transitions, parameters).
    """
    current = _arr(map_now).copy()
    if isinstance(transition, TransitionMatrix):
        P, classes, years = transition.probabilities.copy(), transition.classes, transition.years
    else:
        P, years = np.asarray(transition, np.float64).copy(), None
        if classes is None:
            raise ConfigError("ca_markov: give classes= with a plain probability matrix")
        classes = np.asarray(classes)
    k = len(classes)
    if absorbing is not None:
        i = int(np.flatnonzero(classes == absorbing)[0])
        P[i] = 0.0
        P[i, i] = 1.0
    mp = matrix_power(P, steps)
    counts = np.array([(current == c).sum() for c in classes], np.float64)
    expected = counts[:, None] * mp.matrix
    if n_iterations is None:
        n_iterations = max(1, int(round(steps * years))) if years else 1
    fixed = np.zeros(current.shape, bool) if constraints is None else _arr(constraints).astype(bool)
    if fixed.shape != current.shape:
        raise DataFormatError(f"constraints {fixed.shape} must match the map {current.shape}")
    suit = _suitability_maps(suitability, classes, current.shape)
    # cells of equal potential are taken in a random order drawn from `seed`: a unique rank per
    # cell, compared after the potential (a float noise added to the potential would vanish in
    # float32 rounding near 1, and the selection among the remaining ties would then depend on
    # numpy's partition algorithm, which differs between CPUs)
    rank = np.random.default_rng(seed).permutation(current.size)
    original = current.copy()
    changed = np.zeros(current.shape, bool)
    done = np.zeros((k, k), np.int64)
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j and expected[i, j] >= 0.5]
    pairs.sort(key=lambda ij: -expected[ij])
    for it in range(1, n_iterations + 1):
        shares = {j: neighbourhood_share(current, classes[j], neighbourhood) for j in {j for _, j in pairs}}
        for i, j in pairs:
            need = int(round(expected[i, j] * it / n_iterations)) - done[i, j]
            if need <= 0:
                continue
            free = (original == classes[i]) & (current == classes[i]) & ~changed & ~fixed
            cand = np.flatnonzero(free.ravel())
            if cand.size == 0:
                continue
            pot = suit[j].ravel()[cand] * ((1 - neighbourhood_weight) + neighbourhood_weight
                                           * shares[j].ravel()[cand])
            pot[suit[j].ravel()[cand] <= 0] = -1.0  # suitability 0 acts as a constraint
            n_take = min(need, int((pot >= 0).sum()))
            if n_take <= 0:
                continue
            top = cand[np.lexsort((rank[cand], -pot))[:n_take]]   # highest potential first, ties by rank
            flat = current.ravel()
            flat[top] = classes[j]
            changed.ravel()[top] = True
            done[i, j] += top.size
    params = {"steps": steps, "n_iterations": n_iterations,
              "neighbourhood": f"{neighbourhood}x{neighbourhood}",
              "neighbourhood_weight": neighbourhood_weight, "absorbing": absorbing,
              "interval_years": years, "seed": seed}
    return Simulation(current, np.asarray(classes), expected, done, mp, n_iterations, params)


# ----------------------------------------------------------------------------------------------
# validation


def cohen_kappa(a, b, classes=None) -> float:
    """Cohen's kappa between two class maps (:func:`urbankit.metrics.kappa_from_confusion`).

    NaN when kappa is undefined (both maps one and the same single class).
    """
    from .metrics import kappa_from_confusion

    x, y = _arr(a).ravel(), _arr(b).ravel()
    classes = np.union1d(np.unique(x), np.unique(y)) if classes is None else np.asarray(classes)
    ix, iy = np.searchsorted(classes, x), np.searchsorted(classes, y)
    k = len(classes)
    return kappa_from_confusion(np.bincount(ix * k + iy, minlength=k * k).reshape(k, k))


def figure_of_merit(reference, observed, simulated) -> dict:
    """Figure of Merit on change pixels (Pontius et al.).

    ``reference`` = the start map, ``observed`` = the true later map, ``simulated`` = the
    prediction. hits: observed and simulated change to the same class; wrong_hits: both changed,
    to different classes; misses: observed change not simulated; false_alarms: simulated change
    not observed. FoM = hits / (hits + misses + wrong_hits + false_alarms).
    """
    r, o, s = _arr(reference), _arr(observed), _arr(simulated)
    oc, sc = o != r, s != r
    hits = int((oc & sc & (o == s)).sum())
    wrong = int((oc & sc & (o != s)).sum())
    misses = int((oc & ~sc).sum())
    fa = int((~oc & sc).sum())
    den = hits + wrong + misses + fa
    return {"hits": hits, "misses": misses, "wrong_hits": wrong, "false_alarms": fa,
            "fom": hits / den if den else float("nan"),
            "observed_change": int(oc.sum()), "simulated_change": int(sc.sum())}


def disagreement(observed, simulated, classes=None) -> dict:
    """Quantity and allocation disagreement (Pontius and Millones 2011).

    With p_ij the share of pixels simulated as i and observed as j: quantity disagreement
    Q = 1/2 sum_g |p_+g - p_g+| (wrong amounts of each class), allocation disagreement
    A = 1/2 sum_g 2 min(p_g+ - p_gg, p_+g - p_gg) (right amounts in the wrong places), and
    Q + A = 1 - overall accuracy.
    """
    o, s = _arr(observed).ravel(), _arr(simulated).ravel()
    classes = np.union1d(np.unique(o), np.unique(s)) if classes is None else np.asarray(classes)
    k = len(classes)
    p = np.bincount(np.searchsorted(classes, s) * k + np.searchsorted(classes, o),
                    minlength=k * k).reshape(k, k) / o.size
    rows, cols, diag = p.sum(axis=1), p.sum(axis=0), np.diag(p)
    q = 0.5 * float(np.abs(cols - rows).sum())
    a = 0.5 * float((2 * np.minimum(rows - diag, cols - diag)).sum())
    return {"quantity_disagreement": q, "allocation_disagreement": a}


def validate(reference, observed, simulated, classes=None) -> dict:
    """Validation scores of a simulated map against the observed one.

    Overall kappa, kappa on the change/no-change map, quantity and allocation disagreement
    (Pontius and Millones 2011), and the Figure of Merit on change pixels.
    """
    fom = figure_of_merit(reference, observed, simulated)
    r, o, s = _arr(reference), _arr(observed), _arr(simulated)
    out = {"kappa": cohen_kappa(o, s, classes), "kappa_change": cohen_kappa(o != r, s != r),
           "overall_accuracy": float((o == s).mean())}
    out.update(disagreement(o, s, classes))
    out.update(fom)
    return out
