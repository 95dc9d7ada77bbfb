"""Figures for scenes, labels and training.

Every function returns a matplotlib Figure and never calls ``plt.show()`` (notebooks
display the returned figure; scripts save it).

- :func:`show_rgb` / :func:`show_false_colour` - optical composites with a percentile stretch.
- :func:`show_sar` - backscatter in dB with a colour bar.
- :func:`overlay_mask` - draw a binary mask on an existing axes.
- :func:`plot_change_panels` - before / after / change label (and SAR before / after).
- :func:`plot_history` - a fit history: losses, validation scores and learning rate.
- :func:`plot_examples` - inputs, label and prediction of example sites (best/median/worst).
- :func:`plot_loss_curve` - training (and validation) curves.

Inputs are schema scenes (``xarray.Dataset``), DataArrays or numpy arrays (channel-first).
NaNs (clouds, no data) show as transparent/black, never as errors.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["show_rgb", "show_false_colour", "show_sar", "overlay_mask", "plot_change_panels",
           "plot_history", "plot_examples", "show_new_development", "new_development_legend",
           "plot_new_development_shares", "NEW_DEVELOPMENT_COLOURS", "plot_loss_curve", "rgb_array",
           "calibration_curve", "plot_calibration",
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
    # 0.6 in per row for (two-line) titles and tick labels
    return (width, nrows * (width / ncols * panel_aspect + 0.6))


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


def _shown_variable(obj: Any, name: str, time: int | str | np.datetime64) -> Any:
    """A scene's ``name`` variable (or the DataArray/array given) at ``time`` when it has one."""
    if hasattr(obj, "data_vars"):
        if name not in obj.data_vars:
            raise ValueError(f"this scene has no {name!r} variable to show")
        obj = obj[name]
    return _time_index(obj, time) if hasattr(obj, "dims") else obj


def rgb_array(scene_or_array: Any, bands: Sequence[str] = ("B04", "B03", "B02"), time: int = 0,
              stretch: tuple[float, float] | None = (2, 98)) -> np.ndarray:
    """An (H, W, 3) float32 display array in [0, 1] (NaN where any band is NaN).

    Accepts a scene (uses ``optical``), a DataArray with a ``band`` dim (and optionally
    ``time``), or a numpy array (3, H, W) / (T, C, H, W) whose first three channels (of date
    ``time``) are shown. For VHR scenes (bands R, G, B) pass ``bands=("R", "G", "B")``; if the
    requested bands are missing but R, G, B are present, those are used.
    """
    from .data.normalize import percentile_stretch

    obj = _shown_variable(scene_or_array, "optical", time)
    if hasattr(obj, "dims"):
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
    obj = _shown_variable(scene, "sar", time)
    if hasattr(obj, "dims"):
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
    """Change panels as wide as the book column by default; returns the Figure.

    Before RGB, after RGB, change label (over the after image); when the scene has ``sar``
    (or ``sar=True``), SAR before/after with one dB colour bar. A scene with both optical and
    SAR gets two rows (optical and label on top, SAR below) so panels stay readable.
    """
    plt = _plt()
    has_sar = "sar" in scene.data_vars if sar is None else sar
    has_opt = "optical" in scene.data_vars
    top = (2 if has_opt else 0) + ("change" in scene.data_vars)
    if top + (2 if has_sar else 0) == 0:
        raise ValueError("the scene has none of optical, sar, change to plot")
    two_rows = has_sar and has_opt
    ncols = max(top, 2) if two_rows else top + (2 if has_sar else 0)
    nrows = 2 if two_rows else 1
    if figsize is None:  # + 0.6 in for the SAR colour bar
        width, height = book_figsize(ncols, nrows, panel_aspect=1.0)
        figsize = (width, height + (0.6 if has_sar else 0.0))
    fig, grid = plt.subplots(nrows, ncols, figsize=figsize, constrained_layout=True, squeeze=False)
    axes = list(grid[0, :top]) + (list(grid[1, :2]) if two_rows else list(grid[0, top:]))
    for ax in grid.flat:
        if not any(ax is a for a in axes):
            fig.delaxes(ax)
    times = scene["time"].values if "time" in scene.coords else None

    def when(t: int) -> str:
        if times is None:
            return f"t={t}"
        return str(np.datetime_as_string(times[t], unit="D"))

    i = 0
    if has_opt:
        for t, name in ((t1, "before"), (t2, "after")):
            show_rgb(scene, bands, t, ax=axes[i], title=f"{name}\n{when(t)}")
            i += 1
    if "change" in scene.data_vars:
        if has_opt:
            show_rgb(scene, bands, t2, ax=axes[i], title="change label")
            axes[i].images[-1].set_alpha(0.6)
        else:
            axes[i].imshow(np.zeros(scene["change"].shape), cmap="gray", vmin=0, vmax=1)
            axes[i].set_axis_off()
        overlay_mask(axes[i], scene["change"], color="red", alpha=0.8)
        frac = float(np.nanmean(np.asarray(scene["change"].values, dtype=np.float32)))
        axes[i].set_title(f"change label (red)\n{100 * frac:.1f} % of pixels")
        i += 1
    if has_sar:
        for t, name in ((t1, "before"), (t2, "after")):
            show_sar(scene, pol, t, ax=axes[i], title=f"Sentinel-1 {pol}, {name}", colorbar=False)
            i += 1
        fig.colorbar(axes[i - 1].images[0], ax=axes[i - 2:i], location="bottom", shrink=0.7, aspect=30,
                     label=f"{pol} backscatter [dB]")
    site = scene.attrs.get("site")
    if site:
        fig.suptitle(f"{site} ({scene.attrs.get('dataset', '')})")
    return fig


