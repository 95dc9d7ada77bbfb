"""Figures for scenes, labels and training: every function returns a matplotlib Figure and
never calls ``plt.show()`` (notebooks display the returned figure; scripts save it).

- :func:`show_rgb` / :func:`show_false_colour` - optical composites with a percentile stretch.
- :func:`show_sar` - backscatter in dB with a colour bar.
- :func:`overlay_mask` - draw a binary mask on an existing axes.
- :func:`plot_change_panels` - before / after / change label (and SAR before / after).
- :func:`plot_loss_curve` - training (and validation) curves.

Inputs are schema scenes (``xarray.Dataset``), DataArrays or numpy arrays (channel-first).
NaNs (clouds, no data) show as transparent/black, never as errors.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["show_rgb", "show_false_colour", "show_sar", "overlay_mask", "plot_change_panels",
           "plot_loss_curve", "rgb_array", "calibration_curve", "plot_calibration",
           "BOOK_WIDTH", "BOOK_DPI", "BOOK_STYLE", "book_figsize", "use_book_style"]


# ---- book figure style (one style for every chapter; applied by the chapters' setup cell) ----
#: Width of the book's text column in inches: a figure this wide is shown at its natural size.
BOOK_WIDTH = 7.0
#: Resolution of the figures embedded in the notebooks (a 7-inch figure is 840 px wide).
BOOK_DPI = 120
#: matplotlib rcParams of the book: fonts stay readable when a figure fills the column.
BOOK_STYLE: dict[str, Any] = {
    "figure.figsize": (BOOK_WIDTH, 3.6),
    "figure.dpi": BOOK_DPI,
    "savefig.dpi": BOOK_DPI,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10.5,
    "axes.grid": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",
}


def book_figsize(ncols: int = 1, nrows: int = 1, panel_aspect: float = 1.0,
                 width: float = BOOK_WIDTH) -> tuple[float, float]:
    """Figure size (width, height) in inches for a grid of panels that fills the book column.

    Args:
        ncols, nrows: panels per row and rows.
        panel_aspect: height / width of one panel (1.0 for square image panels).
        width: total width in inches (default the column width, :data:`BOOK_WIDTH`).
    """
    if ncols < 1 or nrows < 1 or panel_aspect <= 0 or width <= 0:
        raise ValueError(f"book_figsize needs ncols, nrows >= 1 and positive sizes, got "
                         f"ncols={ncols}, nrows={nrows}, panel_aspect={panel_aspect}, width={width}")
    # 0.45 in per row for titles and tick labels
    return (width, nrows * (width / ncols * panel_aspect + 0.45))


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib (the chapters' setup cell calls this)."""
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_STYLE)
# ---- end of the book figure style ----


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax: Any, figsize: tuple[float, float] = (5, 5)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = _plt().subplots(figsize=figsize)
    return fig, ax


def _time_index(obj: Any, time: int | str | np.datetime64) -> Any:
    if "time" not in obj.dims:
        return obj
    if isinstance(time, (int, np.integer)):
        return obj.isel(time=int(time))
    return obj.sel(time=time, method="nearest")


def rgb_array(scene_or_array: Any, bands: Sequence[str] = ("B04", "B03", "B02"), time: int = 0,
              stretch: tuple[float, float] | None = (2, 98)) -> np.ndarray:
    """An (H, W, 3) float32 display array in [0, 1] (NaN where any band is NaN).

    Accepts a scene (uses ``optical``), a DataArray with a ``band`` dim (and optionally
    ``time``), or a numpy array (3, H, W) / (T, C, H, W) whose first three channels (of date
    ``time``) are shown. For VHR scenes (bands R, G, B) pass ``bands=("R", "G", "B")``; if the
    requested bands are missing but R, G, B are present, those are used.
    """
    from .data.normalize import percentile_stretch

    obj = scene_or_array
    if hasattr(obj, "data_vars"):
        if "optical" not in obj.data_vars:
            raise ValueError("this scene has no 'optical' variable to show")
        obj = obj["optical"]
    if hasattr(obj, "dims"):
        obj = _time_index(obj, time)
        if "band" in obj.dims:
            names = [str(b) for b in obj["band"].values]
            use = list(bands)
            if not all(b in names for b in use) and all(b in names for b in ("R", "G", "B")):
                use = ["R", "G", "B"]
            arr = np.asarray(obj.sel(band=use).transpose("band", ...).values, dtype=np.float32)
        else:
            arr = np.asarray(obj.values, dtype=np.float32)
    else:
        arr = np.asarray(obj, dtype=np.float32)
        if arr.ndim == 4:
            arr = arr[time]
        if arr.ndim == 3 and arr.shape[0] > 3 and arr.shape[-1] <= 4:
            arr = np.moveaxis(arr, -1, 0)
        if arr.ndim == 3:
            arr = arr[:3]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3)
    if stretch is not None:
        arr = percentile_stretch(arr, stretch[0], stretch[1], per_band=True, axis=0)
    else:
        arr = np.clip(arr, 0, 1)
    return np.moveaxis(arr, 0, -1)


