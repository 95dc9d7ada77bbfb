"""The chapters' setup cell on a Colab first run, emulated offline; the one repository setting."""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from urbankit import chapter_setup
from urbankit.book import chapter_notebooks

REPO = Path(__file__).resolve().parents[1]
#: Packages Colab pins for its kernel and its GPU stack: the setup cell must not change them.
KERNEL_PACKAGES = ("ipykernel", "jupyter_client", "tornado", "torch", "numpy", "pandas")

_DRIVER = textwrap.dedent('''
    import importlib.util, json, os, sys
    from importlib import metadata
    sys.path.insert(0, sys.argv[2])
    import google.colab  # the fake: Colab's kernel has imported it before any cell runs
    packages = json.loads(sys.argv[3])
    before = {name: metadata.version(name) for name in packages}
    assert importlib.util.find_spec("urbankit") is None, "urbankit importable before the cell"
    profile = "quick"
    cell = open(sys.argv[1]).read()
    exec(cell, globals())                      # first run in a fresh kernel
    import urbankit.inference                  # the import that failed on Colab's first run
    first = (urbankit.__file__, os.getcwd())
    exec(cell, globals())                      # second run in the same kernel
    after = {name: metadata.version(name) for name in packages}
    print("RESULT " + json.dumps({"first": first, "second": (urbankit.__file__, os.getcwd()),
                                  "before": before, "after": after}))
''')


def _child_environment(tmp_path: Path) -> Path:
    """A venv that sees this test environment's packages but installs into its own folder.

    Returns its python. The parent's site-packages come in through a ``.pth`` file, which puts
    them on ``sys.path`` without running their ``.pth`` files: the parent's editable urbankit is
    therefore not importable, as in a fresh Colab runtime, and pip never writes into the parent.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "_test_parent_env.pth").write_text("\n".join(parents) + "\n")
    return python


def _versions(python: Path, packages: list[str], cwd: Path) -> dict:
    code = ("import json, sys; from importlib import metadata; "
            "print(json.dumps({n: metadata.version(n) for n in json.loads(sys.argv[1])}))")
    out = subprocess.run([str(python), "-c", code, json.dumps(packages)], cwd=cwd, check=True,
                         capture_output=True, text=True, env=_clean_env())
    return json.loads(out.stdout)


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
           and not k.startswith("URBANKIT_")}
    return {**env, **extra}


@pytest.mark.slow
def test_setup_cell_installs_on_the_first_colab_run_and_again_without_changing_kernel_packages(tmp_path):
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                                     check=False, capture_output=True).returncode != 0:
        pytest.skip("needs git and a git checkout: the test serves the repository from the local clone")
    from importlib import metadata

    packages = [p for p in KERNEL_PACKAGES if _installed(metadata, p)]
    assert {"torch", "numpy", "pandas"} <= set(packages)
    python = _child_environment(tmp_path)
    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s module."""\n')
    content = tmp_path / "content"   # Colab's working folder
    content.mkdir()
    cell = tmp_path / "setup_cell.py"
    cell.write_text(chapter_setup.setup_cell_source())
    env = _clean_env(URBANKIT_SOURCE=f"file://{REPO}", PIP_NO_INPUT="1",
                     URBANKIT_PIP_ARGS="--no-index --no-build-isolation")
    before = _versions(python, packages, content)
    proc = subprocess.run([str(python), "-c", _DRIVER, str(cell), str(fake), json.dumps(packages)],
                          check=False, cwd=content, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    checkout = content / "urbankit-src"
    for run in ("first", "second"):
        module_file, cwd = result[run]
        assert Path(module_file).resolve() == (checkout / "urbankit" / "__init__.py").resolve(), run
        assert Path(cwd).resolve() == (checkout / "book").resolve(), run
    assert not (checkout / "urbankit-src").exists() and not (content / "urbankit").exists()  # one clone
    assert "urbankit 0.1.0" in proc.stdout and "profile quick" in proc.stdout  # the report line
    assert "WARNING" not in proc.stdout + proc.stderr and "icense" not in proc.stderr  # quiet
    assert result["before"] == result["after"] == before
    assert _versions(python, packages, content) == before   # a new process sees the same versions
    fresh = subprocess.run([str(python), "-c", "import urbankit, urbankit.inference; print(urbankit.__file__)"],
                           check=False, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr   # a new kernel imports the editable install
    assert Path(fresh.stdout.strip()).resolve().is_relative_to(checkout.resolve())


def _installed(metadata, name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_pins_cover_the_installed_kernel_packages_and_never_urbankit():
    pins = chapter_setup._pinned_distributions()
    names = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    assert {"numpy", "pandas", "torch"} <= names
    assert "urbankit" not in names
    assert all(p.count("==") == 1 for p in pins)


def test_badges_setup_cells_and_config_follow_the_one_repository_setting():
    problems = chapter_setup.out_of_sync(REPO)
    assert not problems, "run `python -m urbankit.chapter_setup`:\n" + "\n".join(problems)


def test_sync_book_writes_another_url_everywhere(tmp_path):
    import nbformat

    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build", ".*"))
    url = "https://github.com/someone/fork-of-urbankit"
    changed = chapter_setup.sync_book(tmp_path, url)
    assert tmp_path / "_config.yml" in changed
    assert chapter_setup.out_of_sync(tmp_path, url) == []
    assert chapter_setup.out_of_sync(tmp_path)   # the committed setting now differs
    nb = nbformat.read(chapter_notebooks(tmp_path)[0], as_version=4)
    assert "someone/fork-of-urbankit/blob/main/book/" in nb.cells[0].source
    assert chapter_setup.sync_book(tmp_path, url) == []   # idempotent
