"""A scene cache: store a scene a reader has built (read, resampled, aligned) and load it back.

Reading a real OSCD city means opening 26 band files, resampling 20/60 m bands and date 2 onto
the date-1 grid and warping Sentinel-1: a second read of the same city with the same options
should not redo that. :func:`cached_scene` keys a scene by

- the reader name, the site and the reader options (bands, orbit, resampling ...),
- a **content hash** (sha256) of every source file (the split files included), and the cache
  format version: a file rewritten with its old size and modification time restored still
  gives a new key (hashes are remembered per process while a file's size, mtime, ctime and
  inode stay the same, so a file is hashed once per session),

and stores it with the zarr library (``xarray.Dataset.to_zarr``, zarr format 2, consolidated
metadata, one chunk per variable) as ``<cache_dir>/<reader>/<site>-<key>.zarr``, plus a
``urbankit-digests.json`` with the sha256 of every stored array. :func:`load_scene` opens the
store with ``xarray.open_zarr`` and checks each array against its digest, so a chunk
overwritten with garbage (even of the same size) is never served: the entry is rebuilt.

The store is written under a temporary name ``.<name>.<pid>.<random>.tmp`` and renamed into
place (an interrupted write never leaves a store that looks complete); temporary folders left
by a killed process (dead pid, or older than :data:`STALE_TMP_SECONDS`) are removed by the next
:func:`cached_scene` in that folder. A cache folder that cannot be written (read-only) is
detected **before** the scene is built: the scene is then built without caching and an
:class:`~urbankit.errors.UrbankitWarning` says where to point the cache.

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
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import DataFormatError, UrbankitWarning

__all__ = [
    "CACHE_VERSION",
    "STALE_TMP_SECONDS",
    "cache_key",
    "cache_path",
    "cached_scene",
    "clear_cache",
    "default_cache_dir",
    "file_digest",
    "load_scene",
    "save_scene",
]

#: Bump when the stored layout changes: old entries then miss instead of loading wrongly.
CACHE_VERSION = 2
#: A temporary folder older than this (seconds) is removed even when its process may be alive.
STALE_TMP_SECONDS = 6 * 3600
_DIGESTS = "urbankit-digests.json"
_HASHES: dict[tuple, str] = {}   # (path, size, mtime_ns, ctime_ns, inode) -> sha256, per process


def default_cache_dir() -> Path:
    """``$URBANKIT_CACHE``, else ``$XDG_CACHE_HOME/urbankit/scenes``, else ``~/.cache/urbankit/scenes``."""
    env = os.environ.get("URBANKIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "urbankit" / "scenes"


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's content, remembered while its size/mtime/ctime/inode do not change."""
    path = Path(path)
    try:
        st = path.stat()
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        if memo not in _HASHES:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            _HASHES[memo] = h.hexdigest()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read a source file of the scene ({exc})") from None
    return _HASHES[memo]


