"""Execute the book's chapters with papermill under a profile, then build the HTML book.

Data flow: ``_toc.yml`` lists the chapters -> each notebook chapter is executed by papermill
with the profile's parameters injected -> executed copies are staged under
``_build/stage/<profile>/`` (or written back to ``book/`` with ``inplace=True``, quick profile
only) -> Jupyter Book 1.x builds ``_build/html`` from the staged copy, offline, with
``-W -n --keep-going`` so any warning fails the build.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import BookError, ConfigError
from .profiles import CPU_KERNEL_PIN_NAMES, PROFILES, pin_cpu_kernels

#: Files and folders of the checkout that the HTML build needs besides the chapters.
_BOOK_SUPPORT = ("_config.yml", "_toc.yml")
#: Folders of the checkout that the HTML build needs (the book's CSS).
_BOOK_SUPPORT_DIRS = ("_static",)


@dataclass
class ChapterResult:
    """Outcome of executing one chapter."""

    chapter: str
    status: str  # "ok", "failed", "skipped"
    seconds: float
    error: str = ""


def toc_entries(root: Path) -> list[str]:
    """Return every file listed in ``_toc.yml`` (root first), as paths without suffix.

    Raises BookError when the TOC is missing or malformed.
    """
    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise BookError(f"{toc_path} not found: the book's table of contents is missing")
    try:
        toc = yaml.safe_load(toc_path.read_text())
    except yaml.YAMLError as exc:
        raise BookError(f"{toc_path} is not valid YAML: {exc}") from exc
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookError(f"{toc_path}: expected a mapping with a 'root' entry (jb-book format)")
    entries = [str(toc["root"])]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(str(node["file"]))
            for key in ("chapters", "sections", "parts"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for key in ("chapters", "parts"):
        walk(toc.get(key, []))
    return entries


def chapter_notebooks(root: Path, select: list[str] | None = None) -> list[Path]:
    """Notebook chapters listed in the TOC, in order, optionally filtered.

    ``select`` items name one chapter each, exactly: its number (``3`` or ``03``), its stem
    (``03_urban_mapping``), its name without the number (``urban_mapping``) or its path
    (``book/03_urban_mapping.ipynb``). An item that names no chapter raises ConfigError.
    """
    notebooks = []
    for entry in toc_entries(root):
        path = root / f"{entry}.ipynb"
        if path.is_file():
            notebooks.append(path)
        elif not (root / f"{entry}.md").is_file():
            raise BookError(f"_toc.yml lists {entry!r} but neither {entry}.ipynb nor {entry}.md exists")
    if select:
        chosen = [_select_chapter(notebooks, item) for item in select]
        notebooks = [nb for nb in notebooks if nb in chosen]
    return notebooks


def _select_chapter(notebooks: list[Path], item: str) -> Path:
    """The one chapter that ``item`` names (number, stem, name or path); ConfigError otherwise."""
    key = str(item).strip().replace("\\", "/")
    stem = Path(key).stem if key.endswith(".ipynb") or "/" in key else key
    for nb in notebooks:
        number, _, name = nb.stem.partition("_")
        if stem in (nb.stem, name) or (stem.isdigit() and number.isdigit() and int(stem) == int(number)):
            return nb
    raise ConfigError(f"--chapters {item!r} names no chapter; give a number, a name or a path, "
                      "one of: " + ", ".join(nb.stem for nb in notebooks))


def _describe_failure(exc: BaseException, executed: Path) -> str:
    """Where and why a chapter failed: ``cell 8 of 37 (In [4]): ZeroDivisionError: ...``.

    The cell is counted from 1 over every cell of the chapter's own notebook (the cells papermill
    adds, injected parameters and error banners, are not counted), so it is the same number in the source notebook
    and in Jupyter's cell list; ``In [n]`` is the execution count shown next to the cell.
    """
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip()
    first = evalue.splitlines()[0] if evalue else ""
    where = "a cell"
    position = _failing_cell(executed)
    if position is not None:
        number, total = position
        where = f"cell {number} of {total}"
    count = getattr(exc, "exec_count", None)
    if count is not None:
        where += f" (In [{count}])"
    return f"{where}: {ename}: {first}"


def _failing_cell(nb_path: Path) -> tuple[int, int] | None:
    """(1-based position, number of cells) of the first cell with an error output, or None.

    The cells papermill adds (injected parameters, error banners) are not counted.
    """
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - best effort only
        return None
    added = {"injected-parameters", "papermill-error-cell-tag"}   # cells papermill adds to the chapter
    cells = [c for c in nb.cells if not added & set(c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(cells, 1):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return index, len(cells)
    return None


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in the chapter's ``parameters`` cell (papermill's own inspection)."""
    import papermill as pm

    return set(pm.inspect_notebook(str(notebook)))


