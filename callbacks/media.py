"""Media-logging callbacks: attention alignments, spectrograms, audio and image grids, on rank zero only.

Each callback asks the model for a ``MediaSample`` (``pl_module.media_sample(batch)``, see ``zoo/media.py``) on
a fixed batch of the first ``num_examples`` validation examples, every ``every_n_epochs`` epochs, and logs what
it draws to the active logger: W&B media panels when a ``WandbLogger`` is attached, TensorBoard images and
audio when a ``TensorBoardLogger`` is, and files under ``<run folder>/media/epoch=NNN/`` otherwise (and in
addition to TensorBoard). The sample is computed once per epoch and shared by all media callbacks.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from zoo.audio import AudioFrontEnd, save_wav
from zoo.config import check_at_least
from zoo.media import MediaSample
from zoo.plotting import pyplot


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def _length(lengths: torch.Tensor | None, i: int, default: int) -> int:
    return int(lengths[i]) if lengths is not None else default


class MediaCallback(Callback):
    """Base: picks the fixed examples, runs the model once per logging epoch, routes media to the logger."""

    def __init__(self, every_n_epochs: int = 1, num_examples: int = 4) -> None:
        check_at_least(1, every_n_epochs=every_n_epochs, num_examples=num_examples)
        self.every_n_epochs = every_n_epochs
        self.num_examples = num_examples

    # -- the shared sample ------------------------------------------------------------------------------------
    def _sample(self, trainer: L.Trainer, pl_module: L.LightningModule) -> MediaSample | None:
        if not hasattr(pl_module, "media_sample"):
            return None
        key = (trainer.current_epoch, trainer.global_step)
        cache = getattr(pl_module, "_zoo_media_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "media_batch"):
            return None
        # one batch big enough for every media callback, so the model runs once per epoch
        n = max(cb.num_examples for cb in trainer.callbacks if isinstance(cb, MediaCallback))
        batch = datamodule.media_batch(n)
        batch = pl_module.transfer_batch_to_device(batch, pl_module.device, 0)
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                sample = pl_module.media_sample(batch)
        finally:
            pl_module.train(was_training)
        pl_module._zoo_media_cache = (key, sample)
        return sample

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs != 0 and not trainer.fast_dev_run:
            return
        sample = self._sample(trainer, pl_module)
        if sample is not None:
            self.log_media(trainer, pl_module, sample)

    def log_media(self, trainer: L.Trainer, pl_module: L.LightningModule, sample: MediaSample) -> None:
        raise NotImplementedError

    # -- routing to loggers ------------------------------------------------------------------------------------
    @staticmethod
    def media_dir(trainer: L.Trainer) -> Path:
        root = trainer.log_dir or trainer.default_root_dir
        return Path(root) / "media" / f"epoch={trainer.current_epoch:03d}"

    def _wandb(self, trainer: L.Trainer) -> WandbLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)

    def _tensorboard(self, trainer: L.Trainer) -> TensorBoardLogger | None:
        return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def emit_figures(self, trainer: L.Trainer, key: str, figures: list[Any], captions: list[str]) -> None:
        plt = pyplot()
        wandb_logger = self._wandb(trainer)
        if wandb_logger is not None:
            import wandb

            wandb_logger.experiment.log(
                {key: [wandb.Image(f, caption=c) for f, c in zip(figures, captions)], "trainer/global_step": trainer.global_step}
            )
        else:
            tb = self._tensorboard(trainer)
            out = self.media_dir(trainer)
            out.mkdir(parents=True, exist_ok=True)
            for fig, caption in zip(figures, captions):
                fig.savefig(out / f"{key.replace('/', '_')}_{caption}.png", dpi=80)
                if tb is not None:
                    tb.experiment.add_figure(f"{key}/{caption}", fig, global_step=trainer.global_step, close=False)
        for fig in figures:
            plt.close(fig)

    def emit_audio(self, trainer: L.Trainer, key: str, waves: list[np.ndarray], sample_rate: int, captions: list[str]) -> None:
        wandb_logger = self._wandb(trainer)
        if wandb_logger is not None:
            import wandb

            wandb_logger.experiment.log(
                {key: [wandb.Audio(w, sample_rate=sample_rate, caption=c) for w, c in zip(waves, captions)],
                 "trainer/global_step": trainer.global_step}
            )
            return
        tb = self._tensorboard(trainer)
        out = self.media_dir(trainer)
        out.mkdir(parents=True, exist_ok=True)
        for w, c in zip(waves, captions):
            save_wav(out / f"{key.replace('/', '_')}_{c}.wav", w, sample_rate)
            if tb is not None:
                tb.experiment.add_audio(f"{key}/{c}", torch.from_numpy(w)[None], trainer.global_step, sample_rate)


def _captions(sample: MediaSample, n: int) -> list[str]:
    return list(sample.ids[:n]) if sample.ids else [f"example{i}" for i in range(n)]


class AttentionPlotCallback(MediaCallback):
    """Decoder step x encoder step heat maps of the attention alignments (cropped to the valid lengths)."""

    def log_media(self, trainer: L.Trainer, pl_module: L.LightningModule, sample: MediaSample) -> None:
        if sample.alignments is None:
            return
        plt = pyplot()
        align = sample.alignments
        n = min(self.num_examples, align.shape[0])
        figures = []
        for i in range(n):
            t_dec = _length(sample.decoder_lengths, i, align.shape[1])
            t_enc = _length(sample.encoder_lengths, i, align.shape[2])
            fig, ax = plt.subplots(figsize=(6, 4))
            im = ax.imshow(_np(align[i, :t_dec, :t_enc]).T, aspect="auto", origin="lower", interpolation="none")
            ax.set_xlabel("decoder step")
            ax.set_ylabel("encoder step")
            fig.colorbar(im, ax=ax)
            fig.tight_layout()
            figures.append(fig)
        self.emit_figures(trainer, "media/attention", figures, _captions(sample, n))


class SpectrogramPlotCallback(MediaCallback):
    """Mel spectrograms: (input,) prediction and target stacked, frequency up, time to the right."""

    def log_media(self, trainer: L.Trainer, pl_module: L.LightningModule, sample: MediaSample) -> None:
        if sample.mel_pred is None:
            return
        plt = pyplot()
        n = min(self.num_examples, sample.mel_pred.shape[0])
        figures = []
        for i in range(n):
            panels = []
            t_pred = _length(sample.mel_lengths, i, sample.mel_pred.shape[1])
            if sample.mel_input is not None:
                panels.append(("input", sample.mel_input[i, :t_pred]))
            panels.append(("prediction", sample.mel_pred[i, :t_pred]))
            if sample.mel_target is not None:
                lengths = sample.target_lengths if sample.target_lengths is not None else sample.mel_lengths
                panels.append(("target", sample.mel_target[i, : _length(lengths, i, sample.mel_target.shape[1])]))
            fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), squeeze=False)
            for ax, (title, mel) in zip(axes[:, 0], panels):
                ax.imshow(_np(mel).T, aspect="auto", origin="lower", interpolation="none", vmin=0.0, vmax=1.0)
                ax.set_title(title, fontsize=9)
                ax.set_ylabel("mel bin")
            axes[-1, 0].set_xlabel("frame")
            fig.tight_layout()
            figures.append(fig)
        self.emit_figures(trainer, "media/spectrogram", figures, _captions(sample, n))


class AudioSampleCallback(MediaCallback):
    """Audio of the predictions: the model's waveforms, or Griffin-Lim from the predicted mel spectrograms."""

    def __init__(self, every_n_epochs: int = 5, num_examples: int = 2, griffin_lim_iters: int = 32) -> None:
        super().__init__(every_n_epochs, num_examples)
        if griffin_lim_iters < 1:
            raise ValueError(f"griffin_lim_iters must be >= 1, but got {griffin_lim_iters}")
        self.griffin_lim_iters = griffin_lim_iters

    def log_media(self, trainer: L.Trainer, pl_module: L.LightningModule, sample: MediaSample) -> None:
        n_max = self.num_examples
        waves: list[np.ndarray] = []
        if sample.audio is not None:
            for i in range(min(n_max, sample.audio.shape[0])):
                waves.append(_np(sample.audio[i, : _length(sample.audio_lengths, i, sample.audio.shape[1])]))
            sample_rate = sample.audio_config.sample_rate if sample.audio_config else None
        elif sample.mel_pred is not None and sample.audio_config is not None:
            front = AudioFrontEnd(dataclasses.replace(sample.audio_config, griffin_lim_iters=self.griffin_lim_iters))
            sample_rate = sample.audio_config.sample_rate
            for i in range(min(n_max, sample.mel_pred.shape[0])):
                mel = sample.mel_pred[i, : _length(sample.mel_lengths, i, sample.mel_pred.shape[1])]  # (T, n_mels)
                waves.append(_np(front.mel_to_wav(mel.detach().float().cpu().T)))
        else:
            return
        if sample_rate is None:
            raise ValueError("MediaSample.audio needs audio_config (for its sample rate)")
        self.emit_audio(trainer, "media/audio", waves, sample_rate, _captions(sample, len(waves)))


