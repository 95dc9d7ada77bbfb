"""The download manager against a local HTTP server on loopback that injects faults.

The server (a ThreadingHTTPServer on 127.0.0.1, ephemeral port) serves byte strings registered
per path, with faults: ``drop`` (close the connection half way through the first response),
``slow`` (sleep before answering), ``404``; it honours ``Range: bytes=N-``. Every test is fast
(small files, timeouts of a fraction of a second, backoff 0).
"""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import time
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from urbankit.data.download import download, fetch, safe_extract
from urbankit.data.sources import SOURCES, Source, get_source, ghsl_tile, worldpop
from urbankit.errors import ConfigError, DownloadError

PAYLOAD = bytes(range(256)) * 800  # 200 kB, not a multiple of the chunk size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802
        srv = self.server
        path = self.path.split("?")[0]
        srv.log.append((path, self.headers.get("Range")))
        if len(srv.log) > 200:  # bounded: a runaway client cannot loop forever
            self.send_error(503)
            return
        entry = srv.files.get(path)
        if entry is None:
            self.send_error(404, "Not Found")
            return
        data, fault = entry
        if fault == "slow":
            time.sleep(srv.slow_seconds)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and fault != "norange":
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if fault == "drop" and srv.drops.get(path, 0) > 0:
            srv.drops[path] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)


@pytest.fixture
def server(local_http_server):
    return local_http_server(_Handler, files={}, drops={}, log=[], slow_seconds=1.0)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FAST = dict(retries=2, timeout=2.0, backoff=0.0, progress=False)  # generous: loaded CI machines


def test_plain_download_verifies_and_renames(server, tmp_path):
    server.files["/a.bin"] = (PAYLOAD, None)
    out = download(server.base + "/a.bin", tmp_path, sha256=_sha(PAYLOAD), **FAST)
    assert out == tmp_path / "a.bin"
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()
    # a second call finds the verified file and does not download again
    n = len(server.log)
    assert download(server.base + "/a.bin", tmp_path, sha256=_sha(PAYLOAD), **FAST) == out
    assert len(server.log) == n


def test_md5_is_accepted(server, tmp_path):
    server.files["/m.bin"] = (PAYLOAD, None)
    out = download(server.base + "/m.bin", tmp_path, md5=hashlib.md5(PAYLOAD).hexdigest(), **FAST)
    assert out.read_bytes() == PAYLOAD


def test_connection_dropped_midway_resumes_with_range(server, tmp_path):
    server.files["/big.bin"] = (PAYLOAD, "drop")
    server.drops["/big.bin"] = 1
    out = download(server.base + "/big.bin", tmp_path, sha256=_sha(PAYLOAD), **FAST)
    assert out.read_bytes() == PAYLOAD
    ranges = [r for p, r in server.log if p == "/big.bin"]
    assert ranges[0] is None
    assert ranges[1] == f"bytes={len(PAYLOAD) // 2}-"  # resumed where the first response stopped


def test_existing_partial_file_is_resumed(server, tmp_path):
    server.files["/p.bin"] = (PAYLOAD, None)
    (tmp_path / "p.bin.part").write_bytes(PAYLOAD[:1000])
    out = download(server.base + "/p.bin", tmp_path, sha256=_sha(PAYLOAD), **FAST)
    assert out.read_bytes() == PAYLOAD
    assert server.log[-1] == ("/p.bin", "bytes=1000-")


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.files["/n.bin"] = (PAYLOAD, "norange")
    (tmp_path / "n.bin.part").write_bytes(b"garbage" * 10)
    out = download(server.base + "/n.bin", tmp_path, sha256=_sha(PAYLOAD), **FAST)
    assert out.read_bytes() == PAYLOAD


def test_wrong_checksum_keeps_nothing(server, tmp_path):
    server.files["/bad.bin"] = (PAYLOAD, None)
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        download(server.base + "/bad.bin", tmp_path, sha256="0" * 64, **FAST)
    assert "/bad.bin" in str(info.value)
    assert not (tmp_path / "bad.bin").exists()
    assert not (tmp_path / "bad.bin.part").exists()


def test_wrong_size_is_a_mismatch(server, tmp_path):
    server.files["/s.bin"] = (PAYLOAD, None)
    with pytest.raises(DownloadError, match="size"):
        download(server.base + "/s.bin", tmp_path, sha256=_sha(PAYLOAD), size=123, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_http_404_names_url_and_status(server, tmp_path):
    url = server.base + "/missing.zip"
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path, sha256="0" * 64, **FAST)
    msg = str(info.value)
    assert "404" in msg and url in msg
    assert len([p for p, _ in server.log if p == "/missing.zip"]) == 1  # 4xx is not retried
    assert not any(tmp_path.iterdir())


