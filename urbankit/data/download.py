"""Verified downloads: resume, retries, checksums, atomic rename and safe archive extraction.

Standard library only (``urllib``); nothing touches the network at import time.

Typical use::

    from urbankit.data.download import download, fetch
    path = fetch("levir_cd_test", root="~/urbankit_data")          # a registry entry (sources.py)
    path = download("https://example.org/file.zip", "data/", sha256="...")  # any URL

What happens on each call of :func:`download`:

1. If the target file already exists and its checksum matches, nothing is downloaded.
2. Bytes go to ``<dest>/<filename>.part``. An existing ``.part`` file (an interrupted earlier
   run, or a connection dropped in this run) is resumed with an HTTP ``Range`` request; a server
   that ignores ``Range`` (answers 200) makes the download start again from zero.
3. Network errors (connection refused/reset, timeouts, HTTP 5xx, 408, 429, a truncated body)
   are retried ``retries`` times with exponential backoff (``backoff * 2**attempt`` seconds).
   HTTP 4xx errors are not retried. A host that cannot be reached at all gives a
   :class:`~urbankit.errors.DownloadError` that names the URL and says the machine seems to be
   offline or the host unreachable.
4. The finished ``.part`` file is checked against ``sha256`` or ``md5`` (and ``size`` when
   known). On a mismatch both the partial and the target file are deleted and
   ``DownloadError`` is raised. Without any checksum the call is refused unless
   ``allow_unverified=True``.
5. The verified file is renamed into place atomically (``os.replace``).
6. ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` archives are extracted
   when ``extract=True`` by :func:`safe_extract`, which inspects *every* member first and refuses
   the whole archive (writing nothing) if any member has an absolute path, a ``..`` component,
   a symlink or hardlink pointing outside the target, or is a device file / FIFO.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import posixpath
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

from ..errors import ConfigError, DownloadError

__all__ = ["download", "fetch", "safe_extract", "file_hash", "default_root", "is_archive",
           "CLI_COMMAND", "USER_AGENT"]

USER_AGENT = "urbankit-downloader/0.1 (+https://github.com/eo-ai4urban/urbankit)"
_CHUNK = 1 << 16
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: HTTP status codes that are worth retrying.
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def default_root() -> Path:
    """Where :func:`fetch` stores data when no ``root`` is given.

    ``$URBANKIT_DATA`` when set, else ``~/urbankit_data``.
    """
    env = os.environ.get("URBANKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / "urbankit_data"


def is_archive(path: str | os.PathLike) -> bool:
    """True when the file name ends in a supported archive suffix."""
    name = str(path).lower()
    return name.endswith(_ARCHIVE_SUFFIXES)


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``sha256`` or ``md5``), read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _filename_from_url(url: str) -> str:
    name = posixpath.basename(urllib.parse.urlparse(url).path)
    name = urllib.parse.unquote(name)
    if not name or name in (".", ".."):
        raise ConfigError(f"cannot derive a file name from the URL {url!r}; pass filename=...")
    return name


def _progress(total: int | None, initial: int, desc: str, enabled: bool):
    """A tqdm.auto bar, or a no-op object when tqdm is missing or progress is off."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=desc, leave=False)
        except ImportError:  # pragma: no cover - tqdm is a runtime requirement
            pass

    class _Null:
        def update(self, n):  # noqa: D401
            pass

        def close(self):
            pass

    return _Null()


def _is_unreachable(reason: object) -> bool:
    """Does a URLError reason mean the host cannot be reached at all?"""
    if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
        return True
    if isinstance(reason, OSError) and reason.errno in (101, 110, 111, 113, 65, 61, 10061, 10065):
        return True
    return False


class _Retryable(Exception):
    """Internal: an error after which another attempt may succeed."""

    def __init__(self, message: str, unreachable: bool = False, timed_out: bool = False):
        super().__init__(message)
        self.unreachable = unreachable
        self.timed_out = timed_out


def _check_digest(path: Path, sha256: str | None, md5: str | None, size: int | None) -> str | None:
    """Return None when ``path`` verifies, else a description of the mismatch."""
    if size is not None:
        actual = path.stat().st_size
        if actual != size:
            return f"size {actual} bytes, expected {size}"
    if sha256:
        got = file_hash(path, "sha256")
        if got.lower() != sha256.lower():
            return f"sha256 {got}, expected {sha256}"
    if md5:
        got = file_hash(path, "md5")
        if got.lower() != md5.lower():
            return f"md5 {got}, expected {md5}"
    return None


