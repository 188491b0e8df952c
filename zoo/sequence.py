"""Shared helpers for padded sequence batches: masks from lengths, decoder steps of a reduction factor, padding.

The one home of these for nets, losses, metrics and models alike (a low layer: it imports only torch)."""

from __future__ import annotations

import torch
from torch import Tensor


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on valid frames."""
    if max_len is None:
        max_len = int(lengths.max())
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def decoder_steps(frames: Tensor, r: int) -> Tensor:
    """(B,) frame counts -> (B,) decoder steps of a decoder emitting r frames per step: ceil(frames / r)."""
    if r < 1:
        raise ValueError(f"r must be positive, but got {r}")
    return torch.div(frames + r - 1, r, rounding_mode="floor")


def pad_to_multiple(x: Tensor, r: int, dim: int = 1, value: float = 0.0) -> Tensor:
    """Pad ``x`` at the end of ``dim`` with ``value`` so its size there is a multiple of r (``x`` itself if it is)."""
    if r < 1:
        raise ValueError(f"r must be positive, but got {r}")
    extra = (-x.shape[dim]) % r
    if extra == 0:
        return x
    pad_shape = list(x.shape)
    pad_shape[dim] = extra
    return torch.cat([x, x.new_full(pad_shape, value)], dim=dim)


__all__ = ["decoder_steps", "lengths_to_mask", "pad_to_multiple"]
