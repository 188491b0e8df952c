"""Tacotron (Wang et al. 2017) and Tacotron 2 (Shen et al. 2018) as plain torch.nn modules.

Bottom-up: ``TacotronDecoder`` (the attention decoder both models share, and that voice conversion
reuses over a mel-frame memory), ``GlobalStyleTokens`` (Wang et al. 2018), then the two text-to-speech
networks. Conventions as in ``zoo.nn.tacotron_blocks``: batch-first, time-major (B, T, C); ``lengths``
are (B,) valid frames. No Lightning here: the experiment modules live in ``zoo.models.tacotron``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from zoo.config import block_config, check_fraction, check_positive, freeze_sequences
from zoo.nn.attention import AttentionState, build_attention
from zoo.nn.sequence_cells import SequenceCells, gru_update, lstm_update
from zoo.nn.tacotron_blocks import (
    CBHG,
    ConvBiLSTMEncoder,
    MaskedBatchNorm2d,
    Postnet,
    PostnetConfig,
    Prenet,
    frames_to_steps,
    last_frame_of_steps,
    stack_decoder_outputs,
)
from zoo.sequence import lengths_to_mask, pad_to_multiple

RNN_KINDS = ("lstm", "gru")


def _check_positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, but got {value}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], but got {value}")


# --------------------------------------------------------------------------------------------------
# the shared attention decoder


class DecoderOutput(NamedTuple):
    """Teacher-forced (or scheduled-sampling) decoder run.

    mel: (B, T, n_mels) predicted frames, cropped to the T target frames.
    stop_logits: (B, T) stop-token logits, one per frame.
    alignments: (B, N, T_enc) attention weights of the N = ceil(T / r) decoder steps.
    """

    mel: Tensor
    stop_logits: Tensor
    alignments: Tensor


class InferenceOutput(NamedTuple):
    """Free-running decoder run, stopped by the stop token or the max-length guard.

    mel: (B, T, n_mels) frames, 0 after each utterance's end.
    stop_logits: (B, T).
    alignments: (B, N, T_enc), N = T / r steps.
    lengths: (B,) frames up to and including the first frame whose stop probability passed the threshold
        (T for an utterance that hit the max-length guard).
    stopped: (B,) bool, True where the stop token (not the guard) ended the utterance.
    """

    mel: Tensor
    stop_logits: Tensor
    alignments: Tensor
    lengths: Tensor
    stopped: Tensor


class DecoderState(NamedTuple):
    """Recurrent state between decoder steps; LSTM cells are (B, H), GRU "cells" are (B, 0) placeholders."""

    attention_hidden: Tensor  # (B, H_att)
    attention_cell: Tensor  # (B, H_att) or (B, 0)
    decoder_hidden: tuple[Tensor, ...]  # L x (B, H_dec)
    decoder_cell: tuple[Tensor, ...]  # L x (B, H_dec) or (B, 0)
    context: Tensor  # (B, D_mem)
    attention: AttentionState


def _memory_mask(memory: Tensor, lengths: Tensor | None) -> Tensor | None:
    """(B, T_enc) True on valid memory steps, or None where no utterance is padded (every step then skips the
    masking of its energies)."""
    if lengths is None or bool((lengths == memory.shape[1]).all()):
        return None
    return lengths_to_mask(lengths.to(memory.device), memory.shape[1])


def _make_cell(kind: str, in_dim: int, hidden: int) -> nn.RNNCellBase:
    return nn.LSTMCell(in_dim, hidden) if kind == "lstm" else nn.GRUCell(in_dim, hidden)


def _run_cell(
    cell: nn.RNNCellBase, x: Tensor, h: Tensor, c: Tensor, cells: SequenceCells | None = None
) -> tuple[Tensor, Tensor]:
    """One RNN step; through ``cells`` when the weight gradients are taken once per sequence."""
    if isinstance(cell, nn.LSTMCell):
        return cell(x, (h, c)) if cells is None else cells(cell, x, (h, c))
    return (cell(x, h) if cells is None else cells(cell, x, h)), c


@block_config
class DecoderConfig:
    """The attention decoder's hyper-parameters (Tacotron, Tacotron 2, and voice conversion over mel memories).

    reduction_factor: r frames per decoder step. prenet_sizes, prenet_dropout: the pre-net on the previous frame;
    prenet_always_dropout keeps its dropout on at inference (Tacotron 2 by design; keithito/tacotron: training only).
    rnn_kind: "lstm" or "gru" for the attention RNN (attention_rnn_dim) and the decoder RNNs (decoder_rnn_dims, one
    entry per layer); residual adds each decoder layer's input back (Tacotron's GRUs; all layers one size).
    projection_reads_context: the frame and stop projections read [decoder output, context] (Tacotron 2) or the decoder
    output alone (Tacotron). attention_kind "content" | "location" | "gmm" with attention_dim and the kind's own options
    (None: the kind's default; an option the kind does not use is an error, see ``zoo.nn.attention.build_attention``).
    attention_dropout, decoder_dropout: zoneout-free dropout on the RNN outputs (Tacotron 2's 0.1).

    Example: memory (B, T_enc, D) and targets (B, T, n_mels) -> mel (B, T, n_mels), alignments (B, ceil(T / r), T_enc).
    The defaults are Tacotron 2's (NVIDIA ``hparams.py``); ``TACOTRON_DECODER`` holds Tacotron's.
    """

    reduction_factor: int = 1
    prenet_sizes: tuple[int, ...] = (256, 256)
    prenet_dropout: float = 0.5
    prenet_always_dropout: bool = True
    rnn_kind: str = "lstm"
    attention_rnn_dim: int = 1024
    decoder_rnn_dims: tuple[int, ...] = (1024,)
    residual: bool = False
    projection_reads_context: bool = True
    attention_kind: str = "location"
    attention_dim: int = 128
    attention_filters: int | None = None
    attention_kernel_size: int | None = None
    attention_inverse_temperature: float | None = None
    attention_normalization: str | None = None
    attention_components: int | None = None
    attention_dropout: float = 0.1
    decoder_dropout: float = 0.1

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_positive("DecoderConfig", reduction_factor=self.reduction_factor, attention_rnn_dim=self.attention_rnn_dim)
        if self.rnn_kind not in RNN_KINDS:
            raise ValueError(f"DecoderConfig.rnn_kind must be one of {RNN_KINDS}, but got {self.rnn_kind!r}")
        if len(self.decoder_rnn_dims) == 0:
            raise ValueError(f"DecoderConfig.decoder_rnn_dims must name at least one layer, but got {self.decoder_rnn_dims}")
        for dim in self.decoder_rnn_dims:
            check_positive("DecoderConfig", decoder_rnn_dims_entry=dim)
        if self.residual and len(set(self.decoder_rnn_dims)) != 1:
            raise ValueError(f"DecoderConfig: residual decoder layers must all have the same size, but got "
                             f"{self.decoder_rnn_dims}")
        check_fraction("DecoderConfig", attention_dropout=self.attention_dropout, decoder_dropout=self.decoder_dropout)


# Tacotron (Wang et al. 2017) as keithito/tacotron builds it: r = 2, GRU attention RNN + two residual GRUs, content
# attention, pre-net dropout in training only, the output projections on the last GRU's output.
TACOTRON_DECODER = DecoderConfig(
    reduction_factor=2, prenet_sizes=(256, 128), prenet_always_dropout=False, rnn_kind="gru", attention_rnn_dim=256,
    decoder_rnn_dims=(256, 256), residual=True, projection_reads_context=False, attention_kind="content",
    attention_dim=256, attention_dropout=0.0, decoder_dropout=0.0,
)


class TacotronDecoder(nn.Module):
    """Autoregressive attention decoder of Tacotron (Wang et al. 2017) and Tacotron 2 (Shen et al. 2018).

    Per step: pre-net on the last frame of the previous step -> attention RNN (input: pre-net output and the
    previous context) -> attention over the memory (query: attention RNN state) -> decoder RNN layers (input:
    attention RNN state and the new context; residual for Tacotron's GRUs) -> linear projections of
    [decoder output, context] (Tacotron 2) or of the decoder output alone (Tacotron) to r frames of n_mels and
    r stop-token logits. Hyper-parameters: ``DecoderConfig``. The memory can be any (B, T_enc, memory_dim)
    sequence: text encodings, or mel-frame encodings for voice conversion.

    ``sequence_weight_grads`` is not a hyper-parameter (values and gradients are the same up to float summation
    order): with it, a forward pass under autograd takes each RNN weight's gradient once over all steps
    (``zoo.nn.sequence_cells``) instead of once per step.
    """

    sequence_weight_grads: bool = True
    # inference only, likewise not a hyper-parameter: the attention context's share of every linear map that reads it,
    # taken from the memory projected once per utterance (``_ContextShares``) where that reads less than the weights
    context_shares: bool = True

    def __init__(self, memory_dim: int, n_mels: int, config: DecoderConfig = DecoderConfig()) -> None:
        super().__init__()
        _check_positive("memory_dim", memory_dim)
        _check_positive("n_mels", n_mels)
        c = config
        self.config = c
        self.memory_dim = memory_dim
        self.n_mels = n_mels
        self.reduction_factor = c.reduction_factor
        self.rnn_kind = c.rnn_kind
        self.residual = c.residual
        self.attention_dropout = c.attention_dropout
        self.decoder_dropout = c.decoder_dropout
        self.projection_reads_context = c.projection_reads_context

        self.prenet = Prenet(n_mels, c.prenet_sizes, c.prenet_dropout, always_dropout=c.prenet_always_dropout)
        self.attention_rnn = _make_cell(c.rnn_kind, self.prenet.out_dim + memory_dim, c.attention_rnn_dim)
        self.attention = build_attention(
            c.attention_kind, c.attention_rnn_dim, memory_dim, c.attention_dim,
            inverse_temperature=c.attention_inverse_temperature, normalization=c.attention_normalization,
            n_filters=c.attention_filters, kernel_size=c.attention_kernel_size, n_components=c.attention_components,
        )
        decoder_in = c.attention_rnn_dim + memory_dim
        if c.residual:
            # Tacotron: a linear map to the GRU width so every layer can add its input back
            self.decoder_input = nn.Linear(decoder_in, c.decoder_rnn_dims[0])
            dims_in = list(c.decoder_rnn_dims)
        else:
            self.decoder_input = nn.Identity()
            dims_in = [decoder_in, *c.decoder_rnn_dims[:-1]]
        self.decoder_rnns = nn.ModuleList(
            _make_cell(c.rnn_kind, d_in, d_out) for d_in, d_out in zip(dims_in, c.decoder_rnn_dims)
        )
        out_in = c.decoder_rnn_dims[-1] + (memory_dim if c.projection_reads_context else 0)
        self.frame_projection = nn.Linear(out_in, c.reduction_factor * n_mels)
        self.stop_projection = nn.Linear(out_in, c.reduction_factor)

    # -- one step -------------------------------------------------------------------------------------------
    def initial_state(self, memory: Tensor, mask: Tensor | None) -> DecoderState:
        batch = memory.shape[0]

        def zeros(width: int) -> Tensor:
            return memory.new_zeros(batch, width)

        def cell(width: int) -> Tensor:
            return zeros(width if self.rnn_kind == "lstm" else 0)

        att_dim = self.attention_rnn.hidden_size
        dims = [rnn.hidden_size for rnn in self.decoder_rnns]
        return DecoderState(
            zeros(att_dim), cell(att_dim),
            tuple(zeros(d) for d in dims), tuple(cell(d) for d in dims),
            zeros(self.memory_dim), self.attention.init_state(memory, mask),
        )

    def go_frame(self, memory: Tensor) -> Tensor:
        """The all-zero frame (normalised silence) fed before the first step: (B, n_mels)."""
        return memory.new_zeros(memory.shape[0], self.n_mels)

    def step(
        self, prev_frame: Tensor, memory: Tensor, processed_memory: Tensor, mask: Tensor | None, state: DecoderState
    ) -> tuple[Tensor, Tensor, Tensor, DecoderState]:
        """One decoder step from the last frame of the previous step (B, n_mels).

        Returns (frames (B, r * n_mels), stop logits (B, r), attention weights (B, T_enc), new state).
        """
        return self._step(self.prenet(prev_frame), memory, processed_memory, mask, state)

    def _step(
        self, prenet_out: Tensor, memory: Tensor, processed_memory: Tensor, mask: Tensor | None, state: DecoderState,
        cells: SequenceCells | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, DecoderState]:
        att_in = torch.cat([prenet_out, state.context], dim=-1)  # (B, P + D_mem)
        att_h, att_c = _run_cell(self.attention_rnn, att_in, state.attention_hidden, state.attention_cell, cells)
        att_h = F.dropout(att_h, self.attention_dropout, self.training)  # (B, H_att)
        context, weights, att_state = self.attention(att_h, memory, processed_memory, mask, state.attention)
        x = self.decoder_input(torch.cat([att_h, context], dim=-1))  # (B, H_dec) or (B, H_att + D_mem)
        hiddens, cell_states = [], []
        for rnn, h, c in zip(self.decoder_rnns, state.decoder_hidden, state.decoder_cell):
            h, c = _run_cell(rnn, x, h, c, cells)
            h = F.dropout(h, self.decoder_dropout, self.training)  # (B, H_dec)
            hiddens.append(h)
            cell_states.append(c)
            x = x + h if self.residual else h
        out = torch.cat([x, context], dim=-1) if self.projection_reads_context else x  # (B, H_dec [+ D_mem])
        frames = self.frame_projection(out)  # (B, r*n_mels), frame k of the step at [k*n_mels:(k+1)*n_mels]
        stop = self.stop_projection(out)  # (B, r)
        new_state = DecoderState(att_h, att_c, tuple(hiddens), tuple(cell_states), context, att_state)
        return frames, stop, weights, new_state

    # -- whole utterances -----------------------------------------------------------------------------------
    def forward(
        self,
        memory: Tensor,
        memory_lengths: Tensor | None,
        targets: Tensor,
        teacher_forcing_ratio: float = 1.0,
    ) -> DecoderOutput:
        """Decode ceil(T / r) steps against targets (B, T, n_mels).

        Each step is fed the last target frame of the previous step (teacher forcing) or, with probability
        1 - teacher_forcing_ratio per utterance and step, the last frame the decoder itself predicted
        (scheduled sampling, Bengio et al. 2015; detached, so no gradient flows through the feedback).
        """
        _check_probability("teacher_forcing_ratio", teacher_forcing_ratio)
        if targets.shape[0] != memory.shape[0] or targets.shape[2] != self.n_mels:
            raise ValueError(f"targets must be (B={memory.shape[0]}, T, {self.n_mels}), but got {tuple(targets.shape)}")
        r, time = self.reduction_factor, targets.shape[1]
        mask = _memory_mask(memory, memory_lengths)
        steps = frames_to_steps(pad_to_multiple(targets, r), r)  # (B, N, r*n_mels)
        truth = last_frame_of_steps(steps, r, self.n_mels)  # (B, N, n_mels) frame fed back after each step
        inputs = torch.cat([self.go_frame(memory).unsqueeze(1), truth[:, :-1]], dim=1)  # (B, N, n_mels)
        # all-teacher-forced pre-net runs once over every step; scheduled sampling must wait for each prediction
        prenet_all = self.prenet(inputs) if teacher_forcing_ratio == 1.0 else None  # (B, N, P)
        processed = self.attention.process_memory(memory)  # (B, T_enc, A)
        state = self.initial_state(memory, mask)
        # with gradients, each RNN weight's gradient is one product over all steps instead of one per step
        rnns = [self.attention_rnn, *self.decoder_rnns]
        cells = SequenceCells(rnns) if self.sequence_weight_grads and torch.is_grad_enabled() else None
        outputs, stops, alignments = [], [], []
        prev_pred = None
        for n in range(steps.shape[1]):
            if prenet_all is not None:
                prenet_out = prenet_all[:, n]
            else:
                feed = inputs[:, n]  # (B, n_mels)
                if prev_pred is not None:
                    use_truth = torch.rand(feed.shape[0], 1, device=feed.device) < teacher_forcing_ratio  # (B, 1)
                    feed = torch.where(use_truth, feed, prev_pred.detach())
                prenet_out = self.prenet(feed)
            frames, stop, weights, state = self._step(prenet_out, memory, processed, mask, state, cells)
            prev_pred = last_frame_of_steps(frames, r, self.n_mels)  # (B, n_mels)
            outputs.append(frames)
            stops.append(stop)
            alignments.append(weights)
        mel = stack_decoder_outputs(outputs, r)[:, :time]  # (B, T, n_mels)
        stop_logits = stack_decoder_outputs(stops, r).squeeze(-1)[:, :time]  # (B, T)
        return DecoderOutput(mel, stop_logits, torch.stack(alignments, dim=1))  # alignments (B, N, T_enc)

    @torch.no_grad()
    def infer(
        self,
        memory: Tensor,
        memory_lengths: Tensor | None = None,
        max_frames: int = 1000,
        stop_threshold: float = 0.5,
    ) -> InferenceOutput:
        """Free-running decoding: each step is fed its own last frame, until every utterance's stop probability
        passes ``stop_threshold`` or ``max_frames`` frames (rounded up to whole steps) have been produced."""
        _check_positive("max_frames", max_frames)
        if not 0.0 < stop_threshold < 1.0:
            raise ValueError(f"stop_threshold must be in (0, 1), but got {stop_threshold}")
        r, batch = self.reduction_factor, memory.shape[0]
        max_steps = math.ceil(max_frames / r)
        stop_logit = math.log(stop_threshold / (1.0 - stop_threshold))
        mask = _memory_mask(memory, memory_lengths)
        processed = self.attention.process_memory(memory)
        state = self.initial_state(memory, mask)
        frame = self.go_frame(memory)
        lengths = torch.full((batch,), max_steps * r, dtype=torch.long, device=memory.device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        outputs, stops, alignments = [], [], []
        shares = _ContextShares(self, memory) if self.context_shares and _ContextShares.pays(self, memory) else None
        for n in range(max_steps):
            if shares is None:
                frames, stop, weights, state = self.step(frame, memory, processed, mask, state)
            else:
                frames, stop, weights, state = shares.step(self.prenet(frame), memory, processed, mask, state)
            outputs.append(frames)
            stops.append(stop)
            alignments.append(weights)
            frame = last_frame_of_steps(frames, r, self.n_mels)
            fired = stop.float() > stop_logit  # (B, r): sigmoid(logit) > threshold
            if not bool(fired.any()):  # the common step: nothing fired, no bookkeeping
                continue
            first = fired.float().argmax(dim=1)  # (B,) first firing frame of the step
            newly = fired.any(dim=1) & ~stopped
            lengths = torch.where(newly, n * r + first + 1, lengths)
            stopped = stopped | newly
            if bool(stopped.all()):
                break
        mel = stack_decoder_outputs(outputs, r)  # (B, N*r, n_mels)
        stop_logits = stack_decoder_outputs(stops, r).squeeze(-1)  # (B, N*r)
        valid = lengths_to_mask(lengths, mel.shape[1])  # (B, N*r)
        mel = mel.masked_fill(~valid.unsqueeze(-1), 0.0)
        return InferenceOutput(mel, stop_logits, torch.stack(alignments, dim=1), lengths, stopped)


class _ContextShares:
    """``TacotronDecoder._step`` at inference with the attention context's share of each linear map computed from
    the memory: the context is ``weights @ memory``, so ``W @ context = weights @ (memory @ W^T)``, and the memory
    projected by every context-reading map at once (the attention RNN's input weights, the decoder's first input
    map, the output projections) is one product per utterance. A step then reads (B, T_enc, K) of projected memory
    instead of the (K, D_mem) context columns of those weights, which at batch 1 is the step's memory traffic
    (bench/README.md: an autoregressive decoder step at batch 1 streams its weights) while B * T_enc < D_mem
    (``pays``). The same values as ``_step`` up to float summation order (``tests/test_tacotron.py``)."""

    def __init__(self, decoder: TacotronDecoder, memory: Tensor) -> None:
        self.decoder = d = decoder
        p, h_att = d.prenet.out_dim, d.attention_rnn.hidden_size
        first = d.decoder_input if d.residual else d.decoder_rnns[0]
        first_w, self.first_b = (first.weight, first.bias) if d.residual else (first.weight_ih, first.bias_ih)
        maps = [d.attention_rnn.weight_ih[:, p:], first_w[:, h_att:]]  # (G_att, D), (G_first, D)
        self.h_last = d.decoder_rnns[-1].hidden_size
        if d.projection_reads_context:
            maps += [d.frame_projection.weight[:, self.h_last:], d.stop_projection.weight[:, self.h_last:]]
        self.sizes = [m.shape[0] for m in maps]
        self.projected = memory @ torch.cat(maps).t()  # (B, T_enc, K): every map applied to every memory step
        # the rest of each map's columns, contiguous once per utterance
        self.att_w = d.attention_rnn.weight_ih[:, :p].contiguous()
        self.first_w = first_w[:, :h_att].contiguous()
        if d.projection_reads_context:
            self.frame_w = d.frame_projection.weight[:, : self.h_last].contiguous()
            self.stop_w = d.stop_projection.weight[:, : self.h_last].contiguous()
        self.att_share = memory.new_zeros(memory.shape[0], self.sizes[0])  # the initial context is zero

    @staticmethod
    def pays(decoder: TacotronDecoder, memory: Tensor) -> bool:
        return memory.shape[0] * memory.shape[1] < decoder.memory_dim and not torch.is_grad_enabled()

    def step(self, prenet_out: Tensor, memory: Tensor, processed_memory: Tensor, mask: Tensor | None,
             state: DecoderState) -> tuple[Tensor, Tensor, Tensor, DecoderState]:
        d = self.decoder
        att = d.attention_rnn
        gi = torch.addmm(self.att_share + att.bias_ih, prenet_out, self.att_w.t())  # the input's gates
        att_h, att_c = _cell_from_input_gates(att, gi, state.attention_hidden, state.attention_cell)
        att_h = F.dropout(att_h, d.attention_dropout, d.training)  # (B, H_att)
        context, weights, att_state = d.attention(att_h, memory, processed_memory, mask, state.attention)
        shares = torch.bmm(weights.unsqueeze(1).to(self.projected.dtype), self.projected).squeeze(1)  # (B, K)
        shares = shares.split(self.sizes, dim=1)
        self.att_share = shares[0]  # the next step's attention RNN reads this context
        first = torch.addmm(shares[1] + self.first_b, att_h, self.first_w.t())
        hiddens, cell_states = [], []
        x = first if d.residual else None
        for i, (rnn, h, c) in enumerate(zip(d.decoder_rnns, state.decoder_hidden, state.decoder_cell)):
            h, c = _cell_from_input_gates(rnn, first, h, c) if i == 0 and not d.residual else _run_cell(rnn, x, h, c)
            h = F.dropout(h, d.decoder_dropout, d.training)  # (B, H_dec)
            hiddens.append(h)
            cell_states.append(c)
            x = x + h if d.residual else h
        if d.projection_reads_context:
            frames = torch.addmm(shares[2] + d.frame_projection.bias, x, self.frame_w.t())
            stop = torch.addmm(shares[3] + d.stop_projection.bias, x, self.stop_w.t())
        else:
            frames, stop = d.frame_projection(x), d.stop_projection(x)
        new_state = DecoderState(att_h, att_c, tuple(hiddens), tuple(cell_states), context, att_state)
        return frames, stop, weights, new_state


def _cell_from_input_gates(cell: nn.RNNCellBase, gi: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One ``nn.LSTMCell`` / ``nn.GRUCell`` step from its input's gates ``gi`` = W_ih x + b_ih, (B, 4H) or (B, 3H)."""
    gh = F.linear(h, cell.weight_hh, cell.bias_hh)
    return lstm_update(gi + gh, c) if isinstance(cell, nn.LSTMCell) else (gru_update(gi, gh, h), c)


# --------------------------------------------------------------------------------------------------
# Global Style Tokens (Wang et al. 2018)


class ReferenceEncoder(nn.Module):
    """GST reference encoder (Wang et al. 2018; Skerry-Ryan et al. 2018): 3x3 stride-2 Conv2d+BN+ReLU
    layers over (time, mel), then a GRU whose final state summarises the reference: (B, T, n_mels) -> (B, H).
    Padded frames are zeroed before every convolution, left out of every batch norm's statistics, and the GRU
    stops at each true (downsampled) end."""

    def __init__(self, n_mels: int, channels: Sequence[int], gru_hidden: int):
        super().__init__()
        _check_positive("n_mels", n_mels)
        _check_positive("gru_hidden", gru_hidden)
        if len(channels) == 0:
            raise ValueError(f"channels must name at least one layer, but got {channels}")
        dims = [1, *channels]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False) for c_in, c_out in zip(dims[:-1], dims[1:])
        )
        self.norms = nn.ModuleList(MaskedBatchNorm2d(c) for c in channels)
        freq = n_mels
        for _ in channels:
            freq = (freq - 1) // 2 + 1
        self.gru = nn.GRU(channels[-1] * freq, gru_hidden, batch_first=True)
        self.out_dim = gru_hidden

    def forward(self, mel: Tensor, lengths: Tensor | None = None) -> Tensor:  # (B, T, n_mels) -> (B, H)
        x = mel.unsqueeze(1)  # (B, 1, T, n_mels)
        if lengths is None:
            lengths = torch.full((mel.shape[0],), mel.shape[1], dtype=torch.long, device=mel.device)
        for conv, norm in zip(self.convs, self.norms):
            x = x * lengths_to_mask(lengths, x.shape[2]).to(x.dtype)[:, None, :, None]
            x = conv(x)  # (B, C, ceil(T/2), ceil(F/2))
            lengths = (lengths - 1) // 2 + 1
            x = F.relu(norm(x, lengths_to_mask(lengths, x.shape[2])[:, None, :, None]))
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', C * F')
        if x.device.type != "cpu":
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            return self.gru(packed)[1][0]  # (B, H) final state at each utterance's end
        # on CPU the padded run is one fused kernel (the packed one is autograd through per-step slices); padding
        # only follows each utterance's steps, so its output at the last valid step is the packed run's final state
        out = self.gru(x)[0]  # (B, T', H)
        return out[torch.arange(x.shape[0], device=x.device), lengths.to(x.device) - 1]  # (B, H)


