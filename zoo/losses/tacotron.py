"""Losses of the Tacotron family (and of every attention decoder built on it) as pure functions."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.sequence import lengths_to_mask

SpectrogramLoss = Literal["l1", "mse"]


def masked_spectrogram_loss(pred: Tensor, target: Tensor, lengths: Tensor, kind: SpectrogramLoss = "l1",
                            channel_weights: Tensor | None = None) -> Tensor:
    """Mean L1 (Tacotron) or squared (Tacotron 2) error over the valid frames and every channel.

    pred, target (B, T, C); lengths (B,); optional (C,) non-negative ``channel_weights`` multiplying each channel's
    error (None: all 1; e.g. a stream weight on one WORLD parameter). Padded frames never count: the (weighted) sum over
    valid cells is divided by (number of valid frames) * C. Returns a float32 scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, but got {tuple(pred.shape)} and {tuple(target.shape)}")
    if kind not in ("l1", "mse"):
        raise ValueError(f"kind must be 'l1' or 'mse', but got {kind!r}")
    diff = pred.float() - target.float()  # (B, T, C)
    error = diff.abs() if kind == "l1" else diff.square()
    if channel_weights is not None:
        if channel_weights.shape != error.shape[-1:] or bool((channel_weights < 0).any()):
            raise ValueError(f"channel_weights must be ({error.shape[-1]},) and non-negative, but got "
                             f"{tuple(channel_weights.shape)}")
        error = error * channel_weights.to(error)
    valid = lengths_to_mask(lengths.to(pred.device), pred.shape[1]).unsqueeze(-1)  # (B, T, 1)
    return error.masked_fill(~valid, 0.0).sum() / (valid.sum() * pred.shape[2]).clamp(min=1)


def stop_targets(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) float stop targets: 1 from each utterance's last valid frame on."""
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return (positions.unsqueeze(0) >= (lengths.unsqueeze(1) - 1)).float()  # (B, T)


def stop_token_loss(logits: Tensor, lengths: Tensor, pos_weight: float = 1.0) -> Tensor:
    """Binary cross-entropy of stop-token logits (B, T) against ``stop_targets(lengths, T)``, averaged over
    every frame of the padded batch (as NVIDIA's Tacotron 2: the padding past an utterance's end is "stop" too,
    which balances the one positive frame per utterance). ``pos_weight`` > 1 weights the positives further."""
    if pos_weight <= 0:
        raise ValueError(f"pos_weight must be positive, but got {pos_weight}")
    targets = stop_targets(lengths.to(logits.device), logits.shape[1])  # (B, T)
    weight = torch.tensor(pos_weight, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=weight)


def guided_attention_loss(
    alignments: Tensor,
    dec_lengths: Tensor,
    enc_lengths: Tensor,
    g: float = 0.2,
) -> Tensor:
    """Guided attention loss (Tachibana et al. 2017): mean of A * W over valid (decoder, encoder) cells.

    alignments (B, T_dec, T_enc); dec_lengths, enc_lengths (B,). For decoder step t of T and encoder
    step n of N (this utterance's lengths), W = 1 - exp(-(n/N - t/T)^2 / (2 g^2)). Returns a float32
    scalar: the sum over every valid cell of the batch divided by their count.
    """
    if not g > 0:
        raise ValueError(f"g must be positive, but got {g}")
    batch, t_dec, t_enc = alignments.shape
    device = alignments.device
    dec_lengths = dec_lengths.to(device)
    enc_lengths = enc_lengths.to(device)
    t = torch.arange(t_dec, device=device, dtype=torch.float32) / dec_lengths.unsqueeze(1).float()  # (B, T_dec)
    n = torch.arange(t_enc, device=device, dtype=torch.float32) / enc_lengths.unsqueeze(1).float()  # (B, T_enc)
    penalty = 1.0 - torch.exp(-((n.unsqueeze(1) - t.unsqueeze(2)) ** 2) / (2.0 * g * g))  # (B, T_dec, T_enc)
    valid = lengths_to_mask(dec_lengths, t_dec).unsqueeze(2) & lengths_to_mask(enc_lengths, t_enc).unsqueeze(1)
    weighted = (alignments.float() * penalty).masked_fill(~valid, 0.0)  # (B, T_dec, T_enc)
    return weighted.sum() / valid.sum().clamp(min=1)


__all__ = ["guided_attention_loss", "masked_spectrogram_loss", "stop_targets", "stop_token_loss"]
