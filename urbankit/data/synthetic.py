"""Synthetic Sentinel-1/2 scenes with known ground truth: the "urban twin".

Two entry points:

- :func:`tiny_sentinel2` - one small 13-band Sentinel-2-like image (a ``DataArray``) with a
  river, a park, bare soil and a block of buildings; for first plots and spectra.
- :func:`make_site` - a multi-temporal, multi-modal scene in the urbankit schema (see
  CONTRIBUTING.md) of a city that grows over time, with building, change and population labels.

Land-cover codes (shared by both; also in :data:`LAND_COVER_CLASSES`)::

    0 water, 1 vegetation, 2 bare_soil, 3 road, 4 building

Spectra are plausible surface reflectances for the 13 Sentinel-2 bands (values in the
ranges of standard spectral libraries, rounded): vegetation has a low red, a red-edge rise and
a near-infrared plateau around 0.35; water is dark with NIR ~0.01; built materials are
bright-ish, flat and relatively high in SWIR; soil rises with wavelength. They are
teaching values, not a radiative-transfer model.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ConfigError
from .bands import S2_BAND_NAMES
from .schema import make_scene

__all__ = [
    "LAND_COVER_CLASSES", "WATER", "VEGETATION", "BARE_SOIL", "ROAD", "BUILDING", "SPECTRA",
    "spectral_library", "tiny_sentinel2", "Region", "REGIONS", "GROWTH_TYPES", "SAR_DB", "make_site",
    "make_sites",
]

#: Land-cover codes used by the generator.
WATER, VEGETATION, BARE_SOIL, ROAD, BUILDING = 0, 1, 2, 3, 4
LAND_COVER_CLASSES: dict[int, str] = {
    WATER: "water", VEGETATION: "vegetation", BARE_SOIL: "bare_soil", ROAD: "road", BUILDING: "building",
}

#: Surface reflectance (0..1) per material for the 13 bands in canonical order
#: B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12.
SPECTRA: dict[str, tuple[float, ...]] = {
    #             B01    B02    B03    B04    B05    B06    B07    B08    B8A    B09    B10    B11    B12
    "water":      (0.070, 0.060, 0.050, 0.030, 0.022, 0.016, 0.014, 0.013, 0.011, 0.008, 0.002, 0.006, 0.004),
    "vegetation": (0.030, 0.035, 0.070, 0.040, 0.100, 0.250, 0.320, 0.360, 0.370, 0.340, 0.005, 0.190, 0.090),
    "lawn":       (0.035, 0.040, 0.080, 0.055, 0.120, 0.260, 0.310, 0.340, 0.345, 0.320, 0.005, 0.220, 0.110),
    "dry_vegetation": (0.050, 0.060, 0.090, 0.100, 0.150, 0.200, 0.235, 0.260, 0.270, 0.250, 0.005, 0.260,
                       0.170),
    "bare_soil":  (0.080, 0.090, 0.130, 0.180, 0.210, 0.230, 0.250, 0.270, 0.280, 0.270, 0.006, 0.350, 0.300),
    "red_earth":  (0.070, 0.075, 0.110, 0.200, 0.250, 0.270, 0.285, 0.300, 0.305, 0.295, 0.006, 0.370, 0.320),
    "asphalt":    (0.080, 0.085, 0.095, 0.105, 0.110, 0.115, 0.120, 0.125, 0.128, 0.125, 0.004, 0.150, 0.140),
    "concrete":   (0.180, 0.200, 0.230, 0.250, 0.260, 0.265, 0.270, 0.275, 0.278, 0.270, 0.008, 0.300, 0.270),
    "roof_grey":  (0.110, 0.120, 0.135, 0.150, 0.160, 0.165, 0.170, 0.175, 0.178, 0.172, 0.005, 0.270, 0.250),
    "roof_metal": (0.250, 0.260, 0.270, 0.275, 0.278, 0.280, 0.282, 0.284, 0.285, 0.280, 0.008, 0.250, 0.200),
    "roof_earth": (0.090, 0.100, 0.140, 0.230, 0.270, 0.290, 0.300, 0.310, 0.315, 0.305, 0.007, 0.380, 0.330),
    "cloud":      (0.550, 0.550, 0.560, 0.570, 0.570, 0.570, 0.570, 0.580, 0.580, 0.500, 0.200, 0.450, 0.350),
}


def spectral_library() -> pd.DataFrame:
    """The material spectra as a pandas DataFrame (rows: material, columns: band)."""
    return pd.DataFrame.from_dict(SPECTRA, orient="index", columns=list(S2_BAND_NAMES))


def _spec(name: str) -> np.ndarray:
    return np.asarray(SPECTRA[name], dtype=np.float32)


def _pixel_coords(n: int, pixel_size: float, origin: float, descending: bool) -> np.ndarray:
    centres = (np.arange(n, dtype=np.float64) + 0.5) * pixel_size
    return origin - centres if descending else origin + centres


def tiny_sentinel2(size: int = 32, seed: int = 0) -> xr.DataArray:
    """A small synthetic Sentinel-2-like image with four kinds of land cover.

    Layout (fixed, scaled to ``size``): a river near the left edge, a city block of buildings
    separated by roads right of centre, a field of bare soil at the bottom left, and
    vegetation everywhere else. Each pixel takes its material's spectrum
    (:data:`SPECTRA`), times a per-pixel brightness factor (within-class variability, 5 %),
    plus band-wise sensor noise (0.004 reflectance); the result is clipped to [0, 1].

    Args:
        size: side in pixels (at least 8).
        seed: random seed; the same seed gives identical values.

    Returns:
        ``xarray.DataArray`` float32 of dims (``band``, ``y``, ``x``), 13 bands named
        ``B01`` .. ``B12``, ``B8A`` (canonical order), reflectance 0..1, 10 m pixels on a made-up
        UTM grid. The ground truth is the 2-D coordinate ``land_cover`` (``y``, ``x``) uint8
        with codes ``attrs["classes"]`` = ``{0: "water", 1: "vegetation", 2: "bare_soil",
        3: "road", 4: "building"}`` (also CF ``flag_values``/``flag_meanings`` on the coordinate).

    >>> img = tiny_sentinel2(32)
    >>> img.sizes["band"], img.land_cover.shape
    (13, (32, 32))
    """
    size = int(size)
    if size < 8:
        raise ValueError(f"tiny_sentinel2: size must be at least 8 pixels, got {size}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    v = (yy + 0.5) / size   # row position 0..1 (top to bottom)
    u = (xx + 0.5) / size   # column position 0..1 (left to right)

    lc = np.full((size, size), VEGETATION, dtype=np.uint8)
    # bare soil field, bottom left
    lc[(u > 0.22) & (u < 0.45) & (v > 0.70) & (v < 0.92)] = BARE_SOIL
    # city block: roads every `period` pixels, buildings in between, a few empty lots
    period = max(4, size // 6)
    block = (u > 0.45) & (u < 0.92) & (v > 0.12) & (v < 0.80)
    road = block & (((yy % period) == 0) | ((xx % period) == 0))
    lots = block & ~road
    empty_lot = rng.random((size // period + 1, size // period + 1)) < 0.2
    building = lots & ~empty_lot[yy // period, xx // period]
    lc[lots] = VEGETATION
    lc[building] = BUILDING
    lc[road] = ROAD
    # a meandering river, left
    centre = 0.14 + 0.05 * np.sin(2 * np.pi * v * 1.3)
    lc[np.abs(u - centre) < max(0.06, 1.5 / size)] = WATER

    materials = {WATER: "water", VEGETATION: "vegetation", BARE_SOIL: "bare_soil", ROAD: "asphalt",
                 BUILDING: "roof_grey"}
    lib = np.stack([_spec(materials[k]) for k in sorted(materials)])  # (5, 13)
    refl = lib[lc].transpose(2, 0, 1)                                  # (13, y, x)
    brightness = 1.0 + 0.05 * rng.standard_normal((1, size, size)).astype(np.float32)
    noise = 0.004 * rng.standard_normal(refl.shape).astype(np.float32)
    refl = np.clip(refl * brightness + noise, 0.0, 1.0).astype(np.float32)

    x = _pixel_coords(size, 10.0, 500000.0, descending=False)
    y = _pixel_coords(size, 10.0, 5000000.0, descending=True)
    classes = dict(LAND_COVER_CLASSES)
    land_cover = xr.DataArray(
        lc, dims=("y", "x"),
        attrs={"flag_values": np.array(sorted(classes), dtype=np.uint8),
               "flag_meanings": " ".join(classes[k] for k in sorted(classes)),
               "long_name": "land-cover class (ground truth)"},
    )
    return xr.DataArray(
        refl, dims=("band", "y", "x"),
        coords={"band": list(S2_BAND_NAMES), "y": y, "x": x, "land_cover": land_cover},
        name="optical",
        attrs={"classes": classes, "units": "reflectance (0-1)", "sensor": "synthetic Sentinel-2 MSI",
               "pixel_size_m": 10.0, "seed": int(seed),
               "description": "urbankit.data.synthetic.tiny_sentinel2: river, park, bare soil, "
                              "city block; ground truth in the land_cover coordinate"},
    )


# =============================================================================================
# The urban twin: a growing city observed by Sentinel-1 and Sentinel-2
# =============================================================================================

#: Growth types recorded per pixel in the ``growth_type`` variable.
GROWTH_TYPES: dict[int, str] = {0: "none", 1: "initial", 2: "infill", 3: "extension", 4: "leapfrog"}

#: Mean backscatter (VV, VH) in dB per material at the reference incidence angle (37 deg).
#: Buildings are not in this table: their double bounce depends on the region
#: (:attr:`Region.building_vv_db`) and on the street-grid orientation (cardinal effect).
SAR_DB: dict[str, tuple[float, float]] = {
    "water": (-23.5, -29.0),
    "vegetation": (-10.0, -16.0),
    "lawn": (-12.0, -19.0),
    "dry_vegetation": (-11.5, -18.5),
    "bare_soil": (-12.0, -20.0),
    "red_earth": (-12.5, -20.5),
    "asphalt": (-17.0, -24.0),
    "concrete": (-13.0, -21.0),
    "roof_grey": (-1.0, -8.0),
    "roof_metal": (-1.0, -8.0),
    "roof_earth": (-1.0, -8.0),
    "cloud": (0.0, 0.0),
}
_MATERIALS: tuple[str, ...] = tuple(SPECTRA)
_MAT = {m: i for i, m in enumerate(_MATERIALS)}
#: seasonal pairs: (green material, dry material it fades towards)
_SEASONAL = {"vegetation": "dry_vegetation", "lawn": "dry_vegetation"}
#: S1 ground-track heading (deg from north) used for the cardinal effect
_S1_HEADING_DEG = -12.0


@dataclass(frozen=True)
class Region:
    """How a city of one region looks: the knobs behind the domain gap.

    Sizes are in pixels (10 m by default). Material mixtures are ``{material: weight}``.
    """

    name: str
    description: str
    block: int                      # street-grid period (block + street)
    street: int                     # street width
    lot: int                        # lot side within a block
    footprint: tuple[int, int]      # min/max building side in a lot
    setback: int                    # gap between lot edge and building
    main_road: int                  # width of the main roads
    commercial: float               # fraction of blocks with one big building + parking
    parks: float                    # fraction of blocks kept as parks
    occupancy: float                # fraction of lots built when a block opens
    grid_angle: tuple[float, float]  # range of street-grid orientation (deg)
    jitter: float                   # amplitude of the smooth street warp (px); 0 = straight
    roofs: dict[str, float]
    streets: dict[str, float]
    yards: dict[str, float]
    background: dict[str, float]
    parking: str
    persons_per_building_px: float  # persons per building pixel in the outskirts
    centre_boost: float             # extra density factor at the centre
    building_vv_db: float           # mean VV of building pixels (before the cardinal effect)
    cardinal_gain_db: float         # extra VV when streets align with the S1 track
    incidence_deg: float            # SAR incidence angle
    seasonal_amplitude: float       # how much vegetation browns in the dry season (0..1)
    green_peak_month: int           # month of the greenest vegetation
    extras: dict[str, Any] = field(default_factory=dict)


REGIONS: dict[str, Region] = {
    "north_america": Region(
        name="north_america",
        description="large low-rise blocks, wide asphalt roads, lawns; grey shingle and concrete roofs",
        block=14, street=2, lot=4, footprint=(2, 3), setback=1, main_road=3, commercial=0.12,
        parks=0.08, occupancy=0.7, grid_angle=(-4.0, 4.0), jitter=0.0,
        roofs={"roof_grey": 0.75, "concrete": 0.25}, streets={"asphalt": 1.0},
        yards={"lawn": 0.85, "vegetation": 0.15},
        background={"vegetation": 0.55, "dry_vegetation": 0.25, "bare_soil": 0.20}, parking="asphalt",
        persons_per_building_px=1.2, centre_boost=6.0, building_vv_db=1.0, cardinal_gain_db=5.0,
        incidence_deg=36.0, seasonal_amplitude=0.6, green_peak_month=7,
    ),
    "sub_saharan_africa": Region(
        name="sub_saharan_africa",
        description="dense small buildings, metal and earth roofs, unpaved streets, bare soil, "
                    "sparse vegetation, organic street pattern",
        block=9, street=1, lot=2, footprint=(1, 2), setback=0, main_road=2, commercial=0.03,
        parks=0.02, occupancy=0.85, grid_angle=(-45.0, 45.0), jitter=2.0,
        roofs={"roof_metal": 0.55, "roof_earth": 0.30, "concrete": 0.15},
        streets={"red_earth": 0.7, "asphalt": 0.3}, yards={"red_earth": 0.6, "dry_vegetation": 0.4},
        background={"dry_vegetation": 0.45, "red_earth": 0.35, "vegetation": 0.20}, parking="red_earth",
        persons_per_building_px=4.0, centre_boost=2.0, building_vv_db=-4.0, cardinal_gain_db=3.0,
        incidence_deg=41.0, seasonal_amplitude=0.7, green_peak_month=3,
    ),
    "south_asia": Region(
        name="south_asia",
        description="very dense concrete buildings, narrow streets, some metal/earth roofs, "
                    "cropland around, monsoon seasonality",
        block=8, street=1, lot=2, footprint=(2, 2), setback=0, main_road=2, commercial=0.05,
        parks=0.03, occupancy=0.9, grid_angle=(-30.0, 30.0), jitter=1.5,
        roofs={"concrete": 0.6, "roof_metal": 0.25, "roof_earth": 0.15},
        streets={"asphalt": 0.6, "bare_soil": 0.4}, yards={"bare_soil": 0.7, "lawn": 0.3},
        background={"vegetation": 0.5, "bare_soil": 0.3, "dry_vegetation": 0.2}, parking="concrete",
        persons_per_building_px=6.0, centre_boost=3.0, building_vv_db=1.0, cardinal_gain_db=4.0,
        incidence_deg=39.0, seasonal_amplitude=0.5, green_peak_month=9,
    ),
}


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field with correlation length ~``scale`` pixels.

    Filtered at a reduced resolution and upsampled bilinearly, so large scales stay cheap.
    """
    from scipy.ndimage import gaussian_filter, zoom

    h, w = shape
    f = max(1, int(scale // 3))
    small = (max(2, -(-h // f)), max(2, -(-w // f)))
    field_ = gaussian_filter(rng.standard_normal(small).astype(np.float32), sigma=max(scale / f, 0.5),
                             mode="wrap")
    if f > 1:
        field_ = zoom(field_, (h / small[0], w / small[1]), order=1, grid_mode=True, mode="grid-wrap")
        field_ = field_[:h, :w]
    field_ = field_.astype(np.float32)
    field_ -= field_.mean()
    std = field_.std()
    return field_ / std if std > 0 else field_


def _choose(rng: np.random.Generator, mix: dict[str, float], n: int | tuple[int, ...]) -> np.ndarray:
    """Material indices drawn from a ``{material: weight}`` mixture."""
    names = list(mix)
    p = np.asarray([mix[k] for k in names], dtype=np.float64)
    idx = rng.choice(len(names), size=n, p=p / p.sum())
    return np.asarray([_MAT[k] for k in names], dtype=np.uint8)[idx]


def _threshold_mix(noise: np.ndarray, mix: dict[str, float]) -> np.ndarray:
    """Material map from a smooth noise field, split by quantiles into the mixture's fractions."""
    names = list(mix)
    w = np.cumsum([mix[k] for k in names], dtype=np.float64)
    w /= w[-1]
    cuts = np.quantile(noise, w[:-1]) if len(names) > 1 else np.array([])
    which = np.searchsorted(cuts, noise)
    return np.asarray([_MAT[k] for k in names], dtype=np.uint8)[which]


def _line_distance(xx: np.ndarray, yy: np.ndarray, x0: float, y0: float, angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.abs(-(xx - x0) * np.sin(a) + (yy - y0) * np.cos(a))


class _Layout:
    """Static geometry of a twin city and the construction schedule (all vectorised).

    Built in four steps that draw from ``rng`` in a fixed order (the same arguments give the
    same city): the street grid with its blocks and lots, water and main roads, the lots that
    can be built, and the construction schedule (lot -> first date built).
    """

    never = np.int32(10_000)  # "first date built" of a lot that is never built

    def __init__(self, rng: np.random.Generator, h: int, w: int, reg: Region, n_dates: int,
                 growth: float, growth_mix: tuple[float, float, float], initial_built: float,
                 water: str) -> None:
        self.h, self.w, self.reg = h, w, reg
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._street_grid(rng, yy, xx)
        self._water_and_main_roads(rng, yy, xx, water)
        self._developable_lots()
        self._schedule(rng, n_dates, growth, growth_mix, initial_built)
        self._pixel_schedule()

    def _street_grid(self, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> None:
        """Centre, rotated (optionally warped) street grid, blocks with roles, lots and footprints."""
        h, w, reg = self.h, self.w, self.reg
        cy = h * (0.5 + rng.uniform(-0.08, 0.08))
        cx = w * (0.5 + rng.uniform(-0.08, 0.08))
        self.centre = (cy, cx)
        self.dist = np.hypot(yy - cy, xx - cx)
        self.angle = angle = rng.uniform(*reg.grid_angle)
        a = np.deg2rad(angle)
        u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
        v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        if reg.jitter > 0:
            scale = reg.block * 2.5
            u = u + reg.jitter * _smooth_noise(rng, (h, w), scale)
            v = v + reg.jitter * _smooth_noise(rng, (h, w), scale)
        B, S, L = reg.block, reg.street, reg.lot
        bu_f, bv_f = np.floor(u / B), np.floor(v / B)
        ou, ov = u - bu_f * B, v - bv_f * B
        self._bu = (bu_f - int(bu_f.min())).astype(np.int32)
        self._bv = (bv_f - int(bv_f.min())).astype(np.int32)
        nbu, nbv = int(self._bu.max()) + 1, int(self._bv.max()) + 1
        self.nb = (nbu, nbv)
        self.m = m = max(1, (B - S) // L)
        self._street_u, self._street_v = ou < S, ov < S
        self.street_pix = self._street_u | self._street_v
        lu = np.clip(np.floor((ou - S) / L), 0, m - 1).astype(np.int32)
        lv = np.clip(np.floor((ov - S) / L), 0, m - 1).astype(np.int32)
        pu, pv = (ou - S) - lu * L, (ov - S) - lv * L
        self.block_id = block_id = self._bu * nbv + self._bv
        self.lot_id = block_id * (m * m) + lu * m + lv
        self._n_blocks, self._n_lots = nbu * nbv, nbu * nbv * m * m
        fmin, fmax = reg.footprint                      # per-lot random footprints
        fw = rng.integers(fmin, fmax + 1, self._n_lots)
        fh = rng.integers(fmin, fmax + 1, self._n_lots)
        sb = reg.setback
        in_fp = (pu >= sb) & (pu < sb + fw[self.lot_id]) & (pv >= sb) & (pv < sb + fh[self.lot_id])
        self.in_lot = (pu < L) & (pv < L) & ~self.street_pix
        self._role = role = np.zeros(self._n_blocks, np.uint8)   # 0 residential, 1 commercial, 2 park
        r = rng.random(self._n_blocks)
        role[r < reg.commercial] = 1
        role[(r >= reg.commercial) & (r < reg.commercial + reg.parks)] = 2
        commercial_pix = role[block_id] == 1
        # commercial blocks: one big building over the inner lots, parking around it
        inner = (lu < max(1, m - 1)) & (lv < max(1, m - 1))
        self.in_fp = np.where(commercial_pix, inner & ~self.street_pix, in_fp)
        self.parking_pix = commercial_pix & ~self.in_fp & ~self.street_pix
        self.park_pix = (role[block_id] == 2) & ~self.street_pix

    def _water_and_main_roads(self, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, water: str) -> None:
        """A meandering river or an elliptic lake (or none), and three main roads through the centre."""
        h, w = self.h, self.w
        cy, cx = self.centre
        self.water = np.zeros((h, w), bool)
        if water == "river":
            ang = rng.uniform(0, 180)
            off = rng.uniform(0.25, 0.4) * min(h, w) * rng.choice([-1, 1])
            along = (xx - cx) * np.cos(np.deg2rad(ang)) + (yy - cy) * np.sin(np.deg2rad(ang))
            signed = -(xx - cx) * np.sin(np.deg2rad(ang)) + (yy - cy) * np.cos(np.deg2rad(ang))
            phase = rng.uniform(0, 6.3)
            meander = 0.06 * min(h, w) * np.sin(2 * np.pi * along / (0.7 * max(h, w)) + phase)
            width = max(2.0, min(h, w) / 28)
            self.water = np.abs(signed - off - meander) < width / 2
        elif water == "lake":
            ly = h * rng.uniform(0.15, 0.85)
            lx = w * rng.choice([0.15, 0.85])
            rad = min(h, w) * 0.12
            self.water = ((yy - ly) / rad) ** 2 + ((xx - lx) / (1.4 * rad)) ** 2 < 1
        main = np.zeros((h, w), bool)
        half = self.reg.main_road / 2
        for ang in (self.angle, self.angle + 90, self.angle + rng.uniform(30, 60)):
            main |= _line_distance(xx, yy, cx, cy, ang) < half
        self.main_road = main

    def _developable_lots(self) -> None:
        """Lots that can be built (inside the image, <= 25 % water or main road, not in parks)."""
        m, n_lots, n_blocks = self.m, self._n_lots, self._n_blocks
        blocked = (self.water | self.main_road).astype(np.int64)
        valid = self.in_lot & ~self.park_pix
        lot_px = np.bincount(self.lot_id[valid], minlength=n_lots)
        lot_blocked = np.bincount(self.lot_id[valid], weights=blocked[valid], minlength=n_lots)
        developable = (lot_px > 0) & (lot_blocked <= 0.25 * np.maximum(lot_px, 1))
        self._block_of_lot = np.arange(n_lots) // (m * m)
        developable &= self._role[self._block_of_lot] != 2
        self._developable = developable
        self._bpx = np.bincount(self.block_id.ravel(), minlength=n_blocks)
        self._block_ok = np.bincount(self._block_of_lot[developable], minlength=n_blocks) > 0

    def _open_blocks(self, rng: np.random.Generator, blocks: np.ndarray, t: int, kind: int,
                     max_lots: int | None = None) -> int:
        """Open ``blocks`` at date ``t`` and build some of their free lots (growth type ``kind``).

        Commercial blocks build every lot, others each lot with the region's occupancy; at most
        ``max_lots`` lots in all. Returns the number of lots built.
        """
        built = 0
        for b in blocks:
            self.t_block[b] = min(self.t_block[b], t)
            lots = self._lots_of[b]
            lots = lots[self._developable[lots] & (self.t_lot[lots] == self.never)]
            if lots.size == 0:
                continue
            if self._role[b] == 1:
                take = lots
            else:
                take = lots[rng.random(lots.size) < self.reg.occupancy]
                if take.size == 0:
                    take = lots[:1]
            if max_lots is not None:
                take = take[: max(0, max_lots - built)]
            self.t_lot[take] = t
            self.gtype_lot[take] = kind
            built += take.size
            if max_lots is not None and built >= max_lots:
                break
        return built

    def _leapfrog(self, rng: np.random.Generator, t: int, n_lots: int) -> None:
        """Open a detached cluster of blocks at least 3 blocks away from the open area."""
        from scipy.ndimage import distance_transform_edt

        nbu, nbv = self.nb
        open_grid = (self.t_block <= t).reshape(nbu, nbv)
        far = distance_transform_edt(~open_grid) >= 3
        far_b = np.flatnonzero((far & self._grid_ok).ravel())
        if not far_b.size:
            return
        wgt = 1.0 / (1.0 + self._score[far_b] - self._score[far_b].min())
        seed_b = rng.choice(far_b, p=wgt / wgt.sum())
        bi, bj = divmod(int(seed_b), nbv)
        cluster = [seed_b] + [
            (bi + di) * nbv + (bj + dj) for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0))
            if 0 <= bi + di < nbu and 0 <= bj + dj < nbv and self._grid_ok[bi + di, bj + dj]]
        self._open_blocks(rng, np.asarray(cluster), t, 4, max_lots=n_lots)

    def _grow(self, rng: np.random.Generator, t: int, growth: float, mix: np.ndarray) -> None:
        """Date ``t``'s new lots: infill, then extension, then leapfrog (shortfalls move on)."""
        from scipy.ndimage import binary_dilation

        n_built = int(((self.t_lot < t)).sum())
        n_new = int(round(growth * n_built)) if growth > 0 else 0
        if growth > 0:
            n_new = max(n_new, 1)
        n_inf = int(round(mix[0] * n_new))
        n_ext = int(round(mix[1] * n_new))
        n_leap = n_new - n_inf - n_ext
        # infill: empty developable lots in open blocks
        open_b = self.t_block < t
        inf_c = np.flatnonzero(self._developable & (self.t_lot == self.never) & open_b[self._block_of_lot])
        k = min(n_inf, inf_c.size)
        if k:
            pick = rng.choice(inf_c, size=k, replace=False)
            self.t_lot[pick] = t
            self.gtype_lot[pick] = 2
        n_ext += n_inf - k
        # extension: unopened blocks touching the open area, nearest to the centre first
        if n_ext > 0:
            open_grid = (self.t_block <= t).reshape(self.nb)
            ring = binary_dilation(open_grid, structure=np.ones((3, 3), bool)) & ~open_grid & self._grid_ok
            ring_b = np.flatnonzero(ring.ravel())
            ring_b = ring_b[np.argsort(self._score[ring_b])]
            n_leap += n_ext - self._open_blocks(rng, ring_b, t, 3, max_lots=n_ext)
        if n_leap > 0:
            self._leapfrog(rng, t, n_leap)

    def _schedule(self, rng: np.random.Generator, n_dates: int, growth: float,
                  growth_mix: tuple[float, float, float], initial_built: float) -> None:
        """The construction schedule: first date built per lot and opened per block, growth type."""
        h, w, B = self.h, self.w, self.reg.block
        n_blocks, n_lots, m = self._n_blocks, self._n_lots, self.m
        self.t_lot = np.full(n_lots, self.never, np.int32)
        self.t_block = np.full(n_blocks, self.never, np.int32)
        self.gtype_lot = np.zeros(n_lots, np.uint8)
        # growth order: distance to the centre + a smooth random field (an organic outline)
        wobble = (self.dist + 0.12 * min(h, w) * _smooth_noise(rng, (h, w), min(h, w) / 8)).ravel()
        score = np.bincount(self.block_id.ravel(), weights=wobble, minlength=n_blocks) / np.maximum(self._bpx, 1)
        self._score = score + 0.02 * min(h, w) * rng.standard_normal(n_blocks)
        cand = np.flatnonzero(self._block_ok & (self._bpx > 0.5 * B * B))
        order = cand[np.argsort(self._score[cand])]
        self._lots_of = np.arange(n_lots).reshape(n_blocks, m * m)
        self._open_blocks(rng, order[:int(round(initial_built * len(cand)))], 0, 1)
        mix = np.asarray(growth_mix, dtype=np.float64)
        mix = mix / mix.sum() if mix.sum() > 0 else np.array([1.0, 0.0, 0.0])
        self._grid_ok = self._block_ok.reshape(self.nb) & (self._bpx.reshape(self.nb) > 0.5 * B * B)
        for t in range(1, n_dates):
            self._grow(rng, t, growth, mix)

    def _pixel_schedule(self) -> None:
        """Per-pixel first dates: building, block opened, street; growth type and block role."""
        never, t_block = self.never, self.t_block
        nbu, nbv = self.nb
        bu, bv, block_id = self._bu, self._bv, self.block_id
        ok = self.in_lot & ~self.water & ~self.main_road & ~self.park_pix
        self.t_build_pix = np.where(self.in_fp & ok, self.t_lot[self.lot_id], never).astype(np.int32)
        self.t_open_pix = np.where(~self.water & ~self.main_road, t_block[block_id], never).astype(np.int32)
        # a street appears with either block it borders
        bid_u = np.clip(bu - 1, 0, nbu - 1) * nbv + bv     # block on the other side of a u-street
        bid_v = bu * nbv + np.clip(bv - 1, 0, nbv - 1)
        t_street = np.where(self._street_u, np.minimum(t_block[block_id], t_block[bid_u]), never)
        t_street_v = np.where(self._street_v, np.minimum(t_block[block_id], t_block[bid_v]), never)
        t_street = np.minimum(t_street, t_street_v)
        self.t_street_pix = np.where(~self.water & ~self.main_road, t_street, never).astype(np.int32)
        self.gtype_pix = np.where(self.t_build_pix < never, self.gtype_lot[self.lot_id], 0).astype(np.uint8)
        self.role_pix = self._role[block_id]


def _select(state: np.ndarray, choices: list[Any]) -> np.ndarray:
    """``np.choose`` for uint8 states with scalar or (H, W) choices, via a lookup table + fixes."""
    lut = np.zeros(256, np.uint8)
    maps = []
    for k, c in enumerate(choices):
        if np.ndim(c) == 0:
            lut[k] = np.uint8(c)
        else:
            maps.append((k, c))
    out = lut[state]
    for k, c in maps:
        sel = state == k
        out[sel] = np.broadcast_to(c, state.shape)[sel]
    return out


def _state_stack(lay: _Layout, n_dates: int) -> np.ndarray:
    """Internal per-date state (T, H, W) uint8.

    Codes: 0 water, 1 natural, 3 road, 4 building, 5 yard, 6 construction, 7 park, 8 parking.
    """
    t = np.arange(n_dates, dtype=np.int32)[:, None, None]
    st = np.ones((n_dates, lay.h, lay.w), np.uint8)
    st[np.broadcast_to(lay.park_pix, st.shape)] = 7
    opened = lay.t_open_pix[None] <= t
    st[opened] = 5
    st[opened & lay.parking_pix[None]] = 8
    st[(lay.t_build_pix[None] - 1 == t)] = 6
    st[lay.t_build_pix[None] <= t] = 4
    st[lay.t_street_pix[None] <= t] = 3
    st[np.broadcast_to(lay.water, st.shape)] = 0
    st[np.broadcast_to(lay.main_road, st.shape)] = 3
    return st


#: Measured peak memory of :func:`make_site` per pixel and date (bytes; tracemalloc, 128-256 px,
#: 4-12 dates: 108-123), rounded up, and per pixel independent of the dates.
_BYTES_PER_PIXEL_DATE = 140
_BYTES_PER_PIXEL = 400


def _available_memory() -> int | None:
    """Bytes of memory available now (psutil, else sysconf), or None when unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001  (psutil missing or unsupported platform)
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(h: int, w: int, n_dates: int) -> None:
    """Raise a ConfigError before allocating when the site would not fit in the available memory."""
    need = h * w * (n_dates * _BYTES_PER_PIXEL_DATE + _BYTES_PER_PIXEL)
    avail = _available_memory()
    if avail is None or need <= 0.8 * avail:
        return
    per_pixel = n_dates * _BYTES_PER_PIXEL_DATE + _BYTES_PER_PIXEL
    side = int((0.8 * avail / per_pixel) ** 0.5)
    dates = int((0.8 * avail / (h * w) - _BYTES_PER_PIXEL) // _BYTES_PER_PIXEL_DATE)
    fits = f"size <= {side} px at n_dates={n_dates}"
    if dates >= 1:
        fits += f", or n_dates <= {dates} at this size"
    raise ConfigError(
        f"make_site: a {h}x{w} px site with {n_dates} dates needs about {need / 2**30:.1f} GiB of "
        f"memory, but only {avail / 2**30:.1f} GiB are available; what fits: {fits}")


def _site_shape(region: str, size: int | tuple[int, int], n_dates: int, cloud_fraction: float,
                looks: float | None, water: str, modalities: Sequence[str]) -> tuple[int, int]:
    """(H, W) in px of a site, after refusing arguments :func:`make_site` cannot simulate."""
    if region not in REGIONS:
        raise ConfigError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    h, w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if min(h, w) < 16:
        raise ConfigError(f"make_site: size must be at least 16 pixels, got {size}")
    if n_dates < 1:
        raise ConfigError(f"make_site: n_dates must be >= 1, got {n_dates}")
    _check_memory(h, w, int(n_dates))
    if not 0 <= cloud_fraction < 1:
        raise ConfigError(f"make_site: cloud_fraction must be in [0, 1), got {cloud_fraction}")
    if looks is not None and looks <= 0:
        raise ConfigError(f"make_site: looks must be > 0 or None, got {looks}")
    if water not in ("river", "lake", "none"):
        raise ConfigError(f"make_site: water must be 'river', 'lake' or 'none', got {water!r}")
    bad = [m for m in modalities if m not in ("optical", "sar")]
    if bad:
        raise ConfigError(f"make_site: unknown modalities {bad}; use 'optical' and/or 'sar'")
    return h, w


def _land_cover(rng: np.random.Generator, lay: _Layout, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(land cover (T, H, W) codes, natural-land material (H, W), yard material (H, W))."""
    h, w, reg = lay.h, lay.w, lay.reg
    yard_cls = np.where(np.isin(_threshold_mix(_smooth_noise(rng, (h, w), 3), reg.yards),
                                [_MAT["lawn"], _MAT["vegetation"], _MAT["dry_vegetation"]]),
                        VEGETATION, BARE_SOIL).astype(np.uint8)
    natural_mat = _threshold_mix(_smooth_noise(rng, (h, w), max(4.0, min(h, w) / 16)), reg.background)
    natural_cls = np.where(np.isin(natural_mat, [_MAT["vegetation"], _MAT["dry_vegetation"], _MAT["lawn"]]),
                           VEGETATION, BARE_SOIL).astype(np.uint8)
    yard_mat = _threshold_mix(_smooth_noise(rng, (h, w), 3), reg.yards)
    class_choices = [np.uint8(WATER), natural_cls, np.uint8(BARE_SOIL), np.uint8(ROAD), np.uint8(BUILDING),
                     yard_cls, np.uint8(BARE_SOIL), np.uint8(VEGETATION), np.uint8(ROAD)]
    return _select(state, class_choices), natural_mat, yard_mat


def _population(rng: np.random.Generator, lay: _Layout, buildings: np.ndarray) -> np.ndarray:
    """(T, H, W) persons per pixel: buildings x density (centre, region) x per-lot factor."""
    reg, n_dates = lay.reg, buildings.shape[0]
    rc = 0.18 * min(lay.h, lay.w)
    density = reg.persons_per_building_px * (1.0 + reg.centre_boost * np.exp(-lay.dist / rc))
    lot_factor = rng.lognormal(0.0, 0.3, lay.t_lot.size).astype(np.float32)[lay.lot_id]
    commercial_factor = np.where(lay.role_pix == 1, 0.3, 1.0)        # shops: few residents
    dens = (density * lot_factor * commercial_factor).astype(np.float32)
    densify = (1.0 + 0.004 * np.arange(n_dates, dtype=np.float32))[:, None, None]
    return (buildings * dens[None] * densify).astype(np.float32)


def _site_dates(rng: np.random.Generator, reg: Region, start: str, n_dates: int, seasonal: bool):
    """(epochs, optical dates, SAR dates, greenness per date 0..1 of the vegetation)."""
    times = pd.date_range(start, periods=n_dates, freq="MS")
    opt_dates = times + pd.to_timedelta(rng.integers(0, 25, n_dates), unit="D")
    sar_dates = times + pd.to_timedelta(rng.integers(0, 12, n_dates), unit="D")
    months = np.asarray(opt_dates.month, dtype=np.float32)
    if seasonal and reg.seasonal_amplitude > 0:
        phase = 2 * np.pi * (months - reg.green_peak_month) / 12
        green = 1.0 - reg.seasonal_amplitude * 0.5 * (1 - np.cos(phase))
    else:
        green = np.ones(n_dates, np.float32)
    return times, opt_dates, sar_dates, green


def _material_index(rng: np.random.Generator, lay: _Layout, state: np.ndarray, natural_mat: np.ndarray,
                    yard_mat: np.ndarray) -> np.ndarray:
    """(T, H, W) flat indices ``material + n_materials * t`` into per-date material tables."""
    reg = lay.reg
    roof_lot = _choose(rng, reg.roofs, lay.t_lot.size)
    roof_mat = np.where(lay.role_pix == 1, _MAT["concrete"], roof_lot[lay.lot_id]).astype(np.uint8)
    street_blocks = _choose(rng, reg.streets, int(lay.block_id.max()) + 1)
    road_mat = np.where(lay.main_road, _MAT["asphalt"], street_blocks[lay.block_id]).astype(np.uint8)
    park_mat = _threshold_mix(_smooth_noise(rng, (lay.h, lay.w), 2), {"vegetation": 0.6, "lawn": 0.4})
    mat_choices = [np.uint8(_MAT["water"]), natural_mat, np.uint8(_MAT["bare_soil"]), road_mat, roof_mat,
                   yard_mat, np.uint8(_MAT["bare_soil"]), park_mat, np.uint8(_MAT[reg.parking])]
    material = _select(state, mat_choices)
    n_dates = state.shape[0]
    return material.astype(np.intp) + len(_MATERIALS) * np.arange(n_dates, dtype=np.intp)[:, None, None]


def _clouds(rng: np.random.Generator, n_dates: int, h: int, w: int, cloud_fraction: float):
    """(opacity (T, H, W) 0..1, shadow (T, H, W) bool, cloud mask (T, H, W) uint8) of soft clouds."""
    alpha = np.zeros((n_dates, h, w), np.float32)
    shadow = np.zeros((n_dates, h, w), bool)
    cloud_mask = np.zeros((n_dates, h, w), np.uint8)
    dy, dx = max(1, h // 40), max(1, w // 40)
    for t in range(n_dates):
        frac = float(np.clip(rng.normal(cloud_fraction, cloud_fraction / 2), 0, 0.95))
        if frac <= 0:
            continue
        f = _smooth_noise(rng, (h, w), max(3.0, min(h, w) / 10))
        thr = np.quantile(f, 1 - frac)
        a = np.clip((f - thr) / 0.5 + 0.3, 0, 1) * (f > thr)
        alpha[t] = a
        cloud_mask[t] = (a > 0.2).astype(np.uint8)
        shadow[t] = np.roll(np.roll(a > 0.2, dy, axis=0), dx, axis=1) & (a <= 0.2)
    return alpha, shadow, cloud_mask


def _simulate_optical(rng: np.random.Generator, lay: _Layout, flat_idx: np.ndarray, green: np.ndarray,
                      cloud_fraction: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """(reflectance (T, 13, H, W) float32 0..1, cloud mask (T, H, W) uint8) of the material maps."""
    n_dates, h, w = flat_idx.shape
    lib = np.stack([_spec(m) for m in _MATERIALS])                          # (M, 13)
    lib_t = np.repeat(lib[None], n_dates, axis=0)                            # (T, M, 13)
    for g, d in _SEASONAL.items():
        lib_t[:, _MAT[g]] = (lib[_MAT[d]][None] + green[:, None] * (lib[_MAT[g]] - lib[_MAT[d]])[None])
    lib_t *= (1.0 + 0.02 * rng.standard_normal(n_dates)).astype(np.float32)[:, None, None]
    bright = (1.0 + 0.06 * rng.standard_normal((h, w))).astype(np.float32)
    roof_var = (1.0 + 0.10 * rng.standard_normal(lay.t_lot.size)).astype(np.float32)[lay.lot_id]
    bright = np.where(lay.in_fp, bright * roof_var, bright).astype(np.float32)
    alpha = None
    cloud_mask = np.zeros((n_dates, h, w), np.uint8)
    if cloud_fraction > 0:
        alpha, shadow, cloud_mask = _clouds(rng, n_dates, h, w, cloud_fraction)
        shade = np.where(shadow, np.float32(0.55), np.float32(1.0))
    optical = np.empty((n_dates, 13, h, w), np.float32)
    cloud = _spec("cloud")
    # sensor noise: one bank of normals, each band reads it at its own random offset
    # (13x fewer random numbers; neighbouring bands see different pixels' draws)
    n_px = n_dates * h * w
    offsets = rng.choice(13 * 4099, size=13, replace=False)
    bank = rng.standard_normal(n_px + 13 * 4099, dtype=np.float32)
    bank *= np.float32(noise)
    for b in range(13):
        vals = np.take(lib_t[:, :, b].ravel(), flat_idx)
        vals *= bright
        vals += bank[offsets[b]: offsets[b] + n_px].reshape(vals.shape)
        if alpha is not None:
            vals *= shade
            vals += alpha * (cloud[b] - vals)
        np.maximum(vals, np.float32(0.0), out=vals)
        np.minimum(vals, np.float32(1.0), out=optical[:, b])
    return optical, cloud_mask


def _simulate_sar(rng: np.random.Generator, lay: _Layout, flat_idx: np.ndarray, built_t: np.ndarray,
                  green: np.ndarray, looks: float | None, inc: float) -> np.ndarray:
    """(T, 2, H, W) float32 VV/VH backscatter in dB (-45..25) of the material maps, with speckle."""
    n_dates, h, w = flat_idx.shape
    reg = lay.reg
    sar_tab = np.asarray([SAR_DB[m] for m in _MATERIALS], np.float32)       # (M, 2)
    sar_t = np.repeat(sar_tab[None], n_dates, axis=0)                        # (T, M, 2)
    natural = [i for i, m in enumerate(_MATERIALS) if not m.startswith("roof") and m != "concrete"]
    sar_t[:, natural] += np.float32(-0.15 * (inc - 37.0))
    for g in _SEASONAL:
        sar_t[:, _MAT[g], 0] += (1.5 * (green - 1.0)).astype(np.float32)
        sar_t[:, _MAT[g], 1] += (2.5 * (green - 1.0)).astype(np.float32)
    dtheta = ((lay.angle - _S1_HEADING_DEG + 45.0) % 90.0) - 45.0
    card = reg.cardinal_gain_db * np.exp(-(dtheta / 12.0) ** 2)
    b_lot = rng.normal(0.0, 1.5, lay.t_lot.size).astype(np.float32)[lay.lot_id]
    bvv = np.float32(reg.building_vv_db + card) + b_lot                       # (H, W)
    texture = rng.normal(0.0, 0.8, (2, h, w)).astype(np.float32)
    sar = np.empty((n_dates, 2, h, w), np.float32)
    # speckle: multiplicative gamma(looks, 1/looks) on linear power, i.e. in dB
    # 10 log10(power * g) = dB + 10 log10(g); VV and VH read one bank at different offsets
    speckle_db = None
    if looks is not None:
        g = rng.gamma(looks, 1.0 / looks, n_dates * h * w + 7919).astype(np.float32)
        speckle_db = np.float32(10.0) * np.log10(np.maximum(g, np.float32(1e-6)))
    for p in range(2):
        vals = np.take(sar_t[:, :, p].ravel(), flat_idx)
        bval = bvv if p == 0 else bvv - np.float32(7.0)
        vals = np.where(built_t, bval[None], vals)
        vals += texture[p]
        if speckle_db is not None:
            vals += speckle_db[p * 7919: p * 7919 + vals.size].reshape(vals.shape)
        np.maximum(vals, np.float32(-45.0), out=vals)
        np.minimum(vals, np.float32(25.0), out=sar[:, p])
    return sar


def _truth_vars(land_cover: np.ndarray, cloud_mask: np.ndarray, growth_type: np.ndarray) -> dict[str, xr.Variable]:
    """The twin's extra ground-truth variables ``land_cover``, ``cloud_mask``, ``growth_type``."""
    def flags(table: dict[int, str]) -> dict[str, Any]:
        return {"flag_values": np.array(sorted(table), np.uint8),
                "flag_meanings": " ".join(table[k] for k in sorted(table))}

    return {
        "land_cover": xr.Variable(("time", "y", "x"), land_cover,
                                  {**flags(LAND_COVER_CLASSES), "long_name": "land-cover class (ground truth)"}),
        "cloud_mask": xr.Variable(("time", "y", "x"), cloud_mask, {"long_name": "1 = cloud in the optical image"}),
        "growth_type": xr.Variable(("y", "x"), growth_type,
                                   {**flags(GROWTH_TYPES), "long_name": "how each building pixel was added"}),
    }


def _twin_scene(arrays: dict[str, Any], dates: tuple[Any, Any, Any], extra: dict[str, xr.Variable],
                params: dict[str, Any], *, site: str, region: str, split: str, crs: str | None,
                origin: tuple[float, float], validate: bool) -> xr.Dataset:
    """The twin as a schema scene, its generator arguments recorded in ``source`` and attrs."""
    from affine import Affine

    times, opt_dates, sar_dates = dates
    transform = Affine(params["pixel_size"], 0.0, origin[0], 0.0, -params["pixel_size"], origin[1])
    scene = make_scene(
        optical=arrays.get("optical"), sar=arrays.get("sar"), buildings=arrays["buildings"], change=arrays["change"],
        population=arrays["population"], times=times,
        optical_dates=opt_dates if arrays.get("optical") is not None else None,
        sar_dates=sar_dates if arrays.get("sar") is not None else None, transform=transform, crs=crs, site=site,
        region=region, dataset="synthetic", split=split,
        source="urbankit.data.synthetic.make_site(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")",
        licence="MIT (synthetic data generated by urbankit)",
        extra_vars=extra,
        attrs={"generator": "urbankit.data.synthetic.make_site", "seed": params["seed"],
               "looks": params["looks"], "cloud_fraction": params["cloud_fraction"], "growth": params["growth"],
               "incidence_deg": params["incidence_deg"], "grid_angle_deg": params["grid_angle_deg"]},
        validate=False,
    )
    if validate:
        from .schema import validate_scene

        validate_scene(scene, expect_crs=crs is not None)
    return scene


def make_site(site: str = "twin-01", size: int | tuple[int, int] = 256, n_dates: int = 12,
              region: str = "north_america", seed: int = 0, growth: float = 0.03,
              growth_mix: tuple[float, float, float] = (0.4, 0.4, 0.2), initial_built: float = 0.3,
              cloud_fraction: float = 0.0, looks: float | None = 4.4, pixel_size: float = 10.0,
              crs: str | None = "EPSG:32633", origin: tuple[float, float] = (500000.0, 5000000.0),
              start: str = "2019-01-01", noise: float = 0.005, seasonal: bool = True, water: str = "river",
              incidence_deg: float | None = None, modalities: Sequence[str] = ("optical", "sar"),
              split: str = "train", validate: bool = True) -> xr.Dataset:
    """Generate a synthetic city that grows over time, seen by Sentinel-2 and Sentinel-1.

    The city (:class:`_Layout`): main roads, a street grid (by region), blocks of lots with
    buildings, parks, commercial blocks, a river or lake, natural land around. Over the monthly
    epochs it grows by **infill**, **extension** and **leapfrog** (``growth_mix``), ``growth`` x
    (buildings so far) lots per date; a lot is a construction site the month before its building
    appears; buildings never disappear. The sensors: :func:`_simulate_optical` and
    :func:`_simulate_sar` (materials, seasons, noise, clouds, double bounce, speckle).

    Args:
        site: site name (``attrs["site"]``).
        size: side in pixels, or (height, width).
        n_dates: number of monthly epochs.
        region: ``north_america``, ``sub_saharan_africa`` or ``south_asia`` (see :data:`REGIONS`).
        seed: random seed; the same arguments give identical arrays.
        growth: new building lots per date as a fraction of the lots built so far.
        growth_mix: relative weights of (infill, extension, leapfrog).
        initial_built: fraction of the blocks that are built up at the first date.
        cloud_fraction: mean cloud cover per optical date (0 = clear).
        looks: equivalent number of looks of the speckle (None: no speckle).
        pixel_size: metres per pixel (geometry is in pixels; this sets the transform).
        crs: CRS of the made-up grid (None: unreferenced).
        origin: (x, y) of the upper-left corner in the CRS.
        start: first epoch; epochs are month starts.
        noise: std of the optical sensor noise (reflectance units).
        seasonal: vegetation browns and greens over the year.
        water: ``"river"``, ``"lake"`` or ``"none"``.
        incidence_deg: SAR incidence angle (default: the region's).
        modalities: which of ``optical``, ``sar`` to simulate.
        split: ``attrs["split"]``.
        validate: run the schema validator on the result.

    Returns:
        A schema scene (``optical``, ``sar``, ``buildings``, ``change``, ``population``) plus
        ``land_cover`` (time, y, x) uint8 (codes :data:`LAND_COVER_CLASSES`), ``cloud_mask``
        (time, y, x) uint8 and ``growth_type`` (y, x) uint8 (codes :data:`GROWTH_TYPES`: how each
        building pixel was added).
    """
    h, w = _site_shape(region, size, n_dates, cloud_fraction, looks, water, modalities)
    reg = REGIONS[region]
    rng = np.random.default_rng([int(seed), sum(map(ord, region))])
    lay = _Layout(rng, h, w, reg, n_dates, growth, growth_mix, initial_built, water)
    state = _state_stack(lay, n_dates)
    built_t = lay.t_build_pix[None] <= np.arange(n_dates, dtype=np.int32)[:, None, None]
    arrays: dict[str, Any] = {"buildings": built_t.astype(np.float32),
                              "change": (built_t[-1] & ~built_t[0]).astype(np.uint8)}
    land_cover, natural_mat, yard_mat = _land_cover(rng, lay, state)
    arrays["population"] = _population(rng, lay, arrays["buildings"])
    times, opt_dates, sar_dates, green = _site_dates(rng, reg, start, n_dates, seasonal)
    flat_idx = _material_index(rng, lay, state, natural_mat, yard_mat)
    del state
    cloud_mask = np.zeros((n_dates, h, w), np.uint8)
    if "optical" in modalities:
        arrays["optical"], cloud_mask = _simulate_optical(rng, lay, flat_idx, green, cloud_fraction, noise)
    if "sar" in modalities:
        inc = reg.incidence_deg if incidence_deg is None else float(incidence_deg)
        arrays["sar"] = _simulate_sar(rng, lay, flat_idx, built_t, green, looks, inc)
    params = dict(seed=int(seed), growth=float(growth), growth_mix=list(map(float, growth_mix)),
                  initial_built=float(initial_built), cloud_fraction=float(cloud_fraction),
                  looks=float(looks) if looks is not None else "none", pixel_size=float(pixel_size),
                  noise=float(noise), seasonal=int(seasonal), water=water,
                  incidence_deg=float(reg.incidence_deg if incidence_deg is None else incidence_deg),
                  grid_angle_deg=round(float(lay.angle), 3))
    return _twin_scene(arrays, (times, opt_dates, sar_dates), _truth_vars(land_cover, cloud_mask, lay.gtype_pix),
                       params, site=site, region=region, split=split, crs=crs, origin=origin, validate=validate)


def make_sites(n_sites: int, *, regions: Sequence[str] = ("north_america",), seed: int = 0,
               splits: Sequence[str] | None = None, **kwargs: Any) -> list[xr.Dataset]:
    """Several twins: site ``i`` uses ``regions[i % len(regions)]`` and seed ``seed + i``.

    ``splits`` gives each site's split (default: all ``train``); other keyword arguments go to
    :func:`make_site`. Sites are named ``twin-<region>-<i>``.
    """
    out = []
    default_split = kwargs.pop("split", "train")
    for i in range(n_sites):
        region = regions[i % len(regions)]
        split = splits[i] if splits is not None else default_split
        out.append(make_site(site=f"twin-{region}-{i:02d}", region=region, seed=seed + i, split=split,
                             **kwargs))
    return out
