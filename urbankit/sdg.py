"""UN SDG indicator 11.3.1: land consumption rate / population growth rate (LCRPGR).

Also its secondary indicators, and the city definition by the Degree of Urbanisation (DEGURBA).

Formulas (UN-Habitat SDG metadata 11.3.1, UN-Habitat 2021), for a city with built-up area
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

City definition (Degree of Urbanisation, Dijkstra et al. 2021): on a ~1 km population grid (any input grid is aggregated
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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from . import degurba as _dg
from .data.raster import Grid, as_crs, coverage, grid_of, mask_to_grid, require_same_grid
from .errors import ConfigError, DataFormatError

__all__ = [
    "CITY_PRESETS", "CityDefinition", "CityExtent", "SDGResult", "SDGWarning",
    "PopulationDeclineWarning", "ZeroPopulationGrowthWarning", "EmptyExtentWarning", "GridWarning",
    "grid_info", "cell_area_km2", "aggregate_population", "degurba", "city_extent", "builtup_mask",
    "builtup_area_km2", "urban_extent", "new_development", "lcr", "pgr", "sdg_11_3_1",
    "CityDelineation", "Measures", "SDGInputs", "RATE_FORMULAS", "built_units", "delineate_city",
    "development_trajectory", "grid_coverage", "indicators", "measure", "population_values",
    "prepare_inputs", "rasterize_boundary",
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


def grid_info(obj=None, *, transform=None, crs=None, shape=None) -> Grid:
    """The :class:`~urbankit.data.raster.Grid` of a map: :func:`urbankit.data.raster.grid_of`."""
    return grid_of(obj, transform=transform, crs=crs, shape=shape)


def _q_authalic(phi: np.ndarray) -> np.ndarray:
    e2 = _WGS84_F * (2 - _WGS84_F)
    e = math.sqrt(e2)
    s = np.sin(phi)
    return (1 - e2) * (s / (1 - e2 * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))


def cell_area_km2(grid: Grid, method: str = "ellipsoidal") -> np.ndarray:
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


def _nominal_cell_km(grid: Grid) -> float:
    """Side of a square cell of the grid's mean cell area (km)."""
    return float(np.sqrt(cell_area_km2(grid).mean()))


# --------------------------------------------------------------------------------------------
# population aggregation and DEGURBA


def _values(obj) -> np.ndarray:
    return np.asarray(obj.values if hasattr(obj, "values") else obj)


def _declared_nodata(obj):
    """The nodata value a DataArray declares (rioxarray ``rio.nodata`` or ``_FillValue``), or None."""
    if not hasattr(obj, "dims"):
        return None
    nodata = None
    try:
        import rioxarray  # noqa: F401

        nodata = obj.rio.nodata
    except Exception:  # pragma: no cover - no rio accessor
        nodata = None
    if nodata is None:
        nodata = obj.attrs.get("_FillValue", obj.encoding.get("_FillValue"))
    return nodata


def population_values(pop, name: str = "population") -> np.ndarray:
    """Persons per cell as float64 (y, x): NaN and the declared nodata value count as 0 persons.

    A DataArray's declared nodata (``rio.nodata``, e.g. WorldPop's -3.4e38 or a uint16 65535)
    is 0 persons. Any other negative value is an error (it would flip the sign of PGR), as is a
    grid that is not 2-D or has no cells.

    Raises:
        DataFormatError: naming ``name``, the number of negative cells and the smallest value.
    """
    values = _values(pop)
    if values.ndim != 2 or 0 in values.shape:
        raise DataFormatError(f"{name} must be a non-empty 2-D (y, x) grid, got shape {values.shape}")
    out = values.astype(np.float64)
    nodata = _declared_nodata(pop)
    bad = ~np.isfinite(out)
    if nodata is not None and np.isfinite(nodata):
        bad |= out == float(nodata)
    if bad.any():
        out = np.where(bad, 0.0, out)
    if (out < 0).any():
        raise DataFormatError(
            f"{name} holds {int((out < 0).sum())} negative cells (min {out.min():g}): population counts "
            "cannot be negative. Mask nodata first (NaN, or a DataArray with rio.nodata set)")
    return out


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
                         area_method: str = "ellipsoidal") -> tuple[np.ndarray, np.ndarray, Grid, int]:
    """Bring a population grid to ~``target_km`` cells by summing whole blocks of cells.

    The block factor is ``max(1, round(target_km / native cell side))``: a 100 m grid is summed
    in 10x10 blocks, a 1 km grid is kept, a 30 arc-second (~0.9 km) geographic grid is kept.
    NaN and declared nodata count as 0 persons, other negative values raise DataFormatError
    (:func:`population_values`). Population is summed, never averaged,
    and the area of each block is the sum of the true areas of its cells (so partial edge blocks
    get their true, smaller area).

    Returns ``(population, area_km2, grid, factor)``: float64 arrays of the aggregated grid, its
    Grid, and the block factor used. A factor that does not give exactly ``target_km``
    cells (e.g. 30 m cells -> 33 x 30 m = 990 m) raises a :class:`GridWarning`.
    """
    values = population_values(pop)
    grid = grid_info(pop, transform=transform, crs=crs)
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

    agg_grid = Grid(pop_agg.shape, Affine(t.a * factor, 0, t.c, 0, t.e * factor, t.f), grid.crs)
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
        note="unverified: the values '300 / 1,000,000' of a Google Earth Engine app, read as density "
             ">= 300 inh/km2 and cluster population >= 1,000,000 (large agglomerations); not found in "
             "any published source, cluster rules (8-connectivity) assumed"),
}


def _rules_of(d: CityDefinition) -> _dg.DegurbaRules:
    """The :class:`urbankit.degurba.DegurbaRules` equivalent of a CityDefinition (urban centres)."""
    return _dg.DegurbaRules(
        release=d.name,
        centre_density=d.density_threshold,
        centre_population=d.min_population,
        centre_connectivity=d.connectivity,
        built_threshold=None,
        majority="R2022A" if d.majority_smoothing else None,
        gap_km2=d.fill_holes_km2,
        step_order="iterate",
    ).check()


def _cluster_table(mask: np.ndarray, pop: np.ndarray, area: np.ndarray, connectivity: int):
    labels, n = ndimage.label(mask, structure=_dg.structure(connectivity))
    idx = np.arange(1, n + 1)
    table = pd.DataFrame(
        {
            "id": idx,
            "population": ndimage.sum_labels(pop, labels, idx) if n else [],
            "area_km2": ndimage.sum_labels(area, labels, idx) if n else [],
            "cells": ndimage.sum_labels(np.ones_like(pop), labels, idx) if n else [],
        }
    )
    table["density"] = table["population"] / table["area_km2"].where(table["area_km2"] > 0)
    table = table.sort_values("population", ascending=False).reset_index(drop=True)
    return labels.astype(np.int32), table


