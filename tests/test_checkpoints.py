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


def test_checkpoints_from_before_the_prediction_writer_still_load(tmp_path):
    """Checkpoints written when models carried ``predict_dir`` (and the post-net ``griffin_lim_iters``) load through
    both loaders: the retired hyper-parameters are dropped, the weights restored."""
    from zoo.checkpoints import load_experiment
    from zoo.models.pix2pix import Pix2PixPostnet

    model = Pix2PixPostnet(depth=2, generator_channels=2, generator_max_channels=4, discriminator_channels=2,
                           discriminator_layers=1)
    path = tmp_path / "old.ckpt"
    hparams = {**model.hparams, "predict_dir": "somewhere", "griffin_lim_iters": 60,
               "_class_path": "zoo.models.pix2pix.Pix2PixPostnet"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": "2.6.6"}, path)
    for loaded in (Pix2PixPostnet.load_from_checkpoint(path, map_location="cpu"),
                   load_experiment(path, {"zoo.models.pix2pix.Pix2PixPostnet": "a post-net"}, "--postnet")):
        assert "predict_dir" not in loaded.hparams
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
