"""Training throughput of ``urbankit.train.fit`` against a bare hand-written loop (CPU).

Both train the same model (same initial weights) on the same in-memory batches with the same
loss (power Jaccard, p=2) and optimiser (AdamW); the bare loop is the minimum a user would write:

    for batch in batches:
        opt.zero_grad(); loss = power_jaccard(model(batch)["change"], batch["change"])
        loss.backward(); opt.step()

``fit`` adds the strategy call, the NaN/inf check, per-term logging, the history, the best-state
copy and (optionally) the tqdm bar. Runs are interleaved (bare, fit, fit+progress, bare, ...) so
drifts in machine speed hit all variants alike; the table reports the median samples/s of each
and the overhead of ``fit`` relative to the bare loop in the same run. Target: < 10 %.

    python benchmarks/bench_train.py [--repeats 7] [--steps 40] [--batch 8] [--patch 64]

Writes ``benchmarks/results/train.md``.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

from urbankit.losses import power_jaccard  # noqa: E402
from urbankit.train import Supervised, fit  # noqa: E402


def make_model(width: float):
    """The quick profile's early-fusion U-Net (model zoo) on 4 optical bands per date."""
    from urbankit.models import build

    net = build("unet_ef", optical_channels=4, sar_channels=2, modality="optical", width=width)
    return net


def make_batches(n: int, batch: int, patch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x1 = torch.rand(batch, 4, patch, patch, generator=g)
        x2 = torch.rand(batch, 4, patch, patch, generator=g)
        y = ((x2[:, :1] - x1[:, :1]) > 0.4).float()
        out.append({"optical_t1": x1, "optical_t2": x2, "change": y,
                    "labelled": torch.ones(batch, dtype=torch.bool), "site": ["bench"] * batch})
    return out


def _clock():
    return time.perf_counter(), time.process_time()


def _since(t):
    w, c = _clock()
    return w - t[0], c - t[1]


def bare_loop(model, batches, lr):
    t = _clock()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        loss = power_jaccard(model(batch)["change"], batch["change"], p=2.0)
        loss.backward()
        opt.step()
    return _since(t)


def fit_loop(model, batches, lr, progress):
    t = _clock()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        fit(model, batches, None, strategy=Supervised(targets={"change": "change"}), epochs=1,
            optimizer="adamw", lr=lr, weight_decay=0.01, device="cpu", amp=False, progress=progress,
            restore_best=False)
    return _since(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=8, help="batches per timed run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: robust on a shared machine)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--width", type=float, default=0.25, help="model width multiplier (quick profile: 0.25)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train.md"))
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model0 = make_model(args.width)
    init = copy.deepcopy(model0.state_dict())
    n_params = sum(p.numel() for p in model0.parameters())
    batches = make_batches(args.steps, args.batch, args.patch)
    samples = args.steps * args.batch
    lr = 1e-4

    def fresh():
        m = make_model(args.width)
        m.load_state_dict(init)
        return m

    variants = {"bare loop": lambda m: bare_loop(m, batches, lr),
                "fit (progress=False)": lambda m: fit_loop(m, batches, lr, False),
                "fit (progress=True)": lambda m: fit_loop(m, batches, lr, True)}
    # warm-up (allocator, first-call costs)
    for run in variants.values():
        run(fresh())
    times = {k: [] for k in variants}   # (wall s, process CPU s) per run
    for r in range(args.repeats):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(variants[name](fresh()))
    base_wall = statistics.median(t[0] for t in times["bare loop"])
    base_cpu = statistics.median(t[1] for t in times["bare loop"])
    rows = []
    for name, ts in times.items():
        wall = statistics.median(t[0] for t in ts)
        cpu = statistics.median(t[1] for t in ts)
        rows.append((name, samples / wall, wall, (wall / base_wall - 1) * 100, samples / cpu,
                     (cpu / base_cpu - 1) * 100))

    head = ("| variant | samples/s (wall) | s per run (wall) | overhead (wall) | samples per CPU-s | "
            "overhead (CPU time) |\n|---|---:|---:|---:|---:|---:|\n")
    body = "".join(f"| {n} | {sps:.1f} | {wall:.3f} | {ov:+.1f} % | {cps:.1f} | {ovc:+.1f} % |\n"
                   for n, sps, wall, ov, cps, ovc in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    setup = (f"U-Net early fusion (`unet_ef`, width x{args.width:g}, {n_params / 1e6:.3f} M parameters), "
             f"4+4 bands, patch {args.patch} px, batch {args.batch}, {args.steps} steps per run, "
             f"{args.repeats} interleaved repeats (+1 warm-up), AdamW, power Jaccard loss; "
             f"CPU, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
             f"Python {platform.python_version()}, {os.cpu_count()} cores, "
             f"load average {load:.1f} at the end")
    worst_wall = max(r[3] for r in rows[1:])
    worst_cpu = max(r[5] for r in rows[1:])
    verdict = "meets" if worst_cpu < 10 else "MISSES"
    text = (f"# Training loop overhead: `fit` vs a bare loop\n\n"
            f"Produced by `python benchmarks/bench_train.py` (same model, same batches, same run).\n\n"
            f"Setup: {setup}.\n\n{head}{body}\n"
            f"Largest overhead of `fit`: {worst_cpu:+.1f} % in process CPU time, {worst_wall:+.1f} % in wall "
            f"time ({verdict} the < 10 % target, judged on CPU time). Medians of runs interleaved in one "
            f"process. CPU time is the robust measure on a shared machine (other processes stretch wall "
            f"time but not this process's CPU time); on an idle machine both agree. Absolute samples/s "
            f"depend on the machine.\n")
    print(text)
    out = Path(args.out)
    write_report(out, text)
    return 0 if worst_cpu < 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