def degurba(
    population: np.ndarray,
    area_km2: np.ndarray,
    definition: str | CityDefinition = "degurba_centre",
    *,
    density_threshold: float | None = None,
    min_population: float | None = None,
    max_iterations: int = 100,
    land_share: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Classify a (~1 km) population grid into city cells by a DEGURBA-style definition.

    Steps: density = population / area; dense cells (density >= threshold) grouped into
    clusters (4- or 8-connectivity); clusters with population >= ``min_population`` kept; then,
    for urban centres, gaps < ``fill_holes_km2`` filled and the R2022A majority rule applied,
    both repeated until nothing changes (at most ``max_iterations`` rounds). For the GHSL
    releases with land share, built-up criterion and all level-2 classes use
    :func:`urbankit.degurba.classify`.

    Args:
        population: (ny, nx) persons per cell.
        area_km2: true area per cell in km2 ((ny, nx), or (ny,) per row, or a scalar).
        definition: a preset name of :data:`CITY_PRESETS` or a :class:`CityDefinition`.
        density_threshold, min_population: override the preset's values.
        land_share: (ny, nx) share of permanent land 0..1: density per km2 of land (GHSL rule);
            None = per km2 of the whole cell.

    Returns:
        ``(mask, labels, table)``: (ny, nx) bool mask of city cells, int32 labels of the final
        cities (same connectivity), and a DataFrame (id, population, area_km2, cells, density)
        sorted by population, largest first.
    """
    d = _definition(definition, density_threshold, min_population)
    pop = np.asarray(population, dtype=np.float64)
    area = np.broadcast_to(
        np.asarray(area_km2, dtype=np.float64).reshape(
            (-1, 1) if np.ndim(area_km2) == 1 else np.shape(area_km2)
        ),
        pop.shape,
    )
    land = None if land_share is None else np.asarray(land_share, np.float64)
    if land is not None and (land.shape != pop.shape or land.min() < 0 or land.max() > 1):
        raise DataFormatError(f"land_share must be a {pop.shape} grid of shares 0..1, got {land.shape}")
    density, _ = _dg.density_per_land(pop, area, land)
    rules = replace(_rules_of(d), max_iterations=max_iterations)
    mask = _dg.urban_centres(density >= d.density_threshold, pop, area, rules)
    labels, table = _cluster_table(mask, pop, area, d.connectivity)
    return mask, labels, table


def _definition(definition, density_threshold=None, min_population=None) -> CityDefinition:
    if isinstance(definition, CityDefinition):
        d = definition
    else:
        if definition not in CITY_PRESETS:
            raise ConfigError(
                f"city_definition must be one of {sorted(CITY_PRESETS)}, None or a CityDefinition, "
                f"got {definition!r}"
            )
        d = CITY_PRESETS[definition]
    if density_threshold is not None or min_population is not None:
        d = replace(
            d,
            density_threshold=float(
                density_threshold if density_threshold is not None else d.density_threshold
            ),
            min_population=float(min_population if min_population is not None else d.min_population),
            name=d.name + " (modified)",
        )
    if d.connectivity not in (4, 8):
        raise ConfigError(f"CityDefinition.connectivity must be 4 or 8, got {d.connectivity}")
    return d


@dataclass
class CityExtent:
    """A city definition applied to a population grid (the DEGURBA grid).

    Attributes:
        mask: (ny, nx) bool city cells on ``grid``; labels: int32 city ids (0 = none).
        table: one row per city (id, population, area_km2, cells, density), largest first.
        grid: the aggregated grid; population, area_km2: (ny, nx) persons and km2 per cell.
        definition: the :class:`CityDefinition` used; factor: block factor of the aggregation.
        degurba: the full :class:`urbankit.degurba.DegurbaGrid` when a GHSL release was used.
    """

    mask: np.ndarray  # bool, on ``grid``
    labels: np.ndarray
    table: pd.DataFrame
    grid: Grid
    population: np.ndarray
    area_km2: np.ndarray
    definition: CityDefinition
    factor: int
    degurba: Any = None

    def to_xarray(self, name: str = "city"):
        """The city mask as a georeferenced (y, x) bool DataArray."""
        import xarray as xr

        da = xr.DataArray(
            self.mask,
            dims=("y", "x"),
            coords={"y": self.grid.row_centres(), "x": self.grid.col_centres()},
            name=name,
        )
        if self.grid.crs is not None:
            import rioxarray  # noqa: F401

            da = da.rio.write_crs(self.grid.crs).rio.write_transform(self.grid.transform)
        return da


def city_extent(
    pop,
    definition: str | CityDefinition = "degurba_centre",
    *,
    transform=None,
    crs=None,
    target_km: float = 1.0,
    density_threshold=None,
    min_population=None,
    area_method: str = "ellipsoidal",
    land_share=None,
    built_share=None,
) -> CityExtent:
    """Aggregate a population grid to ~1 km (:func:`aggregate_population`) and find its cities.

    Args:
        pop: (y, x) persons per cell (numpy with ``transform``/``crs``, or a DataArray).
        definition: a :data:`CITY_PRESETS` name (``degurba_centre``, ``degurba_cluster``,
            ``gee_app``), a :class:`CityDefinition`, or a GHSL release ``"R2022A"``/``"R2023A"``
            (urban centres = level-2 class 30 of :func:`urbankit.degurba.classify`).
        land_share: (ny, nx) share of permanent land **on the aggregated ~1 km grid** (0..1):
            density per km2 of land, for every definition.
        built_share: (ny, nx) built-up share on that grid, for the GHSL releases only (built-up
            criterion); with another definition it raises ConfigError.

    Returns:
        :class:`CityExtent` on the aggregated grid (``degurba`` holds the full
        :class:`urbankit.degurba.DegurbaGrid` for a release).
    """
    pop1, area1, grid1, factor = aggregate_population(
        pop, target_km=target_km, transform=transform, crs=crs, area_method=area_method
    )
    if isinstance(definition, str) and definition in _dg.RELEASES:
        rules = _dg.rules_for(definition)
        res = _dg.classify(pop1, area1, land_share=land_share, built_share=built_share, release=rules)
        mask = res.level2 == 30
        d = CityDefinition(
            f"ghsl_{definition}",
            rules.centre_density,
            rules.centre_population,
            rules.centre_connectivity,
            rules.gap_km2,
            True,
            note=res.describe(),
        )
        labels, table = _cluster_table(mask, pop1, area1, d.connectivity)
        return CityExtent(mask, labels, table, grid1, pop1, area1, d, factor, degurba=res)
    d = _definition(definition, density_threshold, min_population)
    if not d.verified:
        warnings.warn(f"city definition {d.name!r}: {d.note}", SDGWarning, stacklevel=2)
    if built_share is not None:
        raise ConfigError(
            f"built_share is used by the GHSL releases (R2022A, R2023A) only, not by {d.name!r}"
        )
    mask, labels, table = degurba(pop1, area1, d, land_share=land_share)
    return CityExtent(mask, labels, table, grid1, pop1, area1, d, factor)


# --------------------------------------------------------------------------------------------
# moving masks between grids


def rasterize_boundary(boundary, grid: Grid, boundary_crs=None) -> np.ndarray:
    """A (ny, nx) bool mask of the cells whose centre lies inside a boundary.

    Args:
        boundary: GeoJSON-like geometry, Feature, FeatureCollection, an object with
            ``__geo_interface__`` or a list of geometries.
        grid: the target grid.
        boundary_crs: CRS of the boundary (e.g. ``"EPSG:4326"``); None = the grid's CRS.
    """
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
    if boundary_crs is not None and grid.crs is not None and as_crs(boundary_crs) != grid.crs:
        geoms = [transform_geom(as_crs(boundary_crs), grid.crs, g) for g in geoms]
    if not geoms:
        return np.zeros(grid.shape, bool)
    out = rasterize(
        [(g, 1) for g in geoms], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
    )
    return out.astype(bool)


# --------------------------------------------------------------------------------------------
# built-up maps and areas

_CHUNK_ROWS = 1024


def builtup_mask(
    built,
    threshold: float = 0.1,
    units: str = "auto",
    cell_area_m2: np.ndarray | None = None,
    *,
    name: str = "built-up map",
) -> np.ndarray:
    """A bool built-up map from a binary map, a built-up fraction or a built surface raster.

    Args:
        built: (y, x) map (numpy or DataArray).
        threshold: a cell is built-up if its built share is >= this (default 0.1 = 10 %,
            the kit's choice for GHS-BUILT-S shares; GHSL: Pesaresi et al. 2023).
        units: ``"auto"`` (see :func:`built_units`), ``"binary"`` (0/1 or 0/255), ``"fraction"``
            (0..1), ``"percent"`` (0..100) or ``"m2"`` of built surface per cell (needs
            ``cell_area_m2`` per row).
        cell_area_m2: (ny,) true cell area per row in m2.
        name: the map's name in error messages.

    Returns:
        (ny, nx) bool. NaN is not built-up. Works row-chunk-wise (no full-size float copies).

    Raises:
        DataFormatError: empty map, negative values, m2 above the cell area, or an integer map
            whose coding cannot be told (e.g. uint8 values 0..200: pass ``units``).
    """
    arr = _values(built)
    units = built_units(arr, units, cell_area_m2, name=name)
    if units == "binary":
        if arr.dtype == bool:
            return arr
        if arr.dtype in (np.uint8, np.int8) and arr.flags.c_contiguous and arr.max() <= 1:
            return arr.view(bool)  # 0/1 bytes are valid booleans: no copy
        return arr > 0
    out = np.empty(arr.shape, bool)
    for r0 in range(0, arr.shape[0], _CHUNK_ROWS):
        block = arr[r0 : r0 + _CHUNK_ROWS]
        share = _share(block, units, None if cell_area_m2 is None else cell_area_m2[r0 : r0 + _CHUNK_ROWS])
        out[r0 : r0 + _CHUNK_ROWS] = share >= threshold
    return out


_BUILT_UNITS = ("auto", "binary", "fraction", "percent", "m2")


def _auto_units(arr: np.ndarray, mx: float, name: str) -> str:
    if arr.dtype == bool:
        return "binary"
    if np.issubdtype(arr.dtype, np.integer):
        if mx <= 1:
            return "binary"
        if mx == 255 and bool(np.all((arr == 0) | (arr == 255))):
            return "binary"  # a 0/255 mask (PNG/GeoTIFF style), not m2 of built surface
        if arr.dtype.itemsize == 1:
            raise DataFormatError(
                f"{name}: {arr.dtype} values 0..{mx:g} are neither a 0/1 nor a 0/255 mask, and a one-byte "
                "integer cannot hold m2 of built surface: pass built_units ('binary', 'percent', 'm2')"
            )
        return "m2"
    return "fraction" if mx <= 1.0 + 1e-6 else "m2"


def built_units(
    arr, units: str = "auto", cell_area_m2: np.ndarray | None = None, *, name: str = "built-up map"
) -> str:
    """The coding of a built-up map, checked against its values.

    ``"auto"``: bool, integers 0/1 and 0/255 masks -> ``binary``; floats <= 1 -> ``fraction``;
    other integers (two bytes or more) and floats -> ``m2`` of built surface per cell. A given
    coding is checked too: values must be >= 0, percent <= 100, m2 <= the cell area.

    Args:
        arr: (y, x) map; cell_area_m2: (ny,) cell area per row in m2 (checks ``m2``).
        units: ``auto``, ``binary``, ``fraction``, ``percent`` or ``m2``.
        name: the map's name in error messages.

    Returns:
        The coding (never ``auto``).
    """
    if units not in _BUILT_UNITS:
        raise ConfigError(f"built_units must be one of {_BUILT_UNITS}, got {units!r}")
    arr = np.asarray(arr)
    if arr.ndim != 2 or 0 in arr.shape:
        raise DataFormatError(f"{name} must be a non-empty 2-D (y, x) map, got shape {arr.shape}")
    if arr.dtype == bool:
        return "binary"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN maps
        mn, mx = float(np.nanmin(arr)), float(np.nanmax(arr))
    if mn < 0:
        raise DataFormatError(f"{name} holds negative values (min {mn:g}): built-up cannot be negative")
    units = _auto_units(arr, mx, name) if units == "auto" else units
    limit = {"fraction": 1.0 + 1e-6, "percent": 100.0 + 1e-4}.get(units)
    if units == "m2" and cell_area_m2 is not None:
        limit = float(np.max(cell_area_m2)) * 1.001
    if limit is not None and mx > limit:
        raise DataFormatError(f"{name} read as {units}: max {mx:g} exceeds {limit:g} (wrong built_units?)")
    return units


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


def builtup_area_km2(
    built,
    row_area_km2: np.ndarray,
    *,
    within: np.ndarray | None = None,
    threshold: float = 0.1,
    units: str = "auto",
    mode: str = "binary",
) -> float:
    """Built-up area (km2) of a map, optionally inside a bool mask ``within``.

    ``mode="binary"``: cells built-up by the threshold rule times their true area (UN
    "built-up area"); ``mode="fraction"``: sum of built share x true cell area (built surface).
    """
    arr = _values(built)
    units = built_units(arr, units, row_area_km2 * 1e6)
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
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
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


def new_development(
    b1: np.ndarray,
    b2: np.ndarray,
    within: np.ndarray | None = None,
    *,
    method: str = "fill_holes",
    buffer_cells: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
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


#: the rate formulas: ``ln`` = UN-Habitat metadata 2021 (annualised log), ``linear`` = the older
#: relative change per year, (x_t2 - x_t1) / (x_t1 * y)
RATE_FORMULAS = {"ln": "ln(x_t2 / x_t1) / y", "linear": "(x_t2 - x_t1) / (x_t1 * y)"}


def _rate(x1: float, x2: float, years: float, formula: str) -> float:
    if formula not in RATE_FORMULAS:
        raise ConfigError(f"rate formula must be one of {sorted(RATE_FORMULAS)}, got {formula!r}")
    if x1 <= 0 or x2 <= 0 or years <= 0 or not (math.isfinite(x1) and math.isfinite(x2)):
        return float("nan")
    return math.log(x2 / x1) / years if formula == "ln" else (x2 - x1) / (x1 * years)


def lcr(urb_t1: float, urb_t2: float, years: float, formula: str = "ln") -> float:
    """Land consumption rate (1/yr).

    ``ln(Urb_t2/Urb_t1)/y`` or, ``formula="linear"``, ``(Urb_t2 - Urb_t1)/(Urb_t1 y)``;
    NaN when an area is <= 0.
    """
    return _rate(urb_t1, urb_t2, years, formula)


def pgr(pop_t1: float, pop_t2: float, years: float, formula: str = "ln") -> float:
    """Population growth rate (1/yr).

    ``ln(Pop_t2/Pop_t1)/y`` or the linear form; NaN when a population is <= 0.
    """
    return _rate(pop_t1, pop_t2, years, formula)


def development_trajectory(lcr_value: float, pgr_value: float, tolerance: float = 1e-4) -> str:
    """Words for the quadrant of (PGR, LCR): which reading of LCRPGR is valid.

    When the population is stable or shrinking the ratio says nothing about densification
    (UN-Habitat metadata 2021); report LCR, PGR and the land-use efficiency (persons per km2 of
    built-up land, its change over time) instead (Schiavina et al. 2022).
    """
    if not (math.isfinite(lcr_value) and math.isfinite(pgr_value)):
        return "undefined (a built-up area or a population is zero)"
    land = "built-up growing" if lcr_value > 0 else "built-up stable or shrinking"
    if abs(pgr_value) < tolerance:
        return f"stable population, {land}: LCRPGR undefined, read the land-use efficiency"
    if pgr_value < 0:
        return (
            f"shrinking population, {land}: LCRPGR not a densification measure, read the land-use efficiency"
        )
    if lcr_value <= 0:
        return f"growing population, {land}: densifying"
    return "growing population and built-up: " + (
        "land consumed faster than population grows (LCRPGR > 1)"
        if lcr_value > pgr_value
        else "population grows faster than land is consumed (LCRPGR <= 1)"
    )


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
    city_grid: Grid | None = None

    def value(self, name: str) -> float:
        """The value of one indicator (``result["LCR"]`` is the same); KeyError names the known ones."""
        row = self.table.loc[self.table["name"] == name, "value"]
        if row.empty:
            raise KeyError(f"no indicator {name!r}; have {list(self.table['name'])}")
        return float(row.iloc[0])

    __getitem__ = value

    def as_dict(self) -> dict[str, float]:
        """{indicator name: value}."""
        return dict(zip(self.table["name"], self.table["value"].astype(float)))

    def to_markdown(self, digits: int = 4) -> str:
        """The parameters, the indicator table (rounded to ``digits``) and the warnings, as Markdown."""
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
        """GeoJSON-like FeatureCollection of one layer, via rasterio.features.shapes.

        Layers: ``city_extent``, ``urban_extent_t1``, ``new_development``, or ``city_grid``
        (the DEGURBA cells).

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
                geom = transform_geom(grid.crs, as_crs(to_crs), geom)
            props = {"layer": layer, "value": int(val)}
            if layer == "new_development":
                props["type"] = NEW_DEVELOPMENT_CODES[int(val)]
            feats.append({"type": "Feature", "geometry": geom, "properties": props})
        crs_name = str(as_crs(to_crs) if to_crs is not None else grid.crs)
        return {"type": "FeatureCollection", "features": feats, "crs": crs_name}

    def to_geodataframe(self, layer: str = "city_extent", to_crs: Any = None):
        """The polygons of :meth:`polygons` as a ``geopandas.GeoDataFrame`` (geopandas is optional)."""
        try:
            import geopandas as gpd
        except ImportError as exc:
            raise ConfigError(
                "to_geodataframe needs geopandas (pip install geopandas); "
                "polygons() gives the same as GeoJSON-like dicts"
            ) from exc
        fc = self.polygons(layer, to_crs=to_crs)
        return gpd.GeoDataFrame.from_features(fc["features"], crs=fc["crs"])

    _grid: Grid | None = None


def _warn(msg: str, cls, log: list[str]) -> None:
    log.append(msg)
    warnings.warn(msg, cls, stacklevel=4)


# --------------------------------------------------------------------------------------------
# step 0: validated inputs


@dataclass
class SDGInputs:
    """The validated inputs of :func:`sdg_11_3_1` (see :func:`prepare_inputs`).

    Attributes:
        built_t1, built_t2: the built-up maps as given (numpy values), on ``built_grid``.
        pop_t1, pop_t2: (ny_p, nx_p) float64 persons per cell (nodata = 0), on ``pop_grid``.
        built_grid, pop_grid: the two grids; row_area_km2: (ny,) true cell area per built-up row.
        year_t1, year_t2: the dates (years); area_method: ``ellipsoidal`` or ``spherical``.
    """

    built_t1: np.ndarray
    built_t2: np.ndarray
    pop_t1: np.ndarray
    pop_t2: np.ndarray
    built_grid: Grid
    pop_grid: Grid
    row_area_km2: np.ndarray
    year_t1: float
    year_t2: float
    area_method: str = "ellipsoidal"

    @property
    def years(self) -> float:
        """The interval y = year_t2 - year_t1 (years)."""
        return self.year_t2 - self.year_t1


def _check_map(name: str, obj) -> None:
    shape = np.shape(obj)
    if len(shape) != 2 or 0 in shape:
        raise DataFormatError(f"{name} must be a non-empty 2-D (y, x) map, got shape {shape}")


def grid_coverage(of: Grid, by: Grid) -> float:
    """Share (0..1) of the area of grid ``of`` that the footprint of grid ``by`` covers.

    :func:`urbankit.data.raster.coverage` (``by``'s footprint projected into ``of``'s CRS).
    """
    return coverage(by, of)


def _pop_grid(pop, g_b: Grid, pop_transform, pop_crs) -> Grid:
    if pop_transform is None and not hasattr(pop, "dims") and tuple(np.shape(pop)) == g_b.shape:
        pop_transform, pop_crs = g_b.transform, g_b.crs
    crs = pop_crs if pop_crs is not None else (None if hasattr(pop, "dims") else g_b.crs)
    return grid_info(pop, transform=pop_transform, crs=crs)


def _second_grid(obj, first: Grid, transform, crs) -> Grid:
    """The grid of the t2 map: its own georeference (DataArray), else the t1 grid's."""
    if hasattr(obj, "dims") and transform is None:
        return grid_info(obj, crs=crs)
    return replace(first, shape=tuple(np.shape(obj)[-2:]))


def prepare_inputs(
    built_t1,
    built_t2,
    pop_t1,
    pop_t2,
    year_t1: float,
    year_t2: float,
    *,
    transform=None,
    crs=None,
    pop_transform=None,
    pop_crs=None,
    area_method: str = "ellipsoidal",
) -> SDGInputs:
    """Check and georeference the four maps of :func:`sdg_11_3_1`.

    Both built-up maps must share one grid, and both population grids one grid (same shape,
    CRS and transform); the population grid may differ from the built-up grid (any CRS) but must
    cover at least half of it (:class:`GridWarning` below 99 %). Population goes through
    :func:`population_values` (negative counts raise).

    Raises:
        ConfigError: year_t2 <= year_t1, or a numpy map without ``transform``.
        DataFormatError: empty maps, grids that differ between dates, no overlap, bad values.
    """
    if float(year_t2) - float(year_t1) <= 0:
        raise ConfigError(f"year_t2 must be after year_t1, got {year_t1} and {year_t2}")
    for name, obj in (("built_t1", built_t1), ("built_t2", built_t2), ("pop_t1", pop_t1), ("pop_t2", pop_t2)):
        _check_map(name, obj)
    g_b = grid_info(built_t1, transform=transform, crs=crs)
    require_same_grid("built_t1", g_b, "built_t2", _second_grid(built_t2, g_b, transform, crs))
    g_p = _pop_grid(pop_t1, g_b, pop_transform, pop_crs)
    if g_p.crs is None and g_b.crs is not None:
        raise ConfigError("pop_t1 has no CRS while the built-up maps are in "
                          f"{g_b.crs}: write one (.rio.write_crs) or pass pop_crs=")
    require_same_grid("pop_t1", g_p, "pop_t2", _second_grid(pop_t2, g_p, pop_transform, pop_crs))
    cover = grid_coverage(g_b, g_p)
    if cover < 0.5:
        raise DataFormatError(
            f"the population grid ({g_p.crs}) covers only {cover:.0%} of the built-up grid "
            f"({g_b.crs}): the maps do not show the same place"
        )
    if cover < 0.99:
        warnings.warn(
            f"the population grid covers {cover:.1%} of the built-up grid: population outside it is missing",
            GridWarning,
            stacklevel=3,
        )
    return SDGInputs(
        _values(built_t1),
        _values(built_t2),
        population_values(pop_t1, "pop_t1"),
        population_values(pop_t2, "pop_t2"),
        g_b,
        g_p,
        cell_area_km2(g_b, area_method),
        float(year_t1),
        float(year_t2),
        area_method,
    )


# --------------------------------------------------------------------------------------------
# step 1: the city extent


@dataclass
class CityDelineation:
    """Where the city is, on both grids (see :func:`delineate_city`).

    Attributes:
        mask_built, mask_pop: bool masks on the built-up and on the population grid.
        how, definition: words for the method and the definition's name (printed).
        cities: the :class:`CityExtent` per year (``t1``, ``t2``) when a definition was used.
        grid_mask, grid: the extent on the DEGURBA grid (None without a definition).
        extent, select, degurba_grid: the choices made (``n/a`` when not applicable).
    """

    mask_built: np.ndarray
    mask_pop: np.ndarray
    how: str
    definition: str
    cities: dict = field(default_factory=dict)
    grid_mask: np.ndarray | None = None
    grid: Grid | None = None
    extent: str = "n/a"
    select: str = "n/a"
    degurba_grid: str = "n/a"


def _boundary_extent(inputs: SDGInputs, boundary, boundary_crs) -> CityDelineation:
    g_b, g_p = inputs.built_grid, inputs.pop_grid
    if isinstance(boundary, np.ndarray) or hasattr(boundary, "dims"):
        mask_b = np.asarray(_values(boundary), bool)
        if mask_b.shape != g_b.shape:
            raise DataFormatError(f"boundary mask {mask_b.shape} must be on the built-up grid {g_b.shape}")
        mask_p = mask_to_grid(mask_b, g_b, g_p)
    else:
        mask_b = rasterize_boundary(boundary, g_b, boundary_crs)
        mask_p = rasterize_boundary(boundary, g_p, boundary_crs)
    return CityDelineation(mask_b, mask_p, "boundary given", "boundary")


def _yearly_cities(
    inputs: SDGInputs, definition, degurba_km, density_threshold, min_population, land_share, log
) -> dict[str, CityExtent]:
    g_p = inputs.pop_grid
    cities = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for key, pop in (("t1", inputs.pop_t1), ("t2", inputs.pop_t2)):
            cities[key] = city_extent(
                pop,
                definition,
                transform=g_p.transform,
                crs=g_p.crs,
                target_km=degurba_km,
                density_threshold=density_threshold,
                min_population=min_population,
                area_method=inputs.area_method,
                land_share=land_share,
            )
    for w in caught:
        if issubclass(w.category, SDGWarning) and str(w.message) not in log:
            _warn(str(w.message), w.category, log)
    return cities


def _definition_extent(
    inputs: SDGInputs,
    definition,
    extent: str,
    select: str,
    degurba_km: float,
    density_threshold,
    min_population,
    land_share,
    log,
) -> CityDelineation:
    if extent not in ("union", "t1", "t2"):
        raise ConfigError(f"extent must be 'union', 't1' or 't2', got {extent!r}")
    if select not in ("largest", "all"):
        raise ConfigError(f"select must be 'largest' or 'all', got {select!r}")
    cities = _yearly_cities(
        inputs, definition, degurba_km, density_threshold, min_population, land_share, log
    )
    d = cities["t1"].definition
    cm = cities["t1"].mask | cities["t2"].mask if extent == "union" else cities[extent].mask.copy()
    if select == "largest" and cm.any():
        lab, n = ndimage.label(cm, structure=_dg.structure(d.connectivity))
        pops = ndimage.sum_labels(cities["t2"].population, lab, np.arange(1, n + 1))
        cm = lab == (int(np.argmax(pops)) + 1)
    grid = cities["t1"].grid
    how = (
        f"DEGURBA {d.name} ({d.density_threshold:g} inh/km2, {d.min_population:g} persons, "
        f"{d.connectivity}-connectivity)"
    )
    if cities["t1"].degurba is not None:  # a GHSL release: every rule, threshold and note
        how = cities["t1"].degurba.describe().replace("\n", "; ")
    deg = f"{cities['t1'].factor} x {inputs.pop_grid.res[0]:g} (~{degurba_km:g} km), population summed"
    return CityDelineation(
        mask_to_grid(cm, grid, inputs.built_grid),
        mask_to_grid(cm, grid, inputs.pop_grid),
        how,
        d.name,
        cities,
        cm,
        grid,
        extent,
        select,
        deg,
    )


def delineate_city(
    inputs: SDGInputs,
    *,
    boundary=None,
    boundary_crs=None,
    city_definition: str | CityDefinition | None = "degurba_centre",
    extent: str = "union",
    select: str = "largest",
    degurba_km: float = 1.0,
    density_threshold: float | None = None,
    min_population: float | None = None,
    land_share=None,
    log: list[str] | None = None,
) -> CityDelineation:
    """Step 1 of SDG 11.3.1: the city extent, fixed for both dates.

    A ``boundary`` (bool mask on the built-up grid, or GeoJSON-like geometry in the built-up
    grid's CRS or ``boundary_crs``) wins; else ``city_definition`` (a :data:`CITY_PRESETS`
    name, a :class:`CityDefinition`, or a GHSL release ``"R2022A"``/``"R2023A"`` with optional
    ``land_share`` on the ~1 km grid) is applied to each year's population and the ``extent``
    (``union``, ``t1``, ``t2``) of the two years is kept, its largest city (``select``) or all;
    None = the whole grid.
    """
    log = [] if log is None else log
    if boundary is not None:
        city = _boundary_extent(inputs, boundary, boundary_crs)
    elif city_definition is None:
        city = CityDelineation(
            np.ones(inputs.built_grid.shape, bool),
            np.ones(inputs.pop_grid.shape, bool),
            "whole grid",
            "none (whole grid)",
        )
    else:
        city = _definition_extent(
            inputs,
            city_definition,
            extent,
            select,
            degurba_km,
            density_threshold,
            min_population,
            land_share,
            log,
        )
    if not city.mask_built.any():
        _warn(
            "the city extent is empty: no cell satisfies the city definition; indicators are NaN",
            EmptyExtentWarning,
            log,
        )
    return city


# --------------------------------------------------------------------------------------------
# step 2: measures inside the extent


@dataclass
class Measures:
    """Areas and populations inside the city extent (see :func:`measure`).

    Attributes:
        built_up_t1, built_up_t2: built-up area (km2); population_t1, population_t2: persons.
        infill, extension, leapfrog: new development by type (km2); city_area: extent (km2).
        new_development: (ny, nx) uint8 codes (:data:`NEW_DEVELOPMENT_CODES`) on the built-up grid;
        urban_extent_t1: (ny, nx) bool urban extent of t1 inside the city extent.
        builtup_rule: words for the built-up rule (printed).
    """

    built_up_t1: float
    built_up_t2: float
    population_t1: float
    population_t2: float
    infill: float
    extension: float
    leapfrog: float
    city_area: float
    new_development: np.ndarray
    urban_extent_t1: np.ndarray
    builtup_rule: str


def _urban_areas(inputs, b1, b2, mask, threshold, units, mode) -> tuple[float, float]:
    if mode == "binary":
        return tuple(builtup_area_km2(b, inputs.row_area_km2, within=mask) for b in (b1, b2))
    if mode != "fraction":
        raise ConfigError(f"builtup_area must be 'binary' or 'fraction', got {mode!r}")
    return tuple(
        builtup_area_km2(
            b, inputs.row_area_km2, within=mask, threshold=threshold, units=units, mode="fraction"
        )
        for b in (inputs.built_t1, inputs.built_t2)
    )


def _new_development_in(b1, b2, mask_b, row_area, method, buffer_m):
    """New-development codes and urban extent of t1 in the bounding box of the extent (+1 cell)."""
    codes_full = np.zeros(mask_b.shape, np.uint8)
    ext_full = np.zeros(mask_b.shape, bool)
    if not mask_b.any():
        return codes_full, ext_full, (0.0, 0.0, 0.0)
    buffer_cells = buffer_m / (math.sqrt(row_area.mean()) * 1000.0) if method == "buffer" else 0.0
    rows = np.flatnonzero(mask_b.any(axis=1))
    cols = np.flatnonzero(mask_b.any(axis=0))
    win = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))
    codes, ext1 = new_development(b1[win], b2[win], mask_b[win], method=method, buffer_cells=buffer_cells)
    codes_full[win] = codes
    ext_full[win] = ext1 & mask_b[win]
    counts = np.stack([np.count_nonzero(codes == c, axis=1) for c in (1, 2, 3)])
    return codes_full, ext_full, tuple(float(np.dot(c, row_area[win[0]])) for c in counts)


