"""WaveNet vocoder (van den Oord et al. 2016; mel-conditioned as in Shen et al. 2018 and r9y9/wavenet_vocoder).

Training: one random window of ``window_frames`` mel frames (and their ``window_frames * hop_length`` samples)
per utterance of any speech DataModule's batches (``load_wav: true``), cut on the device in
``on_after_batch_transfer`` (``datamodules.vocoder.cut_windows``); validation and test use the centred window.
Loss: the output distribution's mean negative log-likelihood in nats per sample (``output``: discretised
mixture of logistics, single Gaussian, or mu-law categorical), also logged in bits per sample. The Gaussian's
NLL is a density and goes negative as the model sharpens: that is expected. The output layer's log-scales start
at ``init_log_scale`` (-3), not near 0: from scale ~1 the MoL's first steps saturated the gated units and the
model never left the amplitude marginal (docs/results/wavenet.md).

Inference: cached fast generation (``zoo.nn.wavenet.WaveNet.generate``). ``predict`` vocodes the DataModule's
predict split (its test split; ``callbacks.prediction.PredictionWriter`` writes the wavs); ``python -m zoo.models.wavenet --ckpt CKPT --input PATH
--out DIR`` vocodes ``.npy`` mel files (time-major, normalised as the DataModules give them) or a folder of
wavs (re-analysed with ``AudioFrontEnd``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from datamodules.batches import SpeechBatch
from datamodules.vocoder import VocoderWindows, cut_windows
from zoo.audio import AudioConfig, AudioFrontEnd, load_wav, save_wav
from zoo.media import MediaSample, Prediction
from zoo.nn.wavenet import (
    OutputKind,
    UpsampleMode,
    WaveNet,
    make_output_distribution,
    shift_right,
)


class WaveNetVocoder(L.LightningModule):
    """Mel spectrogram → waveform with a conditional WaveNet; sizes default to r9y9's 24-layer MoL recipe."""

    def __init__(
        self,
        audio: AudioConfig = AudioConfig(),
        output: OutputKind = "mol",
        layers: int = 24,
        stacks: int = 4,
        residual_channels: int = 512,
        gate_channels: int = 512,
        skip_channels: int = 256,
        kernel_size: int = 3,
        dropout: float = 0.0,
        upsample_scales: tuple[int, ...] = (4, 4, 4, 4),
        upsample_mode: UpsampleMode = "transposed",
        num_speakers: int = 0,
        speaker_channels: int = 16,
        num_mixtures: int = 10,
        bits: int = 16,
        log_scale_min: float = -7.0,
        init_log_scale: float | None = -3.0,
        quantization_channels: int = 256,
        temperature: float = 1.0,
        window_frames: int = 8,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        lr_decay_steps: int | None = None,
        lr_decay_rate: float = 0.5,
        media_seconds: float = 0.25,
    ) -> None:
        super().__init__()
        if math.prod(upsample_scales) != audio.hop_length:
            raise ValueError(f"upsample_scales must multiply to audio.hop_length = {audio.hop_length}, "
                             f"but got {list(upsample_scales)} (product {math.prod(upsample_scales)})")
        if window_frames < 1:
            raise ValueError(f"window_frames must be >= 1, but got {window_frames}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, but got {lr}")
        if lr_decay_steps is not None and lr_decay_steps < 1:
            raise ValueError(f"lr_decay_steps must be >= 1 or null, but got {lr_decay_steps}")
        if not 0.0 < lr_decay_rate <= 1.0:
            raise ValueError(f"lr_decay_rate must be in (0, 1], but got {lr_decay_rate}")
        if media_seconds <= 0:
            raise ValueError(f"media_seconds must be > 0, but got {media_seconds}")
        self.save_hyperparameters()
        self.audio = audio
        self.dist = make_output_distribution(output, num_mixtures, bits, log_scale_min, quantization_channels, temperature,
                                             init_log_scale)
        self.net = WaveNet(
            in_channels=self.dist.in_channels, out_channels=self.dist.out_channels, layers=layers, stacks=stacks,
            residual_channels=residual_channels, gate_channels=gate_channels, skip_channels=skip_channels,
            kernel_size=kernel_size, dropout=dropout, cond_channels=audio.n_mels, upsample_scales=upsample_scales,
            upsample_mode=upsample_mode, num_speakers=num_speakers, speaker_channels=speaker_channels,
        )
        # the output layer starts at log-scale init_log_scale, not PyTorch's ~0 (see MixtureOfLogistics)
        self.dist.init_output_layer(self.net.head2)

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    def on_fit_start(self) -> None:
        rf = self.receptive_field
        self.print(f"WaveNet receptive field: {rf} samples = {1000 * rf / self.audio.sample_rate:.1f} ms")

    # --- training -----------------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self._trainer
        if not isinstance(batch, SpeechBatch) or trainer is None or trainer.predicting:
            return batch
        if batch.wav is None:
            raise ValueError("WaveNetVocoder trains on waveforms: set the DataModule's load_wav: true")
        speakers = batch.speakers if self.hparams.num_speakers else None
        return cut_windows(batch.wav, batch.wav_lengths, batch.mel, self.audio.hop_length,
                           self.hparams.window_frames, speakers, random=trainer.training)

    def _common_step(self, batch: VocoderWindows, stage: str) -> torch.Tensor:
        wav = batch.wav  # (B, S)
        y_hat = self.net(self.dist.input_features(shift_right(wav)), batch.mel.transpose(1, 2), batch.speakers)
        nll = self.dist.nll(y_hat, wav)  # (B, S)
        loss = (nll * batch.mask).sum() / batch.mask.sum().clamp(min=1)
        on_epoch = stage != "train"
        self.log_dict(
            {f"{stage}/loss": loss, f"{stage}/bits_per_sample": self.dist.bits_per_sample(loss.detach())},
            on_step=not on_epoch, on_epoch=on_epoch, sync_dist=on_epoch, prog_bar=stage != "test",
            batch_size=wav.shape[0],
        )
        return loss

    def training_step(self, batch: VocoderWindows, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: VocoderWindows, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def test_step(self, batch: VocoderWindows, batch_idx: int) -> None:
        self._common_step(batch, "test")

    def configure_optimizers(self) -> Any:
        """Adam; with ``lr_decay_steps``, the rate is multiplied by ``lr_decay_rate`` every that many steps
        (r9y9's ``step_learning_rate_decay``)."""
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
        if self.hparams.lr_decay_steps is None:
            return opt
        schedule = torch.optim.lr_scheduler.StepLR(opt, self.hparams.lr_decay_steps, self.hparams.lr_decay_rate)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # --- inference ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def vocode(self, mel: torch.Tensor, mel_lengths: torch.Tensor | None = None, speakers: torch.Tensor | None = None,
               seed: int | None = None, progress: bool = True) -> list[torch.Tensor]:
        """mel (B, T, n_mels) time-major in [0, 1] -> one waveform (S_i,) per utterance, S_i = frames_i * hop.

        The utterances are generated together (cached fast generation); prints samples/second.
        """
        if mel.dim() != 3 or mel.shape[2] != self.audio.n_mels:
            raise ValueError(f"mel must be (B, T, n_mels={self.audio.n_mels}), but got {tuple(mel.shape)}")
        b, t, _ = mel.shape
        lengths = mel_lengths if mel_lengths is not None else torch.full((b,), t, dtype=torch.long)
        num_samples = t * self.audio.hop_length
        gens = [torch.Generator().manual_seed(seed + i) for i in range(b)] if seed is not None else None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=num_samples, desc=f"vocoding {b} utterance(s)", unit="sample", dynamic_ncols=True)
        start = time.perf_counter()
        wav = self.net.generate(self.dist, num_samples, mel.transpose(1, 2).to(self.device),
                                speakers.to(self.device) if speakers is not None else None, generators=gens,
                                progress=bar.update if bar is not None else None)  # (B, S)
        seconds = time.perf_counter() - start
        if bar is not None:
            bar.update(num_samples - bar.n)  # the last partial thousand
            bar.close()
            print(f"generated {b} x {num_samples} samples in {seconds:.1f} s: "
                  f"{b * num_samples / seconds:.0f} samples/s ({b * num_samples / seconds / self.audio.sample_rate:.3f}x real time)",
                  file=sys.stderr)
        return [wav[i, : int(lengths[i]) * self.audio.hop_length].float().cpu() for i in range(b)]

    def predict_step(self, batch: SpeechBatch, batch_idx: int) -> list[Prediction]:
        """Vocode a batch of the DataModule's predict split (written by ``callbacks.prediction.PredictionWriter``)."""
        speakers = batch.speakers if self.hparams.num_speakers else None
        waves = self.vocode(batch.mel, batch.mel_lengths, speakers)
        return [Prediction(id=utt_id, wav=w, sample_rate=self.audio.sample_rate) for utt_id, w in zip(batch.ids, waves)]

    # --- media --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: SpeechBatch) -> MediaSample:
        """A short vocoded excerpt (the first ``media_seconds``) of each fixed validation utterance."""
        frames = max(1, math.ceil(self.hparams.media_seconds * self.audio.sample_rate / self.audio.hop_length))
        mel = batch.mel[:, :frames]  # (B, frames, n_mels)
        lengths = batch.mel_lengths.clamp(max=frames)
        speakers = batch.speakers if self.hparams.num_speakers else None
        waves = self.vocode(mel, lengths, speakers, seed=0, progress=False)
        audio = torch.zeros(len(waves), max(w.shape[0] for w in waves))
        for i, w in enumerate(waves):
            audio[i, : w.shape[0]] = w
        return MediaSample(ids=list(batch.ids), audio=audio, audio_lengths=torch.tensor([w.shape[0] for w in waves]),
                           audio_config=self.audio, mel_target=batch.mel, mel_lengths=batch.mel_lengths)


