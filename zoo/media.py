"""The contract between experiments and the media-logging callbacks.

A LightningModule that wants media logged implements ``media_sample(batch) -> MediaSample``; the callbacks in
``callbacks/`` call it on rank zero, on a fixed batch of validation examples (``datamodule.media_batch(n)``),
once per logging epoch, and draw whatever fields are filled in.
"""

from __future__ import annotations

from dataclasses import dataclass

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
