"""Benchmark the synthetic urban twin generator (urbankit.data.synthetic.make_site).

Run: ``python benchmarks/bench_synthetic.py [--quick]``. Prints a table of wall-clock and CPU
seconds per configuration (best of ``--repeat`` runs), the size of the scene, and the
throughput in million pixel-dates per second; then the speed-up of the vectorised optical
synthesis over a per-pixel Python loop doing the same work, measured in the same run.
The target: one 512 x 512 site with 24 dates and both modalities in a few seconds on a CPU.
Writes ``benchmarks/results/synthetic.md`` (``--quick`` runs do not write it).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from urbankit.data.synthetic import SPECTRA, make_site


def _time(fn, repeat: int) -> tuple[float, float, object]:
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, out


def _loop_optical(material: np.ndarray, lib: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same spectra lookup + brightness + noise as make_site, one pixel at a time."""
    t_, h, w = material.shape
    out = np.empty((t_, lib.shape[1], h, w), np.float32)
    for t in range(t_):
        for y in range(h):
            for x in range(w):
                spec = lib[material[t, y, x]]
                out[t, :, y, x] = spec * (1 + 0.06 * rng.standard_normal()) + 0.005 * rng.standard_normal(13)
    return out


def _vector_optical(material: np.ndarray, lib: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = lib[material].transpose(0, 3, 1, 2) * (1 + 0.06 * rng.standard_normal(material.shape))[:, None]
    return (out + 0.005 * rng.standard_normal(out.shape)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    configs = [
        ("128px x 12 dates, S1+S2", dict(size=128, n_dates=12)),
        ("256px x 12 dates, S1+S2", dict(size=256, n_dates=12)),
        ("256px x 12 dates, S1+S2, clouds 0.3", dict(size=256, n_dates=12, cloud_fraction=0.3)),
        ("512px x 24 dates, S2 only", dict(size=512, n_dates=24, modalities=("optical",))),
        ("512px x 24 dates, S1 only", dict(size=512, n_dates=24, modalities=("sar",))),
        ("512px x 24 dates, S1+S2", dict(size=512, n_dates=24)),
        ("512px x 24 dates, S1+S2, sub_saharan_africa",
         dict(size=512, n_dates=24, region="sub_saharan_africa")),
    ]
    if args.quick:
        configs = configs[:2]
    machine = (f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
               f"{platform.machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(machine)
    head = f"{'configuration':46s} {'wall s':>8s} {'cpu s':>8s} {'MB':>8s} {'Mpx-dates/s':>12s}"
    print(head)
    print("-" * len(head))
    rows = []
    for name, kw in configs:
        wall, cpu, ds = _time(lambda: make_site(seed=0, **kw), args.repeat)
        px_dates = ds.sizes["y"] * ds.sizes["x"] * ds.sizes["time"]
        rows.append((name, wall, cpu, ds.nbytes / 1e6, px_dates / wall / 1e6))
        print(f"{name:46s} {wall:8.2f} {cpu:8.2f} {ds.nbytes / 1e6:8.0f} {px_dates / wall / 1e6:12.2f}")

    # vectorised vs per-pixel loop on the same small material stack (same work, one run)
    rng = np.random.default_rng(0)
    lib = np.stack([np.asarray(v, np.float32) for v in SPECTRA.values()])
    material = rng.integers(0, len(lib), (2, 32, 32))
    loop_wall, _, _ = _time(lambda: _loop_optical(material, lib, rng), 1)
    vec_wall, _, _ = _time(lambda: _vector_optical(material, lib, rng), args.repeat)
    ratio = (f"optical synthesis 2x32x32 px: per-pixel loop {loop_wall * 1e3:.1f} ms, "
             f"vectorised {vec_wall * 1e3:.2f} ms -> {loop_wall / vec_wall:.0f}x faster")
    print("\n" + ratio)
    if args.quick:
        return
    lines = [
        "# Synthetic urban twin: generation time",
        "",
        "`urbankit.data.synthetic.make_site(seed=0, ...)`, best of "
        f"{args.repeat} runs; wall-clock and CPU (process) seconds. CPU seconds are the better "
        "measure on a shared machine.",
        "",
        f"Machine: {machine}.",
        "",
        "| configuration | wall (s) | CPU (s) | scene size (MB) | Mpixel-dates/s |",
        "|---|---:|---:|---:|---:|",
        *[f"| {n} | {w:.2f} | {c:.2f} | {mb:.0f} | {t:.2f} |" for n, w, c, mb, t in rows],
        "",
        ratio + ".",
        "",
    ]
    out = Path(__file__).resolve().parent / "results" / "synthetic.md"
    out.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".md", dir=out.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines))
    Path(tmp).replace(out)
    print(f"wrote {out}")

if __name__ == "__main__":
    main()
