"""``python -m zoo reproduce tacotron --preset tiny`` end to end: trains both models, scores them, writes the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.cli import main


def test_reproduce_tacotron_tiny_writes_the_report_samples_and_plots(tmp_path: Path):
    out = tmp_path / "out"
    main(["reproduce", "tacotron", "--preset", "tiny", "--out", str(out), "--data-root", str(tmp_path / "data"),
          "--no-wandb"])
    report = json.loads((out / "report.json").read_text())
    for name in ("tacotron", "tacotron2"):
        m = report[name]
        assert 0.0 <= m["diagonality"] <= 1.0 and 0.0 <= m["focus_rate"] <= 1.0
        assert m["held_out"] >= 1 and 0 <= m["stops_ok"] <= m["held_out"]
        assert m["stops_ok"] == sum(s["ok"] for s in m["stops"])
        for s in m["stops"]:
            # the tiny preset's guard is 20 frames: a sentence is ok only if it stopped near its reference length
            assert s["frames"] <= 20
            assert s["ok"] == (s["stopped"] and abs(s["frames"] / s["reference_frames"] - 1) <= 0.3)
            assert (out / s["wav"]).stat().st_size > 44  # a Griffin-Lim wav, more than its header
            assert (out / s["wav"]).with_suffix(".png").is_file()  # the alignment image beside it
        assert m["reduction_factor"] == 2 and m["guided_attention_weight"] > 0
        assert m["curve"] and all(c["step"] >= 1 for c in m["curve"])
        # each model ran through the CLI from its config plus the override file beside its results
        assert (out / name / "overrides.yaml").is_file()
        assert (out / name / "checkpoints" / "last.ckpt").is_file()
    for image in report["images"]:
        assert (out / image).stat().st_size > 0
    text = (out / "report.md").read_text()
    assert "diagonality" in text and "stops ok" in text


def test_reproduce_tacotron_rejects_an_unknown_preset(tmp_path: Path):
    with pytest.raises(SystemExit):
        main(["reproduce", "tacotron", "--preset", "huge", "--out", str(tmp_path)])
