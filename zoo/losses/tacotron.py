"""Losses of the Tacotron family as pure functions (the guided attention loss lives with the blocks,
``zoo.nn.tacotron_blocks.guided_attention_loss``)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.nn.tacotron_blocks import lengths_to_mask

SpectrogramLoss = Literal["l1", "mse"]


def masked_spectrogram_loss(pred: Tensor, target: Tensor, lengths: Tensor, kind: SpectrogramLoss = "l1") -> Tensor:
    """Mean L1 (Tacotron) or squared (Tacotron 2) error over the valid frames and every channel.

    pred, target (B, T, C); lengths (B,). Padded frames never count: the sum over valid cells is divided by
    (number of valid frames) * C. Returns a float32 scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, but got {tuple(pred.shape)} and {tuple(target.shape)}")
    if kind not in ("l1", "mse"):
        raise ValueError(f"kind must be 'l1' or 'mse', but got {kind!r}")
    diff = pred.float() - target.float()  # (B, T, C)
    error = diff.abs() if kind == "l1" else diff.square()
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


__all__ = ["masked_spectrogram_loss", "stop_targets", "stop_token_loss"]
