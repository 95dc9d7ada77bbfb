"""A synthetic city region with known truth, for SDG 11.3.1 and urban-growth exercises.

:func:`make_city_region` builds a coarse (default 100 m) grid over a large area (default
40 km x 40 km) in a projected CRS (UTM, metres), with per-year

- ``built_up`` (time, y, x) float32: built-up *fraction* of each cell (0..1). Built-up cells
  have a fraction >= 0.15; non-built cells carry a little noise below 0.08, so the kit's
  GHS-BUILT-S rule "a cell is built-up if its built surface is >= 10 % of its area" recovers the true
  binary map exactly.
- ``population`` (time, y, x) float32: persons per cell, proportional to the built-up fraction
  times a density that falls off from the centre (plus a thin rural population), scaled so the
  region total follows ``population_growth`` (per year, exponential; negative for a shrinking
  city).
- ``land_cover`` (time, y, x) uint8: 0 other (fields, bare), 1 urban (built-up), 2 water,
  3 vegetation (forest, parks), for CA-Markov and urban-green exercises.
- ``water`` (y, x) bool (a river and a lake, never built), ``roads`` (y, x) bool (radial roads
  that attract growth), ``distance_to_centre_km`` (y, x).

Growth between consecutive years is made by three explicit processes whose areas are the
*known truth* of the new-development split (the same definitions as :mod:`urbankit.sdg`):

- **infill**: non-built cells inside the urban extent of the earlier year (built-up plus the
  enclosed gaps: background components, 4-connected, that do not reach the grid border);
- **extension**: cells outside that extent in new-development patches (8-connected) that touch
  it;
- **leapfrog**: new satellite patches at least 3 cells away from everything built.

The truth (``ds.attrs["truth"]``, a dict; also returned by :func:`region_truth`) holds per year
the built-up area (km2, cells >= 10 %), the built surface (km2, sum of fractions x cell area),
the population, and per interval the infill / extension / leapfrog areas (km2). Everything is
vectorised numpy and deterministic for a seed.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from scipy import ndimage

from ..errors import ConfigError
from .raster import pixel_centres

#: The regions the generator knows: (UTM EPSG code, origin easting, origin northing).
REGIONS: dict[str, tuple[int, float, float]] = {
    "europe": (32633, 400_000.0, 5_560_000.0),  # UTM 33N, central Europe
    "asia": (32650, 400_000.0, 3_430_000.0),  # UTM 50N, eastern China
    "africa": (32736, 300_000.0, 9_200_000.0),  # UTM 36S, East Africa
    "americas": (32618, 300_000.0, 4_300_000.0),  # UTM 18N, eastern USA
}

LAND_COVER_CLASSES = {0: "other", 1: "urban", 2: "water", 3: "vegetation"}

_BUILT_MIN = 0.15  # smallest fraction of a built-up cell
_NOISE_MAX = 0.08  # largest fraction of a non-built cell (below the 10 % rule)
_RURAL_DENSITY = 20.0  # persons per km2 of non-built land


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean, unit std (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    field -= field.mean()
    field /= field.std() + 1e-12
    return field


def _segments_mask(shape, starts, ends, width_cells: float) -> np.ndarray:
    """Cells within ``width_cells`` of any of the segments (vectorised over the grid)."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    mask = np.zeros(shape, bool)
    for (y0, x0), (y1, x1) in zip(starts, ends):
        dy, dx = y1 - y0, x1 - x0
        length2 = dy * dy + dx * dx
        t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(length2, 1e-9), 0.0, 1.0)
        d2 = (yy - (y0 + t * dy)) ** 2 + (xx - (x0 + t * dx)) ** 2
        mask |= d2 <= width_cells**2
    return mask


def urban_extent(built: np.ndarray) -> np.ndarray:
    """Built-up cells plus enclosed gaps (non-built 4-connected components off the border)."""
    background = ~built
    labels, n = ndimage.label(background)  # 4-connectivity for the background
    if n == 0:
        return built.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    enclosed = np.ones(n + 1, bool)
    enclosed[border] = False
    enclosed[0] = False
    return built | enclosed[labels]


