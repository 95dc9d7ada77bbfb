"""Deep change detectors against change vector analysis on the real OSCD cities in ../shared.

Protocol (nothing is chosen on a test city):

- Leave-two-cities-out folds over the labelled OSCD cities found under
  ``../shared/data/real/oscd`` (six in the shared sample): every city is a test city exactly
  once; in each fold one further city is the *validation* city and the rest train
  (:func:`urbankit.experiments.leave_sites_out`).
- Deep models: ``urbankit.experiments.run_experiment`` with the ``real`` recipe of the model
  (:func:`urbankit.recipes.get_recipe`): the best epoch and the decision threshold are those of
  the best pooled F1 on the validation city. Each network is also scored under CVA's rule
  (:func:`urbankit.experiments.percentile_rule_of_run`: each city's top ``100 - q`` % of
  pixels, ``q`` chosen on the validation city), which separates a ranking that does not
  transfer from a threshold that does not.
- CVA (Malila 1980; six bands, standardised): its percentile is chosen on the same validation
  city (:func:`urbankit.experiments.cva_experiment`).
- Reported: F1 pooled over all test pixels of all folds (the papers' convention), per-fold
  pooled F1 as mean +/- std, and minutes per model on this machine.

    python benchmarks/real_oscd.py                       # FC-Siam-diff, DS U-Net, CVA
    python benchmarks/real_oscd.py --models fc_siam_diff --override optical_norm=none
    python benchmarks/real_oscd.py --seeds 0 1 --threads 2
    python benchmarks/real_oscd.py --jobs 2 --threads 1     # both models side by side (2 cores)
    python benchmarks/real_oscd.py --override ensemble=1 test_time_flips=false   # one run per fold
    python benchmarks/real_oscd.py --jobs 2 --threads 1 --run-cache runs   # keep (and reuse) the runs

``--run-cache DIR`` keeps every trained run in DIR (:func:`urbankit.experiments.cached_run_dir`):
an interrupted benchmark continues where it stopped, and chapter 04 run with the same
``run_cache`` (``urbankit book --profile real --run-cache DIR``) loads these very runs instead of
training them again. For runs loaded from the cache, the minutes are the training time their
epochs recorded when they ran, and their CPU time is unknown (shown as ``-``).

Writes ``benchmarks/results/real_oscd.md`` (atomically). Skips (exit 0, says so) when the
shared real data is absent. Never put its numbers in a test: they are measurements.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

from urbankit import experiments  # noqa: E402
from urbankit.data import oscd  # noqa: E402
from urbankit.paths import shared_real_dir  # noqa: E402
from urbankit.recipes import parse_overrides  # noqa: E402

DEFAULT_MODELS = ("fc_siam_diff", "dsunet")
LABELS = {"fc_siam_diff": "FC-Siam-diff (S2)", "dsunet": "DS U-Net (S1+S2)", "fc_ef": "FC-EF (S2)",
          "fc_siam_conc": "FC-Siam-conc (S2)", "unet_ef": "U-Net EF"}


def read_cities(real_root: Path) -> dict:
    """Every labelled OSCD city of the shared sample, with its Sentinel-1 (orbit mean)."""
    root, s1 = real_root / "oscd", real_root / "oscd_s1"
    cities = sorted(oscd.list_cities(root, "train"))
    return {c: oscd.read_city(root, c, s1_root=s1) for c in cities}


def make_folds(cities) -> list:
    """The benchmark's folds: two test cities, one validation city, the rest train."""
    return experiments.leave_sites_out(list(cities), n_test=2, n_val=1)


def summary_row(method: str, fold_tables: list, minutes: float, steps: int) -> tuple[dict, pd.DataFrame]:
    """One row of the result table from per-fold test tables (pixels pooled over the folds)."""
    pooled = experiments.pooled_table(fold_tables)
    per_fold = [float(t.loc["pooled", "f1"]) for t in fold_tables]
    row = {"method": method, "pooled F1": float(pooled.loc["pooled", "f1"]),
           "pooled P": float(pooled.loc["pooled", "precision"]), "pooled R": float(pooled.loc["pooled", "recall"]),
           "fold F1 mean": float(np.mean(per_fold)), "fold F1 std": float(np.std(per_fold)),
           "minutes": minutes, "steps per run": steps}
    return row, pooled


def _inner_ensemble(model):
    """The members' ensemble inside a run's model (under test-time flips, if the recipe has them)."""
    from urbankit.models import FlipAverage

    return model.model if isinstance(model, FlipAverage) else model


