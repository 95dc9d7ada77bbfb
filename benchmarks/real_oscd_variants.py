"""Recipe variants of one network on the real OSCD folds, scored on the validation cities ONLY.

How a `real` recipe value is chosen without looking at a test city: every variant trains one
run (no ensemble, no test-time flips) per leave-two-cities-out fold of
``benchmarks/real_oscd.py``, and is scored by the best pooled F1 on that fold's validation city
(the same number that picks its best epoch). ``run_experiment`` gets no test scenes at all,
so no test city is read into the scoring. The variant with the best mean validation F1 over
the folds wins; ``benchmarks/real_oscd.py`` then measures the chosen recipe on the test
cities, once. A variant in ``SIMULATED`` also trains on the three unlabelled OSCD cities, which
no fold uses, with simulated changes pasted in (:func:`simulate_changes`, after the Self-Pair idea
of Seo et al. 2022, arXiv:2212.10236: the changes come from other places of the same image).
One seed is not enough to adopt a variant: on FC-Siam-conc the same two variants swapped places
between seeds 0 and 1 (a lead of 0.021, then a deficit of 0.018), so run ``--seeds 1`` with a
log of its own (``--log``) for the leaders before changing a recipe.

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
#: FC-Siam-conc's `real` recipe since 2026-12-03 (four bands, a quarter of no-change pairs, 128 px)
_ADOPTED = _RGBN + [_IDENTITY25, "patch_size=128", "batch_size=9"]
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
    "rgbn+identity25+p128b9": _ADOPTED,
    # the same, plus the unlabelled cities with simulated changes (SIMULATED)
    "rgbn+identity25+p128b9+simulated2": _ADOPTED,
}
#: variant name -> fraction: these variants also train on the three unlabelled cities (montpellier,
#: norcia, rio; in no fold) with simulated changes covering that fraction of each (:func:`simulate_changes`)
SIMULATED: dict[str, float] = {"rgbn+identity25+p128b9+simulated2": 0.02}
UNLABELLED_CITIES = ("montpellier", "norcia", "rio")
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


_MAX_PASTE_ATTEMPTS = 100_000


def simulate_changes(scene, fraction: float, seed: int, *, min_side: int = 4, max_side: int = 24):
    """A copy of an unlabelled scene with simulated changes and their change label.

    Axis-aligned rectangles of ``min_side``..``max_side`` px (40-240 m at 10 m) are drawn until they
    cover ``fraction`` of the scene. Into each, a rectangle of the same size from another place of
    the same scene is pasted, on one date chosen at random (new content at date 2, or content that
    was there at date 1 and is gone at date 2), in every time-varying variable (optical, sar). The
    pasted pixels come from the same acquisition, so the radiometry of a date gives no cue; the
    label is 1 inside the rectangles and 0 elsewhere. The scene's own real changes stay labelled 0
    (label noise of the order of OSCD's change fraction, about 2 %).

    Args:
        scene: a schema scene with ``optical`` (time, band, y, x) and no ``change``.
        fraction: share of the pixels to cover (0 < fraction < 0.5).
        seed: seed of the rectangles, their sources and dates.
        min_side, max_side: rectangle sides in px.

    Returns:
        A scene of ``optical`` (and ``sar``) with the pastes and a ``change`` (y, x) uint8 label;
        other variables are dropped; ``attrs["source"]`` says what was done.

    Raises:
        ValueError: a scene that has a change label, a fraction out of range, a scene too small, or
            one with too few places without NaN optical data to reach ``fraction``.
    """
    import numpy as np

    from urbankit.data.schema import validate_scene

    site = scene.attrs.get("site", "?")
    if "change" in scene:
        raise ValueError(f"simulate_changes: site {site!r} has a change label; simulate on unlabelled scenes only")
    if not 0.0 < fraction < 0.5:
        raise ValueError(f"simulate_changes: fraction must be in (0, 0.5), got {fraction!r}")
    height, width = scene.sizes["y"], scene.sizes["x"]
    if min(height, width) < 4 * max_side:
        raise ValueError(f"simulate_changes: site {site!r} is {height}x{width} px, need at least {4 * max_side} a side")
    rng = np.random.default_rng(seed)
    timed = [name for name in ("optical", "sar") if name in scene]
    arrays = {name: scene[name].values.copy() for name in timed}   # (time, channel, y, x)
    valid = np.isfinite(arrays["optical"]).all(axis=(0, 1))
    change = np.zeros((height, width), dtype=np.uint8)
    covered = 0.0   # change.mean(), updated after each paste only
    for _attempt in range(_MAX_PASTE_ATTEMPTS):
        if covered >= fraction:
            break
        h, w = rng.integers(min_side, max_side + 1, size=2)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        sy, sx = rng.integers(0, height - h), rng.integers(0, width - w)
        far = abs(int(sy) - int(y)) > 2 * max_side or abs(int(sx) - int(x)) > 2 * max_side
        if not far or not (valid[y:y + h, x:x + w].all() and valid[sy:sy + h, sx:sx + w].all()):
            continue
        date = int(rng.integers(0, 2)) * (scene.sizes["time"] - 1)    # first or last date
        for values in arrays.values():
            values[date, :, y:y + h, x:x + w] = values[date, :, sy:sy + h, sx:sx + w]
        change[y:y + h, x:x + w] = 1
        covered = change.mean()
    else:
        raise ValueError(f"simulate_changes: site {site!r}: {covered:.1%} of the pixels after "
                         f"{_MAX_PASTE_ATTEMPTS} tries, not {fraction:.1%}; too few places without NaN optical data")
    out = scene[timed].copy()   # other variables (per-date labels, masks) would no longer fit the pixels
    for name, values in arrays.items():
        out[name] = scene[name].copy(data=values)
    out["change"] = (("y", "x"), change)
    out.attrs = {**scene.attrs, "source": f"{scene.attrs.get('source', site)}; simulated changes "
                 f"({fraction:.0%} of the pixels, seed {seed}, benchmarks/real_oscd_variants.py)"}
    return validate_scene(out)


def read_simulated_scenes(real_root: Path, fraction: float, seed: int) -> list:
    """The unlabelled cities, all optical bands, with simulated changes (:func:`simulate_changes`).

    The shared samples hold no labels for these cities (they are in OSCD's test split); in a copy
    that has OSCD's test labels, those labels are dropped here, so that the run is the same.
    """
    from urbankit.data import oscd

    scenes = [oscd.read_city(real_root / "oscd", city) for city in UNLABELLED_CITIES]
    return [simulate_changes(scene.drop_vars("change", errors="ignore"), fraction, seed + k)
            for k, scene in enumerate(scenes)]


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
    if variant in SIMULATED:
        train += read_simulated_scenes(Path(real_root), SIMULATED[variant], seed)
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
    wide["overrides"] = [" ".join(VARIANTS[v]) + (f" + simulated changes on {SIMULATED[v]:.0%} of the pixels of "
                                                  + ", ".join(UNLABELLED_CITIES) if v in SIMULATED else "")
                         for v in wide.index]
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
