"""Spectral indices and NDVI-based urban green mapping (Tucker 1979; KTH SATDES pipeline).

- :func:`ndvi` = (B08 - B04) / (B08 + B04) (Tucker 1979), :func:`ndbi` = (B11 - B08) / (B11 + B08)
  (Zha et al. 2003), :func:`mndwi` = (B03 - B11) / (B03 + B11) (Xu 2006), with safe division
  (NaN where the denominator is 0 or an input is NaN).
- Thresholds for the green / not-green split: a fixed NDVI threshold (**0.3 default**, a
  common fallback, stated with every result), :func:`otsu_threshold` (Otsu 1979, scikit-image on
  a histogram) and :func:`gmm_threshold` (a 2-component 1-D Gaussian mixture fitted by EM with
  scikit-learn; threshold = the intersection of the two weighted Gaussians between the two
  means, as in the KTH SATDES urban-green pipeline).
- :func:`change_vector_analysis`: the classical pixel-level change detector (Malila 1980):
  magnitude of the difference of per-band standardised images, thresholded
  at a percentile (default 97, the kit's baseline) or by Otsu.
- :func:`green_mask` restricted to an urban extent, :func:`max_composite` (per-pixel maximum
  NDVI over time, plus the count of valid observations), :func:`majority_smooth` (3-year
  centred majority of yearly labels, edges padded by repeating the first/last year) and
  :func:`green_area_table`.

Inputs may be ``xarray`` objects (a DataArray with a ``band`` dimension, or a scene Dataset with
an ``optical`` variable) or plain arrays given by keyword (``ndvi(nir=..., red=...)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, DataFormatError

__all__ = [
    "normalized_difference", "ndvi", "ndbi", "mndwi", "otsu_threshold", "GaussianMixture1D",
    "fit_gmm_1d", "gmm_threshold", "change_vector_analysis", "green_mask", "max_composite", "majority_smooth",
    "green_area_table",
    "first_change_years",
    "DEFAULT_NDVI_THRESHOLD",
]

#: Fixed NDVI threshold of the fallback method (a kit default, not from a paper).
DEFAULT_NDVI_THRESHOLD = 0.3


def normalized_difference(a, b):
    """(a - b) / (a + b) in float32; NaN where a + b == 0 or an input is NaN (xarray kept)."""
    a32 = a.astype(np.float32) if hasattr(a, "astype") else np.asarray(a, np.float32)
    b32 = b.astype(np.float32) if hasattr(b, "astype") else np.asarray(b, np.float32)
    num = a32 - b32
    den = a32 + b32
    if hasattr(num, "where") and hasattr(num, "dims"):
        return (num / den.where(den != 0)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)
    return out.astype(np.float32)


def _band(scene, name: str, band_dim: str):
    if scene is None:
        raise ConfigError(f"band {name!r}: give a scene/DataArray or the band arrays by keyword")
    data = scene["optical"] if hasattr(scene, "data_vars") else scene
    if isinstance(data, dict):
        if name not in data:
            raise DataFormatError(f"band {name!r} not in the given dict (have {sorted(data)})")
        return data[name]
    if not hasattr(data, "dims") or band_dim not in data.dims:
        raise DataFormatError(f"expected a DataArray with a {band_dim!r} dimension to pick band {name!r}")
    names = [str(b) for b in data[band_dim].values]
    if name not in names:
        raise DataFormatError(f"band {name!r} not in the scene's bands {names}")
    return data.sel({band_dim: name}, drop=True)


def _named_index(name: str, scene, a, b, band_a: str, band_b: str, band_dim: str):
    """(a - b) / (a + b) with each array given, or taken from ``scene``'s band; a DataArray is named ``name``."""
    a = _band(scene, band_a, band_dim) if a is None else a
    b = _band(scene, band_b, band_dim) if b is None else b
    out = normalized_difference(a, b)
    return out.rename(name) if hasattr(out, "rename") and hasattr(out, "dims") else out


def ndvi(scene=None, *, nir=None, red=None, nir_band: str = "B08", red_band: str = "B04",
         band_dim: str = "band"):
    """Normalised difference vegetation index (Tucker 1979): (NIR - red) / (NIR + red)."""
    return _named_index("ndvi", scene, nir, red, nir_band, red_band, band_dim)