def measure(
    inputs: SDGInputs,
    city: CityDelineation,
    *,
    builtup_threshold: float = 0.1,
    built_units: str = "auto",
    builtup_area: str = "binary",
    infill_extent: str = "fill_holes",
    buffer_m: float = 0.0,
    log: list[str] | None = None,
) -> Measures:
    """Step 2 of SDG 11.3.1: built-up area, population and new development inside the extent.

    ``builtup_threshold``/``built_units`` make the bool built-up maps (:func:`builtup_mask`);
    ``builtup_area`` = ``binary`` (area of built-up cells) or ``fraction`` (built surface);
    ``infill_extent`` = ``fill_holes`` or ``buffer`` (``buffer_m`` metres) for infill.
    """
    log = [] if log is None else log
    cell_m2 = inputs.row_area_km2 * 1e6
    b1 = builtup_mask(inputs.built_t1, builtup_threshold, built_units, cell_m2, name="built_t1")
    b2 = builtup_mask(inputs.built_t2, builtup_threshold, built_units, cell_m2, name="built_t2")
    urb1, urb2 = _urban_areas(inputs, b1, b2, city.mask_built, builtup_threshold, built_units, builtup_area)
    pop1 = float(np.where(city.mask_pop, inputs.pop_t1, 0).sum(dtype=np.float64))
    pop2 = float(np.where(city.mask_pop, inputs.pop_t2, 0).sum(dtype=np.float64))
    if city.mask_built.any() and (urb1 <= 0 or urb2 <= 0):
        _warn(
            f"no built-up area inside the city extent at {'t1' if urb1 <= 0 else 't2'}: LCR is undefined",
            EmptyExtentWarning,
            log,
        )
    if city.mask_built.any() and (pop1 <= 0 or pop2 <= 0):
        _warn(
            "no population inside the city extent at a date: PGR is undefined (NaN)", EmptyExtentWarning, log
        )
    codes, ext1, (infill, extension, leapfrog) = _new_development_in(
        b1, b2, city.mask_built, inputs.row_area_km2, infill_extent, buffer_m
    )
    area = float(np.dot(np.count_nonzero(city.mask_built, axis=1), inputs.row_area_km2))
    rule = (
        f"built share >= {builtup_threshold:g}"
        if builtup_area == "binary"
        else "built surface (fraction-weighted area)"
    )
    return Measures(urb1, urb2, pop1, pop2, infill, extension, leapfrog, area, codes, ext1, rule)


