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
