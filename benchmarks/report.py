"""The one writer of benchmark results: Markdown under ``benchmarks/results/``, written atomically."""
from __future__ import annotations

import os
from pathlib import Path


def write_report(out: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``out`` through ``<out>.tmp`` and a rename (never half a file), and say where.

    Args:
        out: the Markdown file (its folder is created).
        text: the report; a final newline is added when missing.

    Returns:
        The path written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(f"wrote {out}")
    return out
