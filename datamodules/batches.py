"""The batch types the DataModules yield (Lightning moves dataclasses of tensors to the device as a whole)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageBatch:
    """A batch of images with their class labels."""

    images: torch.Tensor  # (B, C, H, W) float in [0, 1]
    labels: torch.Tensor  # (B,) int64


@dataclass
class SpeechBatch:
    """A padded batch of utterances for TTS and vocoders; ``None`` for features the DataModule was not asked for.

    Spectrograms are time-major, padded with 0 (the normalised floor, i.e. silence); lengths say what is real.
    """

    ids: list[str]
    text: torch.Tensor  # (B, L) int64, padded with the symbol table's pad id
    text_lengths: torch.Tensor  # (B,) int64, including EOS
    mel: torch.Tensor | None  # (B, T, n_mels) float32
    mel_lengths: torch.Tensor | None  # (B,) int64, frames
    linear: torch.Tensor | None = None  # (B, T, n_freq) float32
    wav: torch.Tensor | None = None  # (B, S) float32 in [-1, 1]
    wav_lengths: torch.Tensor | None = None  # (B,) int64, samples
    speakers: torch.Tensor | None = None  # (B,) int64 speaker index


@dataclass
class ParallelBatch:
    """A padded batch of parallel utterances (same prompt, source and target speaker) for voice conversion."""

    ids: list[str]
    src_mel: torch.Tensor  # (B, T_src, n_mels)
    src_lengths: torch.Tensor  # (B,)
    tgt_mel: torch.Tensor  # (B, T_tgt, n_mels)
    tgt_lengths: torch.Tensor  # (B,)
    text: torch.Tensor  # (B, L) the prompt's symbol ids (for analysis and TTS-style auxiliary losses)
    text_lengths: torch.Tensor  # (B,)
    # (B, T_tgt, world_dim) the target's WORLD parameters (zoo.world layout, on their own scale), frame-aligned with
    # tgt_mel, when the DataModule was asked for them (CMUArcticDataModule target_features: world)
    tgt_world: torch.Tensor | None = None


def pad_sequences(seqs: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length (T_i, ...) tensors into (B, T_max, ...) plus their lengths (B,)."""
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths
