"""bench/refbench_candidate.py builds every case it claims from the reference's own specs (small shapes here)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
REFBENCH = ROOT.parent / "shared" / "refbench"

pytestmark = pytest.mark.skipif(not (REFBENCH / "common.py").is_file(), reason="../shared/refbench is not here")

SMALL = {"wavenet": {"T": 800, "T_gen": 400, "layers": 4, "stacks": 2},
         "tacotron2": {"B": 2, "L_text": 12, "T_mel": 10, "infer_frames": 12},
         "pix2pix": {"B": 2, "crop": 16, "ngf": 4, "ndf": 4, "n_layers_D": 2}}
CASES = [("wavenet", "train_step"), ("wavenet", "generate"), ("tacotron2", "train_step"),
         ("tacotron2", "inference"), ("pix2pix", "train_step")]


@pytest.fixture(scope="module")
def candidate():
    sys.path[:0] = [str(REFBENCH), str(ROOT / "bench")]
    try:
        yield importlib.import_module("refbench_candidate")
    finally:
        sys.path.remove(str(REFBENCH))
        sys.path.remove(str(ROOT / "bench"))


@pytest.mark.parametrize("bench,case", CASES)
def test_each_case_runs_one_iteration_at_the_reference_spec(candidate, bench, case):
    module = importlib.import_module(f"bench_{bench}")
    spec = {**module.default_spec(), **SMALL[bench]}
    built = candidate.build_case(bench, case, spec)
    first, second = built.fn(), built.fn()
    if isinstance(first, float):  # a training step: a finite loss, and the step changed the model
        assert torch.isfinite(torch.tensor([first, second])).all() and first != second
    else:
        assert torch.isfinite(first).all()
        if built.unit is not None:
            assert first.shape[-1] == built.units_per_call or first.shape[-2] == built.units_per_call
    assert built.config["differences"]


def test_the_vae_is_skipped(candidate):
    assert candidate.build_case("vae", "train_step", {}) is None
