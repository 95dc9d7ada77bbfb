"""A scene cache: store a scene a reader has built (read, resampled, aligned) and load it back.

Reading a real OSCD city means opening 26 band files, resampling 20/60 m bands and date 2 onto
the date-1 grid and warping Sentinel-1: a second read of the same city with the same options
should not redo that. :func:`cached_scene` keys a scene by

- the reader name, the site and the reader options (bands, orbit, resampling ...),
- the size and modification time (ns) of every source file, and the cache format version,

and stores it as a zarr (v2) store ``<cache_dir>/<reader>/<site>-<key>.zarr`` with one
uncompressed chunk per variable: any zarr reader opens it (``xarray.open_zarr``), and
:func:`load_scene` reads it with plain numpy, which is several times faster than going through
zarr-python on a busy machine (a real OSCD city takes 10-80 MB). The store is written under a
temporary name and renamed into place (an interrupted write never leaves a store that looks
complete). A changed source file or option gives a new key, so a stale entry is never
read; :func:`clear_cache` removes old entries.

The cache folder is ``cache_dir`` when given, else ``$URBANKIT_CACHE``, else
``~/.cache/urbankit/scenes`` (``$XDG_CACHE_HOME`` respected). Data folders are often
read-only (a shared copy of a dataset), so the cache is not written next to the data unless
you pass that folder as ``cache_dir``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import DataFormatError

__all__ = [
    "CACHE_VERSION",
    "cache_key",
    "cache_path",
    "cached_scene",
    "clear_cache",
    "default_cache_dir",
    "load_scene",
    "save_scene",
]

#: Bump when the stored layout changes: old entries then miss instead of loading wrongly.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$URBANKIT_CACHE``, else ``$XDG_CACHE_HOME/urbankit/scenes``, else ``~/.cache/urbankit/scenes``."""
    env = os.environ.get("URBANKIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "urbankit" / "scenes"


def _file_fingerprint(path: Path) -> list:
    try:
        st = Path(path).stat()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot stat a source file of the scene ({exc})") from None
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def cache_key(reader: str, site: str, options: dict, files: Iterable[str | os.PathLike]) -> str:
    """A 20-hex-digit key from reader, site, options (JSON) and source file paths/sizes/mtimes."""
    payload = {
        "version": CACHE_VERSION, "reader": reader, "site": site, "options": options,
        "files": sorted(_file_fingerprint(Path(f)) for f in files),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cache_path(reader: str, site: str, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the entry for (reader, site, key) lives."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    safe_site = "".join(c if c.isalnum() or c in "-_." else "_" for c in site)
    return base / reader / f"{safe_site}-{key}.zarr"


def save_scene(scene, path: str | os.PathLike) -> Path:
    """Write ``scene`` as a zarr store at ``path`` atomically (temp folder + rename).

    The CRS travels as the ``spatial_ref`` coordinate that rioxarray writes. An existing store
    at ``path`` is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    ds = scene.copy()
    for name in ds.variables:  # drop encodings inherited from a source file (chunks, compressors)
        ds[name].encoding = {}
    # one uncompressed chunk per variable: a valid zarr v2 store that :func:`load_scene` reads
    # with plain numpy (see _read_plain_zarr); a cache trades disk for speed
    encoding = {name: {"chunks": ds[name].shape, "compressors": None} for name in ds.variables}
    try:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2, encoding=encoding)
        if path.exists():
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, path)
            except OSError:
                if not path.is_dir():  # not "another process stored the same entry meanwhile"
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _read_plain_zarr(path: Path):
    """Read a zarr v2 store whose arrays are each ONE uncompressed, unfiltered C-order chunk (what
    :func:`save_scene` writes) with ``numpy.fromfile`` and decode it like xarray does (CF).

    zarr-python 3 routes every read through an asyncio loop in another thread; on a busy machine
    those hand-offs cost more than reading the bytes. Returns None when the store is not of
    that plain form (then :func:`load_scene` uses ``xarray.open_zarr``).
    """
    import numpy as np
    import xarray as xr

    meta = json.loads((path / ".zmetadata").read_text(encoding="utf-8"))["metadata"]
    variables = {}
    for key, za in meta.items():
        if not key.endswith("/.zarray"):
            continue
        name = key[: -len("/.zarray")]
        shape = tuple(za["shape"])
        if (za.get("compressor") is not None or za.get("filters") or tuple(za["chunks"]) != shape
                or za.get("order", "C") != "C" or za.get("zarr_format") != 2):
            return None
        attrs = dict(meta.get(f"{name}/.zattrs", {}))
        dims = attrs.pop("_ARRAY_DIMENSIONS")
        dtype = np.dtype(za["dtype"])
        fill = za.get("fill_value")
        if isinstance(fill, str):  # JSON spelling of float specials
            fill = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(fill, fill)
        chunk = path / name / za.get("dimension_separator", ".").join(["0"] * max(len(shape), 1))
        if chunk.is_file():
            data = np.fromfile(chunk, dtype=dtype)
            if data.size != int(np.prod(shape)):
                raise DataFormatError(f"{chunk}: {data.size} values, expected {shape}")
            data = data.reshape(shape)
        else:  # zarr leaves chunks equal to the fill value unwritten
            data = np.full(shape, 0 if fill is None else fill, dtype=dtype)
        if fill is not None:
            attrs["_FillValue"] = fill
        variables[name] = xr.Variable(dims, data, attrs)
    ds = xr.Dataset(variables, attrs=meta.get(".zattrs", {}))
    return xr.decode_cf(ds)


def load_scene(path: str | os.PathLike):
    """Load a scene stored by :func:`save_scene` fully into memory (CRS restored)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    path = Path(path)
    if not path.is_dir():
        raise DataFormatError(f"{path}: no cached scene here")
    try:
        scene = _read_plain_zarr(path)
        if scene is None:
            with xr.open_zarr(path, consolidated=True, chunks=None) as ds:  # numpy, no dask
                scene = ds.load()
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(f"{path}: cannot read the cached scene ({type(exc).__name__}: {exc})") from None
    for name in scene.variables:  # forget the store's chunking/compressors (a later save picks its own)
        scene[name].encoding = {}
    # the CRS comes back through the ``spatial_ref`` coordinate (and each variable's grid_mapping);
    # no rio.write_crs here: it deep-copies every array
    return scene


def cached_scene(reader: str, site: str, options: dict, files: Iterable[str | os.PathLike],
                 build: Callable[[], object], *, cache_dir: str | os.PathLike | None = None,
                 refresh: bool = False):
    """Return the cached scene for (reader, site, options, files) or build, store and return it.

    Args:
        reader: reader name (``"oscd"``, ``"spacenet7"``) - the cache sub-folder.
        site: site name (part of the file name).
        options: JSON-serialisable reader options that change the result.
        files: every source file the scene is built from (their size and mtime enter the key).
        build: function that reads the scene from the source files.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        refresh: rebuild and overwrite even when an entry exists.
    """
    key = cache_key(reader, site, options, files)
    path = cache_path(reader, site, key, cache_dir)
    if path.is_dir() and not refresh:
        try:
            scene = load_scene(path)
            scene.attrs["cache"] = "hit"
            return scene
        except DataFormatError:
            shutil.rmtree(path, ignore_errors=True)  # a damaged entry: rebuild it
    scene = build()
    save_scene(scene, path)
    out = scene.copy()
    out.attrs["cache"] = "miss"
    return out


def clear_cache(cache_dir: str | os.PathLike | None = None, reader: str | None = None) -> int:
    """Delete cached scenes (all, or one reader's); returns the number of entries removed."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folders = [base / reader] if reader else ([p for p in base.iterdir() if p.is_dir()] if base.is_dir() else [])
    n = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.suffix in (".zarr", ".tmp", ".old") or entry.name.endswith((".tmp", ".old")):
                shutil.rmtree(entry, ignore_errors=True)
                n += 1
    return n
