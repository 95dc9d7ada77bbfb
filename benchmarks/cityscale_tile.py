"""City-scale benchmark: a full Sentinel-2 tile predicted out of core to a COG (urbankit.cityscale).

Run ``nice -n 10 python benchmarks/cityscale_tile.py`` (CPU; not in ``run_all.py``: about
15-45 min on 2 cores, and 6.3 GB of disk for the synthetic scene). It

1. writes a synthetic single-date 13-band scene of ``--size`` x ``--size`` px (default 10980,
   one Sentinel-2 tile) lazily with dask into a zarr store (chunks of 256 px, uncompressed) under
   ``--workdir`` (default: the system temp folder), once: nothing of it is held in memory;
2. in a fresh process each (so that peak memory is that run's alone):
   - ``predict_to_cog`` of the full scene with a quick-width U-Net (``unet``, topology
     [64, 128, 256, 512] x 0.25 = [16, 32, 64, 128], 13 bands in, random weights: speed and
     memory do not depend on training), chunk 1024, overlap 64, dask threads = 1 (torch uses
     both cores), timing every forward call inside the run;
   - the same on a 4x smaller scene (the top-left ``size/2`` x ``size/2`` quarter);
   - bare forward calls (``model(batch)`` under ``no_grad`` on ready tensors) over the same
     windows (same sizes, same overlap), nothing read or written: each distinct window size
     timed 3 times, weighted by its number of windows (:func:`child_bare`);
3. writes ``benchmarks/results/cityscale.md``: peak RSS (``getrusage``), wall times and the
   ratios the issue asks for: peak RSS < 2 GB, quarter-scene RSS within 10 % of the full one,
   pipeline time within 1.15x of the bare forward calls; plus the check that the output is a
   COG with the scene's georeference.

The machine is shared: the load average before and after is in the result file; compare the
ratios, and the in-run ratio (pipeline wall / forward time inside the same run) is immune to
load that changes between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing urbankit
    sys.path.insert(0, str(ROOT))

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
CHUNK, OVERLAP, STORE_CHUNK = 1024, 64, 256


def _block(block, block_info=None, seed=0):
    """Smooth reflectance-like pattern plus noise for one (1, 13, h, w) block, seeded by position."""
    (t0, _), _, (y0, y1), (x0, x1) = block_info[None]["array-location"]
    rng = np.random.default_rng([seed, y0, x0])
    yy = np.arange(y0, y1, dtype=np.float32)[:, None]
    xx = np.arange(x0, x1, dtype=np.float32)[None, :]
    base = 0.15 + 0.08 * np.sin(yy / 37.0) * np.cos(xx / 53.0) + 0.05 * np.sin((xx + yy) / 211.0)
    gain = np.linspace(0.6, 1.6, len(BANDS), dtype=np.float32)[:, None, None]
    arr = base[None] * gain + 0.02 * rng.standard_normal((len(BANDS), y1 - y0, x1 - x0), dtype=np.float32)
    return np.clip(arr, 0, 1).astype(np.float32)[None]


def make_scene(path: Path, size: int) -> Path:
    """Write the synthetic scene to ``path`` (a zarr store) unless it is there; lazily, block by block."""
    if (path / ".complete").exists():
        return path
    import dask
    import dask.array as da
    import rioxarray  # noqa: F401
    import xarray as xr

    arr = da.map_blocks(_block, da.empty((1, len(BANDS), size, size), chunks=(1, len(BANDS), STORE_CHUNK,
                                                                              STORE_CHUNK), dtype=np.float32),
                        dtype=np.float32)
    ds = xr.Dataset({"optical": (("time", "band", "y", "x"), arr)},
                    coords={"time": np.array(["2024-06-01"], dtype="datetime64[ns]"), "band": BANDS,
                            "y": 5_000_000.0 - 10 * (np.arange(size) + 0.5),
                            "x": 500_000.0 + 10 * (np.arange(size) + 0.5)},
                    attrs={"site": f"synthetic-tile-{size}"}).rio.write_crs("EPSG:32633")
    tmp = path.with_name(path.name + ".tmp")
    with dask.config.set(scheduler="threads", num_workers=2):
        ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True,
                   encoding={"optical": {"chunks": (1, len(BANDS), STORE_CHUNK, STORE_CHUNK), "compressors": None}})
    (tmp / ".complete").write_text("ok")
    os.replace(tmp, path)
    return path


def build_model():
    """The quick-width single-date U-Net on 13 bands with a dataset-norm contract (random weights)."""
    import torch

    from urbankit.data.contract import InputContract
    from urbankit.models import build
    from urbankit.models.blocks import DEFAULT_TOPOLOGY

    torch.manual_seed(0)
    model = build("unet", modality="optical", optical_channels=len(BANDS), topology=DEFAULT_TOPOLOGY, width=0.25)
    model.input_contract = InputContract(optical_bands=tuple(BANDS), optical_norm="dataset",
                                         optical_mean=tuple([0.2] * len(BANDS)),
                                         optical_std=tuple([0.1] * len(BANDS)))
    return model.eval()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def child_pipeline(store: Path, out: Path, size: int | None) -> dict:
    """predict_to_cog of the store (or of its top-left ``size`` square), forward calls timed inside."""
    import torch

    from urbankit import cityscale as cs

    model = build_model()
    forward_s = [0.0]
    inner = model.forward

    def timed(batch):
        t = time.perf_counter()
        result = inner(batch)
        forward_s[0] += time.perf_counter() - t
        return result

    model.forward = timed
    inputs = str(store)
    if size is not None:
        import xarray as xr

        inputs = xr.open_zarr(store, chunks=None).isel(y=slice(0, size), x=slice(0, size))
    t = time.perf_counter()
    with torch.no_grad():
        path = cs.predict_to_cog(model, inputs, out, chunk=CHUNK, overlap=OVERLAP, device="cpu", progress=False,
                                 resume=False)
    wall = time.perf_counter() - t
    import rasterio

    with rasterio.open(path) as src:
        geo = {"crs": str(src.crs), "transform": list(src.transform)[:6], "shape": [src.height, src.width]}
    return {"wall_s": wall, "forward_s": forward_s[0], "peak_rss_mb": _peak_rss_mb(),
            "cog_problems": cs.validate_cog(path), "geo": geo}


def child_bare(shape: tuple[int, int], reps: int = 3) -> dict:
    """Bare forward calls over the windows of a ``shape`` scene (same plan as the pipeline).

    A tile's windows come in few sizes (9 for 10980 px: first, inner and last along each axis);
    each size is timed ``reps`` times on ready tensors and the forward time of the scene is the
    sum over sizes of (number of windows of that size x the median time). Every window size
    of the pipeline is measured; only repeats of one size are not.
    """
    import statistics
    from collections import Counter

    import torch

    from urbankit import cityscale as cs

    model = build_model()
    plan = cs.plan_blocks(shape, CHUNK, OVERLAP)
    sizes = Counter((b.wy1 - b.wy0, b.wx1 - b.wx0) for row in plan for b in row)
    total, calls = 0.0, 0
    with torch.no_grad():
        model({"optical_t1": torch.rand(1, len(BANDS), 64, 64)})  # warm-up (allocator, kernels)
        for (h, w), count in sizes.items():
            times = []
            for _ in range(reps):
                x = {"optical_t1": torch.rand(1, len(BANDS), h, w)}
                t = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t)
            total += count * statistics.median(times)
            calls += reps
    return {"forward_s": total, "windows": sum(sizes.values()), "sizes": len(sizes), "calls": calls,
            "peak_rss_mb": _peak_rss_mb()}


def _run_child(*args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10980)
    p.add_argument("--workdir", default=None, help="folder for the synthetic scene and outputs (default: temp)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "pipeline":
            res = child_pipeline(Path(rest[0]), Path(rest[1]), int(rest[2]) if rest[2] != "full" else None)
        else:
            res = child_bare((int(rest[0]), int(rest[1])))
        print(json.dumps(res))
        return 0
    work = Path(args.workdir or tempfile.gettempdir()) / "urbankit-bench-cityscale"
    work.mkdir(parents=True, exist_ok=True)
    size, quarter = args.size, args.size // 2
    load_before = _load()
    t = time.perf_counter()
    store = make_scene(work / f"scene-{size}.zarr", size)
    make_s = time.perf_counter() - t
    full = _run_child("pipeline", str(store), str(work / "full.tif"), "full")
    small = _run_child("pipeline", str(store), str(work / "quarter.tif"), str(quarter))
    bare = _run_child("bare", str(size), str(size))
    load_after = _load()
    write_results(size, quarter, full, small, bare, make_s, load_before, load_after)
    return 0


def write_results(size, quarter, full, small, bare, make_s, load_before, load_after) -> None:
    import torch

    rss_ratio = small["peak_rss_mb"] / full["peak_rss_mb"]
    ratio = full["wall_s"] / bare["forward_s"]
    inner = full["wall_s"] / full["forward_s"]
    rows = [
        ("peak RSS, full scene", f"{full['peak_rss_mb']:.0f} MB", "< 2048 MB",
         full["peak_rss_mb"] < 2048),
        ("peak RSS, 4x smaller scene / full", f"{small['peak_rss_mb']:.0f} MB ({rss_ratio:.3f})",
         "within 10 %", abs(1 - rss_ratio) <= 0.10),
        ("pipeline wall / bare forward calls (separate run, per window size)",
         f"{full['wall_s']:.0f} s / {bare['forward_s']:.0f} s = {ratio:.3f}", "<= 1.15", ratio <= 1.15),
        ("pipeline wall / forward time inside the same run",
         f"{full['wall_s']:.0f} s / {full['forward_s']:.0f} s = {inner:.3f}", "<= 1.15", inner <= 1.15),
        ("output is a COG (validate_cog)", "; ".join(full["cog_problems"]) or "yes", "yes",
         not full["cog_problems"]),
    ]
    lines = [
        "# City-scale prediction (urbankit.cityscale.predict_to_cog)",
        "",
        f"Synthetic single-date scene, {size} x {size} px x 13 bands float32 (zarr, 256-px chunks, "
        f"uncompressed; written lazily in {make_s:.0f} s, reused when present), quick-width U-Net "
        "(`unet`, [16, 32, 64, 128], 13 bands in, random weights), chunk 1024, overlap 64, dask threads 1, "
        f"CPU. The 4x smaller scene is its top-left {quarter} x {quarter} px. {bare['windows']} windows "
        f"of {bare['sizes']} sizes; the bare-forward time is each size timed 3 times (median) x its number "
        "of windows.",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}; "
        f"load average (1, 5, 15 min) before {load_before}, after {load_after} (a shared machine).",
        "",
        "| measure | value | bar | met |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {'yes' if d else 'no'} |" for a, b, c, d in rows],
        "",
        f"Quarter scene: wall {small['wall_s']:.0f} s, forward inside {small['forward_s']:.0f} s. "
        f"Bare-forward run peak RSS {bare['peak_rss_mb']:.0f} MB. Output georeference: {full['geo']['crs'][:60]}"
        f"..., transform {full['geo']['transform']}, shape {full['geo']['shape']}.",
        "",
    ]
    out = ROOT / "benchmarks" / "results" / "cityscale.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
