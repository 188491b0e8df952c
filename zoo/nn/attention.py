"""Recurrent-decoder attention for Tacotron-style seq2seq models, one interface, chosen by config.

Every mechanism follows the same per-utterance protocol::

    attention = build_attention("location", query_dim=1024, memory_dim=512)
    processed_memory = attention.process_memory(memory)      # once per utterance
    state = attention.init_state(memory, mask)
    for step in range(n_steps):
        context, weights, state = attention(query, memory, processed_memory, mask, state)

Tensors are batch-first: memory (B, T_enc, D_mem), query (B, D_query), mask (B, T_enc) bool with
True on *valid* encoder steps (None means no padding). Every utterance needs at least one valid
step. Energies and weights are computed in float32 even under bf16/fp16 autocast, and the
recurrent state is kept in float32 so the cumulative alignment does not drift over long decodes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ATTENTION_KINDS = ("content", "location", "gmm")
NORMALIZATIONS = ("softmax", "sigmoid")


class AttentionState(NamedTuple):
    """Recurrent attention state carried between decoder steps (all float32).

    alignment: (B, T_enc) weights of the previous step.
    cumulative: (B, T_enc) sum of the weights of all previous steps.
    means: (B, K) GMM component means in encoder steps; (B, 0) for content/location attention,
        kept as a tensor rather than None so the state is always a tuple of tensors.
    """

    alignment: Tensor
    cumulative: Tensor
    means: Tensor


class AttentionOutput(NamedTuple):
    """What one attention step returns; unpacks as ``context, weights, state``.

    context: (B, D_mem) weighted sum of the memory.
    weights: (B, T_enc) float32 alignment of this step, exactly 0 on padded encoder steps.
    state: the AttentionState to feed to the next step.
    """

    context: Tensor
    weights: Tensor
    state: AttentionState


class Attention(nn.Module):
    """Base class of the decoder attentions: one decoder step's weights (a subclass's ``_align``), the context they
    read from the memory and the new state."""

    def process_memory(self, memory: Tensor) -> Tensor:
        """Per-utterance projection of the memory, (B, T_enc, D_mem) -> (B, T_enc, A)."""
        return memory

    def init_state(self, memory: Tensor, mask: Tensor | None = None) -> AttentionState:
        """All-zero state: no encoder step has been attended yet."""
        batch, t_enc, _ = memory.shape
        zeros = memory.new_zeros(batch, t_enc, dtype=torch.float32)  # (B, T_enc)
        return AttentionState(zeros, zeros, memory.new_zeros(batch, 0, dtype=torch.float32))

    def forward(
        self,
        query: Tensor,
        memory: Tensor,
        processed_memory: Tensor,
        mask: Tensor | None,
        state: AttentionState,
    ) -> AttentionOutput:
        weights, means = self._align(query, processed_memory, mask, state)  # (B, T_enc) float32, GMM means or as was
        # bmm in memory's dtype: a float32 `weights` against bf16 memory would fail outside autocast
        context = torch.bmm(weights.unsqueeze(1).to(memory.dtype), memory).squeeze(1)  # (B, D_mem)
        return AttentionOutput(context, weights, AttentionState(weights, state.cumulative + weights, means))

    def _align(self, query: Tensor, processed: Tensor, mask: Tensor | None, state: AttentionState) -> tuple[Tensor, ...]:
        """This step's weights over the encoder steps (zero on padding) and the state's ``means``; ``processed`` is
        ``process_memory``'s output."""
        raise NotImplementedError


def _check_positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, but got {value}")