def _chapter_parameters(notebook: Path, params: dict, log) -> tuple[dict, str]:
    """The parameters one chapter takes, and a reason to skip it ('' to run it).

    ``recipe_overrides``, ``run_cache`` and ``rehearsal`` are injected only into chapters that
    declare them: papermill would otherwise add a variable that nothing reads (an ignored setting).
    """
    declared = declared_parameters(notebook)
    out = dict(params)
    if params.get("rehearsal") and "rehearsal" not in declared:
        return out, "no rehearsal parameter: this chapter has no full-profile training to rehearse"
    if "recipe_overrides" in params and "recipe_overrides" not in declared:
        del out["recipe_overrides"]
        log(f"    {notebook.stem}: trains no recipe model, --recipe overrides do not apply to it")
    if "run_cache" in params and "run_cache" not in declared:
        del out["run_cache"]
        log(f"    {notebook.stem}: has no run_cache parameter, its models are trained again (--run-cache)")
    return out, ""


def execute_chapter(
    notebook: Path,
    output: Path,
    parameters: dict,
    cwd: Path,
    timeout: int | None = None,
    kernel_env: dict[str, str] | None = None,
) -> None:
    """Execute one chapter with papermill, writing the result atomically to ``output``.

    The executed notebook goes to a temporary file next to ``output`` and is renamed only
    when execution succeeded; on failure the partial notebook is kept as
    ``<output>.failed.ipynb`` for inspection and BookError is raised naming the cell.
    ``kernel_env`` (the whole environment of the kernel process; None: this process's) is how
    the quick profile's kernels get the pinned CPU kernels (:func:`urbankit.profiles.cpu_kernel_pins`).
    """
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".ipynb", prefix=f".{output.stem}.", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    kernel_log = output.with_suffix(".kernel.log")
    # nbclient logs "Kernel died ..." through papermill's logger while an interrupt unwinds; a
    # failure is reported once, by the BookError below (its message names the exception).
    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    papermill_log.setLevel(logging.CRITICAL)
    try:
        with open(kernel_log, "w") as log_file:
            pm.execute_notebook(
                str(notebook), str(tmp), parameters=parameters, cwd=str(cwd),
                kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                log_output=False, request_save_on_cell_execute=False,
                kernel_manager_class=_kernel_manager_writing_to(log_file, kernel_env),
            )
    except BaseException as exc:
        failed = output.with_suffix(".failed.ipynb")
        if tmp.exists():
            tmp.replace(failed)
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C stops the whole book, not just this chapter
            raise
        detail = _describe_failure(exc, failed)
        raise BookError(f"chapter {notebook.stem} failed in {detail} (partial output: {failed}; "
                        f"kernel log: {kernel_log})") from exc
    finally:
        papermill_log.setLevel(level)
    kernel_log.unlink(missing_ok=True)
    _finish_executed(tmp, str(parameters.get("profile", "quick")), kernel_env)
    tmp.replace(output)


