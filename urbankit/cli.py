"""The ``urbankit`` command line (also ``python -m urbankit``).

Sub-commands register themselves in :data:`COMMANDS`; each has an ``add_arguments`` and a
``run`` function, so later modules (samples, downloads, benchmarks) plug in without
touching the parser logic.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from . import __version__
from .errors import UrbankitError


def _add_book(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", choices=["quick", "full", "real"],
                   help="execution profile (default: quick, CPU on the embedded samples)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="device injected into the chapters (default: auto, the profile decides)")
    p.add_argument("--chapters", nargs="+", metavar="CHAPTER",
                   help="execute only these chapters, each named by its number, name or path "
                        "(e.g. 3, 03_urban_mapping, urban_mapping or book/03_urban_mapping.ipynb)")
    p.add_argument("--inplace", action="store_true",
                   help="write the executed chapters back to book/ (quick profile only)")
    p.add_argument("--data-root", default=None, help="folder of real data for the real/full profiles")
    p.add_argument("--no-build", action="store_true", help="execute only, do not build the HTML book")
    p.add_argument("--no-execute", action="store_true",
                   help="build the HTML book from the committed notebooks without executing them")
    p.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    p.add_argument("--recipe", nargs="+", default=None, metavar="FIELD=VALUE",
                   help="override recipe fields of every trained model, e.g. --recipe lr=1e-4 epochs=20 "
                        "(see urbankit.recipes)")
    p.add_argument("--rehearsal", action="store_true",
                   help="with --profile full: every chapter at the papers' sizes and recipes, capped at a "
                        "few steps on --data-root (checks shapes, recipes and data paths before a GPU run)")
    p.add_argument("--run-cache", default=None, metavar="DIR",
                   help="keep the trained runs of chapters with a run_cache parameter in DIR: an interrupted "
                        "run continues where it stopped, a finished one is loaded instead of trained again")


def _run_book(args: argparse.Namespace) -> int:
    from .book import run_book

    run_book(profile=args.profile, device=args.device, chapters=args.chapters,
             inplace=args.inplace, build=not args.no_build, data_root=args.data_root,
             timeout=args.timeout, execute=not args.no_execute, recipe_overrides=args.recipe,
             rehearsal=args.rehearsal, run_cache=args.run_cache)
    return 0


#: name -> (help, add_arguments, run)
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "book": ("execute the chapters with papermill and build the HTML book", _add_book, _run_book),
}


def _register_optional_commands() -> None:
    """Import modules that add sub-commands (kept optional so the core CLI always works)."""
    for module in ("urbankit.data.samples", "urbankit.data.download", "urbankit.cityscale"):
        try:
            mod = __import__(module, fromlist=["CLI_COMMAND"])
        except ImportError:
            continue
        command = getattr(mod, "CLI_COMMAND", None)
        if command is not None:
            name, help_text, add, run = command
            COMMANDS[name] = (help_text, add, run)


def build_parser() -> argparse.ArgumentParser:
    """The ``urbankit`` argument parser, one sub-command per entry of ``COMMANDS``."""
    _register_optional_commands()
    parser = argparse.ArgumentParser(prog="urbankit", description="urbankit: mapping cities and their growth "
                                     "from Sentinel-1/2 with deep learning (teaching kit).")
    parser.add_argument("--version", action="version", version=f"urbankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``urbankit`` command line; returns the exit code (1 on an urbankit error, printed).

    Ctrl-C at any moment (parsing, a chapter's kernel start-up, a cell) returns 130 with one line.
    """
    command = ""
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return _run_command(args)
    except KeyboardInterrupt:  # Ctrl-C: stop everything, one short line, the shell's exit status for SIGINT
        return _interrupted(command)


def _run_command(args: argparse.Namespace) -> int:
    """Run the parsed sub-command; an urbankit or file error becomes one printed line and exit 1."""
    _, _, run = COMMANDS[args.command]
    try:
        return int(run(args) or 0)
    except UrbankitError as exc:
        print(f"urbankit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a read-only or full folder: say which file, without a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"urbankit {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def _interrupted(command: str = "") -> int:
    """Print the one Ctrl-C line and return 130 (the shell's exit status for SIGINT)."""
    # the interrupted kernel's pending asyncio tasks would be reported at exit ("Task exception
    # was never retrieved", "Task was destroyed but it is pending"): the interrupt is the whole story
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    print(f"{' '.join(('urbankit', command)).strip()}: interrupted (Ctrl-C)", file=sys.stderr)
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