def _classify_new(built0: np.ndarray, built1: np.ndarray) -> dict[str, np.ndarray]:
    """Split new built-up cells into infill / extension / leapfrog (8-connected patches)."""
    extent = urban_extent(built0)
    new = built1 & ~built0
    infill = new & extent
    outside = new & ~extent
    labels, n = ndimage.label(outside, structure=np.ones((3, 3), bool))
    touching = ndimage.binary_dilation(extent, structure=np.ones((3, 3), bool)) & outside
    is_ext = np.zeros(n + 1, bool)
    is_ext[np.unique(labels[touching])] = True
    is_ext[0] = False
    extension = is_ext[labels]
    leapfrog = outside & ~extension
    return {"infill": infill, "extension": extension, "leapfrog": leapfrog}


def make_city_region(
    seed: int = 0,
    size_km: float = 40.0,
    cell_m: float = 100.0,
    years: tuple[int, ...] = (2000, 2010, 2020),
    region: str = "europe",
    *,
    population_start: float = 600_000.0,
    population_growth: float = 0.02,
    core_radius_km: float = 4.5,
    infill_share: float = 0.45,
    extension_km: float = 0.8,
    leapfrog_patches: int = 8,
    name: str | None = None,
) -> xr.Dataset:
    """Make a synthetic city region with known built-up, population and growth truth.

    Args:
        seed: random seed (everything is deterministic for a seed).
        size_km: side of the square region in km.
        cell_m: cell size in metres (true cell area = cell_m**2; the CRS is UTM, metres).
        years: the epochs (increasing); growth happens between consecutive epochs.
        region: one of :data:`REGIONS` (sets the UTM zone and origin only).
        population_start: persons in the region at the first year.
        population_growth: annual exponential growth rate of the region's population
            (0.02 = 2 %/yr). Use a negative value for a **shrinking city**: the built-up area
            still grows (the usual "shrinking but sprawling" case) while the population falls.
        core_radius_km: radius of the initial dense core.
        infill_share: share of the enclosed gaps of the earlier extent that is built per
            interval.
        extension_km: mean outward advance of the urban fringe per interval (km).
        leapfrog_patches: number of new satellite patches per interval.
        name: site name for the attrs (default ``synthetic-city-<seed>``).

    Returns:
        An ``xarray.Dataset`` with ``built_up``, ``population``, ``land_cover`` (time, y, x),
        ``water``, ``roads``, ``distance_to_centre_km`` (y, x); a rioxarray CRS and transform;
        attrs ``site``, ``region``, ``dataset``, ``source``, ``licence``, ``cell_area_km2`` and
        ``truth`` (see :func:`region_truth`; stored as a JSON string in ``truth_json`` too so
        the dataset can be written to netCDF/zarr).
    """
    years = _check_region_args(region, years, size_km, cell_m)
    rng = np.random.default_rng(seed)
    n = int(round(size_km * 1000 / cell_m))
    cy, cx = (n - 1) / 2 + rng.uniform(-0.05, 0.05) * n, (n - 1) / 2 + rng.uniform(-0.05, 0.05) * n
    g = _RegionGrid(n, cell_m, cy, cx)
    roads, water, road_dist_km, forest = _static_layers(rng, g)
    attract = (_smooth_noise(rng, g.shape, 3.0 * 100.0 / cell_m) * 0.7 - 0.8 * np.minimum(road_dist_km, 3.0)
               - 0.15 * g.dist_km).astype(np.float32)
    built_list = [_initial_city(rng, g, core_radius_km, road_dist_km, water)]
    splits: list[dict[str, float]] = []
    for _ in years[1:]:
        new_built, split = _grow_interval(rng, g, built_list[-1], water, attract, road_dist_km, size_km,
                                          infill_share, extension_km, leapfrog_patches)
        built_list.append(new_built)
        splits.append(split)  # the truth comes from the processes (not from re-classifying the maps)
    built_stack = np.stack(built_list)  # (time, y, x) bool
    fractions = _built_fractions(rng, g, built_stack, core_radius_km)
    population = _region_population(g, built_stack, fractions, water, years, population_start,
                                    population_growth, core_radius_km)
    epsg, x0, y0 = REGIONS[region]
    x0 = x0 + rng.integers(0, 50) * cell_m * 10
    transform = Affine(cell_m, 0.0, x0, 0.0, -cell_m, y0 + size_km * 1000)
    ds = _region_dataset(g, built_stack, fractions, population, water, roads, forest, years, transform, epsg)
    truth = _truth_dict(built_stack, fractions, population, years, splits, g.cell_area_km2)
    ds.attrs.update(
        site=name or f"synthetic-city-{seed}",
        region=region,
        dataset="synthetic_region",
        split="unlabelled",
        source=f"urbankit.data.synthetic_region.make_city_region(seed={seed}, size_km={size_km}, "
        f"cell_m={cell_m}, years={years}, population_growth={population_growth})",
        licence="synthetic (MIT, generated by urbankit)",
        cell_area_km2=g.cell_area_km2,
        centre_yx=json.dumps([float(cy), float(cx)]),
        truth_json=json.dumps(truth),
    )
    ds.attrs["truth"] = truth
    return ds


