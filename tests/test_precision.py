"""bf16 mixed precision on CPU: every experiment family trains a few steps with finite losses."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from tests.families import ROOT, fit_args
from zoo.cli import main

# one config per family: image VAE, manual-optimisation GAN, TTS, vocoder, spectrogram GAN, voice conversion
FAMILIES = ["vae_mnist", "wgan_gp_mnist", "tacotron2", "wavenet_mol", "postnet_pix2pix", "vc_teacher"]


@pytest.fixture
def data_root(embedded_data: Path) -> Path:
    return embedded_data  # the session's embedded corpora (tests/conftest.py), built once


@pytest.mark.parametrize("name", FAMILIES)
def test_bf16_mixed_losses_are_finite(name: str, data_root: Path, tmp_path: Path):
    main(["fit", "--config", str(ROOT / "configs" / f"{name}.yaml"), *fit_args(name),
          "--data.init_args.source", "embedded", "--data.init_args.root", str(data_root),
          "--trainer.precision", "bf16-mixed", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
          "--trainer.max_epochs", "1", "--trainer.max_steps", "-1", "--trainer.max_time", "null",
          "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
          "--trainer.log_every_n_steps", "1", "--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]",
          "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path),
          "--trainer.default_root_dir", str(tmp_path)])
    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    losses = {k: float(v) for row in rows for k, v in row.items() if "loss" in k and v not in ("", None)}
    assert losses, f"no loss was logged: {rows[:2]}"
    assert all(math.isfinite(v) for v in losses.values()), losses
