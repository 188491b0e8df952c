"""Tacotron (Wang et al. 2017) and Tacotron 2 (Shen et al. 2018) text-to-speech experiments.

Thin LightningModules over the networks in ``zoo.nn.tacotron``: they compute the losses, log the teacher-forced
alignment figures (``zoo.metrics.alignment``), hand media to the callbacks, and synthesise speech in ``predict``.

Prediction returns, for every utterance of the predict loader, a ``zoo.media.Prediction`` (Griffin-Lim wav, mel,
alignment) that ``callbacks.prediction.PredictionWriter`` writes as ``<id>.wav``, ``<id>.png`` and ``mels/<id>.npy``
into ``<trainer.default_root_dir>/predictions/`` (``python -m zoo predict`` adds the writer): the test split of the
configured corpus by default, or your own sentences with the text-prompt DataModule::

    python -m zoo predict --config configs/tacotron2.yaml --ckpt_path last.ckpt --trainer.default_root_dir out \\
        --data datamodules.text_prompts.TextPromptDataModule --data.texts '["Hello world."]'   # or --data.text_file
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor

import datamodules.text_prompts  # noqa: F401  (registers the predict DataModule with the CLI)
from datamodules.batches import SpeechBatch
from zoo.audio import AudioConfig, griffin_lim_wav
from zoo.errors import ConfigError
from zoo.config import block_config, check_fraction, check_non_negative, check_positive, config_from_value
from zoo.losses.tacotron import guided_attention_loss, masked_spectrogram_loss, stop_token_loss
from zoo.media import MediaSample, Prediction
from zoo.metrics.alignment import diagonality, focus_rate
from zoo.nn import tacotron as nets
from zoo.sequence import decoder_steps


def scheduled_teacher_forcing_ratio(step: int, start: float, final: float | None, decay_steps: int) -> float:
    """Scheduled sampling (Bengio et al. 2015) as a linear decay of the teacher-forcing ratio from `start` to
    `final` over `decay_steps` optimiser steps, then constant; `final=None` or `decay_steps=0` keeps `start`."""
    if final is None or decay_steps <= 0:
        return start
    progress = min(max(step, 0) / decay_steps, 1.0)
    return start + (final - start) * progress


def cosine_lr_factor(step: int, total_steps: int, warmup_steps: int = 0, final: float = 0.0) -> float:
    """The learning-rate multiplier at optimiser ``step`` (0-based) of ``total_steps``: linear warm-up from
    1 / ``warmup_steps`` to 1 over ``warmup_steps``, then a half cosine from 1 down to ``final`` at ``total_steps``
    (SGDR without restarts, Loshchilov & Hutter 2017), then ``final``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def seq2seq_optimizer(module: L.LightningModule, params: Any, hp: Seq2SeqTrainingConfig) -> Any:
    """Adam (eps 1e-6) at ``hp.lr``; with ``hp.lr_schedule == "cosine"``, stepped every optimiser step along
    ``cosine_lr_factor`` over the trainer's ``estimated_stepping_batches`` (max_steps, or max_epochs' batches)."""
    opt = torch.optim.Adam(params, lr=hp.lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=hp.weight_decay)
    if hp.lr_schedule == "constant":
        return opt
    total = module.trainer.estimated_stepping_batches
    if not math.isfinite(total):
        raise ConfigError("lr_schedule 'cosine' needs a finite training length: set trainer.max_steps or max_epochs")
    factor = lambda step: cosine_lr_factor(step, int(total), hp.warmup_steps, hp.lr_final_fraction)  # noqa: E731
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@block_config
class Seq2SeqTrainingConfig:
    """How an attention decoder model trains and stops: Adam's ``lr`` and ``weight_decay``, and its schedule
    ``lr_schedule`` ("constant", or "cosine": ``warmup_steps`` of linear warm-up, then a half cosine down to
    ``lr_final_fraction`` x lr at the end of training, see ``cosine_lr_factor``); the stop-token BCE's
    ``stop_weight`` and ``stop_pos_weight`` (weight of the one positive frame per utterance); the guided attention loss
    (Tachibana et al. 2017) weight (0: off) and ``guided_attention_sigma``; at inference the ``max_decoder_frames``
    guard and the stop probability ``stop_threshold``. Shared by text-to-speech and voice conversion."""

    lr: float = 1e-3
    weight_decay: float = 1e-6
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    lr_final_fraction: float = 0.0
    stop_weight: float = 1.0
    stop_pos_weight: float = 1.0
    guided_attention_weight: float = 0.0
    guided_attention_sigma: float = 0.2
    max_decoder_frames: int = 1000
    stop_threshold: float = 0.5

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_positive(name, lr=self.lr, guided_attention_sigma=self.guided_attention_sigma)
        check_non_negative(name, weight_decay=self.weight_decay, stop_weight=self.stop_weight,
                           guided_attention_weight=self.guided_attention_weight, warmup_steps=self.warmup_steps)
        check_fraction(name, lr_final_fraction=self.lr_final_fraction)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"{name}.lr_schedule must be 'constant' or 'cosine', but got {self.lr_schedule!r}")
        if self.max_decoder_frames < 1:
            raise ValueError(f"{name}.max_decoder_frames must be >= 1, but got {self.max_decoder_frames}")
        if not 0.0 < self.stop_threshold < 1.0:
            raise ValueError(f"{name}.stop_threshold must be in (0, 1), but got {self.stop_threshold}")