def _kernel_manager_writing_to(log_file, env: dict[str, str] | None = None):
    """A kernel manager class whose kernels write their stderr to ``log_file`` and die on Ctrl-C.

    ``env``, when given, is the kernels' whole environment.

    The kernel's own messages (the TCP-transport warning at every start, ZMQ tracebacks when
    the run is interrupted) then stay out of the terminal; the log is kept when a chapter fails.

    Ctrl-C: while a notebook runs, nbclient replaces Python's SIGINT handler by an event-loop
    handler that only schedules the kernel's shutdown, so an interrupt during the kernel's
    start-up was lost (the start-up went on, then the chapter) and one during a cell surfaced as
    a dead kernel. From the start of the kernel on, :func:`_on_ctrl_c` handles SIGINT instead.
    """
    from jupyter_client.manager import AsyncKernelManager

    class _LoggingKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            _stop_on_ctrl_c(self)
            kw.setdefault("stderr", log_file)
            if env is not None:
                kw["env"] = dict(env)
            return await super().start_kernel(**kw)

    return _LoggingKernelManager


def _stop_on_ctrl_c(manager) -> None:
    """Make SIGINT on the running event loop kill ``manager``'s kernel and raise KeyboardInterrupt."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, _on_ctrl_c, loop, manager)
    except (RuntimeError, ValueError, NotImplementedError):   # not the main thread, or no signals here
        pass


def _on_ctrl_c(loop, manager) -> None:
    """Kill the kernel's process group now (it runs in its own session), then stop the run."""
    loop.remove_signal_handler(signal.SIGINT)   # Python's default handler again: a 2nd Ctrl-C interrupts
    process = getattr(getattr(manager, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):   # gone already, or no process groups
            process.kill()
        process.wait()
    try:
        manager.cleanup_connection_file()
    except OSError:
        pass
    raise KeyboardInterrupt   # asyncio lets it leave run_until_complete: papermill and nbclient stop here


def _finish_executed(executed: Path, profile: str, kernel_env: dict[str, str] | None = None) -> None:
    """Collapse papermill's injected-parameters cell and record who executed the notebook.

    The cell gets the tag ``hide-cell`` (collapsed in the HTML book); ``metadata.urbankit``
    records the release, the profile and ``cpu_kernels``: the kernel's values of the CPU-kernel
    pins (:data:`urbankit.profiles.CPU_KERNEL_PIN_NAMES`), or an empty dict when none was set.
    """
    import nbformat

    from . import __version__

    env = os.environ if kernel_env is None else kernel_env
    cpu_kernels = {name: env[name] for name in CPU_KERNEL_PIN_NAMES if name in env}

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")
    nb.metadata["urbankit"] = {"version": __version__, "profile": profile, "cpu_kernels": cpu_kernels}
    nbformat.write(nb, executed)


def _strip_injected(executed: Path, target: Path, seconds: float) -> None:
    """Write ``executed`` to ``target`` without papermill's injected-parameters cell.

    Used by ``inplace`` runs so the committed notebook keeps only its own parameters cell
    (quick-profile values equal the defaults, so outputs are unchanged). ``metadata.urbankit``
    keeps the release and profile and gains the run time in seconds and the number of cores
    (the book's landing page and the run-time benchmark read them).
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb.metadata.pop("papermill", None)
    nb.metadata.setdefault("urbankit", {}).update(seconds=round(seconds, 1), cpus=os.cpu_count())
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    fd, tmp_name = tempfile.mkstemp(suffix=".ipynb", prefix=f".{target.stem}.", dir=target.parent)
    os.close(fd)
    nbformat.write(nb, tmp_name)
    Path(tmp_name).replace(target)


def executed_with(notebooks: list[Path]) -> str:
    """Which urbankit release(s) executed ``notebooks``, read from their ``metadata.urbankit``.

    E.g. ``"urbankit 0.1.0 (quick profile)"``; with several releases (or unrecorded chapters)
    each is listed with its chapter numbers.
    """
    import nbformat

    runs: dict[str, list[str]] = {}
    unrecorded: list[str] = []
    for path in notebooks:
        meta = nbformat.read(path, as_version=4).metadata.get("urbankit") or {}
        number = path.stem.split("_")[0]
        if meta.get("version"):
            runs.setdefault(f"urbankit {meta['version']} ({meta.get('profile', '?')} profile)", []).append(number)
        else:
            unrecorded.append(number)
    if not runs:
        return "a release of urbankit that was not recorded"
    if len(runs) == 1 and not unrecorded:
        return next(iter(runs))
    text = "; ".join(f"{key} for chapters {', '.join(chs)}" for key, chs in sorted(runs.items()))
    if unrecorded:
        text += f" (chapters {', '.join(unrecorded)}: a release that was not recorded)"
    return text


def _record_release(stage: Path, notebooks: list[Path]) -> None:
    """Write :func:`executed_with` into the staged ``_config.yml`` (the landing page shows it)."""
    config_path = stage / "_config.yml"
    config = yaml.safe_load(config_path.read_text()) or {}
    config.setdefault("parse", {}).setdefault("myst_substitutions", {})["executed_with"] = executed_with(notebooks)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def _stage_sources(root: Path, stage: Path) -> None:
    """Copy the book's non-notebook sources (config, TOC, markdown, bib, static) into ``stage``."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in _BOOK_SUPPORT:
        shutil.copy2(root / name, stage / name)
    for name in _BOOK_SUPPORT_DIRS:
        if (root / name).is_dir():
            shutil.copytree(root / name, stage / name)
    shutil.copytree(root / "book", stage / "book",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build", "*.failed.ipynb", "*.kernel.log",
                                                  ".*"))