def variant_tables(run, val, test) -> dict[str, list]:
    """Test tables of one fold's run and of its parts, each with its threshold chosen on ``val``.

    ``one run``: every ensemble member alone at its own validation threshold (a list: one
    table per seed); and ``ensemble`` (the members' mean probability) when the run has
    test-time flips, else ``ensemble + flips``. Without an ensemble only the run itself.
    """
    from urbankit.inference import evaluate_scenes
    from urbankit.models import FlipAverage, ProbabilityEnsemble

    options = {"device": "cpu", "output_key": "change", "label_key": "change"}
    inner = _inner_ensemble(run.model)
    if not isinstance(inner, ProbabilityEnsemble):
        return {"one run": [run.test_table]}
    out = {"one run": [evaluate_scenes(m, test, threshold=f.best_threshold, **options)
                       for m, f in zip(inner.members, run.member_fits)]}
    # the run itself is one of the two; score the other (flips cost four forward passes)
    name, model = ("ensemble", inner) if run.recipe.test_time_flips else ("ensemble + flips", FlipAverage(inner))
    threshold = experiments.validation_threshold(model, run.recipe, val, **options)
    out[name] = [evaluate_scenes(model, test, threshold=threshold, **options)]
    return out


def run_model(name: str, scenes: dict, folds, seeds, overrides, run_cache=None) -> list[tuple[dict, pd.DataFrame]]:
    """Train ``name`` on every fold; rows for its run, its parts (ensemble members, flips) and CVA's rule."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = experiments.run_folds(name, scenes, folds, seeds=seeds, profile="real", overrides=overrides,
                                   device="cpu", progress=lambda line: print("  " + line, flush=True),
                                   run_cache=run_cache)
    minutes = (time.perf_counter() - start) / 60 / len(result.runs)  # per trained model (one fold, one seed)
    cpu_minutes = (time.process_time() - cpu_start) / 60 / len(result.runs)  # the same, in CPU time
    if all(r.epochs_trained == 0 for r in result.runs):  # every run loaded from the run cache: its epochs
        minutes = sum(r.seconds for r in result.runs) / 60 / len(result.runs)  # were timed when they ran,
        cpu_minutes = float("nan")  # in another process (CPU time not recorded)
    print(f"{name}: {minutes:.1f} min wall, {cpu_minutes:.1f} min CPU per trained model "
          f"({torch.get_num_threads()} thread(s); CPU time is what an idle machine would take with one thread)",
          flush=True)
    by_name = {f.name: f for f in folds}
    variants: dict[str, list[list]] = {}
    percentile = []
    for run in result.runs:
        _, val, test = by_name[run.fold_name].scenes(scenes)
        for key, tables in variant_tables(run, val, test).items():
            variants.setdefault(key, []).append(tables)
        q, table = experiments.percentile_rule_of_run(run, val, test, device="cpu")
        percentile.append(table)
        print(f"  {run.fold_name}: percentile chosen on the validation city {q:.1f}", flush=True)
    recipe = result.runs[0].recipe
    steps = int(np.mean([run.steps for run in result.runs]))
    print(f"{name}: recipe {recipe.describe()}", flush=True)
    for d in recipe.deviations:
        print(f"   deviation: {d}", flush=True)
    label = LABELS.get(name, name)
    rows = [summary_row(f"{label}, {_run_name(recipe)}, threshold on val", [r.test_table for r in result.runs],
                        minutes, steps)]
    if len(variants) > 1:  # the parts of an ensemble, scored from the same trained members
        members = list(zip(*variants["one run"]))  # per seed: its table in every fold
        member_rows = [summary_row("", list(tables), minutes, steps)[0] for tables in members]
        row, pooled = summary_row(f"{label}, one run (mean of {len(members)} seeds), threshold on val",
                                  list(members[0]), minutes / len(members), steps // len(members))
        for key in ("pooled F1", "pooled P", "pooled R", "fold F1 mean", "fold F1 std"):
            row[key] = float(np.mean([r[key] for r in member_rows]))
        row["seed F1 std"] = float(np.std([r["pooled F1"] for r in member_rows]))
        rows.insert(0, (row, pooled))
        if recipe.test_time_flips:  # the run itself has flips: show the ensemble without them
            rows.insert(1, summary_row(f"{label}, ensemble of {len(members)}, no flips, threshold on val",
                                       [t[0] for t in variants["ensemble"]], minutes, steps))
        else:
            rows.insert(1, summary_row(f"{label}, ensemble of {len(members)} + test-time flips, threshold on val",
                                       [t[0] for t in variants["ensemble + flips"]], minutes, steps))
    rows.append(summary_row(f"{label}, {_run_name(recipe)}, percentile on val", percentile, minutes, steps))
    for row, _ in rows:  # CPU minutes scale like the wall minutes of each row
        row["cpu minutes"] = cpu_minutes * row["minutes"] / minutes if minutes else 0.0
    return rows


def _run_name(recipe) -> str:
    """How a row names the recipe's model: one run, or an ensemble (with flips)."""
    name = "one run" if recipe.ensemble == 1 else f"ensemble of {recipe.ensemble}"
    return name + (" + test-time flips" if recipe.test_time_flips else "")


