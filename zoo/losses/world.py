"""The WORLD vocoder's regression loss, a pure function."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def world_parameter_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                         weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) standardised predictions (last channel the voicing logit), (B, T, D) standardised targets (last
    channel voicing 0/1), (B, T) mask of real frames, optional (D - 1,) non-negative weights of the continuous
    channels (None: all 1) -> (weighted mean absolute error of the D - 1 continuous parameters, i.e. the sum of
    weight x |error| over the channels divided by D - 1; binary cross-entropy of the voicing), each averaged over the
    real frames."""
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"expected pred and target (B, T, D) and mask (B, T), but got {tuple(pred.shape)}, "
                         f"{tuple(target.shape)} and {tuple(mask.shape)}")
    m = mask.to(pred.dtype)
    frames = m.sum().clamp(min=1)
    err = (pred[..., :-1] - target[..., :-1]).abs()  # (B, T, D - 1)
    if weights is not None:
        if weights.shape != err.shape[-1:] or bool((weights < 0).any()):
            raise ValueError(f"weights must be ({err.shape[-1]},) and non-negative, but got {tuple(weights.shape)}")
        err = err * weights.to(err)
    l1 = (err.mean(-1) * m).sum() / frames
    bce = (F.binary_cross_entropy_with_logits(pred[..., -1], target[..., -1], reduction="none") * m).sum() / frames
    return l1, bce


__all__ = ["world_parameter_loss"]