def ndbi(scene=None, *, swir=None, nir=None, swir_band: str = "B11", nir_band: str = "B08",
         band_dim: str = "band"):
    """Normalised difference built-up index (Zha et al. 2003): (SWIR1 - NIR) / (SWIR1 + NIR)."""
    return _named_index("ndbi", scene, swir, nir, swir_band, nir_band, band_dim)


def mndwi(scene=None, *, green=None, swir=None, green_band: str = "B03", swir_band: str = "B11",
          band_dim: str = "band"):
    """Modified normalised difference water index (Xu 2006): (green - SWIR1) / (green + SWIR1)."""
    return _named_index("mndwi", scene, green, swir, green_band, swir_band, band_dim)


# ----------------------------------------------------------------------------------------------
# thresholds


def _finite(values, mask=None) -> np.ndarray:
    v = np.asarray(values.values if hasattr(values, "values") else values, dtype=np.float64)
    if mask is not None:
        m = np.asarray(mask.values if hasattr(mask, "values") else mask, bool)
        v = v[np.broadcast_to(m, v.shape)]
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise DataFormatError("need at least 2 finite values to fit a threshold")
    return v


def otsu_threshold(values, bins: int = 256, mask=None) -> float:
    """Otsu's (1979) threshold: the split of a histogram that maximises the between-class variance.

    ``skimage.filters.threshold_otsu`` on the histogram of the finite values (``mask`` restricts
    them). scikit-image returns the centre of the last bin of the lower class; this returns that
    bin's upper edge, so that every value of the lower class's bins is <= the threshold.
    """
    from skimage.filters import threshold_otsu

    v = _finite(values, mask)
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    centre = threshold_otsu(hist=(hist, centres))
    k = int(np.searchsorted(centres, centre))
    return float(edges[k + 1])


@dataclass(frozen=True)
class GaussianMixture1D:
    """A fitted 2-component 1-D Gaussian mixture (component 0 has the lower mean)."""

    weights: tuple[float, float]
    means: tuple[float, float]
    stds: tuple[float, float]
    n_iter: int
    log_likelihood: float

    def pdf(self, x, component: int | None = None):
        """The mixture density at ``x`` (or one ``component``'s weighted density), same shape as ``x``."""
        x = np.asarray(x, np.float64)
        comps = range(2) if component is None else [component]
        return sum(self.weights[k] * np.exp(-0.5 * ((x - self.means[k]) / self.stds[k]) ** 2)
                   / (self.stds[k] * math.sqrt(2 * math.pi)) for k in comps)

    def intersection(self) -> float:
        """Root of w0 N(x; m0, s0) = w1 N(x; m1, s1) between the two means."""
        (w0, w1), (m0, m1), (s0, s1) = self.weights, self.means, self.stds
        # log form: a x^2 + b x + c = 0
        a = 1 / (2 * s1**2) - 1 / (2 * s0**2)
        b = m0 / s0**2 - m1 / s1**2
        c = m1**2 / (2 * s1**2) - m0**2 / (2 * s0**2) + math.log((w0 * s1) / (w1 * s0))
        if abs(a) < 1e-12:
            roots = [-c / b] if abs(b) > 1e-12 else []
        else:
            disc = b * b - 4 * a * c
            roots = [] if disc < 0 else [(-b + s * math.sqrt(disc)) / (2 * a) for s in (1, -1)]
        inside = [r for r in roots if m0 <= r <= m1]
        if inside:
            return float(inside[0])
        # no crossing between the means (one component dominates): fall back to the midpoint
        return float((m0 + m1) / 2)


