"""Benchmark: the run times that the chapters' headers state, against measured ones.

Every chapter's first cell states ``**Run time.** `quick` (the committed outputs): about N min
on 2 CPU cores (measured). `full`: ...``. This script compares N with the book runner's record:
``urbankit book --inplace`` writes the seconds and the core count into each committed notebook
(``metadata.urbankit``). With ``--measure CH ...`` it also executes those chapters now (quick
profile, into a temporary folder; the committed notebooks are not touched) and compares with
that measurement. A claim passes when it is within a factor 1.5 of the measurement (rounded
claims of short chapters: within 30 s). Writes ``benchmarks/results/book_times.md``.

Run: ``python benchmarks/bench_book_times.py [--measure 03 05 ...] [--measured earlier.json]``
(quick times depend on the machine's load: the committed table says what the machine was doing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "book_times.md"
CLAIM = re.compile(r"\*\*Run time\.\*\* `quick` \(the committed outputs\): about (?P<value>[\d.]+) "
                   r"(?P<unit>s|min) on 2 CPU cores \(measured\)\. `full`: (?P<full>[^\n]*(?:\n(?!\n)[^\n]*)*)")


def quick_claim(seconds: float) -> str:
    """How a header states a measured quick time: ``about 40 s``, ``about 2.5 min``, ``about 6 min``."""
    if seconds < 90:
        return f"about {max(10, round(seconds / 10) * 10)} s"
    minutes = seconds / 60
    return f"about {round(minutes * 2) / 2:g} min" if minutes < 5 else f"about {round(minutes):d} min"


def parse_claim(text: str) -> tuple[float, str] | None:
    """(claimed quick seconds, the full-profile sentence) of a chapter's first cell, or None."""
    match = CLAIM.search(text)
    if not match:
        return None
    seconds = float(match["value"]) * (60 if match["unit"] == "min" else 1)
    return seconds, " ".join(match["full"].split())


def claim_holds(claimed: float, measured: float) -> bool:
    """Within a factor 1.5, or within 30 s for short chapters (claims are rounded)."""
    return abs(claimed - measured) <= 30 or 1 / 1.5 <= claimed / measured <= 1.5


def measure(chapters: list[str]) -> dict[str, float]:
    """Execute ``chapters`` (quick profile) into a temporary folder; seconds per chapter stem."""
    from urbankit.book import run_book

    with tempfile.TemporaryDirectory(prefix="urbankit-book-times-") as tmp:
        results = run_book(ROOT, profile="quick", chapters=chapters, build=False, out_root=Path(tmp))
    return {r.chapter: r.seconds for r in results if r.status == "ok"}


def rows(measured: dict[str, float]) -> list[dict]:
    """One row per chapter: the header's claim, the runner's record and this run's measurement."""
    from urbankit.book import chapter_notebooks

    out = []
    for path in chapter_notebooks(ROOT):
        nb = nbformat.read(path, as_version=4)
        claim = parse_claim(nb.cells[0].source)
        record = nb.metadata.get("urbankit") or {}
        reference = measured.get(path.stem, record.get("seconds"))
        out.append({
            "chapter": path.stem,
            "claimed_s": claim[0] if claim else None,
            "recorded_s": record.get("seconds"),
            "recorded_cpus": record.get("cpus"),
            "measured_s": measured.get(path.stem),
            "ok": bool(claim and reference and claim_holds(claim[0], reference)),
            "full": claim[1] if claim else "",
        })
    return out


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def write(table: list[dict], note: str = "") -> str:
    lines = [
        "# Chapter run times: header claims against measurements",
        "",
        f"Machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end of the run (other work shared the cores).",
        "`recorded`: seconds the book runner wrote into the committed notebook (`urbankit book --inplace`);",
        "`measured`: this run (`--measure`). A claim holds within a factor 1.5 (or 30 s).",
        *([note] if note else []),
        "",
        "| chapter | header (quick) s | recorded s (cores) | measured s | holds | full profile, as the header says |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in table:
        cores = f" ({r['recorded_cpus']})" if r["recorded_cpus"] else ""
        lines.append(f"| {r['chapter']} | {_fmt(r['claimed_s'])} | {_fmt(r['recorded_s'])}{cores} | "
                     f"{_fmt(r['measured_s'])} | {'yes' if r['ok'] else '**no**'} | {r['full']} |")
    text = "\n".join(lines) + "\n"
    RESULT.write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs="*", default=[], metavar="CHAPTER",
                        help="execute these chapters now (quick profile) and compare with the measurement")
    parser.add_argument("--note", default="", help="a sentence for the result file (e.g. the machine's load)")
    parser.add_argument("--measured", type=Path, default=None, metavar="JSON",
                        help="reuse an earlier measurement: a JSON file {chapter stem: seconds}")
    args = parser.parse_args()
    measured = json.loads(args.measured.read_text()) if args.measured else {}
    measured.update(measure(args.measure) if args.measure else {})
    table = rows(measured)
    print(write(table, args.note))
    return 0 if all(r["ok"] for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
