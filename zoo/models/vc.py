"""Sequence-to-sequence voice conversion with attention distillation: one LightningModule for the teacher (autoencoder
pretraining, then fine-tuning on parallel pairs) and the student (from scratch, optionally distilled).

The student adds ``lambda * CE(p_teacher, p_student)`` (``zoo.losses.distillation``) to its loss, where the frozen
teacher runs teacher-forced on the same batch. The teacher is not a submodule: it is kept out of ``parameters()``,
the optimiser, DDP wrapping, ``train()``/``eval()`` switching and the checkpoint, and only follows the device.

Batches: ``ParallelBatch`` (source mel -> target mel) or ``SpeechBatch`` (autoencoder: the mel is both).

Targets (``target_features``, linked from the DataModule's): the target's mel frames, heard through Griffin-Lim or a
vocoder stage; or its WORLD parameters (``ParallelBatch.tgt_world``: ``zoo.world``'s mel-cepstrum, interpolated log
F0, band aperiodicity and voicing, standardised by the net's output buffers, set from the training data), heard
through WORLD synthesis directly, with no vocoder to train (``docs/results/attention-distillation/cpu-budget.md``:
on real CMU ARCTIC the same teacher converts ~0.6 dB of MCD better this way than through a WORLD vocoder from
mels). A WORLD-target model starts from a mel autoencoder's weights where their shapes agree (``init_from``).
Validation logs teacher-forced ``focus_rate``/``diagonality``, the frame loss of copying each step's fed-back frame
(``mel_previous_step_copy``: the floor ``mel`` must beat for the decoder to be using its attention context) and, from free-running conversions, ``mel_cd_proxy_db``
(a fast log-mel cepstral distance, ``zoo.metrics.mel_distance``; WORLD targets log ``mcep_distance_db`` instead,
the fastdtw-aligned distance of the predicted and target mel-cepstra at their own alpha, c0 left out; neither is the
published MCD, which needs waveforms: ``zoo.metrics.mcd``, reported by ``python -m zoo reproduce
attention-distillation``) and ``duration_ratio``; inside
epoch 0 the alignment figures are also logged every ``probe_every_n_steps`` optimiser steps on a fixed validation batch (``probe/*``), so "diagonal by the end of the first epoch" can be watched happening.

Prediction returns a ``zoo.media.Prediction`` (Griffin-Lim or WORLD wav, mel, alignment) per source utterance of the predict
loader (the test split); ``callbacks.prediction.PredictionWriter`` writes them (``python -m zoo predict`` adds it).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch import Tensor

from datamodules.batches import ParallelBatch, SpeechBatch
from zoo.audio import AudioConfig, AudioFrontEnd, griffin_lim_wav
from zoo.config import block_config, check_non_negative, config_from_value
from zoo.checkpoints import checkpoint_arguments, load_frozen_net, load_net_weights
from zoo.errors import CheckpointError
from zoo.losses.distillation import attention_distillation_loss
from zoo.losses.tacotron import guided_attention_loss, masked_spectrogram_loss, stop_token_loss
from zoo.media import MediaSample, Prediction
from zoo.metrics.alignment import diagonality, focus_rate
from zoo.metrics.spectral import previous_step_copy
from zoo.metrics.mel_distance import mel_cepstral_distance_proxy, normalized_mel_to_log_amplitude
from zoo.models.tacotron import Seq2SeqTrainingConfig, seq2seq_optimizer
from zoo.nn.vc import Seq2SeqVC, Seq2SeqVCConfig, VCOutput
from zoo.sequence import decoder_steps

log = logging.getLogger(__name__)

DistillSchedule = Literal["constant", "step", "linear"]
TargetFeatures = Literal["mel", "world"]


def build_net(audio: AudioConfig, net: Seq2SeqVCConfig, target_features: TargetFeatures = "mel") -> Seq2SeqVC:
    """The converter network for these targets: mel frames, or standardised WORLD parameters (``zoo.world``)."""
    if target_features not in ("mel", "world"):
        raise ValueError(f"target_features must be 'mel' or 'world', but got {target_features!r}")
    if target_features == "mel":
        return Seq2SeqVC(audio.n_mels, net)
    from zoo.world import world_dim

    return Seq2SeqVC(audio.n_mels, net, out_dim=world_dim(audio.sample_rate))


def frame_weights(audio: AudioConfig, training: VCTrainingConfig, target_features: TargetFeatures) -> Tensor | None:
    """The per-channel weights of the frame losses: None (all 1), or with WORLD targets 1 everywhere but
    ``training.lf0_weight`` on the log-F0 channel. A ValueError for an ``lf0_weight`` other than 1 with mel targets."""
    if training.lf0_weight == 1.0:
        return None
    if target_features != "world":
        raise ValueError(f"VCTrainingConfig.lf0_weight {training.lf0_weight} weights the log-F0 channel of WORLD "
                         "targets, but this converter predicts mel frames: set --data.target_features world, or "
                         "lf0_weight 1")
    from zoo.world import world_dim, world_layout

    weights = torch.ones(world_dim(audio.sample_rate))
    weights[world_layout(audio.sample_rate)["lf0"]] = training.lf0_weight
    return weights


def distill_weight_at(weight: float, schedule: DistillSchedule, epochs: int | None, epoch: float) -> float:
    """lambda at a (fractional) epoch: ``constant``; ``step`` (lambda until ``epochs``, then 0); ``linear`` (from lambda
    to 0 over ``epochs``)."""
    if schedule == "constant" or epochs is None:
        return weight
    if schedule == "step":
        return weight if epoch < epochs else 0.0
    return weight * max(0.0, 1.0 - epoch / epochs)


def load_teacher(path: str | Path) -> Seq2SeqVC:
    """The frozen teacher of a VoiceConversion checkpoint: its net rebuilt from the checkpoint's hyper-parameters,
    in eval mode, without gradients."""
    return load_frozen_net(VoiceConversion, path, "teacher",
                           lambda kw: build_net(kw["audio"], kw["net"], kw.get("target_features", "mel")))


def checkpoint_target_features(path: str | Path, what: str) -> str:
    """The targets a VoiceConversion checkpoint predicts ("mel" for checkpoints from before the choice existed)."""
    return checkpoint_arguments(VoiceConversion, path, what).get("target_features", "mel")


def load_model(path: str | Path) -> VoiceConversion:
    """A trained VoiceConversion (student or teacher) from its checkpoint, weights only, in eval mode."""
    model = VoiceConversion(**checkpoint_arguments(VoiceConversion, path, "model"))
    load_net_weights(model.net, path, "model")
    return model.eval()


def _pair(batch: ParallelBatch | SpeechBatch, target_features: str = "mel") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(source, source lengths, target, target lengths), the target the mel or (``world``) the WORLD parameters on
    their own scale; a SpeechBatch is its own target (autoencoder)."""
    if target_features == "world":
        if not isinstance(batch, ParallelBatch) or batch.tgt_world is None:
            raise ValueError("a WORLD-target converter needs parallel batches with the target's WORLD parameters "
                             "(CMUArcticDataModule with mode: parallel and target_features: world); an autoencoder "
                             "stage predicts mels (target_features: mel)")
        return batch.src_mel, batch.src_lengths, batch.tgt_world, batch.tgt_lengths
    if isinstance(batch, ParallelBatch):
        return batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths
    if batch.mel is None:
        raise ValueError("voice conversion needs mel spectrograms in the batch (SpeechBatch.mel is None)")
    return batch.mel, batch.mel_lengths, batch.mel, batch.mel_lengths


