"""Exact resume: a run killed mid-epoch and resumed with ``fit --ckpt_path last`` ends where an uninterrupted run
ends, with the same parameters and the same per-step losses (deterministic CPU mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
KILL_AT = 5  # global step: mid-epoch 0 (epochs of 12 batches), after the checkpoint of step 5


def fit(out: Path, *extra: str, kill: bool = False, resume: bool = False) -> subprocess.CompletedProcess:
    callbacks = [
        {"class_path": "tests.resume_helpers.RecordLosses", "init_args": {"out": str(out)}},
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"dirpath": str(out / "ckpt"), "every_n_train_steps": KILL_AT, "save_last": True, "save_top_k": 0}},
    ]
    if kill:
        callbacks.append({"class_path": "tests.resume_helpers.KillAtStep", "init_args": {"step": KILL_AT}})
    override = out / "override.yaml"
    override.write_text(json.dumps({"trainer": {"callbacks": callbacks}}))
    args = [sys.executable, "-m", "zoo", "fit", "--config", str(ROOT / "configs" / "vae_mnist.yaml"),
            "--config", str(override), "--seed_everything", "7",
            "--data.source", "embedded", "--data.batch_size", "64", "--data.root", str(out / "data"),
            "--model.latent_dim", "4", "--model.channels", "8", "--model.hidden", "32",
            "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "12", "--trainer.limit_val_batches", "1", "--trainer.deterministic", "true",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(out), *extra]
    if resume:
        args += ["--ckpt_path", str(out / "ckpt" / "last.ckpt")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def losses(out: Path) -> dict[int, float]:
    return {step: loss for step, loss in map(json.loads, (out / "losses.jsonl").read_text().splitlines())}


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight.mkdir()
    stopped.mkdir()
    proc = fit(straight)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = fit(stopped, kill=True)
    assert proc.returncode != 0 and not (stopped / "final.pt").exists()  # really killed, mid-epoch
    assert max(losses(stopped)) == KILL_AT
    proc = fit(stopped, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]

    a, b = losses(straight), losses(stopped)
    assert sorted(a) == sorted(b) and len(a) == 24  # two epochs of 12 steps, none repeated or skipped
    for step in a:
        assert b[step] == a[step], f"loss at step {step}: {b[step]} after resume vs {a[step]} uninterrupted"
    final_a, final_b = torch.load(straight / "final.pt"), torch.load(stopped / "final.pt")
    for name in final_a:
        torch.testing.assert_close(final_b[name], final_a[name], rtol=0, atol=0, msg=name)
