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
3. Network errors (connection refused/reset, timeouts, HTTP 5xx, 408, 429, a truncated body,
   a transfer slower than ``min_rate`` bytes/s over ``rate_window`` seconds) are retried
   ``retries`` times with exponential backoff (``backoff * 2**attempt`` seconds). The whole
   call (all attempts) stops at the overall ``deadline`` (seconds): a server that trickles
   bytes can no longer keep a download alive forever (the socket timeout is per read).
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
   a symlink or hardlink pointing outside the target, or is a device file / FIFO. A marker
   ``.<archive>.extracted`` lists every extracted file with its size; an archive is extracted
   again when any of them is missing or has another size (the marker alone is not trusted).
7. A destination that cannot be written (read-only data folder) gives a ``DownloadError`` that
   names the folder and says how to choose another (``root=`` / ``--root`` / ``$URBANKIT_DATA``).

Zenodo records (:func:`fetch_zenodo`) are fetched file by file with the md5 and size that the
record's metadata (``/api/records/<id>``) publishes, not as the unverifiable on-the-fly
"download all" archive.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
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
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError, DownloadError

__all__ = ["download", "fetch", "fetch_zenodo", "safe_extract", "file_hash", "default_root", "is_archive",
           "CLI_COMMAND", "USER_AGENT", "DEFAULT_DEADLINE", "DEFAULT_MIN_RATE"]

USER_AGENT = "urbankit-downloader/0.1 (+https://github.com/eo-ai4urban/urbankit)"
_CHUNK = 1 << 16
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: HTTP status codes that are worth retrying.
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
#: Overall time limit of one download (all attempts), seconds.
DEFAULT_DEADLINE = 6 * 3600.0
#: Minimum average transfer rate (bytes/s) over each ``rate_window`` seconds of a transfer.
DEFAULT_MIN_RATE = 1024.0
_RATE_WINDOW = 60.0


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


class _Budget:
    """Overall deadline and minimum-rate watch of one :func:`download` call."""

    def __init__(self, deadline: float | None, min_rate: float | None, window: float):
        self.deadline = deadline
        self.end = time.monotonic() + deadline if deadline else None
        self.min_rate, self.window = min_rate, window

    def left(self, timeout: float) -> float:
        """The socket timeout to use now (never past the deadline); raises when the deadline passed."""
        if self.end is None:
            return timeout
        left = self.end - time.monotonic()
        if left <= 0:
            raise _DeadlineExceeded()
        return max(0.05, min(timeout, left))

    def pause(self, seconds: float) -> float:
        """``seconds``, shortened so that a backoff pause never runs past the deadline."""
        if self.end is None:
            return seconds
        return max(0.0, min(seconds, self.end - time.monotonic()))

    def watch(self):
        """A callable fed the size of each chunk; raises when the transfer is too slow or too late."""
        start, got = time.monotonic(), 0

        def feed(n: int) -> None:
            nonlocal start, got
            now = time.monotonic()
            if self.end is not None and now > self.end:
                raise _DeadlineExceeded()
            got += n
            if self.min_rate and now - start >= self.window:
                rate = got / (now - start)
                if rate < self.min_rate:
                    raise _Retryable(f"transfer too slow: {rate:.0f} B/s over {now - start:.1f} s, below the "
                                     f"minimum of {self.min_rate:.0f} B/s (min_rate=)", timed_out=True)
                start, got = now, 0
        return feed


class _DeadlineExceeded(Exception):
    """Internal: the overall deadline of a download passed."""


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
def _attempt(url: str, part: Path, timeout: float, progress: bool, desc: str, budget: _Budget) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size. Raises _Retryable/DownloadError."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=budget.left(timeout))
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
    except TimeoutError as exc:
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
        feed = budget.watch()
        read = getattr(response, "read1", response.read)  # read1: what has arrived, not a full chunk
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = read(_CHUNK)
                    except TimeoutError as exc:
                        raise _Retryable(f"timed out after {timeout} s while reading {url}",
                                         timed_out=True) from exc
                    except (ConnectionError, http.client.HTTPException, OSError) as exc:
                        raise _Retryable(f"connection dropped while reading {url}: {exc}") from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    feed(len(chunk))
        finally:
            bar.close()
        if length and length.isdigit() and received < int(length):
            raise _Retryable(f"connection dropped after {offset + received} of {total} bytes from {url}")


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def _resolve(source_or_url, filename, sha256, md5, size, mirror, dest: Path):
    """(url, filename, sha256, md5, size, manual_note) for a URL string or a Source."""
    from .sources import Source

    manual_note = None
    if isinstance(source_or_url, Source):
        src = source_or_url
        url = src.url
        if mirror and src.mirrors:
            url = src.mirrors[0]
        elif mirror and src.manual:
            raise ConfigError(f"source {src.name!r} has no mirror")
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
    return url, filename, sha256, md5, size, manual_note


