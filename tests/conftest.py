"""Shared pytest fixtures."""
from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real`` beside the checkout; the test is skipped when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip("../shared/data/real is not present (real-data tests need the shared folder)")
    return REAL_DATA


@pytest.fixture
def local_http_server():
    """A factory ``start(handler_class, **state)`` of HTTP servers on 127.0.0.1 (a free port).

    Each server gets the ``state`` attributes and ``base`` (its URL); all are shut down after
    the test. Download tests use it instead of the network.
    """
    started = []

    def start(handler, **state):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        for key, value in state.items():
            setattr(httpd, key, value)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
        started.append((httpd, thread))
        return httpd

    yield start
    for httpd, thread in started:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
