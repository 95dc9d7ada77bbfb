"""Shared helpers of the GHSL and WorldPop readers: open a grid, clip it, aggregate it to ~1 km.

Aggregation follows what each layer *is*: counts (persons, m2 of built-up surface) are
**summed** over whole blocks of cells; shares (land share) are **area-weighted means**;
class layers are never aggregated. A block with no valid cell stays NaN. Never imports torch.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import ConfigError, DataFormatError

__all__ = [
    "aggregate_grid",
    "block_factor",
    "cell_weights",
    "FileTable",
    "file_values",
    "grids_to_scene",
    "write_grid_sample",
    "write_population_sample",
    "check_range",
    "open_grid",
    "parse_bbox",
    "plot_grid",
]


def open_grid(path: str | Path, *, bbox=None, bbox_crs=None, name: str | None = None) -> xr.DataArray:
    """One-band GeoTIFF as a (y, x) float DataArray, nodata as NaN, optionally clipped to a bbox.

    Read through :func:`urbankit.data.raster.read_raster` (one raster module, its errors).

    Args:
        path: the GeoTIFF.
        bbox: (left, bottom, right, top) in ``bbox_crs`` (None: the file's CRS).
        name: the variable name (default: the file stem).

    Raises:
        DataFormatError: missing or unreadable file, more than one band, or a bbox outside the grid.
    """
    import rioxarray  # noqa: F401  (registers .rio)

    from .raster import read_raster

    path = Path(path)
    arr, grid, info = read_raster(path)
    if arr.shape[0] != 1:
        raise DataFormatError(f"{path}: expected one band, found {arr.shape[0]}")
    values = arr[0].astype(np.float32 if arr.dtype.itemsize <= 4 else np.float64)
    if info["nodata"] is not None:
        values[arr[0] == info["nodata"]] = np.nan
    y, x = grid.coords()
    da = xr.DataArray(values, dims=("y", "x"), coords={"y": y, "x": x}, name=name or path.stem)
    if grid.crs is not None:
        da = da.rio.write_crs(grid.crs)
    da = da.rio.write_transform(grid.transform)
    if bbox is not None:
        da = _clip(da, bbox, bbox_crs, path)
    da.attrs["source_file"] = str(path)
    return da


def _clip(da: xr.DataArray, bbox, bbox_crs, path: Path) -> xr.DataArray:
    """The cells whose centre lies inside ``bbox`` (works for one-row or one-column results)."""
    from affine import Affine

    left, bottom, right, top = bbox
    if bbox_crs is not None and da.rio.crs is not None:
        from rasterio.crs import CRS
        from rasterio.warp import transform_bounds

        if CRS.from_user_input(bbox_crs) != da.rio.crs:
            left, bottom, right, top = transform_bounds(bbox_crs, da.rio.crs, left, bottom, right, top)
    t = da.rio.transform()
    c0, c1 = math.ceil((left - t.c) / t.a - 0.5), math.floor((right - t.c) / t.a - 0.5)
    r0, r1 = math.ceil((top - t.f) / t.e - 0.5), math.floor((bottom - t.f) / t.e - 0.5)
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, da.sizes["x"] - 1), min(r1, da.sizes["y"] - 1)
    if c0 > c1 or r0 > r1:
        raise DataFormatError(f"{path}: bbox {tuple(bbox)} ({bbox_crs or da.rio.crs}) does not overlap the "
                              f"grid {tuple(da.rio.bounds())} ({da.rio.crs})")
    out = da.isel(y=slice(r0, r1 + 1), x=slice(c0, c1 + 1))
    return out.rio.write_transform(t * Affine.translation(c0, r0))


def cell_weights(da: xr.DataArray) -> np.ndarray:
    """(ny, 1) relative cell areas per row: weights for means.

    1 on projected grids, |sin(lat2) - sin(lat1)| on geographic ones (the sphere's area of a
    lat/lon cell, up to a constant).
    """
    if da.rio.crs is None or not da.rio.crs.is_geographic:
        return np.ones((da.sizes["y"], 1))
    half = abs(float(da.rio.resolution()[1])) / 2
    lat = np.deg2rad(np.asarray(da["y"].values, np.float64))
    h = np.deg2rad(half)
    return np.abs(np.sin(lat + h) - np.sin(lat - h))[:, None]


def block_factor(da: xr.DataArray, target_m: float = 1000.0) -> int:
    """Cells per block side to reach ~``target_m`` (geographic grids: 30 arc-seconds ~ 1 km)."""
    res = abs(float(da.rio.resolution()[0]))
    if da.rio.crs is not None and da.rio.crs.is_geographic:
        return max(1, int(round((target_m / 1000.0) * (30 / 3600) / res)))
    return max(1, int(round(target_m / res)))


def aggregate_grid(da: xr.DataArray, how: str, factor: int) -> xr.DataArray:
    """Aggregate ``factor x factor`` blocks: ``how="sum"`` (counts) or ``"share"`` (area-weighted).

    The last partial blocks are kept (summed over what exists, with their true area). Returns a
    georeferenced (y, x) DataArray whose attrs say how it was aggregated.
    """
    if how not in ("sum", "share"):
        raise ConfigError(f"aggregate how must be 'sum' or 'share', got {how!r}")
    if factor == 1:
        return da
    valid = da.notnull()
    if how == "sum":
        out = da.fillna(0).coarsen(y=factor, x=factor, boundary="pad").sum()
    else:
        area = xr.DataArray(np.broadcast_to(cell_weights(da), da.shape), dims=da.dims, coords=da.coords)
        weighted = (da.fillna(0) * area).coarsen(y=factor, x=factor, boundary="pad").sum()
        out = weighted / area.where(valid, 0).coarsen(y=factor, x=factor, boundary="pad").sum()
    out = out.where(valid.coarsen(y=factor, x=factor, boundary="pad").sum() > 0)
    t = da.rio.transform()
    from affine import Affine

    out = out.rio.write_crs(da.rio.crs).rio.write_transform(
        Affine(t.a * factor, 0, t.c, 0, t.e * factor, t.f)
    )
    out.attrs = dict(da.attrs, aggregated=f"{how} of {factor} x {factor} cells")
    out.name = da.name
    return out


def plot_grid(
    da: xr.DataArray, ax=None, *, title: str | None = None, log: bool = False, cmap: str = "viridis"
):
    """Show a grid with a colour bar (log scale for counts); returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    values = np.asarray(da.values, np.float64)
    positive = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm(vmin=max(positive.min(), 1e-3), vmax=positive.max()) if log and positive.size else None
    im = ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=da.attrs.get("units", ""))
    ax.set_title(title or str(da.name))
    ax.set_axis_off()
    return ax