class ImageGridCallback(MediaCallback):
    """Image grids (samples, reconstructions beside inputs, interpolations), one per named set of images."""

    def __init__(self, every_n_epochs: int = 1, num_examples: int = 64) -> None:
        super().__init__(every_n_epochs, num_examples)

    @staticmethod
    def grid(images: torch.Tensor, pad: int = 2) -> np.ndarray:
        """(N, C, H, W) in [0, 1] -> one (rows*(H+pad), cols*(W+pad), C) array, as near square as possible."""
        images = images.detach().float().cpu().clamp(0, 1)
        n, c, h, w = images.shape
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        out = torch.ones(c, rows * (h + pad) + pad, cols * (w + pad) + pad)
        for k in range(n):
            r, q = divmod(k, cols)
            out[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = images[k]
        return out.permute(1, 2, 0).numpy()

    def log_media(self, trainer: L.Trainer, pl_module: L.LightningModule, sample: MediaSample) -> None:
        if not sample.images:
            return
        plt = pyplot()
        figures, captions = [], []
        for name, images in sample.images.items():
            grid = self.grid(images)
            fig, ax = plt.subplots(figsize=(6, 6))
            ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
            ax.set_title(name)
            fig.tight_layout()
            figures.append(fig)
            captions.append(name)
        self.emit_figures(trainer, "media/images", figures, captions)