def _require_writable(dest: Path) -> None:
    """Create ``dest`` and check that files can be written there; else a DownloadError saying what to do."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".urbankit-probe-", dir=dest)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DownloadError(
            f"cannot write to the data folder {dest} ({type(exc).__name__}: {exc.strerror or exc}); choose a "
            "writable folder with root=... (CLI: --root DIR) or the URBANKIT_DATA environment variable"
        ) from None


def _fetch_with_retries(url: str, part: Path, dest: Path, retries: int, timeout: float, backoff: float,
                        progress: bool, desc: str, budget: _Budget) -> None:
    last: _Retryable | None = None
    n = retries + 1
    for attempt in range(n):
        try:
            _attempt(url, part, timeout, progress, desc, budget)
            return
        except _DeadlineExceeded:
            kept = f"; the partial file {part} is kept and a later call resumes it" if _nonempty(part) else ""
            raise DownloadError(f"download of {url} did not finish within the overall deadline of "
                                f"{budget.deadline:g} s (deadline=){kept}") from None
        except _Retryable as exc:
            last = exc
            if attempt < retries:
                time.sleep(budget.pause(backoff * (2 ** attempt)))
    assert last is not None
    if last.unreachable:
        raise DownloadError(
            f"cannot reach the host of {url} ({last}); the machine seems to be offline or the "
            f"host cannot be reached (gave up after {n} attempts). Check the network connection "
            f"or download the file by hand into {dest}") from last
    if last.timed_out:
        raise DownloadError(f"download of {url} timed out or was too slow ({timeout} s per read, {n} "
                            f"attempts): {last}. The server is slow or unreachable; try again later or "
                            "raise timeout= / lower min_rate=") from last
    kept = (f" The partial file {part} ({part.stat().st_size} bytes) is kept and a later call resumes it."
            if _nonempty(part) else " Nothing was written.")
    raise DownloadError(f"download of {url} failed after {n} attempts: {last}.{kept}") from last


def _nonempty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def download(source_or_url, dest_dir: str | os.PathLike, *, filename: str | None = None,
             sha256: str | None = None, md5: str | None = None, size: int | None = None,
             extract: bool = True, retries: int = 3, timeout: float = 30, backoff: float = 1.0,
             allow_unverified: bool = False, progress: bool = True, mirror: bool = False,
             deadline: float | None = DEFAULT_DEADLINE, min_rate: float | None = DEFAULT_MIN_RATE,
             rate_window: float = _RATE_WINDOW) -> Path:
    """Download a URL or a registry :class:`~urbankit.data.sources.Source` into ``dest_dir``.

    Args:
        source_or_url: ``"https://..."`` or a ``Source`` (its url/filename/size/checksums are used
            unless given here). A source that needs a login or a manual step raises
            ``DownloadError`` with instructions, unless the file is already in ``dest_dir`` (then it
            is verified and used).
        dest_dir: folder that receives the file (created; must be writable).
        filename: file name in ``dest_dir`` (default: from the source or the URL).
        sha256, md5, size: expected checksum(s) / size in bytes. Without a checksum the download
            is refused unless ``allow_unverified=True``.
        extract: extract archives (zip/tar) into ``dest_dir`` with :func:`safe_extract`.
        retries, timeout, backoff: attempts after the first one, the socket timeout per read in
            seconds, and the base of the exponential backoff in seconds.
        allow_unverified: accept a download without a known checksum.
        progress: show a tqdm progress bar.
        mirror: for a ``Source`` with ``mirrors``: download from the first mirror.
        deadline: overall time limit in seconds for all attempts (None: none).
        min_rate: minimum average rate in bytes/s over each ``rate_window`` seconds (None: none).
        rate_window: length of the rate-measuring window in seconds.

    Returns:
        The downloaded file, or ``dest_dir`` when an archive was extracted into it.
    """
    dest = Path(dest_dir).expanduser()
    url, filename, sha256, md5, size, manual_note = _resolve(source_or_url, filename, sha256, md5, size,
                                                             mirror, dest)
    target, part = dest / filename, dest / (filename + ".part")
    if target.is_file():  # 1. already there?
        problem = _check_digest(target, sha256, md5, size)
        if problem is None:
            return _maybe_extract(target, dest, extract)
        if manual_note is not None:
            raise DownloadError(f"{target} exists but does not verify ({problem}); replace it with a "
                                f"fresh copy. {manual_note}")
        _require_writable(dest)
        target.unlink()
    if manual_note is not None:
        raise DownloadError(manual_note)
    if not (sha256 or md5) and not allow_unverified:
        raise DownloadError(
            f"refusing to download {url} without a checksum: its sha256/md5 is not known, so the file "
            "could not be verified. Pass allow_unverified=True (CLI: --allow-unverified) to download it "
            "anyway, or pass sha256=... / md5=...")
    if retries < 0 or timeout <= 0 or (deadline is not None and deadline <= 0) or rate_window <= 0:
        raise ConfigError("retries must be >= 0, and timeout, deadline and rate_window > 0")
    _require_writable(dest)
    budget = _Budget(deadline, min_rate, rate_window)
    _fetch_with_retries(url, part, dest, retries, timeout, backoff, progress, filename, budget)  # 2./3.
    if not part.exists():
        part.touch()
    problem = _check_digest(part, sha256, md5, size)  # 4. verify
    if problem is not None:
        part.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {url}: got {problem}; the file was deleted "
                            "(corrupt download, or the file changed on the server)")
    os.replace(part, target)  # 5. atomic rename
    return _maybe_extract(target, dest, extract)


def _archive_files(path: Path) -> dict[str, int]:
    """Regular files of an archive: member name -> size in bytes."""
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            return {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
    with tarfile.open(path) as tf:
        return {m.name: m.size for m in tf.getmembers() if m.isfile()}


def _listed_files(marker: Path, archive: Path) -> dict[str, int] | None:
    """The files a marker says were extracted; an old plain-text marker: the archive's own list."""
    try:
        text = marker.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        info = json.loads(text)
        if info.get("archive_size") != archive.stat().st_size:
            return None
        return {str(k): int(v) for k, v in info["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        pass
    try:  # a marker written by an older urbankit: check against the archive itself
        return _archive_files(archive)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError):
        return None


def _extracted_ok(marker: Path, dest: Path, archive: Path) -> bool:
    """True when every file the archive holds is present in ``dest`` with its size."""
    files = _listed_files(marker, archive)
    if files is None:
        return False
    for name, n in files.items():
        f = dest / name
        if not f.is_file() or f.stat().st_size != n:
            return False
    return True


def _write_marker(marker: Path, archive: Path, files: dict[str, int]) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"archive_size": archive.stat().st_size, "files": files}, indent=0),
                   encoding="utf-8")
    os.replace(tmp, marker)


