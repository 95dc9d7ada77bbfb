"""Why one network fails on one fold's validation city: date order and BatchNorm statistics.

Trains one run of ``--model`` (its `real` recipe, no ensemble, no test-time flips, seed 0, one
torch thread) on one fold of ``benchmarks/real_oscd.py`` and scores it on that fold's
**validation** city only (best F1 over the thresholds 0.00..1.00), three ways:

- as trained;
- with the two dates exchanged at prediction time (a network that must learn what a change is
  from both dates' features, such as FC-Siam-conc, may treat the dates differently);
- after re-estimating every BatchNorm layer's statistics on the validation city itself
  (AdaBN, Li et al. 2016, "Revisiting batch normalization for practical domain adaptation"):
  if the city's features are shifted, this recovers part of the loss.

    python benchmarks/real_oscd_diagnose.py --model fc_siam_conc --fold 2

Prints the three F1s; no test city is read. Skips (exit 0, says so) without the shared real data.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from real_oscd_variants import ONE_RUN, folds_of, read_fold_scenes  # noqa: E402

from urbankit.paths import shared_real_dir  # noqa: E402


def best_f1(probability: np.ndarray, label: np.ndarray) -> float:
    """The best F1 of a probability map (H, W) against a 0/1 label (H, W).

    Over the thresholds 0.00..1.00 that pick a run's threshold (:class:`urbankit.metrics.ThresholdSweep`).
    """
    from urbankit.metrics import ThresholdSweep

    return ThresholdSweep().update(probability, label, from_logits=False).best_threshold("f1")[1]


def dates_exchanged(scene):
    """``scene`` with its two dates in the other order (the time coordinate kept increasing)."""
    return scene.isel(time=[1, 0]).assign_coords(time=scene.time.values)


def adapt_batchnorm(model, scene) -> None:
    """Replace every BatchNorm's running statistics by those of one pass over ``scene`` (AdaBN)."""
    import torch

    from urbankit import inference

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()  # dropout off; only the norms collect statistics
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the pass
        norm.train()
    model.eval = lambda: model  # predict() calls eval(); keep the norms collecting
    try:
        inference.predict(model, scene, device="cpu")
    finally:
        del model.eval
    model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fc_siam_conc")
    parser.add_argument("--fold", type=int, default=2)
    args = parser.parse_args(argv)
    real_root = shared_real_dir()
    if real_root is None or not (real_root / "oscd").is_dir():
        print("real_oscd_diagnose: skipped, no real OSCD data (../shared/data/real/oscd) beside the project")
        return 0
    import torch

    from urbankit import experiments, inference

    torch.set_num_threads(1)
    fold = folds_of(real_root)[args.fold]
    train, val = read_fold_scenes(real_root, fold, per_orbit=False)
    run = experiments.run_experiment(args.model, train, val, [], profile="real", overrides=ONE_RUN, seed=0,
                                     device="cpu")
    scene = val[0]
    label = scene["change"].values

    def f1(s):
        return best_f1(np.asarray(inference.predict(run.model, s, device="cpu")), label)

    print(f"{args.model}, {fold.name}, validation city {fold.val[0]} (best F1 over thresholds):")
    print(f"  as trained                          {f1(scene):.3f}")
    print(f"  dates exchanged at prediction       {f1(dates_exchanged(scene)):.3f}")
    adapt_batchnorm(run.model, scene)
    print(f"  BatchNorm statistics of the city    {f1(scene):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