@block_config
class TacotronTrainingConfig(Seq2SeqTrainingConfig):
    """``Seq2SeqTrainingConfig`` plus scheduled sampling (Bengio et al. 2015): the teacher-forcing ratio decays
    linearly from ``teacher_forcing_ratio`` to ``teacher_forcing_final`` (None: constant) over
    ``teacher_forcing_decay_steps`` optimiser steps."""

    teacher_forcing_ratio: float = 1.0
    teacher_forcing_final: float | None = None
    teacher_forcing_decay_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for field, value in (("teacher_forcing_ratio", self.teacher_forcing_ratio),
                             ("teacher_forcing_final", self.teacher_forcing_final)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"TacotronTrainingConfig.{field} must be in [0, 1], but got {value}")
        check_non_negative("TacotronTrainingConfig", teacher_forcing_decay_steps=self.teacher_forcing_decay_steps)


# Tacotron trains without weight decay (keithito/tacotron); Tacotron 2 with NVIDIA's 1e-6
TACOTRON_TRAINING = TacotronTrainingConfig(weight_decay=0.0)


class _TacotronExperiment(L.LightningModule):
    """What both experiments share: the teacher-forced step, alignment figures, media, prediction, optimiser."""

    net: nets.Tacotron | nets.Tacotron2
    training_config: TacotronTrainingConfig

    def _setup(self, audio: AudioConfig, net_config: Any, training: TacotronTrainingConfig | dict) -> None:
        self.audio = config_from_value(AudioConfig, audio, "audio")
        self.net_config = net_config
        # a checkpoint's hyper-parameters hold the configs as dicts (Lightning's load_from_checkpoint passes them on)
        self.training_config = config_from_value(TacotronTrainingConfig, training, "training")
        self.reduction_factor = net_config.decoder.reduction_factor

    # --- losses -------------------------------------------------------------------------------------------------
    def _reconstruction_losses(self, out: Any, batch: SpeechBatch) -> dict[str, Tensor]:
        raise NotImplementedError

    def _losses(self, out: Any, batch: SpeechBatch) -> dict[str, Tensor]:
        hp = self.training_config
        losses = self._reconstruction_losses(out, batch)
        total = sum(losses.values())
        losses["stop"] = stop_token_loss(out.stop_logits, batch.mel_lengths, hp.stop_pos_weight)
        total = total + hp.stop_weight * losses["stop"]
        if hp.guided_attention_weight > 0:
            dec_steps = decoder_steps(batch.mel_lengths, self.reduction_factor)
            losses["guided_attention"] = guided_attention_loss(
                out.alignments, dec_steps, batch.text_lengths, hp.guided_attention_sigma
            )
            total = total + hp.guided_attention_weight * losses["guided_attention"]
        losses["loss"] = total
        return losses

    def teacher_forcing_ratio(self) -> float:
        hp = self.training_config
        return scheduled_teacher_forcing_ratio(
            self.global_step, hp.teacher_forcing_ratio, hp.teacher_forcing_final, hp.teacher_forcing_decay_steps
        )

    # --- steps --------------------------------------------------------------------------------------------------
    def _run(self, batch: SpeechBatch, teacher_forcing_ratio: float = 1.0) -> Any:
        if batch.mel is None:
            raise ValueError("Tacotron training needs mel spectrograms in the batch (SpeechBatch.mel is None)")
        return self.net(batch.text, batch.text_lengths, batch.mel, batch.mel_lengths, teacher_forcing_ratio)

    def _common_step(self, batch: SpeechBatch, stage: str) -> Tensor:
        # validation and test are teacher-forced, so their alignment figures compare across runs
        ratio = self.teacher_forcing_ratio() if stage == "train" else 1.0
        out = self._run(batch, ratio)
        losses = self._losses(out, batch)
        logs = {f"{stage}/{name}": value for name, value in losses.items()}
        if stage != "train":
            dec_steps = decoder_steps(batch.mel_lengths, self.reduction_factor)
            logs[f"{stage}/focus_rate"] = focus_rate(out.alignments, dec_steps, batch.text_lengths)
            logs[f"{stage}/diagonality"] = diagonality(out.alignments, dec_steps, batch.text_lengths)
        else:
            logs["train/teacher_forcing_ratio"] = torch.tensor(ratio)
        on_epoch = stage != "train"
        self.log_dict(logs, on_step=not on_epoch, on_epoch=on_epoch, sync_dist=on_epoch, prog_bar=stage != "test",
                      batch_size=batch.text.shape[0])
        return losses["loss"]

    def training_step(self, batch: SpeechBatch, batch_idx: int) -> Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: SpeechBatch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def test_step(self, batch: SpeechBatch, batch_idx: int) -> None:
        self._common_step(batch, "test")

    def configure_optimizers(self) -> Any:
        return seq2seq_optimizer(self, self.parameters(), self.training_config)

    # --- media --------------------------------------------------------------------------------------------------
    def predicted_mel(self, out: Any) -> Tensor:
        """The mel frames a vocoder or post-net reads: (B, T, n_mels) normalised (Tacotron 2: after its post-net)."""
        raise NotImplementedError

    @torch.no_grad()
    def media_sample(self, batch: SpeechBatch) -> MediaSample:
        """Teacher-forced predictions of a fixed validation batch: alignments, mel and (by the callback) audio."""
        out = self._run(batch)
        return MediaSample(
            ids=list(batch.ids),
            alignments=out.alignments,
            decoder_lengths=decoder_steps(batch.mel_lengths, self.reduction_factor),
            encoder_lengths=batch.text_lengths,
            mel_pred=self.predicted_mel(out).clamp(0.0, 1.0),
            mel_target=batch.mel,
            mel_lengths=batch.mel_lengths,
            audio_config=self.audio,
        )

    # --- synthesis ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, text: Tensor, text_lengths: Tensor) -> Any:
        """Free-running inference (stop token, ``max_decoder_frames`` guard) on (B, L) symbol ids."""
        hp = self.training_config
        return self.net.infer(text, text_lengths, hp.max_decoder_frames, hp.stop_threshold)

    def _waveform(self, out: Any, i: int) -> Tensor:
        """Griffin-Lim of utterance ``i``'s predicted mel (Tacotron overrides: its linear spectrogram)."""
        return griffin_lim_wav(self.predicted_mel(out)[i, : int(out.lengths[i])], self.audio)

    def predict_step(self, batch: SpeechBatch, batch_idx: int) -> list[Prediction]:
        """Text -> mel (stop token) -> Griffin-Lim wav, with each utterance's alignment; written by
        ``callbacks.prediction.PredictionWriter``."""
        out = self.synthesize(batch.text, batch.text_lengths)
        r = self.reduction_factor
        guard_frames = math.ceil(self.training_config.max_decoder_frames / r) * r
        mel = self.predicted_mel(out)
        predictions = []
        for i, utt_id in enumerate(batch.ids):
            n = int(out.lengths[i])
            predictions.append(Prediction(
                id=utt_id, wav=self._waveform(out, i), sample_rate=self.audio.sample_rate,
                mel=mel[i, :n].clamp(0.0, 1.0).float().cpu(),
                alignment=out.alignments[i, : math.ceil(n / r), : int(batch.text_lengths[i])].float().cpu(),
                stopped=n < guard_frames))
        return predictions


