"""Training speed of every model of the zoo: forward + backward, images per second.

    python benchmarks/bench_models.py                       # CPU, 256x256, batch 8
    python benchmarks/bench_models.py --quick --batch 2     # fewer iterations (2 CPU cores)
    python benchmarks/bench_models.py --device cuda         # + bf16 autocast and channels_last
    python benchmarks/bench_models.py --models fc_ef,siamdiff --width 0.25

Each model is built at its default (paper) configuration, or multiplied by ``--width``; the
batch holds random tensors with the model's own input keys and band counts. One timed
iteration = zero_grad + forward + a scalar loss over all outputs + backward (no optimiser
step). TorchGeo's FCSiamDiff / FCSiamConc (smp U-Nets with a ResNet-34 encoder, a different
and larger network than Daudt's) are timed in the same run when ``torchgeo`` is importable;
otherwise the table says "not installed". The table is printed and written to
``benchmarks/results/models_<device>.md``; compare rows of one file only (same run, same
machine): the ``vs fc_siam_diff`` column gives the ratios.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

from urbankit.errors import UrbankitError  # noqa: E402 (after the sys.path line above)
from urbankit.models import available_models, build, count_parameters  # noqa: E402

REFERENCE = "fc_siam_diff"


def random_batch(channels: dict[str, int], batch: int, size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    return {k: torch.rand(batch, c, size, size, generator=g).to(device) for k, c in channels.items()}


def time_once(step: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """(wall-clock seconds, process CPU seconds) of one call of ``step`` (CUDA synchronised).

    On a CPU shared with other jobs the wall-clock time depends on their load; the CPU time of
    a single-threaded run (``--threads 1``) does much less, so both are reported.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start


def make_step(model: nn.Module, forward: Callable[[], dict], amp: bool, device: torch.device) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            out = forward()
            loss = sum(v.float().pow(2).mean() for v in out.values())
        loss.backward()
    return step


def ours(name: str, width: float) -> tuple[nn.Module, dict[str, int]]:
    cfg = {} if width == 1.0 else {"width": width}
    model = build(name, **cfg)
    return model, model.channels


def torchgeo_model(kind: str) -> tuple[nn.Module, dict[str, int]]:
    from torchgeo.models import FCSiamConc, FCSiamDiff  # raises ImportError when not installed

    cls = {"FCSiamDiff": FCSiamDiff, "FCSiamConc": FCSiamConc}[kind]
    net = cls(in_channels=13, classes=1, encoder_weights=None)

    class Wrapped(nn.Module):  # batch dict -> (B, T=2, C, H, W) as torchgeo expects
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, batch):
            return {"change": self.net(torch.stack([batch["optical_t1"], batch["optical_t2"]], dim=1))}

    return Wrapped(), {"optical_t1": 13, "optical_t2": 13}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 2 timed iterations (default 2 + 5)")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier (1.0 = the papers' sizes)")
    parser.add_argument("--models", default="", help="comma-separated subset of the registry names")
    parser.add_argument("--no-torchgeo", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--note", default="", help="a sentence added to the result file (e.g. why the batch is small)")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/models_<device>.md)")
    return parser.parse_args(argv)


def _build_entries(candidates, variants, args, device) -> tuple[list[dict], list[tuple[dict, Callable]]]:
    """Build every model (and variant) first: result rows, and (row, timed step) for those that built."""
    rows, entries = [], []
    for label, factory in candidates:
        try:
            torch.manual_seed(0)
            model, channels = factory()
        except (ImportError, UrbankitError) as exc:
            status = "not installed" if isinstance(exc, ImportError) or "install" in str(exc) else f"error: {exc}"
            rows.append({"model": label, "params": None, "variant": "-", "img_s": None, "img_cpu_s": None,
                         "status": status})
            print(f"{label:>24}: {status}", flush=True)
            continue
        params = count_parameters(model)
        for variant, amp, channels_last in variants:
            m = (copy.deepcopy(model) if channels_last else model).to(device).train()
            batch = random_batch(channels, args.batch, args.size, device)
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
                batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
            row = {"model": label, "params": params, "variant": variant, "img_s": None, "img_cpu_s": None,
                   "status": "ok", "times": [], "cpu_times": []}
            rows.append(row)
            entries.append((row, make_step(m, (lambda m=m, batch=batch: m(batch)), amp, device)))

    return rows, entries


