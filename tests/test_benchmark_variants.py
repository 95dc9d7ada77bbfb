"""The recipe-variant benchmark's result file (benchmarks/real_oscd_variants.py), without training."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def variants(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("real_oscd_variants")
    yield module
    sys.modules.pop("real_oscd_variants", None)


def _record(variant: str, fold: str, f1: float) -> dict:
    return {"model": "fc_siam_conc", "variant": variant, "fold": fold, "val": f"city_{fold}", "seed": 0,
            "val_f1": f1, "threshold": 0.5, "best_epoch": 1, "epochs": 10, "wall_min": 1.0, "cpu_min": 1.0}


def test_a_rerun_without_a_note_keeps_the_note_and_updates_the_table(variants, tmp_path):
    out = tmp_path / "result.md"
    first = [_record("real", "fold0", 0.2), _record("real", "fold1", 0.3)]
    variants.write_table(out, first, "fc_siam_conc", "Why these runs.\n\nA second paragraph.")
    variants.write_table(out, first + [_record("real+rgbn", "fold0", 0.4)], "fc_siam_conc", None)
    text = out.read_text()
    assert variants.existing_note(out) == "Why these runs.\n\nA second paragraph."
    assert text.count("Why these runs.") == 1
    rows = [line for line in text.splitlines() if line.startswith("| real")]
    assert [row.split("|")[1].strip() for row in rows] == ["real", "real+rgbn"]   # more folds first
    variants.write_table(out, first, "fc_siam_conc", "")
    assert variants.existing_note(out) == "" and "Why these runs." not in out.read_text()


def _unlabelled_site(size=128, seed=0):
    from urbankit.data import synthetic

    site = synthetic.make_site("unlabelled-01", size=size, n_dates=2, seed=seed, split="unlabelled")
    return site[["optical", "sar"]]


def test_simulated_changes_paste_other_places_of_one_date_and_label_only_those(variants):
    scene = _unlabelled_site()
    out = variants.simulate_changes(scene, 0.05, seed=3, max_side=16)
    change = out["change"].values.astype(bool)
    assert set(out.data_vars) == {"optical", "sar", "change"} and out["change"].dtype == "uint8"
    assert 0.05 <= change.mean() < 0.05 + 16 * 16 / 128**2
    for name in ("optical", "sar"):
        before, after = scene[name].values, out[name].values
        differs = (before != after).any(axis=1)                      # (time, y, x)
        assert not differs[:, ~change].any(), f"{name} changed outside the simulated changes"
        assert differs.any(axis=0)[change].mean() > 0.99, f"{name} was not pasted into the changes"
    # each paste is on one date: few labelled pixels (where rectangles overlap) changed on both dates
    one_date = (scene["optical"].values != out["optical"].values).any(axis=1)[:, change]
    assert one_date.all(axis=0).mean() < 0.2
    assert "simulated changes (5% of the pixels, seed 3" in out.attrs["source"]
    again = variants.simulate_changes(scene, 0.05, seed=3, max_side=16)
    assert (again["optical"].values == out["optical"].values).all()
    other = variants.simulate_changes(scene, 0.05, seed=4, max_side=16)
    assert (other["change"].values != out["change"].values).any()


def test_simulated_changes_refuse_a_labelled_or_too_small_scene_and_a_bad_fraction(variants):
    from urbankit.data import synthetic

    labelled = synthetic.make_site("labelled-01", size=128, n_dates=2)
    with pytest.raises(ValueError, match="'labelled-01' has a change label"):
        variants.simulate_changes(labelled, 0.02, seed=0)
    with pytest.raises(ValueError, match="is 64x64 px, need at least 96"):
        variants.simulate_changes(_unlabelled_site(size=64), 0.02, seed=0)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 0.5\), got 0.6"):
        variants.simulate_changes(_unlabelled_site(), 0.6, seed=0)
    cloudy = _unlabelled_site()
    cloudy["optical"][:, :, :, 3:] = float("nan")     # a 3 px strip of data: too narrow for a 4 px paste
    with pytest.raises(ValueError, match="'unlabelled-01': 0.0% of the pixels after 100000 tries"):
        variants.simulate_changes(cloudy, 0.02, seed=0)


def test_a_simulated_variant_names_its_extra_scenes_in_the_table(variants):
    name = "rgbn+identity25+p128b9+simulated2"
    table = variants.summary_table([_record(name, "fold0", 0.3)], "fc_siam_conc")
    assert table.loc[name, "overrides"].endswith("+ simulated changes on 2% of the pixels of montpellier, norcia, rio")
    assert variants.VARIANTS[name] == variants.VARIANTS["rgbn+identity25+p128b9"]
