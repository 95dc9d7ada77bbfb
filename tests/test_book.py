"""The book runner: papermill execution under profiles, failures, inplace rules, HTML build."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from urbankit.book import chapter_notebooks, run_book, toc_entries
from urbankit.errors import BookError, ConfigError

REPO = Path(__file__).resolve().parents[1]


def _notebook(path: Path, code: list[str]) -> None:
    nb = new_notebook()
    nb.cells.append(new_markdown_cell(f"# {path.stem}"))
    params = new_code_cell('profile = "quick"\ndevice = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    nb.cells.extend(new_code_cell(src) for src in code)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def mini_book(tmp_path: Path) -> Path:
    """A minimal checkout: _toc.yml, book/intro.md and two chapters (one prints the profile)."""
    (tmp_path / "urbankit").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text("title: mini\nexecute:\n  execute_notebooks: 'off'\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    _notebook(tmp_path / "book" / "01_first.ipynb", ["print('profile is', profile)"])
    _notebook(tmp_path / "book" / "02_second.ipynb", ["x = 1 + 1\nprint(x)"])
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/01_first\n  - file: book/02_second\n")
    return tmp_path


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_toc_entries_and_selection(mini_book):
    assert toc_entries(mini_book) == ["book/intro", "book/01_first", "book/02_second"]
    assert [p.stem for p in chapter_notebooks(mini_book, ["02"])] == ["02_second"]
    with pytest.raises(ConfigError, match="names no chapter"):
        chapter_notebooks(mini_book, ["99"])


def test_chapter_selection_is_exact_by_number_name_or_path(mini_book):
    for name in ("10_tenth", "11_eleventh"):
        _notebook(mini_book / "book" / f"{name}.ipynb", ["pass"])
    (mini_book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n" + "".join(
        f"  - file: book/{n}\n" for n in ("01_first", "02_second", "10_tenth", "11_eleventh")))

    def stems(*items):
        return [p.stem for p in chapter_notebooks(mini_book, list(items))]

    assert stems("1") == stems("01") == stems("first") == stems("01_first") == ["01_first"]  # not 10, 11
    assert stems("book/10_tenth.ipynb") == stems("10_tenth.ipynb") == ["10_tenth"]
    assert stems("11", "2") == ["02_second", "11_eleventh"]   # book order
    for wrong in ("0", "1_first", "ten", "book/99_x.ipynb"):
        with pytest.raises(ConfigError, match="names no chapter"):
            chapter_notebooks(mini_book, [wrong])


def test_options_are_checked_before_any_chapter_runs(mini_book, monkeypatch):
    monkeypatch.setenv("URBANKIT_REAL_DATA", str(mini_book / "nowhere"))
    with pytest.raises(ConfigError, match="--data-root"):
        run_book(mini_book, profile="real", build=False, log=lambda *_: None)
    with pytest.raises(ConfigError, match="not a folder"):
        run_book(mini_book, profile="quick", data_root=str(mini_book / "nowhere"), build=False)
    with pytest.raises(ConfigError, match="timeout"):
        run_book(mini_book, profile="quick", timeout=0, build=False)
    assert not (mini_book / "_build").exists()   # nothing ran, nothing was staged


def test_toc_listing_a_missing_file_is_an_error(mini_book):
    (mini_book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nope\n")
    with pytest.raises(BookError, match="book/nope"):
        chapter_notebooks(mini_book)


def test_full_run_writes_under_build_and_leaves_book_untouched(mini_book):
    before = _digest(mini_book / "book")
    lines: list[str] = []
    results = run_book(mini_book, profile="full", device="cpu", build=False, log=lines.append)
    assert [r.status for r in results] == ["ok", "ok"]
    assert _digest(mini_book / "book") == before
    executed = nbformat.read(mini_book / "_build" / "stage" / "full" / "book" / "01_first.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "profile is full" in outputs  # papermill injected the profile
    assert any(re.match(r"\[1/2\] 01_first: ok", line) for line in lines)  # progress line per chapter
    table = "\n".join(lines)
    assert "chapter" in table and "status" in table and "seconds" in table and "02_second" in table


def test_inplace_is_quick_only(mini_book):
    with pytest.raises(ConfigError, match="quick"):
        run_book(mini_book, profile="full", inplace=True, build=False, log=lambda *_: None)


def test_inplace_quick_refreshes_outputs_without_injected_cell(mini_book):
    run_book(mini_book, profile="quick", inplace=True, build=False, log=lambda *_: None)
    nb = nbformat.read(mini_book / "book" / "01_first.ipynb", as_version=4)
    tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
    assert "injected-parameters" not in tags
    assert "profile is quick" in nb.cells[2].outputs[0]["text"]


def test_failing_chapter_names_chapter_and_cell_and_other_chapters_still_run(mini_book):
    _notebook(mini_book / "book" / "01_first.ipynb", ["a = 1", "raise ValueError('broken on purpose')"])
    lines: list[str] = []
    with pytest.raises(BookError) as info:
        run_book(mini_book, profile="quick", build=False, log=lines.append)
    message = str(info.value)
    assert "01_first" in message and "broken on purpose" in message
    # counted from 1 over the chapter's own cells (markdown, parameters, a = 1, raise): the 4th of 4
    assert "cell 4 of 4 (In [" in message and "0-based" not in message
    assert any("02_second: ok" in line for line in lines)


def test_cli_exits_non_zero_on_a_broken_chapter(mini_book):
    _notebook(mini_book / "book" / "02_second.ipynb", ["1 / 0"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "urbankit", "book", "--no-build"], cwd=mini_book,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert "02_second" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert "01_first: ok" in proc.stdout


def test_cli_rejects_inplace_with_full(mini_book):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "urbankit", "book", "--profile", "full", "--inplace"],
                          cwd=mini_book, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "--inplace" in proc.stderr


@pytest.mark.slow
def test_html_book_builds_offline_and_links_every_chapter(tmp_path):
    """End to end: build the real book from the committed notebooks into a temporary folder."""
    run_book(REPO, profile="quick", execute=False, out_root=tmp_path, log=lambda *_: None)
    html = tmp_path / "_build" / "html"
    index = html / "index.html"
    assert index.is_file()
    intro = (html / "book" / "intro.html").read_text()
    for nb in chapter_notebooks(REPO):
        page = html / "book" / f"{nb.stem}.html"
        assert page.is_file(), f"no page for chapter {nb.stem}"
        assert f"{nb.stem}.html" in intro, f"the intro page does not link chapter {nb.stem}"
        text = page.read_text()
        assert "colab.research.google.com" in text, f"no Colab launch link on {nb.stem}"
    assert "executed with" in (html / "book" / "intro.html").read_text()   # the release line
    assert (html / "_static" / "urbankit.css").is_file()


def _declaring_notebook(path: Path, params: str, code: list[str]) -> None:
    nb = new_notebook()
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {path.stem}"), cell, *(new_code_cell(c) for c in code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_recipe_overrides_reach_chapters_that_declare_them_and_only_those(mini_book):
    _declaring_notebook(mini_book / "book" / "02_second.ipynb",
                        'profile = "quick"\ndevice = None\nrecipe_overrides = None',
                        ["print('overrides', recipe_overrides)"])
    logs: list[str] = []
    run_book(mini_book, profile="quick", build=False, recipe_overrides=["lr=1e-4", "epochs=3"], log=logs.append)
    out = nbformat.read(mini_book / "_build" / "stage" / "quick" / "book" / "02_second.ipynb", 4)
    printed = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert "overrides {'lr': 0.0001, 'epochs': 3}" in printed
    assert any("01_first: trains no recipe model" in line for line in logs)


def test_run_cache_reaches_chapters_that_declare_it_as_an_absolute_path(mini_book, tmp_path, monkeypatch):
    _declaring_notebook(mini_book / "book" / "02_second.ipynb",
                        'profile = "quick"\ndevice = None\nrun_cache = None',
                        ["print('cache', run_cache)"])
    monkeypatch.chdir(tmp_path)
    logs: list[str] = []
    run_book(mini_book, profile="quick", build=False, run_cache="runs", log=logs.append)
    out = nbformat.read(mini_book / "_build" / "stage" / "quick" / "book" / "02_second.ipynb", 4)
    printed = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert f"cache {tmp_path / 'runs'}" in printed
    assert any("01_first: has no run_cache parameter" in line for line in logs)


def test_rehearsal_is_full_only_and_skips_chapters_without_it(mini_book):
    with pytest.raises(ConfigError, match="rehearses the full profile"):
        run_book(mini_book, profile="quick", rehearsal=True, build=False)
    _declaring_notebook(mini_book / "book" / "02_second.ipynb",
                        'profile = "quick"\ndevice = None\nrehearsal = False', ["assert rehearsal is True"])
    results = run_book(mini_book, profile="full", rehearsal=True, build=False, log=lambda *_: None)
    status = {r.chapter: r.status for r in results}
    assert status == {"01_first": "skipped", "02_second": "ok"}


#: Chapters that train a model must offer the full-profile rehearsal (a GPU run must not die
#: on a shape, recipe or data-path bug after an hour).
def _trains_a_model(nb_path: Path) -> bool:
    text = nb_path.read_text()
    return "run_experiment(" in text or "train.fit(" in text or "fit(model" in text


def test_every_training_chapter_declares_a_rehearsal():
    from urbankit.book import declared_parameters

    missing = [nb.stem for nb in chapter_notebooks(REPO) if _trains_a_model(nb)
               and "rehearsal" not in declared_parameters(nb)]
    assert not missing, f"chapters that train a model but have no rehearsal parameter: {missing}"


@pytest.mark.slow
@pytest.mark.real_data
def test_full_profile_rehearsal_on_the_shared_real_samples(real_data, tmp_path):
    """Every training chapter at the papers' sizes and recipes, two steps, on ../shared/data/real."""
    logs: list[str] = []
    results = run_book(REPO, profile="full", rehearsal=True, data_root=str(real_data), build=False,
                       out_root=tmp_path, device="cpu", log=logs.append)
    ran = {r.chapter for r in results if r.status == "ok"}
    expected = {nb.stem for nb in chapter_notebooks(REPO) if _trains_a_model(nb)}
    assert expected <= ran, "\n".join(logs)


