"""Fault injection for the scene cache and the download manager (issue 13), and the registry's
OSCD / DS U-Net / SEN12-MTUM downloads end to end (issue 11).

Everything runs on loopback (a ThreadingHTTPServer on 127.0.0.1, ephemeral port) with small
archives built here from the kit's own embedded samples (``data_samples/``, synthetic), in the
real layouts: the three OSCD zips, the GitHub archive of the DS U-Net repository, a Zenodo
record (API JSON + files with md5). Every test is bounded in time by the download deadline,
the minimum rate or subprocess timeouts; none asserts a wall-clock time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from urbankit.data import cache as scene_cache
from urbankit.data import download as dl
from urbankit.data import oscd, sources
from urbankit.errors import DataFormatError, DownloadError, UrbankitWarning

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"
IMAGES = "Onera Satellite Change Detection dataset - Images"
TRAIN = "Onera Satellite Change Detection dataset - Train Labels"
TEST = "Onera Satellite Change Detection dataset - Test Labels"
NO_WAIT = dict(retries=0, timeout=2.0, backoff=0.0, progress=False)


# ------------------------------------------------------------------ a loopback server with faults
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        srv = self.server
        path = self.path.split("?")[0]
        srv.hits.append(path)
        if len(srv.hits) > 300:
            self.send_error(503)
            return
        if path in srv.status:
            self.send_error(srv.status[path], "Injected")
            return
        if path not in srv.files:
            self.send_error(404, "Not Found")
            return
        data = srv.files[path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        rate = srv.trickle.get(path)
        if rate is None:
            self.wfile.write(data)
            return
        stop = time.monotonic() + srv.max_trickle_s       # the server itself gives up, bounding the test
        for i in range(0, len(data), 40):
            if time.monotonic() > stop:
                break
            try:
                self.wfile.write(data[i:i + 40])
                self.wfile.flush()
            except OSError:
                break
            time.sleep(40 / rate)
        self.close_connection = True


@pytest.fixture
def server(local_http_server):
    return local_http_server(_Handler, files={}, status={}, trickle={}, hits=[], max_trickle_s=20.0)


def _zip(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in dirs:
            zf.writestr(d.rstrip("/") + "/", b"")
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return buf.getvalue()


def _tree(folder: Path, prefix: str) -> dict[str, bytes]:
    return {f"{prefix}/{p.relative_to(folder).as_posix()}": p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ================================================================== cache faults
def _scene():
    from urbankit.data.synthetic import make_site

    return make_site(size=32, n_dates=2, seed=3)


def _source_file(tmp_path: Path) -> Path:
    src = tmp_path / "source.bin"
    src.write_bytes(b"a" * 1000)
    return src


def test_chunk_overwritten_with_same_size_garbage_is_not_served(tmp_path):
    scene, src = _scene(), _source_file(tmp_path)
    builds = []

    def build():
        builds.append(1)
        return scene

    first = scene_cache.cached_scene("t", "s", {}, [src], build, cache_dir=tmp_path / "c")
    entry = next((tmp_path / "c" / "t").glob("*.zarr"))
    chunk = max((p for p in (entry / "optical").iterdir() if not p.name.startswith(".")),
                key=lambda p: p.stat().st_size)
    rng = np.random.default_rng(0)
    chunk.write_bytes(rng.integers(0, 256, chunk.stat().st_size, dtype=np.uint8).tobytes())  # same size
    with pytest.raises(DataFormatError, match="do not match their digests|cannot read the cached scene"):
        scene_cache.load_scene(entry)
    again = scene_cache.cached_scene("t", "s", {}, [src], build, cache_dir=tmp_path / "c")
    assert again.attrs["cache"] == "miss" and len(builds) == 2     # rebuilt, never the garbage
    np.testing.assert_array_equal(again.optical.values, first.optical.values)
    third = scene_cache.cached_scene("t", "s", {}, [src], build, cache_dir=tmp_path / "c")
    assert third.attrs["cache"] == "hit"


def test_source_rewritten_with_size_and_mtime_restored_misses(tmp_path):
    scene, src = _scene(), _source_file(tmp_path)
    scene_cache.cached_scene("t", "s", {}, [src], lambda: scene, cache_dir=tmp_path / "c")
    st = src.stat()
    src.write_bytes(b"b" * 1000)                                   # same size, other content
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))             # mtime restored
    assert src.stat().st_size == st.st_size and src.stat().st_mtime_ns == st.st_mtime_ns
    out = scene_cache.cached_scene("t", "s", {}, [src], lambda: scene, cache_dir=tmp_path / "c")
    assert out.attrs["cache"] == "miss"


def test_editing_train_txt_refreshes_the_cached_split(tmp_path):
    import shutil

    root = tmp_path / "oscd"
    shutil.copytree(SAMPLES / "oscd", root)
    first = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=tmp_path / "c")
    assert first.attrs["split"] == "train"
    (root / IMAGES / "train.txt").write_text("riverton", encoding="utf-8")
    (root / IMAGES / "test.txt").write_text("hillcrest,lakeside", encoding="utf-8")
    again = oscd.read_city(root, "lakeside", bands="rgb", cache=True, cache_dir=tmp_path / "c")
    assert again.attrs["cache"] == "miss" and again.attrs["split"] == "test"   # the old cache said "train"


_KILLED_WRITER = """
import os, signal, sys
import xarray as xr
from urbankit.data import cache
from urbankit.data.synthetic import make_site
real = xr.Dataset.to_zarr
def to_zarr_then_die(self, *a, **k):
    real(self, *a, **k)
    os.kill(os.getpid(), signal.SIGKILL)      # killed after writing, before the rename
