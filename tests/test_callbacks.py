"""Media callbacks: files under the run folder without W&B, media panels in an offline W&B run."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from callbacks import AttentionPlotCallback, AudioSampleCallback, ImageGridCallback, SpectrogramPlotCallback
from datamodules import MNISTDataModule
from zoo.audio import AudioConfig
from zoo.media import MediaSample

AUDIO = AudioConfig(n_mels=20, n_fft=256, win_length=256, hop_length=64, fmax=4000.0, sample_rate=8000)


class MediaModel(L.LightningModule):
    """Stands in for an experiment: a linear model whose media_sample fills every MediaSample field."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Linear(784, 1)
        self.calls = 0

    def training_step(self, batch, batch_idx):
        return self.w(batch.images.flatten(1)).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.w(batch.images.flatten(1)).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def media_sample(self, batch) -> MediaSample:
        self.calls += 1
        b = batch.images.shape[0]
        g = torch.Generator().manual_seed(0)
        align = torch.softmax(torch.randn(b, 30, 12, generator=g), dim=-1)
        mel = torch.rand(b, 30, AUDIO.n_mels, generator=g)
        return MediaSample(
            ids=[f"utt{i}" for i in range(b)], alignments=align, decoder_lengths=torch.full((b,), 25),
            encoder_lengths=torch.full((b,), 10), mel_pred=mel, mel_target=mel.flip(1), mel_lengths=torch.full((b,), 30),
            audio_config=AUDIO, images={"samples": batch.images, "reconstructions": 1 - batch.images},
        )


def media_callbacks():
    return [AttentionPlotCallback(num_examples=2), SpectrogramPlotCallback(num_examples=2),
            AudioSampleCallback(every_n_epochs=1, num_examples=2, griffin_lim_iters=4), ImageGridCallback(num_examples=16)]


def fit(tmp_path: Path, logger) -> MediaModel:
    model = MediaModel()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=logger,
                        callbacks=media_callbacks(), default_root_dir=tmp_path, enable_progress_bar=False,
                        enable_checkpointing=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=MNISTDataModule(source="embedded", batch_size=16))
    return model


def test_media_files_land_under_the_run_folder(tmp_path):
    model = fit(tmp_path, CSVLogger(tmp_path, name="run"))
    media = tmp_path / "run" / "version_0" / "media" / "epoch=000"
    names = sorted(p.name for p in media.iterdir())
    assert "media_attention_utt0.png" in names and "media_attention_utt1.png" in names
    assert "media_spectrogram_utt0.png" in names
    assert "media_audio_utt0.wav" in names and "media_audio_utt1.wav" in names
    assert "media_images_samples.png" in names and "media_images_reconstructions.png" in names
    assert model.calls == 1  # the sample is computed once per epoch and shared by the four callbacks


def test_media_panels_in_an_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    fit(tmp_path, WandbLogger(project="zoo-test", save_dir=str(tmp_path)))
    import wandb

    wandb.finish()
    run_dir = next((tmp_path / "wandb").glob("offline-run-*"))
    media = {p.relative_to(run_dir / "files" / "media").parts[0] for p in (run_dir / "files" / "media").rglob("*.*")}
    assert {"images", "audio"} <= media
    stored = {p.name.split("_")[0] for p in (run_dir / "files" / "media" / "images").rglob("*.png")}
    assert stored  # figures of attention, spectrograms and image grids were written as W&B media
    assert not (tmp_path / "lightning_logs").exists()


def test_callback_arguments_are_checked():
    with pytest.raises(ValueError, match="every_n_epochs"):
        AttentionPlotCallback(every_n_epochs=0)
    with pytest.raises(ValueError, match="num_examples"):
        ImageGridCallback(num_examples=0)


def test_cli_run_leaves_config_metrics_media_and_commit_in_the_offline_wandb_run(tmp_path, monkeypatch):
    """What a W&B dashboard shows, read back from the offline run directory of a real CLI run."""
    import wandb
    import yaml

    from zoo.cli import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    main(["fit", "--config", "configs/vae_mnist.yaml", "--model.init_args.net.latent_dim", "3", "--model.init_args.net.channels", "4",
          "--model.init_args.net.hidden", "16", "--data.init_args.source", "embedded", "--data.init_args.root", str(tmp_path / "data"),
          "--data.init_args.batch_size", "32", "--trainer.logger.init_args.save_dir", str(tmp_path),
          "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
          "--trainer.log_every_n_steps", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
          "--trainer.default_root_dir", str(tmp_path)])
    wandb.finish()
    wandb.teardown()  # stops W&B's service process: everything it was sent is on disk
    run_dir = next((tmp_path / "wandb").glob("offline-run-*"))
    text = (run_dir / "files" / "zoo_config.yaml").read_text()
    assert text.startswith("# git commit: ")
    config = yaml.safe_load(text)
    assert config["model"]["class_path"] == "zoo.models.vae.VAE"
    assert config["model"]["init_args"]["net"]["latent_dim"] == 3 and config["model"]["init_args"]["net"]["channels"] == 4
    assert config["data"]["init_args"]["batch_size"] == 32 and config["data"]["init_args"]["source"] == "embedded"
    assert config["trainer"]["limit_train_batches"] == 2
    assert list((run_dir / "files" / "media" / "images").rglob("*.png"))  # the image grids
    # offline, the config panel and the metrics live in the run's record log until `wandb sync` (protobuf records,
    # whose keys are stored as plain strings)
    records = next(run_dir.glob("run-*.wandb")).read_bytes()
    for key in (b"latent_dim", b"git_commit", b"train/loss", b"val/loss", b"lr-Adam"):
        assert key in records, key


def test_compile_networks_compiles_children_in_place_and_keeps_checkpoint_keys():
    from callbacks import CompileNetworks

    class Two(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.generator, self.critic = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
            self.act = torch.nn.ReLU()  # no parameters: not a network to compile

    model = Two()
    keys = list(model.state_dict())
    callback = CompileNetworks()
    callback.setup(None, model, "fit")
    assert callback.compiled == ["generator", "critic"]
    assert model.generator._compiled_call_impl is not None and model.act._compiled_call_impl is None
    assert list(model.state_dict()) == keys  # in place: no "_orig_mod." prefixes, checkpoints stay interchangeable
    with pytest.raises(ValueError, match="no network 'net'"):
        CompileNetworks(modules=["net"]).setup(None, Two(), "fit")
    with pytest.raises(ValueError, match="mode"):
        CompileNetworks(mode="fastest")
