"""The chapters' setup cell, its Colab installer, and the repository links of the book.

Every chapter starts with the same *setup cell* (:func:`setup_cell_source`, tagged ``setup``)
right after its parameters cell. In Colab it clones the repository once into
``urbankit-src/`` (a folder that is not called ``urbankit``: an empty folder of the package's
name on the import path would shadow the package as a namespace package), installs it with
:func:`install_in_colab` and imports it in the same session; everywhere it prints the device,
the versions and the profile (:func:`report`) and applies the book's figure style.

The repository URL is set in one place, :data:`urbankit.REPOSITORY_URL`. :func:`sync_book`
writes it into ``_config.yml`` (launch and repository buttons), every chapter's *Open in Colab*
badge and setup cell; :func:`out_of_sync` lists what differs (a test fails on it). After
changing the URL or the cell, run ``python -m urbankit.chapter_setup``.

This module imports only the standard library at import time: the setup cell imports it from
the fresh clone before urbankit's dependencies are installed.
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

#: Branch the badges and the launch buttons open.
REPOSITORY_BRANCH = "main"
#: Tag of the setup cell in every chapter.
SETUP_TAG = "setup"
#: Marker written into the checkout once ``pip install`` succeeded (later runs skip pip).
_INSTALLED_MARKER = ".urbankit-installed"
#: Environment variables the setup cell honours (a local clone for tests, offline pip options).
SOURCE_ENV, PIP_ARGS_ENV, CHECKOUT_ENV = "URBANKIT_SOURCE", "URBANKIT_PIP_ARGS", "URBANKIT_CHECKOUT"

_SETUP_CELL = '''\
# Setup (the same in every chapter). In Colab: clone and install urbankit once, keeping Colab's own
# torch, numpy, pandas and kernel packages, then import it in this session. Prints device and versions.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    checkout = os.environ.setdefault("{checkout_env}", os.path.abspath("urbankit-src"))  # not ./urbankit
    if not os.path.isdir(checkout):
        source = os.environ.get("{source_env}", "{url}")
        subprocess.run(["git", "clone", "-q", "--depth", "1", source, checkout], check=True)
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    from urbankit.chapter_setup import install_in_colab

    install_in_colab(checkout)  # pip install -e with every installed package pinned; then cd book/

from urbankit.chapter_setup import report

report(profile)'''


def repository_url() -> str:
    """The repository URL of the book (:data:`urbankit.REPOSITORY_URL`), without a trailing slash."""
    from . import REPOSITORY_URL

    return REPOSITORY_URL.rstrip("/")


def setup_cell_source(url: str | None = None) -> str:
    """Source of the setup cell that every chapter carries (``url`` defaults to the setting)."""
    return _SETUP_CELL.format(url=url or repository_url(), source_env=SOURCE_ENV,
                              checkout_env=CHECKOUT_ENV)


def colab_url(notebook: str, url: str | None = None) -> str:
    """The *Open in Colab* address of ``notebook`` (a path inside the repository, e.g. ``book/00_x.ipynb``)."""
    github = re.sub(r"^https?://github\.com/", "", url or repository_url())
    return f"https://colab.research.google.com/github/{github}/blob/{REPOSITORY_BRANCH}/{notebook}"


def colab_badge(notebook: str, url: str | None = None) -> str:
    """The markdown badge line of a chapter's first cell."""
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook, url)})")


# ---- the Colab installer (called by the setup cell) ----
def _pinned_distributions(exclude: str = "urbankit") -> list[str]:
    """``name==version`` for every installed distribution (first on ``sys.path`` wins)."""
    from importlib import metadata

    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if not key or key == exclude or key in pins or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+!-]*",
                                                                          dist.version or ""):
            continue
        pins[key] = f"{name}=={dist.version}"
    return sorted(pins.values())


def install_in_colab(checkout: str | os.PathLike) -> None:
    """Install the clone at ``checkout`` into this Python without changing any installed package.

    Runs ``pip install -e checkout`` once, with a constraints file that pins every installed
    distribution to its current version (Colab's CUDA torch, numpy, pandas, ipykernel,
    jupyter_client, tornado, ...): pip only adds what is missing, or fails naming the
    conflict instead of upgrading Colab's packages. pip's output is shown only on failure.
    ``$URBANKIT_PIP_ARGS`` adds pip options (``--no-index --no-build-isolation`` offline).
    Later calls skip pip (a marker file in the checkout). Finally makes this session import
    the checkout and changes into its ``book/`` folder, where the chapters run.

    Raises:
        RuntimeError: pip failed (its last output lines are in the message).
    """
    checkout = Path(checkout).resolve()
    marker = checkout / _INSTALLED_MARKER
    if not marker.is_file():
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="urbankit-pins-", delete=False) as f:
            f.write("\n".join(_pinned_distributions()) + "\n")
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-c", f.name, "-e", str(checkout), *os.environ.get(PIP_ARGS_ENV, "").split()]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        if proc.returncode != 0:
            log = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise RuntimeError(f"installing urbankit from {checkout} failed (pip exit {proc.returncode}):\n{log}")
        marker.write_text("installed by urbankit.chapter_setup.install_in_colab\n")
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    importlib.invalidate_caches()
    os.chdir(checkout / "book")


