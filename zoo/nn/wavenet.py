"""WaveNet (van den Oord et al. 2016) as a conditional vocoder, with cached fast generation (Paine et al. 2016).

Bottom-up: ``ConditionUpsampler`` (mel frames → sample rate) → ``_ResidualBlock`` (causal dilated
conv, gated tanh·sigmoid unit, residual and skip 1x1 convs) → ``WaveNet`` (``WaveNetConfig``), whose outputs an
``OutputDistribution`` reads (``zoo.losses.output_distribution``: mixture of logistics, Gaussian or mu-law categorical).

Conventions: the net predicts the distribution of sample ``t`` from samples ``< t``: its input is the waveform
shifted right by one (``shift_right``) and its local conditioning at ``t`` is the mel frame ``t // hop_length``
(``upsample_scales`` multiply to the hop length). Pure ``torch.nn``; no Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit as _expit
from torch import nn

from zoo.config import block_config, check_fraction, check_positive, freeze_sequences
from zoo.losses.output_distribution import Generators, OutputConfig, OutputDistribution, make_output_distribution

UpsampleMode = Literal["transposed", "nearest"]

def shift_right(x: torch.Tensor, initial: torch.Tensor | float = 0.0) -> torch.Tensor:
    """(..., T) -> (..., T) with ``initial`` first: the net's input for predicting every sample of x."""
    first = torch.as_tensor(initial, dtype=x.dtype, device=x.device).expand(*x.shape[:-1], 1)
    return torch.cat([first, x[..., :-1]], dim=-1)


def receptive_field(layers: int, stacks: int, kernel_size: int) -> int:
    """Samples the output at t sees: (kernel_size - 1) * sum of dilations + 1, dilations 1, 2, 4, ... per stack."""
    per_stack = layers // stacks
    return (kernel_size - 1) * stacks * (2**per_stack - 1) + 1


# ---------------------------------------------------------------------------------------------------------------
# Local conditioning: mel frames -> sample rate
# ---------------------------------------------------------------------------------------------------------------


class ConditionUpsampler(nn.Module):
    """Frames (B, C, T_frames) -> (B, C, T_frames * prod(scales)), sample s taking its value from frame s // hop.

    ``transposed``: per scale a ConvTranspose1d with kernel = stride = scale (no overlap, so no checkerboard),
    initialised to nearest-neighbour repetition. ``nearest``: repetition then a per-channel smoothing conv of
    width 2·scale + 1, initialised to a moving average (r9y9's UpsampleNetwork with a frequency kernel of 1).
    """

    def __init__(self, channels: int, scales: Sequence[int], mode: UpsampleMode = "transposed") -> None:
        super().__init__()
        if mode not in ("transposed", "nearest"):
            raise ValueError(f"upsample_mode must be 'transposed' or 'nearest', but got {mode!r}")
        if not scales or any(s < 1 for s in scales):
            raise ValueError(f"upsample_scales must be a non-empty list of ints >= 1, but got {list(scales)}")
        self.scales, self.mode = tuple(scales), mode
        self.layers = nn.ModuleList()
        for s in self.scales:
            if mode == "transposed":
                conv = nn.ConvTranspose1d(channels, channels, kernel_size=s, stride=s)
                with torch.no_grad():
                    conv.weight.zero_()
                    conv.weight[range(channels), range(channels)] = 1.0  # identity per phase = repetition
                    conv.bias.zero_()
            else:
                conv = nn.Conv1d(channels, channels, kernel_size=2 * s + 1, padding=s, groups=channels)
                with torch.no_grad():
                    conv.weight.fill_(1.0 / (2 * s + 1))
                    conv.bias.zero_()
            self.layers.append(conv)

    @property
    def factor(self) -> int:
        return math.prod(self.scales)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        for s, conv in zip(self.scales, self.layers):
            if self.mode == "nearest":
                c = c.repeat_interleave(s, dim=-1)
            c = F.leaky_relu(conv(c), 0.4)  # (B, C, T * s)
        return c


# ---------------------------------------------------------------------------------------------------------------
# The residual stack
# ---------------------------------------------------------------------------------------------------------------


