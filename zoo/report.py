"""What every ``python -m zoo reproduce`` report shares: its number cells and the two files it writes.

Each command keeps only what is its own (its evaluation, its table's columns); figures go through ``zoo.plotting``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def fmt(value: Any, digits: int | None = 2) -> str:
    """A table cell: "—" for a missing or undefined (NaN) figure, "n/a" for an infinite one, a float with ``digits``
    decimals (None: 4 significant digits), anything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        if math.isinf(value):
            return "n/a"
        return f"{value:.4g}" if digits is None else f"{value:.{digits}f}"
    return str(value)


def write_report(out: Path, report: dict, markdown: str) -> None:
    """``OUT/report.json`` (every figure, values JSON cannot hold written as text) and ``OUT/report.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown)


__all__ = ["fmt", "write_report"]
