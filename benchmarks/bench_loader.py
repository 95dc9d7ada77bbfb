"""Loader benchmark: patches per second from the torch layer vs. the training step of a small U-Net.

Run ``python benchmarks/bench_loader.py`` (CPU). It builds bi-temporal S1+S2 scenes with
urbankit's synthetic generator, draws batches of 16 64x64 patches with the importance sampler,
random date pairs and augmentations (flips, rot90, gamma) through
:func:`urbankit.datasets.make_loader` (``num_workers=0``: one process, the slowest case), and
times one training step (forward + backward + AdamW) of the project's early-fusion U-Net
(``urbankit.models.build("unet_ef", modality="fusion", width=0.25)``, the quick-profile width)
on the same batch. It prints a table and writes ``benchmarks/results/loader.md``.
Target: the loader is at least 5x faster than the step, so loading never dominates a CPU run.

By default torch runs on one thread (``--threads 1``), so both sides use one core: a per-core
comparison that a busy machine disturbs least. ``--threads 0`` uses torch's default threads
(the step then gets faster, as the loader would with ``num_workers > 0``).
Loader batches and training steps are timed in alternation (one batch, one step on it) so that
both see the same machine load; the table gives medians. Compare ratios, not absolute times.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing urbankit
    sys.path.insert(0, str(ROOT))

BATCH, PATCH = 16, 64


def make_scenes(n_sites: int, size: int, n_dates: int, seed: int):
    """Synthetic scenes from urbankit's generator when it is there, otherwise a plain xarray builder."""
    try:
        from urbankit.data.synthetic import make_site
    except ImportError:
        make_site = None
    if make_site is not None:
        scenes = [make_site(site=f"bench{k}", size=size, n_dates=n_dates, seed=seed + k) for k in range(n_sites)]
        return scenes, "urbankit.data.synthetic.make_site"
    return [_plain_scene(f"bench{k}", size, n_dates, seed + k) for k in range(n_sites)], "plain xarray builder"


def _plain_scene(site, size, n_dates, seed):
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    bands = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    built = np.maximum.accumulate(rng.random((n_dates, size, size)) < 0.2, axis=0).astype(np.float32)
    opt = rng.random((n_dates, len(bands), size, size), dtype=np.float32) * 0.3 + built[:, None] * 0.2
    sar = rng.normal(-15, 3, (n_dates, 2, size, size)).astype(np.float32) + built[:, None] * 6
    return xr.Dataset(
        {"optical": (("time", "band", "y", "x"), opt), "sar": (("time", "polarisation", "y", "x"), sar),
         "buildings": (("time", "y", "x"), built),
         "change": (("y", "x"), ((built[-1] > 0) & (built[0] == 0)).astype(np.uint8))},
        coords={"time": pd.date_range("2020-01-01", periods=n_dates, freq="MS"), "band": bands,
                "polarisation": ["VV", "VH"], "y": np.arange(size) * -10.0, "x": np.arange(size) * 10.0},
        attrs={"site": site, "split": "train"})


class _MiniUNet(torch.nn.Module):
    """Fallback ONLY when urbankit.models has no U-Net: a minimal 3-level early-fusion U-Net."""

    def __init__(self, in_ch, widths=(16, 32, 64), keys=()):
        super().__init__()
        self.input_keys = tuple(keys)

        def block(i, o):
            return torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, padding=1), torch.nn.BatchNorm2d(o),
                                       torch.nn.ReLU(inplace=True), torch.nn.Conv2d(o, o, 3, padding=1),
                                       torch.nn.BatchNorm2d(o), torch.nn.ReLU(inplace=True))
        w1, w2, w3 = widths
        self.e1, self.e2, self.e3 = block(in_ch, w1), block(w1, w2), block(w2, w3)
        self.u2, self.d2 = torch.nn.ConvTranspose2d(w3, w2, 2, 2), block(2 * w2, w2)
        self.u1, self.d1 = torch.nn.ConvTranspose2d(w2, w1, 2, 2), block(2 * w1, w1)
        self.out = torch.nn.Conv2d(w1, 1, 1)

    def forward(self, batch):
        x = torch.cat([batch[k] for k in self.input_keys], 1)
        x1 = self.e1(x)
        x2 = self.e2(torch.nn.functional.max_pool2d(x1, 2))
        x3 = self.e3(torch.nn.functional.max_pool2d(x2, 2))
        y = self.d2(torch.cat([self.u2(x3), x2], 1))
        y = self.d1(torch.cat([self.u1(y), x1], 1))
        return {"change": self.out(y)}


def make_model(channels: dict[str, int], width: float):
    """The project's early-fusion U-Net (S1+S2, both dates) from the model registry, else the fallback."""
    cfg = {"modality": "fusion", "sar_channels": channels["sar"], "optical_channels": channels["optical"],
           "width": width}
    try:
        from urbankit.models import build
        return build("unet_ef", **cfg), f"urbankit.models.build('unet_ef', modality='fusion', width={width})"
    except (ImportError, AttributeError):
        pass
    try:
        from urbankit.models.unet import UNetEF
        return UNetEF(**cfg), f"urbankit.models.unet.UNetEF(modality='fusion', width={width})"
    except ImportError:
        keys = [f"{m}_{t}" for m in ("sar", "optical") for t in ("t1", "t2")]
        return (_MiniUNet(2 * (channels["sar"] + channels["optical"]), keys=keys),
                "FALLBACK minimal U-Net defined in bench_loader.py (16-32-64)")


