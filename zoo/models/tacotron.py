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
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

import datamodules.text_prompts  # noqa: F401  (registers the predict DataModule with the CLI)
from datamodules.batches import SpeechBatch
from zoo.audio import AudioConfig, griffin_lim_wav
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


class _TacotronExperiment(L.LightningModule):
    """What both experiments share: the teacher-forced step, alignment figures, media, prediction, optimiser."""

    net: nets.Tacotron | nets.Tacotron2

    def _init_training(
        self, audio: AudioConfig, reduction_factor: int, lr: float, weight_decay: float,
        teacher_forcing_ratio: float, teacher_forcing_final: float | None, teacher_forcing_decay_steps: int,
        guided_attention_weight: float, guided_attention_sigma: float, stop_weight: float,
        max_decoder_frames: int, stop_threshold: float,
    ) -> None:
        if not isinstance(audio, AudioConfig):
            raise ValueError(f"audio must be an AudioConfig, but got {type(audio).__name__}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, but got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, but got {weight_decay}")
        for name, value in (("teacher_forcing_ratio", teacher_forcing_ratio),
                            ("teacher_forcing_final", teacher_forcing_final)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], but got {value}")
        if teacher_forcing_decay_steps < 0:
            raise ValueError(f"teacher_forcing_decay_steps must be >= 0, but got {teacher_forcing_decay_steps}")
        if guided_attention_weight < 0:
            raise ValueError(f"guided_attention_weight must be >= 0, but got {guided_attention_weight}")
        if guided_attention_sigma <= 0:
            raise ValueError(f"guided_attention_sigma must be > 0, but got {guided_attention_sigma}")
        if stop_weight < 0:
            raise ValueError(f"stop_weight must be >= 0, but got {stop_weight}")
        if max_decoder_frames < 1:
            raise ValueError(f"max_decoder_frames must be >= 1, but got {max_decoder_frames}")
        if not 0.0 < stop_threshold < 1.0:
            raise ValueError(f"stop_threshold must be in (0, 1), but got {stop_threshold}")
        self.audio = audio
        self.reduction_factor = reduction_factor

    # --- losses -------------------------------------------------------------------------------------------------
    def _reconstruction_losses(self, out: Any, batch: SpeechBatch) -> dict[str, Tensor]:
        raise NotImplementedError

    def _losses(self, out: Any, batch: SpeechBatch) -> dict[str, Tensor]:
        hp = self.hparams
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
        hp = self.hparams
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

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=hp.weight_decay)

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
        return self.net.infer(text, text_lengths, self.hparams.max_decoder_frames, self.hparams.stop_threshold)

    def _waveform(self, out: Any, i: int) -> Tensor:
        """Griffin-Lim of utterance ``i``'s predicted mel (Tacotron overrides: its linear spectrogram)."""
        return griffin_lim_wav(self.predicted_mel(out)[i, : int(out.lengths[i])], self.audio)

    def predict_step(self, batch: SpeechBatch, batch_idx: int) -> list[Prediction]:
        """Text -> mel (stop token) -> Griffin-Lim wav, with each utterance's alignment; written by
        ``callbacks.prediction.PredictionWriter``."""
        out = self.synthesize(batch.text, batch.text_lengths)
        r = self.reduction_factor
        guard_frames = math.ceil(self.hparams.max_decoder_frames / r) * r
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
    guided attention loss (Tachibana et al. 2017) and scheduled sampling."""

    def __init__(
        self,
        audio: AudioConfig = AudioConfig(),
        vocab_size: int = 66,
        reduction_factor: int = 1,
        embedding_dim: int = 512,
        encoder_conv_channels: int = 512,
        encoder_kernel_size: int = 5,
        encoder_n_convs: int = 3,
        encoder_lstm_hidden: int = 256,
        encoder_dropout: float = 0.5,
        prenet_sizes: Sequence[int] = (256, 256),
        prenet_dropout: float = 0.5,
        attention_rnn_dim: int = 1024,
        decoder_rnn_dims: Sequence[int] = (1024,),
        attention_kind: str = "location",
        attention_dim: int = 128,
        attention_filters: int | None = None,
        attention_kernel_size: int | None = None,
        attention_dropout: float = 0.1,
        decoder_dropout: float = 0.1,
        postnet_channels: int = 512,
        postnet_kernel_size: int = 5,
        postnet_n_convs: int = 5,
        postnet_dropout: float = 0.5,
        use_gst: bool = False,
        gst_tokens: int = 10,
        gst_heads: int = 4,
        gst_ref_channels: Sequence[int] = (32, 32, 64, 64, 128, 128),
        gst_ref_gru_hidden: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        teacher_forcing_ratio: float = 1.0,
        teacher_forcing_final: float | None = None,
        teacher_forcing_decay_steps: int = 0,
        guided_attention_weight: float = 0.0,
        guided_attention_sigma: float = 0.2,
        stop_weight: float = 1.0,
        stop_pos_weight: float = 1.0,
        max_decoder_frames: int = 1000,
        stop_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self._init_training(audio, reduction_factor, lr, weight_decay, teacher_forcing_ratio, teacher_forcing_final,
                            teacher_forcing_decay_steps, guided_attention_weight, guided_attention_sigma, stop_weight,
                            max_decoder_frames, stop_threshold)
        self.save_hyperparameters()
        self.net = nets.Tacotron2(
            vocab_size, audio.n_mels, reduction_factor, embedding_dim, encoder_conv_channels, encoder_kernel_size,
            encoder_n_convs, encoder_lstm_hidden, encoder_dropout, prenet_sizes, prenet_dropout, attention_rnn_dim,
            decoder_rnn_dims, attention_kind, attention_dim, attention_filters, attention_kernel_size,
            attention_dropout, decoder_dropout, postnet_channels, postnet_kernel_size, postnet_n_convs,
            postnet_dropout, use_gst, gst_tokens, gst_heads, gst_ref_channels, gst_ref_gru_hidden,
        )

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
        audio: AudioConfig = AudioConfig(),
        vocab_size: int = 66,
        reduction_factor: int = 2,
        embedding_dim: int = 256,
        encoder_prenet_sizes: Sequence[int] = (256, 128),
        encoder_K: int = 16,
        encoder_channels: int = 128,
        encoder_gru_hidden: int = 128,
        prenet_sizes: Sequence[int] = (256, 128),
        prenet_dropout: float = 0.5,
        attention_rnn_dim: int = 256,
        decoder_rnn_dims: Sequence[int] = (256, 256),
        attention_kind: str = "content",
        attention_dim: int = 256,
        attention_filters: int | None = None,
        attention_kernel_size: int | None = None,
        attention_dropout: float = 0.0,
        decoder_dropout: float = 0.0,
        postnet_K: int = 8,
        postnet_channels: int = 128,
        postnet_projection: int = 256,
        postnet_gru_hidden: int = 128,
        use_gst: bool = False,
        gst_tokens: int = 10,
        gst_heads: int = 4,
        gst_ref_channels: Sequence[int] = (32, 32, 64, 64, 128, 128),
        gst_ref_gru_hidden: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        teacher_forcing_ratio: float = 1.0,
        teacher_forcing_final: float | None = None,
        teacher_forcing_decay_steps: int = 0,
        guided_attention_weight: float = 0.0,
        guided_attention_sigma: float = 0.2,
        stop_weight: float = 1.0,
        stop_pos_weight: float = 1.0,
        max_decoder_frames: int = 1000,
        stop_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self._init_training(audio, reduction_factor, lr, weight_decay, teacher_forcing_ratio, teacher_forcing_final,
                            teacher_forcing_decay_steps, guided_attention_weight, guided_attention_sigma, stop_weight,
                            max_decoder_frames, stop_threshold)
        self.save_hyperparameters()
        self.net = nets.Tacotron(
            vocab_size, audio.n_mels, audio.n_freq, reduction_factor, embedding_dim, encoder_prenet_sizes, encoder_K,
            encoder_channels, encoder_gru_hidden, prenet_sizes, prenet_dropout, attention_rnn_dim, decoder_rnn_dims,
            attention_kind, attention_dim, attention_filters, attention_kernel_size, attention_dropout,
            decoder_dropout, postnet_K, postnet_channels, postnet_projection, postnet_gru_hidden, use_gst, gst_tokens,
            gst_heads, gst_ref_channels, gst_ref_gru_hidden,
        )

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
