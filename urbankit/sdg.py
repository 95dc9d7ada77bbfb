"""UN SDG indicator 11.3.1 (ratio of land consumption rate to population growth rate, LCRPGR),
its secondary indicators, and the city definition by the Degree of Urbanisation (DEGURBA).

Formulas (UN-Habitat SDG metadata 11.3.1, METHODS.md §8.1), for a city with built-up area
``Urb`` and population ``Pop`` at years t1 and t2 (y = t2 - t1 years)::

    LCR    = ln(Urb_t2 / Urb_t1) / y          (land consumption rate, 1/yr)
    PGR    = ln(Pop_t2 / Pop_t1) / y          (population growth rate, 1/yr)
    LCRPGR = LCR / PGR

plus built-up area per capita (m2/person) at both dates and its change, total change in
built-up area (%), and new development split into **infill / extension / leapfrog**:

- the *urban extent of t1* = built-up cells at t1 plus the enclosed gaps (non-built
  components, 4-connected, that do not reach the edge of the analysed window), or with
  ``infill_extent="buffer"`` the built-up cells dilated by ``buffer_m`` metres, then gaps
  filled;
- **infill** = new built-up (built at t2, not at t1) inside that extent;
- **extension** = new built-up outside it, in an 8-connected patch of new built-up that touches
  the extent (8-neighbourhood);
- **leapfrog** = new built-up in patches that do not touch it.

City definition (METHODS.md §8.2): on a ~1 km population grid (any input grid is aggregated
by summing whole blocks of cells, never averaging; density = population / true cell area in
km2), urban centres are 4-connected cells with density >= 1,500 inh/km2 and cluster population
>= 50,000, with holes < 15 km2 filled and edges smoothed by the majority rule (a cell joins
when >= 5 of its 8 neighbours are in the centre; repeated until stable); urban clusters are
8-connected cells with density >= 300 inh/km2 and population >= 5,000.

Everything works on numpy arrays or ``xarray.DataArray`` maps (georeferenced through
rioxarray); cell areas are true areas in any CRS: projected (from the transform and the CRS
unit) or geographic (per row from the latitudes, on the WGS84 ellipsoid or a sphere). Big maps
stay bool/uint8: areas are row sums times row areas, never float64 full-size copies.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from .errors import ConfigError, DataFormatError

__all__ = [
    "CITY_PRESETS", "CityDefinition", "CityExtent", "GridInfo", "SDGResult", "SDGWarning",
    "PopulationDeclineWarning", "ZeroPopulationGrowthWarning", "EmptyExtentWarning", "GridWarning",
    "grid_info", "cell_area_km2", "aggregate_population", "degurba", "city_extent", "builtup_mask",
    "builtup_area_km2", "urban_extent", "new_development", "lcr", "pgr", "sdg_11_3_1",
]

# --------------------------------------------------------------------------------------------
# warnings


class SDGWarning(UserWarning):
    """Base class of the warnings of :mod:`urbankit.sdg`."""


class PopulationDeclineWarning(SDGWarning):
    """The population fell (PGR < 0): LCRPGR is negative and cannot be read as densification."""


class ZeroPopulationGrowthWarning(SDGWarning):
    """|PGR| is (near) zero: LCRPGR is undefined (reported as NaN); read LCR and PGR instead."""


class EmptyExtentWarning(SDGWarning):
    """The city extent is empty, or holds no built-up area or no population at a date."""


class GridWarning(SDGWarning):
    """A grid could not be brought to the requested DEGURBA resolution exactly."""


# --------------------------------------------------------------------------------------------
# grids and true cell areas

_WGS84_A = 6378137.0
_WGS84_F = 1 / 298.257223563
_AUTHALIC_R = 6371007.181  # m, radius of the sphere with the WGS84 ellipsoid's area


@dataclass(frozen=True)
class GridInfo:
    """Georeference of a 2-D raster: an affine ``transform`` (north-up), a ``crs``, a ``shape``."""

    transform: Any
    crs: Any
    shape: tuple[int, int]

    @property
    def is_geographic(self) -> bool:
        return bool(self.crs is not None and self.crs.is_geographic)

    @property
    def res(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    def row_centres(self) -> np.ndarray:
        return self.transform.f + self.transform.e * (np.arange(self.shape[0]) + 0.5)

    def col_centres(self) -> np.ndarray:
        return self.transform.c + self.transform.a * (np.arange(self.shape[1]) + 0.5)


def _as_crs(crs):
    if crs is None:
        return None
    from rasterio.crs import CRS

    return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)


def grid_info(obj=None, *, transform=None, crs=None, shape=None) -> GridInfo:
    """The :class:`GridInfo` of a DataArray (through rioxarray) or of explicit arguments.

    ``transform``/``crs`` override what the DataArray carries. A numpy array needs
    ``transform`` (an ``affine.Affine``) and ``crs`` (anything rasterio understands).
    """
    from affine import Affine

    if obj is not None and hasattr(obj, "dims"):
        import rioxarray  # noqa: F401  (registers .rio)

        shape = tuple(obj.shape[-2:])
        if transform is None:
            with warnings.catch_warnings():  # rioxarray's own Affine '*' deprecation notice
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                transform = obj.rio.transform(recalc=True)
        if crs is None:
            crs = obj.rio.crs
    elif obj is not None:
        shape = tuple(np.shape(obj)[-2:])
    if transform is None:
        raise ConfigError("a numpy map needs transform= (affine.Affine) and crs= to know its cell areas")
    transform = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
    if abs(transform.b) > 1e-12 or abs(transform.d) > 1e-12:
        raise ConfigError(f"rotated/skewed transforms are not supported (got {transform!r})")
    return GridInfo(transform=transform, crs=_as_crs(crs), shape=(int(shape[0]), int(shape[1])))


def _q_authalic(phi: np.ndarray) -> np.ndarray:
    e2 = _WGS84_F * (2 - _WGS84_F)
    e = math.sqrt(e2)
    s = np.sin(phi)
    return (1 - e2) * (s / (1 - e2 * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))


def cell_area_km2(grid: GridInfo, method: str = "ellipsoidal") -> np.ndarray:
    """True area (km2) of the cells of each row: a float64 array of shape (ny,).

    Projected CRS: |a * e| from the transform times the CRS linear unit squared (the same for
    every row). Geographic CRS (e.g. EPSG:4326): the area of a lat/lon cell between latitudes
    phi1 and phi2 with width dlon (radians) is ``a^2 * dlon / 2 * |q(phi2) - q(phi1)|`` on the
    WGS84 ellipsoid (q: authalic function, Snyder 1987) or ``R^2 * dlon * |sin phi2 - sin phi1|``
    on a sphere of radius R = 6,371,007 m (``method="spherical"``).
    A grid without CRS raises ConfigError (its cell area is unknown).
    """
    ny = grid.shape[0]
    if grid.crs is None:
        raise ConfigError("the map has no CRS: cell areas are unknown (write one with .rio.write_crs)")
    if not grid.is_geographic:
        unit = 1.0
        try:
            unit = float(grid.crs.linear_units_factor[1])
        except Exception:  # pragma: no cover - CRS without unit info: assume metres
            pass
        area = abs(grid.transform.a * grid.transform.e) * unit * unit / 1e6
        return np.full(ny, area)
    lat_edges = np.deg2rad(grid.transform.f + grid.transform.e * np.arange(ny + 1))
    if np.any(np.abs(lat_edges) > np.pi / 2 + 1e-9):
        raise ConfigError("geographic grid extends beyond +-90 degrees latitude")
    lat_edges = np.clip(lat_edges, -np.pi / 2, np.pi / 2)
    dlon = np.deg2rad(abs(grid.transform.a))
    if method == "spherical":
        return _AUTHALIC_R**2 * dlon * np.abs(np.diff(np.sin(lat_edges))) / 1e6
    if method == "ellipsoidal":
        return _WGS84_A**2 * dlon / 2 * np.abs(np.diff(_q_authalic(lat_edges))) / 1e6
    raise ConfigError(f"cell_area_km2: method must be 'ellipsoidal' or 'spherical', got {method!r}")


def _nominal_cell_km(grid: GridInfo) -> float:
    """Side of a square cell of the grid's mean cell area (km)."""
    return float(np.sqrt(cell_area_km2(grid).mean()))


