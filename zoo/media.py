"""The contract between experiments and the media-logging callbacks.

A LightningModule that wants media logged implements ``media_sample(batch) -> MediaSample``; the callbacks in
``callbacks/`` call it on rank zero, on a fixed batch of validation examples (``datamodule.media_batch(n)``),
once per logging epoch, and draw whatever fields are filled in.

Prediction is the same kind of contract for ``predict``: a model's ``predict_step`` returns a list of
``Prediction`` records and writes nothing; ``callbacks.prediction.PredictionWriter`` writes them with
``write_prediction`` (which ``zoo.pipeline`` uses too), so every stage lays its files out the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from zoo.audio import AudioConfig


@dataclass
class MediaSample:
    """Model outputs for a fixed batch of examples; every field is optional. Tensors may be on any device."""

    ids: list[str] | None = None
    # attention: decoder step x encoder step, with the valid lengths of both axes
    alignments: torch.Tensor | None = None  # (B, T_dec, T_enc)
    decoder_lengths: torch.Tensor | None = None  # (B,)
    encoder_lengths: torch.Tensor | None = None  # (B,)
    # spectrograms, time-major and normalised as the DataModules give them
    mel_input: torch.Tensor | None = None  # (B, T, n_mels) e.g. the blurry input of a post-net
    mel_pred: torch.Tensor | None = None  # (B, T, n_mels)
    mel_target: torch.Tensor | None = None  # (B, T, n_mels)
    mel_lengths: torch.Tensor | None = None  # (B,) valid frames of mel_pred (and of the target when aligned)
    target_lengths: torch.Tensor | None = None  # (B,) valid frames of mel_target when it differs from mel_pred
    # audio: waveforms in [-1, 1]; when absent, the audio callback runs Griffin-Lim on mel_pred with audio_config
    audio: torch.Tensor | None = None  # (B, S)
    audio_lengths: torch.Tensor | None = None  # (B,)
    audio_config: AudioConfig | None = None
    # images in [0, 1], as named grids, e.g. {"samples": (B, 1, 28, 28), "reconstructions": ...}
    images: dict[str, torch.Tensor] | None = None


def autoencoder_media(model: torch.nn.Module, images: torch.Tensor, interpolation_steps: int) -> MediaSample:
    """The image grids of an autoencoding model (``encode``, ``decode``, ``sample``): inputs beside their
    reconstructions, prior samples, and a latent interpolation between the first and last input."""
    from zoo.nn.dcgan import interpolate_latents

    z = model.encode(images)  # (B, Z)
    return MediaSample(images={
        "inputs": images,
        "reconstructions": model.decode(z),
        "samples": model.sample(images.shape[0]),
        "interpolations": model.decode(interpolate_latents(z[0], z[-1], interpolation_steps)),
    })


class Prediction(NamedTuple):
    """One predicted utterance: what ``predict_step`` returns (a list of these) and ``write_prediction`` writes."""

    id: str
    wav: torch.Tensor  # (S,) in [-1, 1]
    sample_rate: int
    mel: torch.Tensor | None = None  # (T, n_mels) normalised: what the wav was vocoded from
    alignment: torch.Tensor | None = None  # (decoder steps, encoder steps) of an attention model
    stopped: bool = True  # False when the max-length guard, not the stop token, ended the utterance
    target_mel: torch.Tensor | None = None  # (T, n_mels) frame-aligned truth: with ``mel``, a pairs_dir row


def write_prediction(folder: str | Path, pred: Prediction, figures: bool = True) -> dict[str, Any]:
    """Write ``<folder>/<id>.wav``, the alignment figure ``<id>.png`` (when there is an alignment and ``figures``),
    ``mels/<id>.npy`` and ``targets/<id>.npy`` (when given; (T, n_mels) float32). Returns a record of what was
    written (paths as strings, and the frame and sample counts); ``mel``/``target`` paths are relative to ``folder``
    (the ``pairs_dir`` convention of ``datamodules.postnet``)."""
    from zoo.audio import save_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wav_path = folder / f"{pred.id}.wav"
    save_wav(wav_path, pred.wav.detach().float().cpu(), pred.sample_rate)
    record: dict[str, Any] = {"id": pred.id, "wav": str(wav_path), "samples": int(pred.wav.shape[0]),
                              "stopped": bool(pred.stopped)}
    if pred.mel is not None:
        record["frames"] = int(pred.mel.shape[0])
    for key, sub, mel in (("mel", "mels", pred.mel), ("target", "targets", pred.target_mel)):
        if mel is not None:
            (folder / sub).mkdir(exist_ok=True)
            np.save(folder / sub / f"{pred.id}.npy", mel.detach().float().cpu().numpy())
            record[key] = f"{sub}/{pred.id}.npy"
    if figures and pred.alignment is not None:
        from zoo.plotting import save_alignment_figure

        frames = record.get("frames", pred.alignment.shape[0])
        save_alignment_figure(pred.alignment, folder / f"{pred.id}.png",
                              f"{pred.id}: {frames} frames{'' if pred.stopped else ' (max-length guard)'}")
        record["figure"] = str(folder / f"{pred.id}.png")
    return record