def _worker(name: str, real_root: str, seeds, overrides, threads: int,
            run_cache=None) -> list[tuple[dict, pd.DataFrame]]:
    """One model in its own process (``--jobs``): reads the cities itself, trains on every fold."""
    torch.set_num_threads(threads)
    scenes = read_cities(Path(real_root))
    folds = make_folds(scenes)
    return run_model(name, scenes, folds, seeds, overrides, run_cache)


def run_cva(scenes: dict, folds) -> tuple[dict, pd.DataFrame]:
    """CVA on every fold, its percentile chosen on the fold's validation city."""
    tables, chosen = [], []
    for fold in folds:
        _, val, test = fold.scenes(scenes)
        q, table = experiments.cva_experiment(val, test)
        tables.append(table)
        chosen.append(q)
    print(f"CVA percentiles chosen on the validation cities: {chosen}", flush=True)
    return summary_row("CVA (6 bands), percentile on val", tables, 0.0, 0)


def write_summary(path: Path, summary: pd.DataFrame, per_city: pd.DataFrame, folds, args, seconds: float) -> None:
    """The Markdown result of the run: settings, pooled table and per-city scores."""
    lines = [
        "# Deep change detection vs CVA on the real OSCD cities (`benchmarks/real_oscd.py`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} torch thread(s); total {seconds / 60:.1f} min; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min).",
        f"Profile `real`; seeds {args.seeds}; overrides {args.override or 'none'}.",
        "",
        "Folds (test / validation / train cities):",
        "",
        *[f"- {f.name}: {', '.join(f.test)} / {', '.join(f.val)} / {', '.join(f.train)}" for f in folds],
        "",
        "Minutes are per trained model (one fold: every member of an ensemble, training and the",
        "validation sweeps), with the models of the table trained side by side; wall time depends on",
        "what else ran on the machine, CPU time (one torch thread per model) does not. The *one run* row is",
        "the mean over the ensemble's members, each scored alone at its own validation threshold",
        "(± its spread over seeds). Every ± is a population standard deviation (n in the denominator),",
        "as in chapter 04's tables.",
        "",
        "| method | pooled P | pooled R | pooled F1 | fold F1 mean ± std | min/model (wall / CPU) | steps/model |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        seed_std = r.get("seed F1 std")
        f1 = f"**{r['pooled F1']:.3f}**" + (f" ± {seed_std:.3f}" if pd.notna(seed_std) else "")
        lines.append(f"| {r['method']} | {r['pooled P']:.3f} | {r['pooled R']:.3f} | {f1} | "
                     f"{r['fold F1 mean']:.3f} ± {r['fold F1 std']:.3f} | {_minutes(r)} | {r['steps per run']} |")
    lines += ["", "Per-city test F1 (each city is tested in exactly one fold):", "",
              per_city.round(3).to_markdown() if hasattr(per_city, "to_markdown") else per_city.round(3).to_string(),
              ""]
    write_report(path, "\n".join(lines) + "\n")


def _minutes(row) -> str:
    """``wall / CPU`` minutes of a result row (``-`` for a method without training)."""
    cpu = row.get("cpu minutes")
    if not row["minutes"]:
        return "-"
    return f"{row['minutes']:.1f} / " + (f"{cpu:.1f}" if pd.notna(cpu) else "-")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--override", nargs="*", default=[], help="recipe fields, e.g. optical_norm=none")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per model")
    parser.add_argument("--jobs", type=int, default=1, help="models trained side by side in processes")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--run-cache", default=None, help="folder that keeps the trained runs (see above)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_oscd.md"))
    args = parser.parse_args(argv)
    real_root = Path(args.data_root) if args.data_root else shared_real_dir()
    if real_root is None or not (real_root / "oscd").is_dir():
        print("real_oscd: skipped, no real OSCD data (../shared/data/real/oscd) beside the project")
        return 0
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    scenes = read_cities(real_root)
    folds = make_folds(scenes)
    overrides = parse_overrides(args.override)
    cva_row, cva_table = run_cva(scenes, folds)
    rows, per_city = [cva_row], {"CVA": cva_table["f1"]}
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, n, str(real_root), args.seeds, overrides, args.threads, args.run_cache)
                       for n in args.models]
            results = [f.result() for f in futures]
    else:
        results = [run_model(n, scenes, folds, args.seeds, overrides, args.run_cache) for n in args.models]
    for model_rows in results:
        for row, table in model_rows:
            rows.append(row)
            if "mean of" not in row["method"]:  # a per-seed mean has no one per-city table
                per_city[row["method"]] = table["f1"]
    summary = pd.DataFrame(rows)
    print(summary.round(3).to_string(index=False))
    write_summary(Path(args.out), summary, pd.DataFrame(per_city), folds, args, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