class _ResidualBlock(nn.Module):
    """Causal dilated conv → tanh(a)·sigmoid(b) (+ local and global conditioning) → residual and skip 1x1 convs."""

    def __init__(self, residual_channels: int, gate_channels: int, skip_channels: int, kernel_size: int,
                 dilation: int, cond_channels: int, global_channels: int, dropout: float, residual_out: bool = True) -> None:
        super().__init__()
        self.dilation, self.kernel_size, self.dropout = dilation, kernel_size, dropout
        self.padding = (kernel_size - 1) * dilation  # left only: causal
        self.conv = nn.Conv1d(residual_channels, gate_channels, kernel_size, dilation=dilation)
        self.cond = nn.Conv1d(cond_channels, gate_channels, 1, bias=False) if cond_channels else None
        self.gcond = nn.Conv1d(global_channels, gate_channels, 1, bias=False) if global_channels else None
        half = gate_channels // 2
        self.skip = nn.Conv1d(half, skip_channels, 1)
        # the last block's residual output would feed nothing: it has none (DDP requires every parameter to be used)
        self.out = nn.Conv1d(half, residual_channels, 1) if residual_out else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None, g: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, R, T), c (B, C_cond, T) or None, g (B, C_glob, 1) or None -> residual (B, R, T), skip (B, S, T)."""
        h = F.dropout(x, self.dropout, self.training)
        h = self.conv(F.pad(h, (self.padding, 0)))  # (B, G, T)
        if self.cond is not None and c is not None:
            h = h + self.cond(c)
        if self.gcond is not None and g is not None:
            h = h + self.gcond(g)
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)  # (B, G/2, T)
        if self.out is None:
            return x, self.skip(z)
        # sqrt(0.5) keeps the residual stream's variance from growing with depth (r9y9, DeepVoice 3)
        return (self.out(z) + x) * math.sqrt(0.5), self.skip(z)

    def forward_time_major(self, x: torch.Tensor, c: torch.Tensor | None,
                           g: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` on time-major tensors as two matrix products per block: x (B, T, R), c (B, T, C_cond) or None,
        g (B, 1, C_glob) or None -> residual (B, T, R), skip (B, T, S).

        The dilated conv's k taps and the conditioning are one product of their concatenation [x(t - (k-1)d), ...,
        x(t), c(t)] with the stacked weights; the residual and skip 1x1 convs are one product. On CPU this ran a
        block's forward + backward in 0.75x the time of the four convolutions (bench/README.md).
        """
        batch, time, _ = x.shape
        h = F.pad(F.dropout(x, self.dropout, self.training), (0, 0, self.padding, 0))  # (B, P + T, R), causal
        d = self.dilation
        taps = [h[:, i * d:i * d + time] for i in range(self.kernel_size)]  # tap i reads x(t - (k-1-i) d)
        weights = [self.conv.weight.permute(2, 1, 0).flatten(0, 1)]  # (k * R, G), tap i's rows at [i R, (i+1) R)
        if self.cond is not None and c is not None:
            taps.append(c)
            weights.append(self.cond.weight[..., 0].t())  # (C_cond, G)
        inputs = torch.cat(taps, dim=-1).flatten(0, 1)  # (B * T, k R [+ C_cond])
        gates = torch.addmm(self.conv.bias, inputs, torch.cat(weights)).view(batch, time, -1)  # (B, T, G)
        if self.gcond is not None and g is not None:
            gates = gates + g @ self.gcond.weight[..., 0].t()  # (B, 1, G), one speaker term for every step
        a, b = gates.chunk(2, dim=-1)
        z = torch.tanh(a) * torch.sigmoid(b)  # (B, T, G/2)
        if self.out is None:
            return x, F.linear(z, self.skip.weight[..., 0], self.skip.bias)
        both = F.linear(z, torch.cat([self.out.weight[..., 0], self.skip.weight[..., 0]]),
                        torch.cat([self.out.bias, self.skip.bias]))  # (B, T, R + S)
        residual, skip = both.split([x.shape[-1], self.skip.out_channels], dim=-1)
        return (residual + x) * math.sqrt(0.5), skip