# --------------------------------------------------------------------------------------------
# step 3: the indicators


def _ratio(lcr_v: float, pgr_v: float, tolerance: float, log: list[str]) -> float:
    if not (np.isfinite(lcr_v) and np.isfinite(pgr_v)):
        return float("nan")
    if abs(pgr_v) < tolerance:
        _warn(
            f"PGR = {pgr_v:.2e}/yr is near zero (|PGR| < {tolerance:g}): LCRPGR is undefined and reported as "
            "NaN; read LCR, PGR and the land-use efficiency instead",
            ZeroPopulationGrowthWarning,
            log,
        )
        return float("nan")
    ratio = lcr_v / pgr_v
    if pgr_v < 0:
        _warn(
            f"PGR = {pgr_v:.4f}/yr is negative (the population inside the extent fell): LCRPGR = {ratio:.3f} "
            "is negative and must not be read as densification; read LCR, PGR and the land-use efficiency",
            PopulationDeclineWarning,
            log,
        )
    return ratio


def _pct(a: float, b: float) -> float:
    return a / b * 100.0 if b > 0 else float("nan")


def indicators(
    m: Measures,
    years: float,
    *,
    lcr_formula: str = "ln",
    pgr_tolerance: float = 1e-4,
    log: list[str] | None = None,
) -> pd.DataFrame:
    """Step 3 of SDG 11.3.1: LCR, PGR, LCRPGR and the secondary indicators from the measures.

    ``lcr_formula``: ``ln`` (UN-Habitat 2021 metadata) or ``linear`` (:data:`RATE_FORMULAS`),
    used for LCR and PGR alike. Land-use efficiency = persons per km2 of built-up land, the
    reading that stays valid when the population is stable or shrinking.

    Returns:
        DataFrame ``name``, ``value``, ``unit``, ``description`` (one row per indicator).
    """
    log = [] if log is None else log
    f = RATE_FORMULAS[lcr_formula] if lcr_formula in RATE_FORMULAS else lcr_formula
    lcr_v = lcr(m.built_up_t1, m.built_up_t2, years, lcr_formula)
    pgr_v = pgr(m.population_t1, m.population_t2, years, lcr_formula)
    ratio = _ratio(lcr_v, pgr_v, pgr_tolerance, log)
    cap1 = m.built_up_t1 * 1e6 / m.population_t1 if m.population_t1 > 0 else float("nan")
    cap2 = m.built_up_t2 * 1e6 / m.population_t2 if m.population_t2 > 0 else float("nan")
    lue1 = m.population_t1 / m.built_up_t1 if m.built_up_t1 > 0 else float("nan")
    lue2 = m.population_t2 / m.built_up_t2 if m.built_up_t2 > 0 else float("nan")
    new = m.infill + m.extension + m.leapfrog
    rows = [
        ("city_extent_area", m.city_area, "km2", "area of the city extent used for both dates"),
        ("built_up_area_t1", m.built_up_t1, "km2", "built-up area inside the extent at t1"),
        ("built_up_area_t2", m.built_up_t2, "km2", "built-up area inside the extent at t2"),
        ("population_t1", m.population_t1, "persons", "population inside the extent at t1"),
        ("population_t2", m.population_t2, "persons", "population inside the extent at t2"),
        ("LCR", lcr_v, "1/yr", f"land consumption rate {f.replace('x_', 'Urb_')}"),
        ("PGR", pgr_v, "1/yr", f"population growth rate {f.replace('x_', 'Pop_')}"),
        ("LCRPGR", ratio, "ratio", "LCR / PGR (1 = balanced, <1 densifying, >1 sprawl)"),
        ("built_up_per_capita_t1", cap1, "m2/person", "built-up area per capita at t1"),
        ("built_up_per_capita_t2", cap2, "m2/person", "built-up area per capita at t2"),
        ("built_up_per_capita_change", cap2 - cap1, "m2/person", "change in built-up area per capita"),
        (
            "built_up_per_capita_change_pct",
            _pct(cap2 - cap1, cap1),
            "%",
            "change in built-up area per capita",
        ),
        (
            "built_up_change_pct",
            _pct(m.built_up_t2 - m.built_up_t1, m.built_up_t1),
            "%",
            "total change in built-up area",
        ),
        ("new_development_km2", new, "km2", "new built-up (built at t2, not at t1) in the extent"),
        ("new_infill_km2", m.infill, "km2", "new built-up inside the urban extent of t1"),
        ("new_extension_km2", m.extension, "km2", "new built-up outside it, contiguous (8-conn.) to it"),
        ("new_leapfrog_km2", m.leapfrog, "km2", "new built-up not contiguous to it"),
        ("new_infill_pct", _pct(m.infill, new), "%", "infill share of new development"),
        ("new_extension_pct", _pct(m.extension, new), "%", "extension share of new development"),
        ("new_leapfrog_pct", _pct(m.leapfrog, new), "%", "leapfrog share of new development"),
        ("land_use_efficiency_t1", lue1, "persons/km2", "population per km2 of built-up land at t1"),
        ("land_use_efficiency_t2", lue2, "persons/km2", "population per km2 of built-up land at t2"),
        ("land_use_efficiency_change_pct", _pct(lue2 - lue1, lue1), "%", "change in land-use efficiency"),
    ]
    table = pd.DataFrame(rows, columns=["name", "value", "unit", "description"])
    table["value"] = table["value"].astype(float)
    return table