# --------------------------------------------------------------------------------------------
# one HTTP attempt
# --------------------------------------------------------------------------------------------
def _attempt(url: str, part: Path, timeout: float, progress: bool, desc: str) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size. Raises _Retryable/DownloadError."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Range not satisfiable: the partial file is probably complete already.
            return
        if exc.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {exc.code} {exc.reason} from {url}") from exc
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url} (not retried: the server "
                            "refused the request; check the URL or whether the file needs a login)"
                            ) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Retryable(f"timed out after {timeout} s connecting to {url}", timed_out=True) from exc
        raise _Retryable(f"cannot connect to {url}: {reason}", unreachable=_is_unreachable(reason)) from exc
    except (socket.timeout, TimeoutError) as exc:
        raise _Retryable(f"timed out after {timeout} s waiting for {url}", timed_out=True) from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise _Retryable(f"connection error for {url}: {exc}") from exc

    with response:
        status = getattr(response, "status", 200)
        if offset and status == 206:
            mode = "ab"
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                # A server that sends another range than asked for: start again from zero.
                part.unlink(missing_ok=True)
                raise _Retryable(f"unexpected Content-Range {content_range!r} from {url}")
        else:
            mode, offset = "wb", 0  # server ignored Range (200): restart
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        bar = _progress(total, offset, desc, progress)
        received = 0
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (socket.timeout, TimeoutError) as exc:
                        raise _Retryable(f"timed out after {timeout} s while reading {url}",
                                         timed_out=True) from exc
                    except (ConnectionError, http.client.HTTPException, OSError) as exc:
                        raise _Retryable(f"connection dropped while reading {url}: {exc}") from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        if length and length.isdigit() and received < int(length):
            raise _Retryable(f"connection dropped after {offset + received} of {total} bytes from {url}")


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def download(source_or_url, dest_dir: str | os.PathLike, *, filename: str | None = None,
             sha256: str | None = None, md5: str | None = None, size: int | None = None,
             extract: bool = True, retries: int = 3, timeout: float = 30, backoff: float = 1.0,
             allow_unverified: bool = False, progress: bool = True, mirror: bool = False) -> Path:
    """Download a URL or a registry :class:`~urbankit.data.sources.Source` into ``dest_dir``.

    Parameters
    ----------
    source_or_url:
        ``"https://..."`` or a ``Source`` (its url/filename/size/checksums are used unless given
        here). A source that needs a login or a manual step raises ``DownloadError`` with
        instructions, unless the file is already in ``dest_dir`` (then it is verified and used).
    sha256, md5, size:
        Expected checksum(s) / size in bytes. Without a checksum the download is refused unless
        ``allow_unverified=True``.
    extract:
        Extract archives (zip/tar) into ``dest_dir`` with :func:`safe_extract`.
    retries, timeout, backoff:
        Attempts after the first one, the socket timeout in seconds, and the base of the
        exponential backoff in seconds.
    mirror:
        For a ``Source`` with ``mirrors``: download from the first mirror instead of refusing a
        login-only source.

    Returns
    -------
    Path
        The downloaded file, or ``dest_dir`` when an archive was extracted into it.
    """
    from .sources import Source

    dest = Path(dest_dir).expanduser()
    manual_note = None
    if isinstance(source_or_url, Source):
        src = source_or_url
        url = src.url
        if mirror:
            if not src.mirrors:
                raise ConfigError(f"source {src.name!r} has no mirror")
            url = src.mirrors[0]
        elif src.manual:
            manual_note = src.manual_instructions(dest)
        filename = filename or src.filename
        sha256 = sha256 or src.sha256
        md5 = md5 or src.md5
        size = size if size is not None else src.size
    elif isinstance(source_or_url, str):
        url = source_or_url
    else:
        raise ConfigError(f"download() takes a URL string or a Source, not {type(source_or_url).__name__}")
    filename = filename or _filename_from_url(url)
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise ConfigError(f"filename {filename!r} must be a plain file name")
    target = dest / filename
    part = dest / (filename + ".part")

    # 1. already there?
    if target.is_file():
        problem = _check_digest(target, sha256, md5, size)
        if problem is None:
            return _maybe_extract(target, dest, extract)
        if manual_note is not None:
            raise DownloadError(f"{target} exists but does not verify ({problem}); replace it with a "
                                f"fresh copy. {manual_note}")
        target.unlink()
    if manual_note is not None:
        raise DownloadError(manual_note)
    if not (sha256 or md5) and not allow_unverified:
        raise DownloadError(
            f"refusing to download {url} without a checksum: its sha256/md5 is not known, so the file "
            "could not be verified. Pass allow_unverified=True (CLI: --allow-unverified) to download it "
            "anyway, or pass sha256=... / md5=...")
    if retries < 0 or timeout <= 0:
        raise ConfigError("retries must be >= 0 and timeout > 0")

    # 2./3. download with resume and retries
    dest.mkdir(parents=True, exist_ok=True)
    last: _Retryable | None = None
    for attempt in range(retries + 1):
        try:
            _attempt(url, part, timeout, progress, filename)
            last = None
            break
        except _Retryable as exc:
            last = exc
            if attempt < retries:
                time.sleep(backoff * (2 ** attempt))
    if last is not None:
        n = retries + 1
        if last.unreachable:
            raise DownloadError(
                f"cannot reach the host of {url} ({last}); the machine seems to be offline or the "
                f"host cannot be reached (gave up after {n} attempts). Check the network connection "
                f"or download the file by hand into {dest}") from last
        if last.timed_out:
            raise DownloadError(f"download of {url} timed out ({timeout} s per attempt, {n} attempts): "
                                f"{last}. The server is slow or unreachable; try again later or raise "
                                "timeout=") from last
        raise DownloadError(f"download of {url} failed after {n} attempts: {last}. The partial file "
                            f"{part} is kept and a later call resumes it") from last
    if not part.exists():
        part.touch()

    # 4. verify
    problem = _check_digest(part, sha256, md5, size)
    if problem is not None:
        part.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {url}: got {problem}; the file was deleted "
                            "(corrupt download, or the file changed on the server)")
    # 5. atomic rename
    os.replace(part, target)
    return _maybe_extract(target, dest, extract)


