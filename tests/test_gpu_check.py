"""bench/gpu_check.py: skips cleanly without CUDA, and its whole code path runs on CPU (``--cpu-smoke``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the check would run, not skip")
def test_without_cuda_it_skips_cleanly(tmp_path: Path):
    proc = _run("--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in json.loads((tmp_path / "gpu_check.json").read_text())
    assert "no CUDA device" in (tmp_path / "gpu_check.md").read_text()


def test_cpu_smoke_runs_a_fit_and_generation_and_writes_the_report(tmp_path: Path):
    proc = _run("--out", str(tmp_path), "--cpu-smoke", "--configs", "vae_mnist", "--steps", "1", "--warmup", "1",
                "--samples", "300")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    (fit,) = report["fits"]
    assert fit["config"] == "vae_mnist" and fit["step_ms"] > 0 and fit["batch"] > 0
    assert [g["batch"] for g in report["generation"]] == [1, 16]
    assert all(g["real_time_factor"] > 0 for g in report["generation"])
    assert "| vae_mnist |" in (tmp_path / "gpu_check.md").read_text()
