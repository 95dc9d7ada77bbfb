"""The book stands alone: no wording about how the project is made, no links outside the book."""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

from urbankit.book import chapter_notebooks

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"

#: Wording a student must never meet: internal notes, process, unpublished sources, repo files.
FORBIDDEN = {
    r"METHODS\.md": "cite the paper (references.bib) instead of the kit's internal method notes",
    r"DESIGN\.md|CONTRIBUTING\.md|README\.md": "a file of the repository, not of the book",
    r"\bseed slides?\b|\bthe seed's\b": "the project's seed material is not a source a student can read",
    r"issue behind this chapter|\bthe issue asks\b": "how the chapter was commissioned is not student text",
    r"\[UNVERIFIED\]": "say in words what is not verified and why",
    r"tests/test_\w+\.py": "the test suite is not part of the book",
    r"\.\./shared|shared/data/real": "a folder of the course machine; say 'a folder of real data (data_root)'",
}
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")


def _texts() -> list[tuple[str, str]]:
    """(where, text) for the intro page and every chapter's markdown cells and code comments."""
    texts = [("book/intro.md", (BOOK / "intro.md").read_text())]
    for path in chapter_notebooks(REPO):
        nb = nbformat.read(path, as_version=4)
        for number, cell in enumerate(nb.cells, 1):
            source = cell.source
            if cell.cell_type == "code":   # its comments (also at a line's end), and what its outputs say
                source = "\n".join(_comments(source))
                source += "".join(out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
                                  for out in cell.get("outputs", []))
            texts.append((f"{path.relative_to(REPO)} cell {number}", source))
    return texts


def _comments(source: str) -> list[str]:
    """The comments of a code cell: whole-line ones and those after code (``x = 1  # ...``)."""
    try:
        return [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, IndentationError, SyntaxError):   # a cell with shell or magic lines
        return [line for line in source.splitlines() if line.lstrip().startswith("#")]


def _outside_link(target: str) -> str | None:
    """Why a link target leaves the book, or None when it is fine."""
    if target.startswith(("https://", "mailto:", "#")):
        return None
    if target.startswith("http://"):
        return "an http:// link (bare file names such as METHODS.md become http://METHODS.md)"
    local = (BOOK / target.split("#")[0]).resolve()
    if not local.is_relative_to(BOOK.resolve()) or not local.exists():
        return "a file outside the book"
    return None


#: pages whose comments after code (checked since this test reads them) another branch of this
#: session still has to fix; strict xfail, so the entry must go once the page is clean
_PAGES_PENDING: set[str] = set()
_PAGES = ["book/intro.md"] + [str(path.relative_to(REPO)) for path in chapter_notebooks(REPO)]


@pytest.mark.parametrize("page", [pytest.param(page, marks=pytest.mark.xfail(
    strict=True, reason="comments after code not yet rewritten by the chapter's owner"))
    if page in _PAGES_PENDING else page for page in _PAGES])
def test_no_internal_wording_in_the_book(page):
    found = [f"{where}: {re.search(pattern, text).group(0)!r} ({why})"
             for where, text in _texts() if where.split(" cell ")[0] == page
             for pattern, why in FORBIDDEN.items() if re.search(pattern, text)]
    assert not found, "\n".join(found)


def test_no_link_leaves_the_book():
    found = [f"{where}: ]({target}) is {why}" for where, text in _texts()
             for target in _LINK.findall(text) if (why := _outside_link(target))]
    assert not found, "\n".join(found)


def test_no_markdown_line_starts_a_blockquote_by_accident():
    found = [f"{where}: {line.strip()!r}" for where, text in _texts() for line in text.splitlines()
             if re.match(r"\s*>\s*[=<>]", line)]   # ">= 10 %" at a line start renders as a quote
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text, bad", [("see METHODS.md §4", True), ("[x](http://METHODS.md)", True),
                                       ("[paper](https://doi.org/10.1/x)", False), ("[ch](../README.md)", True)])
def test_the_checks_catch_what_they_are_meant_to(text, bad):
    hits = [p for p in FORBIDDEN if re.search(p, text)] + [t for t in _LINK.findall(text) if _outside_link(t)]
    assert bool(hits) is bad


def test_no_output_of_any_kind_cites_the_internal_method_notes():
    """Also HTML outputs (e.g. an xarray repr showing a dataset's attributes)."""
    found = [path.name for path in chapter_notebooks(REPO) if "METHODS.md" in path.read_text()]
    assert not found, f"METHODS.md appears in the committed notebooks {found}"


def test_every_chapter_header_states_its_run_times_in_one_form():
    """The form that benchmarks/bench_book_times.py checks against the measured times."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_book_times import parse_claim

    missing = [path.stem for path in chapter_notebooks(REPO)
               if parse_claim(nbformat.read(path, as_version=4).cells[0].source) is None]
    assert not missing, f"no '**Run time.** `quick` ...: about N min on 2 CPU cores (measured). `full`: ...': {missing}"


@pytest.mark.parametrize("module", [str(path.relative_to(REPO)) for path in sorted((REPO / "urbankit").rglob("*.py"))])
def test_package_text_cites_papers_not_internal_notes(module):
    """Docstrings and comments of the package are read by students too (help(), the API pages)."""
    text = (REPO / module).read_text()
    found = [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
             for m in re.finditer(r"METHODS\.md|\[UNVERIFIED\]|DESIGN\.md|\bseed slides?\b|\b[Tt]he seed's\b", text)]
    assert not found, f"{module}: cite the paper (book/references.bib) or say what is unverified: {found}"


def test_comments_after_code_are_checked_too():
    assert _comments('data_root = None  # see ../shared/data\nx = "# not a comment"') == ["# see ../shared/data"]
    assert _comments("!pip install x  # quiet\n") == ["# quiet"]
