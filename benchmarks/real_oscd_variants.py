"""Recipe variants of one network on the real OSCD folds, scored on the validation cities ONLY.

How a `real` recipe value is chosen without looking at a test city: every variant trains one
run (no ensemble, no test-time flips) per leave-two-cities-out fold of
``benchmarks/real_oscd.py``, and is scored by the best pooled F1 on that fold's validation city
(the same number that picks its best epoch). ``run_experiment`` gets no test scenes at all,
so no test city is read into the scoring. The variant with the best mean validation F1 over
the folds wins; ``benchmarks/real_oscd.py`` then measures the chosen recipe on the test
cities, once.

    python benchmarks/real_oscd_variants.py --model dsunet --variants base p64b16 orbit
    python benchmarks/real_oscd_variants.py --model dsunet --from-log   # only rewrite the table

Every finished run is appended to a JSON-lines log (``--log``), so an interrupted comparison
continues where it stopped. Writes ``benchmarks/results/real_oscd_variants.md`` for the DS U-Net
and ``real_oscd_variants_<model>.md`` for another model (atomically).
Skips (exit 0, says so) without the shared real data.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from report import write_report  # noqa: E402 (benchmarks/ is sys.path[0] when a script runs)

from urbankit.paths import shared_real_dir  # noqa: E402

#: variant name -> recipe overrides on top of the model's `real` recipe (one run, no flips). The
#: DS U-Net's `real` recipe had 64 patches of 32 px per step (``p32b64``) when the others were run.
_P32 = ["patch_size=32", "batch_size=64"]
_RGBN = ["optical_bands=[B02, B03, B04, B08]"]
_IDENTITY25 = "augment={flips: true, rot90: true, gamma: false, identity_pairs: 0.25}"
VARIANTS: dict[str, list[str]] = {
    "p32b64": _P32,
    "p64b16": ["patch_size=64", "batch_size=16"],
    "p32b64+steps400": _P32 + ["epochs=20"],
    "p32b64+w05": _P32 + ["width=0.5"],
    "p32b64+orbit": _P32 + ["sar_orbit=random"],
    "p32b64+bce": _P32 + ["loss=weighted_bce", "class_weighting=daudt"],
    # the model's `real` recipe as it is, and one change on top (for any network)
    "real": [],
    "real+gamma": ["augment={flips: true, rot90: true, gamma: true}"],
    "real+lr5e-4": ["lr=5e-4"],
    "real+dataset_norm": ["optical_norm=dataset"],
    "real+w05": ["width=0.5"],
    # exchange the two dates of half the samples (OSCD's change label does not depend on their order)
    "real+swap": ["augment={flips: true, rot90: true, gamma: false, swap_dates: true}"],
    "real+p128b9": ["patch_size=128", "batch_size=9"],  # more context, about the same pixels per step
    # a quarter (half) of the samples become no-change pairs: one date replaces the other, change = 0
    "real+identity25": [_IDENTITY25],
    "real+identity50": ["augment={flips: true, rot90: true, gamma: false, identity_pairs: 0.5}"],
    # fewer optical bands: the four 10 m bands, or the ten 10/20 m surface bands (no 60 m atmospheric
    # bands B01 aerosol, B09 water vapour, B10 cirrus; the Fusion-DA band list)
    "real+rgbn": ["optical_bands=[B02, B03, B04, B08]"],
    "real+b10": ["optical_bands=[B02, B03, B04, B05, B06, B07, B08, B8A, B11, B12]"],
    "real+wd1e-3": ["weight_decay=1e-3"],
    # one change on top of the four 10 m bands (FC-Siam-conc's `real` recipe since 2026-12-02)
    "rgbn+lr5e-4": _RGBN + ["lr=5e-4"],
    "rgbn+gamma": _RGBN + ["augment={flips: true, rot90: true, gamma: true}"],
    "rgbn+identity25": _RGBN + [_IDENTITY25],
    "rgbn+wd1e-3": _RGBN + ["weight_decay=1e-3"],
    "rgbn+identity50": _RGBN + ["augment={flips: true, rot90: true, gamma: false, identity_pairs: 0.5}"],
    # one change on top of the best of those (four bands and a quarter of no-change pairs)
    "rgbn+identity25+swap": _RGBN + ["augment={flips: true, rot90: true, gamma: false, swap_dates: true, "
                                     "identity_pairs: 0.25}"],
    "rgbn+identity25+p128b9": _RGBN + [_IDENTITY25, "patch_size=128", "batch_size=9"],
}
ONE_RUN = ["ensemble=1", "test_time_flips=false"]
DEFAULT_LOG = ROOT / "benchmarks" / "results" / "real_oscd_variants.jsonl"


def read_fold_scenes(real_root: Path, fold, per_orbit: bool) -> tuple[list, list]:
    """(training, validation) scenes of one fold; training as one scene per S1 orbit if asked."""
    from urbankit.data import oscd

    root, s1 = real_root / "oscd", real_root / "oscd_s1"
    train = []
    for city in fold.train:
        if per_orbit:  # sar_orbit="random" draws one of these per sample
            train += [oscd.read_city(root, city, s1_root=s1, orbit=o) for o in oscd.list_s1_orbits(s1, city)]
        else:
            train.append(oscd.read_city(root, city, s1_root=s1))
    return train, [oscd.read_city(root, city, s1_root=s1) for city in fold.val]


def folds_of(real_root: Path):
    """The folds of ``benchmarks/real_oscd.py`` (its :func:`make_folds`) over the labelled cities found."""
    from real_oscd import make_folds

    from urbankit.data import oscd

    return make_folds(sorted(oscd.list_cities(real_root / "oscd", "train")))


def run_variant(model: str, variant: str, fold_index: int, seed: int, real_root: str) -> dict:
    """One run of ``variant`` on one fold (one torch thread), scored on its validation city."""
    import torch

    from urbankit import experiments

    torch.set_num_threads(1)
    fold = folds_of(Path(real_root))[fold_index]
    overrides = ONE_RUN + VARIANTS[variant]
    train, val = read_fold_scenes(Path(real_root), fold, per_orbit="sar_orbit=random" in overrides)
    start, cpu = time.perf_counter(), time.process_time()
    run = experiments.run_experiment(model, train, val, [], profile="real", overrides=overrides, seed=seed,
                                     device="cpu")
    return {"model": model, "variant": variant, "fold": fold.name, "val": fold.val[0], "seed": seed,
            "val_f1": run.f1("val"), "threshold": run.threshold, "best_epoch": run.fit.best_epoch,
            "epochs": len(run.history), "wall_min": (time.perf_counter() - start) / 60,
            "cpu_min": (time.process_time() - cpu) / 60}


def read_log(path: Path) -> list[dict]:
    """The finished runs in the JSON-lines log (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary_table(records: list[dict], model: str) -> pd.DataFrame:
    """Variant rows: validation F1 per fold, their mean, and CPU minutes per run."""
    frame = pd.DataFrame([r for r in records if r["model"] == model])
    wide = frame.pivot_table(index="variant", columns="fold", values="val_f1", aggfunc="mean")
    wide["folds"] = wide.notna().sum(axis=1)
    folds = [c for c in wide.columns if c != "folds"]
    wide["mean val F1"] = wide[folds].mean(axis=1)
    wide["CPU min/run"] = frame.groupby("variant")["cpu_min"].mean()
    wide["overrides"] = [" ".join(VARIANTS[v]) for v in wide.index]
    return wide.sort_values(["folds", "mean val F1"], ascending=False)


def existing_note(path: Path) -> str:
    """The note of a result file written before (between its header paragraph and its table)."""
    if not path.exists():
        return ""
    note = []
    for paragraph in path.read_text().split("\n\n")[2:]:   # after the title and the "Model ..." paragraph
        if paragraph.lstrip().startswith("|"):
            break
        note.append(paragraph)
    return "\n\n".join(note).strip()


def write_table(path: Path, records: list[dict], model: str, note: str | None) -> None:
    """The Markdown result: how variants were scored, and their validation F1.

    ``note=None`` keeps the note of the file written before, so a rerun does not lose it.
    """
    note = existing_note(path) if note is None else note
    table = summary_table(records, model)
    val = sorted({(r["fold"], r["val"]) for r in records if r["model"] == model})
    lines = ["# Recipe variants scored on the validation cities only (`benchmarks/real_oscd_variants.py`)", "",
             f"Model `{model}`, profile `real`, one run per fold (overrides {' '.join(ONE_RUN)}), seed "
             f"{sorted({r['seed'] for r in records})}, one torch thread per run, two runs side by side. Each "
             "number is the best pooled F1 on the fold's validation city ("
             + ", ".join(f"{f}: {c}" for f, c in val) + ", the folds of `real_oscd.md`); no test city was scored.",
             ""]
    if note:
        lines += [note, ""]
    lines += [table.round(3).to_markdown(), "",
              "A variant with fewer than all folds was stopped early (its mean is over the folds it has).", ""]
    write_report(path, "\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dsunet")
    parser.add_argument("--variants", nargs="+", default=["p32b64", "p64b16"], choices=sorted(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side in processes")
    parser.add_argument("--log", default=str(DEFAULT_LOG))
    parser.add_argument("--out", default=None, help="result file (default: see above)")
    parser.add_argument("--note", default=None,
                        help="a paragraph written above the table (default: keep the file's note)")
    parser.add_argument("--from-log", action="store_true", help="only rewrite the table from the log")
    parser.add_argument("--folds", nargs="+", default=None,
                        help="run only these folds (e.g. fold2, to screen variants on one validation city)")
    args = parser.parse_args(argv)
    log = Path(args.log)
    if not args.from_log:
        real_root = shared_real_dir()
        if real_root is None or not (real_root / "oscd").is_dir():
            print("real_oscd_variants: skipped, no real OSCD data (../shared/data/real/oscd) beside the project")
            return 0
        done = {(r["model"], r["variant"], r["fold"], r["seed"]) for r in read_log(log)}
        folds = folds_of(real_root)
        todo = [(args.model, v, k, s) for s in args.seeds for v in args.variants for k, f in enumerate(folds)
                if (args.model, v, f.name, s) not in done and (args.folds is None or f.name in args.folds)]
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_variant, *task, str(real_root)) for task in todo]
            for future in as_completed(futures):
                record = future.result()
                print(json.dumps(record), flush=True)
                with log.open("a") as fh:  # one finished run per line: a restart skips it
                    fh.write(json.dumps(record) + "\n")
    results = ROOT / "benchmarks" / "results"
    out = args.out or results / ("real_oscd_variants.md" if args.model == "dsunet"
                                 else f"real_oscd_variants_{args.model}.md")
    write_table(Path(out), read_log(log), args.model, args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