def show_rgb(scene_or_array: Any, bands: Sequence[str] = ("B04", "B03", "B02"), time: int = 0,
             stretch: tuple[float, float] | None = (2, 98), ax: Any = None, title: str | None = None):
    """Show an optical composite (default true colour B04/B03/B02) with a per-band stretch.

    Returns the Figure (of ``ax`` when given). NaN pixels show black.
    """
    fig, ax = _new_axes(ax)
    img = np.nan_to_num(rgb_array(scene_or_array, bands, time, stretch), nan=0.0)
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    if title is None:
        title = "/".join(bands) + (f", t={time}" if isinstance(time, (int, np.integer)) else f", {time}")
    ax.set_title(title)
    return fig


def show_false_colour(scene_or_array: Any, time: int = 0, stretch: tuple[float, float] = (2, 98),
                      ax: Any = None, title: str | None = None):
    """Standard false colour (B08, B04, B03): vegetation red, built-up grey-cyan, water dark."""
    return show_rgb(scene_or_array, ("B08", "B04", "B03"), time, stretch, ax,
                    title or f"false colour B08/B04/B03, t={time}")


def show_sar(scene: Any, pol: str = "VV", time: int = 0, vmin: float = -25, vmax: float = 5,
             ax: Any = None, cmap: str = "gray", title: str | None = None, colorbar: bool = True):
    """Show backscatter in dB (a scene's ``sar``, a DataArray, or a 2-D numpy array in dB)."""
    obj = scene
    if hasattr(obj, "data_vars"):
        if "sar" not in obj.data_vars:
            raise ValueError("this scene has no 'sar' variable to show")
        obj = obj["sar"]
    if hasattr(obj, "dims"):
        obj = _time_index(obj, time)
        if "polarisation" in obj.dims:
            obj = obj.sel(polarisation=pol)
        arr = np.asarray(obj.values, dtype=np.float32)
    else:
        arr = np.asarray(obj, dtype=np.float32)
        if arr.ndim == 4:
            arr = arr[time, 0 if pol == "VV" else 1]
        elif arr.ndim == 3:
            arr = arr[0 if pol == "VV" else 1]
    fig, ax = _new_axes(ax, (5.6, 5))
    im = ax.imshow(np.ma.masked_invalid(arr), vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or f"Sentinel-1 {pol} (dB), t={time}")
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=f"{pol} [dB]")
    return fig


def overlay_mask(ax: Any, mask: Any, color: str | Sequence[float] = "red", alpha: float = 0.5,
                 label: str | None = None) -> Any:
    """Draw a binary mask (True/1 = drawn, NaN/0 = not) on ``ax`` in one colour; returns ``ax``."""
    from matplotlib.colors import to_rgba

    m = np.asarray(getattr(mask, "values", mask), dtype=np.float32)
    m = np.nan_to_num(np.squeeze(m), nan=0.0) > 0.5
    rgba = np.zeros(m.shape + (4,), np.float32)
    rgba[m] = to_rgba(color, alpha)
    ax.imshow(rgba, interpolation="nearest")
    if label:
        from matplotlib.patches import Patch

        handles = list(ax.get_legend().legend_handles) if ax.get_legend() else []
        handles.append(Patch(color=to_rgba(color, alpha), label=label))
        ax.legend(handles=handles, loc="lower right", fontsize="small")
    return ax


