"""Benchmark: every SDG 11.3.1 indicator on a 10,000 x 10,000 built-up pair (10 m cells, uint8)
and a 1 km population grid, on CPU.

Reports wall time (seconds) and peak traced memory (tracemalloc: numpy allocations) of one
``sdg_11_3_1`` call (DEGURBA city definition, union extent, new-development split), next to
the size that float64 copies of the inputs would take. Writes ``benchmarks/results/sdg.md``.

Run: ``python benchmarks/bench_sdg.py [--size 10000]``.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
from affine import Affine


def make_inputs(size: int, seed: int = 0):
    """A 10 m built-up pair (uint8) over size x size cells and its 1 km population grid."""
    from urbankit.data.synthetic_region import make_city_region

    coarse = size // 10  # 100 m cells of the generator
    ds = make_city_region(seed=seed, size_km=coarse / 10, cell_m=100.0,
                          population_start=2_000_000.0, core_radius_km=coarse / 150)
    b = (ds["built_up"].values >= 0.1).astype(np.uint8)
    # 100 m -> 10 m by repetition (uint8, 100 MB per date at 10,000 x 10,000)
    b1 = np.repeat(np.repeat(b[0], 10, axis=0), 10, axis=1)
    b2 = np.repeat(np.repeat(b[-1], 10, axis=0), 10, axis=1)
    pop = ds["population"].values
    n1 = pop.shape[1] // 10
    p1 = pop[0].reshape(n1, 10, n1, 10).sum(axis=(1, 3))
    p2 = pop[-1].reshape(n1, 10, n1, 10).sum(axis=(1, 3))
    t = ds.rio.transform()
    built_tr = Affine(10.0, 0, t.c, 0, -10.0, t.f)
    pop_tr = Affine(1000.0, 0, t.c, 0, -1000.0, t.f)
    years = [int(y) for y in ds["year"].values]
    return b1, b2, p1, p2, built_tr, pop_tr, ds.rio.crs, years


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000, help="side of the built-up maps in cells")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "sdg.md"))
    args = ap.parse_args()
    from urbankit import sdg

    load_before = os.getloadavg()[0]
    b1, b2, p1, p2, btr, ptr, crs, years = make_inputs(args.size)
    inputs_native = b1.nbytes + b2.nbytes + p1.nbytes + p2.nbytes
    inputs_f64 = (b1.size + b2.size + p1.size + p2.size) * 8
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    res = sdg.sdg_11_3_1(b1, b2, p1, p2, years[0], years[-1], transform=btr, crs=crs, pop_transform=ptr,
                         pop_crs=crs)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    mb = 1024 * 1024
    rows = [
        ("built-up maps", f"{args.size} x {args.size} uint8 (10 m), 2 dates"),
        ("population grid", f"{p1.shape[0]} x {p1.shape[1]} float (1 km), 2 dates"),
        ("time, one sdg_11_3_1 call (s)", f"{seconds:.2f}"),
        ("peak traced memory (MB)", f"{peak / mb:.0f}"),
        ("inputs as given (MB)", f"{inputs_native / mb:.0f}"),
        ("inputs as float64 copies (MB)", f"{inputs_f64 / mb:.0f}"),
        ("peak / float64 inputs", f"{peak / inputs_f64:.2f}"),
        ("process max RSS incl. inputs (MB)", f"{rss_mb:.0f}"),
        ("city extent (km2)", f"{res['city_extent_area']:.0f}"),
        ("LCRPGR", f"{res['LCRPGR']:.3f}"),
        ("load average (1 min) before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"),
        ("machine", f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                    f"Python {platform.python_version()}, numpy {np.__version__}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    md = ["# SDG 11.3.1 benchmark (`benchmarks/bench_sdg.py`)", "",
          "Every SDG 11.3.1 indicator (DEGURBA urban centre on the 1 km grid, union extent, LCR, PGR, "
          "LCRPGR, per-capita, new-development split) for one built-up pair; one run on CPU, "
          "peak memory traced with tracemalloc (numpy buffers).", "",
          "| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(md) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