def _extents_dataset(g_b: Grid, city: CityDelineation, m: Measures):
    import xarray as xr

    coords = {"y": g_b.row_centres(), "x": g_b.col_centres()}
    ds = xr.Dataset(
        {
            "city_extent": (("y", "x"), city.mask_built),
            "urban_extent_t1": (("y", "x"), m.urban_extent_t1),
            "new_development": (("y", "x"), m.new_development),
        },
        coords=coords,
    )
    ds["new_development"].attrs["codes"] = str(NEW_DEVELOPMENT_CODES)
    if g_b.crs is not None:
        import rioxarray  # noqa: F401

        # in place: rioxarray otherwise deep-copies every full-size layer
        ds.rio.write_crs(g_b.crs, inplace=True)
        ds.rio.write_transform(g_b.transform, inplace=True)
    return ds


def _year(y: float):
    return int(y) if float(y).is_integer() else y


def _parameters(
    inputs: SDGInputs,
    city: CityDelineation,
    m: Measures,
    table: pd.DataFrame,
    *,
    builtup_area,
    infill_extent,
    buffer_m,
    lcr_formula,
    pgr_tolerance,
) -> dict[str, Any]:
    g_b = inputs.built_grid
    values = dict(zip(table["name"], table["value"]))
    return {
        "year_t1": _year(inputs.year_t1),
        "year_t2": _year(inputs.year_t2),
        "years": inputs.years,
        "city_definition": city.definition,
        "city_extent": city.how,
        "extent": city.extent,
        "select": city.select,
        "degurba_grid": city.degurba_grid,
        "builtup_rule": m.builtup_rule,
        "builtup_area": builtup_area,
        "infill_extent": infill_extent if infill_extent == "fill_holes" else f"buffer {buffer_m:g} m",
        "cell_areas": "geographic, per row (" + inputs.area_method + ")"
        if g_b.is_geographic
        else f"projected, {inputs.row_area_km2[0] * 1e6:g} m2 per cell",
        "crs": str(g_b.crs),
        "lcr_formula": f"{lcr_formula}: {RATE_FORMULAS[lcr_formula]} (LCR and PGR)",
        "trajectory": development_trajectory(values["LCR"], values["PGR"], pgr_tolerance),
    }


