"""Reusable Tacotron / Tacotron 2 building blocks as plain torch.nn modules and pure functions.

Conventions: every tensor is batch-first and time-major, (B, T, C); ``lengths`` is a (B,) integer
tensor of valid frames and ``mask`` a (B, T) bool tensor, True on valid frames. Blocks that take
``lengths`` zero padded frames before every convolution and use batch statistics over valid frames
only, so whatever is in the padding never reaches a valid output. Attention lives in
``zoo.nn.attention``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from zoo.config import block_config
from zoo.sequence import lengths_to_mask


def _check_positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, but got {value}")


def _check_dropout(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), but got {value}")


def _check_odd(name: str, value: int) -> None:
    if value <= 0 or value % 2 == 0:
        raise ValueError(f"{name} must be odd and positive, but got {value}")


# --------------------------------------------------------------------------------------------------
# masks


def _mask_and_lengths(x: Tensor, lengths: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Channel-first mask (B, 1, T) for x (B, T, C), and lengths on the CPU for packing."""
    if lengths is None:
        return None, None
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"lengths must have shape ({x.shape[0]},), but got {tuple(lengths.shape)}")
    lengths_cpu = lengths.detach().to("cpu", torch.int64)
    if int(lengths_cpu.min()) < 1 or int(lengths_cpu.max()) > x.shape[1]:
        raise ValueError(f"lengths must lie in [1, {x.shape[1]}], but got {lengths_cpu.tolist()}")
    mask = lengths_to_mask(lengths.to(x.device), x.shape[1]).unsqueeze(1)  # (B, 1, T)
    return mask, lengths_cpu