def _maybe_extract(path: Path, dest: Path, extract: bool) -> Path:
    if extract and is_archive(path):
        marker = dest / f".{path.name}.extracted"
        if not _extracted_ok(marker, dest, path):
            _require_writable(dest)
            try:
                files = _archive_files(path)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
                raise DownloadError(f"{path} is not a valid archive ({exc}); delete it and download again"
                                    ) from exc
            safe_extract(path, dest)
            _write_marker(marker, path, files)
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
def _get_json(url: str, timeout: float, max_bytes: int = 16 << 20):
    """GET a JSON document (a Zenodo record) with a clear DownloadError on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for the record metadata {url}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot fetch the record metadata {url} ({exc}); the machine seems to be "
                            "offline or the host cannot be reached") from exc
    if len(body) > max_bytes:
        raise DownloadError(f"{url}: the record metadata is larger than {max_bytes} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(f"{url}: the record metadata is not JSON ({exc})") from exc


def _zenodo_files(record: dict, url: str) -> list[tuple[str, str, str | None, int | None]]:
    """(name, url, md5, size) of every file of a Zenodo record (legacy and InvenioRDM forms)."""
    files = record.get("files")
    if isinstance(files, dict):  # InvenioRDM: {"entries": {...}} or {"entries": [...]}
        files = files.get("entries")
        files = list(files.values()) if isinstance(files, dict) else files
    if not isinstance(files, list) or not files:
        raise DownloadError(f"{url}: the record metadata lists no files")
    out = []
    for f in files:
        links = f.get("links") or {}
        link = links.get("self") or links.get("content") or links.get("download")
        name = f.get("key") or f.get("filename")
        checksum = str(f.get("checksum") or "")
        if not name or not link:
            raise DownloadError(f"{url}: a file entry has no name or link ({f!r:.200})")
        md5 = checksum.split(":", 1)[1] if checksum.startswith("md5:") else None
        out.append((str(name), str(link), md5, f.get("size")))
    return out


def fetch_zenodo(record_url: str, dest_dir: str | os.PathLike, *, extract: bool = True, **kwargs) -> Path:
    """Download every file of a Zenodo record, each verified with the md5 and size the record publishes.

    Args:
        record_url: the record's API URL (``https://zenodo.org/api/records/<id>``).
        dest_dir: folder that receives the files (archives are extracted into it).
        extract: extract archives with :func:`safe_extract`.
        **kwargs: passed to :func:`download` (retries, timeout, deadline, min_rate, progress ...).

    Returns:
        ``dest_dir``.
    """
    dest = Path(dest_dir).expanduser()
    timeout = float(kwargs.get("timeout", 30))
    for name, link, md5, size in _zenodo_files(_get_json(record_url, timeout), record_url):
        if md5 is None:
            raise DownloadError(f"{record_url}: file {name!r} has no md5 in the record metadata; it cannot "
                                "be verified")
        download(link, dest, filename=name, md5=md5, size=size, extract=extract, **kwargs)
    return dest


def fetch(name: str, root: str | os.PathLike | None = None, *, allow_unverified: bool = False,
          mirror: bool = False, extract: bool = True, retries: int = 3, timeout: float = 30,
          progress: bool = True, deadline: float | None = DEFAULT_DEADLINE,
          min_rate: float | None = DEFAULT_MIN_RATE) -> Path:
    """Download (or find) the registry entry ``name`` under ``root/<entry.target>``.

    ``root`` defaults to :func:`default_root`. Entries that need a login or a manual download
    raise ``DownloadError`` explaining where to get the file and where to put it; once the file
    is there, ``fetch`` verifies it (when a checksum is known) and extracts it. Zenodo entries
    are fetched file by file with the record's md5s (:func:`fetch_zenodo`). See
    :mod:`urbankit.data.sources` for the entries and :data:`~urbankit.data.sources.GROUPS` for
    names that stand for several entries (``"oscd"``): a group returns the last entry's folder.
    """
    from .sources import GROUPS, get_source

    if name in GROUPS:
        out = None
        for member in GROUPS[name]:
            out = fetch(member, root, allow_unverified=allow_unverified, mirror=mirror, extract=extract,
                        retries=retries, timeout=timeout, progress=progress, deadline=deadline,
                        min_rate=min_rate)
        assert out is not None
        return out
    src = get_source(name)
    base = Path(root).expanduser() if root is not None else default_root()
    common = dict(retries=retries, timeout=timeout, progress=progress, deadline=deadline, min_rate=min_rate)
    if src.zenodo_record and not mirror:
        return fetch_zenodo(src.url, base / src.target, extract=extract and src.extract, **common)
    return download(src, base / src.target, extract=extract and src.extract,
                    allow_unverified=allow_unverified, mirror=mirror, **common)


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
    p.add_argument("--timeout", type=float, default=30.0, help="socket timeout per read (s)")
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE,
                   help="overall time limit per file, all attempts (s)")
    p.add_argument("--min-rate", type=float, default=DEFAULT_MIN_RATE,
                   help="minimum average transfer rate (bytes/s) over each minute")


def _format_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"  # pragma: no cover


def _run(args: argparse.Namespace) -> int:
    from .sources import GROUPS, SOURCES

    if args.list or not args.names:
        rows = [(s.name, s.checksum_kind, "manual" if s.manual else "auto", _format_size(s.size), s.title)
                for s in SOURCES.values()]
        w = max(len(r[0]) for r in rows)
        print(f"{'name':<{w}}  verify  access  size       title")
        for r in rows:
            print(f"{r[0]:<{w}}  {r[1]:<6}  {r[2]:<6}  {r[3]:<9}  {r[4]}")
        for group, members in GROUPS.items():
            print(f"{group:<{w}}  group of {', '.join(members)}")
        if not args.names:
            return 0
    for name in args.names:
        path = fetch(name, args.root, allow_unverified=args.allow_unverified, mirror=args.mirror,
                     extract=not args.no_extract, retries=args.retries, timeout=args.timeout,
                     deadline=args.deadline, min_rate=args.min_rate)
        print(f"{name}: {path}")
    return 0


CLI_COMMAND = ("download", "download a registered public dataset (verified, resumable)", _add_arguments, _run)


def _iter_names() -> Iterable[str]:  # pragma: no cover - convenience for interactive use
    from .sources import SOURCES

    return iter(SOURCES)
