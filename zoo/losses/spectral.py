"""Spectrogram losses, as pure functions over image-shaped crops (B, C, F, T): frequency bins by frames."""

from __future__ import annotations

import torch

from zoo.metrics.spectral import global_variance


def global_variance_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean over crops, channels and bins of |log(GV(pred) + eps) − log(GV(target) + eps)| -> ().

    GV is the per-bin variance over the crop's frames (the global variance of Toda & Tokuda 2007, whose
    parameter generation adds a term that keeps the generated trajectory's GV near the natural one's; here that
    term is a loss on the generator). The log makes it a ratio: a crop at half the target's variance costs log 2
    whatever the level. ``eps`` (on the model's scale) keeps bins that are silent in both from dominating.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, but got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.dim() != 4:
        raise ValueError(f"expected crops shaped (B, C, F, T), but got {tuple(pred.shape)}")
    b, c, f, t = pred.shape
    lengths = torch.full((b * c,), t, device=pred.device)

    def gv(x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T) -> (B*C, F)
        return global_variance(x.reshape(b * c, f, t).transpose(1, 2), lengths)

    return ((gv(pred) + eps).log() - (gv(target) + eps).log()).abs().mean()