def _zero_padding(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the padded frames of a channel-first (B, C, T) tensor."""
    return x if mask is None else x.masked_fill(~mask, 0.0)


def _masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, mask: Tensor) -> Tensor:
    """Batch norm of x (B, C, ...) whose statistics count only the positions where ``mask`` (broadcastable to x,
    size 1 on the channel axis) is true; the running statistics are updated from the same positions."""
    valid = mask.to(torch.float32)
    x32 = x.float()  # statistics in float32 even under autocast
    dims = [0, *range(2, x.dim())]
    shape = (1, -1, *([1] * (x.dim() - 2)))
    count = valid.expand(x.shape[0], 1, *x.shape[2:]).sum()
    mean = (x32 * valid).sum(dim=dims) / count  # (C,)
    centred = x32 - mean.view(shape)
    var = ((centred * valid) ** 2).sum(dim=dims) / count  # (C,) biased, as BatchNorm normalises
    if bn.training and bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            unbiased = var * count / (count - 1).clamp(min=1.0)  # running_var is unbiased, as in torch
            bn.running_mean.lerp_(mean.detach(), factor)
            bn.running_var.lerp_(unbiased.detach(), factor)
    y = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y.to(x.dtype)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch normalisation (Ioffe & Szegedy 2015) whose training statistics skip padded frames.

    Same parameters and buffers as nn.BatchNorm1d (checkpoints interchange); with mask=None, or in
    eval mode, it is exactly nn.BatchNorm1d.
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # x (B, C, T), mask (B, 1, T)
        if mask is None or not (self.training or not self.track_running_stats):
            return super().forward(x)
        return _masked_batch_norm(self, x, mask)


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """MaskedBatchNorm1d for (B, C, T, F) maps: statistics over the valid time steps only (mask (B, 1, T, 1))."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # x (B, C, T, F), mask (B, 1, T, 1)
        if mask is None or not (self.training or not self.track_running_stats):
            return super().forward(x)
        return _masked_batch_norm(self, x, mask)


class _ConvBN(nn.Module):
    """Conv1d ("same" length) + masked batch norm on channel-first tensors; padding zeroed first."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = False) -> None:
        super().__init__()
        # "same" length; an even kernel (the CBHG bank) gets its extra frame on the right, as TF does
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, bias=bias)
        self.bn = MaskedBatchNorm1d(out_channels)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:  # (B, C_in, T) -> (B, C_out, T)
        y = F.pad(_zero_padding(x, mask), self.pad)  # (B, C_in, T + kernel_size - 1)
        return self.bn(self.conv(y), mask)  # (B, C_out, T)


# --------------------------------------------------------------------------------------------------
# Tacotron (Wang et al. 2017)


class Prenet(nn.Module):
    """Decoder pre-net of Tacotron (Wang et al. 2017) and Tacotron 2 (Shen et al. 2018): FC+ReLU+dropout."""

    def __init__(
        self,
        in_dim: int,
        sizes: Sequence[int] = (256, 128),
        dropout: float = 0.5,
        always_dropout: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("in_dim", in_dim)
        if len(sizes) == 0:
            raise ValueError(f"sizes must name at least one layer, but got {sizes}")
        for size in sizes:
            _check_positive("every prenet size", size)
        _check_dropout("dropout", dropout)
        self.dropout = dropout
        self.always_dropout = always_dropout
        self.out_dim = sizes[-1]
        dims = [in_dim, *sizes]
        self.layers = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:  # (..., in_dim) -> (..., sizes[-1])
        # Tacotron 2 keeps pre-net dropout on at inference: it is the only source of output variation
        training = self.training or self.always_dropout
        for layer in self.layers:
            x = F.dropout(F.relu(layer(x)), p=self.dropout, training=training)
        return x


class Highway(nn.Module):
    """Highway layer (Srivastava et al. 2015): y = T(x) * H(x) + (1 - T(x)) * x."""

    def __init__(self, dim: int, gate_bias: float = -1.0) -> None:
        super().__init__()
        _check_positive("dim", dim)
        self.transform = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        # a negative gate bias lets the carry path dominate at init, so deep stacks start near identity
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, x: Tensor) -> Tensor:  # (..., dim) -> (..., dim)
        h = F.relu(self.transform(x))
        t = torch.sigmoid(self.gate(x))
        return t * h + (1.0 - t) * x


class CBHG(nn.Module):
    """CBHG module of Tacotron (Wang et al. 2017): conv bank, highway network, bidirectional GRU.

    Used with in_dim=128, projections=(128, 128) as the encoder, and in_dim=n_mels,
    projections=(256, n_mels) as the post-processing net. The residual connection adds the input to
    the last projection (through a linear map when in_dim != projections[-1]); a linear layer maps the
    result to highway_dim when they differ, as the 80 -> 128 post-net case needs.
    """

    def __init__(
        self,
        in_dim: int,
        K: int = 16,
        conv_channels: int = 128,
        projections: Sequence[int] = (128, 128),
        highway_layers: int = 4,
        gru_hidden: int = 128,
        highway_dim: int = 128,
    ) -> None:
        super().__init__()
        _check_positive("in_dim", in_dim)
        _check_positive("K", K)
        _check_positive("conv_channels", conv_channels)
        if len(projections) == 0:
            raise ValueError(f"projections must name at least one layer, but got {projections}")
        for size in projections:
            _check_positive("every projection size", size)
        if highway_layers < 0:
            raise ValueError(f"highway_layers must be non-negative, but got {highway_layers}")
        _check_positive("gru_hidden", gru_hidden)
        _check_positive("highway_dim", highway_dim)
        self.out_dim = 2 * gru_hidden
        self.bank = nn.ModuleList(_ConvBN(in_dim, conv_channels, k) for k in range(1, K + 1))
        dims = [K * conv_channels, *projections]
        self.projections = nn.ModuleList(_ConvBN(d_in, d_out, 3) for d_in, d_out in zip(dims[:-1], dims[1:]))
        self.residual = nn.Identity() if in_dim == projections[-1] else nn.Linear(in_dim, projections[-1])
        self.pre_highway = (
            nn.Identity() if projections[-1] == highway_dim else nn.Linear(projections[-1], highway_dim, bias=False)
        )
        self.highways = nn.Sequential(*(Highway(highway_dim) for _ in range(highway_layers)))
        self.gru = nn.GRU(highway_dim, gru_hidden, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:  # (B, T, in_dim) -> (B, T, 2*gru_hidden)
        mask, lengths_cpu = _mask_and_lengths(x, lengths)
        time = x.shape[1]
        y = x.transpose(1, 2)  # (B, in_dim, T)
        y = torch.cat([F.relu(conv(y, mask)) for conv in self.bank], dim=1)  # (B, K*C, T)
        # max-pool width 2, stride 1 over frames (t-1, t): -inf on the left keeps T frames and never
        # looks ahead into padding (TF's "same" would look at t+1 instead; both keep the length)
        y = F.max_pool1d(F.pad(y, (1, 0), value=float("-inf")), kernel_size=2, stride=1)  # (B, K*C, T)
        for i, conv in enumerate(self.projections):
            y = conv(y, mask)  # (B, P_i, T)
            if i < len(self.projections) - 1:
                y = F.relu(y)
        y = y.transpose(1, 2) + self.residual(x)  # (B, T, P_last)
        y = self.highways(self.pre_highway(y))  # (B, T, highway_dim)
        return _run_rnn(self.gru, y, lengths_cpu, time)  # (B, T, 2*gru_hidden)


def _run_rnn(rnn: nn.RNNBase, x: Tensor, lengths_cpu: Tensor | None, time: int) -> Tensor:
    """Bidirectional RNN over padded sequences, the backward direction starting at each true end."""
    if lengths_cpu is None:
        return rnn(x)[0]
    return run_bidirectional_rnn(rnn, x, lengths_cpu)[:, :time]  # (B, T, 2*H), zeros on padding


def _one_direction(rnn: nn.LSTM | nn.GRU, x: Tensor, suffix: str) -> Tensor:
    """One direction of a 1-layer bidirectional ``rnn`` over (B, T, D) from a zero state -> (B, T, H)."""
    weights = [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    h0 = x.new_zeros(1, x.shape[0], rnn.hidden_size)
    if isinstance(rnn, nn.LSTM):
        return torch.lstm(x, (h0, h0), weights, True, 1, 0.0, rnn.training, False, True)[0]
    return torch.gru(x, h0, weights, True, 1, 0.0, rnn.training, False, True)[0]


def run_bidirectional_rnn(rnn: nn.LSTM | nn.GRU, x: Tensor, lengths: Tensor) -> Tensor:
    """A 1-layer bidirectional batch-first ``nn.LSTM`` / ``nn.GRU`` over padded (B, T, D) with (B,) valid lengths:
    (B, T, 2H), the backward direction starting at each utterance's true end, zeros on padding -- the values of the
    packed-sequence run.

    On CPU the packed run is autograd through per-step slices of a shrinking batch (38 % of a voice-conversion
    training step, bench/README.md), so there each direction runs as one fused kernel over the padded batch: the
    forward direction as it is (padding only follows the valid steps), the backward one over each utterance reversed
    within its length. Elsewhere (cuDNN) the packed run.
    """
    if rnn.num_layers != 1 or not rnn.bidirectional or not rnn.batch_first or not rnn.bias or getattr(rnn, "proj_size", 0):
        raise ValueError(f"run_bidirectional_rnn needs a 1-layer bidirectional batch-first LSTM or GRU, but got {rnn}")
    if lengths.shape != (x.shape[0],) or int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
        raise ValueError(f"lengths must be ({x.shape[0]},) values in [1, {x.shape[1]}], but got {lengths.tolist()}")
    if x.device.type != "cpu":
        packed = pack_padded_sequence(x, lengths.detach().cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]
    lengths = lengths.to(x.device)
    steps = torch.arange(x.shape[1], device=x.device)  # (T,)
    valid = steps[None] < lengths[:, None]  # (B, T)
    reverse = torch.where(valid, lengths[:, None] - 1 - steps[None], steps[None])  # (B, T), its own inverse
    forward = _one_direction(rnn, x, "")  # (B, T, H)
    flipped = x.gather(1, reverse[..., None].expand(-1, -1, x.shape[-1]))
    backward = _one_direction(rnn, flipped, "_reverse")
    backward = backward.gather(1, reverse[..., None].expand(-1, -1, backward.shape[-1]))  # (B, T, H)
    return torch.cat([forward, backward], dim=-1) * valid[..., None].to(forward.dtype)  # (B, T, 2H)


# --------------------------------------------------------------------------------------------------
# Tacotron 2 (Shen et al. 2018)


class ConvBiLSTMEncoder(nn.Module):
    """Tacotron 2 encoder (Shen et al. 2018): conv+BN+ReLU+dropout layers, then a BiLSTM."""

    def __init__(
        self,
        in_dim: int = 512,
        conv_channels: int = 512,
        kernel_size: int = 5,
        n_convs: int = 3,
        dropout: float = 0.5,
        lstm_hidden: int = 256,
    ) -> None:
        super().__init__()
        _check_positive("in_dim", in_dim)
        _check_positive("conv_channels", conv_channels)
        _check_odd("kernel_size", kernel_size)
        _check_positive("n_convs", n_convs)
        _check_dropout("dropout", dropout)
        _check_positive("lstm_hidden", lstm_hidden)
        self.dropout = dropout
        self.out_dim = 2 * lstm_hidden
        dims = [in_dim] + [conv_channels] * n_convs
        self.convs = nn.ModuleList(_ConvBN(d_in, d_out, kernel_size) for d_in, d_out in zip(dims[:-1], dims[1:]))
        self.lstm = nn.LSTM(conv_channels, lstm_hidden, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:  # (B, T, in_dim) -> (B, T, 2*lstm_hidden)
        mask, lengths_cpu = _mask_and_lengths(x, lengths)
        y = x.transpose(1, 2)  # (B, in_dim, T)
        for conv in self.convs:
            y = F.dropout(F.relu(conv(y, mask)), p=self.dropout, training=self.training)  # (B, C, T)
        return _run_rnn(self.lstm, y.transpose(1, 2), lengths_cpu, x.shape[1])  # (B, T, 2*lstm_hidden)


@block_config
class PostnetConfig:
    """Tacotron 2's post-net: ``n_convs`` conv + batch-norm layers of ``channels`` (kernel ``kernel_size``, odd), tanh
    on all but the last, ``dropout`` after each; (B, T, n_mels) -> (B, T, n_mels) residual. ``channels`` 0 means no
    post-net where a model makes it optional (voice conversion). Defaults: Shen et al. 2018. ``zero_init_residual``
    starts the last batch-norm's scale at 0 (Goyal et al. 2017), so the post-net begins as the identity instead of
    adding a unit-variance residual to spectrograms normalised to [0, 1]."""

    channels: int = 512
    kernel_size: int = 5
    n_convs: int = 5
    dropout: float = 0.5
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        if self.channels < 0:
            raise ValueError(f"PostnetConfig.channels must be >= 0 (0: no post-net), but got {self.channels}")
        _check_odd("PostnetConfig.kernel_size", self.kernel_size)
        if self.n_convs < 2:
            raise ValueError(f"PostnetConfig.n_convs must be at least 2, but got {self.n_convs}")
        _check_dropout("PostnetConfig.dropout", self.dropout)


class Postnet(nn.Module):
    """Tacotron 2 post-net (Shen et al. 2018): conv+BN layers, tanh on all but the last, dropout (``PostnetConfig``).

    Returns the *residual*; the caller adds it to the decoder output (mel + postnet(mel)) so that
    both the pre- and post-net spectrograms can enter the loss. Padded frames of the output are 0.
    """

    def __init__(self, n_mels: int, config: PostnetConfig = PostnetConfig()) -> None:
        super().__init__()
        _check_positive("n_mels", n_mels)
        _check_positive("channels", config.channels)
        self.dropout = config.dropout
        dims = [n_mels] + [config.channels] * (config.n_convs - 1) + [n_mels]
        self.convs = nn.ModuleList(
            _ConvBN(d_in, d_out, config.kernel_size) for d_in, d_out in zip(dims[:-1], dims[1:])
        )
        if config.zero_init_residual:
            nn.init.zeros_(self.convs[-1].bn.weight)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:  # (B, T, n_mels) -> (B, T, n_mels)
        mask, _ = _mask_and_lengths(x, lengths)
        y = x.transpose(1, 2)  # (B, n_mels, T)
        for i, conv in enumerate(self.convs):
            y = conv(y, mask)  # (B, C_i, T)
            if i < len(self.convs) - 1:
                y = torch.tanh(y)
            y = F.dropout(y, p=self.dropout, training=self.training)
        return _zero_padding(y, mask).transpose(1, 2)  # (B, T, n_mels)


# --------------------------------------------------------------------------------------------------
# reduction factor: r frames per decoder step (Wang et al. 2017)
#
# A step holds r consecutive frames, concatenated channel-last: step n = [frame n*r, ..., frame n*r+r-1],
# each C wide. These helpers are the one place that layout is encoded.


def frames_to_steps(frames: Tensor, r: int) -> Tensor:
    """(B, T, C) frames -> (B, T // r, r * C) decoder steps; T must be a multiple of r (see
    ``zoo.sequence.pad_to_multiple``)."""
    _check_positive("r", r)
    batch, time, channels = frames.shape
    if time % r != 0:
        raise ValueError(f"frame count must be a multiple of r={r}, but got {time}; use pad_to_multiple first")
    return frames.reshape(batch, time // r, r * channels)  # (B, N, r*C)


def steps_to_frames(steps: Tensor, r: int) -> Tensor:
    """(B, N, r * C) decoder steps -> (B, N * r, C) frames, in time order."""
    _check_positive("r", r)
    batch, n_steps, width = steps.shape
    if width % r != 0:
        raise ValueError(f"step width must be a multiple of r={r}, but got {width}")
    return steps.reshape(batch, n_steps * r, width // r)  # (B, N*r, C)


def last_frame_of_steps(steps: Tensor, r: int, n_channels: int) -> Tensor:
    """Last frame of each step, the one fed back to the decoder: (..., r * C) -> (..., C)."""
    _check_positive("r", r)
    _check_positive("n_channels", n_channels)
    if steps.shape[-1] != r * n_channels:
        raise ValueError(f"step width must be r * n_channels = {r * n_channels}, but got {steps.shape[-1]}")
    return steps[..., (r - 1) * n_channels :]  # (..., C)


def stack_decoder_outputs(step_outputs: Sequence[Tensor], r: int) -> Tensor:
    """Per-step decoder outputs [(B, r * C)] * N -> (B, N * r, C) frames, in time order."""
    if len(step_outputs) == 0:
        raise ValueError("step_outputs must hold at least one step, but got an empty sequence")
    # stack on dim 1: stacking step-first (N, B, r*C) and reshaping would interleave utterances
    return steps_to_frames(torch.stack(list(step_outputs), dim=1), r)  # (B, N*r, C)


__all__ = [
    "CBHG",
    "ConvBiLSTMEncoder",
    "Highway",
    "MaskedBatchNorm1d",
    "Postnet",
    "PostnetConfig",
    "Prenet",
    "frames_to_steps",
    "last_frame_of_steps",
    "stack_decoder_outputs",
    "steps_to_frames",
]
