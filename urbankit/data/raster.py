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
    "as_crs",
    "coverage",
    "grid_of",
    "image_size",
    "mask_to_grid",
    "pixel_centres",
    "read_image",
    "read_grid",
    "read_raster",
    "require_coverage",
    "require_same_grid",
    "resampling_method",
    "same_crs",
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

    @property
    def res(self) -> tuple[float, float]:
        """(x, y) cell size in CRS units (positive)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def is_geographic(self) -> bool:
        """True for a latitude/longitude CRS (cell areas then vary per row)."""
        return bool(self.crs is not None and self.crs.is_geographic)

    def row_centres(self) -> np.ndarray:
        """(rows,) y coordinates of the pixel centres."""
        return self.coords()[0]

    def col_centres(self) -> np.ndarray:
        """(cols,) x coordinates of the pixel centres."""
        return self.coords()[1]


def as_crs(crs):
    """``crs`` as a ``rasterio.crs.CRS`` (anything ``CRS.from_user_input`` reads), or None."""
    if crs is None:
        return None
    from rasterio.crs import CRS

    return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)


def grid_of(obj=None, *, transform=None, crs=None, shape=None) -> Grid:
    """The :class:`Grid` of a DataArray (through rioxarray), of a numpy array, or of arguments.

    Args:
        obj: an ``xarray.DataArray`` (its last two dims are y, x), a numpy array (only its shape
            is used) or None.
        transform: affine transform (``affine.Affine`` or 6 numbers); overrides the DataArray's.
            Required for a numpy array.
        crs: anything rasterio understands; overrides the DataArray's.
        shape: (rows, cols) when ``obj`` is None.

    Raises:
        ConfigError: no transform is known, or it is rotated/skewed.
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
    return Grid((int(shape[0]), int(shape[1])), transform, as_crs(crs))


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


def read_raster(path: str | os.PathLike, bands: Sequence[int] | None = None,
                window=None) -> tuple[np.ndarray, Grid, dict]:
    """Read a GeoTIFF (all bands or the 1-based ``bands``) with its grid.

    Args:
        path: the raster file.
        bands: 1-based band indices; None = all.
        window: ``((row0, row1), (col0, col1))`` to read a window only; the returned grid is
            then the window's.

    Returns:
        ``(array, grid, info)``: array (count, rows, cols) in the file's dtype; ``info`` holds
        ``nodata``, ``descriptions``, ``dtype`` and ``count``.

    Raises:
        DataFormatError: naming the file for any GDAL/rasterio failure (missing, truncated, not
            a raster) or a band index the file does not have.
    """
    import rasterio
    from rasterio.windows import Window

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=rasterio.errors.NotGeoreferencedWarning)
            with _open(path) as src:
                idx = list(bands) if bands is not None else list(range(1, src.count + 1))
                if any(i < 1 or i > src.count for i in idx):
                    raise DataFormatError(f"{path}: has {src.count} band(s), asked for bands {idx}")
                win = None if window is None else Window.from_slices(*window)
                arr = src.read(idx, window=win)
                transform = src.transform if win is None else src.window_transform(win)
                grid = Grid(tuple(arr.shape[1:]), transform, src.crs)
                info = _info(src)
    except DataFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(f"{path}: cannot be read as a GeoTIFF ({type(exc).__name__}: {exc})") from None
    return arr, grid, info


_TIFF = (".tif", ".tiff")


def _read_picture(path: Path) -> np.ndarray:
    """(channels, rows, cols) of a PNG/JPEG/BMP through Pillow (palette -> RGB(A), 1-bit -> L)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            if img.mode == "1":
                img = img.convert("L")
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(f"{path}: cannot read image ({exc}); the file is truncated or not an image"
                              ) from exc
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


def read_image(path: str | os.PathLike, window=None) -> np.ndarray:
    """(channels, rows, cols) of an image file: GeoTIFF through rasterio, PNG/JPEG through Pillow.

    Args:
        path: the file (``.tif``/``.tiff`` or anything Pillow reads).
        window: ``((row0, row1), (col0, col1))`` to return a window only.

    Raises:
        DataFormatError: naming the file when it is missing, truncated or not an image.
    """
    path = Path(path)
    if path.suffix.lower() in _TIFF:
        return read_raster(path, window=window)[0]
    arr = _read_picture(path)
    if window is not None:
        (r0, r1), (c0, c1) = window
        arr = arr[:, r0:r1, c0:c1]
    return arr


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(rows, cols) of an image file from its header only (GeoTIFF or anything Pillow reads)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.suffix.lower() in _TIFF:
        return tuple(read_grid(path)[0].shape)
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(f"{path}: cannot read image header ({exc})") from exc
    return h, w


def resampling_method(name: str):
    """The ``rasterio.enums.Resampling`` member called ``name`` (one of :data:`RESAMPLING`)."""
    from rasterio.enums import Resampling

    if name not in RESAMPLING:
        raise ConfigError(f"resampling must be one of {RESAMPLING}, got {name!r}")
    return getattr(Resampling, name)


def same_crs(a: Grid, b: Grid) -> bool:
    """True when both grids have the same CRS, or neither has one."""
    if a.crs is None or b.crs is None:
        return a.crs is None and b.crs is None
    return a.crs == b.crs


def require_same_grid(name_a: str, a: Grid, name_b: str, b: Grid) -> None:
    """Raise DataFormatError naming both rasters unless they share shape, CRS and transform.

    The transforms must agree to 1e-6 of a cell.
    """
    if tuple(a.shape) != tuple(b.shape):
        raise DataFormatError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} differ in shape")
    if not same_crs(a, b):
        raise DataFormatError(
            f"{name_a} is in {a.crs} but {name_b} in {b.crs}: both dates must share one grid "
            "(reproject one onto the other first)")
    tol = 1e-6 * max(a.res)
    if not np.allclose(tuple(a.transform)[:6], tuple(b.transform)[:6], atol=tol, rtol=0):
        raise DataFormatError(
            f"{name_a} and {name_b} have different transforms ({tuple(a.transform)[:6]} vs "
            f"{tuple(b.transform)[:6]}): both dates must share one grid")


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


def _repeat_runs(arr: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take(arr, idx, axis)`` for a monotone ``idx``, via np.repeat of its runs."""
    if idx.size == 0 or np.any(np.diff(idx) < 0):
        return np.take(arr, idx, axis=axis)
    starts = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    counts = np.diff(np.r_[starts, idx.size])
    return np.repeat(np.take(arr, idx[starts], axis=axis), counts, axis=axis)


def mask_to_grid(mask: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """Sample a bool (rows, cols) mask onto grid ``dst`` at its pixel centres (nearest pixel).

    Same CRS: separable index arithmetic (no full-size coordinate arrays). Different CRS:
    :func:`warp_to_grid` with nearest resampling. Outside the source: False.

    Returns:
        bool array of ``dst.shape``.
    """
    if same_crs(src, dst):
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
    warped = warp_to_grid(mask.astype(np.float32), src, dst, resampling="nearest")
    return np.nan_to_num(warped, nan=0.0) >= 0.5  # outside the source grid: NaN -> False


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