@block_config
class VCTrainingConfig(Seq2SeqTrainingConfig):
    """``Seq2SeqTrainingConfig`` plus: ``mel_loss`` "l1" | "mse"; attention distillation from the frozen teacher at
    ``teacher_checkpoint`` with weight ``distill_weight`` (0: the baseline student) on a ``distill_schedule``
    ("constant"; "step": off after ``distill_epochs``; "linear": to 0 over ``distill_epochs``); output distillation
    from the same teacher with the constant weight ``distill_output_weight`` (0: off; the ``mel_loss`` of the
    student's frames against the teacher's teacher-forced ones); ``lf0_weight``: with WORLD targets, the weight of the
    log-F0 channel in every frame loss (the other channels 1; a stream weight as in statistical parametric synthesis:
    at 1 and 16 kHz log F0 is 1 of 43 channels, ~2 % of the loss); ``init_from``: a
    checkpoint whose net weights start the run (the teacher's fine-tuning from its autoencoder); validation figures:
    alignment probes every ``probe_every_n_steps`` optimiser steps of epoch 0 (0: off) and the proxy cepstral distance
    of the first ``mcd_max_utterances`` validation conversions."""

    mel_loss: Literal["l1", "mse"] = "l1"
    teacher_checkpoint: str | None = None
    distill_weight: float = 0.0
    distill_schedule: DistillSchedule = "constant"
    distill_epochs: int | None = None
    distill_output_weight: float = 0.0
    lf0_weight: float = 1.0
    init_from: str | None = None
    probe_every_n_steps: int = 0
    mcd_max_utterances: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        check_non_negative("VCTrainingConfig", distill_weight=self.distill_weight,
                           distill_output_weight=self.distill_output_weight, lf0_weight=self.lf0_weight,
                           probe_every_n_steps=self.probe_every_n_steps, mcd_max_utterances=self.mcd_max_utterances)
        if self.mel_loss not in ("l1", "mse"):
            raise ValueError(f"VCTrainingConfig.mel_loss must be 'l1' or 'mse', but got {self.mel_loss!r}")
        if self.distill_schedule not in ("constant", "step", "linear"):
            raise ValueError(f"VCTrainingConfig.distill_schedule must be constant, step or linear, but got "
                             f"{self.distill_schedule!r}")
        if self.distill_schedule != "constant" and (self.distill_epochs is None or self.distill_epochs < 1):
            raise ValueError(f"VCTrainingConfig.distill_schedule {self.distill_schedule!r} needs distill_epochs >= 1, "
                             f"but got {self.distill_epochs}")
        for name in ("distill_weight", "distill_output_weight"):
            if getattr(self, name) > 0 and self.teacher_checkpoint is None:
                raise ValueError(f"VCTrainingConfig.{name} > 0 needs a teacher: set teacher_checkpoint to the "
                                 f"fine-tuned teacher's checkpoint (or {name} 0 for the no-distillation baseline)")

    @property
    def distils(self) -> bool:
        """Whether a teacher is read: attention or output distillation is on."""
        return self.distill_weight > 0 or self.distill_output_weight > 0


