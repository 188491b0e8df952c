"""Spectrogram metrics on padded batches (time-major (B, T, n_mels), valid frames given by ``lengths``)."""

from __future__ import annotations

import torch


def _mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    if lengths.min() < 1 or lengths.max() > frames:
        raise ValueError(f"lengths must lie in [1, {frames}], but got {lengths.tolist()}")
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over each utterance's valid frames and all bins. (B, T, F), (B, T, F), (B,) -> (B,)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, but got {tuple(pred.shape)} and {tuple(target.shape)}")
    mask = _mask(lengths, pred.shape[1]).unsqueeze(-1).to(pred.dtype)  # (B, T, 1)
    return ((pred - target).abs() * mask).sum(dim=(1, 2)) / (lengths.to(pred.dtype) * pred.shape[2])


def previous_step_copy(target: torch.Tensor, reduction_factor: int) -> torch.Tensor:
    """The autoregressive decoder's trivial prediction: each decoder step's r frames all equal to the last target frame
    of the step before (what teacher forcing feeds it), zeros (the go frame) for the first. (B, T, F) -> (B, T, F).

    Its error is the floor a teacher-forced frame loss must beat to show that a decoder uses its attention context at
    all: a decoder that only continues its input scores about this."""
    if reduction_factor < 1:
        raise ValueError(f"reduction_factor must be positive, but got {reduction_factor}")
    frames = target.shape[1]
    starts = torch.arange(frames, device=target.device) // reduction_factor * reduction_factor  # (T,) step's first frame
    fed = (starts - 1).clamp(min=0)  # (T,) index of the frame fed to the step
    copy = target[:, fed]  # (B, T, F)
    return copy.masked_fill((starts == 0).view(1, frames, 1), 0.0)


def global_variance(mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-bin variance over each utterance's valid frames (population variance, 1/T). (B, T, F), (B,) -> (B, F).

    The global variance of Toda & Tokuda 2007: over-smoothed (blurry) spectrograms have less of it.
    """
    mask = _mask(lengths, mel.shape[1]).unsqueeze(-1).to(mel.dtype)  # (B, T, 1)
    n = lengths.to(mel.dtype)[:, None]  # (B, 1)
    mean = (mel * mask).sum(dim=1) / n  # (B, F)
    return ((mel - mean[:, None, :]).pow(2) * mask).sum(dim=1) / n  # (B, F)


def global_variance_ratio(pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """GV(pred) / GV(target) per mel bin, averaged over bins: 1.0 is ideal, blurry is < 1. (B, T, F) ×2, (B,) -> (B,).

    ``eps`` is added to both variances so a bin that is constant in the target (e.g. silent above the band
    limit) counts as 1 when the prediction is constant there too, instead of dividing by zero.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, but got {tuple(pred.shape)} and {tuple(target.shape)}")
    return ((global_variance(pred, lengths) + eps) / (global_variance(target, lengths) + eps)).mean(dim=1)