def fit_gmm_1d(values, *, mask=None, max_iter: int = 200, tol: float = 1e-7,
               max_samples: int | None = 200_000,
               seed: int = 0) -> GaussianMixture1D:
    """Fit a 2-component Gaussian mixture to 1-D values (``sklearn.mixture.GaussianMixture``, EM).

    Initialised from the Otsu split (means, variances and weights of the two sides), so the fit
    is deterministic; ``max_samples`` draws a seeded subsample of very large inputs. ``tol`` is
    the relative change of the log-likelihood that stops EM (scikit-learn's ``tol`` is absolute
    per sample: it is set to ``tol`` times the mean log-likelihood magnitude of the start). A
    small variance regulariser (1e-3 of (1e-3 x the values' std)^2) keeps EM off degenerate spikes.
    """
    from sklearn.mixture import GaussianMixture

    v = _finite(values, mask)
    if max_samples is not None and v.size > max_samples:
        v = np.random.default_rng(seed).choice(v, size=max_samples, replace=False)
    t = otsu_threshold(v)
    lo, hi = v[v < t], v[v >= t]
    if lo.size < 2 or hi.size < 2:
        lo, hi = np.sort(v)[: v.size // 2], np.sort(v)[v.size // 2:]
    floor = max(1e-6, 1e-3 * float(v.std()))
    var = np.maximum(np.array([lo.var(), hi.var()]), floor**2)
    start = GaussianMixture(2, covariance_type="spherical", weights_init=np.array([lo.size, hi.size]) / v.size,
                            means_init=np.array([[lo.mean()], [hi.mean()]]), precisions_init=1.0 / var)
    x = v[:, None]
    gm = start.set_params(max_iter=max_iter, reg_covar=floor**2 * 1e-3,
                          tol=tol * max(1e-12, abs(_mean_log_likelihood(start, x))), random_state=seed).fit(x)
    mu, sd, w = gm.means_[:, 0], np.sqrt(gm.covariances_), gm.weights_
    order = np.argsort(mu)
    return GaussianMixture1D(tuple(float(x) for x in w[order]), tuple(float(x) for x in mu[order]),
                             tuple(float(x) for x in sd[order]), int(gm.n_iter_), float(gm.score(x) * v.size))


def _mean_log_likelihood(unfitted, x: np.ndarray) -> float:
    """Mean log-likelihood of ``x`` under an unfitted mixture's initial parameters (for ``tol``)."""
    from scipy.stats import norm

    w, mu = unfitted.weights_init, unfitted.means_init[:, 0]
    sd = 1.0 / np.sqrt(unfitted.precisions_init)
    dens = sum(w[k] * norm.pdf(x[:, 0], mu[k], sd[k]) for k in range(2))
    return float(np.log(dens + 1e-300).mean())


def gmm_threshold(values, *, mask=None, **kwargs) -> float:
    """Threshold at the intersection of a fitted 2-component GMM (the KTH SATDES pipeline)."""
    return fit_gmm_1d(values, mask=mask, **kwargs).intersection()


def green_mask(ndvi_values, method: str = "fixed", threshold: float = DEFAULT_NDVI_THRESHOLD,
               urban_mask=None):
    """Urban green: NDVI >= threshold, inside the urban extent only.

    ``method``: ``fixed`` (``threshold``, default 0.3), ``otsu`` or ``gmm`` (fitted on the
    finite NDVI values inside ``urban_mask``, pooled over every date given). Returns
    ``(mask, threshold)``; the mask is False outside ``urban_mask`` and where NDVI is NaN.
    """
    if method == "fixed":
        thr = float(threshold)
    elif method == "otsu":
        thr = otsu_threshold(ndvi_values, mask=urban_mask)
    elif method == "gmm":
        thr = gmm_threshold(ndvi_values, mask=urban_mask)
    else:
        raise ConfigError(f"green_mask: method must be 'fixed', 'otsu' or 'gmm', got {method!r}")
    mask = ndvi_values >= thr
    if urban_mask is not None:
        mask = mask & urban_mask
    if hasattr(mask, "attrs"):
        mask.attrs.update(method=method, threshold=thr)
    return mask, thr


def max_composite(ndvi_stack, dim: str = "time", axis: int = 0):
    """Per-pixel maximum over time ignoring NaN, and the number of valid observations.

    Returns ``(composite, count)``; pixels with no valid observation are NaN / 0.
    For an xarray object, ``dim`` names the time dimension; for numpy, ``axis``.
    """
    if hasattr(ndvi_stack, "dims"):
        return ndvi_stack.max(dim=dim, skipna=True), ndvi_stack.notnull().sum(dim=dim)
    a = np.asarray(ndvi_stack, np.float32)
    count = np.isfinite(a).sum(axis=axis)
    with np.errstate(all="ignore"):
        filled = np.where(np.isfinite(a), a, -np.inf).max(axis=axis)
    return np.where(count > 0, filled, np.nan).astype(np.float32), count


def majority_smooth(labels, axis: int = 0, dim: str | None = None):
    """3-year centred majority vote of yearly binary labels (edges: first/last year repeated).

    For year i the label is the majority of years (i-1, i, i+1); year 0 uses (0, 0, 1) and the
    last year (n-2, n-1, n-1), i.e. the series is padded by repeating its ends.
    """
    if hasattr(labels, "dims"):
        d = dim or labels.dims[0]
        out = majority_smooth(labels.values, axis=labels.get_axis_num(d))
        return labels.copy(data=out)
    a = np.asarray(labels).astype(bool)
    if a.shape[axis] < 2:
        return a.copy()
    a = np.moveaxis(a, axis, 0)
    padded = np.concatenate([a[:1], a, a[-1:]], axis=0).astype(np.uint8)
    votes = padded[:-2] + padded[1:-1] + padded[2:]
    return np.moveaxis(votes >= 2, 0, axis)


def first_change_years(labels, years, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """First year a pixel turns from green to not green (loss) and from not green to green (gain).

    ``labels``: (time, y, x) bool yearly labels (e.g. after :func:`majority_smooth`); returns
    two int32 rasters holding the year of the first loss / first gain, 0 where none happened.
    """
    a = np.moveaxis(np.asarray(labels.values if hasattr(labels, "values") else labels, bool), axis, 0)
    years = np.asarray(years)
    if a.shape[0] != years.size:
        raise DataFormatError(f"labels have {a.shape[0]} years but {years.size} years were given")
    out = []
    for change in (a[:-1] & ~a[1:], ~a[:-1] & a[1:]):  # loss, gain between consecutive years
        hit = change.any(axis=0)
        first = np.argmax(change, axis=0)
        out.append(np.where(hit, years[1:][first], 0).astype(np.int32))
    return out[0], out[1]


def green_area_table(masks, years, cell_area_km2: float, urban_mask=None):
    """Green area (km2, % of the urban area) per year and the year-on-year change.

    ``masks``: (time, y, x) bool; ``urban_mask``: (y, x) bool (None: the whole grid).
    """
    import pandas as pd

    m = np.asarray(masks.values if hasattr(masks, "values") else masks, bool)
    urban = np.ones(m.shape[1:], bool) if urban_mask is None else np.asarray(
        urban_mask.values if hasattr(urban_mask, "values") else urban_mask, bool)
    urban_km2 = urban.sum() * cell_area_km2
    green = (m & urban[None]).reshape(m.shape[0], -1).sum(axis=1) * cell_area_km2
    table = pd.DataFrame({"year": list(years), "green_km2": green,
                          "green_pct_of_urban": green / urban_km2 * 100 if urban_km2 > 0 else np.nan})
    table["change_km2"] = table["green_km2"].diff()
    return table


CVA_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def change_vector_analysis(scene, bands=CVA_BANDS, *, threshold: str = "percentile",
                           percentile: float = 97.0, t1: int = 0, t2: int = -1):
    """Change vector analysis (CVA) between two dates of a scene's ``optical`` variable.

    Each band is standardised with its mean and standard deviation over both dates (NaN
    ignored); the change magnitude is ``sqrt(sum_b (z_t2 - z_t1)^2)``; pixels above the
    threshold are "change". ``threshold="percentile"`` takes the ``percentile`` of the
    magnitudes (97 by default: a fixed 3 % of the pixels are called change), ``"otsu"`` uses
    :func:`otsu_threshold` on the magnitudes.

    Returns ``(magnitude, mask)``: (y, x) float64 and bool numpy arrays. Cite malila1980cva.
    """
    if "optical" not in getattr(scene, "data_vars", {}):
        raise DataFormatError(f"change_vector_analysis: site {scene.attrs.get('site', '?')!r} "
                              "has no 'optical' variable")
    missing = [b for b in bands if b not in scene["optical"].band.values.tolist()]
    if missing:
        raise ConfigError(f"change_vector_analysis: site {scene.attrs.get('site', '?')!r} lacks bands "
                          f"{missing}; it has {scene['optical'].band.values.tolist()}")
    x = scene["optical"].sel(band=list(bands)).transpose("time", "band", "y", "x").values.astype("float64")
    x = x[[t1, t2]]
    mean = np.nanmean(x, axis=(0, 2, 3), keepdims=True)
    std = np.nanstd(x, axis=(0, 2, 3), keepdims=True)
    z = (x - mean) / np.where(std > 0, std, 1.0)
    magnitude = np.sqrt(np.nansum((z[1] - z[0]) ** 2, axis=0))
    if threshold == "percentile":
        cut = float(np.nanpercentile(magnitude, percentile))
    elif threshold == "otsu":
        cut = otsu_threshold(magnitude)
    else:
        raise ConfigError(f"change_vector_analysis: threshold must be 'percentile' or 'otsu', got {threshold!r}")
    return magnitude, magnitude > cut