def _as_linear(conv: nn.Conv1d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A 1x1 conv's weight (C_out, C_in, 1) as a matrix for one time step."""
    return conv.weight[..., 0], conv.bias


class _Queue:
    """The last ``(kernel_size - 1) * dilation`` inputs of one layer, in a ring buffer (Paine et al.'s queue)."""

    def __init__(self, batch: int, channels: int, length: int, like: torch.Tensor) -> None:
        self.buf = like.new_zeros(batch, channels, length)  # zeros = the causal padding of the full pass
        self.length, self.pos = length, 0

    def taps(self, x: torch.Tensor, dilation: int, kernel_size: int) -> torch.Tensor:
        """x_t (B, C) -> (B, C, kernel_size): x[t - (k-1)d], ..., x[t - d], x[t] (conv weight order); then push x_t."""
        cols = [self.buf[:, :, (self.pos - j * dilation) % self.length] for j in range(kernel_size - 1, 0, -1)]
        taps = torch.stack([*cols, x], dim=-1)  # a copy: the views in cols include the slot overwritten next
        self.buf[:, :, self.pos] = x  # overwrites x[t - length], which no later step needs
        self.pos = (self.pos + 1) % self.length
        return taps


@block_config
class WaveNetConfig:
    """The WaveNet body and its output: ``layers`` dilated layers in ``stacks`` (dilations 1, 2, 4, ... per stack) of
    ``kernel_size``; r9y9's widths (``gate_channels``, split in tanh and sigmoid halves, ``residual_channels``,
    ``skip_channels``); ``dropout`` before each dilated conv; local conditioning upsampled by ``upsample_scales``
    (they multiply to the hop length) with ``upsample_mode``; ``num_speakers`` > 0 adds a global speaker embedding
    of ``speaker_channels``; ``output`` the distribution the net's last layer parametrises."""

    layers: int = 24
    stacks: int = 4
    residual_channels: int = 512
    gate_channels: int = 512
    skip_channels: int = 256
    kernel_size: int = 3
    dropout: float = 0.0
    upsample_scales: tuple[int, ...] = (4, 4, 4, 4)
    upsample_mode: UpsampleMode = "transposed"
    num_speakers: int = 0
    speaker_channels: int = 16
    output: OutputConfig = OutputConfig()

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_positive("WaveNetConfig", layers=self.layers, stacks=self.stacks, residual_channels=self.residual_channels,
                       gate_channels=self.gate_channels, skip_channels=self.skip_channels,
                       speaker_channels=self.speaker_channels)
        check_fraction("WaveNetConfig", dropout=self.dropout)
        if self.layers % self.stacks != 0:
            raise ValueError(f"WaveNetConfig.layers must be a positive multiple of stacks, but got layers={self.layers}, "
                             f"stacks={self.stacks}")
        if self.gate_channels % 2 != 0:
            raise ValueError(f"WaveNetConfig.gate_channels must be even (tanh and sigmoid halves), but got "
                             f"{self.gate_channels}")
        if self.kernel_size < 2:
            raise ValueError(f"WaveNetConfig.kernel_size must be >= 2, but got {self.kernel_size}")
        if self.num_speakers < 0:
            raise ValueError(f"WaveNetConfig.num_speakers must be >= 0, but got {self.num_speakers}")
        if self.upsample_mode not in ("transposed", "nearest"):
            raise ValueError(f"WaveNetConfig.upsample_mode must be 'transposed' or 'nearest', but got "
                             f"{self.upsample_mode!r}")


class WaveNet(nn.Module):
    """Conditional WaveNet: p(x_t | x_<t, mel, speaker), its outputs read by ``self.dist`` (``config.output``).

    ``cond_channels`` (the mel bands) = 0 disables local conditioning, ``config.num_speakers`` = 0 global
    conditioning. The output layer starts as ``self.dist.init_output_layer`` sets it.
    """

    def __init__(self, config: WaveNetConfig = WaveNetConfig(), cond_channels: int = 80) -> None:
        super().__init__()
        c = config
        self.config = c
        self.dist: OutputDistribution = make_output_distribution(c.output)
        self.layers, self.stacks, self.kernel_size = c.layers, c.stacks, c.kernel_size
        self.first = nn.Conv1d(self.dist.in_channels, c.residual_channels, 1)
        global_channels = c.speaker_channels if c.num_speakers else 0
        self.speaker_embedding = nn.Embedding(c.num_speakers, c.speaker_channels) if c.num_speakers else None
        per_stack = c.layers // c.stacks
        self.blocks = nn.ModuleList(
            _ResidualBlock(c.residual_channels, c.gate_channels, c.skip_channels, c.kernel_size, 2 ** (i % per_stack),
                           cond_channels, global_channels, c.dropout, residual_out=i < c.layers - 1)
            for i in range(c.layers)
        )
        self.upsampler = ConditionUpsampler(cond_channels, c.upsample_scales, c.upsample_mode) if cond_channels else None
        self.head1 = nn.Conv1d(c.skip_channels, c.skip_channels, 1)
        self.head2 = nn.Conv1d(c.skip_channels, self.dist.out_channels, 1)
        self.dist.init_output_layer(self.head2)  # log-scales start at output.init_log_scale, not PyTorch's ~0

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.layers, self.stacks, self.kernel_size)

    @property
    def hop_length(self) -> int | None:
        return self.upsampler.factor if self.upsampler is not None else None

    def upsample(self, mel: torch.Tensor | None, num_samples: int) -> torch.Tensor | None:
        """mel (B, n_mels, T_frames) -> (B, n_mels, num_samples); needs T_frames * hop >= num_samples."""
        if self.upsampler is None or mel is None:
            if self.upsampler is not None:
                raise ValueError("this WaveNet is locally conditioned: pass mel frames")
            return None
        c = self.upsampler(mel)
        if c.shape[-1] < num_samples:
            raise ValueError(f"{mel.shape[-1]} mel frames x hop {self.hop_length} cover {c.shape[-1]} samples, "
                             f"fewer than the {num_samples} asked for")
        return c[..., :num_samples]

    def _speaker(self, speakers: torch.Tensor | None) -> torch.Tensor | None:
        if self.speaker_embedding is None:
            return None
        if speakers is None:
            raise ValueError("this WaveNet is globally conditioned (num_speakers > 0): pass speaker ids")
        return self.speaker_embedding(speakers).unsqueeze(-1)  # (B, C_glob, 1)

    def forward(self, x: torch.Tensor, mel: torch.Tensor | None = None, speakers: torch.Tensor | None = None,
                c: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, in_channels, T): features of the shifted waveform; mel (B, n_mels, T_frames); speakers (B,).

        ``c`` (B, n_mels, T) passes already upsampled conditioning instead of ``mel``. -> (B, out_channels, T).
        """
        if c is None:
            c = self.upsample(mel, x.shape[-1])
        g = self._speaker(speakers)
        if x.device.type == "cpu":
            return self._forward_time_major(x, c, g)
        return self._forward_channel_major(x, c, g)

    def _forward_channel_major(self, x: torch.Tensor, c: torch.Tensor | None, g: torch.Tensor | None) -> torch.Tensor:
        """``forward`` as convolutions over (B, C, T) activations (cuDNN's layout)."""
        h = self.first(x)  # (B, R, T)
        skips = 0.0
        for block in self.blocks:
            h, s = block(h, c, g)
            skips = skips + s
        skips = skips * math.sqrt(1.0 / len(self.blocks))
        return self.head2(F.relu(self.head1(F.relu(skips))))  # (B, out_channels, T)

    def _forward_time_major(self, x: torch.Tensor, c: torch.Tensor | None, g: torch.Tensor | None) -> torch.Tensor:
        """``forward`` on CPU: the same net with (B, T, C) activations, so every 1x1 conv and every block's dilated
        conv + conditioning is one well-shaped matrix product (``_ResidualBlock.forward_time_major``)."""

        def pointwise(conv: nn.Conv1d, h: torch.Tensor) -> torch.Tensor:
            return F.linear(h, conv.weight[..., 0], conv.bias)

        h = pointwise(self.first, x.transpose(1, 2))  # (B, T, R)
        c = c.transpose(1, 2).contiguous() if c is not None else None  # (B, T, C_cond), read by every block
        g = g.transpose(1, 2) if g is not None else None  # (B, 1, C_glob)
        skips = 0.0
        for block in self.blocks:
            h, s = block.forward_time_major(h, c, g)
            skips = skips + s
        skips = skips * math.sqrt(1.0 / len(self.blocks))  # (B, T, S)
        out = pointwise(self.head2, F.relu(pointwise(self.head1, F.relu(skips))))  # (B, T, out_channels)
        return out.transpose(1, 2).contiguous()  # (B, out_channels, T)

    # --- generation -----------------------------------------------------------------------------------------
    def _prepare(self, batch: int, num_samples: int, mel: torch.Tensor | None, speakers: torch.Tensor | None,
                 generators: Generators) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        like = next(self.parameters())
        dist = self.dist
        c = self.upsample(mel, num_samples)  # (B, n_mels, T): the whole utterance's conditioning, computed once
        g = self._speaker(speakers)
        noise = dist.draw_noise(batch, num_samples, generators, like)  # (B, K, T), drawn up front
        x0 = dist.input_features(like.new_zeros(batch, 1))  # silence before the first sample: (B, in_channels, 1)
        return c, g, noise, x0

    @torch.no_grad()
    def generate(self, num_samples: int, mel: torch.Tensor | None = None,
                 speakers: torch.Tensor | None = None, batch_size: int | None = None, generators: Generators = None,
                 progress: Callable[[int], None] | None = None, backend: str = "auto") -> torch.Tensor:
        """Fast generation (Paine et al.): each layer keeps a queue of its past inputs, so a sample costs one step
        of every layer. Returns (B, num_samples) in [-1, 1]. ``batch_size`` is needed only without mel/speakers.

        ``generators``: one ``torch.Generator`` for the batch, or one per utterance (then an utterance's samples do
        not depend on the rest of the batch). ``progress(n)`` is called every 1000 samples. ``backend``: "torch"
        (any device), "numpy" (the same steps in NumPy: on CPU a step of a few small matrix products is bound by
        per-operation overhead, about 1 us in NumPy against several in eager torch) or "auto" (NumPy on CPU in
        float32/float64, else torch); both give the samples of ``generate_naive``.
        """
        batch, dist = _batch_size(mel, speakers, batch_size), self.dist
        c, g, noise, x = self._prepare(batch, num_samples, mel, speakers, generators)
        x = x[..., 0]  # (B, in_channels)
        if backend not in ("auto", "torch", "numpy"):
            raise ValueError(f"backend must be auto, torch or numpy, but got {backend!r}")
        if backend == "numpy" or (backend == "auto" and x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES):
            return _NumpySteps(self, c, g, batch).run(x, noise, num_samples, progress)
        blocks = list(self.blocks)
        queues = [_Queue(batch, b.conv.in_channels, b.padding, x) for b in blocks]
        # Per-step weights laid out once. Everything additive that does not depend on the past goes into one
        # matmul per step for all layers: the conv biases, the local conditioning, the (constant) speaker term.
        conv_wt = [b.conv.weight.flatten(1).t() for b in blocks]  # (R * k, G): rows match taps (B, R, k).flatten(1)
        step_bias, cond_w = _step_terms(blocks, c, g)
        # the skip and residual 1x1 convs read the same gated activations: one matmul, then split
        skip_channels = blocks[0].skip.out_channels
        out_w = [(torch.cat([b.skip.weight[..., 0], b.out.weight[..., 0]]), torch.cat([b.skip.bias, b.out.bias]))
                 if b.out is not None else _as_linear(b.skip) for b in blocks]
        first_w, first_b = _as_linear(self.first)
        h1_w, h2_w = _as_linear(self.head1), _as_linear(self.head2)
        scale_skip, sqrt_half = math.sqrt(1.0 / len(blocks)), math.sqrt(0.5)
        out = x.new_empty(batch, num_samples)
        for t in range(num_samples):
            h = F.linear(x, first_w, first_b)  # (B, R)
            pre = F.linear(c[..., t], cond_w, step_bias) if c is not None else step_bias.expand(batch, -1)
            pre = pre.chunk(len(blocks), dim=1)  # L x (B, G)
            skips = None
            for i, block in enumerate(blocks):
                taps = queues[i].taps(h, block.dilation, block.kernel_size)  # (B, R, k)
                a, b = torch.addmm(pre[i], taps.flatten(1), conv_wt[i]).chunk(2, dim=1)  # (B, G/2) each
                z = F.linear(torch.tanh(a) * torch.sigmoid(b), *out_w[i])  # (B, S + R)
                skips = z[:, :skip_channels] if skips is None else skips + z[:, :skip_channels]
                if block.out is not None:
                    h = (z[:, skip_channels:] + h) * sqrt_half
            y_hat = F.linear(F.relu(F.linear(F.relu(skips * scale_skip), *h1_w)), *h2_w)  # (B, out_channels)
            sample = dist.sample(y_hat.unsqueeze(-1), noise[..., t : t + 1])  # (B, 1)
            out[:, t] = sample[:, 0]
            x = dist.input_features(sample)[..., 0]
            if progress is not None and (t + 1) % 1000 == 0:
                progress(1000)
        return out

    @torch.no_grad()
    def generate_naive(self, num_samples: int, mel: torch.Tensor | None = None,
                       speakers: torch.Tensor | None = None, batch_size: int | None = None,
                       generators: Generators = None) -> torch.Tensor:
        """Reference generation: for every sample, re-run the full net over the last receptive field of inputs
        (all an output depends on, so it equals re-running over the whole prefix). Same noise as ``generate``."""
        batch, dist = _batch_size(mel, speakers, batch_size), self.dist
        c, _, noise, x0 = self._prepare(batch, num_samples, mel, speakers, generators)
        rf = self.receptive_field
        inputs = x0  # (B, in_channels, t + 1): the features of silence, x_0, ..., x_{t-1}
        out = x0.new_empty(batch, num_samples)
        for t in range(num_samples):
            lo = max(0, t + 1 - rf)
            window = inputs[..., lo:]
            c_win = c[..., lo : t + 1] if c is not None else None
            y_hat = self(window, speakers=speakers, c=c_win)[..., -1:]  # (B, out_channels, 1)
            sample = dist.sample(y_hat, noise[..., t : t + 1])  # (B, 1)
            out[:, t] = sample[:, 0]
            inputs = torch.cat([inputs, dist.input_features(sample)], dim=-1)
        return out


_NUMPY_DTYPES = (torch.float32, torch.float64)


def _step_terms(blocks: list[_ResidualBlock], c: torch.Tensor | None,
                g: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What every generation step adds before the dilated convs, for all layers at once: the conv biases plus the
    (constant) speaker term, (L * G,) or (B, L * G), and the local-conditioning weights (L * G, C_cond) or None."""
    step_bias = torch.cat([b.conv.bias for b in blocks])  # (L * G,)
    if g is not None:
        step_bias = step_bias + torch.cat([b.gcond(g)[..., 0] for b in blocks], dim=1)  # (B, L * G)
    return step_bias, torch.cat([b.cond.weight[..., 0] for b in blocks]) if c is not None else None


class _NumpySteps:
    """``WaveNet.generate``'s per-sample loop in NumPy, with the same fusions as the torch loop: the conditioning
    and biases of every layer precomputed for a chunk of samples in one matrix product, the skip and residual
    1x1 convs of a layer in one product. Each layer's queue is a ring of ``(k - 1) * dilation`` past inputs,
    slot ``t mod length``. Sampling stays in torch (the output distribution's own code), one call per sample.

    The dilated conv's past taps are computed a block at a time: for the ``d`` samples t .. t + d - 1 of a layer of
    dilation ``d`` (t a multiple of d), the taps x[t - j d + s] (j = 1 .. k-1, s < d) are all older than t, so their
    part of the conv is one (d, (k-1) R) x ((k-1) R, G) product at the block's first sample, with the block's
    conditioning added; each sample then multiplies only its own input by the current tap's (R, G) weights. At batch
    1 a step streams its weights from memory (bench/README.md), so reading the past taps' weights once per block
    instead of once per sample is what this saves: ~1/3 of the weight reads for 6-layer stacks of kernel 3."""

    CHUNK = 1024  # samples whose conditioning is precomputed at once (rounded up to a multiple of every dilation)

    def __init__(self, net: WaveNet, c: torch.Tensor | None, g: torch.Tensor | None, batch: int) -> None:
        blocks = list(net.blocks)
        k = net.kernel_size
        r = blocks[0].conv.in_channels
        # conv weight (G, R, k) -> (k * R, G), rows ordered as the taps [x_{t-(k-1)d}, ..., x_{t-d}, x_t]; the past
        # taps' rows first, the current tap's last
        conv_w = [as_numpy(b.conv.weight.permute(2, 1, 0).reshape(k * r, -1)) for b in blocks]
        self.past_w = [np.ascontiguousarray(w[: (k - 1) * r]) for w in conv_w]
        self.cur_w = [np.ascontiguousarray(w[(k - 1) * r :]) for w in conv_w]
        self.lengths = [b.padding for b in blocks]
        self.dilations, self.k, self.gate = [b.dilation for b in blocks], k, blocks[0].conv.out_channels
        self.chunk = -(-self.CHUNK // math.lcm(*self.dilations)) * math.lcm(*self.dilations)
        self.skip_channels = blocks[0].skip.out_channels
        self.out_w = [as_numpy(torch.cat([b.skip.weight[..., 0], b.out.weight[..., 0]]).t() if b.out is not None
                            else b.skip.weight[..., 0].t()) for b in blocks]  # (G/2, S + R), (G/2, S) last
        self.out_b = [as_numpy(torch.cat([b.skip.bias, b.out.bias]) if b.out is not None else b.skip.bias) for b in blocks]
        step_bias, self.cond_w = _step_terms(blocks, c, g)
        self.step_bias = step_bias.expand(batch, -1)
        self.c = c
        self.first_w, self.first_b = as_numpy(net.first.weight[..., 0].t()), as_numpy(net.first.bias)
        self.h1_w, self.h1_b = as_numpy(net.head1.weight[..., 0].t()), as_numpy(net.head1.bias)
        self.h2_w, self.h2_b = as_numpy(net.head2.weight[..., 0].t()), as_numpy(net.head2.bias)
        self.scale_skip = math.sqrt(1.0 / len(blocks))
        self.dist = net.dist

    def _pre(self, t0: int, t1: int) -> np.ndarray:
        """(t1 - t0, B, L * G): every layer's conv bias + local + global conditioning for samples t0 .. t1 - 1."""
        if self.c is None:
            return as_numpy(self.step_bias)[None].repeat(t1 - t0, axis=0)
        pre = F.linear(self.c[..., t0:t1].transpose(1, 2), self.cond_w) + self.step_bias.unsqueeze(1)  # (B, n, L*G)
        return np.ascontiguousarray(as_numpy(pre).transpose(1, 0, 2))

    def run(self, x: torch.Tensor, noise: torch.Tensor, num_samples: int,
            progress: Callable[[int], None] | None) -> torch.Tensor:
        x_np = as_numpy(x)  # (B, in_channels)
        batch, r, k, gate = x_np.shape[0], self.first_w.shape[1], self.k, self.gate
        queues = [np.zeros((length, batch, r), dtype=x_np.dtype) for length in self.lengths]
        blocks = [np.zeros((d, batch, gate), dtype=x_np.dtype) for d in self.dilations]  # past taps + conditioning
        half, s, sqrt_half = gate // 2, self.skip_channels, math.sqrt(0.5)
        out = x.new_empty(batch, num_samples)
        for t0 in range(0, num_samples, self.chunk):
            pre_chunk = self._pre(t0, min(t0 + self.chunk, num_samples))  # blocks never straddle two chunks
            for t in range(t0, t0 + pre_chunk.shape[0]):
                h = x_np @ self.first_w + self.first_b  # (B, R)
                skips = None
                for i, queue in enumerate(queues):
                    d, slot = self.dilations[i], t % self.dilations[i]
                    if slot == 0:  # a new block: its past taps are queue rows [(t - j d) mod length, + d)
                        length = self.lengths[i]
                        past = [queue[(t - j * d) % length:][:d] for j in range(k - 1, 0, -1)]
                        taps = past[0] if k == 2 else np.concatenate(past, axis=2)  # (d, B, (k-1) R)
                        n = min(d, t0 + pre_chunk.shape[0] - t)
                        np.add(taps[:n] @ self.past_w[i], pre_chunk[t - t0 : t - t0 + n, :, i * gate : (i + 1) * gate],
                               out=blocks[i][:n])
                    queue[t % self.lengths[i]] = h  # at a block's start its rows were read above
                    gates = blocks[i][slot] + h @ self.cur_w[i]  # (B, G)
                    z = np.tanh(gates[:, :half]) * _expit(gates[:, half:])  # (B, G/2)
                    zo = z @ self.out_w[i] + self.out_b[i]  # (B, S + R)
                    skips = zo[:, :s] if skips is None else skips + zo[:, :s]
                    if zo.shape[1] > s:
                        h = (zo[:, s:] + h) * sqrt_half
                hidden = np.maximum(np.maximum(skips * self.scale_skip, 0) @ self.h1_w + self.h1_b, 0)
                y_hat = torch.from_numpy(hidden @ self.h2_w + self.h2_b)  # (B, out_channels)
                sample = self.dist.sample(y_hat.unsqueeze(-1), noise[..., t : t + 1])  # (B, 1)
                out[:, t] = sample[:, 0]
                x_np = as_numpy(self.dist.input_features(sample)[..., 0])
                if progress is not None and (t + 1) % 1000 == 0:
                    progress(1000)
        return out


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _batch_size(mel: torch.Tensor | None, speakers: torch.Tensor | None, batch_size: int | None) -> int:
    if mel is not None:
        return mel.shape[0]
    if speakers is not None:
        return speakers.shape[0]
    if batch_size is None:
        raise ValueError("pass batch_size when generating without mel or speakers")
    return batch_size