class BahdanauAttention(Attention):
    """Content-based additive attention (Bahdanau et al. 2015), with Chorowski et al. 2015 sharpening
    (inverse temperature) and smoothing (sigmoid normalisation).

    e = v^T tanh(W query + V memory + b); weights = softmax(beta * e), or with
    normalization="sigmoid", sigmoid(beta * e) / sum of sigmoid(beta * e) over valid steps.
    """

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int = 128,
        inverse_temperature: float = 1.0,
        normalization: str = "softmax",
    ) -> None:
        super().__init__()
        _check_positive("query_dim", query_dim)
        _check_positive("memory_dim", memory_dim)
        _check_positive("attention_dim", attention_dim)
        if not inverse_temperature > 0:
            raise ValueError(f"inverse_temperature must be positive, but got {inverse_temperature}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, but got {normalization!r}")
        self.inverse_temperature = float(inverse_temperature)
        self.normalization = normalization
        self.query_layer = nn.Linear(query_dim, attention_dim, bias=False)
        # the bias of the memory projection plays the role of the `b` inside tanh (Chorowski eq. 9)
        self.memory_layer = nn.Linear(memory_dim, attention_dim, bias=True)
        # an output bias is a no-op under softmax but moves sigmoid's operating point
        self.v = nn.Linear(attention_dim, 1, bias=normalization == "sigmoid")

    def process_memory(self, memory: Tensor) -> Tensor:
        return self.memory_layer(memory)  # (B, T_enc, A)

    def _location_term(self, state: AttentionState) -> Tensor | float:
        return 0.0

    def _align(self, query: Tensor, processed: Tensor, mask: Tensor | None, state: AttentionState) -> tuple[Tensor, ...]:
        processed_query = self.query_layer(query).unsqueeze(1)  # (B, 1, A)
        hidden = torch.tanh(processed_query + processed + self._location_term(state))  # (B, T_enc, A)
        # float32 from here on: bf16 energies make a coarse, unstable softmax
        energies = self.v(hidden).squeeze(-1).float() * self.inverse_temperature  # (B, T_enc)
        return normalize_energies(energies, mask, self.normalization), state.means  # (B, T_enc)


class LocationSensitiveAttention(BahdanauAttention):
    """Location-sensitive attention (Chorowski et al. 2015) over the previous and cumulative
    alignment, as in Tacotron 2 (Shen et al. 2018)."""

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int = 128,
        n_filters: int = 32,
        kernel_size: int = 31,
        inverse_temperature: float = 1.0,
        normalization: str = "softmax",
    ) -> None:
        super().__init__(query_dim, memory_dim, attention_dim, inverse_temperature, normalization)
        _check_positive("n_filters", n_filters)
        if kernel_size <= 0 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, but got {kernel_size}")
        # 2 input channels: previous alignment and cumulative alignment (Tacotron 2's variant)
        self.location_conv = nn.Conv1d(2, n_filters, kernel_size, padding=kernel_size // 2, bias=False)
        self.location_layer = nn.Linear(n_filters, attention_dim, bias=False)

    def _location_term(self, state: AttentionState) -> Tensor:
        alignments = torch.stack([state.alignment, state.cumulative], dim=1)  # (B, 2, T_enc)
        features = self.location_conv(alignments.to(self.location_conv.weight.dtype))  # (B, F, T_enc)
        return self.location_layer(features.transpose(1, 2))  # (B, T_enc, A)


class GMMAttention(Attention):
    """GMM attention (Graves 2013) in the V2 parameterisation of Battenberg et al. 2019:
    softmax mixture weights, softplus mean offsets and widths, normalised Gaussians."""

    # initial softplus outputs: each component moves about one encoder step per decoder step
    INIT_DELTA = 1.0
    INIT_SIGMA = 2.0
    MIN_SIGMA = 1e-3

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int = 128, n_components: int = 5) -> None:
        super().__init__()
        _check_positive("query_dim", query_dim)
        _check_positive("memory_dim", memory_dim)
        _check_positive("attention_dim", attention_dim)
        _check_positive("n_components", n_components)
        self.n_components = n_components
        self.mlp = nn.Sequential(
            nn.Linear(query_dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 3 * n_components)
        )
        with torch.no_grad():
            bias = self.mlp[-1].bias.view(3, n_components)  # rows: weight, mean offset, width
            bias[0].zero_()
            bias[1].fill_(_inverse_softplus(self.INIT_DELTA))
            bias[2].fill_(_inverse_softplus(self.INIT_SIGMA))

    def init_state(self, memory: Tensor, mask: Tensor | None = None) -> AttentionState:
        state = super().init_state(memory, mask)
        means = memory.new_zeros(memory.shape[0], self.n_components, dtype=torch.float32)  # (B, K)
        return state._replace(means=means)

    def _align(self, query: Tensor, processed: Tensor, mask: Tensor | None, state: AttentionState) -> tuple[Tensor, ...]:
        params = self.mlp(query).float().view(-1, 3, self.n_components)  # (B, 3, K)
        mixture = torch.softmax(params[:, 0], dim=-1)  # (B, K)
        # softplus keeps the offsets positive, so the means can only move forward
        means = state.means + F.softplus(params[:, 1])  # (B, K)
        sigma = F.softplus(params[:, 2]) + self.MIN_SIGMA  # (B, K)
        positions = torch.arange(processed.shape[1], device=processed.device, dtype=torch.float32)  # (T_enc,)
        z = (positions.view(1, 1, -1) - means.unsqueeze(-1)) / sigma.unsqueeze(-1)  # (B, K, T_enc)
        density = torch.exp(-0.5 * z**2) / (sigma.unsqueeze(-1) * math.sqrt(2 * math.pi))  # (B, K, T_enc)
        weights = (mixture.unsqueeze(-1) * density).sum(dim=1)  # (B, T_enc)
        if mask is not None:
            weights = weights * mask
        return weights, means


