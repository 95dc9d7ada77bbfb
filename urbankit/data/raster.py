"""The one raster module of urbankit: grids, reading, warping and coverage (rasterio underneath).

Every reader (OSCD, SpaceNet7-S1S2, GeoTIFF pairs and series, the sample writer) goes through
these functions, so that a raster is described, read, resampled and checked for overlap in one
way, with one set of error messages:

- :class:`Grid` describes a pixel grid (shape, affine transform, CRS); :meth:`Grid.coords` and
  :func:`pixel_centres` give pixel-centre coordinates from an affine (the schema's ``y``/``x``);
- :func:`read_raster` reads a GeoTIFF as ``(count, rows, cols)`` with its grid and metadata, and
  :func:`read_grid` reads only the metadata; both turn any GDAL failure into a
  :class:`~urbankit.errors.DataFormatError` naming the file;
- :func:`warp_to_grid` reprojects an array from one grid onto another with
  ``rasterio.warp.reproject`` (NaN = no data on both sides);
- :func:`coverage` is the fraction of one grid's area covered by another grid's footprint (in
  the first grid's CRS), and :func:`require_coverage` raises when it is below a threshold:
  this is how readers refuse a band with a wrong CRS, a date-2 raster without overlap or
  cropped to a corner, or Sentinel-1 files of another city, instead of returning NaN.

Readers never import torch.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = [
    "DEFAULT_MIN_COVERAGE",
    "RESAMPLING",
    "Grid",
    "coverage",
    "pixel_centres",
    "read_grid",
    "read_raster",
    "require_coverage",
    "resampling_method",
    "same_grid",
    "warp_to_grid",
]

#: Resampling names accepted by :func:`warp_to_grid` (rasterio.enums.Resampling members).
RESAMPLING: tuple[str, ...] = ("nearest", "bilinear", "cubic", "average", "lanczos")

#: Default minimum fraction of the reference grid that a raster must cover (readers' default).
#: Real OSCD date-2 rasters are a few pixels smaller than date 1 (coverage > 0.97); a raster of
#: another city, a wrong CRS or a crop to a corner covers far less.
DEFAULT_MIN_COVERAGE = 0.9


def pixel_centres(transform, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a north-up grid.

    Args:
        transform: affine transform (``affine.Affine``; rotation terms must be 0).
        shape: (rows, cols).

    Returns:
        ``(y, x)``: float64 arrays of length rows and cols, in the units of the CRS.
    """
    t = transform
    rows, cols = shape
    x = t.c + t.a * (np.arange(cols) + 0.5)
    y = t.f + t.e * (np.arange(rows) + 0.5)
    return y, x


@dataclass(frozen=True)
class Grid:
    """A pixel grid: ``shape`` (rows, cols), affine ``transform`` and ``crs`` (rasterio objects)."""

    shape: tuple[int, int]
    transform: object
    crs: object

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(y, x)`` in the CRS, as float64 arrays (see :func:`pixel_centres`)."""
        return pixel_centres(self.transform, self.shape)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the grid's footprint in its CRS."""
        from rasterio.transform import array_bounds

        rows, cols = self.shape
        west, south, east, north = array_bounds(rows, cols, self.transform)
        return float(west), float(south), float(east), float(north)

    @property
    def n_pixels(self) -> int:
        """Number of pixels (rows times cols)."""
        return int(self.shape[0]) * int(self.shape[1])


def _open(path: Path):
    import rasterio

    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    return rasterio.open(path)


def _info(src) -> dict:
    return {"nodata": src.nodata, "descriptions": src.descriptions, "dtype": src.dtypes[0],
            "count": src.count}


def read_grid(path: str | os.PathLike) -> tuple[Grid, dict]:
    """The grid and metadata of a raster without reading its pixels.

    Returns:
        ``(grid, info)``; ``info`` holds ``nodata``, ``descriptions``, ``dtype`` and ``count``.

    Raises:
        DataFormatError: naming the file when it is missing or not a raster.
    """
    import rasterio

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=rasterio.errors.NotGeoreferencedWarning)
            with _open(path) as src:
                return Grid((src.height, src.width), src.transform, src.crs), _info(src)
    except DataFormatError:
        raise
    except Exception as exc:  # noqa: BLE001  (rasterio/GDAL raise many types: one clear error)
        raise DataFormatError(f"{path}: cannot be read as a GeoTIFF ({type(exc).__name__}: {exc})") from None


def read_raster(path: str | os.PathLike, bands: Sequence[int] | None = None) -> tuple[np.ndarray, Grid, dict]:
    """Read a GeoTIFF (all bands or the 1-based ``bands``) with its grid.

    Returns:
        ``(array, grid, info)``: array (count, rows, cols) in the file's dtype; ``info`` holds
        ``nodata``, ``descriptions``, ``dtype`` and ``count``.

    Raises:
        DataFormatError: naming the file for any GDAL/rasterio failure (missing, truncated, not
            a raster) or a band index the file does not have.
    """
    import rasterio

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=rasterio.errors.NotGeoreferencedWarning)
            with _open(path) as src:
                idx = list(bands) if bands is not None else list(range(1, src.count + 1))
                if any(i < 1 or i > src.count for i in idx):
                    raise DataFormatError(f"{path}: has {src.count} band(s), asked for bands {idx}")
                arr = src.read(idx)
                grid = Grid((src.height, src.width), src.transform, src.crs)
                info = _info(src)
    except DataFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(f"{path}: cannot be read as a GeoTIFF ({type(exc).__name__}: {exc})") from None
    return arr, grid, info