def test_slow_server_times_out_after_retries(server, tmp_path):
    server.files["/slow.bin"] = (PAYLOAD, "slow")
    server.slow_seconds = 0.6
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as info:
        download(server.base + "/slow.bin", tmp_path, sha256=_sha(PAYLOAD), retries=1, timeout=0.15,
                 backoff=0.0, progress=False)
    assert "/slow.bin" in str(info.value)
    assert "2 attempts" in str(info.value)
    assert len([p for p, _ in server.log if p == "/slow.bin"]) == 2
    assert time.monotonic() - t0 < 10  # generous bound: the test itself must stay fast
    assert not (tmp_path / "slow.bin").exists()


def test_offline_connection_refused(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    url = f"http://127.0.0.1:{port}/data.zip"
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path, sha256="0" * 64, **FAST)
    msg = str(info.value)
    assert url in msg
    assert "offline" in msg and "cannot be reached" in msg


def test_unverified_download_is_refused_unless_allowed(server, tmp_path):
    server.files["/u.bin"] = (PAYLOAD, None)
    with pytest.raises(DownloadError, match="allow_unverified=True"):
        download(server.base + "/u.bin", tmp_path, **FAST)
    assert server.log == []  # refused before any request
    out = download(server.base + "/u.bin", tmp_path, allow_unverified=True, **FAST)
    assert out.read_bytes() == PAYLOAD


# ------------------------------------------------------------------ archives
def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_bytes(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        build(tf)
    return buf.getvalue()


def _add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _add_link(tf: tarfile.TarFile, name: str, target: str, kind=tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tf.addfile(info)


def test_zip_archive_is_downloaded_and_extracted(server, tmp_path):
    data = _zip_bytes({"levir/A/x.png": b"a", "levir/label/x.png": b"l"})
    server.files["/good.zip"] = (data, None)
    dest = tmp_path / "d"
    out = download(server.base + "/good.zip", dest, sha256=_sha(data), **FAST)
    assert out == dest
    assert (dest / "levir" / "A" / "x.png").read_bytes() == b"a"
    assert (dest / "good.zip").is_file()
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract-")]


def test_tar_gz_with_internal_symlink_is_fine(tmp_path):
    def build(tf):
        _add_file(tf, "pkg/data.txt", b"hello")
        _add_link(tf, "pkg/link.txt", "data.txt")

    arch = tmp_path / "ok.tar.gz"
    arch.write_bytes(_tar_bytes(build))
    dest = tmp_path / "out"
    safe_extract(arch, dest)
    assert (dest / "pkg" / "data.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("case", ["traversal", "absolute", "symlink_out", "symlink_abs", "hardlink_out",
                                  "device"])
def test_malicious_tar_is_refused_and_nothing_written(tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    evil_abs = str(outside / "evil_abs")

    def build(tf):
        _add_file(tf, "safe/first.txt", b"ok")  # a harmless member before the bad one
        if case == "traversal":
            _add_file(tf, "../evil", b"x")
        elif case == "absolute":
            _add_file(tf, evil_abs, b"x")
        elif case == "symlink_out":
            _add_link(tf, "safe/link", "../../outside")
        elif case == "symlink_abs":
            _add_link(tf, "safe/link", "/etc/passwd")
        elif case == "hardlink_out":
            _add_link(tf, "safe/hl", "../outside/secret", kind=tarfile.LNKTYPE)
        elif case == "device":
            info = tarfile.TarInfo("safe/dev")
            info.type = tarfile.CHRTYPE
            tf.addfile(info)

    arch = tmp_path / "evil.tar.gz"
    arch.write_bytes(_tar_bytes(build))
    dest = tmp_path / "target"
    with pytest.raises(DownloadError, match="unsafe") as info:
        safe_extract(arch, dest)
    assert "nothing was extracted" in str(info.value)
    assert not dest.exists()
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/urbankit_evil_abs.txt", "a/../../evil.txt",
                                  "C:/evil.txt"])
def test_malicious_zip_is_refused(tmp_path, name):
    arch = tmp_path / "evil.zip"
    arch.write_bytes(_zip_bytes({"ok.txt": b"ok", name: b"x"}))
    dest = tmp_path / "target"
    with pytest.raises(DownloadError, match="unsafe"):
        safe_extract(arch, dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/urbankit_evil_abs.txt").exists()


def test_zip_symlink_pointing_outside_is_refused(tmp_path):
    arch = tmp_path / "link.zip"
    with zipfile.ZipFile(arch, "w") as zf:
        info = zipfile.ZipInfo("pkg/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../outside")
    with pytest.raises(DownloadError, match="symlink"):
        safe_extract(arch, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_malicious_archive_via_download_extracts_nothing(server, tmp_path):
    data = _tar_bytes(lambda tf: _add_file(tf, "../evil", b"x"))
    server.files["/evil.tar.gz"] = (data, None)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="unsafe"):
        download(server.base + "/evil.tar.gz", dest, sha256=_sha(data), **FAST)
    assert not (tmp_path / "evil").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["evil.tar.gz"]  # only the (verified) archive


def test_corrupt_archive_gives_clear_error(tmp_path):
    arch = tmp_path / "broken.zip"
    arch.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DownloadError, match="not a valid archive"):
        safe_extract(arch, tmp_path / "t")


