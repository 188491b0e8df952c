"""From trained checkpoints to wav files, in Python: voice conversion (source wav -> converted wav).

    from zoo.pipeline import VoiceConverter
    vc = VoiceConverter.from_checkpoint("runs/vc/distilled/checkpoints/last.ckpt")
    vc.convert_files(["arctic_b0340.wav"], "converted/")     # or: wav = vc.convert([waveform])[0].wav

The converter computes the source's mel spectrogram with the model's own ``AudioConfig`` (the front end it was trained
on; other sample rates are resampled on load), converts free-running in length-sorted batches on CUDA when present,
and vocodes with Griffin-Lim at the model's ``griffin_lim_power``/``griffin_lim_iters``. ``python -m zoo convert`` is
this class on the command line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from zoo.audio import AudioConfig, AudioFrontEnd, griffin_lim_wav, load_wav, save_wav
from zoo.checkpoints import load_weights_only
from zoo.errors import CheckpointError

VC_CLASS = "zoo.models.vc.VoiceConversion"


class Conversion(NamedTuple):
    """One converted utterance: wav (S,) in [-1, 1]; mel (T, n_mels) normalised; alignment (ceil(T / r), T_enc);
    stopped (False when the max-length guard ended it)."""

    wav: Tensor
    mel: Tensor
    alignment: Tensor
    stopped: bool


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def checkpoint_class(path: str | Path) -> str | None:
    """The LightningModule class a zoo checkpoint was written by (as the CLI records it), or None if unrecorded."""
    return load_weights_only(path).get("hyper_parameters", {}).get("_class_path")


class VoiceConverter:
    """A trained ``VoiceConversion`` (teacher or student) plus a Griffin-Lim vocoder, over waveforms or files."""

    def __init__(self, model: Any, device: str | torch.device | None = None, max_frames: int | None = None) -> None:
        self.model = model.eval().to(_device(device))
        self.audio: AudioConfig = model.audio
        self.front = AudioFrontEnd(self.audio)
        self.max_frames = max_frames

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None,
                        max_frames: int | None = None) -> VoiceConverter:
        """Load a VoiceConversion checkpoint (weights only); another experiment's checkpoint is a CheckpointError
        naming both."""
        from zoo.models.vc import load_model

        saved = checkpoint_class(path)
        if saved is not None and saved != VC_CLASS:
            raise CheckpointError(f"checkpoint {path} was written by {saved}, but voice conversion needs a {VC_CLASS} "
                                  "checkpoint (configs/vc_teacher.yaml or configs/vc_distill.yaml)")
        return cls(load_model(path), device, max_frames)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def mel(self, wav: Tensor) -> Tensor:
        """(S,) waveform at the model's sample rate -> (T, n_mels) normalised mel, as the DataModules cache it."""
        with torch.no_grad():
            return self.front.mel(wav.float().cpu()).T

    @torch.no_grad()
    def convert_mels(self, mels: Sequence[Tensor], batch_size: int = 8) -> list[tuple[Tensor, Tensor, bool]]:
        """(T_i, n_mels) source mels -> [(converted mel (T'_i, n_mels), alignment, stopped)], in input order; batches
        of similar lengths, the max-length guard at twice the longest source of a batch (or ``max_frames``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        for i, m in enumerate(mels):
            if m.ndim != 2 or m.shape[1] != self.audio.n_mels:
                raise ValueError(f"source {i}: expected a (frames, {self.audio.n_mels}) mel, but got {tuple(m.shape)}")
        order = sorted(range(len(mels)), key=lambda i: mels[i].shape[0])
        hp = self.model.hparams
        results: list[Any] = [None] * len(mels)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            lengths = torch.tensor([mels[i].shape[0] for i in idx])
            src = torch.zeros(len(idx), int(lengths.max()), self.audio.n_mels)
            for row, i in enumerate(idx):
                src[row, : mels[i].shape[0]] = mels[i]
            guard = self.max_frames or min(hp.max_decoder_frames, 2 * int(lengths.max()) + 20)
            out = self.model.net.infer(src.to(self.device), lengths.to(self.device), guard, hp.stop_threshold)
            r = self.model.reduction_factor
            for row, i in enumerate(idx):
                n = int(out.lengths[row])
                steps = math.ceil(n / r)
                results[i] = (out.mel_postnet[row, :n].float().cpu(),
                              out.alignments[row, :steps, : int(out.memory_lengths[row])].float().cpu(),
                              bool(out.stopped[row]))
        return results

    def convert(self, wavs: Sequence[Tensor], batch_size: int = 8) -> list[Conversion]:
        """(S_i,) source waveforms at the model's sample rate -> converted utterances, in input order."""
        mels = [self.mel(w) for w in wavs]
        return [Conversion(griffin_lim_wav(mel, self.audio), mel, align, stopped)
                for mel, align, stopped in self.convert_mels(mels, batch_size)]

    def convert_files(self, paths: Sequence[str | Path], out_dir: str | Path, batch_size: int = 8,
                      progress: bool = True, figures: bool = True) -> list[dict[str, Any]]:
        """Convert wav files into ``out_dir/<same name>.wav`` (+ ``<name>.png``, the alignment); returns one record per
        file. Unreadable files are a ``zoo.audio.AudioError`` naming the file, raised before anything is written."""
        from zoo.plotting import save_alignment_figure

        paths = [Path(p) for p in paths]
        if not paths:
            raise ValueError("no wav files to convert")
        names = [p.stem for p in paths]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two inputs would write the same output file: {', '.join(dupes[:5])}")
        wavs = [load_wav(p, self.audio.sample_rate) for p in paths]  # reads (and checks) every file first
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        records = []
        chunks = range(0, len(paths), 4 * batch_size)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="converting", unit="chunk", dynamic_ncols=True)
        for start in chunks:
            part = slice(start, start + 4 * batch_size)
            for path, conv in zip(paths[part], self.convert(wavs[part], batch_size)):
                wav_path = out / f"{path.stem}.wav"
                save_wav(wav_path, conv.wav, self.audio.sample_rate)
                if figures:
                    save_alignment_figure(conv.alignment, out / f"{path.stem}.png",
                                          f"{path.stem}: {conv.mel.shape[0]} frames"
                                          f"{'' if conv.stopped else ' (max-length guard)'}")
                records.append({"source": str(path), "wav": str(wav_path), "frames": int(conv.mel.shape[0]),
                                "stopped": conv.stopped})
        return records


def wav_files(path: str | Path) -> list[Path]:
    """A wav file, or the sorted ``*.wav`` files of a folder; a missing path or an empty folder is a clear error."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.wav"))
        if not files:
            raise FileNotFoundError(f"{path} holds no .wav file")
        return files
    raise FileNotFoundError(f"{path} does not exist")


__all__ = ["Conversion", "VoiceConverter", "checkpoint_class", "wav_files"]