def _interrupt_book_when(mini_book: Path, flag: Path, env: dict) -> tuple[subprocess.Popen, str, str, int]:
    """Run ``urbankit book`` on the mini book, send Ctrl-C once ``flag`` exists (it holds the kernel's pid).

    Returns the process, its stdout and stderr, and the kernel's pid.
    """
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "urbankit", "book", "--no-build"], cwd=mini_book,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (flag.exists() and flag.read_text().strip()):
            time.sleep(0.2)
        assert flag.exists(), "the chapter's kernel never started"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C in a terminal sends
        out, err = proc.communicate(timeout=60)   # bounded: a hang fails here instead of blocking CI
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, out, err, int(flag.read_text())


def _assert_stopped_cleanly(proc, out: str, err: str, kernel_pid: int) -> None:
    import time

    assert proc.returncode == 130, (out, err)
    assert "interrupted (Ctrl-C)" in err
    assert len(err.strip().splitlines()) <= 3, err   # one short message, not the kernel's tracebacks
    assert "02_second" not in out   # the next chapter never started
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{kernel_pid}").exists():
        time.sleep(0.2)   # killed by the runner; reaped by init once the runner has exited
    assert not Path(f"/proc/{kernel_pid}").exists(), f"the chapter's kernel (pid {kernel_pid}) is still running"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks for the kernel process in /proc")
