"""Exact resume: a run killed mid-epoch and resumed with ``fit --ckpt_path last`` ends where an uninterrupted run
ends, with the same parameters and the same per-step losses (deterministic CPU mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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
            "--model.net.latent_dim", "4", "--model.net.channels", "8", "--model.net.hidden", "32",
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


# --- one model per family ---------------------------------------------------------------------------------------
# image GAN (manual optimisation: critic/generator counters, two optimisers), TTS (prenet dropout, bucketed
# batches), vocoder (random windows), spectrogram GAN (dropout noise, two optimisers), voice conversion
FAMILY_ARGS = {
    "wgan_gp_mnist": ["--model.init_args.net.latent_dim", "8", "--model.init_args.net.channels", "8", "--model.init_args.net.hidden", "32",
                      "--data.init_args.batch_size", "16", "--model.init_args.training.n_critic", "2"],
    "wavenet_mol": ["--data.init_args.batch_size", "2"],
    "postnet_pix2pix": ["--data.init_args.batch_size", "2"],  # with its 2 loader workers
}
BATCHES_PER_EPOCH, KILL_AFTER = 3, 4  # two epochs; killed after batch 0 of epoch 1


def fit_family(name: str, out: Path, data: Path, kill: bool = False, resume: bool = False) -> subprocess.CompletedProcess:
    from tests.families import fit_args

    callbacks = [{"class_path": "tests.resume_helpers.RecordTrainMetrics", "init_args": {"out": str(out)}}]
    if kill:
        callbacks.append({"class_path": "tests.resume_helpers.CheckpointAndKill",
                          "init_args": {"batches": KILL_AFTER, "path": str(out / "stopped.ckpt")}})
    override = out / "override.yaml"
    override.write_text(json.dumps({"trainer": {"callbacks": callbacks}}))
    args = [sys.executable, "-m", "zoo", "fit", "--config", str(ROOT / "configs" / f"{name}.yaml"), "--config", str(override),
            *fit_args(name), *FAMILY_ARGS.get(name, []), "--seed_everything", "7",
            "--data.init_args.source", "embedded", "--data.init_args.root", str(data),
            "--trainer.max_epochs", "2", "--trainer.max_steps", "-1", "--trainer.max_time", "null",
            "--trainer.limit_train_batches", str(BATCHES_PER_EPOCH), "--trainer.limit_val_batches", "1",
            "--trainer.num_sanity_val_steps", "0", "--trainer.deterministic", "true", "--trainer.accelerator", "cpu",
            "--trainer.devices", "1", "--trainer.log_every_n_steps", "1", "--trainer.enable_checkpointing", "false",
            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(out / "logs"),
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(out)]
    if resume:
        args += ["--ckpt_path", str(out / "stopped.ckpt")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def family_data(embedded_data: Path) -> Path:
    return embedded_data  # the session's embedded corpora (tests/conftest.py), built once


@pytest.mark.parametrize("name", ["wgan_gp_mnist", "tacotron2", "wavenet_mol", "postnet_pix2pix", "vc_teacher"])
def test_each_family_resumes_exactly_after_a_kill(name: str, family_data: Path, tmp_path: Path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight.mkdir()
    stopped.mkdir()
    proc = fit_family(name, straight, family_data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = fit_family(name, stopped, family_data, kill=True)
    assert proc.returncode != 0 and (stopped / "stopped.ckpt").exists() and not (stopped / "final.pt").exists()
    proc = fit_family(name, stopped, family_data, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def records(out: Path) -> list:
        """Per batch, the train/* figures that changed since the previous batch: Lightning keeps showing the last
        value of a figure not logged this batch (a GAN's generator loss, logged every n_critic-th batch), which a
        restarted process has not seen yet. The stopped run's file holds its batches before the kill and after."""
        timeline, last = [], {}
        for key, logged in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()):
            timeline.append([key, {k: v for k, v in logged.items() if last.get(k) != v}])
            last.update(logged)
        return timeline

    a, b = records(straight), records(stopped)
    assert [k for k, _ in a] == [k for k, _ in b] == ["0:0", "0:1", "0:2", "1:0", "1:1", "1:2"]  # none repeated or skipped
    assert all(m for _, m in a), "no train/* metric was logged"
    assert a == b  # every logged training figure of every batch, bit for bit
    final_a, final_b = torch.load(straight / "final.pt"), torch.load(stopped / "final.pt")
    assert final_a.keys() == final_b.keys()
    for key in final_a:
        torch.testing.assert_close(final_b[key], final_a[key], rtol=0, atol=0, msg=key)