def _check_region_args(region: str, years, size_km: float, cell_m: float) -> tuple[int, ...]:
    """The epochs as ints; ConfigError for an unknown region, too few or unordered years, or a tiny grid."""
    if region not in REGIONS:
        raise ConfigError(f"make_city_region: region must be one of {sorted(REGIONS)}, got {region!r}")
    years = tuple(int(y) for y in years)
    if len(years) < 2 or any(b <= a for a, b in zip(years, years[1:])):
        raise ConfigError(f"make_city_region: years must be >= 2 increasing epochs, got {years}")
    if cell_m <= 0 or size_km * 1000 < 20 * cell_m:
        raise ConfigError(
            f"make_city_region: need cell_m > 0 and at least 20 cells per side, got size_km={size_km}, "
            f"cell_m={cell_m}"
        )
    return years


class _RegionGrid:
    """The region's cell grid: size, cell size, centre (cells) and distance to it (km)."""

    def __init__(self, n: int, cell_m: float, cy: float, cx: float):
        self.n, self.shape, self.cell_m, self.cy, self.cx = n, (n, n), cell_m, cy, cx
        self.km = cell_m / 1000.0
        self.cell_area_km2 = self.km * self.km
        self.yy, self.xx = np.mgrid[0:n, 0:n].astype(np.float32)
        self.dist_km = np.hypot(self.yy - cy, self.xx - cx) * self.km


def _static_layers(rng: np.random.Generator, g: _RegionGrid):
    """(radial roads, water = a river and a lake, distance to a road in km, forest), (n, n) each."""
    n, cy, cx, km, yy, xx = g.n, g.cy, g.cx, g.km, g.yy, g.xx
    n_roads = 6
    angles = (rng.uniform(0, 2 * np.pi) + np.arange(n_roads) * 2 * np.pi / n_roads
              + rng.normal(0, 0.15, n_roads))
    ends = [(cy + np.sin(a) * n, cx + np.cos(a) * n) for a in angles]
    roads = _segments_mask(g.shape, [(cy, cx)] * n_roads, ends, width_cells=max(0.6, 30.0 / g.cell_m))
    # river: a sine-shaped band across the grid, away from the exact centre
    offset = (0.18 + 0.1 * rng.random()) * n
    river_y = cy + offset + 0.06 * n * np.sin(xx[0] / n * 2 * np.pi * rng.uniform(0.8, 1.5))
    river = np.abs(yy - river_y[None, :]) <= max(1.0, 150.0 / g.cell_m)
    lake_c = (cy - 0.3 * n, cx + 0.28 * n)
    lake = np.hypot(yy - lake_c[0], xx - lake_c[1]) * km <= 1.2 + 0.6 * rng.random()
    water = river | lake
    roads &= ~water
    road_dist_km = ndimage.distance_transform_edt(~roads).astype(np.float32) * km
    forest = (_smooth_noise(rng, g.shape, 12.0 * 100.0 / g.cell_m) > 0.9) & ~water
    return roads, water, road_dist_km, forest


