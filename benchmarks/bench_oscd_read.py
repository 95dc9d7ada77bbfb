"""Reading an OSCD city from the band files vs loading it from the scene cache.

For every OSCD city present under ``../shared/data/real/oscd`` (with Sentinel-1 from
``../shared/data/real/oscd_s1``), this measures in one run:

- **read**: ``urbankit.data.oscd.read_city(..., s1_root=..., cache=False)``: open 13 bands x 2
  dates, resample 20/60 m bands and date 2 onto the date-1 B02 grid (bilinear), warp and average
  the Sentinel-1 orbits, read the label, validate;
- **first cached read**: the same with ``cache=True`` into an empty cache (read + zarr write);
- **cached read**: the second and later ``cache=True`` calls (zarr load).

Reads are interleaved (read, cached, read, cached, ...) and the median of ``--repeats`` is
reported, with the speed-up read / cached read (target >= 5x). When the real data is absent the
embedded OSCD-style samples (``data_samples/oscd``, synthetic, 120 x 120 px) are used instead,
and the table says so.

    python benchmarks/bench_oscd_read.py [--repeats 3] [--cities abudhabi paris]

Writes ``benchmarks/results/oscd_read.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402 (after the sys.path line above)
from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

from urbankit.data import oscd  # noqa: E402


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _bench_city(root: Path, s1_root: Path | None, city: str, cache_dir: Path, repeats: int) -> dict:
    """Median fresh read vs cached read of one city (interleaved repeats); both must give the same scene."""
    fresh = partial(oscd.read_city, root, city, s1_root=s1_root, cache=False)
    cached_read = partial(oscd.read_city, root, city, s1_root=s1_root, cache=True, cache_dir=cache_dir)
    first, scene = _timed(cached_read)
    assert scene.attrs["cache"] == "miss"
    reads, cached = [], []
    for _ in range(repeats):
        t, s = _timed(fresh)
        reads.append(t)
        t, c = _timed(cached_read)
        assert c.attrs["cache"] == "hit"
        cached.append(t)
    assert np.array_equal(c.optical.values, s.optical.values, equal_nan=True)
    entry = next((cache_dir / "oscd").glob(f"{city}-*.zarr"))
    read_s, cached_s = statistics.median(reads), statistics.median(cached)
    r = {"city": city, "pixels": f"{s.sizes['y']}x{s.sizes['x']}",
         "orbits": s.attrs.get("sar_orbits", "-"), "label": "yes" if "change" in s else "no",
         "read_s": read_s, "first_cached_s": first, "cached_s": cached_s,
         "speedup": read_s / cached_s, "cache_mb": _dir_size(entry) / 1e6}
    print(f"{city:12s} {r['pixels']:>9s} read {read_s:6.3f} s  first cached {first:6.3f} s  "
          f"cached {cached_s:6.3f} s  speed-up {r['speedup']:5.1f}x", flush=True)
    return r


def _report(rows: list[dict], data: str, repeats: int) -> str:
    """The Markdown result: per-city times, totals and the speed-up range."""
    total_read = sum(r["read_s"] for r in rows)
    total_cached = sum(r["cached_s"] for r in rows)
    speedups = [r["speedup"] for r in rows]
    lines = [
        "# OSCD: read + align vs scene cache",
        "",
        (f"Data: {data}. Per city: 13 bands x 2 dates resampled onto the date-1 B02 10 m grid "
         "(bilinear), Sentinel-1 VV warped and averaged over all orbits (linear power), label, schema "
         "validation. Cached read = zarr load of the stored scene (numpy, no dask). Median of "
         f"{repeats} interleaved repeats, one run."),
        "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
         "shared with other processes (timings are indicative; the ratios are the result)."),
        "",
        "| city | pixels | S1 orbits | label | read (s) | first cached read (s) | cached read (s) | speed-up "
        "| cache size (MB) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['city']} | {r['pixels']} | {r['orbits']} | {r['label']} | {r['read_s']:.3f} | "
                     f"{r['first_cached_s']:.3f} | {r['cached_s']:.3f} | {r['speedup']:.1f}x | {r['cache_mb']:.1f} |")
    lines += [
        f"| **all** | | | | **{total_read:.2f}** | | **{total_cached:.2f}** | **{total_read / total_cached:.1f}x** | |",
        "",
        (f"Speed-up per city: min {min(speedups):.1f}x, median {statistics.median(speedups):.1f}x, "
         f"max {max(speedups):.1f}x (target >= 5x: {'met' if min(speedups) >= 5 else 'NOT met for every city'})."),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Time fresh vs cached OSCD reads and write ``results/oscd_read.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per city (median reported)")
    parser.add_argument("--cities", nargs="*", default=None, help="cities to read (default: all present)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "oscd_read.md"))
    args = parser.parse_args(argv)

    real = ROOT.parent / "shared" / "data" / "real"
    if (real / "oscd").is_dir():
        root, s1_root = real / "oscd", real / "oscd_s1"
        data = "REAL OSCD cities in ../shared/data/real/oscd (+ DS U-Net Sentinel-1 in oscd_s1)"
    else:
        root, s1_root = ROOT / "data_samples" / "oscd", ROOT / "data_samples" / "oscd_s1"
        data = ("the embedded OSCD-style SYNTHETIC samples in data_samples/oscd (real data absent: "
                "../shared/data/real/oscd not found)")
    cities = args.cities or oscd.list_cities(root, "all")
    cache_dir = Path(tempfile.mkdtemp(prefix="urbankit-bench-cache-"))
    oscd.read_city(root, cities[0], bands="rgb")  # warm-up: imports, GDAL driver registration

    rows = []
    try:
        for city in cities:
            rows.append(_bench_city(root, s1_root if s1_root.is_dir() else None, city, cache_dir, args.repeats))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    text = _report(rows, data, args.repeats)
    print()
    print(text)
    out = Path(args.out)
    write_report(out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
