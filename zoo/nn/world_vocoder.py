"""A convolutional mel spectrogram -> WORLD parameter network: the learnt front half of a WORLD vocoder (Morise et al.
2016), mapping frames to the parameters ``zoo.world.world_synthesize`` turns into a waveform.

Plain ``torch.nn``: (B, T, n_mels) -> (B, T, world_dim), every output frame seeing ``receptive_field`` mel frames
around it. Outputs are on the training data's standardised scale (the ``mean``/``std`` buffers, set from the data
and saved with the weights); the voicing channel is a logit.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.config import block_config, check_positive


@block_config
class MelToWorldConfig:
    """``layers`` residual blocks (conv of ``kernel_size`` over ``channels``, batch norm, GELU) between an input and
    a 1 x 1 output convolution; block i's conv is dilated by ``dilation_base`` ** i (1: no dilation). Shapes: mel
    (B, T, n_mels) -> (B, T, world_dim)."""

    channels: int = 256
    layers: int = 5
    kernel_size: int = 5
    dilation_base: int = 1

    def __post_init__(self) -> None:
        check_positive("MelToWorldConfig", channels=self.channels, layers=self.layers, kernel_size=self.kernel_size,
                       dilation_base=self.dilation_base)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"MelToWorldConfig.kernel_size must be odd, but got {self.kernel_size}")


class _Block(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return h + nn.functional.gelu(self.norm(self.conv(h)))


class MelToWorld(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor
    scale_set: torch.Tensor

    def __init__(self, config: MelToWorldConfig, n_mels: int, world_dim: int) -> None:
        super().__init__()
        check_positive("MelToWorld", n_mels=n_mels, world_dim=world_dim)
        self.config = c = config
        self.inp = nn.Conv1d(n_mels, c.channels, c.kernel_size, padding=c.kernel_size // 2)
        self.blocks = nn.ModuleList(_Block(c.channels, c.kernel_size, c.dilation_base**i) for i in range(c.layers))
        self.out = nn.Conv1d(c.channels, world_dim, 1)
        self.register_buffer("mean", torch.zeros(world_dim))
        self.register_buffer("std", torch.ones(world_dim))
        self.register_buffer("scale_set", torch.tensor(False))

    @property
    def receptive_field(self) -> int:
        c = self.config
        return (c.kernel_size - 1) * (1 + sum(c.dilation_base**i for i in range(c.layers))) + 1

    def set_scale(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The training targets' per-parameter mean and std (``WorldVocoderDataModule.world_stats``)."""
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"expected ({self.mean.numel()},) mean and std, but got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not (std > 0).all():
            raise ValueError("every std must be > 0")
        self.mean.copy_(mean)
        self.std.copy_(std)
        self.scale_set.fill_(True)

    def standardise(self, world: torch.Tensor) -> torch.Tensor:
        """(..., world_dim) parameters -> the network's output scale (voicing left as 0/1)."""
        return (world - self.mean) / self.std

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) -> (B, T, world_dim) standardised parameters, the last channel the voicing logit."""
        h = self.inp(mel.transpose(1, 2))  # (B, C, T)
        for block in self.blocks:
            h = block(h)
        return self.out(h).transpose(1, 2)

    def parameters_from(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) -> (B, T, world_dim) WORLD parameters on their own scale, voicing as a probability."""
        z = self(mel)
        world = z * self.std + self.mean
        return torch.cat([world[..., :-1], torch.sigmoid(z[..., -1:])], dim=-1)