def cache_key(reader: str, site: str, options: dict, files: Iterable[str | os.PathLike]) -> str:
    """A 20-hex-digit key from reader, site, options (JSON) and the source files' paths and content hashes."""
    payload = {
        "version": CACHE_VERSION, "reader": reader, "site": site, "options": options,
        "files": sorted([str(Path(f).resolve()), file_digest(f)] for f in files),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cache_path(reader: str, site: str, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the entry for (reader, site, key) lives."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    safe_site = "".join(c if c.isalnum() or c in "-_." else "_" for c in site)
    return base / reader / f"{safe_site}-{key}.zarr"


def _array_digest(values) -> str:
    """sha256 of an array's values (NaN canonicalised, strings joined), dtype kind and shape."""
    import numpy as np

    a = np.asarray(values)
    if a.dtype.kind == "f" and np.isnan(a).any():   # NaN payloads may differ after a round trip
        a = np.where(np.isnan(a), np.array(np.nan, a.dtype), a)
    h = hashlib.sha256(f"{a.dtype.kind}{a.shape}".encode())
    if a.dtype.kind in "OUS":
        h.update("\x1f".join(map(str, a.ravel().tolist())).encode())
    elif a.dtype.kind == "M" or a.dtype.kind == "m":
        h.update(np.ascontiguousarray(a).view(np.int64).data)
    else:
        h.update(np.ascontiguousarray(a).data)               # no copy for a C-ordered array
    return h.hexdigest()


def _digests(ds) -> dict[str, str]:
    return {str(name): _array_digest(ds[name].values) for name in ds.variables}


def save_scene(scene, path: str | os.PathLike) -> Path:
    """Write ``scene`` as a zarr store at ``path`` atomically (temp folder + rename).

    The CRS travels as the ``spatial_ref`` coordinate that rioxarray writes; a digest of every
    array goes into ``urbankit-digests.json`` beside the zarr metadata. An existing store at
    ``path`` is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    ds = scene.copy()
    for name in ds.variables:  # drop encodings inherited from a source file (chunks, compressors)
        ds[name].encoding = {}
    # one uncompressed chunk per variable: a cache trades disk for speed (zarr decodes it directly)
    encoding = {name: {"chunks": ds[name].shape, "compressors": None}
                for name in ds.variables if ds[name].ndim}
    try:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2, encoding=encoding)
        (tmp / _DIGESTS).write_text(json.dumps(_digests(ds), sort_keys=True), encoding="utf-8")
        if path.exists():
            old = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old")
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


def load_scene(path: str | os.PathLike):
    """Load a scene stored by :func:`save_scene` fully into memory (CRS restored).

    Raises:
        DataFormatError: naming the store when it cannot be read or an array does not match
            its stored digest (a damaged or tampered chunk).
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    path = Path(path)
    if not path.is_dir():
        raise DataFormatError(f"{path}: no cached scene here")
    try:
        expected = json.loads((path / _DIGESTS).read_text(encoding="utf-8"))
        with xr.open_zarr(path, consolidated=True, chunks=None) as ds:  # numpy, no dask
            scene = ds.load()
    except Exception as exc:  # noqa: BLE001  (zarr/json/OS errors: one clear error)
        raise DataFormatError(f"{path}: cannot read the cached scene ({type(exc).__name__}: {exc})") from None
    got = _digests(scene)
    bad = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
    if bad:
        raise DataFormatError(f"{path}: cached array(s) {', '.join(bad)} do not match their digests "
                              "(damaged or overwritten chunk)")
    for name in scene.variables:  # forget the store's chunking/compressors (a later save picks its own)
        scene[name].encoding = {}
    return scene


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _sweep_temporaries(folder: Path) -> int:
    """Remove ``.tmp``/``.old`` folders of dead writers (or older than STALE_TMP_SECONDS)."""
    n = 0
    if not folder.is_dir():
        return 0
    now = time.time()
    for entry in folder.iterdir():
        if not (entry.name.startswith(".") and entry.name.endswith((".tmp", ".old"))):
            continue
        parts = entry.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if (pid is not None and not _pid_alive(pid)) or age > STALE_TMP_SECONDS:
            shutil.rmtree(entry, ignore_errors=True)
            n += 1
    return n


def _writable(folder: Path) -> str | None:
    """None when files can be created in ``folder`` (created if needed), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _no_cache_warning(folder: Path, why: str) -> None:
    warnings.warn(
        f"scene cache disabled: cannot write to {folder} ({why}); the scene was read without caching. "
        "Point the cache at a writable folder with cache_dir=... or the URBANKIT_CACHE environment "
        "variable", UrbankitWarning, stacklevel=3)


def cached_scene(reader: str, site: str, options: dict, files: Iterable[str | os.PathLike],
                 build: Callable[[], object], *, cache_dir: str | os.PathLike | None = None,
                 refresh: bool = False):
    """Return the cached scene for (reader, site, options, files) or build, store and return it.

    Args:
        reader: reader name (``"oscd"``, ``"spacenet7"``) - the cache sub-folder.
        site: site name (part of the file name).
        options: JSON-serialisable reader options that change the result.
        files: every source file the scene is built from (their content hashes enter the key).
        build: function that reads the scene from the source files.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        refresh: rebuild and overwrite even when an entry exists.

    Returns:
        The scene, with ``attrs["cache"]`` = ``"hit"``, ``"miss"`` or ``"off"`` (not writable).
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
    why = _writable(path.parent)
    if why is not None:
        _no_cache_warning(path.parent, why)
        scene = build()
        scene.attrs["cache"] = "off"
        return scene
    _sweep_temporaries(path.parent)
    scene = build()
    try:
        save_scene(scene, path)
    except OSError as exc:  # disk full, permissions changed meanwhile: the scene itself is fine
        _no_cache_warning(path.parent, f"{type(exc).__name__}: {exc}")
        scene.attrs["cache"] = "off"
        return scene
    out = scene.copy()
    out.attrs["cache"] = "miss"
    return out


def clear_cache(cache_dir: str | os.PathLike | None = None, reader: str | None = None) -> int:
    """Delete cached scenes (all, or one reader's); returns the number of entries removed."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if reader:
        folders = [base / reader]
    else:
        folders = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
    n = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.suffix in (".zarr", ".tmp", ".old") or entry.name.endswith((".tmp", ".old")):
                shutil.rmtree(entry, ignore_errors=True)
                n += 1
    return n