xr.Dataset.to_zarr = to_zarr_then_die
cache.save_scene(make_site(size=32, n_dates=2, seed=3), sys.argv[1])
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_write_leaves_no_temporary_folder_forever(tmp_path):
    folder = tmp_path / "c" / "t"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(folder / "x-0.zarr")], env=env,
                         capture_output=True, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr.decode()[-2000:]
    left = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and not (folder / "x-0.zarr").exists()     # hidden temp, nothing complete
    scene, src = _scene(), _source_file(tmp_path)
    scene_cache.cached_scene("t", "s", {}, [src], lambda: scene, cache_dir=tmp_path / "c")
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]   # swept: its writer is dead


def _unwritable(tmp_path: Path) -> Path:
    """A folder that cannot be created (its parent is a file): fails for root as well."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    return blocker / "cache"


def test_unwritable_cache_folder_warns_before_building_and_returns_the_scene(tmp_path):
    scene, src = _scene(), _source_file(tmp_path)
    events = []

    def build():
        events.append("build")
        return scene

    with pytest.warns(UrbankitWarning, match=r"cannot write to .*blocker.*cache_dir=.*URBANKIT_CACHE") as rec:
        out = scene_cache.cached_scene("t", "s", {}, [src], build, cache_dir=_unwritable(tmp_path))
    assert out.attrs["cache"] == "off" and events == ["build"] and len(rec) == 1


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_cache_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.warns(UrbankitWarning, match="cannot write"):
            out = scene_cache.cached_scene("t", "s", {}, [_source_file(tmp_path)], _scene, cache_dir=ro)
        assert out.attrs["cache"] == "off"
    finally:
        ro.chmod(0o755)


# ================================================================== download faults
def test_trickle_server_hits_the_minimum_rate(server, tmp_path):
    data = bytes(range(256)) * 400                                  # 100 kB at 400 B/s: 4 minutes
    server.files["/slow.bin"] = data
    server.trickle["/slow.bin"] = 400.0
    with pytest.raises(DownloadError, match=r"too slow: \d+ B/s .* below the minimum of 2000 B/s"):
        dl.download(server.base + "/slow.bin", tmp_path, md5=_md5(data), min_rate=2000, rate_window=0.5,
                    **NO_WAIT)


def test_trickle_server_hits_the_overall_deadline(server, tmp_path):
    data = bytes(range(256)) * 400
    server.files["/slow.bin"] = data
    server.trickle["/slow.bin"] = 4000.0                 # fast enough for min_rate, too slow overall
    with pytest.raises(DownloadError, match=r"did not finish within the overall deadline of 1 s.*partial"):
        dl.download(server.base + "/slow.bin", tmp_path, md5=_md5(data), deadline=1.0, min_rate=100,
                    **NO_WAIT)
    assert (tmp_path / "slow.bin.part").stat().st_size > 0         # kept for a resume


def test_http_500_message_does_not_promise_a_missing_part_file(server, tmp_path):
    server.status["/boom.bin"] = 500
    with pytest.raises(DownloadError) as info:
        dl.download(server.base + "/boom.bin", tmp_path, md5="0" * 32, **NO_WAIT)
    msg = str(info.value)
    assert "HTTP 500" in msg and "Nothing was written" in msg and ".part" not in msg
    assert not (tmp_path / "boom.bin.part").exists()


def test_extracted_files_deleted_are_extracted_again(server, tmp_path):
    data = _zip({"pkg/a.txt": b"alpha", "pkg/sub/b.txt": b"beta"})
    server.files["/pkg.zip"] = data
    dest = tmp_path / "d"
    dl.download(server.base + "/pkg.zip", dest, md5=_md5(data), **NO_WAIT)
    (dest / "pkg" / "sub" / "b.txt").unlink()                      # the old code trusted its marker
    n = len(server.hits)
    dl.download(server.base + "/pkg.zip", dest, md5=_md5(data), **NO_WAIT)
    assert (dest / "pkg" / "sub" / "b.txt").read_bytes() == b"beta"
    assert len(server.hits) == n                                    # extracted again, not downloaded again
    (dest / "pkg" / "a.txt").write_bytes(b"alp")                    # truncated: another size
    dl.download(server.base + "/pkg.zip", dest, md5=_md5(data), **NO_WAIT)
    assert (dest / "pkg" / "a.txt").read_bytes() == b"alpha"


def test_cli_download_into_unwritable_root_is_one_clear_line(server, tmp_path, capsys, monkeypatch):
    from urbankit.cli import main

    data = _zip({"x/a.txt": b"1"})
    server.files["/x.zip"] = data
    monkeypatch.setitem(sources.SOURCES, "test_x", sources.Source(
        "test_x", "t", url=server.base + "/x.zip", filename="x.zip", licence="x", citation=None,
        target="x", md5=_md5(data)))
    assert main(["download", "test_x", "--root", str(_unwritable(tmp_path)), "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert "cannot write to the data folder" in err and "--root" in err and "Traceback" not in err


# ================================================================== registry downloads end to end
def _oscd_archives() -> dict[str, bytes]:
    root = SAMPLES / "oscd"
    return {
        "Onera Satellite Change Detection dataset - Images.zip": _zip(_tree(root / IMAGES, IMAGES)),
        "Onera Satellite Change Detection dataset - Train Labels.zip": _zip(_tree(root / TRAIN, TRAIN)),
        "Onera Satellite Change Detection dataset - Test Labels.zip": _zip({}, dirs=(TEST,)),
    }


def _serve_registry(server, monkeypatch) -> dict[str, bytes]:
    """Serve the OSCD zips, the DS U-Net archive and a Zenodo record; point the registry at them."""
    names = {"Onera Satellite Change Detection dataset - Images.zip": "oscd_images",
             "Onera Satellite Change Detection dataset - Train Labels.zip": "oscd_train_labels",
             "Onera Satellite Change Detection dataset - Test Labels.zip": "oscd_test_labels"}
    archives = _oscd_archives()
    for i, (fname, data) in enumerate(archives.items()):
        path = f"/index.php/s/share{i}/download"
        server.files[path] = data
        src = sources.get_source(names[fname])
        assert src.filename == fname
        monkeypatch.setitem(sources.SOURCES, src.name, dataclasses.replace(
            src, url=server.base + path, md5=_md5(data)))
    s1 = sources.get_source("oscd_s1")
    commit = s1.filename[len("DS_UNet-"):-len(".zip")]
    s1_zip = _zip(_tree(SAMPLES / "oscd_s1" / "data", f"DS_UNet-{commit}/data") |
                  {f"DS_UNet-{commit}/README.md": b"DS U-Net"})
    server.files["/ds_unet.zip"] = s1_zip
    monkeypatch.setitem(sources.SOURCES, "oscd_s1", dataclasses.replace(s1, url=server.base + "/ds_unet.zip"))
    inner = _zip(_tree(SAMPLES / "spacenet7_s1s2", "spacenet7_s1s2_dataset"))
    server.files["/api/records/7794693/files/spacenet7_s1s2_dataset.zip/content"] = inner
    record = {"id": 7794693, "files": [{
        "key": "spacenet7_s1s2_dataset.zip", "size": len(inner), "checksum": f"md5:{_md5(inner)}",
        "links": {"self": server.base + "/api/records/7794693/files/spacenet7_s1s2_dataset.zip/content"}}]}
    server.files["/api/records/7794693"] = json.dumps(record).encode()
    mtum = sources.get_source("sen12_mtum")
    monkeypatch.setitem(sources.SOURCES, "sen12_mtum",
                        dataclasses.replace(mtum, url=server.base + "/api/records/7794693"))
    return archives


def test_urbankit_download_oscd_s1_and_sen12_end_to_end(server, tmp_path, monkeypatch, capsys):
    from urbankit.cli import main
    from urbankit.data import spacenet7

    _serve_registry(server, monkeypatch)
    root = tmp_path / "data"
    assert main(["download", "oscd", "--root", str(root), "--retries", "0"]) == 0
    assert main(["download", "oscd_s1", "--root", str(root), "--retries", "0"]) == 1   # no checksum: refused
    assert "allow-unverified" in capsys.readouterr().err
    assert main(["download", "oscd_s1", "--allow-unverified", "--root", str(root), "--retries", "0"]) == 0
    assert main(["download", "sen12_mtum", "--root", str(root), "--retries", "0"]) == 0
    # the downloaded layouts are what the readers expect
    s1_root = oscd.download_oscd(root, allow_unverified=True, progress=False)[1]
    scene = oscd.read_city(root / "oscd", "riverton", bands="rgb", s1_root=s1_root)
    ref = oscd.read_city(SAMPLES / "oscd", "riverton", bands="rgb", s1_root=SAMPLES / "oscd_s1")
    np.testing.assert_array_equal(scene.optical.values, ref.optical.values)
    np.testing.assert_array_equal(scene.sar.values, ref.sar.values)
    assert oscd.list_cities(root / "oscd", "all") == ["riverton", "lakeside", "hillcrest"]
    sn7_root = spacenet7.download_spacenet7(root, progress=False)
    assert sn7_root == root / "sen12_mtum" / "spacenet7_s1s2_dataset"
    assert spacenet7.list_sites(sn7_root) == spacenet7.list_sites(SAMPLES / "spacenet7_s1s2")


def test_oscd_archive_that_does_not_match_the_md5_is_refused(server, tmp_path, monkeypatch):
    _serve_registry(server, monkeypatch)
    src = sources.get_source("oscd_images")
    monkeypatch.setitem(sources.SOURCES, "oscd_images", dataclasses.replace(src, md5="0" * 32))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        dl.fetch("oscd", tmp_path, retries=0, progress=False)
    assert not list((tmp_path / "oscd").glob("*.zip*"))


def test_zenodo_file_with_a_wrong_md5_is_refused(server, tmp_path, monkeypatch):
    _serve_registry(server, monkeypatch)
    record = json.loads(server.files["/api/records/7794693"])
    record["files"][0]["checksum"] = "md5:" + "0" * 32
    server.files["/api/records/7794693"] = json.dumps(record).encode()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        dl.fetch("sen12_mtum", tmp_path, retries=0, progress=False)


def test_old_plain_text_marker_is_checked_against_the_archive(server, tmp_path):
    data = _zip({"pkg/a.txt": b"alpha"})
    server.files["/pkg.zip"] = data
    dest = tmp_path / "d"
    dl.download(server.base + "/pkg.zip", dest, md5=_md5(data), **NO_WAIT)
    (dest / ".pkg.zip.extracted").write_text("extracted by urbankit.data.download\n")   # an older marker
    assert dl.download(server.base + "/pkg.zip", dest, md5=_md5(data), **NO_WAIT) == dest   # complete: fine
    (dest / "pkg" / "a.txt").unlink()
    dl.download(server.base + "/pkg.zip", dest, md5=_md5(data), **NO_WAIT)
    assert (dest / "pkg" / "a.txt").read_bytes() == b"alpha"