def _initial_city(rng: np.random.Generator, g: _RegionGrid, core_radius_km: float, road_dist_km: np.ndarray,
                  water: np.ndarray) -> np.ndarray:
    """The first epoch's built-up cells: an irregular core, suburbs along roads, enclosed gaps."""
    shape, scale, dist_km = g.shape, 100.0 / g.cell_m, g.dist_km
    # an irregular core: lobes along the angle plus small-scale roughness of the edge
    theta = np.arctan2(g.yy - g.cy, g.xx - g.cx)
    phases = rng.uniform(0, 2 * np.pi, 3)
    lobes = 0.18 * np.sin(3 * theta + phases[0]) + 0.1 * np.sin(5 * theta + phases[1]) + 0.06 * np.sin(
        2 * theta + phases[2])
    core = dist_km <= core_radius_km * (1 + lobes + 0.12 * _smooth_noise(rng, shape, 3.0 * scale))
    # suburbs: along the roads and where the (smooth, random) attractiveness is high, thinning out
    local = _smooth_noise(rng, shape, 4.0 * scale) - 1.2 * np.minimum(road_dist_km, 2.0)
    suburbs = local > -0.5 + 1.6 * (dist_km / (core_radius_km * 2.2)) ** 2
    built = (core | suburbs) & ~water
    built = ndimage.binary_opening(built, structure=np.ones((2, 2), bool)) | (core & ~water)
    # undeveloped plots and parks inside the city: the enclosed gaps that infill will use
    gaps0 = (_smooth_noise(rng, shape, 1.2 * scale) > 1.0) & (dist_km > 0.5)
    return built & ~gaps0


