"""Train-step speed of ``channels_last`` and bf16 autocast against fp32 on the CPU, side by side.

The same U-Net (same initial weights) trains on the same in-memory batches through
``urbankit.train.fit`` four ways: fp32 (the baseline), ``channels_last=True``, ``amp="bf16"``
and both. Runs are interleaved (fp32, channels_last, bf16, both, then reversed, ...) so drifts in
machine speed hit all variants alike; the table reports the median process CPU time and wall
time per run and each variant's speed-up over fp32 *in the same run*, plus how far its forward
outputs (at the initial weights) and its first-step loss are from fp32's.

    python benchmarks/bench_train_precision.py [--repeats 5] [--steps 4] [--batch 8] [--patch 128]

Writes ``benchmarks/results/train_precision.md``.
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
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_train import _clock, _since, make_batches  # noqa: E402 (benchmarks/ is sys.path[0])
from report import write_report  # noqa: E402

from urbankit.train import Supervised, fit  # noqa: E402

VARIANTS = {"fp32": {}, "channels_last": {"channels_last": True}, "bf16 autocast": {"amp": "bf16"},
            "channels_last + bf16": {"channels_last": True, "amp": "bf16"}}


def make_model(family: str, width: float):
    """A U-Net of the model zoo on 4 optical bands per date (``unet_ef``: both dates stacked)."""
    from urbankit.models import build

    if family == "unet_ef":
        return build("unet_ef", optical_channels=4, sar_channels=2, modality="optical", width=width)
    return build(family, optical_channels=4, sar_channels=2, modality="optical", width=width)


def run_fit(model, batches, options) -> tuple[tuple[float, float], float]:
    """Train one epoch over ``batches``; ((wall s, CPU s), first-step loss)."""
    t = _clock()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        res = fit(model, batches, None, strategy=Supervised(targets={"change": "change"}), epochs=1,
                  optimizer="adamw", lr=1e-4, device="cpu", progress=False, restore_best=False,
                  **{"amp": False} | options)
    return _since(t), float(res.history["train_loss"].iloc[0])


@torch.no_grad()
def output_gap(model, batch, options) -> float:
    """Largest |sigmoid(output) - fp32 sigmoid(output)| of one forward pass at these weights."""
    model.eval()
    ref = torch.sigmoid(model(batch)["change"])
    m = copy.deepcopy(model)
    b = dict(batch)
    if options.get("channels_last"):
        m = m.to(memory_format=torch.channels_last)
        b = {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.dim() == 4 else v
             for k, v in b.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=options.get("amp") == "bf16"):
        out = torch.sigmoid(m(b)["change"].float())
    return float((out - ref).abs().max())


def measure(family: str, args) -> list[tuple]:
    """Rows (variant, CPU s, wall s, speed-up CPU, speed-up wall, output gap, loss gap) for one model."""
    torch.manual_seed(0)
    model0 = make_model(family, args.width)
    init = copy.deepcopy(model0.state_dict())
    batches = make_batches(args.steps, args.batch, args.patch)

    def fresh():
        m = make_model(family, args.width)
        m.load_state_dict(init)
        return m

    for options in VARIANTS.values():   # warm-up (allocator, first-call costs, oneDNN kernels)
        run_fit(fresh(), batches[:1], options)
    times = {k: [] for k in VARIANTS}
    first_loss = {}
    for r in range(args.repeats):
        for name in (list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))):
            t, loss = run_fit(fresh(), batches, VARIANTS[name])
            times[name].append(t)
            first_loss[name] = loss
    base_wall = statistics.median(t[0] for t in times["fp32"])
    base_cpu = statistics.median(t[1] for t in times["fp32"])
    rows = []
    for name, ts in times.items():
        wall, cpu = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        rows.append((name, cpu, wall, base_cpu / cpu, base_wall / wall, output_gap(fresh(), batches[0], VARIANTS[name]),
                     abs(first_loss[name] - first_loss["fp32"])))
    return rows


def main(argv=None) -> int:
    """Measure every family, print and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="batches per timed run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the issue measured 2 cores)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--width", type=float, default=0.25, help="model width multiplier (quick profile: 0.25)")
    ap.add_argument("--families", default="unet_ef,siamdiff")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_precision.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    head = ("| model | variant | CPU s per run | wall s per run | speed-up (CPU time) | speed-up (wall) | "
            "max output gap | first-step loss gap |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
    body = ""
    for family in args.families.split(","):
        for name, cpu, wall, s_cpu, s_wall, gap, lgap in measure(family, args):
            body += (f"| {family} | {name} | {cpu:.2f} | {wall:.2f} | {s_cpu:.2f}x | {s_wall:.2f}x | "
                     f"{gap:.1e} | {lgap:.1e} |\n")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    setup = (f"width x{args.width:g}, 4+4 bands, patch {args.patch} px, batch {args.batch}, {args.steps} steps "
             f"per run, {args.repeats} interleaved repeats (+1 warm-up), AdamW, power Jaccard; CPU, torch "
             f"{torch.__version__}, {torch.get_num_threads()} thread(s), Python {platform.python_version()}, "
             f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) "
             f"at the end")
    text = (f"# Train step: channels_last and bf16 autocast vs fp32 (CPU)\n\n"
            f"Produced by `python benchmarks/bench_train_precision.py` (same models, same batches, one run).\n\n"
            f"Setup: {setup}.\n\n{head}{body}\n"
            "Speed-ups are medians of interleaved runs relative to fp32 in the same run; process CPU time is the "
            "robust measure on a shared machine. Output gap: largest difference of the sigmoid outputs from "
            "fp32's for one batch at the initial weights; loss gap: difference of the first step's loss.\n")
    print(text)
    write_report(Path(args.out), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