_WARNING_RE = re.compile(r"(WARNING|ERROR|CRITICAL)\b.*")


def build_html(source: Path, output_root: Path, log: callable = print) -> list[str]:
    """Build the HTML book from ``source`` into ``output_root/_build/html``.

    Runs ``jupyter-book build -W -n --keep-going`` offline. Returns the warning lines found;
    raises BookError when the build fails, naming the warnings.
    """
    exe = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
    if not Path(exe).exists() and not shutil.which("jupyter-book"):
        raise BookError("jupyter-book is not installed; install the dev requirements (requirements-dev.txt)")
    cmd = [exe, "build", str(source), "--path-output", str(output_root), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    text = proc.stdout + "\n" + proc.stderr
    warnings = [m.group(0) for line in text.splitlines() if (m := _WARNING_RE.search(line))
                and "WARNING: Location" not in line]
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise BookError(
            "jupyter-book build failed" + (":\n  " + "\n  ".join(warnings[:20]) if warnings else "")
            + f"\n--- last lines of the build log ---\n{tail}"
        )
    return warnings


def format_table(results: list[ChapterResult]) -> str:
    """The final summary table: chapter, status, seconds."""
    width = max([len("chapter")] + [len(r.chapter) for r in results])
    lines = [f"{'chapter':<{width}}  {'status':<7}  {'seconds':>8}", f"{'-' * width}  {'-' * 7}  {'-' * 8}"]
    for r in results:
        lines.append(f"{r.chapter:<{width}}  {r.status:<7}  {r.seconds:>8.1f}")
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<{width}}  {'':<7}  {total:>8.1f}")
    return "\n".join(lines)


def _run_parameters(profile: str, device: str, data_root: str | None, recipe_overrides, rehearsal: bool,
                    execute: bool, run_cache: str | None = None) -> dict:
    """The parameters injected into every chapter, checked before any chapter runs.

    The data root follows :func:`urbankit.paths.data_root_for`: ``real`` needs a folder of real
    data (``--data-root`` or ``$URBANKIT_REAL_DATA``), and a given ``--data-root`` must exist
    except for ``full``, which downloads into it. Raises ConfigError naming the option.
    """
    from .paths import data_root_for, shared_real_dir

    if execute and profile == "real" and data_root is None and shared_real_dir() is None:
        raise ConfigError("profile 'real' reads real data: pass --data-root DIR (a folder with one "
                          "sub-folder per dataset, e.g. oscd/) or set URBANKIT_REAL_DATA")
    if execute:
        data_root_for(profile, data_root)   # a given folder must exist (except for full, which downloads)
    params: dict = {"profile": profile}
    if device != "auto" or profile != "quick":
        params["device"] = device
    if data_root is not None:  # chapters run in book/: a relative path must not change meaning there
        params["data_root"] = str(Path(data_root).expanduser().resolve())
    if recipe_overrides:
        from .recipes import parse_overrides

        params["recipe_overrides"] = parse_overrides(recipe_overrides)
    if rehearsal:
        params["rehearsal"] = True
    if run_cache is not None:  # absolute, like data_root: the chapters run in book/
        params["run_cache"] = str(Path(run_cache).expanduser().resolve())
    return params