def _connected_to(mask: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """The cells of ``mask`` in patches (8-connectivity) that touch ``extent``."""
    lab, nlab = ndimage.label(mask | extent, structure=np.ones((3, 3), bool))
    keep = np.zeros(nlab + 1, bool)
    keep[np.unique(lab[extent])] = True
    keep[0] = False
    return mask & keep[lab]


def _grow_interval(rng: np.random.Generator, g: _RegionGrid, prev: np.ndarray, water: np.ndarray,
                   attract: np.ndarray, road_dist_km: np.ndarray, size_km: float, infill_share: float,
                   extension_km: float, leapfrog_patches: int) -> tuple[np.ndarray, dict[str, float]]:
    """One interval of growth: (new built-up map, km2 of infill / extension / leapfrog)."""
    shape, km, scale = g.shape, g.km, 100.0 / g.cell_m
    extent = urban_extent(prev)
    gaps = extent & ~prev & ~water
    # infill: a share of the gap cells, the most attractive first
    infill = gaps & (rng.random(shape) < infill_share * (1.0 + 0.5 * np.tanh(attract)))
    # extension: a fringe grown outward from the extent, guided by attractiveness
    dist_out = ndimage.distance_transform_edt(~extent).astype(np.float32) * km
    reach = extension_km * (1.0 + 0.6 * _smooth_noise(rng, shape, 4.0 * scale)) + 0.8 * (
        road_dist_km < 0.3
    ) * extension_km
    extension = (dist_out > 0) & (dist_out <= np.maximum(reach, 0.0)) & ~water
    extension = _connected_to(extension, extent)  # only fringe patches connected to the extent
    # a patchy fringe leaves plots unbuilt (they become enclosed gaps for the next infill)
    extension = _connected_to(extension & (_smooth_noise(rng, shape, 1.2 * scale) > -0.9), extent)
    # leapfrog: satellite patches >= 3 cells away from everything built so far
    grown = prev | infill | extension
    far = ndimage.distance_transform_edt(~grown) * km
    candidates = (far >= 3 * km + 0.6) & (road_dist_km < 1.0) & ~water & (g.dist_km < size_km * 0.45)
    leap = np.zeros(shape, bool)
    cand_idx = np.flatnonzero(candidates)
    if cand_idx.size and leapfrog_patches > 0:
        centres = rng.choice(cand_idx, size=min(leapfrog_patches, cand_idx.size), replace=False)
        seeds = np.zeros(shape, bool)
        seeds.flat[centres] = True
        radius = rng.uniform(0.25, 0.6) * np.ones(1)
        leap = (ndimage.distance_transform_edt(~seeds) * km <= radius[0]) & ~water
        # keep them >= 2 cells clear of the grown city (so they are not contiguous)
        leap &= ndimage.distance_transform_edt(~grown) * km >= 2 * km + 1e-6
    split = {"infill": float(infill.sum()) * g.cell_area_km2, "extension": float(extension.sum()) * g.cell_area_km2,
             "leapfrog": float(leap.sum()) * g.cell_area_km2}
    return prev | infill | extension | leap, split


def _built_fractions(rng: np.random.Generator, g: _RegionGrid, built_stack: np.ndarray,
                     core_radius_km: float) -> np.ndarray:
    """Built-up fraction per epoch: dense in the centre, lower at the fringe, noise < 10 % elsewhere."""
    base_frac = np.clip(0.25 + 0.65 * np.exp(-g.dist_km / (core_radius_km * 1.5)), 0, 1).astype(np.float32)
    jitter = 0.1 * _smooth_noise(rng, g.shape, 1.5)
    frac_built = np.clip(base_frac + jitter, _BUILT_MIN, 1.0).astype(np.float32)
    sparse = rng.random(g.shape) < 0.3
    noise_frac = (rng.random(g.shape, dtype=np.float32) * _NOISE_MAX * sparse).astype(np.float32)
    fractions = np.where(built_stack, frac_built[None], noise_frac[None]).astype(np.float32)
    # densification: cells built earlier gain a little built surface over time
    for t in range(1, built_stack.shape[0]):
        older = built_stack[t - 1]
        fractions[t] = np.where(older, np.minimum(1.0, fractions[t - 1] + 0.03), fractions[t])
    return fractions


def _region_population(g: _RegionGrid, built_stack: np.ndarray, fractions: np.ndarray, water: np.ndarray,
                       years: tuple[int, ...], population_start: float, population_growth: float,
                       core_radius_km: float) -> np.ndarray:
    """Persons per cell per epoch: a rural density outside the built-up area, the rest by built surface."""
    t_years = np.asarray(years, float)
    totals = population_start * np.exp(population_growth * (t_years - t_years[0]))
    density_weight = (1.0 + 2.0 * np.exp(-g.dist_km / core_radius_km)).astype(np.float32)
    population = np.empty(fractions.shape, np.float32)
    rural_area = g.cell_area_km2 * (~built_stack) * (~water)[None]
    for t in range(len(years)):
        rural = rural_area[t] * _RURAL_DENSITY
        urban_w = built_stack[t] * fractions[t] * density_weight
        urban_total = totals[t] - rural.sum()
        if urban_total <= 0:
            raise ConfigError("make_city_region: population_start too small for the rural population")
        population[t] = (rural + urban_w * (urban_total / urban_w.sum())).astype(np.float32)
    return population


def _region_dataset(g: _RegionGrid, built_stack, fractions, population, water, roads, forest,
                    years: tuple[int, ...], transform, epsg: int) -> xr.Dataset:
    """The region's layers as a georeferenced Dataset (land cover: 1 built, 2 water, 3 forest)."""
    land_cover = np.zeros(built_stack.shape, np.uint8)
    land_cover[:, forest] = 3
    land_cover[built_stack] = 1
    land_cover[:, water] = 2
    ys, xs = pixel_centres(transform, g.shape)
    times = np.array([np.datetime64(f"{y}-07-01") for y in years])
    ds = xr.Dataset(
        {
            "built_up": (("time", "y", "x"), fractions),
            "population": (("time", "y", "x"), population),
            "land_cover": (("time", "y", "x"), land_cover),
            "water": (("y", "x"), water),
            "roads": (("y", "x"), roads),
            "distance_to_centre_km": (("y", "x"), g.dist_km.astype(np.float32)),
        },
        coords={"time": times, "y": ys, "x": xs, "year": ("time", np.asarray(years))},
    )
    ds["built_up"].attrs.update(units="1", long_name="built-up fraction of the cell (0..1)")
    ds["population"].attrs.update(units="persons per cell")
    ds["land_cover"].attrs.update(classes=json.dumps(LAND_COVER_CLASSES))
    return ds.rio.write_crs(f"EPSG:{epsg}").rio.write_transform(transform)


def _truth_dict(built_stack, fractions, population, years, splits, cell_area_km2) -> dict[str, Any]:
    truth: dict[str, Any] = {
        "cell_area_km2": cell_area_km2,
        "builtup_rule": "cell built-up if built fraction >= 0.10 (the GHS-BUILT-S rule)",
        "built_up_km2": {str(y): float(built_stack[t].sum()) * cell_area_km2 for t, y in enumerate(years)},
        "built_surface_km2": {
            str(y): float(fractions[t].astype(np.float64).sum()) * cell_area_km2 for t, y in enumerate(years)
        },
        "population": {str(y): float(population[t].astype(np.float64).sum()) for t, y in enumerate(years)},
        "new_development_km2": {},
    }
    for (a, b), split in zip(zip(years, years[1:]), splits):
        truth["new_development_km2"][f"{a}-{b}"] = split
    return truth


def region_truth(ds: xr.Dataset) -> dict[str, Any]:
    """The known truth of a region made by :func:`make_city_region` (a dict)."""
    if "truth" in ds.attrs and isinstance(ds.attrs["truth"], dict):
        return ds.attrs["truth"]
    if "truth_json" in ds.attrs:
        return json.loads(ds.attrs["truth_json"])
    raise ConfigError("region_truth: the dataset has no 'truth' attrs (not made by make_city_region?)")


def truth_indicators(ds: xr.Dataset, year_t1: int, year_t2: int) -> dict[str, float]:
    """The SDG 11.3.1 indicators computed from the generator's truth over the whole region.

    Uses the UN formulas (UN-Habitat 2021 SDG 11.3.1 metadata; log, annualised); the names match
    :func:`urbankit.sdg.sdg_11_3_1` output rows.
    """
    tr = region_truth(ds)
    y = float(year_t2 - year_t1)
    u1, u2 = tr["built_up_km2"][str(year_t1)], tr["built_up_km2"][str(year_t2)]
    p1, p2 = tr["population"][str(year_t1)], tr["population"][str(year_t2)]
    lcr = np.log(u2 / u1) / y
    pgr = np.log(p2 / p1) / y
    out = {
        "built_up_area_t1": u1,
        "built_up_area_t2": u2,
        "population_t1": p1,
        "population_t2": p2,
        "LCR": lcr,
        "PGR": pgr,
        "LCRPGR": lcr / pgr if pgr != 0 else float("nan"),
        "built_up_per_capita_t1": u1 * 1e6 / p1,
        "built_up_per_capita_t2": u2 * 1e6 / p2,
        "built_up_change_pct": (u2 - u1) / u1 * 100.0,
    }
    # the split between two epochs that are not consecutive is the sum of the intervals
    years = sorted(int(k) for k in tr["built_up_km2"])
    i1, i2 = years.index(year_t1), years.index(year_t2)
    if i2 == i1 + 1:
        split = tr["new_development_km2"][f"{year_t1}-{year_t2}"]
        out.update({f"new_{k}_km2": v for k, v in split.items()})
        out["new_development_km2"] = sum(split.values())
    return out
