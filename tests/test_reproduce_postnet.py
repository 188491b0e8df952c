"""``python -m zoo reproduce postnet --preset tiny`` end to end: trains, scores whole utterances, writes the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.cli import main


def test_reproduce_postnet_tiny_writes_the_report_and_triptychs(tmp_path: Path):
    out = tmp_path / "out"
    main(["reproduce", "postnet", "--preset", "tiny", "--out", str(out), "--data-root", str(tmp_path / "data")])
    report = json.loads((out / "report.json").read_text())
    for side in ("input", "output"):
        assert set(report[side]) == {"l1", "gv_ratio"}
        assert all(isinstance(v, float) and v >= 0 for v in report[side].values())
    assert report["truth"]["l1"] == 0.0
    assert report["truth"]["gv_ratio"] == pytest.approx(1.0)
    assert report["input"]["gv_ratio"] < 1.0  # the built-in degradation blurs
    assert report["num_utterances"] >= 1
    assert Path(report["checkpoint"]["path"]).name.startswith("best-")
    assert report["val_by_epoch"], "no validation epoch was logged"
    assert report["images"]
    for name in report["images"]:
        assert (out / name).stat().st_size > 0
    assert "global-variance ratio" in (out / "report.md").read_text()


def test_reproduce_postnet_rejects_an_unknown_preset(tmp_path: Path):
    with pytest.raises(SystemExit):
        main(["reproduce", "postnet", "--preset", "huge", "--out", str(tmp_path)])