def load_mels(path: str | Path, audio: AudioConfig) -> list[tuple[str, torch.Tensor]]:
    """(name, mel (T, n_mels)) for a ``.npy`` mel file (time-major, normalised), a ``.wav`` file, or a folder of
    either; wavs are re-analysed with ``AudioFrontEnd(audio)``."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".wav")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"no .npy or .wav files in {path}")
    front = AudioFrontEnd(audio)
    out = []
    for f in files:
        if f.suffix == ".npy":
            mel = torch.from_numpy(np.load(f)).float()
        elif f.suffix == ".wav":
            mel = front.mel(load_wav(f, audio.sample_rate)).T  # (T, n_mels)
        else:
            raise ValueError(f"{f}: expected a .npy mel file or a .wav file")
        if mel.dim() != 2 or mel.shape[1] != audio.n_mels:
            raise ValueError(f"{f}: expected a (frames, n_mels={audio.n_mels}) mel spectrogram, got {tuple(mel.shape)}")
        out.append((f.stem, mel))
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m zoo.models.wavenet --ckpt CKPT --input PATH --out DIR``: vocode mel files or wavs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--ckpt", required=True, help="a WaveNetVocoder checkpoint")
    parser.add_argument("--input", required=True, help=".npy mel file(s) (frames, n_mels) or .wav file(s), or a folder")
    parser.add_argument("--out", required=True, help="folder for the generated wavs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # run as ``python -m`` this file is ``__main__``; checkpoints name the class by its importable module path
    from zoo.models.wavenet import WaveNetVocoder as vocoder_class

    model = vocoder_class.load_from_checkpoint(args.ckpt, map_location="cpu").eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, mel in load_mels(args.input, model.audio):
        (wav,) = model.vocode(mel[None], seed=args.seed)
        save_wav(out / f"{name}.wav", wav, model.audio.sample_rate)
        print(f"{out / name}.wav: {wav.shape[0] / model.audio.sample_rate:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