# --------------------------------------------------------------------------------------------
# population aggregation and DEGURBA


def _values(obj) -> np.ndarray:
    return np.asarray(obj.values if hasattr(obj, "values") else obj)


def _block_sum(arr: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor x factor`` blocks (the last partial blocks are summed over what exists)."""
    if factor == 1:
        return arr.astype(np.float64)
    ny, nx = arr.shape
    py, px = (-ny) % factor, (-nx) % factor
    if py or px:
        arr = np.pad(arr, ((0, py), (0, px)))
    by, bx = arr.shape[0] // factor, arr.shape[1] // factor
    return arr.reshape(by, factor, bx, factor).sum(axis=(1, 3), dtype=np.float64)


def aggregate_population(pop, *, target_km: float = 1.0, transform=None, crs=None,
                         area_method: str = "ellipsoidal") -> tuple[np.ndarray, np.ndarray, GridInfo, int]:
    """Bring a population grid to ~``target_km`` cells by summing whole blocks of cells.

    The block factor is ``max(1, round(target_km / native cell side))``: a 100 m grid is summed
    in 10x10 blocks, a 1 km grid is kept, a 30 arc-second (~0.9 km) geographic grid is kept.
    NaN and negative values (nodata) count as 0 persons. Population is summed, never averaged,
    and the area of each block is the sum of the true areas of its cells (so partial edge blocks
    get their true, smaller area).

    Returns ``(population, area_km2, grid, factor)``: float64 arrays of the aggregated grid, its
    GridInfo, and the block factor used. A factor that does not give exactly ``target_km``
    cells (e.g. 30 m cells -> 33 x 30 m = 990 m) raises a :class:`GridWarning`.
    """
    grid = grid_info(pop, transform=transform, crs=crs)
    values = _values(pop)
    if values.ndim != 2:
        raise DataFormatError(f"population grid must be 2-D (y, x), got shape {values.shape}")
    values = np.where(np.isfinite(values) & (values > 0), values, 0).astype(np.float64)
    native_km = _nominal_cell_km(grid)
    factor = max(1, int(round(target_km / native_km)))
    if abs(factor * native_km - target_km) > 1e-6 * target_km and not grid.is_geographic:
        warnings.warn(
            f"population grid of {native_km * 1000:.0f} m cells: DEGURBA cells are {factor} x "
            f"{native_km * 1000:.0f} m = {factor * native_km:.3f} km, not exactly {target_km} km",
            GridWarning, stacklevel=2,
        )
    row_area = cell_area_km2(grid, area_method)
    area = np.broadcast_to(row_area[:, None], values.shape)
    pop_agg = _block_sum(values, factor)
    area_agg = _block_sum(np.ascontiguousarray(area), factor)
    t = grid.transform
    from affine import Affine

    agg_grid = GridInfo(Affine(t.a * factor, 0, t.c, 0, t.e * factor, t.f), grid.crs, pop_agg.shape)
    return pop_agg, area_agg, agg_grid, factor


@dataclass(frozen=True)
class CityDefinition:
    """Thresholds and rules of a city definition on the ~1 km population grid."""

    name: str
    density_threshold: float  # inh/km2
    min_population: float  # persons per cluster
    connectivity: int  # 4 (edges) or 8 (edges and corners)
    fill_holes_km2: float = 0.0  # fill enclosed gaps smaller than this (0: no filling)
    majority_smoothing: bool = False  # add cells with >= 5 of 8 neighbours, until stable
    verified: bool = True
    note: str = ""


CITY_PRESETS: dict[str, CityDefinition] = {
    "degurba_centre": CityDefinition(
        "degurba_centre", 1500.0, 50_000.0, 4, 15.0, True,
        note="DEGURBA urban centre (UN Statistical Commission 2020; Dijkstra et al. 2021)"),
    "degurba_cluster": CityDefinition(
        "degurba_cluster", 300.0, 5_000.0, 8, 0.0, False,
        note="DEGURBA urban cluster (UN Statistical Commission 2020; Dijkstra et al. 2021)"),
    "gee_app": CityDefinition(
        "gee_app", 300.0, 1_000_000.0, 8, 0.0, False, verified=False,
        note="[UNVERIFIED] the seed's GEE app values '300 / 1,000,000', read as density >= 300 "
             "inh/km2 and cluster population >= 1,000,000 (large agglomerations); not found in "
             "any source, cluster rules (8-connectivity) assumed"),
}


def _structure(connectivity: int) -> np.ndarray:
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    if connectivity == 8:
        return np.ones((3, 3), bool)
    raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")


def _fill_small_holes(mask: np.ndarray, area: np.ndarray, max_km2: float, connectivity: int) -> np.ndarray:
    """Fill enclosed background components with a total area < ``max_km2``.

    The background uses the complementary connectivity (8 for 4-connected foreground and the
    other way round), as digital topology requires; components touching the border are open.
    """
    bg_conn = 8 if connectivity == 4 else 4
    labels, n = ndimage.label(~mask, structure=_structure(bg_conn))
    if n == 0:
        return mask
    hole_area = ndimage.sum_labels(area, labels, index=np.arange(1, n + 1))
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fill = np.zeros(n + 1, bool)
    fill[1:] = hole_area < max_km2
    fill[border] = False
    fill[0] = False
    return mask | fill[labels]


def _majority_step(mask: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    kernel[1, 1] = 0
    neighbours = ndimage.convolve(mask.astype(np.uint8), kernel, mode="constant", cval=0)
    return ~mask & (neighbours >= 5)


def degurba(population: np.ndarray, area_km2: np.ndarray, definition: str | CityDefinition = "degurba_centre",
            *, density_threshold: float | None = None, min_population: float | None = None,
            max_iterations: int = 100) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Classify a (~1 km) population grid into city cells by a DEGURBA-style definition.

    Steps: density = population / area; dense cells (density >= threshold) grouped into
    clusters (4- or 8-connectivity); clusters with population >= ``min_population`` kept; then,
    for urban centres, gaps < ``fill_holes_km2`` filled and the majority rule applied, repeated
    until nothing changes (at most ``max_iterations`` rounds).

    Args:
        population: persons per cell (2-D).
        area_km2: true area per cell (2-D, or (ny,) per row, or a scalar).
        definition: a preset name of :data:`CITY_PRESETS` or a :class:`CityDefinition`.
        density_threshold, min_population: override the preset's values.

    Returns:
        ``(mask, labels, table)``: bool mask of city cells, int32 labels of the final cities
        (same connectivity), and a DataFrame (id, population, area_km2, cells, density) sorted by
        population, largest first.
    """
    d = _definition(definition, density_threshold, min_population)
    pop = np.asarray(population, dtype=np.float64)
    area = np.broadcast_to(np.asarray(area_km2, dtype=np.float64).reshape(
        (-1, 1) if np.ndim(area_km2) == 1 else np.shape(area_km2)), pop.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(area > 0, pop / area, 0.0)
    dense = density >= d.density_threshold
    struct = _structure(d.connectivity)
    labels, n = ndimage.label(dense, structure=struct)
    if n:
        cl_pop = ndimage.sum_labels(pop, labels, index=np.arange(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = cl_pop >= d.min_population
        mask = keep[labels]
    else:
        mask = np.zeros(pop.shape, bool)
    for _ in range(max_iterations):
        before = mask
        if d.fill_holes_km2 > 0:
            mask = _fill_small_holes(mask, area, d.fill_holes_km2, d.connectivity)
        if d.majority_smoothing:
            add = _majority_step(mask)
            while add.any():
                mask = mask | add
                add = _majority_step(mask)
        if np.array_equal(mask, before):
            break
    labels, n = ndimage.label(mask, structure=struct)
    idx = np.arange(1, n + 1)
    table = pd.DataFrame({
        "id": idx,
        "population": ndimage.sum_labels(pop, labels, idx) if n else [],
        "area_km2": ndimage.sum_labels(area, labels, idx) if n else [],
        "cells": ndimage.sum_labels(np.ones_like(pop), labels, idx) if n else [],
    })
    table["density"] = table["population"] / table["area_km2"].where(table["area_km2"] > 0)
    table = table.sort_values("population", ascending=False).reset_index(drop=True)
    return mask, labels.astype(np.int32), table


def _definition(definition, density_threshold=None, min_population=None) -> CityDefinition:
    if isinstance(definition, CityDefinition):
        d = definition
    else:
        if definition not in CITY_PRESETS:
            raise ConfigError(
                f"city_definition must be one of {sorted(CITY_PRESETS)}, None or a CityDefinition, "
                f"got {definition!r}")
        d = CITY_PRESETS[definition]
    if density_threshold is not None or min_population is not None:
        from dataclasses import replace

        d = replace(d, density_threshold=float(density_threshold if density_threshold is not None
                                               else d.density_threshold),
                    min_population=float(min_population if min_population is not None
                                         else d.min_population), name=d.name + " (modified)")
    if d.connectivity not in (4, 8):
        raise ConfigError(f"CityDefinition.connectivity must be 4 or 8, got {d.connectivity}")
    return d


@dataclass
class CityExtent:
    """A city definition applied to a population grid (the DEGURBA grid)."""

    mask: np.ndarray  # bool, on ``grid``
    labels: np.ndarray
    table: pd.DataFrame
    grid: GridInfo
    population: np.ndarray
    area_km2: np.ndarray
    definition: CityDefinition
    factor: int

    def to_xarray(self, name: str = "city"):
        import xarray as xr

        da = xr.DataArray(self.mask, dims=("y", "x"),
                          coords={"y": self.grid.row_centres(), "x": self.grid.col_centres()}, name=name)
        if self.grid.crs is not None:
            import rioxarray  # noqa: F401

            da = da.rio.write_crs(self.grid.crs).rio.write_transform(self.grid.transform)
        return da


def city_extent(pop, definition: str | CityDefinition = "degurba_centre", *, transform=None, crs=None,
                target_km: float = 1.0, density_threshold=None, min_population=None,
                area_method: str = "ellipsoidal") -> CityExtent:
    """Aggregate a population grid to ~1 km (:func:`aggregate_population`) and apply
    :func:`degurba` with a preset (``degurba_centre``, ``degurba_cluster``, ``gee_app``)."""
    d = _definition(definition, density_threshold, min_population)
    if not d.verified:
        warnings.warn(f"city definition {d.name!r}: {d.note}", SDGWarning, stacklevel=2)
    pop1, area1, grid1, factor = aggregate_population(pop, target_km=target_km, transform=transform, crs=crs,
                                                      area_method=area_method)
    mask, labels, table = degurba(pop1, area1, d)
    return CityExtent(mask, labels, table, grid1, pop1, area1, d, factor)


# --------------------------------------------------------------------------------------------
# moving masks between grids


def _same_crs(a: GridInfo, b: GridInfo) -> bool:
    if a.crs is None or b.crs is None:
        return a.crs is None and b.crs is None
    return a.crs == b.crs


def _repeat_runs(arr: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take(arr, idx, axis)`` for a monotone ``idx``, via np.repeat of its runs."""
    if idx.size == 0:
        return np.take(arr, idx, axis=axis)
    if np.any(np.diff(idx) < 0):
        return np.take(arr, idx, axis=axis)
    starts = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    counts = np.diff(np.r_[starts, idx.size])
    return np.repeat(np.take(arr, idx[starts], axis=axis), counts, axis=axis)


def mask_to_grid(mask: np.ndarray, src: GridInfo, dst: GridInfo) -> np.ndarray:
    """Sample a bool mask onto another grid at the destination cell centres (nearest cell).

    Same CRS: separable index arithmetic (no full-size coordinate arrays). Different CRS:
    ``rasterio.warp.reproject`` with nearest resampling. Outside the source grid: False.
    """
    if _same_crs(src, dst):
        inv_row = np.floor((dst.row_centres() - src.transform.f) / src.transform.e).astype(np.int64)
        inv_col = np.floor((dst.col_centres() - src.transform.c) / src.transform.a).astype(np.int64)
        rok = (inv_row >= 0) & (inv_row < src.shape[0])
        cok = (inv_col >= 0) & (inv_col < src.shape[1])
        rows = np.clip(inv_row, 0, src.shape[0] - 1)
        cols = np.clip(inv_col, 0, src.shape[1] - 1)
        # run-length repeat (index vectors are monotone): ~15x faster than fancy indexing
        out = _repeat_runs(_repeat_runs(mask, cols, axis=1), rows, axis=0)
        if not rok.all():
            out[~rok] = False
        if not cok.all():
            out[:, ~cok] = False
        return out
    from rasterio.warp import Resampling, reproject

    out = np.zeros(dst.shape, np.uint8)
    reproject(mask.astype(np.uint8), out, src_transform=src.transform, src_crs=src.crs,
              dst_transform=dst.transform, dst_crs=dst.crs, resampling=Resampling.nearest, src_nodata=None,
              dst_nodata=0)
    return out.astype(bool)


def _rasterize_boundary(boundary, grid: GridInfo, boundary_crs=None) -> np.ndarray:
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    geoms: Iterable = boundary
    if isinstance(boundary, Mapping):
        if boundary.get("type") == "FeatureCollection":
            geoms = [f["geometry"] for f in boundary["features"]]
        elif boundary.get("type") == "Feature":
            geoms = [boundary["geometry"]]
        else:
            geoms = [boundary]
    elif hasattr(boundary, "__geo_interface__"):
        geoms = [boundary.__geo_interface__]
    geoms = list(geoms)
    if boundary_crs is not None and grid.crs is not None and _as_crs(boundary_crs) != grid.crs:
        geoms = [transform_geom(_as_crs(boundary_crs), grid.crs, g) for g in geoms]
    if not geoms:
        return np.zeros(grid.shape, bool)
    out = rasterize([(g, 1) for g in geoms], out_shape=grid.shape, transform=grid.transform, fill=0,
                    dtype="uint8")
    return out.astype(bool)


# --------------------------------------------------------------------------------------------
# built-up maps and areas

_CHUNK_ROWS = 1024


def builtup_mask(built, threshold: float = 0.1, units: str = "auto", cell_area_m2: np.ndarray | None = None
                 ) -> np.ndarray:
    """A bool built-up map from a binary map, a built-up fraction or a built surface raster.

    ``units``: ``"auto"`` (bool, or integers with max <= 1 -> binary; floats with max <= 1 ->
    fraction; anything else -> m2 of built surface per cell), ``"binary"``, ``"fraction"``
    (0..1), ``"percent"`` (0..100) or ``"m2"`` (needs ``cell_area_m2`` per row). A cell is
    built-up if its built share is >= ``threshold`` (default 0.1 = 10 %, METHODS.md §8.3).
    NaN is not built-up. Works row-chunk-wise (no full-size float copies).
    """
    arr = _values(built)
    if arr.ndim != 2:
        raise DataFormatError(f"built-up map must be 2-D (y, x), got shape {arr.shape}")
    units = _built_units(arr, units)
    if units == "binary":
        if arr.dtype == bool:
            return arr
        if arr.dtype in (np.uint8, np.int8) and arr.flags.c_contiguous and arr.min() >= 0 and arr.max() <= 1:
            return arr.view(bool)  # 0/1 bytes are valid booleans: no copy
        return arr > 0
    out = np.empty(arr.shape, bool)
    for r0 in range(0, arr.shape[0], _CHUNK_ROWS):
        block = arr[r0:r0 + _CHUNK_ROWS]
        share = _share(block, units, None if cell_area_m2 is None else cell_area_m2[r0:r0 + _CHUNK_ROWS])
        out[r0:r0 + _CHUNK_ROWS] = share >= threshold
    return out


def _built_units(arr: np.ndarray, units: str) -> str:
    if units not in ("auto", "binary", "fraction", "percent", "m2"):
        raise ConfigError(f"built_units must be auto, binary, fraction, percent or m2, got {units!r}")
    if units != "auto":
        return units
    if arr.dtype == bool:
        return "binary"
    mx = np.nanmax(arr) if arr.size else 0
    if np.issubdtype(arr.dtype, np.integer):
        return "binary" if mx <= 1 else "m2"
    return "fraction" if mx <= 1.0 + 1e-6 else "m2"


def _share(block: np.ndarray, units: str, cell_area_m2_rows) -> np.ndarray:
    b = block.astype(np.float32)
    if units == "percent":
        b = b / 100.0
    elif units == "m2":
        if cell_area_m2_rows is None:
            raise ConfigError("built_units='m2' needs the cell areas")
        b = b / np.asarray(cell_area_m2_rows, np.float32)[:, None]
    elif units == "binary":
        b = (b > 0).astype(np.float32)
    return np.nan_to_num(b, nan=0.0)


def builtup_area_km2(built, row_area_km2: np.ndarray, *, within: np.ndarray | None = None,
                     threshold: float = 0.1,
                     units: str = "auto", mode: str = "binary") -> float:
    """Built-up area (km2) of a map, optionally inside a bool mask ``within``.

    ``mode="binary"``: cells built-up by the threshold rule times their true area (UN
    "built-up area"); ``mode="fraction"``: sum of built share x true cell area (built surface).
    """
    arr = _values(built)
    units = _built_units(arr, units)
    total = 0.0
    for r0 in range(0, arr.shape[0], _CHUNK_ROWS):
        rows = slice(r0, r0 + _CHUNK_ROWS)
        if mode == "binary":
            if arr.dtype == bool and units == "binary":
                m = arr[rows]
            else:
                m = _share(arr[rows], units, row_area_km2[rows] * 1e6) >= threshold
            if within is not None:
                m = m & within[rows]
            total += float(np.dot(np.count_nonzero(m, axis=1), row_area_km2[rows]))
        elif mode == "fraction":
            s = np.clip(_share(arr[rows], units, row_area_km2[rows] * 1e6), 0, 1)
            if within is not None:
                s = np.where(within[rows], s, 0)
            total += float(np.dot(s.sum(axis=1, dtype=np.float64), row_area_km2[rows]))
        else:
            raise ConfigError(f"builtup_area mode must be 'binary' or 'fraction', got {mode!r}")
    return total


def urban_extent(built: np.ndarray, method: str = "fill_holes", buffer_cells: float = 0.0) -> np.ndarray:
    """The urban extent of a bool built-up map: built-up cells plus the enclosed gaps.

    Enclosed gaps are non-built components (4-connected, the complement of 8-connected
    built-up) that do not touch the map's edge. ``method="buffer"`` first dilates the built-up
    cells by a disc of ``buffer_cells`` cells, then fills the enclosed gaps.
    """
    b = built
    if method == "buffer" and buffer_cells > 0:
        r = int(math.ceil(buffer_cells))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        b = ndimage.binary_dilation(built, structure=(yy**2 + xx**2) <= buffer_cells**2)
    elif method not in ("fill_holes", "buffer"):
        raise ConfigError(f"infill_extent must be 'fill_holes' or 'buffer', got {method!r}")
    labels, n = ndimage.label(~b)
    if n == 0:
        return b.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    enclosed = np.ones(n + 1, bool)
    enclosed[border] = False
    enclosed[0] = False
    out = enclosed[labels]
    del labels
    out |= b
    return out


#: codes of the new-development raster
NEW_DEVELOPMENT_CODES = {0: "no new development", 1: "infill", 2: "extension", 3: "leapfrog"}


def new_development(b1: np.ndarray, b2: np.ndarray, within: np.ndarray | None = None, *,
                    method: str = "fill_holes", buffer_cells: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Classify new built-up cells (b2 & ~b1) into infill (1), extension (2), leapfrog (3).

    Returns ``(codes uint8, extent_t1 bool)``; ``within`` restricts the new cells counted.
    """
    extent = urban_extent(b1, method, buffer_cells)
    new = b2 & ~b1
    if within is not None:
        new &= within
    codes = np.zeros(b1.shape, np.uint8)
    codes[new & extent] = 1
    outside = new & ~extent
    del new
    labels, n = ndimage.label(outside, structure=np.ones((3, 3), bool))
    touch = ndimage.binary_dilation(extent, structure=np.ones((3, 3), bool))
    touch &= outside
    is_ext = np.zeros(n + 1, bool)
    is_ext[np.unique(labels[touch])] = True
    is_ext[0] = False
    del touch
    ext = is_ext[labels]
    del labels
    codes[ext] = 2
    codes[outside & ~ext] = 3
    return codes, extent


# --------------------------------------------------------------------------------------------
# the indicators


def lcr(urb_t1: float, urb_t2: float, years: float) -> float:
    """Land consumption rate ln(Urb_t2 / Urb_t1) / y (1/yr); NaN when an area is <= 0."""
    if urb_t1 <= 0 or urb_t2 <= 0 or years <= 0:
        return float("nan")
    return math.log(urb_t2 / urb_t1) / years


def pgr(pop_t1: float, pop_t2: float, years: float) -> float:
    """Population growth rate ln(Pop_t2 / Pop_t1) / y (1/yr); NaN when a population is <= 0."""
    if pop_t1 <= 0 or pop_t2 <= 0 or years <= 0:
        return float("nan")
    return math.log(pop_t2 / pop_t1) / years


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.1f}"
    return str(v)


@dataclass
class SDGResult:
    """Result of :func:`sdg_11_3_1`.

    Attributes:
        table: tidy DataFrame of every indicator: ``name``, ``value``, ``unit``, ``description``.
        parameters: every choice that produced the numbers (printed with the result).
        extents: ``xarray.Dataset`` on the built-up grid: ``city_extent`` (bool),
            ``urban_extent_t1`` (bool), ``new_development`` (uint8, :data:`NEW_DEVELOPMENT_CODES`).
        city: the DEGURBA :class:`CityExtent` per year (dict ``t1``/``t2``) when one was used.
        warnings: the warning messages raised while computing.
    """

    table: pd.DataFrame
    parameters: dict[str, Any]
    extents: Any
    city: dict[str, CityExtent] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    city_grid_mask: np.ndarray | None = None
    city_grid: GridInfo | None = None

    def value(self, name: str) -> float:
        row = self.table.loc[self.table["name"] == name, "value"]
        if row.empty:
            raise KeyError(f"no indicator {name!r}; have {list(self.table['name'])}")
        return float(row.iloc[0])

    __getitem__ = value

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.table["name"], self.table["value"].astype(float)))

    def to_markdown(self, digits: int = 4) -> str:
        lines = ["**SDG 11.3.1** parameters:", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in self.parameters.items()]
        lines += ["", "| indicator | value | unit |", "|---|---:|---|"]
        for _, r in self.table.iterrows():
            v = r["value"]
            shown = round(float(v), digits) if np.isfinite(v) else "nan"
            lines.append(f"| {r['name']} | {shown} | {r['unit']} |")
        if self.warnings:
            lines += ["", "Warnings:"] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.parameters.items())
        body = self.table[["name", "value", "unit"]].to_string(index=False, float_format=lambda v: f"{v:.4f}")
        warn = "".join(f"\nWARNING: {w}" for w in self.warnings)
        return f"SDG 11.3.1 result ({params})\n{body}{warn}"

    def polygons(self, layer: str = "city_extent", to_crs: Any = None) -> dict:
        """GeoJSON-like FeatureCollection of a layer (``city_extent``, ``urban_extent_t1``,
        ``new_development``, or ``city_grid`` = the DEGURBA cells), via rasterio.features.shapes.

        ``to_crs`` (e.g. ``"EPSG:4326"`` for folium) reprojects the geometries.
        Properties: ``layer`` and, for new development, ``value`` (code) and ``type``.
        """
        from rasterio.features import shapes
        from rasterio.warp import transform_geom

        if layer == "city_grid":
            if self.city_grid_mask is None:
                return {"type": "FeatureCollection", "features": []}
            arr, grid = self.city_grid_mask.astype(np.uint8), self.city_grid
        else:
            arr = np.asarray(self.extents[layer].values).astype(np.uint8)
            grid = self._grid
        feats = []
        for geom, val in shapes(arr, mask=arr > 0, transform=grid.transform, connectivity=8):
            if to_crs is not None and grid.crs is not None:
                geom = transform_geom(grid.crs, _as_crs(to_crs), geom)
            props = {"layer": layer, "value": int(val)}
            if layer == "new_development":
                props["type"] = NEW_DEVELOPMENT_CODES[int(val)]
            feats.append({"type": "Feature", "geometry": geom, "properties": props})
        crs_name = str(_as_crs(to_crs) if to_crs is not None else grid.crs)
        return {"type": "FeatureCollection", "features": feats, "crs": crs_name}

    def to_geodataframe(self, layer: str = "city_extent", to_crs: Any = None):
        """The polygons of :meth:`polygons` as a ``geopandas.GeoDataFrame`` (geopandas is optional)."""
        try:
            import geopandas as gpd
        except ImportError as exc:
            raise ConfigError("to_geodataframe needs geopandas (pip install geopandas); "
                              "polygons() gives the same as GeoJSON-like dicts") from exc
        fc = self.polygons(layer, to_crs=to_crs)
        return gpd.GeoDataFrame.from_features(fc["features"], crs=fc["crs"])

    _grid: GridInfo | None = None


def _warn(msg: str, cls, log: list[str]) -> None:
    log.append(msg)
    warnings.warn(msg, cls, stacklevel=3)


def sdg_11_3_1(built_t1, built_t2, pop_t1, pop_t2, year_t1: float, year_t2: float, *, boundary=None,
               city_definition: str | CityDefinition | None = "degurba_centre", extent: str = "union",
               select: str = "largest", builtup_threshold: float = 0.1, built_units: str = "auto",
               builtup_area: str = "binary", infill_extent: str = "fill_holes", buffer_m: float = 0.0,
               transform=None, crs=None, pop_transform=None, pop_crs=None, degurba_km: float = 1.0,
               density_threshold: float | None = None, min_population: float | None = None,
               pgr_tolerance: float = 1e-4, area_method: str = "ellipsoidal", boundary_crs=None) -> SDGResult:
    """Every SDG 11.3.1 indicator for one city between two dates.

    Args:
        built_t1, built_t2: built-up maps on one grid (bool/uint8 binary, built-up fraction
            0..1, or built surface m2 per cell; see ``built_units``), numpy or DataArray.
        pop_t1, pop_t2: population grids (persons per cell) on one grid (any resolution, any
            CRS: the built-up grid's, or ``pop_transform``/``pop_crs``).
        year_t1, year_t2: the dates (years, t2 > t1).
        boundary: fixes the city extent instead of a city definition: a bool mask on the
            built-up grid, or GeoJSON-like geometry/Feature/FeatureCollection in the built-up
            grid's CRS (or in ``boundary_crs``, e.g. ``"EPSG:4326"``: reprojected first). A
            geometry is rasterised separately on the built-up and the population grid (cell
            centres inside).
        city_definition: DEGURBA preset (``degurba_centre``, ``degurba_cluster``, ``gee_app``
            [UNVERIFIED]) or a :class:`CityDefinition`, applied to each year's population; None
            = the whole grid is the study area.
        extent: which year's city extent fixes the area for both dates: ``union`` (default,
            METHODS.md §8.2), ``t1`` or ``t2``.
        select: ``largest`` (the extent component with the largest population at t2) or
            ``all`` (every city of the definition in the grid).
        builtup_threshold: a cell is built-up if its built share is >= this (default 0.1).
        builtup_area: ``binary`` (area of built-up cells) or ``fraction`` (built surface).
        infill_extent: ``fill_holes`` (built-up + enclosed gaps) or ``buffer`` (built-up dilated
            by ``buffer_m`` metres, then gaps filled) = the urban extent of t1 for infill.
        pgr_tolerance: |PGR| below this (1/yr) makes LCRPGR undefined (NaN, warned).

    Returns:
        :class:`SDGResult` (table, parameters, extents, polygons()).

    Warnings: :class:`PopulationDeclineWarning` (PGR < 0), :class:`ZeroPopulationGrowthWarning`
    (|PGR| < tolerance), :class:`EmptyExtentWarning` (empty extent / zero built-up or population).
    """
    import xarray as xr

    log: list[str] = []
    years = float(year_t2) - float(year_t1)
    if years <= 0:
        raise ConfigError(f"year_t2 must be after year_t1, got {year_t1} and {year_t2}")
    if extent not in ("union", "t1", "t2"):
        raise ConfigError(f"extent must be 'union', 't1' or 't2', got {extent!r}")
    if select not in ("largest", "all"):
        raise ConfigError(f"select must be 'largest' or 'all', got {select!r}")
    g_b = grid_info(built_t1, transform=transform, crs=crs)
    if tuple(np.shape(built_t2)[-2:]) != g_b.shape:
        raise DataFormatError(f"built_t1 {g_b.shape} and built_t2 {np.shape(built_t2)} differ in shape")
    if pop_transform is None and not hasattr(pop_t1, "dims") and tuple(np.shape(pop_t1)) == g_b.shape:
        pop_transform, pop_crs = g_b.transform, g_b.crs
    g_p = grid_info(pop_t1, transform=pop_transform, crs=pop_crs if pop_crs is not None else
                    (None if hasattr(pop_t1, "dims") else g_b.crs))
    if tuple(np.shape(pop_t2)[-2:]) != g_p.shape:
        raise DataFormatError(f"pop_t1 {g_p.shape} and pop_t2 {np.shape(pop_t2)} differ in shape")
    row_area_b = cell_area_km2(g_b, area_method)

    # ---- the city extent on the built-up grid (mask_b) and on the population grid (mask_p)
    cities: dict[str, CityExtent] = {}
    city_grid_mask = city_grid = None
    if boundary is not None:
        if isinstance(boundary, np.ndarray) or hasattr(boundary, "dims"):
            mask_b = np.asarray(_values(boundary), bool)
            if mask_b.shape != g_b.shape:
                raise DataFormatError(
                    f"boundary mask {mask_b.shape} must be on the built-up grid {g_b.shape}")
            mask_p = mask_to_grid(mask_b, g_b, g_p)
        else:
            mask_b = _rasterize_boundary(boundary, g_b, boundary_crs)
            mask_p = _rasterize_boundary(boundary, g_p, boundary_crs)
        how = "boundary given"
        definition_name = "boundary"
    elif city_definition is None:
        mask_b = np.ones(g_b.shape, bool)
        mask_p = np.ones(g_p.shape, bool)
        how = "whole grid"
        definition_name = "none (whole grid)"
    else:
        d = _definition(city_definition, density_threshold, min_population)
        if not d.verified:
            _warn(f"city definition {d.name!r}: {d.note}", SDGWarning, log)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for key, pop in (("t1", pop_t1), ("t2", pop_t2)):
                p1, a1, grid1, factor = aggregate_population(pop, target_km=degurba_km,
                                                             transform=g_p.transform,
                                                             crs=g_p.crs, area_method=area_method)
                m, lab, tab = degurba(p1, a1, d)
                cities[key] = CityExtent(m, lab, tab, grid1, p1, a1, d, factor)
        for w in caught:
            if issubclass(w.category, SDGWarning) and str(w.message) not in log:
                _warn(str(w.message), w.category, log)
        if extent == "union":
            cm = cities["t1"].mask | cities["t2"].mask
        else:
            cm = cities[extent].mask.copy()
        if select == "largest" and cm.any():
            lab, n = ndimage.label(cm, structure=_structure(d.connectivity))
            pops = ndimage.sum_labels(cities["t2"].population, lab, np.arange(1, n + 1))
            cm = lab == (int(np.argmax(pops)) + 1)
        city_grid_mask, city_grid = cm, cities["t1"].grid
        mask_b = mask_to_grid(cm, city_grid, g_b)
        mask_p = mask_to_grid(cm, city_grid, g_p)
        how = f"DEGURBA {d.name} ({d.density_threshold:g} inh/km2, {d.min_population:g} persons, " \
              f"{d.connectivity}-connectivity)"
        definition_name = d.name
    if not mask_b.any():
        _warn("the city extent is empty: no cell satisfies the city definition; indicators are NaN",
              EmptyExtentWarning, log)

    # ---- built-up (bool) maps, areas, population
    b1 = builtup_mask(built_t1, builtup_threshold, built_units, row_area_b * 1e6)
    b2 = builtup_mask(built_t2, builtup_threshold, built_units, row_area_b * 1e6)
    if builtup_area == "binary":
        urb1 = builtup_area_km2(b1, row_area_b, within=mask_b)
        urb2 = builtup_area_km2(b2, row_area_b, within=mask_b)
    else:
        urb1 = builtup_area_km2(built_t1, row_area_b, within=mask_b, threshold=builtup_threshold,
                                units=built_units, mode="fraction")
        urb2 = builtup_area_km2(built_t2, row_area_b, within=mask_b, threshold=builtup_threshold,
                                units=built_units, mode="fraction")
    pv1 = np.where(np.isfinite(_values(pop_t1)) & (_values(pop_t1) > 0), _values(pop_t1), 0)
    pv2 = np.where(np.isfinite(_values(pop_t2)) & (_values(pop_t2) > 0), _values(pop_t2), 0)
    popv1 = float(np.where(mask_p, pv1, 0).sum(dtype=np.float64))
    popv2 = float(np.where(mask_p, pv2, 0).sum(dtype=np.float64))
    if mask_b.any() and (urb1 <= 0 or urb2 <= 0):
        when = "t1" if urb1 <= 0 else "t2"
        _warn(f"no built-up area inside the city extent at {when}: LCR is undefined (NaN)",
              EmptyExtentWarning, log)
    if mask_b.any() and (popv1 <= 0 or popv2 <= 0):
        _warn("no population inside the city extent at a date: PGR is undefined (NaN)",
              EmptyExtentWarning, log)

    lcr_v = lcr(urb1, urb2, years)
    pgr_v = pgr(popv1, popv2, years)
    ratio = float("nan")
    if np.isfinite(lcr_v) and np.isfinite(pgr_v):
        if abs(pgr_v) < pgr_tolerance:
            _warn(f"PGR = {pgr_v:.2e}/yr is near zero (|PGR| < {pgr_tolerance:g}): LCRPGR is undefined and "
                  "reported as NaN; read LCR and PGR instead", ZeroPopulationGrowthWarning, log)
        else:
            ratio = lcr_v / pgr_v
            if pgr_v < 0:
                _warn(f"PGR = {pgr_v:.4f}/yr is negative (the population shrank): LCRPGR = {ratio:.3f} is "
                      "negative and must not be read as densification; read LCR and PGR side by side",
                      PopulationDeclineWarning, log)

    # ---- new development, restricted to the bounding box of the city extent (+1 cell margin)
    codes_full = np.zeros(g_b.shape, np.uint8)
    ext_full = np.zeros(g_b.shape, bool)
    buffer_cells = 0.0
    if infill_extent == "buffer":
        buffer_cells = buffer_m / (math.sqrt(row_area_b.mean()) * 1000.0)
    if mask_b.any():
        rows = np.flatnonzero(mask_b.any(axis=1))
        cols = np.flatnonzero(mask_b.any(axis=0))
        win = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))
        codes, ext1 = new_development(b1[win], b2[win], mask_b[win], method=infill_extent,
                                      buffer_cells=buffer_cells)
        codes_full[win] = codes
        ext_full[win] = ext1 & mask_b[win]
        counts = np.stack([np.count_nonzero(codes == c, axis=1) for c in (1, 2, 3)])
        infill, extension, leapfrog = (float(np.dot(c, row_area_b[win[0]])) for c in counts)
    else:
        infill = extension = leapfrog = 0.0
    new_total = infill + extension + leapfrog

    def pct(a, b):
        return a / b * 100.0 if b > 0 else float("nan")

    cap1 = urb1 * 1e6 / popv1 if popv1 > 0 else float("nan")
    cap2 = urb2 * 1e6 / popv2 if popv2 > 0 else float("nan")
    city_area = float(np.dot(np.count_nonzero(mask_b, axis=1), row_area_b))
    rows_ = [
        ("city_extent_area", city_area, "km2", "area of the city extent used for both dates"),
        ("built_up_area_t1", urb1, "km2", "built-up area inside the extent at t1"),
        ("built_up_area_t2", urb2, "km2", "built-up area inside the extent at t2"),
        ("population_t1", popv1, "persons", "population inside the extent at t1"),
        ("population_t2", popv2, "persons", "population inside the extent at t2"),
        ("LCR", lcr_v, "1/yr", "land consumption rate ln(Urb_t2/Urb_t1)/y"),
        ("PGR", pgr_v, "1/yr", "population growth rate ln(Pop_t2/Pop_t1)/y"),
        ("LCRPGR", ratio, "ratio", "LCR / PGR (1 = balanced, <1 densifying, >1 sprawl)"),
        ("built_up_per_capita_t1", cap1, "m2/person", "built-up area per capita at t1"),
        ("built_up_per_capita_t2", cap2, "m2/person", "built-up area per capita at t2"),
        ("built_up_per_capita_change", cap2 - cap1, "m2/person", "change in built-up area per capita"),
        ("built_up_per_capita_change_pct", pct(cap2 - cap1, cap1), "%", "change in built-up area per capita"),
        ("built_up_change_pct", pct(urb2 - urb1, urb1), "%", "total change in built-up area"),
        ("new_development_km2", new_total, "km2", "new built-up (built at t2, not at t1) in the extent"),
        ("new_infill_km2", infill, "km2", "new built-up inside the urban extent of t1"),
        ("new_extension_km2", extension, "km2", "new built-up outside it, contiguous (8-conn.) to it"),
        ("new_leapfrog_km2", leapfrog, "km2", "new built-up not contiguous to it"),
        ("new_infill_pct", pct(infill, new_total), "%", "infill share of new development"),
        ("new_extension_pct", pct(extension, new_total), "%", "extension share of new development"),
        ("new_leapfrog_pct", pct(leapfrog, new_total), "%", "leapfrog share of new development"),
    ]
    table = pd.DataFrame(rows_, columns=["name", "value", "unit", "description"])
    table["value"] = table["value"].astype(float)
    parameters = {
        "year_t1": year_t1, "year_t2": year_t2, "years": years,
        "city_definition": definition_name, "city_extent": how,
        "extent": extent if boundary is None and city_definition is not None else "n/a",
        "select": select if boundary is None and city_definition is not None else "n/a",
        "degurba_grid": (f"{cities['t1'].factor} x {g_p.res[0]:g} (~{degurba_km:g} km), population summed"
                         if cities else "n/a"),
        "builtup_rule": f"built share >= {builtup_threshold:g}" if builtup_area == "binary"
        else "built surface (fraction-weighted area)",
        "builtup_area": builtup_area,
        "infill_extent": infill_extent if infill_extent == "fill_holes" else f"buffer {buffer_m:g} m",
        "cell_areas": "geographic, per row (" + area_method + ")" if g_b.is_geographic else
        f"projected, {row_area_b[0] * 1e6:g} m2 per cell",
        "crs": str(g_b.crs),
    }
    coords = {"y": g_b.row_centres(), "x": g_b.col_centres()}
    ds = xr.Dataset({
        "city_extent": (("y", "x"), mask_b),
        "urban_extent_t1": (("y", "x"), ext_full),
        "new_development": (("y", "x"), codes_full),
    }, coords=coords)
    ds["new_development"].attrs["codes"] = str(NEW_DEVELOPMENT_CODES)
    if g_b.crs is not None:
        import rioxarray  # noqa: F401

        # in place: rioxarray otherwise deep-copies every full-size layer
        ds.rio.write_crs(g_b.crs, inplace=True)
        ds.rio.write_transform(g_b.transform, inplace=True)
    res = SDGResult(table=table, parameters=parameters, extents=ds, city=cities, warnings=log,
                    city_grid_mask=city_grid_mask, city_grid=city_grid)
    res._grid = g_b
    return res
