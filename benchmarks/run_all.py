"""Run every benchmark of the kit, one after the other, as one command.

    python benchmarks/run_all.py            # all benchmarks, their default (CPU) settings
    python benchmarks/run_all.py loader sdg # only some (names match bench_<name>.py)

Each ``bench_<name>.py`` prints a table and writes ``benchmarks/results/<name>*.md``; speed
claims are ratios measured side by side in the same run, never absolute targets in tests.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        wanted = set(argv)
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        missing = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if missing:
            print(f"unknown benchmark(s): {sorted(missing)}; available: "
                  f"{[s.stem.removeprefix('bench_') for s in sorted(HERE.glob('bench_*.py'))]}", file=sys.stderr)
            return 2
    failed = []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"=== {script.name}: exit {code} after {time.perf_counter() - start:.0f} s\n", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
