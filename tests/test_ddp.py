"""DDP on CPU: two real processes (gloo) over the bucketed speech loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_ljspeech_tree

ROOT = Path(__file__).resolve().parents[1]


def test_two_ranks_see_disjoint_data_and_the_same_number_of_batches(tmp_path):
    make_ljspeech_tree(tmp_path, n=22)  # 20 training utterances -> 10 batches of 2 -> 5 per rank, no padding
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "ddp_bucketing_run.py"), str(tmp_path), str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 5
    ids = [set(i for batch in s for i in batch) for s in seen]
    assert not ids[0] & ids[1]
    assert len(ids[0] | ids[1]) == 20