def _inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def normalize_energies(energies: Tensor, mask: Tensor | None, normalization: str = "softmax") -> Tensor:
    """Attention weights from float32 energies (B, T_enc): softmax, or Chorowski et al.'s sigmoid
    smoothing sigma(e) / sum sigma(e); both exactly 0 on padded steps and summing to 1 over valid ones."""
    energies = energies.float()
    if mask is not None:
        energies = energies.masked_fill(~mask, float("-inf"))  # (B, T_enc)
    if normalization == "softmax":
        return torch.softmax(energies, dim=-1)
    if normalization == "sigmoid":
        scores = torch.sigmoid(energies)  # (B, T_enc), sigmoid(-inf) = 0 on padding
        return scores / scores.sum(dim=-1, keepdim=True)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, but got {normalization!r}")


def build_attention(
    kind: str,
    query_dim: int,
    memory_dim: int,
    attention_dim: int = 128,
    *,
    inverse_temperature: float | None = None,
    normalization: str | None = None,
    n_filters: int | None = None,
    kernel_size: int | None = None,
    n_components: int | None = None,
) -> Attention:
    """Attention by name: "content" (Bahdanau), "location" (Chorowski/Tacotron 2) or "gmm" (Graves V2).

    Kind-specific options default to None, meaning the kind's own default (inverse_temperature=1.0,
    normalization="softmax" for content/location; n_filters=32, kernel_size=31 for location;
    n_components=5 for gmm). Setting an option the chosen kind does not use raises ValueError, so a
    stale key left in a config fails loudly. For "gmm", attention_dim is the hidden size of the MLP
    that predicts the mixture parameters.
    """
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"kind must be one of {ATTENTION_KINDS}, but got {kind!r}")
    options = {
        "inverse_temperature": inverse_temperature,
        "normalization": normalization,
        "n_filters": n_filters,
        "kernel_size": kernel_size,
        "n_components": n_components,
    }
    accepted = {
        "content": ("inverse_temperature", "normalization"),
        "location": ("inverse_temperature", "normalization", "n_filters", "kernel_size"),
        "gmm": ("n_components",),
    }[kind]
    given = {name: value for name, value in options.items() if value is not None}
    unused = sorted(set(given) - set(accepted))
    if unused:
        raise ValueError(f"attention kind {kind!r} does not take {unused}, but got {({n: given[n] for n in unused})}")
    if kind == "content":
        return BahdanauAttention(query_dim, memory_dim, attention_dim, **given)
    if kind == "location":
        return LocationSensitiveAttention(query_dim, memory_dim, attention_dim, **given)
    return GMMAttention(query_dim, memory_dim, attention_dim, **given)