def _time_interleaved(entries, warmup: int, iters: int, batch: int, device: torch.device) -> None:
    """Time the entries round by round (A, B, C, A, B, C, ...); keep each one's fastest round in its row."""
    for round_ in range(warmup + iters):
        for row, step in entries:
            if row["status"] != "ok":
                continue
            try:
                seconds, cpu_seconds = time_once(step, device)
            except RuntimeError as exc:  # e.g. out of memory
                row["status"] = f"failed: {str(exc).splitlines()[0][:60]}"
                continue
            if round_ >= warmup:
                row["times"].append(seconds)
                row["cpu_times"].append(cpu_seconds)
        print(f"round {round_ + 1}/{warmup + iters} done", flush=True)
    for row, _ in entries:
        if row["times"]:
            row["img_s"] = batch / min(row["times"])
            row["img_cpu_s"] = batch / min(row["cpu_times"])
            print(f"{row['model']:>24} {row['variant']:>20}: {row['params'] / 1e6:7.2f} M  "
                  f"{row['img_s']:8.3f} img/s  {row['img_cpu_s']:8.3f} img/CPU-s", flush=True)



def _report(rows, args, device, warmup: int, iters: int) -> str:
    """The Markdown result: settings, machine, one row per model and variant (ratios to the reference)."""
    sizes = "the papers' sizes" if args.width == 1.0 else "reduced widths"
    ref = {r["variant"]: r["img_s"] for r in rows if r["model"] == REFERENCE and r["img_s"]}
    ref_cpu = {r["variant"]: r["img_cpu_s"] for r in rows if r["model"] == REFERENCE and r["img_cpu_s"]}
    lines = [
        f"# Model zoo training speed ({device.type})",
        "",
        (f"Forward + backward of one batch (no optimiser step), images per second (fastest of {iters} "
         f"timed rounds after {warmup} warm-up round(s); the models are timed interleaved, round by round). "
         f"Batch {args.batch}, {args.size}x{args.size} px, width x{args.width:g} ({sizes}), "
         "random inputs with each model's default bands."),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads"
        + (f", GPU {torch.cuda.get_device_name()}" if device.type == "cuda" else "")
        + f"; Python {platform.python_version()}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        *([args.note, ""] if args.note else []),
        ("images/s = wall clock; images/CPU-s = per second of the process's CPU time (all its "
         "threads), robust to other jobs on the machine when run with --threads 1."),
        "",
        f"| model | params (M) | variant | images/s | vs {REFERENCE} | images/CPU-s | vs {REFERENCE} (CPU) | status |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        params = f"{r['params'] / 1e6:.2f}" if r["params"] else "-"
        img_s = f"{r['img_s']:.3g}" if r["img_s"] else "-"
        img_cpu_s = f"{r['img_cpu_s']:.3g}" if r["img_cpu_s"] else "-"
        base, base_cpu = ref.get(r["variant"]), ref_cpu.get(r["variant"])
        ratio = f"{r['img_s'] / base:.2f}" if r["img_s"] and base else "-"
        ratio_cpu = f"{r['img_cpu_s'] / base_cpu:.2f}" if r["img_cpu_s"] and base_cpu else "-"
        lines.append(f"| {r['model']} | {params} | {r['variant']} | {img_s} | {ratio} | {img_cpu_s} | {ratio_cpu} "
                     f"| {r['status']} |")
    lines += ["", ("TorchGeo's FCSiamDiff/FCSiamConc are smp U-Nets (ResNet-34 encoder, 13 bands), not Daudt's "
                   "FC networks; they are listed as the library reference for the same task.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Time every registry model (and TorchGeo's references) and write ``results/models_<device>.md``."""
    args = _parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA GPU", file=sys.stderr)
        return 2
    warmup, iters = (1, 2) if args.quick else (2, 5)
    names = [n for n in args.models.split(",") if n] or available_models()
    variants = [("fp32", False, False)]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        variants += [("bf16", True, False), ("bf16+channels_last", True, True)]
    candidates: list[tuple[str, Callable[[], tuple[nn.Module, dict[str, int]]]]] = [
        (n, (lambda n=n: ours(n, args.width))) for n in names
    ]
    if not args.no_torchgeo and not args.models:
        candidates += [(f"torchgeo {k}", (lambda k=k: torchgeo_model(k))) for k in ("FCSiamDiff", "FCSiamConc")]
    # Build everything first, then time in interleaved rounds and keep each entry's fastest round:
    # on a shared machine, load from other processes then slows all models alike.
    rows, entries = _build_entries(candidates, variants, args, device)
    _time_interleaved(entries, warmup, iters, args.batch, device)
    text = _report(rows, args, device, warmup, iters)
    print()
    print(text)
    out = Path(args.out) if args.out else HERE / "results" / f"models_{device.type}.md"
    write_report(out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
