"""The WORLD vocoder's regression loss, a pure function."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def world_parameter_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) standardised predictions (last channel the voicing logit), (B, T, D) standardised targets (last
    channel voicing 0/1), (B, T) mask of real frames -> (mean absolute error of the D - 1 continuous parameters,
    binary cross-entropy of the voicing), each averaged over the real frames."""
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"expected pred and target (B, T, D) and mask (B, T), but got {tuple(pred.shape)}, "
                         f"{tuple(target.shape)} and {tuple(mask.shape)}")
    m = mask.to(pred.dtype)
    frames = m.sum().clamp(min=1)
    l1 = ((pred[..., :-1] - target[..., :-1]).abs().mean(-1) * m).sum() / frames
    bce = (F.binary_cross_entropy_with_logits(pred[..., -1], target[..., -1], reduction="none") * m).sum() / frames
    return l1, bce


__all__ = ["world_parameter_loss"]