def measure(dataset, model, rounds: int, seed: int, warmup: int = 3) -> dict[str, list[float]]:
    """Alternate one loader batch and one training step on it, ``rounds`` times (after warm-up).

    Interleaving makes both see the same machine load. Each phase is timed by the wall clock
    and by the CPU time of this process (all its threads), which a busy machine disturbs less.
    """
    from urbankit.datasets import make_loader

    loader = make_loader(dataset, batch_size=BATCH, shuffle=True, num_workers=0, seed=seed, drop_last=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    model.train()
    out = {"load_wall": [], "step_wall": [], "load_cpu": [], "step_cpu": []}
    epoch, it, batch = 0, None, None
    for k in range(rounds + warmup):
        w0, c0 = time.perf_counter(), time.process_time()
        batch = next(it, None) if it is not None else None
        if batch is None:  # new epoch (the epoch switch is part of the loader's cost)
            loader.set_epoch(epoch)
            epoch += 1
            it = iter(loader)
            batch = next(it)
        w1, c1 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        logits = model(batch)["change"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["change"])
        loss.backward()
        opt.step()
        w2, c2 = time.perf_counter(), time.process_time()
        if k >= warmup:
            out["load_wall"].append(w1 - w0)
            out["step_wall"].append(w2 - w1)
            out["load_cpu"].append(c1 - c0)
            out["step_cpu"].append(c2 - c1)
    out["batch"] = batch
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--size", type=int, default=256, help="scene side in pixels")
    ap.add_argument("--dates", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=30, help="timed (loader batch, training step) rounds")
    ap.add_argument("--width", type=float, default=0.25, help="U-Net width multiplier (quick profile: 0.25)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the step (default 1: per-core comparison with the single-process "
                         "loader; 0 = torch's default)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "loader.md"))
    args = ap.parse_args(argv)
    from urbankit.datasets import Augment, ImportanceSampler, SceneDataset

    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    scenes, scene_src = make_scenes(args.sites, args.size, args.dates, args.seed)
    t_make = time.perf_counter() - t0
    sampler = ImportanceSampler(PATCH, n_per_scene=64, n_candidates=20, bias=5)
    t0 = time.perf_counter()
    ds = SceneDataset(scenes, sampler, pair="random_pair", augment=Augment(gamma=True), seed=args.seed)
    t_convert = time.perf_counter() - t0
    del scenes
    model, model_src = make_model(ds.channels, args.width)
    n_params = sum(p.numel() for p in model.parameters())
    m = measure(ds, model, args.rounds, args.seed)
    batch = m.pop("batch")
    med = {k: statistics.median(v) for k, v in m.items()}
    loader_s, step_s = med["load_wall"], med["step_wall"]
    ratio, ratio_cpu = step_s / loader_s, med["step_cpu"] / med["load_cpu"]
    best = {k: min(v) for k, v in m.items()}
    ratio_best = best["step_wall"] / best["load_wall"]

    shape = {k: tuple(v.shape) for k, v in batch.items() if torch.is_tensor(v) and v.ndim == 4}
    cmd = "python benchmarks/bench_loader.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = [
        ("command", f"`{cmd.strip()}`"),
        ("scenes", f"{args.sites} x {args.size}x{args.size} px, {args.dates} dates ({scene_src})"),
        ("inputs per sample", ", ".join(f"{k} {s[1]}ch" for k, s in shape.items() if not k.startswith(("b", "c")))),
        ("sampler", (f"ImportanceSampler({PATCH}, n_candidates=20, bias=5), pair=random_pair, "
                     "Augment(flips, rot90, gamma)")),
        ("scene -> numpy conversion (once)", f"{t_convert * 1e3:.1f} ms"),
        ("loader: time per batch of 16 (num_workers=0)",
         f"{loader_s * 1e3:.2f} ms (CPU {med['load_cpu'] * 1e3:.2f} ms)"),
        ("loader: patches / s", f"{BATCH / loader_s:,.0f} (per CPU-second: {BATCH / med['load_cpu']:,.0f})"),
        ("model", f"{model_src}, {n_params / 1e6:.3f} M parameters"),
        ("train step (fwd + bwd + AdamW), batch 16", f"{step_s * 1e3:.1f} ms (CPU {med['step_cpu'] * 1e3:.1f} ms)"),
        ("train step: patches / s", f"{BATCH / step_s:,.0f} (per CPU-second: {BATCH / med['step_cpu']:,.0f})"),
        ("**ratio step / loader, wall clock (medians)** (target >= 5)",
         f"**{ratio:.1f}x** ({'met' if ratio >= 5 else 'NOT met'})"),
        ("ratio step / loader, CPU time (medians)", f"{ratio_cpu:.1f}x"),
        ("ratio step / loader, best of each (least disturbed)",
         f"{ratio_best:.1f}x ({best['step_wall'] * 1e3:.1f} ms / {best['load_wall'] * 1e3:.2f} ms)"),
    ]
    env = (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
           f"{torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
           f"Python {platform.python_version()}; load average before/after the run "
           f"{load0:.1f}/{os.getloadavg()[0]:.1f} (other processes slow both parts, not always equally)")
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    print(env)

    md = ["# Loader benchmark", "",
          ("`python benchmarks/bench_loader.py` — the torch layer (`urbankit.datasets`) vs. one CPU "
           f"training step on the same batch, {args.rounds} interleaved rounds (loader batch, then a step "
           "on it). Medians of one run; the ratio is what matters."), "",
          "| item | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
          f"Environment: {env}. Synthetic scene generation took {t_make:.1f} s (not part of the loader).", ""]
    out = Path(args.out)
    write_report(out, "\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
