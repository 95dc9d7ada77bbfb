"""Figures: return matplotlib Figures, right number of axes, no crash on NaNs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from urbankit import viz  # noqa: E402
from urbankit.data.synthetic import make_site, tiny_sentinel2  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    ds = make_site(size=48, n_dates=3, seed=0, cloud_fraction=0.2)
    ds["optical"][0, :, :5, :5] = np.nan      # no-data corner
    ds["sar"][1, :, -4:, -4:] = np.nan
    return ds


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_show_rgb_scene_array_and_nan(scene):
    fig = viz.show_rgb(scene, time=0)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    fig2 = viz.show_false_colour(scene, time=-1)
    assert len(fig2.axes) == 1
    fig3 = viz.show_rgb(tiny_sentinel2())
    assert isinstance(fig3, Figure)
    arr = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    arr[:, 0, 0] = np.nan
    assert isinstance(viz.show_rgb(arr), Figure)
    allnan = np.full((3, 8, 8), np.nan, np.float32)
    assert isinstance(viz.show_rgb(allnan), Figure)
    rgb = viz.rgb_array(scene, time=0)
    assert rgb.shape == (48, 48, 3) and np.isnan(rgb[0, 0]).all()
    assert np.nanmax(rgb) <= 1 and np.nanmin(rgb) >= 0


def test_show_rgb_on_given_axes(scene):
    fig, axes = plt.subplots(1, 2)
    out = viz.show_rgb(scene, ax=axes[1])
    assert out is fig and len(fig.axes) == 2


def test_show_sar(scene):
    fig = viz.show_sar(scene, pol="VH", time=1)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2            # image + colour bar
    assert "VH" in fig.axes[0].get_title()
    fig2 = viz.show_sar(np.full((8, 8), np.nan), colorbar=False)
    assert len(fig2.axes) == 1


def test_overlay_mask(scene):
    fig, ax = plt.subplots()
    viz.show_rgb(scene, ax=ax)
    mask = scene["change"].values.astype(float)
    mask[0, 0] = np.nan
    out = viz.overlay_mask(ax, mask, "red", 0.5, label="change")
    assert out is ax and len(ax.images) == 2
    assert ax.get_legend() is not None


def test_plot_change_panels(scene):
    fig = viz.plot_change_panels(scene)   # optical + label on top, SAR below with one dB colour bar
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    titles = [a.get_title() for a in fig.axes]
    assert titles[0].startswith("before") and titles[1].startswith("after")
    assert "change" in titles[2] and titles[3].endswith("before") and "dB" in fig.axes[5].get_xlabel()
    rows = {round(a.get_position().y0, 2) for a in fig.axes[:5]}
    assert len(rows) == 2
    no_sar = viz.plot_change_panels(scene.drop_vars("sar"))
    assert len(no_sar.axes) == 3
    sar_only = viz.plot_change_panels(scene.drop_vars("optical"))
    assert len(sar_only.axes) == 4   # label, SAR before, after, their colour bar


def test_plot_loss_curve():
    assert len(viz.plot_loss_curve([1.0, 0.5, np.nan, 0.2]).axes) == 1
    frame = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]})
    fig = viz.plot_loss_curve(frame)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_xlabel() == "epoch"
    fig2 = viz.plot_loss_curve(frame["val_loss"], logy=True)
    assert len(fig2.axes[0].lines) == 1
    fig3 = viz.plot_loss_curve({"loss": [3, 2, 1]})
    assert len(fig3.axes[0].lines) == 1


def test_training_figures_live_in_viz():
    from urbankit import inference, train, viz

    assert train.plot_history is viz.plot_history and inference.plot_examples is viz.plot_examples
    fig = viz.plot_history([{"epoch": 1, "train_loss": 0.5, "val_f1": 0.4, "lr": 1e-3},
                            {"epoch": 2, "train_loss": 0.3, "val_f1": 0.6, "lr": 1e-3}], title="run")
    assert fig.axes[1].get_ylim() == (0.0, 1.0) and fig._suptitle.get_text() == "run"
    assert viz.plot_history([]).axes[0].texts[0].get_text() == "no epochs"


def test_new_development_figures_one_home():
    from urbankit import viz

    codes = np.zeros((6, 6), np.uint8)
    codes[0, :2], codes[3, 3], codes[5, 5] = 1, 2, 3
    built = np.zeros((6, 6), bool)
    built[1:3, 1:3] = True
    extent = np.zeros((6, 6), bool)
    extent[1:5, 1:5] = True
    fig, (ax, bx) = plt.subplots(1, 2)
    viz.show_new_development(ax, codes, built, city_extent=extent, window=(slice(0, 6), slice(0, 6)))
    shown = ax.images[1].get_array()
    assert len(ax.images) == 2 and float(shown[3, 3]) == 2 and np.ma.is_masked(shown[1, 1])
    legend = viz.new_development_legend(fig, built_t1=True, city_extent=True)
    assert [t.get_text() for t in legend.get_texts()] == ["infill", "extension", "leapfrog", "built-up at t1",
                                                           "city extent (DEGURBA)"]
    names = ["new_infill_km2", "new_extension_km2", "new_leapfrog_km2"]
    result = type("R", (), {"table": pd.DataFrame({"name": names, "value": [1.5, 2.0, 0.5]})})()
    viz.plot_new_development_shares(bx, result)
    assert [p.get_height() for p in bx.patches] == [1.5, 2.0, 0.5]
    plt.close(fig)


def test_book_style_and_figure_sizes_fit_the_book_column(scene):
    import matplotlib as mpl

    with mpl.rc_context():
        viz.use_book_style()
        assert mpl.rcParams["figure.dpi"] == viz.BOOK_DPI and mpl.rcParams["font.size"] >= 8
        assert mpl.rcParams["figure.figsize"][0] <= viz.BOOK_WIDTH
    width, height = viz.book_figsize(5)
    assert width == viz.BOOK_WIDTH and 0 < height < width
    assert viz.book_figsize(2, nrows=2)[1] > viz.book_figsize(2)[1]
    with pytest.raises(ValueError, match="ncols"):
        viz.book_figsize(0)
    fig = viz.plot_change_panels(scene)   # five panels in two column-wide rows
    assert fig.get_size_inches()[0] == pytest.approx(viz.BOOK_WIDTH)
    history = viz.plot_history([{"epoch": 1, "train_loss": 0.5}])
    assert history.get_size_inches()[0] <= viz.BOOK_WIDTH