def _check_run_options(profile: str, device: str, inplace: bool, build: bool, timeout: int | None,
                       execute: bool, rehearsal: bool) -> None:
    """Refuse invalid :func:`run_book` options (ConfigError) or a missing runner (BookError) before any work."""
    if execute:
        try:
            import papermill  # noqa: F401 - the book runner's own dependency (the `book` extra)
        except ImportError:
            raise BookError("executing the book needs papermill, nbformat and ipykernel: "
                            "pip install -r requirements-dev.txt (or pip install -e '.[book]')") from None
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if inplace and profile != "quick":
        raise ConfigError(
            f"--inplace refreshes the committed outputs, which come from the quick profile; "
            f"it is not allowed with profile {profile!r} (executed copies go to _build/)"
        )
    if device not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {device!r}")
    if not execute and not build:
        raise ConfigError("nothing to do: execution and build are both disabled")
    if rehearsal and profile != "full":
        raise ConfigError(f"--rehearsal rehearses the full profile; it is not allowed with profile {profile!r}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout is seconds per cell and must be positive, got {timeout}")


def _kernel_env(profile: str, log) -> dict[str, str] | None:
    """The kernels' environment: for ``quick`` (the committed outputs) this one plus the CPU-kernel pins.

    A pin that the user's environment sets otherwise is kept as set, and said: nbval may then
    find outputs that differ from the committed ones in the last digits.
    """
    if profile != "quick":
        return None
    env = dict(os.environ)
    for name, (kept, pin) in pin_cpu_kernels(env).items():
        log(f"note: {name}={kept} from the environment is kept; the committed outputs were executed with "
            f"{name}={pin} (urbankit.profiles.CPU_KERNEL_PINS), so a re-run may differ in the last digits")
    return env


def _execute_chapters(root: Path, notebooks: list[Path], stage: Path, params: dict, profile: str, device: str,
                      inplace: bool, timeout: int | None, log) -> tuple[list[ChapterResult], list[str]]:
    """Execute each chapter into ``stage`` (committed copy refreshed with ``inplace``); results and failures."""
    results: list[ChapterResult] = []
    failures: list[str] = []
    kernel_env = _kernel_env(profile, log) if notebooks else None
    for i, nb in enumerate(notebooks, 1):
        rel = nb.relative_to(root)
        log(f"[{i}/{len(notebooks)}] {nb.stem}: executing (profile {profile}, device {device}) ...")
        start = time.perf_counter()
        executed = stage / rel
        chapter_params, skip = _chapter_parameters(nb, params, log)
        if skip:
            results.append(ChapterResult(nb.stem, "skipped", 0.0, skip))
            log(f"[{i}/{len(notebooks)}] {nb.stem}: skipped ({skip})")
            continue
        try:
            execute_chapter(nb, executed, chapter_params, cwd=nb.parent, timeout=timeout, kernel_env=kernel_env)
        except BookError as exc:
            seconds = time.perf_counter() - start
            results.append(ChapterResult(nb.stem, "failed", seconds, str(exc)))
            failures.append(str(exc))
            log(f"[{i}/{len(notebooks)}] {nb.stem}: FAILED after {seconds:.1f} s\n    {exc}")
            continue
        seconds = time.perf_counter() - start
        if inplace:
            _strip_injected(executed, nb, seconds)
        results.append(ChapterResult(nb.stem, "ok", seconds))
        log(f"[{i}/{len(notebooks)}] {nb.stem}: ok in {seconds:.1f} s")
    return results, failures


