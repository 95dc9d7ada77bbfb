"""Benchmark: SDG 11.3.1 and the GHSL Degree of Urbanisation on CPU.

Part ``indicators``: every SDG 11.3.1 indicator on a 10,000 x 10,000 built-up pair (10 m cells,
uint8) and a 1 km population grid: wall time (seconds) and peak traced memory (tracemalloc: numpy
allocations) of one ``sdg_11_3_1`` call, next to the size of float64 copies of the inputs.
Writes ``benchmarks/results/sdg.md``.

Part ``degurba``: the full level-2 classification (:func:`urbankit.degurba.classify`, both GHSL
releases) of a synthetic country, a 1,000 x 1,000-cell 1 km grid (population, land share, built-up
share), side by side with the urban-centre-only rule of ``sdg.degurba`` on the same grid (ratio).
Writes ``benchmarks/results/sdg_degurba.md``.

Run: ``python benchmarks/bench_sdg.py [--part all|indicators|degurba] [--size 10000] [--grid 1000]``.
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
from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)


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


def make_country(n: int, seed: int = 0):
    """A synthetic n x n 1 km country: population (persons), land share and built-up share.

    Towns and cities of Pareto-distributed size (Gaussian population kernels) on a low rural
    background, a sea along one coast with a wavy shoreline and a few lakes (land share 0..1,
    unpopulated), built-up share rising with density.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    coast = 0.85 * n + 0.04 * n * np.sin(yy / (0.05 * n))
    land = np.clip(coast - xx + 0.5, 0, 1)
    for _ in range(max(1, n // 100)):
        cy, cx, r = rng.integers(0, n), rng.integers(0, n), rng.uniform(2, 8)
        land[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 0.0
    pop = rng.lognormal(np.log(15), 0.8, (n, n))
    for sigma, count, scale in ((0.8, n * 3, 3e3), (1.5, n // 4, 3e4), (3.0, n // 40, 4e5)):
        seeds = np.zeros((n, n))
        seeds[rng.integers(0, n, count), rng.integers(0, n, count)] = scale * (rng.pareto(1.5, count) + 1)
        pop += ndimage.gaussian_filter(seeds, sigma)
    pop *= land > 0
    built = np.clip(pop / 25_000 * rng.uniform(0.6, 1.4, (n, n)), 0, 1) * np.minimum(land * 2, 1)
    return pop, land, built


def bench_degurba(n: int, out: Path) -> None:
    """Time and memory of the full classification of an n x n 1 km grid, both releases."""
    from urbankit import degurba, sdg

    pop, land, built = make_country(n)
    rows = [("grid", f"{n} x {n} cells of 1 km2 (synthetic country, {pop.sum() / 1e6:.1f} M persons)")]
    times = {}
    for name, call in (
        (
            "sdg.degurba (urban centres only, no land/built grids)",
            lambda: sdg.degurba(pop, np.ones_like(pop)),
        ),
        (
            "degurba.classify R2022A (8 classes)",
            lambda: degurba.classify(pop, 1.0, land_share=land, built_share=built, release="R2022A"),
        ),
        (
            "degurba.classify R2023A (8 classes, optimal threshold)",
            lambda: degurba.classify(pop, 1.0, land_share=land, built_share=built, release="R2023A"),
        ),
    ):
        tracemalloc.start()
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        res = call()
        times[name] = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((f"{name}: seconds", f"{times[name]:.2f}"))
        rows.append((f"{name}: peak traced memory (MB)", f"{peak / 2**20:.0f}"))
        if hasattr(res, "summary"):
            s = res.summary().set_index("code")["cells"]
            rows.append(
                (
                    f"{name}: cells 30/23/22/21/13/12/11/10",
                    "/".join(str(int(s[c])) for c in (30, 23, 22, 21, 13, 12, 11, 10)),
                )
            )
    base = times["sdg.degurba (urban centres only, no land/built grids)"]
    for name, t in times.items():
        rows.append((f"ratio to the urban-centre-only rule: {name}", f"{t / base:.1f}"))
    rows.append(("inputs (3 float64 grids, MB)", f"{3 * pop.nbytes / 2**20:.0f}"))
    rows.append(("process max RSS (MB)", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"))
    _write(
        out,
        "GHSL Degree of Urbanisation benchmark (`benchmarks/bench_sdg.py --part degurba`)",
        "Full level-2 grid classification of a synthetic 1 km country grid on CPU, one run per rule set, "
        "peak memory traced with tracemalloc (numpy buffers); the ratio compares with the "
        "urban-centre-only rule measured in the same run.",
        rows,
    )


def _write(out: Path, title: str, intro: str, rows, load_row: bool = True) -> None:
    """Print the (quantity, value) rows and write them as a Markdown table (machine row added)."""
    rows = list(rows) + ([("load average (1 min)", f"{os.getloadavg()[0]:.1f}")] if load_row else []) + [
        (
            "machine",
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, numpy {np.__version__}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    md = [f"# {title}", "", intro, "", "| quantity | value |", "|---|---|"] + [
        f"| {k} | {v} |" for k, v in rows
    ]
    write_report(out, "\n".join(md) + "\n")


def main() -> None:
    """Parse the command line and run the chosen parts."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "indicators", "degurba"), default="all")
    ap.add_argument("--size", type=int, default=10_000, help="side of the built-up maps in cells")
    ap.add_argument("--grid", type=int, default=1000, help="side of the 1 km DEGURBA grid in cells")
    results = Path(__file__).resolve().parent / "results"
    ap.add_argument("--out", default=str(results / "sdg.md"))
    ap.add_argument("--out-degurba", default=str(results / "sdg_degurba.md"))
    args = ap.parse_args()
    if args.part in ("all", "degurba"):
        bench_degurba(args.grid, Path(args.out_degurba))
    if args.part in ("all", "indicators"):
        bench_indicators(args)


def bench_indicators(args) -> None:
    """One sdg_11_3_1 call on the 10 m built-up pair (the original benchmark)."""
    from urbankit import sdg

    load_before = os.getloadavg()[0]
    b1, b2, p1, p2, btr, ptr, crs, years = make_inputs(args.size)
    inputs_native = b1.nbytes + b2.nbytes + p1.nbytes + p2.nbytes
    inputs_f64 = (b1.size + b2.size + p1.size + p2.size) * 8
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    res = sdg.sdg_11_3_1(
        b1, b2, p1, p2, years[0], years[-1], transform=btr, crs=crs, pop_transform=ptr, pop_crs=crs
    )
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
    ]
    _write(Path(args.out), "SDG 11.3.1 benchmark (`benchmarks/bench_sdg.py`)",
           "Every SDG 11.3.1 indicator (DEGURBA urban centre on the 1 km grid, union extent, LCR, PGR, "
           "LCRPGR, per-capita, new-development split) for one built-up pair; one run on CPU, "
           "peak memory traced with tracemalloc (numpy buffers).", rows, load_row=False)


if __name__ == "__main__":
    main()