def _maybe_extract(path: Path, dest: Path, extract: bool) -> Path:
    if extract and is_archive(path):
        marker = dest / f".{path.name}.extracted"
        if not marker.exists():
            safe_extract(path, dest)
            marker.write_text("extracted by urbankit.data.download\n")
        return dest
    return path


# --------------------------------------------------------------------------------------------
# safe extraction
# --------------------------------------------------------------------------------------------
def _bad_name(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if not name:
        return "empty member name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "absolute path"
    if ".." in norm.split("/"):
        return "'..' path component (path traversal)"
    return None


def _link_escapes(member_name: str, link_target: str, hard: bool) -> bool:
    """Would a link named ``member_name`` pointing at ``link_target`` leave the extraction root?"""
    target = link_target.replace("\\", "/")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return True
    base = "" if hard else posixpath.dirname(member_name.replace("\\", "/"))
    resolved = posixpath.normpath(posixpath.join(base, target))
    return resolved == ".." or resolved.startswith("../")


def _check_tar(tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tf.getmembers()
    for m in members:
        why = _bad_name(m.name)
        if why is None:
            if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
                why = "device file or FIFO"
            elif m.issym() and _link_escapes(m.name, m.linkname, hard=False):
                why = f"symlink to {m.linkname!r} outside the target folder"
            elif m.islnk() and (_bad_name(m.linkname) or _link_escapes(m.name, m.linkname, hard=True)):
                why = f"hardlink to {m.linkname!r} outside the target folder"
            elif not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                why = "unsupported member type"
        if why:
            raise DownloadError(f"refusing to extract {tf.name}: member {m.name!r} is unsafe ({why}); "
                                "nothing was extracted")
    return members


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> None:
    for info in zf.infolist():
        why = _bad_name(info.filename)
        mode = info.external_attr >> 16
        if why is None and stat.S_ISLNK(mode):
            link = zf.read(info).decode("utf-8", "replace")
            if _link_escapes(info.filename, link, hard=False):
                why = f"symlink to {link!r} outside the target folder"
        if why is None and mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
            why = "device file or FIFO"
        if why:
            raise DownloadError(f"refusing to extract {archive}: member {info.filename!r} is unsafe ({why}); "
                                "nothing was extracted")


def _merge_move(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; merge folders that exist on both sides."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
        for child in src.iterdir():
            _merge_move(child, dst / child.name)
        src.rmdir()
    else:
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)


def safe_extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Extract a zip or tar archive into ``dest_dir`` after checking every member.

    Refuses the whole archive (raising :class:`DownloadError`, writing nothing) when any member
    has an absolute path, a ``..`` component, is a symlink/hardlink that points outside
    ``dest_dir``, or is a device file/FIFO. Extraction goes to a temporary folder inside
    ``dest_dir`` first and is moved into place at the end, so an error midway leaves no
    half-extracted tree. Returns ``dest_dir``.
    """
    archive = Path(archive)
    dest = Path(dest_dir)
    if not archive.is_file():
        raise DownloadError(f"archive {archive} does not exist")
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _check_zip(zf, archive)
                dest.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=dest, prefix=".extract-") as tmp:
                    zf.extractall(tmp)
                    for child in Path(tmp).iterdir():
                        _merge_move(child, dest / child.name)
        elif is_archive(archive):
            with tarfile.open(archive) as tf:
                members = _check_tar(tf)
                dest.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=dest, prefix=".extract-") as tmp:
                    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    tf.extractall(tmp, members=members, **kwargs)
                    for child in Path(tmp).iterdir():
                        _merge_move(child, dest / child.name)
        else:
            raise DownloadError(f"{archive} is not a supported archive ({', '.join(_ARCHIVE_SUFFIXES)})")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DownloadError(f"{archive} is not a valid archive ({exc}); delete it and download again"
                            ) from exc
    return dest


# --------------------------------------------------------------------------------------------
# registry entries
# --------------------------------------------------------------------------------------------
def fetch(name: str, root: str | os.PathLike | None = None, *, allow_unverified: bool = False,
          mirror: bool = False, extract: bool = True, retries: int = 3, timeout: float = 30,
          progress: bool = True) -> Path:
    """Download (or find) the registry entry ``name`` under ``root/<entry.target>``.

    ``root`` defaults to :func:`default_root`. Entries that need a login (IEEE DataPort) or a
    manual download raise ``DownloadError`` explaining where to get the file and where to put
    it; once the file is there, ``fetch`` verifies it (when a checksum is known) and extracts it.
    See :mod:`urbankit.data.sources` for the entries.
    """
    from .sources import get_source

    src = get_source(name)
    base = Path(root).expanduser() if root is not None else default_root()
    return download(src, base / src.target, extract=extract and src.extract, retries=retries,
                    timeout=timeout, allow_unverified=allow_unverified, progress=progress, mirror=mirror)


# --------------------------------------------------------------------------------------------
# CLI: urbankit download NAME [--root DIR] [--list]
# --------------------------------------------------------------------------------------------
def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="registry entries to download (see --list)")
    p.add_argument("--root", default=None, help="data folder (default: $URBANKIT_DATA or ~/urbankit_data)")
    p.add_argument("--list", action="store_true", help="list the known sources and exit")
    p.add_argument("--allow-unverified", action="store_true",
                   help="allow sources whose checksum is unknown (the file cannot be verified)")
    p.add_argument("--mirror", action="store_true", help="use the source's mirror (e.g. OSCD without login)")
    p.add_argument("--no-extract", action="store_true", help="keep archives packed")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--timeout", type=float, default=30.0)


def _format_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"  # pragma: no cover


def _run(args: argparse.Namespace) -> int:
    from .sources import SOURCES

    if args.list or not args.names:
        rows = [(s.name, s.checksum_kind, "manual" if s.manual else "auto", _format_size(s.size), s.title)
                for s in SOURCES.values()]
        w = max(len(r[0]) for r in rows)
        print(f"{'name':<{w}}  verify  access  size       title")
        for r in rows:
            print(f"{r[0]:<{w}}  {r[1]:<6}  {r[2]:<6}  {r[3]:<9}  {r[4]}")
        if not args.names:
            return 0
    for name in args.names:
        path = fetch(name, args.root, allow_unverified=args.allow_unverified, mirror=args.mirror,
                     extract=not args.no_extract, retries=args.retries, timeout=args.timeout)
        print(f"{name}: {path}")
    return 0


CLI_COMMAND = ("download", "download a registered public dataset (verified, resumable)", _add_arguments, _run)


def _iter_names() -> Iterable[str]:  # pragma: no cover - convenience for interactive use
    from .sources import SOURCES

    return iter(SOURCES)