def test_ctrl_c_stops_the_whole_book_instead_of_moving_to_the_next_chapter(mini_book):
    started = mini_book / "cell_started.flag"  # written by the kernel once it runs the sleeping cell
    _notebook(mini_book / "book" / "01_first.ipynb",
              [f"import os, pathlib, time\npathlib.Path({str(started)!r}).write_text(str(os.getpid()))\n"
               "time.sleep(120)"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    _assert_stopped_cleanly(*_interrupt_book_when(mini_book, started, env))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks for the kernel process in /proc")
def test_ctrl_c_during_the_kernels_start_up_stops_the_book_and_the_kernel(mini_book, tmp_path):
    """The kernel's start-up is held open (a sitecustomize that sleeps in kernel processes only)."""
    launched = tmp_path / "kernel_launched.flag"
    slow = tmp_path / "slow_start"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(   # JPY_PARENT_PID: set by jupyter_client for its kernels only
        "import os, pathlib, time\n"
        "if 'JPY_PARENT_PID' in os.environ:\n"
        f"    pathlib.Path({str(launched)!r}).write_text(str(os.getpid()))\n"
        "    time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(slow), str(REPO)])}
    _assert_stopped_cleanly(*_interrupt_book_when(mini_book, launched, env))


def test_inplace_records_release_profile_and_seconds_and_the_landing_page_names_the_release(mini_book):
    from urbankit import __version__
    from urbankit.book import executed_with

    run_book(mini_book, profile="quick", inplace=True, build=False, chapters=["1"], log=lambda *_: None)
    meta = nbformat.read(mini_book / "book" / "01_first.ipynb", as_version=4).metadata["urbankit"]
    assert meta["version"] == __version__ and meta["profile"] == "quick"
    assert meta["seconds"] > 0 and meta["cpus"] >= 1
    books = [mini_book / "book" / "01_first.ipynb", mini_book / "book" / "02_second.ipynb"]
    assert executed_with(books[:1]) == f"urbankit {__version__} (quick profile)"
    assert executed_with(books) == (f"urbankit {__version__} (quick profile) for chapters 01 "
                                    "(chapters 02: a release that was not recorded)")
    assert executed_with(books[1:]) == "a release of urbankit that was not recorded"


def test_ctrl_c_before_any_kernel_exists_is_one_line_and_exit_130(monkeypatch, capsys):
    """While the arguments are parsed or the runner prepares (no kernel yet): the same exit."""
    from urbankit import cli

    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupt)
    assert cli.main(["book"]) == 130
    assert capsys.readouterr().err.strip() == "urbankit: interrupted (Ctrl-C)"
    monkeypatch.undo()
    monkeypatch.setitem(cli.COMMANDS, "book", (*cli.COMMANDS["book"][:2], interrupt))
    assert cli.main(["book", "--no-build"]) == 130
    assert capsys.readouterr().err.strip() == "urbankit book: interrupted (Ctrl-C)"


def test_quick_kernels_run_the_pinned_cpu_kernels_and_an_explicit_setting_is_kept_and_said(mini_book, monkeypatch):
    from urbankit.profiles import cpu_kernel_pins

    pins = cpu_kernel_pins()
    if not pins:
        pytest.skip("no CPU-kernel pins on this CPU (not x86-64 with AVX2)")
    for name in pins:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_CBWR", "AUTO")   # the user's own setting
    names = sorted(pins)
    _notebook(mini_book / "book" / "01_first.ipynb",
              [f"import json, os\nprint(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"])

    def kernel_saw(profile: str) -> dict:
        lines: list[str] = []
        run_book(mini_book, profile=profile, inplace=profile == "quick", build=False, chapters=["1"],
                 log=lines.append)
        folder = mini_book / "book" if profile == "quick" else mini_book / "_build" / "stage" / profile / "book"
        nb = nbformat.read(folder / "01_first.ipynb", as_version=4)
        printed = next(out["text"] for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
        return json.loads(printed), nb.metadata["urbankit"], "\n".join(lines)

    seen, meta, log = kernel_saw("quick")
    assert seen == {**pins, "MKL_CBWR": "AUTO"}
    assert meta["cpu_kernels"] == {**pins, "MKL_CBWR": "AUTO"}   # what the outputs were executed with
    assert "MKL_CBWR=AUTO from the environment is kept" in log and "MKL_CBWR=COMPATIBLE" in log
    seen, meta, log = kernel_saw("full")   # outputs nobody compares: the machine's own kernels
    assert seen == {name: ("AUTO" if name == "MKL_CBWR" else None) for name in pins}
    assert meta["cpu_kernels"] == {"MKL_CBWR": "AUTO"} and "is kept" not in log
