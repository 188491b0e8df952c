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
from zoo.config import block_config, check_positive, config_from_value, freeze_sequences
from zoo.losses.output_distribution import OutputDistribution
from zoo.nn.wavenet import WaveNet, WaveNetConfig, shift_right


@block_config
class WaveNetTrainingConfig:
    """How the vocoder trains: windows of ``window_frames`` mel frames per utterance; Adam (``lr``, ``betas``),
    with ``lr_decay_steps`` the rate multiplied by ``lr_decay_rate`` every that many steps (r9y9's
    ``step_learning_rate_decay``; None: constant); ``media_seconds`` of each logged validation utterance vocoded."""

    window_frames: int = 8
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay_steps: int | None = None
    lr_decay_rate: float = 0.5
    media_seconds: float = 0.25

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_positive("WaveNetTrainingConfig", window_frames=self.window_frames, lr=self.lr,
                       media_seconds=self.media_seconds)
        if self.lr_decay_steps is not None and self.lr_decay_steps < 1:
            raise ValueError(f"WaveNetTrainingConfig.lr_decay_steps must be >= 1 or null, but got {self.lr_decay_steps}")
        if not 0.0 < self.lr_decay_rate <= 1.0:
            raise ValueError(f"WaveNetTrainingConfig.lr_decay_rate must be in (0, 1], but got {self.lr_decay_rate}")


class WaveNetVocoder(L.LightningModule):
    """Mel spectrogram → waveform with a conditional WaveNet; ``net`` defaults to r9y9's 24-layer MoL recipe
    (``--model.net.residual_channels 64``, ``--model.net.output.kind gaussian``), the rest is ``training``."""

    def __init__(
        self,
        *,
        audio: AudioConfig = AudioConfig(),
        net: WaveNetConfig = WaveNetConfig(),
        training: WaveNetTrainingConfig = WaveNetTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        self.audio = config_from_value(AudioConfig, audio, "audio")
        self.net_config = net = config_from_value(WaveNetConfig, net, "net")
        self.training_config = config_from_value(WaveNetTrainingConfig, training, "training")
        if math.prod(net.upsample_scales) != self.audio.hop_length:
            raise ValueError(f"net.upsample_scales must multiply to audio.hop_length = {self.audio.hop_length}, "
                             f"but got {list(net.upsample_scales)} (product {math.prod(net.upsample_scales)})")
        self.net = WaveNet(net, cond_channels=self.audio.n_mels)

    @property
    def dist(self) -> OutputDistribution:
        return self.net.dist

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
        speakers = batch.speakers if self.net_config.num_speakers else None
        return cut_windows(batch.wav, batch.wav_lengths, batch.mel, self.audio.hop_length,
                           self.training_config.window_frames, speakers, random=trainer.training)

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
        hp = self.training_config
        opt = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=hp.betas)
        if hp.lr_decay_steps is None:
            return opt
        schedule = torch.optim.lr_scheduler.StepLR(opt, hp.lr_decay_steps, hp.lr_decay_rate)
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
        wav = self.net.generate(num_samples, mel.transpose(1, 2).to(self.device),
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
        speakers = batch.speakers if self.net_config.num_speakers else None
        waves = self.vocode(batch.mel, batch.mel_lengths, speakers)
        return [Prediction(id=utt_id, wav=w, sample_rate=self.audio.sample_rate) for utt_id, w in zip(batch.ids, waves)]

    # --- media --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: SpeechBatch) -> MediaSample:
        """A short vocoded excerpt (the first ``media_seconds``) of each fixed validation utterance."""
        frames = max(1, math.ceil(self.training_config.media_seconds * self.audio.sample_rate / self.audio.hop_length))
        mel = batch.mel[:, :frames]  # (B, frames, n_mels)
        lengths = batch.mel_lengths.clamp(max=frames)
        speakers = batch.speakers if self.net_config.num_speakers else None
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
    from zoo.checkpoints import load_experiment

    # by the importable class path (run as ``python -m`` this file is ``__main__``), through the zoo's one loader
    model = load_experiment(args.ckpt, {"zoo.models.wavenet.WaveNetVocoder": "a WaveNet vocoder"}, "--ckpt")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, mel in load_mels(args.input, model.audio):
        (wav,) = model.vocode(mel[None], seed=args.seed)
        save_wav(out / f"{name}.wav", wav, model.audio.sample_rate)
        print(f"{out / name}.wav: {wav.shape[0] / model.audio.sample_rate:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