# fmt: off
def sdg_11_3_1(built_t1, built_t2, pop_t1, pop_t2, year_t1: float, year_t2: float, *, boundary=None,
               city_definition: str | CityDefinition | None = "degurba_centre", extent: str = "union",
               select: str = "largest", builtup_threshold: float = 0.1, built_units: str = "auto",
               builtup_area: str = "binary", infill_extent: str = "fill_holes", buffer_m: float = 0.0,
               transform=None, crs=None, pop_transform=None, pop_crs=None, degurba_km: float = 1.0,
               density_threshold: float | None = None, min_population: float | None = None,
               pgr_tolerance: float = 1e-4, area_method: str = "ellipsoidal", boundary_crs=None,
               lcr_formula: str = "ln", land_share=None) -> SDGResult:
    """Every SDG 11.3.1 indicator for one city between two dates.

    Three steps, each a public function a chapter may call on its own: :func:`prepare_inputs`
    (validation, grids), :func:`delineate_city` (city extent), :func:`measure` (areas,
    population, new development), :func:`indicators` (LCR, PGR, LCRPGR, secondary indicators).

    Args:
        built_t1, built_t2: (y, x) built-up maps on one grid (bool/0-1/0-255 binary, built-up
            fraction 0..1, or built surface m2 per cell; see ``built_units``), numpy or DataArray.
        pop_t1, pop_t2: (y, x) persons per cell on one grid (any resolution and CRS: the
            built-up grid's, or ``pop_transform``/``pop_crs``).
        year_t1, year_t2: the dates (years, t2 > t1).
        boundary, boundary_crs, city_definition, extent, select, degurba_km, density_threshold,
            min_population, land_share: the city extent (:func:`delineate_city`).
        builtup_threshold, built_units, builtup_area, infill_extent, buffer_m: the built-up
            rule and the new-development split (:func:`measure`).
        transform, crs: georeference of numpy built-up maps; area_method: ``ellipsoidal`` or
            ``spherical`` cell areas on geographic grids.
        lcr_formula: ``ln`` (default, UN-Habitat 2021) or ``linear`` (for LCR and PGR).
        pgr_tolerance: |PGR| below this (1/yr) makes LCRPGR undefined (NaN, warned).

    Returns:
        :class:`SDGResult` (table, parameters printed with it, extents, polygons()).

    Warnings: :class:`PopulationDeclineWarning` (PGR < 0), :class:`ZeroPopulationGrowthWarning`
    (|PGR| < tolerance), :class:`EmptyExtentWarning` (empty extent / zero built-up or population).
    """
    log: list[str] = []
    if lcr_formula not in RATE_FORMULAS:
        raise ConfigError(f"lcr_formula must be one of {sorted(RATE_FORMULAS)}, got {lcr_formula!r}")
    inputs = prepare_inputs(built_t1, built_t2, pop_t1, pop_t2, year_t1, year_t2, transform=transform,
                            crs=crs, pop_transform=pop_transform, pop_crs=pop_crs, area_method=area_method)
    city = delineate_city(inputs, boundary=boundary, boundary_crs=boundary_crs,
                          city_definition=city_definition, extent=extent, select=select,
                          degurba_km=degurba_km, density_threshold=density_threshold,
                          min_population=min_population, land_share=land_share, log=log)
    m = measure(inputs, city, builtup_threshold=builtup_threshold, built_units=built_units,
                builtup_area=builtup_area, infill_extent=infill_extent, buffer_m=buffer_m, log=log)
    table = indicators(m, inputs.years, lcr_formula=lcr_formula, pgr_tolerance=pgr_tolerance, log=log)
    params = _parameters(inputs, city, m, table, builtup_area=builtup_area, infill_extent=infill_extent,
                         buffer_m=buffer_m, lcr_formula=lcr_formula, pgr_tolerance=pgr_tolerance)
    res = SDGResult(table=table, parameters=params, extents=_extents_dataset(inputs.built_grid, city, m),
                    city=city.cities, warnings=log, city_grid_mask=city.grid_mask, city_grid=city.grid)
    res._grid = inputs.built_grid
    return res
# fmt: on
