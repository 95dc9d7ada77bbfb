"""Structure checks of chapters 07-09 (no execution: nbval re-runs them, see CONTRIBUTING.md)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["07_domain_adaptation", "08_semi_supervised_change", "09_noise_robustness"]


def _cells(name):
    return json.loads((ROOT / "book" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("name", CHAPTERS)
def test_parameters_cell_is_parsed_by_papermill(name):
    papermill = pytest.importorskip("papermill")
    params = papermill.inspect_notebook(str(ROOT / "book" / f"{name}.ipynb"))
    source = next("".join(c["source"]) for c in _cells(name) if "parameters" in c["metadata"].get("tags", []))
    assigned = set(re.findall(r"^(\w+)\s*=", source, flags=re.M))
    assert assigned == set(params)                     # every parameter is injectable
    assert {"profile", "device", "data_root", "seed"} <= assigned


@pytest.mark.parametrize("name", CHAPTERS)
def test_skeleton_sections_run_time_and_checked_tables(name):
    cells = _cells(name)
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for heading in ("## Overview", "## Prerequisites", "## Exercises", "## Summary", "## References"):
        assert heading in text, heading
    assert "colab-badge" in text and "**Run time.** `quick`" in text  # bench_book_times form
    assert "`quick`" in text and "`full`" in text
    checked = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) >= 4 and all(c.get("outputs") for c in checked)
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    for key in set(re.findall(r"\{cite\}`([^`]+)`", text)):
        assert re.search(r"@\w+\{" + re.escape(key) + ",", bib), key


def test_navigation_and_plan_have_no_gaps():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    numbers = [int(n) for n in re.findall(r"file: book/(\d\d)_", toc)]
    assert numbers == list(range(len(numbers)))
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert "| 07-09 |" in intro and "| 04-06 |" in intro and "| 10-11 |" in intro