# ------------------------------------------------------------------ registry and fetch
def test_registry_entries_are_consistent():
    assert {"oscd_images", "oscd_train_labels", "oscd_test_labels", "oscd_s1", "sen12_mtum", "sen12_gum",
            "levir_cd_train", "whu_cd", "dsifn", "sysu_cd", "ghsl_built_s_2020_100m",
            "ghsl_pop_2020_100m"} <= set(SOURCES)
    bib = (Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text()
    for s in SOURCES.values():
        assert s.url.startswith("https://"), s.name
        assert s.licence and s.filename and s.target
        if s.citation:
            assert "{" + s.citation + "," in bib, f"{s.name}: unknown bib key {s.citation}"
        if s.md5:
            assert len(s.md5) == 32 and int(s.md5, 16) >= 0
        if s.sha256:
            assert len(s.sha256) == 64
    oscd = get_source("oscd_images")       # the pinned public mirror torchgeo uses, with its md5
    assert not oscd.manual and oscd.url.startswith("https://partage.imt.fr/") and oscd.md5
    assert get_source("whu_cd").manual
    assert get_source("sen12_mtum").zenodo_record == "7794693" and get_source("sen12_mtum").verified
    with pytest.raises(ConfigError, match="known"):
        get_source("nope")


def test_manual_source_raises_instructions(tmp_path):
    with pytest.raises(DownloadError) as info:
        fetch("whu_cd", tmp_path, progress=False)
    msg = str(info.value)
    assert "cannot be downloaded automatically" in msg and "gpcv.whu.edu.cn" in msg
    assert str(tmp_path / "whu_cd") in msg and "Building change detection dataset_add.zip" in msg


def test_manual_source_already_in_place_is_verified_and_extracted(tmp_path):
    payload = _zip_bytes({"Onera/README.txt": b"hi"})
    src = Source("fake_manual", "Fake", url="https://example.invalid/page", filename="fake.zip",
                 licence="x", citation=None, target="fake", md5=hashlib.md5(payload).hexdigest(),
                 manual=True, notes="needs a login.")
    dest = tmp_path / "fake"
    with pytest.raises(DownloadError, match="cannot be downloaded automatically"):
        download(src, dest, progress=False)
    dest.mkdir()
    (dest / "fake.zip").write_bytes(payload)
    assert download(src, dest, progress=False) == dest
    assert (dest / "Onera" / "README.txt").read_bytes() == b"hi"
    (dest / "fake.zip").write_bytes(b"corrupt")
    with pytest.raises(DownloadError, match="does not verify"):
        download(src, dest, progress=False)


def test_unverified_registry_source_needs_opt_in(tmp_path):
    assert not get_source("levir_cd_256").verified
    with pytest.raises(DownloadError, match="allow_unverified"):
        fetch("levir_cd_256", tmp_path, progress=False)


def test_fetch_uses_registry_entry(server, tmp_path, monkeypatch):
    data = _zip_bytes({"A/t.png": b"1"})
    server.files["/levir.zip"] = (data, None)
    src = Source("test_levir", "t", url=server.base + "/levir.zip", filename="levir.zip", licence="x",
                 citation=None, target="levir_cd", sha256=_sha(data))
    monkeypatch.setitem(SOURCES, "test_levir", src)
    out = fetch("test_levir", tmp_path, progress=False, timeout=2)
    assert out == tmp_path / "levir_cd"
    assert (out / "A" / "t.png").read_bytes() == b"1"


def test_ghsl_and_worldpop_helpers():
    t = ghsl_tile(8, 29)
    assert t.url.endswith("/V1-0/tiles/GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0_R8_C29.zip")
    assert t.sha256 is None and t.md5 is None
    p = ghsl_tile(4, 19, product="POP", epoch=2015, resolution=1000)
    assert "GHS_POP_E2015_GLOBE_R2023A_54009_1000" in p.url
    with pytest.raises(ConfigError):
        ghsl_tile(1, 1, epoch=2021)
    w = worldpop("bdi", 2020)
    assert w.url == get_source("worldpop_bdi_2020_1km").url
    assert worldpop("KEN", 2015, resolution="100m").filename == "ken_ppp_2015.tif"
    with pytest.raises(ConfigError):
        worldpop("KE", 2015)


def test_cli_list_and_error(capsys, tmp_path):
    from urbankit.cli import main

    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    assert "oscd_images" in out and "levir_cd_train" in out
    assert main(["download", "whu_cd", "--root", str(tmp_path)]) == 1
    assert "cannot be downloaded automatically" in capsys.readouterr().err


def test_no_network_at_import():
    import subprocess
    import sys

    code = ("import socket\n"
            "def boom(*a, **k):\n    raise SystemExit('network used at import')\n"
            "socket.socket.connect = boom\n"
            "import urbankit.data.download, urbankit.data.sources\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