def _build_staged(root: Path, notebooks: list[Path], stage: Path, out_root: Path, log) -> None:
    """Stage the chapters not executed in this run from their committed copies, then build the HTML."""
    for nb in chapter_notebooks(root):
        staged = stage / nb.relative_to(root)
        if nb not in notebooks or not staged.exists():
            shutil.copy2(nb, staged)
    _record_release(stage, [stage / nb.relative_to(root) for nb in chapter_notebooks(root)])
    log(f"building the HTML book from {stage} -> {out_root / '_build' / 'html'} ...")
    start = time.perf_counter()
    build_html(stage, out_root, log=log)
    log(f"built {out_root / '_build' / 'html' / 'index.html'} in {time.perf_counter() - start:.1f} s")


def run_book(
    root: Path | None = None,
    profile: str = "quick",
    device: str = "auto",
    chapters: list[str] | None = None,
    inplace: bool = False,
    build: bool = True,
    data_root: str | None = None,
    timeout: int | None = None,
    execute: bool = True,
    out_root: Path | None = None,
    log: callable = print,
    recipe_overrides: dict | list[str] | None = None,
    rehearsal: bool = False,
    run_cache: str | None = None,
) -> list[ChapterResult]:
    """Execute the selected chapters under ``profile`` and build the HTML book.

    ``execute=False`` builds the HTML from the committed notebooks without running them.
    ``out_root`` is the folder that receives ``_build/`` (default: the checkout root).
    ``recipe_overrides`` (``{"lr": 1e-4}`` or ``["lr=1e-4"]``) change recipe fields of every
    model a chapter trains (:func:`urbankit.recipes.get_recipe`); it is injected as the
    chapters' ``recipe_overrides`` parameter and chapters that train no recipe model are
    reported as not taking it. ``rehearsal=True`` (profile ``full`` only) runs every chapter
    that has a ``rehearsal`` parameter at the papers' model sizes and recipes, capped at a
    few optimiser steps on the data under ``data_root`` (a teacher's GPU run then cannot die
    on a shape, recipe or data-path bug after an hour); chapters without one are skipped.
    ``run_cache`` (a folder) is injected into the chapters that declare a ``run_cache``
    parameter: their runs keep checkpoints there (:func:`urbankit.experiments.cached_run_dir`),
    so a run that was interrupted continues where it stopped and a finished one is loaded.

    The ``quick`` profile's kernels run with the CPU kernels pinned
    (:func:`urbankit.profiles.cpu_kernel_pins`): its outputs are the committed ones, and the
    pins make them the same on a CPU with AVX-512 as on one with only AVX2 (checked on two AMD
    EPYC kinds), so nbval can compare them on either.

    Returns the per-chapter results. Raises BookError when any chapter fails or the build
    warns (after executing the remaining chapters), and ConfigError for invalid options:
    ``inplace`` is only allowed with the ``quick`` profile, because the committed outputs
    are the quick profile's.
    """
    from .paths import repo_root

    _check_run_options(profile, device, inplace, build, timeout, execute, rehearsal)
    root = Path(root) if root is not None else repo_root()
    params = _run_parameters(profile, device, data_root, recipe_overrides, rehearsal, execute, run_cache)
    notebooks = chapter_notebooks(root, chapters) if execute else []
    out_root = Path(out_root) if out_root is not None else root
    stage = out_root / "_build" / "stage" / profile
    _stage_sources(root, stage)

    results, failures = _execute_chapters(root, notebooks, stage, params, profile, device, inplace, timeout, log)
    if results:
        log("")
        log(format_table(results))
    if failures:
        raise BookError(f"{len(failures)} chapter(s) failed:\n  " + "\n  ".join(failures))
    if build:
        _build_staged(root, notebooks, stage, out_root, log)
    return results