@block_config
class GSTConfig:
    """Global Style Tokens (Wang et al. 2018): ``enabled`` adds them to a text-to-speech net; ``tokens`` learned
    tokens, ``heads`` attention heads (the style width, the encoder's, must divide by it); the reference encoder's
    conv ``ref_channels`` (each halves time and frequency) and ``ref_gru_hidden``. Defaults: the paper's."""

    enabled: bool = False
    tokens: int = 10
    heads: int = 4
    ref_channels: tuple[int, ...] = (32, 32, 64, 64, 128, 128)
    ref_gru_hidden: int = 128

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_positive("GSTConfig", tokens=self.tokens, heads=self.heads, ref_gru_hidden=self.ref_gru_hidden)
        if len(self.ref_channels) == 0:
            raise ValueError(f"GSTConfig.ref_channels must name at least one layer, but got {self.ref_channels}")


class GlobalStyleTokens(nn.Module):
    """Global Style Tokens (Wang et al. 2018): multi-head attention of a reference embedding over a bank of
    learned tanh-squashed tokens; the style embedding (B, style_dim) is added to every encoder output."""

    def __init__(self, n_mels: int, style_dim: int, config: GSTConfig = GSTConfig()) -> None:
        super().__init__()
        n_tokens, n_heads = config.tokens, config.heads
        _check_positive("style_dim", style_dim)
        if style_dim % n_heads != 0:
            raise ValueError(f"style_dim must be divisible by GSTConfig.heads={n_heads}, but got {style_dim}")
        self.n_heads, self.n_tokens, self.style_dim = n_heads, n_tokens, style_dim
        self.reference_encoder = ReferenceEncoder(n_mels, config.ref_channels, config.ref_gru_hidden)
        self.tokens = nn.Parameter(torch.randn(n_tokens, style_dim // n_heads) * 0.5)
        self.query = nn.Linear(config.ref_gru_hidden, style_dim, bias=False)
        self.key = nn.Linear(style_dim // n_heads, style_dim, bias=False)
        self.value = nn.Linear(style_dim // n_heads, style_dim, bias=False)

    def _values(self) -> Tensor:
        d = self.style_dim // self.n_heads
        return self.value(torch.tanh(self.tokens)).view(self.n_tokens, self.n_heads, d).transpose(0, 1)  # (H, N, d)

    def token_weights(self, mel: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Attention of each head over the tokens for a reference: (B, T, n_mels) -> (B, heads, n_tokens)."""
        d = self.style_dim // self.n_heads
        q = self.query(self.reference_encoder(mel, lengths)).view(-1, self.n_heads, 1, d)  # (B, H, 1, d)
        k = self.key(torch.tanh(self.tokens)).view(self.n_tokens, self.n_heads, d).transpose(0, 1)  # (H, N, d)
        scores = (q @ k.transpose(1, 2)).squeeze(2) / math.sqrt(d)  # (B, H, N)
        return torch.softmax(scores, dim=-1)

    def from_weights(self, weights: Tensor) -> Tensor:
        """Style embedding from token weights (B, heads, n_tokens), e.g. chosen by hand at inference: (B, style_dim)."""
        if weights.shape[1:] != (self.n_heads, self.n_tokens):
            raise ValueError(f"weights must be (B, {self.n_heads}, {self.n_tokens}), but got {tuple(weights.shape)}")
        return (weights.unsqueeze(2) @ self._values()).squeeze(2).flatten(1)  # (B, H*d)

    def forward(self, mel: Tensor, lengths: Tensor | None = None) -> Tensor:  # (B, T, n_mels) -> (B, style_dim)
        return self.from_weights(self.token_weights(mel, lengths))

    def uniform(self, batch: int, device: torch.device) -> Tensor:
        """The style of uniform token weights (no reference at inference): (B, style_dim)."""
        weights = torch.full((batch, self.n_heads, self.n_tokens), 1.0 / self.n_tokens, device=device)
        return self.from_weights(weights)


# --------------------------------------------------------------------------------------------------
# the text-to-speech networks


class Tacotron2Output(NamedTuple):
    """mel, mel_postnet: (B, T, n_mels) before / after the post-net residual; stop_logits (B, T);
    alignments (B, N, T_text); lengths (B,) frames (the targets' in training, the stop token's at inference)."""

    mel: Tensor
    mel_postnet: Tensor
    stop_logits: Tensor
    alignments: Tensor
    lengths: Tensor


class TacotronOutput(NamedTuple):
    """mel (B, T, n_mels) from the decoder; linear (B, T, n_freq) from the CBHG post-processing net;
    stop_logits (B, T); alignments (B, N, T_text); lengths (B,) frames."""

    mel: Tensor
    linear: Tensor
    stop_logits: Tensor
    alignments: Tensor
    lengths: Tensor


class _TextToSpeech(nn.Module):
    """What both networks share: embedding -> encoder (-> + style) -> TacotronDecoder, run or inferred."""

    embedding: nn.Embedding
    encoder: nn.Module
    decoder: TacotronDecoder
    gst: GlobalStyleTokens | None

    def encode(
        self,
        text: Tensor,
        text_lengths: Tensor,
        reference: Tensor | None = None,
        reference_lengths: Tensor | None = None,
        style_weights: Tensor | None = None,
    ) -> Tensor:
        """(B, L) symbol ids -> memory (B, L, D); with GST, plus the style of `reference` (B, T, n_mels), of
        explicit `style_weights` (B, heads, n_tokens), or of uniform token weights when neither is given."""
        memory = self._encode_text(text, text_lengths)  # (B, L, D)
        if self.gst is not None:
            if style_weights is not None:
                style = self.gst.from_weights(style_weights)
            elif reference is not None:
                style = self.gst(reference, reference_lengths)
            else:
                style = self.gst.uniform(text.shape[0], text.device)
            memory = memory + style.unsqueeze(1)  # (B, L, D)
        return memory

    def _encode_text(self, text: Tensor, text_lengths: Tensor) -> Tensor:
        raise NotImplementedError

    def _decode(
        self, text: Tensor, text_lengths: Tensor, mel: Tensor, mel_lengths: Tensor, teacher_forcing_ratio: float
    ) -> DecoderOutput:
        memory = self.encode(text, text_lengths, mel, mel_lengths)  # GST reference = the target itself
        return self.decoder(memory, text_lengths, mel, teacher_forcing_ratio)

    def _infer(
        self, text: Tensor, text_lengths: Tensor, max_frames: int, stop_threshold: float,
        reference: Tensor | None, reference_lengths: Tensor | None, style_weights: Tensor | None,
    ) -> InferenceOutput:
        memory = self.encode(text, text_lengths, reference, reference_lengths, style_weights)
        return self.decoder.infer(memory, text_lengths, max_frames, stop_threshold)


def _gst(config: GSTConfig, n_mels: int, style_dim: int) -> GlobalStyleTokens | None:
    return GlobalStyleTokens(n_mels, style_dim, config) if config.enabled else None


@block_config
class Tacotron2EncoderConfig:
    """Tacotron 2's text encoder: ``embedding_dim`` character embedding -> ``n_convs`` conv layers (``conv_channels``,
    ``kernel_size``, batch norm, ReLU, ``dropout``) -> a BiLSTM of ``lstm_hidden`` per direction; (B, L) ids ->
    (B, L, 2 * lstm_hidden). Defaults: Shen et al. 2018."""

    embedding_dim: int = 512
    conv_channels: int = 512
    kernel_size: int = 5
    n_convs: int = 3
    lstm_hidden: int = 256
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_positive("Tacotron2EncoderConfig", embedding_dim=self.embedding_dim)


@block_config
class Tacotron2Config:
    """The Tacotron 2 network: encoder, attention decoder, post-net, optional GST (each block's config documents it)."""

    encoder: Tacotron2EncoderConfig = Tacotron2EncoderConfig()
    decoder: DecoderConfig = DecoderConfig()
    postnet: PostnetConfig = PostnetConfig()
    gst: GSTConfig = GSTConfig()

    def __post_init__(self) -> None:
        if self.postnet.channels == 0:
            raise ValueError("Tacotron2Config.postnet.channels must be positive: Tacotron 2's post-net is not optional")


class Tacotron2(_TextToSpeech):
    """Tacotron 2 (Shen et al. 2018): character embedding -> 3 conv + BiLSTM encoder -> location-sensitive
    attention decoder with two LSTMs -> mel frames + stop token -> 5-layer conv post-net residual."""

    def __init__(self, vocab_size: int, n_mels: int, config: Tacotron2Config = Tacotron2Config()) -> None:
        super().__init__()
        _check_positive("vocab_size", vocab_size)
        enc = config.encoder
        self.config = config
        self.embedding = nn.Embedding(vocab_size, enc.embedding_dim, padding_idx=0)
        self.encoder = ConvBiLSTMEncoder(
            enc.embedding_dim, enc.conv_channels, enc.kernel_size, enc.n_convs, enc.dropout, enc.lstm_hidden,
        )
        memory_dim = self.encoder.out_dim
        self.gst = _gst(config.gst, n_mels, memory_dim)
        self.decoder = TacotronDecoder(memory_dim, n_mels, config.decoder)
        self.postnet = Postnet(n_mels, config.postnet)

    def _encode_text(self, text: Tensor, text_lengths: Tensor) -> Tensor:
        return self.encoder(self.embedding(text), text_lengths)  # (B, L, 2*lstm_hidden)

    def forward(
        self, text: Tensor, text_lengths: Tensor, mel: Tensor, mel_lengths: Tensor, teacher_forcing_ratio: float = 1.0
    ) -> Tacotron2Output:
        """Teacher-forced run against the target mel (B, T, n_mels)."""
        out = self._decode(text, text_lengths, mel, mel_lengths, teacher_forcing_ratio)
        mel_postnet = out.mel + self.postnet(out.mel, mel_lengths)  # (B, T, n_mels)
        return Tacotron2Output(out.mel, mel_postnet, out.stop_logits, out.alignments, mel_lengths)

    @torch.no_grad()
    def infer(
        self, text: Tensor, text_lengths: Tensor, max_frames: int = 1000, stop_threshold: float = 0.5,
        reference: Tensor | None = None, reference_lengths: Tensor | None = None, style_weights: Tensor | None = None,
    ) -> Tacotron2Output:
        out = self._infer(text, text_lengths, max_frames, stop_threshold, reference, reference_lengths, style_weights)
        mel_postnet = out.mel + self.postnet(out.mel, out.lengths)
        return Tacotron2Output(out.mel, mel_postnet, out.stop_logits, out.alignments, out.lengths)


@block_config
class TacotronEncoderConfig:
    """Tacotron's text encoder: ``embedding_dim`` embedding -> pre-net (``prenet_sizes``; dropout 0.5 in training
    only, as keithito/tacotron) -> CBHG (``K`` conv banks of ``channels``, a BiGRU of ``gru_hidden``); (B, L) ->
    (B, L, 2 * gru_hidden). Defaults: Wang et al. 2017."""

    embedding_dim: int = 256
    prenet_sizes: tuple[int, ...] = (256, 128)
    K: int = 16
    channels: int = 128
    gru_hidden: int = 128

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_positive("TacotronEncoderConfig", embedding_dim=self.embedding_dim, K=self.K)


@block_config
class CBHGPostnetConfig:
    """Tacotron's post-processing net: a CBHG over the decoder's mel (``K`` banks of ``channels``, conv projections
    (``projection``, n_mels), a BiGRU of ``gru_hidden``), then a linear map to the linear spectrogram. Defaults: Wang
    et al. 2017."""

    K: int = 8
    channels: int = 128
    projection: int = 256
    gru_hidden: int = 128


@block_config
class TacotronConfig:
    """The Tacotron network: CBHG encoder, attention decoder (Tacotron's: ``TACOTRON_DECODER``), CBHG
    post-processing net, optional GST."""

    encoder: TacotronEncoderConfig = TacotronEncoderConfig()
    decoder: DecoderConfig = TACOTRON_DECODER
    postnet: CBHGPostnetConfig = CBHGPostnetConfig()
    gst: GSTConfig = GSTConfig()


class Tacotron(_TextToSpeech):
    """Tacotron (Wang et al. 2017): character embedding -> pre-net -> CBHG encoder -> content-based attention
    decoder (GRU attention RNN + residual GRUs, r frames per step) -> CBHG post-processing net -> linear
    spectrogram. A stop-token head (not in the paper) lets inference end on its own."""

    def __init__(self, vocab_size: int, n_mels: int, n_freq: int, config: TacotronConfig = TacotronConfig()) -> None:
        super().__init__()
        _check_positive("vocab_size", vocab_size)
        _check_positive("n_freq", n_freq)
        enc, post = config.encoder, config.postnet
        self.config = config
        self.embedding = nn.Embedding(vocab_size, enc.embedding_dim, padding_idx=0)
        # both pre-nets are regularisers only here: keithito/tacotron applies their dropout in training alone
        self.encoder_prenet = Prenet(enc.embedding_dim, enc.prenet_sizes, 0.5, always_dropout=False)
        self.encoder = CBHG(
            self.encoder_prenet.out_dim, enc.K, enc.channels, (enc.channels, self.encoder_prenet.out_dim),
            4, enc.gru_hidden, self.encoder_prenet.out_dim,
        )
        memory_dim = self.encoder.out_dim
        self.gst = _gst(config.gst, n_mels, memory_dim)
        self.decoder = TacotronDecoder(memory_dim, n_mels, config.decoder)
        self.postnet = CBHG(n_mels, post.K, post.channels, (post.projection, n_mels), 4, post.gru_hidden, post.channels)
        self.linear_projection = nn.Linear(self.postnet.out_dim, n_freq)

    def _encode_text(self, text: Tensor, text_lengths: Tensor) -> Tensor:
        return self.encoder(self.encoder_prenet(self.embedding(text)), text_lengths)  # (B, L, 2*gru_hidden)

    def _linear(self, mel: Tensor, lengths: Tensor) -> Tensor:
        linear = self.linear_projection(self.postnet(mel, lengths))  # (B, T, n_freq)
        return linear.masked_fill(~lengths_to_mask(lengths.to(mel.device), mel.shape[1]).unsqueeze(-1), 0.0)

    def forward(
        self, text: Tensor, text_lengths: Tensor, mel: Tensor, mel_lengths: Tensor, teacher_forcing_ratio: float = 1.0
    ) -> TacotronOutput:
        """Teacher-forced run against the target mel (B, T, n_mels)."""
        out = self._decode(text, text_lengths, mel, mel_lengths, teacher_forcing_ratio)
        return TacotronOutput(out.mel, self._linear(out.mel, mel_lengths), out.stop_logits, out.alignments, mel_lengths)

    @torch.no_grad()
    def infer(
        self, text: Tensor, text_lengths: Tensor, max_frames: int = 1000, stop_threshold: float = 0.5,
        reference: Tensor | None = None, reference_lengths: Tensor | None = None, style_weights: Tensor | None = None,
    ) -> TacotronOutput:
        out = self._infer(text, text_lengths, max_frames, stop_threshold, reference, reference_lengths, style_weights)
        return TacotronOutput(out.mel, self._linear(out.mel, out.lengths), out.stop_logits, out.alignments, out.lengths)


__all__ = [
    "TACOTRON_DECODER",
    "CBHGPostnetConfig",
    "DecoderConfig",
    "DecoderOutput",
    "DecoderState",
    "GSTConfig",
    "GlobalStyleTokens",
    "InferenceOutput",
    "ReferenceEncoder",
    "Tacotron",
    "Tacotron2",
    "Tacotron2Config",
    "Tacotron2EncoderConfig",
    "Tacotron2Output",
    "TacotronConfig",
    "TacotronDecoder",
    "TacotronEncoderConfig",
    "TacotronOutput",
]