class VoiceConversion(L.LightningModule):
    """Seq2seq VC (pyramidal BiLSTM encoder, Tacotron 2 decoder) with optional attention distillation. ``audio`` comes
    from the data (linked by the CLI), and so is ``target_features`` (what the converter predicts: module
    docstring); the network is ``net`` (``--model.net.decoder.attention_dim 64``), the rest ``training``."""

    def __init__(
        self,
        *,
        audio: AudioConfig = AudioConfig(),
        net: Seq2SeqVCConfig = Seq2SeqVCConfig(),
        training: VCTrainingConfig = VCTrainingConfig(),
        target_features: TargetFeatures = "mel",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        # a checkpoint's hyper-parameters hold the configs as dicts (Lightning's load_from_checkpoint passes them on)
        net = config_from_value(Seq2SeqVCConfig, net, "net")
        self.audio = config_from_value(AudioConfig, audio, "audio")
        self.net_config = net
        self.training_config = config_from_value(VCTrainingConfig, training, "training")
        self.reduction_factor = net.decoder.reduction_factor
        self.target_features = target_features
        self.net = build_net(self.audio, net, target_features)
        self.register_buffer("frame_weights", frame_weights(self.audio, self.training_config, target_features),
                             persistent=False)
        self._teacher: Seq2SeqVC | None = None  # set in setup("fit"); a plain attribute, see the module docstring
        self._probe_batch: Any = None
        self._initialised = False

    # --- teacher and initial weights -----------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_teacher":  # never register the teacher as a submodule
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    @property
    def teacher(self) -> Seq2SeqVC | None:
        return self._teacher

    def setup(self, stage: str) -> None:
        # at fit time only (a checkpoint restored afterwards overrides init_from): a student reloaded for predict needs
        # neither the teacher nor the initial weights
        if stage != "fit" or self._initialised:
            return
        hp = self.training_config
        if self.net.standardised and not bool(self.net.scale_set):
            datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
            if getattr(datamodule, "target_features", "mel") != self.target_features:
                raise ValueError(f"this converter predicts {self.target_features} features, but the DataModule "
                                 "yields no such targets: set --data.target_features (the CLI links it to the model)")
            self.net.set_output_scale(*datamodule.world_stats())
        if hp.init_from is not None:
            init_targets = checkpoint_target_features(hp.init_from, "init_from")
            fresh = load_net_weights(self.net, hp.init_from, partial=init_targets != self.target_features)
            fresh = [k for k in fresh if k not in ("out_mean", "out_std", "scale_set")]  # set from the data above
            if fresh:
                log.info("init_from %s (%s targets) -> %s targets: %d tensors start fresh: %s", hp.init_from,
                         init_targets, self.target_features, len(fresh), ", ".join(fresh))
        if hp.distils:
            teacher_targets = checkpoint_target_features(hp.teacher_checkpoint, "teacher")
            if teacher_targets != self.target_features:
                raise CheckpointError(f"teacher checkpoint {hp.teacher_checkpoint} predicts {teacher_targets} "
                                      f"features, this student {self.target_features}: the teacher runs teacher-forced "
                                      "on the student's targets, so both must predict the same features")
            teacher = load_teacher(hp.teacher_checkpoint)
            if teacher.reduction_factor != self.reduction_factor or (
                teacher.encoder.downsampling != self.net.encoder.downsampling
            ):
                raise CheckpointError(
                    f"teacher checkpoint {hp.teacher_checkpoint} has reduction factor {teacher.reduction_factor} and "
                    f"encoder downsampling {teacher.encoder.downsampling}, the student {self.reduction_factor} and "
                    f"{self.net.encoder.downsampling}: their alignments must have the same shape"
                )
            self._teacher = teacher
        self._initialised = True

    def _teacher_output(self, src: Tensor, src_lengths: Tensor, tgt: Tensor, tgt_lengths: Tensor) -> VCOutput:
        """The frozen teacher's teacher-forced pass on the student's batch (``tgt`` on the student's scale)."""
        teacher = self._teacher
        assert teacher is not None
        if next(teacher.parameters()).device != src.device:
            teacher.to(src.device)
        teacher.eval()  # stays in eval even if someone called .train() on it
        with torch.no_grad():
            return teacher(src, src_lengths, teacher.standardise(self.net.destandardise(tgt)), tgt_lengths)

    def _batch(self, batch: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(source, source lengths, target on the network's scale, target lengths) of a batch."""
        src, src_lengths, tgt, tgt_lengths = _pair(batch, self.target_features)
        return src, src_lengths, self.net.standardise(tgt), tgt_lengths

    def distill_weight(self) -> float:
        hp = self.training_config
        batches = self.trainer.num_training_batches if self._trainer is not None else float("inf")
        epoch = self.global_step / batches if 0 < batches < float("inf") else float(self.current_epoch)
        return distill_weight_at(hp.distill_weight, hp.distill_schedule, hp.distill_epochs, epoch)

    # --- losses and steps ----------------------------------------------------------------------------------------
    def _losses(self, out: VCOutput, batch: Any, stage: str) -> dict[str, Tensor]:
        hp = self.training_config
        src, src_lengths, tgt, tgt_lengths = self._batch(batch)
        w = self.frame_weights
        losses = {"mel": masked_spectrogram_loss(out.mel, tgt, tgt_lengths, hp.mel_loss, w)}
        if self.net.postnet is not None:
            losses["mel_postnet"] = masked_spectrogram_loss(out.mel_postnet, tgt, tgt_lengths, hp.mel_loss, w)
        total = sum(losses.values())
        losses["stop"] = stop_token_loss(out.stop_logits, tgt_lengths, hp.stop_pos_weight)
        total = total + hp.stop_weight * losses["stop"]
        dec_steps = decoder_steps(tgt_lengths, self.reduction_factor)
        if hp.guided_attention_weight > 0:
            losses["guided_attention"] = guided_attention_loss(out.alignments, dec_steps, out.memory_lengths,
                                                               hp.guided_attention_sigma)
            total = total + hp.guided_attention_weight * losses["guided_attention"]
        if self._teacher is not None and stage == "train":
            weight = self.distill_weight()
            taught = self._teacher_output(src, src_lengths, tgt, tgt_lengths)
            losses["attention_ce"] = attention_distillation_loss(taught.alignments, out.alignments, dec_steps,
                                                                 out.memory_lengths)
            losses["distill_weight"] = torch.tensor(weight)
            total = total + weight * losses["attention_ce"]
            if hp.distill_output_weight > 0:
                # the teacher's final frames (after its post-net), on the student's scale, as a second target
                frames = self.net.standardise(self._teacher.destandardise(taught.mel_postnet))
                losses["output_distillation"] = masked_spectrogram_loss(out.mel, frames, tgt_lengths, hp.mel_loss, w)
                if self.net.postnet is not None:
                    losses["output_distillation"] = losses["output_distillation"] + masked_spectrogram_loss(
                        out.mel_postnet, frames, tgt_lengths, hp.mel_loss, w)
                total = total + hp.distill_output_weight * losses["output_distillation"]
        losses["loss"] = total
        return losses

    def _alignment_figures(self, out: VCOutput, tgt_lengths: Tensor) -> dict[str, Tensor]:
        dec_steps = decoder_steps(tgt_lengths, self.reduction_factor)
        return {"focus_rate": focus_rate(out.alignments, dec_steps, out.memory_lengths),
                "diagonality": diagonality(out.alignments, dec_steps, out.memory_lengths)}

    def _common_step(self, batch: Any, stage: str) -> Tensor:
        src, src_lengths, tgt, tgt_lengths = self._batch(batch)
        out = self.net(src, src_lengths, tgt, tgt_lengths)
        losses = self._losses(out, batch, stage)
        logs = {f"{stage}/{k}": v for k, v in losses.items()}
        if stage != "train":
            logs.update({f"{stage}/{k}": v for k, v in self._alignment_figures(out, tgt_lengths).items()})
            # the reference for val/mel: a decoder that only continues its teacher-forced input scores about this
            logs[f"{stage}/mel_previous_step_copy"] = masked_spectrogram_loss(
                previous_step_copy(tgt, self.reduction_factor), tgt, tgt_lengths, self.training_config.mel_loss,
                self.frame_weights)
        on_epoch = stage != "train"
        self.log_dict(logs, on_step=not on_epoch, on_epoch=on_epoch, sync_dist=on_epoch, prog_bar=stage != "test",
                      batch_size=src.shape[0])
        return losses["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._common_step(batch, "val")
        self._conversion_figures(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._common_step(batch, "test")
        self._conversion_figures(batch, batch_idx, "test")

    def _conversion_figures(self, batch: Any, batch_idx: int, stage: str) -> None:
        """Proxy cepstral distance and duration ratio of free-running conversions of the first ``mcd_max_utterances``
        of the loader."""
        budget = self.training_config.mcd_max_utterances
        src, src_lengths, tgt, tgt_lengths = self._batch(batch)
        start = batch_idx * src.shape[0]  # the loaders are in order and all but the last batch are full
        n = min(src.shape[0], budget - start)
        if n <= 0:
            return
        distance, ratio = self.conversion_figures(src[:n], src_lengths[:n], tgt[:n], tgt_lengths[:n])
        name = "mcep_distance_db" if self.net.standardised else "mel_cd_proxy_db"
        self.log_dict({f"{stage}/{name}": distance, f"{stage}/duration_ratio": ratio}, on_epoch=True, sync_dist=True,
                      batch_size=n)

    @torch.no_grad()
    def conversion_figures(self, src: Tensor, src_lengths: Tensor, tgt: Tensor, tgt_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Mean cepstral distance (dB; module docstring) and predicted/target duration of free-running conversions of
        targets ``tgt`` on the network's scale; the max-length guard is twice the longest target (a conversion that
        never stops scores a duration ratio near 2)."""
        max_frames = min(self.training_config.max_decoder_frames, 2 * int(tgt_lengths.max()))
        out = self.net.infer(src, src_lengths, max_frames, self.training_config.stop_threshold)
        distances, ratios = [], []
        for i in range(src.shape[0]):
            n, m = int(out.lengths[i]), int(tgt_lengths[i])
            if self.net.standardised:
                distances.append(self._mcep_distance(out.mel_postnet[i, :n], tgt[i, :m]))
            else:
                pred = normalized_mel_to_log_amplitude(out.mel_postnet[i, :n], self.audio)
                ref = normalized_mel_to_log_amplitude(tgt[i, :m], self.audio)
                distances.append(mel_cepstral_distance_proxy(pred, ref))
            ratios.append(n / m)
        return torch.tensor(sum(distances) / len(distances)), torch.tensor(sum(ratios) / len(ratios))

    def _mcep_distance(self, pred: Tensor, target: Tensor) -> float:
        """fastdtw-aligned distance (dB) of two utterances' mel-cepstra, c0 left out, from standardised WORLD frames."""
        from zoo.metrics.mcd import mcd_from_mcep
        from zoo.world import world_layout

        mcep = world_layout(self.audio.sample_rate)["mcep"]
        a, b = (self.net.destandardise(x)[:, mcep][:, 1:].double().cpu().numpy() for x in (pred, target))
        return mcd_from_mcep(a, b)

    def world_wav(self, frames: Tensor) -> Tensor:
        """(T, world_dim) frames on the network's scale -> (T * hop,) waveform by WORLD synthesis."""
        from zoo.world import world_synthesize

        params = self.net.destandardise(frames.float()).double().cpu().numpy()
        return torch.from_numpy(world_synthesize(params, self.audio.sample_rate, self.audio.hop_length)).float()

    # --- alignment probes inside epoch 0 -------------------------------------------------------------------------
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        every = self.training_config.probe_every_n_steps
        if every <= 0 or self.current_epoch > 0 or self.global_step % every != 0:
            return
        # straight to the loggers: self.log's step metrics are only written every log_every_n_steps
        figures = {f"probe/{k}": float(v) for k, v in self.probe_alignment().items()}
        for logger in self.loggers:
            logger.log_metrics(figures, step=self.global_step)

    @torch.no_grad()
    def probe_alignment(self) -> dict[str, Tensor]:
        """Teacher-forced focus rate and diagonality on a fixed validation batch (the whole split, up to 64 items)."""
        if self._probe_batch is None:
            self._probe_batch = self.trainer.datamodule.media_batch(64, "val")
        batch = move_data_to_device(self._probe_batch, self.device)
        src, src_lengths, tgt, tgt_lengths = self._batch(batch)
        was_training = self.net.training
        self.net.eval()
        out = self.net(src, src_lengths, tgt, tgt_lengths)
        self.net.train(was_training)
        return self._alignment_figures(out, tgt_lengths)

    def configure_optimizers(self) -> Any:
        return seq2seq_optimizer(self, self.net.parameters(), self.training_config)

    # --- media and prediction ------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: Any) -> MediaSample:
        """Teacher-forced predictions of a batch; a WORLD-target model's as WORLD-synthesised audio and its mel."""
        src, src_lengths, tgt, tgt_lengths = self._batch(batch)
        out = self.net(src, src_lengths, tgt, tgt_lengths)
        common = dict(ids=list(batch.ids), alignments=out.alignments,
                      decoder_lengths=decoder_steps(tgt_lengths, self.reduction_factor),
                      encoder_lengths=out.memory_lengths, mel_input=src, mel_lengths=tgt_lengths, audio_config=self.audio)
        if not self.net.standardised:
            return MediaSample(**common, mel_pred=out.mel_postnet.clamp(0.0, 1.0), mel_target=tgt)
        front = AudioFrontEnd(self.audio)
        waves = [self.world_wav(out.mel_postnet[i, : int(n)]) for i, n in enumerate(tgt_lengths)]
        mels = [front.frames_of(w)[: int(n)] for w, n in zip(waves, tgt_lengths)]
        audio = torch.zeros(len(waves), max(len(w) for w in waves))
        mel_pred = torch.zeros_like(batch.tgt_mel)
        for i, (w, m) in enumerate(zip(waves, mels)):
            audio[i, : len(w)] = w
            mel_pred[i, : len(m)] = m
        return MediaSample(**common, mel_pred=mel_pred, mel_target=batch.tgt_mel, audio=audio,
                           audio_lengths=torch.tensor([len(w) for w in waves]))

    def predict_step(self, batch: Any, batch_idx: int) -> list[Prediction]:
        """Source mel -> free-running conversion -> wav (Griffin-Lim from a converted mel; WORLD synthesis from
        converted WORLD parameters, whose ``Prediction.mel`` is then the mel of that wav), with each utterance's
        alignment; written by ``callbacks.prediction.PredictionWriter``."""
        src, src_lengths, _, _ = _pair(batch)  # the source only: prediction needs no target
        out = self.net.infer(src, src_lengths, self.training_config.max_decoder_frames, self.training_config.stop_threshold)
        front = AudioFrontEnd(self.audio) if self.net.standardised else None
        predictions = []
        for i, utt_id in enumerate(batch.ids):
            n = int(out.lengths[i])
            if front is None:
                mel = out.mel_postnet[i, :n].clamp(0.0, 1.0).float().cpu()
                wav = griffin_lim_wav(mel, self.audio)
            else:
                wav = self.world_wav(out.mel_postnet[i, :n])
                mel = front.frames_of(wav)
            predictions.append(Prediction(
                id=utt_id, wav=wav, sample_rate=self.audio.sample_rate, mel=mel,
                alignment=out.alignments[i, : math.ceil(n / self.reduction_factor), : int(out.memory_lengths[i])].float().cpu(),
                stopped=bool(out.stopped[i])))
        return predictions


__all__ = ["VCTrainingConfig", "VoiceConversion", "build_net", "checkpoint_target_features", "distill_weight_at", "load_model",
           "load_teacher"]
