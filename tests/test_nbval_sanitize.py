"""The nbval sanitisers (tests/nbval_sanitize.cfg) mask only what they say they mask."""
from __future__ import annotations

import json
import re
from pathlib import Path

from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parents[1]


def _sanitise(text: str) -> str:
    for regex, replace in get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


def _checked_outputs(chapter: str) -> list[str]:
    cells = json.loads((ROOT / "book" / chapter).read_text())["cells"]
    return ["".join(out.get("text", "")) for cell in cells if cell["cell_type"] == "code"
            and "".join(cell["source"]).startswith("# NBVAL_CHECK_OUTPUT") for out in cell.get("outputs", [])]


def test_chapter_06_masks_only_the_cpu_dependent_result_rows():
    changed = []
    for text in _checked_outputs("06_vhr_building_change_hdanet.ipynb"):
        before, after = text.splitlines(), _sanitise(text).splitlines()
        assert len(before) == len(after)
        changed += [(old, new) for old, new in zip(before, after) if old != new]
    # the results table and the tile comparison: one DeepLab V3 and one STANet row each
    assert [new for _, new in changed] == ["DeepLab V3 (row not compared: CPU-dependent)",
                                           "STANet (row not compared: CPU-dependent)"] * 2
    assert all(re.fullmatch(r"(DeepLab V3|STANet)( +([0-9.]+|True|False))+ *", old) for old, _ in changed)


def test_the_row_mask_leaves_other_networks_and_the_parameter_table_alone():
    rows = ("DeepLab V3       deeplabv3  early fusion       39.64          39.64  whole model            True\n"
            "DSIFN              0.65    0.31  0.42   0.40              0.8712\n"
            "HDANet         0.29         0.21             0.29           True\n")
    assert _sanitise(rows) == rows
