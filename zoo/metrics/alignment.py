"""Attention-alignment figures shared by the attention seq2seq experiments (Tacotron, Tacotron 2, voice
conversion), computed on teacher-forced validation alignments.

- **focus rate** (Ren et al. 2019, FastSpeech): for each decoder step the largest attention weight, averaged
  over the valid decoder steps of an utterance, then over the batch. 1 means every step attends to a single
  encoder step; 1 / T_enc means uniform attention.
- **diagonality**: the share of attention mass within a band of +-``band`` (fraction of T_enc, default 10 %)
  around the straight path from (0, 0) to (T_dec, T_enc), measured at cell centres, averaged over the batch.
  A monotonic alignment of roughly constant speed scores near 1; a stuck or scattered one scores low.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.sequence import lengths_to_mask


def _valid(alignments: Tensor, dec_lengths: Tensor, enc_lengths: Tensor) -> tuple[Tensor, Tensor]:
    _, t_dec, t_enc = alignments.shape
    dec = lengths_to_mask(dec_lengths.to(alignments.device), t_dec)  # (B, T_dec)
    enc = lengths_to_mask(enc_lengths.to(alignments.device), t_enc)  # (B, T_enc)
    return dec, dec.unsqueeze(2) & enc.unsqueeze(1)


def focus_rate(alignments: Tensor, dec_lengths: Tensor, enc_lengths: Tensor) -> Tensor:
    """alignments (B, T_dec, T_enc); lengths (B,). Returns a float32 scalar in [0, 1]."""
    dec, cells = _valid(alignments, dec_lengths, enc_lengths)
    peaks = alignments.float().masked_fill(~cells, 0.0).amax(dim=2)  # (B, T_dec)
    per_utt = (peaks * dec).sum(1) / dec.sum(1).clamp(min=1)  # (B,)
    return per_utt.mean()


def diagonality(alignments: Tensor, dec_lengths: Tensor, enc_lengths: Tensor, band: float = 0.1) -> Tensor:
    """alignments (B, T_dec, T_enc); lengths (B,). Returns a float32 scalar in [0, 1]."""
    if not 0.0 < band < 1.0:
        raise ValueError(f"band must be in (0, 1), but got {band}")
    _, cells = _valid(alignments, dec_lengths, enc_lengths)
    _, t_dec, t_enc = alignments.shape
    device = alignments.device
    t = (torch.arange(t_dec, device=device) + 0.5) / dec_lengths.to(device).unsqueeze(1).float()  # (B, T_dec)
    n = (torch.arange(t_enc, device=device) + 0.5) / enc_lengths.to(device).unsqueeze(1).float()  # (B, T_enc)
    near = (n.unsqueeze(1) - t.unsqueeze(2)).abs() <= band + 1e-6  # (B, T_dec, T_enc); eps: float32 band edges
    mass = alignments.float().masked_fill(~cells, 0.0)  # (B, T_dec, T_enc)
    inside = mass.masked_fill(~near, 0.0).sum(dim=(1, 2))  # (B,)
    return (inside / mass.sum(dim=(1, 2)).clamp(min=1e-8)).mean()


__all__ = ["diagonality", "focus_rate"]
