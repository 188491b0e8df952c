"""WaveNet's output distributions: how a net's output channels parametrise p(x_t | x_<t), over the pure losses
and samplers of ``zoo.losses.mixture`` (discretised mixture of logistics, single Gaussian, mu-law categorical).

``OutputConfig`` is the output block's hyper-parameters (one declaration each); ``make_output_distribution`` turns
it into the object the vocoder trains and generates with. Not an ``nn.Module``: a distribution has no weights, it
only reads (and, at ``init_output_layer``, initialises) the net's last layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.audio import mu_law_decode, mu_law_encode
from zoo.config import block_config, check_positive
from zoo.losses.mixture import (
    bits_per_sample,
    categorical_nll,
    discretized_mix_logistic_nll,
    gaussian_nll,
    sample_categorical,
    sample_discretized_mix_logistic,
    sample_gaussian,
)

OutputKind = Literal["mol", "gaussian", "categorical"]
Generators = torch.Generator | Sequence[torch.Generator] | None


@block_config
class OutputConfig:
    """WaveNet's output block: ``kind`` "mol" (``num_mixtures`` logistics over ``2^bits`` levels), "gaussian" or
    "categorical" (softmax over ``quantization_channels`` mu-law levels, sampled at ``temperature``); the
    continuous kinds bound their log-scales below at ``log_scale_min`` and start them at ``init_log_scale`` (None:
    PyTorch's default output bias; see ``MixtureOfLogistics``)."""

    kind: OutputKind = "mol"
    num_mixtures: int = 10
    bits: int = 16
    log_scale_min: float = -7.0
    init_log_scale: float | None = -3.0
    quantization_channels: int = 256
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("mol", "gaussian", "categorical"):
            raise ValueError(f"OutputConfig.kind must be 'mol', 'gaussian' or 'categorical', but got {self.kind!r}")
        # the rest is checked where the distribution is made (MixtureOfLogistics, ...), which direct users share
        check_positive("OutputConfig", quantization_channels=self.quantization_channels)




class OutputDistribution:
    """How WaveNet's output channels parametrise p(x_t | x_<t), and how samples are fed back as input.

    ``noise_channels`` uniform (or normal) draws per sample and utterance drive ``sample``; drawing them per
    utterance from its own generator (``draw_noise``) makes batched generation equal per-utterance generation.
    """

    out_channels: int
    in_channels: int
    noise_channels: int
    gaussian_noise: bool = False

    def nll(self, y_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood in nats. y_hat (B, out_channels, T), wav (B, T) -> (B, T)."""
        raise NotImplementedError

    def bits_per_sample(self, nll: torch.Tensor) -> torch.Tensor:
        return bits_per_sample(nll)

    def sample(self, y_hat: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Waveform samples (B, T) in [-1, 1] from y_hat (B, out_channels, T) and noise (B, noise_channels, T)."""
        raise NotImplementedError

    def input_features(self, wav: torch.Tensor) -> torch.Tensor:
        """What the net reads for each past sample: wav (B, T) in [-1, 1] -> (B, in_channels, T)."""
        return wav.unsqueeze(1)

    def init_output_layer(self, head: nn.Conv1d) -> None:
        """Set the bias of the net's last layer so training starts from a sensible distribution (default: keep it)."""

    def draw_noise(self, batch: int, steps: int, generators: Generators, like: torch.Tensor) -> torch.Tensor:
        """(B, noise_channels, steps) noise; row b from ``generators[b]`` when a list is given."""
        draw = torch.randn if self.gaussian_noise else torch.rand
        shape = (self.noise_channels, steps)
        if generators is None or isinstance(generators, torch.Generator):
            return draw((batch, *shape), generator=generators, dtype=like.dtype, device=like.device)
        if len(generators) != batch:
            raise ValueError(f"got {len(generators)} generators for a batch of {batch}")
        return torch.stack([draw(shape, generator=g, dtype=like.dtype, device=like.device) for g in generators])


def _check_init_log_scale(init_log_scale: float | None, log_scale_min: float) -> None:
    if init_log_scale is not None and init_log_scale < log_scale_min:
        raise ValueError(f"init_log_scale must be >= log_scale_min = {log_scale_min}, but got {init_log_scale}")


class MixtureOfLogistics(OutputDistribution):
    """Discretised mixture of ``num_mixtures`` logistics over ``2^bits`` levels (PixelCNN++); 3M output channels.

    ``init_output_layer`` starts every component's log-scale at ``init_log_scale`` (None: PyTorch's default
    bias, log-scales near 0). Near 0 means logistics of scale ~1, wider than the whole [-1, 1] signal (about 17
    bits per sample, worse than uniform); with Adam at 1e-3 the first tens of steps then shrink the scales by
    saturating the gated units (most tanh inputs past ±3), after which the outputs no longer depend on the past
    samples and the model is stuck at the amplitude marginal (docs/results/wavenet.md). -3 (scale 0.05) is the
    spread of speech in [-1, 1].
    """

    in_channels = 1

    def __init__(self, num_mixtures: int = 10, bits: int = 16, log_scale_min: float = -7.0,
                 init_log_scale: float | None = -3.0) -> None:
        if num_mixtures < 1:
            raise ValueError(f"num_mixtures must be >= 1, but got {num_mixtures}")
        if not 2 <= bits <= 24:
            raise ValueError(f"bits must be in [2, 24], but got {bits}")
        _check_init_log_scale(init_log_scale, log_scale_min)
        self.num_mixtures, self.num_classes, self.log_scale_min = num_mixtures, 2**bits, log_scale_min
        self.init_log_scale = init_log_scale
        self.out_channels = 3 * num_mixtures
        self.noise_channels = num_mixtures + 1

    @torch.no_grad()
    def init_output_layer(self, head: nn.Conv1d) -> None:
        if self.init_log_scale is not None:
            head.bias[2 * self.num_mixtures :] = self.init_log_scale  # the log-scale channels

    def nll(self, y_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        return discretized_mix_logistic_nll(y_hat, wav, self.num_classes, self.log_scale_min, reduce=False)

    def sample(self, y_hat: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return sample_discretized_mix_logistic(y_hat, self.log_scale_min, uniform=noise)


class SingleGaussian(OutputDistribution):
    """One Gaussian (mean, bounded log-scale): a density, so its NLL goes below 0 as the model sharpens.

    Its ``bits_per_sample`` is that of the density integrated over a 16-bit bin, ``-log2(p(x) * 2 / (2^16 - 1))``,
    comparable with the mixture's.
    """

    in_channels = 1
    out_channels = 2
    noise_channels = 1
    gaussian_noise = True

    def __init__(self, log_scale_min: float = -7.0, bits: int = 16, init_log_scale: float | None = -3.0) -> None:
        _check_init_log_scale(init_log_scale, log_scale_min)
        self.log_scale_min, self.init_log_scale = log_scale_min, init_log_scale
        self.log_bin = math.log(2.0 / (2**bits - 1))

    @torch.no_grad()
    def init_output_layer(self, head: nn.Conv1d) -> None:
        """Start the log-scale at ``init_log_scale`` (see ``MixtureOfLogistics``); None keeps PyTorch's default."""
        if self.init_log_scale is not None:
            head.bias[1] = self.init_log_scale

    def nll(self, y_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(y_hat, wav, self.log_scale_min, reduce=False)

    def bits_per_sample(self, nll: torch.Tensor) -> torch.Tensor:
        return bits_per_sample(nll - self.log_bin)

    def sample(self, y_hat: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return sample_gaussian(y_hat, self.log_scale_min, normal=noise[:, 0])


class MuLawCategorical(OutputDistribution):
    """Softmax over ``quantization_channels`` mu-law levels (the original WaveNet); input is their one-hot."""

    def __init__(self, quantization_channels: int = 256, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, but got {temperature}")
        self.quantization_channels, self.temperature = quantization_channels, temperature
        self.in_channels = self.out_channels = self.noise_channels = quantization_channels

    def nll(self, y_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        return categorical_nll(y_hat, mu_law_encode(wav, self.quantization_channels), reduce=False)

    def sample(self, y_hat: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        ids = sample_categorical(y_hat, self.temperature, uniform=noise)  # (B, T)
        return mu_law_decode(ids, self.quantization_channels).to(y_hat.dtype)

    def input_features(self, wav: torch.Tensor) -> torch.Tensor:
        ids = mu_law_encode(wav, self.quantization_channels)  # (B, T)
        return F.one_hot(ids, self.quantization_channels).transpose(1, 2).to(wav.dtype)  # (B, Q, T)


def make_output_distribution(config: OutputConfig = OutputConfig()) -> OutputDistribution:
    if config.kind == "mol":
        return MixtureOfLogistics(config.num_mixtures, config.bits, config.log_scale_min, config.init_log_scale)
    if config.kind == "gaussian":
        return SingleGaussian(config.log_scale_min, config.bits, config.init_log_scale)
    return MuLawCategorical(config.quantization_channels, config.temperature)


__all__ = ["Generators", "MixtureOfLogistics", "MuLawCategorical", "OutputConfig", "OutputDistribution", "OutputKind",
           "SingleGaussian", "make_output_distribution"]
