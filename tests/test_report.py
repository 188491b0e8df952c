"""The reports' shared cells and files (zoo.report)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from zoo.report import fmt, write_report


def test_cells_say_missing_undefined_and_infinite_apart():
    assert fmt(None) == "—" and fmt(float("nan")) == "—"  # no figure / undefined figure
    assert fmt(math.inf) == "n/a" and fmt(-math.inf) == "n/a"
    assert fmt(1.23456) == "1.23" and fmt(0.5, 3) == "0.500" and fmt(12.25, 1) == "12.2"  # round half to even
    assert fmt(1.23456, None) == "1.235" and fmt(123456.0, None) == "1.235e+05"  # 4 significant digits
    assert fmt(3) == "3" and fmt("slt") == "slt"


def test_write_report_writes_json_and_markdown(tmp_path: Path):
    out = tmp_path / "new" / "report"
    write_report(out, {"checkpoint": tmp_path / "a.ckpt", "mcd_db": 6.5}, "# title\n")
    assert json.loads((out / "report.json").read_text()) == {"checkpoint": str(tmp_path / "a.ckpt"), "mcd_db": 6.5}
    assert (out / "report.md").read_text() == "# title\n"