def check_range(da: xr.DataArray, lo: float, hi: float | None, what: str) -> None:
    """Raise DataFormatError naming the file when valid values leave [lo, hi]."""
    v = np.asarray(da.values)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    if v.min() < lo or (hi is not None and v.max() > hi * (1 + 1e-6) + 1e-9):
        raise DataFormatError(
            f"{da.attrs.get('source_file', da.name)}: {what} must lie in [{lo:g}, "
            f"{'inf' if hi is None else f'{hi:g}'}], found {v.min():g}..{v.max():g}"
        )


def parse_bbox(bbox) -> tuple[float, float, float, float] | None:
    """(left, bottom, right, top) as floats, checked; None passes."""
    if bbox is None:
        return None
    left, bottom, right, top = (float(b) for b in bbox)
    if not (left < right and bottom < top) or not all(map(math.isfinite, (left, bottom, right, top))):
        raise ConfigError(
            f"bbox must be (left, bottom, right, top) with left < right, bottom < top; got {bbox}"
        )
    return left, bottom, right, top


def file_values(files, column: str, cast=str) -> list:
    """The sorted distinct values of ``column`` in a reader's table of files, cast with ``cast``."""
    return sorted(cast(v) for v in files[column].unique())


class FileTable:
    """Mixin of the grid readers (GHSL, WorldPop): a ``files`` table with ``site`` and ``path`` columns."""

    files: object

    @property
    def sites(self) -> list[str]:
        """The sites found (GHSL tiles ``R<row>_C<col>`` or ``GLOBE``; WorldPop countries, ISO3)."""
        return file_values(self.files, "site", str)

    def rows_of(self, column: str, value: int, site: str | None):
        """The rows of ``files`` whose ``column`` equals ``value`` (and of ``site`` when given)."""
        sel = self.files[self.files[column] == int(value)]
        return sel if site is None else sel[sel["site"] == site]


