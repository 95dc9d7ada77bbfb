"""Spectral indices and urban-green thresholds."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from urbankit import indices


def _scene():
    bands = ["B03", "B04", "B08", "B11"]
    data = np.array([[[0.1, 0.0]], [[0.1, 0.0]], [[0.5, 0.0]], [[0.2, 0.0]]], np.float32)  # (band, 1, 2)
    return xr.DataArray(data, dims=("band", "y", "x"), coords={"band": bands})


def test_ndvi_ndbi_mndwi_by_hand_and_safe_division():
    s = _scene()
    nd = indices.ndvi(s)
    assert float(nd[0, 0]) == pytest.approx((0.5 - 0.1) / 0.6)
    assert np.isnan(float(nd[0, 1]))  # 0 / 0 -> NaN, no warning, no inf
    assert float(indices.ndbi(s)[0, 0]) == pytest.approx((0.2 - 0.5) / 0.7)
    assert float(indices.mndwi(s)[0, 0]) == pytest.approx((0.1 - 0.2) / 0.3)
    # plain arrays by keyword
    out = indices.ndvi(nir=np.array([0.4, 0.0]), red=np.array([0.2, 0.0]))
    assert out[0] == pytest.approx(1 / 3) and np.isnan(out[1]) and out.dtype == np.float32
    # a scene Dataset with an 'optical' variable
    ds = xr.Dataset({"optical": s})
    assert float(indices.ndvi(ds)[0, 0]) == pytest.approx(float(nd[0, 0]))
    with pytest.raises(indices.DataFormatError, match="B12"):
        indices.ndvi(s, nir_band="B12")


def _bimodal(seed=0, n=(6000, 4000), means=(0.1, 0.6), stds=(0.05, 0.08)):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(means[0], stds[0], n[0]), rng.normal(means[1], stds[1], n[1])])


def test_otsu_on_bimodal_sample():
    v = _bimodal()
    t = indices.otsu_threshold(v)
    assert 0.25 < t < 0.45
    # two spikes: the threshold lies between them
    t2 = indices.otsu_threshold(np.r_[np.zeros(100), np.ones(100)])
    assert 0 < t2 <= 1


def test_gmm_fit_and_intersection():
    v = _bimodal()
    g = indices.fit_gmm_1d(v)
    assert g.means[0] == pytest.approx(0.1, abs=0.01) and g.means[1] == pytest.approx(0.6, abs=0.01)
    assert g.weights[0] == pytest.approx(0.6, abs=0.02)
    t = g.intersection()
    # at the threshold both weighted densities are equal, and it lies between the means
    assert g.means[0] < t < g.means[1]
    assert g.pdf(t, 0) == pytest.approx(g.pdf(t, 1), rel=1e-6)


def test_gmm_intersection_equal_variances_hand():
    g = indices.GaussianMixture1D((0.5, 0.5), (0.0, 1.0), (0.2, 0.2), 0, 0.0)
    assert g.intersection() == pytest.approx(0.5)
    # a heavier lower component pushes the threshold towards the upper mean
    g2 = indices.GaussianMixture1D((0.8, 0.2), (0.0, 1.0), (0.2, 0.2), 0, 0.0)
    hand = 0.5 + 0.2**2 * np.log(0.8 / 0.2) / 1.0
    assert g2.intersection() == pytest.approx(hand)


def test_green_mask_methods_and_urban_restriction():
    v = _bimodal(n=(600, 400)).reshape(20, 50)
    urban = np.zeros((20, 50), bool)
    urban[:, :25] = True
    m, thr = indices.green_mask(v, "fixed", urban_mask=urban)
    assert thr == 0.3 and not m[:, 25:].any()
    for method in ("otsu", "gmm"):
        m, thr = indices.green_mask(v, method, urban_mask=urban)
        assert 0.2 < thr < 0.5
    with pytest.raises(indices.ConfigError):
        indices.green_mask(v, "kmeans")


def test_max_composite_and_majority():
    a = np.array([[0.1, np.nan], [0.5, np.nan], [0.3, np.nan]], np.float32)[:, :, None]  # (time, 2, 1)
    comp, count = indices.max_composite(a)
    assert comp[0, 0] == pytest.approx(0.5) and np.isnan(comp[1, 0])
    assert count[0, 0] == 3 and count[1, 0] == 0
    labels = np.array([1, 0, 1, 1, 0, 0, 1], bool)
    sm = indices.majority_smooth(labels)
    # padded series [1, 1,0,1,1,0,0,1, 1]: windows (1,1,0) (1,0,1) (0,1,1) (1,1,0) (1,0,0) (0,0,1) (0,1,1)
    assert sm.tolist() == [True, True, True, True, False, False, True]
    da = xr.DataArray(labels[:, None], dims=("time", "x"))
    assert indices.majority_smooth(da).values[:, 0].tolist() == sm.tolist()


def test_green_area_table():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    masks[1, :1] = True
    t = indices.green_area_table(masks, [2020, 2021], 0.01)
    assert t["green_km2"].tolist() == pytest.approx([0.08, 0.04])
    assert t["green_pct_of_urban"].tolist() == pytest.approx([50.0, 25.0])
    assert t["change_km2"].iloc[1] == pytest.approx(-0.04)


def test_first_change_years():
    labels = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0], [0, 1, 1]], bool).T[:, :, None]  # (3 years, 4, 1)
    loss, gain = indices.first_change_years(labels, [2019, 2020, 2021])
    # pixel 0: 1,1,0 -> loss 2021; pixel 1: 1,0,1 -> loss 2020, gain 2021; pixel 2: none; pixel 3: gain 2020
    assert loss[:, 0].tolist() == [2021, 2020, 0, 0]
    assert gain[:, 0].tolist() == [0, 2021, 0, 2020]


def test_change_vector_analysis_finds_the_changed_block_and_names_missing_bands():
    import xarray as xr

    from urbankit.errors import ConfigError
    from urbankit.indices import change_vector_analysis

    rng = np.random.default_rng(0)
    bands = ["B02", "B03", "B04", "B08", "B11", "B12"]
    optical = 0.1 + 0.005 * rng.standard_normal((2, len(bands), 40, 40))
    optical[1, :, 10:16, 20:30] += 0.2  # a new bright block: 60 of 1600 pixels (3.75 %)
    scene = xr.Dataset({"optical": (("time", "band", "y", "x"), optical.astype("float32"))},
                       coords={"band": bands}, attrs={"site": "toy"})
    magnitude, mask = change_vector_analysis(scene)
    assert magnitude.shape == (40, 40) and mask.dtype == bool
    assert mask.sum() == 48  # the 97th percentile calls exactly 3 % of 1600 pixels change
    assert mask[10:16, 20:30].sum() == 48  # ... and all of them lie in the new block
    _, otsu_mask = change_vector_analysis(scene, threshold="otsu")
    assert otsu_mask[10:16, 20:30].all() and otsu_mask.sum() == 60
    with pytest.raises(ConfigError, match="toy.*B8A"):
        change_vector_analysis(scene, bands=("B8A",))


def _reference_otsu(v, bins=256):
    """The textbook version (the kit's own before it moved onto scikit-image)."""
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = np.divide(s0, w0, out=np.zeros_like(s0), where=w0 > 0)
    m1 = np.divide(s0[-1] - s0, w1, out=np.zeros_like(s0), where=w1 > 0)
    return float(edges[int(np.argmax((w0 * w1 * (m0 - m1) ** 2)[:-1])) + 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_library_thresholds_agree_with_the_previous_outputs(seed):
    rng = np.random.default_rng(seed)
    cases = [_bimodal(seed), rng.uniform(-1, 1, 3000), _bimodal(seed, (300, 700), (-0.2, 0.5), (0.1, 0.2))]
    for v in cases:
        assert indices.otsu_threshold(v) == pytest.approx(_reference_otsu(v), abs=1e-12)
    # the hand-written EM's outputs on the bimodal sample (seed 0) before scikit-learn took over
    if seed == 0:
        g = indices.fit_gmm_1d(_bimodal())
        assert g.intersection() == pytest.approx(0.29906705311, abs=1e-6)
        assert g.means == pytest.approx((0.099931, 0.601431), abs=1e-6)
        assert indices.otsu_threshold(_bimodal()) == pytest.approx(0.3461542869439921, abs=1e-12)