# ----------------------------------------------------------------------------- training figures
def plot_history(history: Any, metrics: Sequence[str] | None = None, title: str | None = None):
    """A Figure of a fit history: losses (left), validation metrics and learning rate (right).

    Args:
        history: ``FitResult.history`` (a DataFrame with ``epoch``, ``train_loss``,
            ``val_loss``, ``val_f1``..., ``lr``) or a list of epoch records.
        metrics: the score columns to draw on the right (default: the ``val_f1``,
            ``val_precision``, ``val_recall``, ``val_iou`` columns present), scale 0..1.
        title: the figure's title.

    Returns:
        A matplotlib Figure (two panels; "no epochs" when the history is empty).
    """
    import pandas as pd

    plt = _plt()
    df = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH, 3.0), constrained_layout=True)
    if df.empty:
        for a in axes:
            a.text(0.5, 0.5, "no epochs", ha="center", va="center", transform=a.transAxes)
        return fig
    x = df["epoch"]
    ax = axes[0]
    for col, style in (("train_loss", "-o"), ("val_loss", "--o")):
        if col in df:
            ax.plot(x, df[col], style, ms=3, label=col.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    metrics = list(metrics) if metrics is not None else [
        c for c in ("val_f1", "val_precision", "val_recall", "val_iou") if c in df]
    for col in metrics:
        ax.plot(x, df[col], "-o", ms=3, label=col.replace("val_", "val "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("score")
    if metrics:
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    if "lr" in df:
        ax2 = ax.twinx()
        ax2.plot(x, df["lr"], ":", color="grey", label="lr")
        ax2.set_ylabel("learning rate", color="grey")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    if title:
        fig.suptitle(title)
    return fig


def _is_scene(x: Any) -> bool:
    """Whether ``x`` is a schema scene (an ``xarray.Dataset``) rather than a sample dict."""
    import xarray as xr

    return isinstance(x, xr.Dataset)


def _numpy(x: Any) -> np.ndarray:
    """A float32 numpy copy of an array or a (CPU/GPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _default_rgb(n_bands: int) -> tuple[int, int, int]:
    """Channel indices of R, G, B in a sample dict's optical tensor with ``n_bands`` bands."""
    if n_bands >= 13:
        return (3, 2, 1)        # B04, B03, B02 of the 13 S2 bands
    if n_bands in (10, 12):
        return (2, 1, 0)        # B02, B03, B04 first (Fusion-DA / 10-band and 12-band L2A)
    if n_bands >= 3:
        return (0, 1, 2)        # R, G, B (VHR) or B4, B3, B2, B8 (MMCR order)
    return (0, 0, 0)


def _example_channels(sample: Any, key: str, rgb_bands: Sequence[Any] | None) -> np.ndarray | None:
    """The (C, H, W) channels shown for input ``key`` (``optical_t1``, ``sar_t2``...), or None."""
    modality, _, date = key.rpartition("_")
    if not _is_scene(sample):
        if key not in sample:
            return None
        arr = _numpy(sample[key])
        arr = arr[0] if arr.ndim == 4 else arr
        if modality != "optical":
            return arr[:1]
        return arr[list(rgb_bands) if rgb_bands is not None else list(_default_rgb(arr.shape[0]))]
    if modality not in sample.data_vars:
        return None
    da = sample[modality]
    if "time" in da.dims:
        da = da.isel(time=0 if date == "t1" else -1)
    if modality != "optical":
        return np.asarray(da.transpose("polarisation", "y", "x").values, dtype=np.float32)[:1]
    names = da["band"].values.tolist()
    want = list(rgb_bands) if rgb_bands is not None else (
        ["B04", "B03", "B02"] if "B04" in names else ["R", "G", "B"] if "R" in names else names[:3])
    return np.asarray(da.sel(band=want).transpose("band", "y", "x").values, dtype=np.float32)


def _display_image(sample: Any, key: str, rgb_bands: Sequence[Any] | None) -> tuple[np.ndarray, str] | None:
    """(H, W, 3) RGB or (H, W) grey display array (2-98 % stretch) of one input, and its name."""
    from .data.normalize import percentile_stretch

    arr = _example_channels(sample, key, rgb_bands)
    if arr is None:
        return None
    modality, _, date = key.rpartition("_")
    arr = np.nan_to_num(percentile_stretch(arr, 2, 98, per_band=(arr.shape[0] == 3), axis=0), nan=0.0)
    return (np.moveaxis(arr, 0, -1) if arr.shape[0] == 3 else arr[0]), f"{modality} {date}"


def _example_input_keys(first: Any) -> list[str]:
    """Default inputs of :func:`plot_examples`: both optical dates, else SAR (one date if single)."""
    avail = ["optical", "sar"] if not _is_scene(first) else [m for m in ("optical", "sar") if m in first.data_vars]
    for m in avail:
        keys = [f"{m}_{t}" for t in ("t1", "t2")]
        if _is_scene(first):
            return keys if "time" in first[m].dims and first.sizes["time"] > 1 else keys[:1]
        if any(k in first for k in keys):
            return keys if keys[1] in first else keys[:1]
    return []


def _plot_example_row(row: Any, title: str, sample: Any, prob: np.ndarray, *, input_keys, rgb_bands,
                      label_key: str, cut: float | None) -> Any:
    """One row (a subfigure titled ``title``) of :func:`plot_examples`: inputs, label, probability.

    Returns the probability image (None when the row shows the binary map at ``cut``).
    """
    from .inference import scene_label

    axes = row.subplots(1, len(input_keys) + 2)
    row.suptitle(title, fontsize=8.5)
    for c, key in enumerate(input_keys):
        shown = _display_image(sample, key, rgb_bands)
        if shown is None:
            axes[c].set_visible(False)
            continue
        img, name = shown
        axes[c].imshow(img, cmap=None if img.ndim == 3 else "gray", interpolation="nearest")
        axes[c].set_title(name, fontsize=8)
    label = scene_label(sample, label_key) if _is_scene(sample) else _numpy(sample[label_key]).squeeze()
    axes[-2].imshow(label, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[-2].set_title(f"label ({label_key})", fontsize=8)
    im = None
    if cut is not None:
        axes[-1].imshow(prob > cut, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[-1].set_title(f"prediction > {cut:.2f}", fontsize=8)
    else:
        im = axes[-1].imshow(prob, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        axes[-1].set_title("probability", fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    return im


def plot_examples(examples: Any, samples: Mapping[str, Any], predictions: Mapping[str, Any], *,
                  table: Any = None, metric: str = "f1", input_keys: Sequence[str] | None = None,
                  rgb_bands: Sequence[Any] | None = None, label_key: str = "change",
                  threshold: float | Mapping[str, float] | None = None):
    """A figure with one row per example site: inputs, label and predicted probability.

    Inputs show as RGB (2-98 % percentile stretch) or SAR in grey; the last column is the
    probability (0..1) or, with ``threshold``, the binary map.

    Args:
        examples: ``{role: site}`` from :func:`urbankit.inference.pick_examples`, a list of
            sites, or a per-site table (then ``pick_examples(table, metric)`` picks them).
        samples: ``{site: scene or sample dict}`` holding the inputs and the label.
        predictions: ``{site: probability (H, W)}`` (e.g. from ``evaluate_scenes(...,
            return_predictions=True)``).
        table: per-site table, to print the metric in each row's title.
        metric: the table column shown (and used to pick examples from a table).
        input_keys: which inputs to show (default: ``optical_t1``, ``optical_t2``, else SAR).
        rgb_bands: band names (scenes) or indices (sample dicts) of the R, G, B channels.
        label_key: the label shown (``change``, ``buildings_t1``...).
        threshold: None (show probabilities), one threshold, or ``{site: threshold}`` (e.g.
            when the sites come from folds with their own validation thresholds).

    Returns:
        A matplotlib Figure, one row per example, ``len(input_keys) + 2`` columns.

    Raises:
        ConfigError: no example, a site missing from ``samples``/``predictions``, or no
            threshold for a site in a threshold mapping.
    """
    from .errors import ConfigError
    from .inference import pick_examples

    if hasattr(examples, "columns"):
        table = examples if table is None else table
        examples = pick_examples(examples, metric)
    if not isinstance(examples, Mapping):
        examples = {str(s): str(s) for s in examples}
    if not examples:
        raise ConfigError("plot_examples: no example sites")
    if input_keys is None:
        input_keys = _example_input_keys(samples[next(iter(examples.values()))])
    ncol, nrow = len(input_keys) + 2, len(examples)
    width, height = book_figsize(ncol, nrow, panel_aspect=1.0)
    fig = _plt().figure(figsize=(width, height + 0.55), layout="constrained")
    # one subfigure per example (its title names the site above the row), and a strip for the colour bar
    rows = fig.subfigures(nrow + 1, 1, height_ratios=[1.0] * nrow + [0.55 * nrow / height])
    for r, (role, site) in enumerate(examples.items()):
        if site not in samples or site not in predictions:
            raise ConfigError(f"plot_examples: site {site!r} is missing from samples or predictions")
        title = f"{role}: {site}" if role != site else site
        if table is not None and site in table.index and metric in table.columns:
            title += f" ({metric} {float(table.loc[site, metric]):.2f})"
        cut = threshold.get(site) if isinstance(threshold, Mapping) else threshold
        if isinstance(threshold, Mapping) and cut is None:
            raise ConfigError(f"plot_examples: no threshold for site {site!r} in the threshold mapping")
        im = _plot_example_row(rows[r], title, samples[site], np.asarray(predictions[site], dtype=np.float32).squeeze(),
                               input_keys=input_keys, rgb_bands=rgb_bands, label_key=label_key, cut=cut)
    if im is not None:   # one colour bar for the probability column, under it
        cax = rows[-1].add_axes(((ncol - 1) / ncol + 0.01, 0.7, 1 / ncol - 0.03, 0.14))
        fig.colorbar(im, cax=cax, orientation="horizontal", label="probability")
    return fig


# ----------------------------------------------------------------------------- new development (SDG 11.3.1)
#: Colours of the new-development codes of :data:`urbankit.sdg.NEW_DEVELOPMENT_CODES` (1 infill,
#: 2 extension, 3 leapfrog) in the matplotlib figures (the interactive maps use the same, MAP_COLOURS).
NEW_DEVELOPMENT_COLOURS = {"infill": "#1b9e77", "extension": "#d95f02", "leapfrog": "#7570b3"}


def show_new_development(ax: Any, codes: Any, built_t1: Any = None, *, city_extent: Any = None,
                         window: tuple[slice, slice] | None = None):
    """Draw a new-development map on ``ax``: built-up at t1 in grey, new land by type in colour.

    Args:
        ax: the matplotlib Axes.
        codes: (y, x) integer codes, e.g. ``SDGResult.extents["new_development"]`` (0 none,
            1 infill, 2 extension, 3 leapfrog).
        built_t1: (y, x) bool built-up at the first date, drawn in grey under the codes.
        city_extent: (y, x) bool city extent, outlined in black.
        window: ``(rows, cols)`` slices to zoom on (default: the whole map).

    Returns:
        ``ax``.
    """
    from matplotlib.colors import ListedColormap

    win = window or (slice(None), slice(None))
    codes = np.asarray(codes)
    cmap = ListedColormap(["#f0f0f0", *NEW_DEVELOPMENT_COLOURS.values()])
    if built_t1 is not None:
        ax.imshow(np.where(np.asarray(built_t1), 1.0, np.nan)[win], cmap="Greys", vmin=0, vmax=2.5,
                  interpolation="nearest")
    ax.imshow(np.where(codes > 0, codes, np.nan)[win], cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
    if city_extent is not None:
        ax.contour(np.asarray(city_extent)[win], levels=[0.5], colors="k", linewidths=1)
    return ax


def new_development_legend(target: Any, *, built_t1: bool = False, city_extent: bool = False, **legend_kwargs):
    """The one legend of :func:`show_new_development` maps, on a Figure or an Axes.

    Args:
        target: the Figure or Axes that gets the legend.
        built_t1: add the grey "built-up at t1" patch.
        city_extent: add the black "city extent (DEGURBA)" line.
        **legend_kwargs: passed to ``target.legend`` (``loc``, ``ncol``, ``bbox_to_anchor``...).

    Returns:
        The matplotlib Legend.
    """
    plt = _plt()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in NEW_DEVELOPMENT_COLOURS.values()]
    labels = list(NEW_DEVELOPMENT_COLOURS)
    if built_t1:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.6"))
        labels.append("built-up at t1")
    if city_extent:
        handles.append(plt.Line2D([], [], color="k"))
        labels.append("city extent (DEGURBA)")
    return target.legend(handles, labels, **legend_kwargs)


def plot_new_development_shares(ax: Any, result: Any):
    """Bar chart on ``ax`` of the km2 of new built-up land by type (infill, extension, leapfrog).

    Args:
        ax: the matplotlib Axes.
        result: an :class:`urbankit.sdg.SDGResult` (its ``new_<type>_km2`` rows).

    Returns:
        ``ax``.
    """
    names = list(NEW_DEVELOPMENT_COLOURS)
    share = result.table.set_index("name").loc[[f"new_{n}_km2" for n in names], "value"]
    ax.bar(names, share.values, color=list(NEW_DEVELOPMENT_COLOURS.values()))
    ax.set_ylabel("km2 of new built-up land")
    return ax


def plot_loss_curve(history: Any, keys: Sequence[str] | None = None, ax: Any = None,
                    logy: bool = False, title: str = "training curve"):
    """Plot a loss curve.

    ``history``: a list/array of values, a dict of lists, or a DataFrame (one line per
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


# ============================================================================ interactive maps
# (issue 17) Web maps with folium (the engine of leafmap's folium backend; leafmap itself is not
# imported: see web_map). Data layers are embedded in the page (PNG/JPEG images and GeoJSON), so
# a map is built and saved with no network; a basemap (tile server) is optional and off by
# default, because the book is executed offline.

__all__ += ["MAP_COLOURS", "add_classes_layer", "add_map_legend", "add_mask_layer", "add_outline_layer",
            "add_probability_layer", "add_rgb_layer", "city_map", "web_map"]

#: Colours of the map layers (hex), shared by the legends.
MAP_COLOURS = {
    "built_up": "#525252", "built_up_t1": "#252525", "built_up_t2": "#969696", "change": "#e7298a",
    "city_extent": "#000000", **NEW_DEVELOPMENT_COLOURS,
}
_NEW_DEVELOPMENT_CLASSES = {1: ("infill", MAP_COLOURS["infill"]), 2: ("extension", MAP_COLOURS["extension"]),
                            3: ("leapfrog", MAP_COLOURS["leapfrog"])}
_WEB_CRS = "EPSG:3857"
_BASEMAPS = {"OpenStreetMap": "OpenStreetMap", "CartoDB.Positron": "CartoDB positron"}


def _raster_2d_or_3d(da: Any, name: str):
    """Check a layer is a georeferenced DataArray (y, x) or (band, y, x); return it squeezed."""
    if not hasattr(da, "rio"):
        raise TypeError(f"map layer {name!r}: expected a georeferenced xarray.DataArray (rioxarray CRS "
                        f"and transform), got {type(da).__name__}")
    da = da.squeeze(drop=True)
    if da.ndim not in (2, 3) or da.dims[-2:] != ("y", "x"):
        raise ValueError(f"map layer {name!r}: expected dims (y, x) or (band, y, x), got {da.dims}")
    if da.rio.crs is None:
        raise ValueError(f"map layer {name!r}: the DataArray has no CRS (write one with "
                         "da.rio.write_crs(...)); a web map needs to know where the pixels are")
    return da


def _to_web_mercator(da: Any, name: str, categorical: bool, max_side: int):
    """Reproject a layer to Web Mercator at most ``max_side`` pixels a side.

    Returns:
        (array (H, W) or (C, H, W) float32 with NaN outside the data, bounds
        ``[[south, west], [north, east]]`` in degrees) for ``folium.raster_layers.ImageOverlay``.
    """
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform

    da = _raster_2d_or_3d(da, name)
    src = np.asarray(da.values, dtype=np.float32)
    src = src[None] if src.ndim == 2 else src
    h, w = src.shape[-2:]
    left, bottom, right, top = da.rio.bounds()
    dst_transform, dst_w, dst_h = calculate_default_transform(da.rio.crs, _WEB_CRS, w, h, left, bottom,
                                                              right, top)
    scale = max(dst_w, dst_h) / max_side
    if scale > 1:
        dst_w, dst_h = max(1, round(dst_w / scale)), max(1, round(dst_h / scale))
        dst_transform, dst_w, dst_h = calculate_default_transform(
            da.rio.crs, _WEB_CRS, w, h, left, bottom, right, top, dst_width=dst_w, dst_height=dst_h)
    dst = np.full((src.shape[0], dst_h, dst_w), np.nan, np.float32)
    reproject(src, dst, src_transform=da.rio.transform(), src_crs=da.rio.crs, src_nodata=np.nan,
              dst_transform=dst_transform, dst_crs=_WEB_CRS, dst_nodata=np.nan,
              resampling=Resampling.nearest if categorical else Resampling.average)
    x0, y0 = dst_transform.c, dst_transform.f   # north-up: no rotation terms
    x1, y1 = x0 + dst_transform.a * dst_w, y0 + dst_transform.e * dst_h
    lons, lats = transform(_WEB_CRS, "EPSG:4326", [x0, x1], [y1, y0])
    bounds = [[lats[0], lons[0]], [lats[1], lons[1]]]
    return (dst[0] if da.ndim == 2 else dst), bounds


def _hex_rgba(colour: str, alpha: float) -> np.ndarray:
    from matplotlib.colors import to_rgba

    r, g, b, _ = to_rgba(colour)
    return np.array([r, g, b, alpha], np.float32)


def _add_image(m: Any, rgba: np.ndarray, bounds, name: str, show: bool, jpeg_quality: int | None = None) -> None:
    """Embed an (H, W, 4) image in [0, 1] as PNG (keeps transparency) or JPEG.

    JPEG when ``jpeg_quality`` is set: opaque, several times smaller for photographs; transparent
    pixels become black.
    """
    from folium.raster_layers import ImageOverlay

    img = (np.clip(np.nan_to_num(rgba, nan=0.0), 0, 1) * 255).astype(np.uint8)
    if jpeg_quality is not None:
        import base64
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img[..., :3]).save(buf, format="JPEG", quality=jpeg_quality)
        img = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    ImageOverlay(img, bounds=bounds, name=name, show=show, pixelated=True).add_to(m)
    _fit(m, bounds)


def _fit(m: Any, bounds) -> None:
    """Grow the map's view to cover ``bounds`` ([[south, west], [north, east]])."""
    old = getattr(m, "_urbankit_bounds", None)
    if old is not None:
        bounds = [[min(old[0][0], bounds[0][0]), min(old[0][1], bounds[0][1])],
                  [max(old[1][0], bounds[1][0]), max(old[1][1], bounds[1][1])]]
    m._urbankit_bounds = bounds
    m.fit_bounds(bounds)


def _legend_entries(m: Any) -> list:
    if not hasattr(m, "_urbankit_legend"):
        m._urbankit_legend = []
    return m._urbankit_legend


def web_map(basemap: str | None = None, height: int = 480):
    """An empty web map: a ``folium.Map`` with a scale bar and a full-screen button.

    leafmap's folium backend (``leafmap.foliumap.Map``) is a thin subclass of ``folium.Map``;
    these maps use folium directly because importing leafmap takes about 5 times as long, needs
    about 60 more packages, and leaves ipyvuetify widget state in every executed notebook.

    Args:
        basemap: None (default): no background tiles, so nothing is fetched when the page opens
            offline and the data layers carry the map; ``"OpenStreetMap"`` or
            ``"CartoDB.Positron"``: a tile basemap (needs a network when the page is viewed).
        height: map height in pixels.

    Returns:
        A ``folium.Map``; add layers with the ``add_*_layer`` functions, then
        :func:`add_map_legend`. It displays in a notebook; ``m.save("map.html")`` writes a page.
    """
    import folium
    from folium.plugins import Fullscreen

    if basemap is not None and basemap not in _BASEMAPS:
        raise ValueError(f"web_map: unknown basemap {basemap!r}; use None or one of {sorted(_BASEMAPS)}")
    m = folium.Map(tiles=_BASEMAPS[basemap] if basemap else None, control_scale=True, max_zoom=20)
    folium.Figure(height=height).add_child(m)
    Fullscreen().add_to(m)
    m._urbankit_legend = []
    return m


def add_rgb_layer(m: Any, optical: Any, name: str = "Sentinel-2 RGB", bands: Sequence[str] = ("B04", "B03", "B02"),
                  time: int = 0, stretch: tuple[float, float] = (2, 98), max_side: int = 1024, show: bool = True,
                  jpeg_quality: int | None = 85):
    """Add a true-colour image of a scene's ``optical`` (or a (band, y, x) DataArray).

    Args:
        m: a map from :func:`web_map`.
        optical: a scene (``xarray.Dataset`` with ``optical``) or a DataArray with a ``band`` dim
            (and optionally ``time``), georeferenced.
        bands: the three bands shown as red, green, blue.
        time: the date shown (index) when there is a ``time`` dim.
        stretch: per-band percentile stretch (low, high).
        max_side: the embedded image is at most this many pixels a side.
        show: whether the layer starts visible.
        jpeg_quality: embed as JPEG of this quality (default 85: a fraction of the PNG's size;
            no-data shows black), or None for a PNG with no-data transparent.

    Returns:
        ``m`` (layers can be chained).
    """
    from .data.normalize import percentile_stretch

    obj = optical["optical"] if hasattr(optical, "data_vars") else optical
    obj = _time_index(obj, time)
    names = [str(b) for b in obj["band"].values]
    use = list(bands) if all(b in names for b in bands) else ["R", "G", "B"]
    arr, bounds = _to_web_mercator(obj.sel(band=use), name, categorical=False, max_side=max_side)
    valid = np.all(np.isfinite(arr), axis=0)
    rgb = percentile_stretch(arr, stretch[0], stretch[1], per_band=True, axis=0)
    rgba = np.concatenate([np.nan_to_num(rgb, nan=0.0), valid[None].astype(np.float32)])
    _add_image(m, np.moveaxis(rgba, 0, -1), bounds, name, show, jpeg_quality)
    return m


def add_probability_layer(m: Any, probability: Any, name: str = "P(built-up)", cmap: str = "magma",
                          vmin: float = 0.0, vmax: float = 1.0, opacity: float = 0.8, below: float | None = None,
                          max_side: int = 1024, show: bool = True):
    """Add a continuous layer (a probability, a fraction) with a colour-bar legend.

    Args:
        probability: georeferenced (y, x) DataArray.
        cmap: matplotlib colour map; ``vmin``/``vmax`` its range.
        opacity: layer opacity (0..1).
        below: values below this are transparent (None: none are).
        max_side, show: as :func:`add_rgb_layer`.

    Returns:
        ``m``.
    """
    arr, bounds = _to_web_mercator(probability, name, categorical=False, max_side=max_side)
    colours = _plt().get_cmap(cmap)(np.clip((arr - vmin) / (vmax - vmin), 0, 1))
    hidden = ~np.isfinite(arr) | ((arr < below) if below is not None else False)
    colours[..., 3] = np.where(hidden, 0.0, opacity)
    _add_image(m, colours, bounds, name, show)
    ramp = [_plt().matplotlib.colors.to_hex(_plt().get_cmap(cmap)(v)) for v in np.linspace(0, 1, 6)]
    _legend_entries(m).append(("ramp", name, (ramp, vmin, vmax)))
    return m


def add_mask_layer(m: Any, mask: Any, name: str = "built-up", colour: str = MAP_COLOURS["built_up"],
                   opacity: float = 0.7, max_side: int = 1024, show: bool = True):
    """Add a binary layer (built-up, change): pixels >= 0.5 drawn in ``colour``, others transparent.

    Args:
        mask: georeferenced (y, x) DataArray of 0/1 (bool, uint8 or float; NaN = no data).
        colour: fill colour; ``opacity`` its opacity.

    Returns:
        ``m``.
    """
    arr, bounds = _to_web_mercator(mask, name, categorical=True, max_side=max_side)
    on = np.nan_to_num(arr, nan=0.0) >= 0.5
    rgba = np.where(on[..., None], _hex_rgba(colour, opacity), 0.0).astype(np.float32)
    _add_image(m, rgba, bounds, name, show)
    _legend_entries(m).append(("box", name, colour))
    return m


def add_classes_layer(m: Any, codes: Any, classes: Mapping[int, tuple[str, str]] | None = None,
                      name: str = "new development", opacity: float = 0.85, max_side: int = 1024,
                      show: bool = True):
    """Add a categorical layer, one colour per class code (codes not in ``classes`` are transparent).

    Args:
        codes: georeferenced (y, x) integer DataArray, e.g. ``SDGResult.extents["new_development"]``.
        classes: ``{code: (label, colour)}``; default: the new-development classes of
            :data:`urbankit.sdg.NEW_DEVELOPMENT_CODES` (1 infill, 2 extension, 3 leapfrog).

    Returns:
        ``m``.
    """
    classes = dict(classes or _NEW_DEVELOPMENT_CLASSES)
    arr, bounds = _to_web_mercator(codes, name, categorical=True, max_side=max_side)
    rgba = np.zeros(arr.shape + (4,), np.float32)
    for code, (_, colour) in classes.items():
        rgba[arr == code] = _hex_rgba(colour, opacity)
    _add_image(m, rgba, bounds, name, show)
    for code, (label, colour) in classes.items():
        _legend_entries(m).append(("box", f"{name}: {label}", colour))
    return m


def _mask_polygons(mask: Any, name: str) -> dict:
    """GeoJSON FeatureCollection (EPSG:4326) of the True cells of a georeferenced mask."""
    from rasterio.features import shapes
    from rasterio.warp import transform_geom

    da = _raster_2d_or_3d(mask, name)
    arr = np.nan_to_num(np.asarray(da.values, dtype=np.float32), nan=0.0) >= 0.5
    feats = [{"type": "Feature", "properties": {"layer": name},
              "geometry": transform_geom(da.rio.crs, "EPSG:4326", geom)}
             for geom, _ in shapes(arr.astype(np.uint8), mask=arr, transform=da.rio.transform(), connectivity=8)]
    return {"type": "FeatureCollection", "features": feats}


def add_outline_layer(m: Any, extent: Any, name: str = "city extent", colour: str = MAP_COLOURS["city_extent"],
                      weight: float = 2.0, show: bool = True):
    """Add the outline of an area (e.g. a DEGURBA city extent) as a vector layer.

    Args:
        extent: a georeferenced (y, x) mask DataArray (True inside), or a GeoJSON
            FeatureCollection in longitude/latitude (e.g. ``SDGResult.polygons(..., to_crs="EPSG:4326")``).
        colour, weight: line colour and width (pixels); the inside is not filled.

    Returns:
        ``m``.
    """
    import folium

    geo = extent if isinstance(extent, Mapping) else _mask_polygons(extent, name)
    if not geo.get("features"):
        raise ValueError(f"map layer {name!r}: the extent is empty (no True cell / no feature)")
    style = {"color": colour, "weight": weight, "fillOpacity": 0.0}
    folium.GeoJson(geo, name=name, show=show, style_function=lambda _f: style).add_to(m)
    _legend_entries(m).append(("line", name, colour))
    return m


def _legend_html(entries: list, title: str) -> str:
    rows = []
    for kind, label, spec in entries:
        if kind == "ramp":
            ramp, lo, hi = spec
            swatch = (f"<span style='display:inline-block;width:80px;height:10px;background:linear-gradient("
                      f"to right,{','.join(ramp)})'></span> {lo:g} to {hi:g}")
        elif kind == "line":
            swatch = f"<span style='display:inline-block;width:16px;height:0;border-top:3px solid {spec}'></span>"
        else:
            swatch = f"<span style='display:inline-block;width:12px;height:12px;background:{spec}'></span>"
        rows.append(f"<div class='urbankit-legend-item'>{swatch} {label}</div>")
    return ("<div class='urbankit-legend' style='position:absolute;bottom:24px;left:10px;z-index:9999;"
            "background:rgba(255,255,255,0.85);border:1px solid #888;border-radius:4px;padding:6px 8px;"
            f"font:12px sans-serif'><b>{title}</b>{''.join(rows)}</div>")


def add_map_legend(m: Any, title: str = "Legend"):
    """Add one legend box for every layer added with the ``add_*_layer`` functions, and a layer switcher.

    Call it last. Returns ``m``.
    """
    import folium
    from branca.element import Element

    entries = _legend_entries(m)
    if entries:
        m.get_root().html.add_child(Element(_legend_html(entries, title)))
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def city_map(*, rgb: Any = None, built_up: Mapping[str, Any] | None = None, probability: Any = None,
             change: Any = None, sdg_result: Any = None, basemap: str | None = None, height: int = 480,
             max_side: int = 768, title: str = "Legend"):
    """A city's web map: RGB, predicted built-up, change, city extent and new development.

    Every argument is optional; layers are stacked in that order (later on top).

    Args:
        rgb: a scene or optical DataArray for a true-colour layer (first date); or
            ``(scene, time)`` to choose the date.
        built_up: ``{label: mask}`` of binary built-up maps in date order (e.g.
            ``{"2018": m1, "2023": m2}``): the first date dark grey on top of the later ones
            (light grey), so what was added shows around it.
        probability: a (y, x) probability layer (e.g. P(built-up) of a model).
        change: a binary change map (e.g. new built-up between the dates).
        sdg_result: an :class:`urbankit.sdg.SDGResult`: its ``city_extent`` (outline) and
            ``new_development`` (infill / extension / leapfrog) layers.
        basemap: see :func:`web_map` (default None: nothing fetched, works offline).
        height, max_side: map height (px) and largest embedded image side (px).
        title: legend title.

    Returns:
        The map (displays in a notebook; ``m.save("map.html")`` writes a standalone page).
    """
    m = web_map(basemap=basemap, height=height)
    if rgb is not None:
        scene, t = rgb if isinstance(rgb, tuple) else (rgb, 0)
        add_rgb_layer(m, scene, time=t, max_side=max_side)
    if probability is not None:
        add_probability_layer(m, probability, below=0.05, max_side=max_side, show=built_up is None)
    labels = list(built_up or {})
    for i, label in reversed(list(enumerate(labels))):   # later dates below the earlier ones
        colour = MAP_COLOURS["built_up_t1" if i == 0 else "built_up_t2" if i == len(labels) - 1 else "built_up"]
        add_mask_layer(m, built_up[label], name=f"built-up {label}", colour=colour, max_side=max_side)
    if len(labels) > 1:   # the legend in date order
        entries = _legend_entries(m)
        entries[-len(labels):] = entries[-len(labels):][::-1]
    if change is not None:
        add_mask_layer(m, change, name="change", colour=MAP_COLOURS["change"], max_side=max_side)
    if sdg_result is not None:
        ext = sdg_result.extents
        add_classes_layer(m, ext["new_development"], name="new development", max_side=max_side)
        if bool(np.asarray(ext["city_extent"].values).any()):
            add_outline_layer(m, ext["city_extent"], name="city extent")
    return add_map_legend(m, title)


# ---------------------------------------------------------------------------------------------
# scenes of any reader (urbankit.data.reader.Reader.plot); kept at the end of the module
# ---------------------------------------------------------------------------------------------
def plot_scene(scene: Any, **kwargs: Any):
    """One figure of a schema scene, whatever its reader: returns the Figure.

    Scenes with ``optical``, ``sar`` or ``change`` get :func:`plot_change_panels` (``kwargs``
    passed on); label-only scenes (GHSL built-up, WorldPop population) get their ``buildings``
    or ``population`` map at the first and last epoch.
    """
    if any(v in scene.data_vars for v in ("optical", "sar", "change")):
        bands = kwargs.pop("bands", None)
        if bands is None and "optical" in scene.data_vars:
            names = [str(b) for b in scene["band"].values]
            bands = ("B04", "B03", "B02") if "B04" in names else ("R", "G", "B")
        return plot_change_panels(scene, bands=bands or ("B04", "B03", "B02"), **kwargs)
    name = next((v for v in ("buildings", "population") if v in scene.data_vars), None)
    if name is None:
        raise ValueError(f"scene {scene.attrs.get('site', '?')!r} has none of optical, sar, change, "
                         "buildings, population to plot")
    plt = _plt()
    da = scene[name]
    times = [0, da.sizes["time"] - 1] if da.sizes["time"] > 1 else [0]
    fig, axes = plt.subplots(1, len(times), figsize=book_figsize(len(times), panel_aspect=0.8), constrained_layout=True)
    values = np.asarray(da.isel(time=times).values, dtype=np.float32)
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))  # one colour scale for all epochs
    label = f"{da.attrs.get('long_name', name)} ({da.attrs.get('units', '')})"
    for ax, t, img in zip(np.atleast_1d(axes), times, values, strict=True):
        im = ax.imshow(img, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label=label)
        ax.set_title(f"{name} {np.datetime_as_string(da['time'].values[t], unit='Y')}")
        ax.set_axis_off()
    fig.suptitle(f"{scene.attrs.get('site', '')} ({scene.attrs.get('dataset', '')})")
    return fig