class Tacotron2(_TacotronExperiment):
    """Tacotron 2 (Shen et al. 2018): MSE on the mel before and after the post-net, stop-token BCE; optional GST,
    guided attention loss (Tachibana et al. 2017) and scheduled sampling. ``vocab_size`` and ``audio`` come from the
    data (linked by the CLI); the network's hyper-parameters are ``net`` (``--model.net.decoder.attention_dim 64``)."""

    def __init__(
        self,
        *,
        audio: AudioConfig = AudioConfig(),
        vocab_size: int = 66,
        net: nets.Tacotron2Config = nets.Tacotron2Config(),
        training: TacotronTrainingConfig = TacotronTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        net = config_from_value(nets.Tacotron2Config, net, "net")
        self._setup(audio, net, training)
        self.net = nets.Tacotron2(vocab_size, self.audio.n_mels, net)

    def _reconstruction_losses(self, out: nets.Tacotron2Output, batch: SpeechBatch) -> dict[str, Tensor]:
        return {
            "mel": masked_spectrogram_loss(out.mel, batch.mel, batch.mel_lengths, "mse"),
            "mel_postnet": masked_spectrogram_loss(out.mel_postnet, batch.mel, batch.mel_lengths, "mse"),
        }

    def predicted_mel(self, out: nets.Tacotron2Output) -> Tensor:
        return out.mel_postnet


class Tacotron(_TacotronExperiment):
    """Tacotron (Wang et al. 2017): L1 on the decoder's mel and the post-processing net's linear spectrogram
    (the data config must set ``load_linear: true``), plus a stop-token BCE; Griffin-Lim from the linear output."""

    def __init__(
        self,
        *,
        audio: AudioConfig = AudioConfig(),
        vocab_size: int = 66,
        net: nets.TacotronConfig = nets.TacotronConfig(),
        training: TacotronTrainingConfig = TACOTRON_TRAINING,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        net = config_from_value(nets.TacotronConfig, net, "net")
        # a partial dict keeps Tacotron's own defaults (no weight decay), not the shared training config's
        training = config_from_value(TacotronTrainingConfig, training, "training", base=TACOTRON_TRAINING)
        self._setup(audio, net, training)
        self.net = nets.Tacotron(vocab_size, self.audio.n_mels, self.audio.n_freq, net)

    def _reconstruction_losses(self, out: nets.TacotronOutput, batch: SpeechBatch) -> dict[str, Tensor]:
        if batch.linear is None:
            raise ValueError("Tacotron needs linear spectrograms: set load_linear: true in the data config")
        return {
            "mel": masked_spectrogram_loss(out.mel, batch.mel, batch.mel_lengths, "l1"),
            "linear": masked_spectrogram_loss(out.linear, batch.linear, batch.mel_lengths, "l1"),
        }

    def predicted_mel(self, out: nets.TacotronOutput) -> Tensor:
        return out.mel

    def _waveform(self, out: nets.TacotronOutput, i: int) -> Tensor:
        # Tacotron's own vocoder path: Griffin-Lim on the post-processing net's linear spectrogram
        return griffin_lim_wav(out.linear[i, : int(out.lengths[i])], self.audio, "linear")