def resampling_method(name: str):
    """The ``rasterio.enums.Resampling`` member called ``name`` (one of :data:`RESAMPLING`)."""
    from rasterio.enums import Resampling

    if name not in RESAMPLING:
        raise ConfigError(f"resampling must be one of {RESAMPLING}, got {name!r}")
    return getattr(Resampling, name)


def same_grid(a: Grid, b: Grid, tol: float = 1e-9) -> bool:
    """True when two grids have the same shape, CRS and (to ``tol`` CRS units) the same transform."""
    if tuple(a.shape) != tuple(b.shape) or (a.crs != b.crs):
        return False
    return bool(np.allclose(tuple(a.transform)[:6], tuple(b.transform)[:6], rtol=0, atol=tol))


def warp_to_grid(arr: np.ndarray, src: Grid, dst: Grid, resampling: str = "bilinear") -> np.ndarray:
    """Resample a float array (rows, cols) or (n, rows, cols) from grid ``src`` onto ``dst``.

    NaN marks no data on input and output (pixels of ``dst`` outside ``src`` become NaN).
    Identical grids are copied without resampling. A ``src`` without CRS is taken to be in
    ``dst``'s CRS.

    Returns:
        float32 array (dst rows, dst cols) or (n, dst rows, dst cols).
    """
    from rasterio.warp import reproject

    arr = np.asarray(arr, dtype=np.float32)
    if same_grid(src, dst):
        return arr.copy()
    squeeze = arr.ndim == 2
    a3 = arr[None] if squeeze else arr
    out = np.full((a3.shape[0], *dst.shape), np.nan, dtype=np.float32)
    src_crs = src.crs if src.crs is not None else dst.crs
    method = resampling_method(resampling)
    for i in range(a3.shape[0]):
        reproject(source=a3[i], destination=out[i], src_transform=src.transform, src_crs=src_crs,
                  src_nodata=np.nan, dst_transform=dst.transform, dst_crs=dst.crs, dst_nodata=np.nan,
                  resampling=method)
    return out[0] if squeeze else out


def _bounds_in(grid: Grid, crs) -> tuple[float, float, float, float] | None:
    """``grid``'s footprint in ``crs`` (densified edges), or None when it cannot be projected."""
    from rasterio.warp import transform_bounds

    b = grid.bounds
    if grid.crs is None or crs is None or grid.crs == crs:
        return b
    try:
        out = transform_bounds(grid.crs, crs, *b, densify_pts=21)
    except Exception:  # noqa: BLE001  (a projection failure means no usable overlap)
        return None
    return out if all(np.isfinite(out)) else None


def coverage(src: Grid, ref: Grid) -> float:
    """Fraction (0..1) of the area of ``ref`` that the footprint of ``src`` covers.

    The footprint of ``src`` is projected into ``ref``'s CRS (edges densified) and intersected
    with ``ref``'s bounds. A grid without CRS is taken to be in the other grid's CRS. A
    footprint that cannot be projected covers nothing.
    """
    b = _bounds_in(src, ref.crs)
    if b is None:
        return 0.0
    left, bottom, right, top = b
    rl, rb, rr, rt = ref.bounds
    w = min(right, rr) - max(left, rl)
    h = min(top, rt) - max(bottom, rb)
    area = (rr - rl) * (rt - rb)
    if w <= 0 or h <= 0 or area <= 0:
        return 0.0
    return float(min(1.0, (w * h) / area))


def require_coverage(src: Grid, ref: Grid, path: str | os.PathLike, *, ref_name: str,
                     min_coverage: float = DEFAULT_MIN_COVERAGE) -> float:
    """Raise unless the raster at ``path`` (grid ``src``) covers ``min_coverage`` of ``ref``.

    Args:
        src: grid of the raster being aligned.
        ref: the reference grid it is aligned onto.
        path: the raster's file (named in the error).
        ref_name: what the reference is (a file or "the date-1 B02 grid"), named in the error.
        min_coverage: minimum covered fraction of ``ref``'s area (0..1).

    Returns:
        The coverage fraction.

    Raises:
        ConfigError: when ``min_coverage`` is not in [0, 1].
        DataFormatError: naming the file, both CRSs and the coverage when it is too small.
    """
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise ConfigError(f"min_coverage must be in [0, 1], got {min_coverage!r}")
    frac = coverage(src, ref)
    if frac < min_coverage or frac == 0.0:
        what = "does not overlap" if frac == 0.0 else f"covers only {100 * frac:.1f} % of"
        raise DataFormatError(
            f"{path}: its footprint (CRS {src.crs}) {what} the reference grid {ref_name} (CRS {ref.crs}, "
            f"{ref.shape[0]}x{ref.shape[1]} px; the file is {src.shape[0]}x{src.shape[1]} px); at least "
            f"{100 * min_coverage:.0f} % is required (min_coverage=). Check that the file belongs to "
            "the same site and that its CRS is right")
    return frac
