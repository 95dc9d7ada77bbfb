"""File writers shared by the readers' sample writers (deterministic bytes: no timestamps).

Each reader writes its own embedded sample (``Reader.write_sample``); these are the helpers they
share. :mod:`urbankit.data.samples` orchestrates them and keeps the manifest.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

__all__ = ["GTIFF_FLOAT", "GTIFF_INT", "block_mean", "grid", "scene_georef", "write_json", "write_png",
           "write_tif"]

#: GeoTIFF creation options of integer and float samples
GTIFF_INT = {"driver": "GTiff", "compress": "deflate", "predictor": 2, "zlevel": 9, "interleave": "band"}
GTIFF_FLOAT = {"driver": "GTiff", "compress": "deflate", "predictor": 3, "zlevel": 9, "interleave": "band"}


def write_tif(path: Path, arr: np.ndarray, transform=None, crs=None, descriptions=None) -> None:
    """Write (bands, rows, cols) or (rows, cols) deterministically (deflate, no timestamps)."""
    import rasterio

    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    opts = dict(GTIFF_FLOAT if arr.dtype.kind == "f" else GTIFF_INT)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=rasterio.errors.NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(
                path, "w", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype,
                crs=crs, transform=transform, **opts) as dst:
            dst.write(arr)
            for i, d in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, d)


def write_png(path: Path, arr: np.ndarray) -> None:
    """Write an (rows, cols[, channels]) uint8 array as PNG deterministically."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr)).save(path, format="PNG", optimize=False, compress_level=9)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON (UTF-8, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of the last two axes (sizes must be multiples of k)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def grid(transform, shape, crs):
    """A :class:`~urbankit.data.raster.Grid` from (transform, shape, crs)."""
    from .raster import Grid

    return Grid(tuple(shape), transform, crs)


def scene_georef(scene):
    """(transform, crs) of a scene through rioxarray."""
    return scene.rio.transform(), scene.rio.crs
