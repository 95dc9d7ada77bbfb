"""Training speed of every network of the seed's VHR table: forward + backward, images per second.

    python benchmarks/bench_vhr_models.py                 # CPU (+ a CUDA column when a GPU exists)
    python benchmarks/bench_vhr_models.py --devices cuda  # only the GPU (fp32 and bf16 autocast)
    python benchmarks/bench_vhr_models.py --threads 1     # CPU-time columns robust to other jobs

The seed's setting: 256 x 256 px, batch 4, the papers' sizes (width 1), RGB pairs (random
tensors). One timed iteration = zero_grad + forward + a scalar loss over all outputs +
backward (no optimiser step), as ``bench_models.py`` (whose helpers it reuses). The models are
timed interleaved, round by round, and each keeps its fastest round. Ratios are against
HDANet measured in the same run (``vs hdanet``): compare rows of one file only. Results go to
``benchmarks/results/vhr_models_<devices>.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_models import make_step, random_batch, time_once  # noqa: E402
from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

from urbankit.models import VHR_TABLE, build, count_parameters  # noqa: E402

REFERENCE = "hdanet"


def time_models(device: torch.device, variants, batch: int, size: int, warmup: int, iters: int) -> dict:
    """{(model, variant): (images/s, images/CPU-s) or an error string}, timed interleaved."""
    entries = []
    for row in VHR_TABLE:
        for variant, amp in variants:
            torch.manual_seed(0)
            model = build(row.model, optical_channels=3).to(device).train()
            inputs = random_batch(model.channels, batch, size, device)
            entries.append(((row.model, variant), make_step(model, (lambda m=model, b=inputs: m(b)), amp, device)))
    times: dict = {key: [] for key, _ in entries}
    for round_ in range(warmup + iters):
        for key, step in entries:
            if isinstance(times[key], str):
                continue
            try:
                wall, cpu = time_once(step, device)
            except RuntimeError as exc:  # e.g. out of memory
                times[key] = f"failed: {str(exc).splitlines()[0][:50]}"
                continue
            if round_ >= warmup:
                times[key].append((wall, cpu))
        print(f"{device.type}: round {round_ + 1}/{warmup + iters} done", flush=True)
    return {k: v if isinstance(v, str) else (batch / min(w for w, _ in v), batch / min(c for _, c in v))
            for k, v in times.items()}


def table(results: dict, columns: list[tuple[str, str, str]]) -> list[str]:
    """Markdown rows: one per network of the seed's table, a column pair per (device, variant)."""
    head = "| method | model | form | params (M) | canonical (M) |"
    rule = "|---|---|---|---:|---:|"
    for label, _, _ in columns:
        head += f" {label} img/s | vs {REFERENCE} |"
        rule += "---:|---:|"
    lines = [head, rule]
    for row in VHR_TABLE:
        with torch.device("meta"):
            n = count_parameters(build(row.model, optical_channels=3))
        canon = f"{row.canonical_params / 1e6:.2f}" + (f" ({row.canonical_part})" if row.canonical_part else "")
        line = (f"| {row.label} | `{row.model}` | {row.form} | {n / 1e6:.2f} | "
                f"{canon if row.canonical_params else '-'} |")
        for _, dev, variant in columns:
            value = results.get((dev, row.model, variant))
            ref = results.get((dev, REFERENCE, variant))
            if isinstance(value, tuple):
                ratio = f"{value[0] / ref[0]:.2f}" if isinstance(ref, tuple) else "-"
                line += f" {value[0]:.3g} | {ratio} |"
            else:
                line += f" {value or '-'} | - |"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="", help="comma-separated: cpu, cuda (default: cpu, + cuda if present)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--note", default="", help="a sentence added to the result file")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d for d in args.devices.split(",") if d] or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if "cuda" in devices and not torch.cuda.is_available():
        print("--devices cuda: torch sees no CUDA GPU", file=sys.stderr)
        return 2
    results, columns = {}, []
    for dev in devices:
        device = torch.device(dev)
        variants = [("fp32", False)] + ([("bf16", True)] if dev == "cuda" else [])
        if dev == "cuda":
            torch.backends.cudnn.benchmark = True
        timed = time_models(device, variants, args.batch, args.size, args.warmup, args.iters)
        for (model, variant), value in timed.items():
            results[(dev, model, variant)] = value
            if dev == "cpu" and isinstance(value, tuple):
                results[("cpu-time", model, variant)] = (value[1], value[1])
        for variant, _ in variants:
            columns.append((f"{dev} {variant}", dev, variant))
        if dev == "cpu":
            columns.append(("cpu fp32 per CPU-s", "cpu-time", "fp32"))
    gpu = f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""
    lines = [
        f"# VHR change-detection networks: training speed ({', '.join(devices)})", "",
        (f"Forward + backward of one batch (no optimiser step), images per second, fastest of {args.iters} "
         f"timed rounds after {args.warmup} warm-up round(s), models interleaved round by round. Batch "
         f"{args.batch}, {args.size}x{args.size} px (the seed's setting), the papers' sizes, random RGB pairs. "
         "'per CPU-s' divides by the process's CPU time (all threads): robust to other jobs on the machine."), "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads{gpu}; Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.", "",
        *([args.note, ""] if args.note else []),
        *table(results, columns), "",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out) if args.out else HERE / "results" / f"vhr_models_{'_'.join(devices)}.md"
    write_report(out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
