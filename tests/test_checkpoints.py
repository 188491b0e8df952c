"""Checkpoints from another experiment or config fail with one clear error naming both sides."""

from __future__ import annotations

import pytest
import torch

from zoo.checkpoints import check_checkpoint_matches
from zoo.errors import CheckpointError
from zoo.models.vae import VAE
from zoo.models.wgan import WGAN


def save(path, model) -> None:
    hp = {"_class_path": f"{type(model).__module__}.{type(model).__qualname__}", **model.hparams}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp}, path)


def test_matching_checkpoint_passes(tmp_path):
    save(tmp_path / "a.ckpt", VAE(latent_dim=4, channels=4, hidden=8))
    check_checkpoint_matches(tmp_path / "a.ckpt", VAE(latent_dim=4, channels=4, hidden=8))


def test_other_experiment_and_other_sizes_are_named(tmp_path):
    save(tmp_path / "a.ckpt", VAE(latent_dim=4, channels=4, hidden=8))
    with pytest.raises(CheckpointError, match=r"written by zoo\.models\.vae\.VAE.*zoo\.models\.wgan\.WGAN"):
        check_checkpoint_matches(tmp_path / "a.ckpt", WGAN())
    with pytest.raises(CheckpointError, match=r"3 different shapes \(encoder.*checkpoint \(8, 8\) vs model \(12, 8\)"):
        check_checkpoint_matches(tmp_path / "a.ckpt", VAE(latent_dim=6, channels=4, hidden=8))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        check_checkpoint_matches(tmp_path / "none.ckpt", VAE())
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        check_checkpoint_matches(tmp_path / "bad.ckpt", VAE())
    check_checkpoint_matches("last", VAE())  # symbolic names are Lightning's to resolve