def _cpu_kernels(torch) -> str:
    """``"AVX2 kernels (pinned)"``: the vector level of torch's CPU kernels, and whether it is the kit's pin."""
    from .profiles import cpu_kernel_pins

    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    pins = cpu_kernel_pins()
    pinned = bool(pins) and all(os.environ.get(name) == value for name, value in pins.items())
    return f"{capability} kernels" + (" (pinned by urbankit for reproducible outputs)" if pinned else "")


def report(profile: str = "quick") -> None:
    """Print one line: urbankit, Python, torch/numpy/pandas versions, the device and ``profile``.

    On a CPU the device names the vector level of torch's kernels and whether the kit's
    CPU-kernel pins are in effect (:func:`urbankit.profiles.cpu_kernel_pins`).

    Also applies the book's figure style (:func:`urbankit.viz.use_book_style`).
    """
    import platform

    import numpy
    import pandas
    import torch

    from . import __version__
    from .viz import use_book_style

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "Apple GPU (mps)"
    else:
        device = f"no GPU: CPU with {os.cpu_count()} cores, {_cpu_kernels(torch)}"
    use_book_style()
    print(f"urbankit {__version__} | Python {platform.python_version()} | torch {torch.__version__}, "
          f"numpy {numpy.__version__}, pandas {pandas.__version__} | {device} | profile {profile}")


# ---- keeping the book in sync with the one setting ----
_BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
_CONFIG_URL_RE = re.compile(r"(?m)^(repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*)(\S+)")


def _chapters(root: Path) -> list[Path]:
    from .book import chapter_notebooks

    return chapter_notebooks(root)


def _setup_index(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if SETUP_TAG in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def _sync_notebook(nb, rel: str, url: str) -> bool:
    """Put the badge and the setup cell of ``url`` into ``nb`` (in memory); True when it changed."""
    from nbformat.v4 import new_code_cell

    before = _dumps(nb)
    head = nb.cells[0]
    head.source = _BADGE_RE.sub(colab_badge(rel, url), head.source)
    source = setup_cell_source(url)
    index = _setup_index(nb)
    if index is None:
        params = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 0)
        cell = new_code_cell(source)
        cell.metadata["tags"] = [SETUP_TAG, "hide-input"]
        nb.cells.insert(params + 1, cell)
    elif nb.cells[index].source != source:
        nb.cells[index].source = source
        nb.cells[index].outputs = []
        nb.cells[index].execution_count = None
    return _dumps(nb) != before


def _dumps(nb) -> str:
    import nbformat

    return nbformat.writes(nb)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, prefix=f".{path.stem}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    Path(tmp).replace(path)


def out_of_sync(root: Path, url: str | None = None) -> list[str]:
    """What differs from the setting: ``_config.yml``, badges and setup cells (empty when in sync)."""
    import nbformat

    url = url or repository_url()
    problems = []
    match = _CONFIG_URL_RE.search((root / "_config.yml").read_text())
    if not match or match.group(2).rstrip("/") != url:
        problems.append(f"_config.yml: repository url is {match.group(2) if match else 'missing'}, not {url}")
    for path in _chapters(root):
        rel = path.relative_to(root).as_posix()
        nb = nbformat.read(path, as_version=4)
        if colab_badge(rel, url) not in nb.cells[0].source:
            problems.append(f"{rel}: the first cell has no Open-in-Colab badge for {url}")
        index = _setup_index(nb)
        if index is None or nb.cells[index].source != setup_cell_source(url):
            problems.append(f"{rel}: the setup cell (tag {SETUP_TAG!r}) differs from urbankit.chapter_setup")
    return problems


def sync_book(root: Path, url: str | None = None) -> list[Path]:
    """Write the setting into ``_config.yml``, every badge and every setup cell; returns changed files."""
    import nbformat

    url = url or repository_url()
    changed = []
    config = root / "_config.yml"
    text = config.read_text()
    new = _CONFIG_URL_RE.sub(lambda m: m.group(1) + url, text, count=1)
    if new != text:
        _write_atomic(config, new)
        changed.append(config)
    for path in _chapters(root):
        nb = nbformat.read(path, as_version=4)
        if _sync_notebook(nb, path.relative_to(root).as_posix(), url):
            _write_atomic(path, nbformat.writes(nb) + "\n")
            changed.append(path)
    return changed


if __name__ == "__main__":  # python -m urbankit.chapter_setup
    from .paths import repo_root

    for changed_path in sync_book(repo_root()):
        print("updated", changed_path)
