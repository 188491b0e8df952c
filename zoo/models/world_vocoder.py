"""WORLD vocoder with a learnt mel front end (WORLD: Morise et al. 2016): mel spectrogram -> WORLD parameters
(``zoo.nn.world_vocoder.MelToWorld``) -> waveform (``zoo.world.world_synthesize``).

Why it is here: a regression converter predicts over-smoothed mel spectra, and Griffin-Lim turns smeared harmonics
into noisy speech whose WORLD analysis, the one the field's metrics run, reads a wrong envelope and F0
(docs/results/attention-distillation/cpu-budget.md: a 1.5-bin blur costs Griffin-Lim 3.7 dB of MCD). This vocoder
learns the envelope, F0, voicing and aperiodicity the natural recording had from each mel frame and its
neighbours, on natural and over-smoothed inputs, and on an upstream model's ground-truth-aligned predictions when
the DataModule has them (as Tacotron 2's WaveNet is fine-tuned: Shen et al. 2018), and WORLD synthesises from them.
It trains in minutes on a CPU; it is not a neural waveform model.

Loss: mean absolute error of the standardised continuous parameters (mel-cepstrum, interpolated log F0, band
aperiodicities; the log F0 channel weighted by ``lf0_weight``, the others by 1) plus ``vuv_weight`` times the
voicing's binary cross-entropy (``zoo.losses.world``). Validation logs the loss and the frame-aligned mel-cepstral
distortion of the natural and of the predicted inputs (``val/mcep_distortion_db``,
``val/mcep_distortion_db_predicted``: on the vocoder's own mel-cepstrum, alpha ``pysptk.util.mcepalpha``, so not the
published MCD, which ``zoo.metrics.mcd`` computes on the waveform).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from datamodules.world_vocoder import MelWorldBatch
from zoo.audio import AudioConfig
from zoo.config import block_config, check_non_negative, check_positive, config_from_value
from zoo.losses.world import world_parameter_loss
from zoo.media import MediaSample
from zoo.metrics.mcd import frame_mcd_db
from zoo.nn.world_vocoder import MelToWorld, MelToWorldConfig
from zoo.world import world_dim, world_layout, world_synthesize


@block_config
class WorldVocoderTrainingConfig:
    """Adam at ``lr`` with a one-cycle schedule (warm-up over ``warmup_fraction`` of the run, cosine decay after;
    constant when the run has no step budget), ``vuv_weight`` on the voicing's cross-entropy, ``lf0_weight`` on the
    log F0 channel's absolute error (1: one channel among the mel-cepstrum's 40 and the aperiodicities)."""

    lr: float = 2e-3
    warmup_fraction: float = 0.1
    vuv_weight: float = 0.2
    lf0_weight: float = 1.0

    def __post_init__(self) -> None:
        check_positive("WorldVocoderTrainingConfig", lr=self.lr)
        check_non_negative("WorldVocoderTrainingConfig", vuv_weight=self.vuv_weight, lf0_weight=self.lf0_weight)
        if not 0.0 < self.warmup_fraction < 1.0:
            raise ValueError(f"WorldVocoderTrainingConfig.warmup_fraction must be in (0, 1), but got {self.warmup_fraction}")


class WorldVocoder(L.LightningModule):
    """Mel spectrogram -> WORLD parameters -> waveform (module docstring); batches: ``MelWorldBatch``."""

    def __init__(
        self,
        *,
        audio: AudioConfig = AudioConfig(),
        net: MelToWorldConfig = MelToWorldConfig(),
        training: WorldVocoderTrainingConfig = WorldVocoderTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        self.audio = config_from_value(AudioConfig, audio, "audio")
        self.net_config = config_from_value(MelToWorldConfig, net, "net")
        self.training_config = config_from_value(WorldVocoderTrainingConfig, training, "training")
        self.net = MelToWorld(self.net_config, self.audio.n_mels, world_dim(self.audio.sample_rate))
        weights = torch.ones(world_dim(self.audio.sample_rate) - 1)  # the continuous channels, voicing excluded
        weights[world_layout(self.audio.sample_rate)["lf0"]] = self.training_config.lf0_weight
        self.register_buffer("channel_weights", weights, persistent=False)

    def setup(self, stage: str) -> None:
        # Runs before a checkpoint is restored, so a resumed or loaded model ends up with its own saved scale.
        if bool(self.net.scale_set):
            return
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "world_stats"):
            raise ValueError("the parameters' scale is not set: train with a DataModule that has world_stats() "
                             "(datamodules.world_vocoder.WorldVocoderDataModule), or load a checkpoint")
        self.net.set_scale(*datamodule.world_stats())

    def _common_step(self, batch: MelWorldBatch, stage: str) -> torch.Tensor:
        hp = self.training_config
        mask = torch.arange(batch.mel.shape[1], device=batch.mel.device)[None] < batch.lengths[:, None]  # (B, T)
        pred = self.net(batch.mel)  # (B, T, D)
        target = torch.cat([self.net.standardise(batch.world)[..., :-1], batch.world[..., -1:]], dim=-1)
        l1, bce = world_parameter_loss(pred, target, mask, self.channel_weights)
        loss = l1 + hp.vuv_weight * bce
        on_epoch = stage != "train"
        logs = {f"{stage}/loss": loss, f"{stage}/l1": l1, f"{stage}/vuv_bce": bce}
        if on_epoch:
            mcep = world_layout(self.audio.sample_rate)["mcep"]
            world = pred[..., :-1] * self.net.std[:-1] + self.net.mean[:-1]  # (B, T, D - 1)
            for name, rows in (("", ~batch.predicted), ("_predicted", batch.predicted)):
                frames = mask & rows[:, None]
                if frames.any():
                    logs[f"{stage}/mcep_distortion_db{name}"] = frame_mcd_db(world[..., mcep][frames],
                                                                             batch.world[..., mcep][frames])
        self.log_dict(logs, on_step=not on_epoch, on_epoch=on_epoch, sync_dist=on_epoch, prog_bar=stage != "test",
                      batch_size=batch.mel.shape[0])
        return loss

    def training_step(self, batch: MelWorldBatch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: MelWorldBatch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def test_step(self, batch: MelWorldBatch, batch_idx: int) -> None:
        self._common_step(batch, "test")

    def configure_optimizers(self) -> Any:
        hp = self.training_config
        opt = torch.optim.Adam(self.parameters(), lr=hp.lr)
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        if not math.isfinite(total) or total < 2:
            return opt
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, hp.lr, total_steps=int(total), pct_start=hp.warmup_fraction)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def media_sample(self, batch: MelWorldBatch) -> MediaSample:
        """The fixed validation utterances vocoded whole (``callbacks.media.AudioSampleCallback``)."""
        waves = self.vocode([m[: int(n)] for m, n in zip(batch.mel, batch.lengths)])
        audio = torch.zeros(len(waves), max(w.shape[0] for w in waves))
        for i, w in enumerate(waves):
            audio[i, : w.shape[0]] = w
        return MediaSample(ids=list(batch.ids), audio=audio, audio_lengths=torch.tensor([w.shape[0] for w in waves]),
                           audio_config=self.audio, mel_target=batch.mel, mel_lengths=batch.lengths)

    # --- inference ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def vocode(self, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """(T_i, n_mels) normalised mels -> (T_i * hop,) waveforms in [-1, 1], one utterance at a time (the
        network is a few convolutions; WORLD synthesis on the CPU is what takes the time)."""
        device = next(self.parameters()).device
        out = []
        for mel in mels:
            if mel.ndim != 2 or mel.shape[1] != self.audio.n_mels:
                raise ValueError(f"expected a (frames, {self.audio.n_mels}) mel, but got {tuple(mel.shape)}")
            params = self.net.parameters_from(mel.float().to(device)[None])[0].double().cpu().numpy()  # (T, D)
            wav = world_synthesize(params, self.audio.sample_rate, self.audio.hop_length)
            out.append(torch.from_numpy(wav).float())
        return out


__all__ = ["WorldVocoder", "WorldVocoderTrainingConfig"]