def plot_change_panels(scene: Any, bands: Sequence[str] = ("B04", "B03", "B02"), sar: bool | None = None,
                       pol: str = "VV", t1: int = 0, t2: int = -1,
                       figsize: tuple[float, float] | None = None):
    """Before RGB, after RGB, change label (over the after image), and - when the scene has
    ``sar`` (or ``sar=True``) - SAR before/after. One row of panels; returns the Figure.
    """
    plt = _plt()
    has_sar = "sar" in scene.data_vars if sar is None else sar
    has_opt = "optical" in scene.data_vars
    n = (2 if has_opt else 0) + ("change" in scene.data_vars) + (2 if has_sar else 0)
    if n == 0:
        raise ValueError("the scene has none of optical, sar, change to plot")
    fig, axes = plt.subplots(1, n, figsize=figsize or (3.6 * n, 4.0), constrained_layout=True)
    axes = np.atleast_1d(axes)
    times = scene["time"].values if "time" in scene.coords else None

    def when(t: int) -> str:
        if times is None:
            return f"t={t}"
        return str(np.datetime_as_string(times[t], unit="D"))

    i = 0
    if has_opt:
        for t, name in ((t1, "before"), (t2, "after")):
            show_rgb(scene, bands, t, ax=axes[i], title=f"{name} ({when(t)})")
            i += 1
    if "change" in scene.data_vars:
        if has_opt:
            show_rgb(scene, bands, t2, ax=axes[i], title="change label")
            axes[i].images[-1].set_alpha(0.6)
        else:
            axes[i].imshow(np.zeros(scene["change"].shape), cmap="gray", vmin=0, vmax=1)
            axes[i].set_axis_off()
            axes[i].set_title("change label")
        overlay_mask(axes[i], scene["change"], color="red", alpha=0.8)
        frac = float(np.nanmean(np.asarray(scene["change"].values, dtype=np.float32)))
        axes[i].set_title(f"change label ({100 * frac:.1f} % of pixels)")
        i += 1
    if has_sar:
        for t, name in ((t1, "before"), (t2, "after")):
            show_sar(scene, pol, t, ax=axes[i], title=f"{pol} dB {name}", colorbar=False)
            i += 1
    site = scene.attrs.get("site")
    if site:
        fig.suptitle(f"{site} ({scene.attrs.get('dataset', '')})")
    return fig


def plot_loss_curve(history: Any, keys: Sequence[str] | None = None, ax: Any = None,
                    logy: bool = False, title: str = "training curve"):
    """Plot a loss curve: a list/array of values, a dict of lists, or a DataFrame (one line per
    column, or the columns in ``keys``). NaNs leave gaps.
    """
    import pandas as pd

    fig, ax = _new_axes(ax, (6, 3.5))
    if isinstance(history, pd.Series):
        frame = history.to_frame(history.name or "loss")
    elif isinstance(history, pd.DataFrame):
        frame = history
    elif isinstance(history, dict):
        frame = pd.DataFrame({k: pd.Series(np.asarray(v, dtype=float)) for k, v in history.items()})
    else:
        frame = pd.DataFrame({"loss": np.asarray(history, dtype=float).ravel()})
    cols = list(keys) if keys is not None else [c for c in frame.columns
                                                if pd.api.types.is_numeric_dtype(frame[c])]
    x = frame["epoch"] if "epoch" in frame.columns and "epoch" not in cols else frame.index
    for c in cols:
        if c == "epoch":
            continue
        ax.plot(np.asarray(x), frame[c].to_numpy(dtype=float), marker="o" if len(frame) < 30 else None,
                label=str(c))
    ax.set_xlabel("epoch" if "epoch" in frame.columns else "step")
    ax.set_ylabel("value")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(cols) > 1:
        ax.legend()
    ax.set_title(title)
    return fig


def calibration_curve(probabilities: Any, labels: Any, n_bins: int = 10) -> Any:
    """Observed change frequency per bin of predicted probability (a reliability table).

    Args:
        probabilities: predicted change probabilities, any shape (NaN ignored).
        labels: 0/1 labels of the same shape.
        n_bins: equal-width bins over [0, 1].

    Returns:
        A pandas DataFrame, one row per non-empty bin: ``bin_low``, ``bin_high``,
        ``mean_probability``, ``observed_frequency``, ``pixels``.
    """
    import pandas as pd

    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"calibration_curve: {p.size} probabilities but {y.size} labels")
    ok = np.isfinite(p)
    p, y = p[ok], y[ok]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            rows.append({"bin_low": edges[b], "bin_high": edges[b + 1], "mean_probability": float(p[sel].mean()),
                         "observed_frequency": float(y[sel].mean()), "pixels": int(sel.sum())})
    return pd.DataFrame(rows)


def plot_calibration(curves: Mapping[str, Any], thresholds: Mapping[str, float] | None = None,
                     ax: Any = None, title: str = "calibration on the test pixels"):
    """Reliability diagram: observed change frequency against predicted probability.

    Args:
        curves: ``{label: calibration_curve(...)}``.
        thresholds: optional ``{label: decision threshold}`` drawn as vertical lines.
        ax: matplotlib Axes to draw in (a new figure otherwise).

    Returns:
        The matplotlib Figure.
    """
    fig, ax = _new_axes(ax, figsize=(5.2, 4.2))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for k, (label, curve) in enumerate(curves.items()):
        line, = ax.plot(curve["mean_probability"], curve["observed_frequency"], "-o", ms=4, label=label)
        if thresholds and label in thresholds:
            ax.axvline(thresholds[label], color=line.get_color(), lw=0.8, ls="--")
    ax.set_xlabel("predicted change probability")
    ax.set_ylabel("observed change frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title)
    return fig