def grids_to_scene(grids: list[xr.DataArray], years: list[int], variable: str, *, site: str, dataset: str,
                   source: str, licence: str = "", region: str = "unknown"):
    """Stack (y, x) grids of several years into one scene (``buildings`` or ``population``).

    No-data cells (NaN in any year) become 0 and are marked 0 in the ``valid`` (y, x) uint8 variable
    (labels must be finite in a scene). All grids must share one grid.

    Args:
        grids: one (y, x) DataArray per year, georeferenced (rioxarray).
        years: the years (``time`` = 1 January of each).
        variable: ``"buildings"`` (share 0..1) or ``"population"`` (persons per cell).
        site, dataset, source, licence, region: the scene's attrs.

    Raises:
        DataFormatError: the grids differ in shape or transform.
    """
    from .raster import grid_of, require_same_grid
    from .schema import make_scene

    first = grid_of(grids[0])
    for da, year in zip(grids[1:], years[1:], strict=True):
        require_same_grid(f"{dataset} {years[0]}", first, f"{dataset} {year}", grid_of(da))
    stack = np.stack([np.asarray(da.values, dtype=np.float32) for da in grids])
    valid = np.isfinite(stack).all(axis=0)
    stack[:, ~valid] = 0.0
    return make_scene(**{variable: stack}, times=[f"{y}-01-01" for y in years], transform=first.transform,
                      crs=first.crs, site=site, region=region, dataset=dataset, split="unlabelled",
                      source=source, licence=licence, extra_vars={"valid": (("y", "x"), valid.astype(np.uint8))},
                      attrs={"valid_note": "valid = 0 where any year has no data (values there set to 0)"})


def write_grid_sample(root: Path, grids: dict[str, np.ndarray], transform, crs) -> Path:
    """Write one-band float32 grids (file name -> (rows, cols) array) on one grid into ``root``."""
    from .sample_files import write_tif

    for name, values in grids.items():
        write_tif(Path(root) / name, np.asarray(values, dtype=np.float32), transform, crs)
    return Path(root)


_SAMPLE_SIZE = 200  # 10 m pixels -> 20 x 20 cells of 100 m


def write_population_sample(out: Path, seed: int = 0) -> Path:
    """Write the embedded population sample (two 100 m grids, 2019 and 2020) to ``out/population``."""
    from affine import Affine

    from .sample_files import block_mean, scene_georef, write_tif
    from .synthetic import make_site

    scene = make_site(site="twin-population", size=_SAMPLE_SIZE, n_dates=24, region="south_asia", seed=seed + 60,
                      growth=0.05, modalities=("optical",), origin=(700000.0, 3000000.0), start="2019-01-01")
    t10, crs = scene_georef(scene)
    transform = Affine(100.0, 0, t10.c, 0, -100.0, t10.f)
    for t, year in ((0, 2019), (-1, 2020)):
        pop = scene.population.values[t].astype(np.float64)
        cells = (block_mean(pop, 10) * 100.0).astype(np.float32)          # persons per 100 m cell
        cells = np.round(cells, 2).astype(np.float32)
        write_tif(out / "population" / f"twin-population_{year}_100m.tif", cells, transform, crs,
                  descriptions=["population (persons per cell)"])
    return out / "population"
