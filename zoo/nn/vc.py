"""Sequence-to-sequence voice conversion: a Listen-Attend-Spell pyramidal BiLSTM encoder (Chan et al. 2016) over
the source speaker's mel frames, and the Tacotron 2 attention decoder (``zoo.nn.tacotron.TacotronDecoder``)
producing the target speaker's frames, with an optional post-net.

Conventions as in ``zoo.nn.tacotron_blocks``: batch-first, time-major (B, T, C); ``lengths`` are (B,) valid frames.
No Lightning here: the experiment lives in ``zoo.models.vc``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from zoo.nn.tacotron import DecoderConfig, TacotronDecoder
from zoo.nn.tacotron_blocks import Postnet, PostnetConfig, run_bidirectional_rnn
from zoo.config import block_config
from zoo.sequence import lengths_to_mask


def _check_positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, but got {value}")


def pyramid_lengths(lengths: Tensor, n_layers: int) -> Tensor:
    """Valid steps after ``n_layers`` pyramid halvings: ceil(length / 2) per layer (an odd last frame is paired
    with a zero pad frame rather than dropped)."""
    for _ in range(n_layers):
        lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
    return lengths


class _BLSTM(nn.Module):
    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:  # (B, T, in_dim) -> (B, T, 2H), zeros on padding
        return run_bidirectional_rnn(self.rnn, x, lengths)  # the backward direction starts at each true end


class PyramidalBLSTMEncoder(nn.Module):
    """Listener of Listen, Attend and Spell (Chan et al. 2016): a BiLSTM over the input frames, then
    ``n_pyramid_layers`` BiLSTMs each over pairs of consecutive outputs of the layer below concatenated,
    so every pyramid layer halves time (factor 2 ** n_pyramid_layers in all)."""

    def __init__(self, in_dim: int = 80, hidden: int = 256, n_pyramid_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        _check_positive("in_dim", in_dim)
        _check_positive("hidden", hidden)
        if n_pyramid_layers < 0:
            raise ValueError(f"n_pyramid_layers must be >= 0, but got {n_pyramid_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), but got {dropout}")
        self.n_pyramid_layers = n_pyramid_layers
        self.out_dim = 2 * hidden
        self.dropout = nn.Dropout(dropout)
        self.bottom = _BLSTM(in_dim, hidden)
        self.pyramid = nn.ModuleList(_BLSTM(4 * hidden, hidden) for _ in range(n_pyramid_layers))

    @property
    def downsampling(self) -> int:
        return 2**self.n_pyramid_layers

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, in_dim), (B,) -> (B, ceil(T / 2^L), 2H) encodings, zero past each length, and their lengths (B,)."""
        if lengths.shape != (x.shape[0],):
            raise ValueError(f"lengths must have shape ({x.shape[0]},), but got {tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
            raise ValueError(f"lengths must lie in [1, {x.shape[1]}], but got {lengths.tolist()}")
        lengths = lengths.to(x.device)
        h = self.bottom(x, lengths)  # (B, T, 2H)
        for layer in self.pyramid:
            if h.shape[1] % 2:
                h = torch.cat([h, h.new_zeros(h.shape[0], 1, h.shape[2])], dim=1)  # the pad frame is 0, as padding is
            batch, time, width = h.shape
            h = self.dropout(h).reshape(batch, time // 2, 2 * width)  # (B, T/2, 4H): frames 2t and 2t+1 side by side
            lengths = pyramid_lengths(lengths, 1)
            h = layer(h, lengths)  # (B, T/2, 2H)
        return h, lengths


class VCOutput(NamedTuple):
    """Teacher-forced conversion.

    mel: (B, T_tgt, out_dim) decoder frames (mels, or standardised features: ``Seq2SeqVC``); mel_postnet:
    (B, T_tgt, out_dim) after the post-net residual (the same tensor when there is no post-net); stop_logits: (B, T_tgt); alignments: (B, ceil(T_tgt / r), T_enc);
    memory_lengths: (B,) valid encoder steps (T_enc = ceil(T_src / 2^L)).
    """

    mel: Tensor
    mel_postnet: Tensor
    stop_logits: Tensor
    alignments: Tensor
    memory_lengths: Tensor


class VCInferenceOutput(NamedTuple):
    """Free-running conversion: fields as ``VCOutput`` plus lengths (B,) frames and stopped (B,) bool (False where
    the max-length guard ended the utterance)."""

    mel: Tensor
    mel_postnet: Tensor
    stop_logits: Tensor
    alignments: Tensor
    memory_lengths: Tensor
    lengths: Tensor
    stopped: Tensor


@block_config
class PyramidalEncoderConfig:
    """The listener: a BiLSTM of ``hidden`` per direction over the source frames, then ``pyramid_layers`` BiLSTMs over
    pairs of frames (time / 2 ** pyramid_layers), ``dropout`` between layers; (B, T, n_mels) -> (B, T', 2 * hidden)."""

    hidden: int = 256
    pyramid_layers: int = 2
    dropout: float = 0.0


# the decoder of voice conversion: Tacotron 2's at r = 2, narrower, with explicit location-attention sizes
VC_DECODER = DecoderConfig(reduction_factor=2, attention_rnn_dim=512, decoder_rnn_dims=(512,), attention_filters=32,
                           attention_kernel_size=31)


@block_config
class Seq2SeqVCConfig:
    """The seq2seq converter: pyramidal encoder, the Tacotron decoder (``DecoderConfig``), optional post-net
    (``postnet.channels`` 0: none, the default)."""

    encoder: PyramidalEncoderConfig = PyramidalEncoderConfig()
    decoder: DecoderConfig = VC_DECODER
    postnet: PostnetConfig = PostnetConfig(channels=0)


class Seq2SeqVC(nn.Module):
    """Attention seq2seq voice conversion (as in Zhang et al. 2019, "Sequence-to-sequence acoustic modeling for
    voice conversion"): pyramidal BiLSTM encoder over source mels -> Tacotron 2 decoder -> optional post-net.

    The decoder predicts (and is fed back) frames of ``out_dim`` channels: the target's mels (``out_dim`` None, the
    default: ``n_mels``), or other acoustic features, e.g. WORLD parameters, which it predicts on a standardised
    scale: the ``out_mean``/``out_std`` buffers (set once from the training data: ``set_output_scale``) map them
    back (``destandardise``) and travel with the weights."""

    out_mean: Tensor
    out_std: Tensor
    scale_set: Tensor

    def __init__(self, n_mels: int, config: Seq2SeqVCConfig = Seq2SeqVCConfig(), out_dim: int | None = None) -> None:
        super().__init__()
        enc = config.encoder
        self.config = config
        self.n_mels = n_mels
        self.out_dim = n_mels if out_dim is None else out_dim
        _check_positive("out_dim", self.out_dim)
        self.standardised = out_dim is not None
        self.encoder = PyramidalBLSTMEncoder(n_mels, enc.hidden, enc.pyramid_layers, enc.dropout)
        self.decoder = TacotronDecoder(self.encoder.out_dim, self.out_dim, config.decoder)
        self.postnet = Postnet(self.out_dim, config.postnet) if config.postnet.channels > 0 else None
        if self.standardised:
            self.register_buffer("out_mean", torch.zeros(self.out_dim))
            self.register_buffer("out_std", torch.ones(self.out_dim))
            self.register_buffer("scale_set", torch.tensor(False))

    def set_output_scale(self, mean: Tensor, std: Tensor) -> None:
        """The per-channel mean and std of the training targets (a network with ``out_dim`` only)."""
        if not self.standardised:
            raise ValueError("a mel-output converter has no output scale (its mels are already in [0, 1])")
        if mean.shape != (self.out_dim,) or std.shape != (self.out_dim,) or bool((std <= 0).any()):
            raise ValueError(f"expected ({self.out_dim},) mean and positive std, but got {tuple(mean.shape)} and "
                             f"{tuple(std.shape)}")
        self.out_mean.copy_(mean)
        self.out_std.copy_(std)
        self.scale_set.fill_(True)

    def standardise(self, features: Tensor) -> Tensor:
        """(..., out_dim) features on their own scale -> the network's output scale (identity for mels)."""
        return (features - self.out_mean) / self.out_std if self.standardised else features

    def destandardise(self, frames: Tensor) -> Tensor:
        """(..., out_dim) network frames -> features on their own scale (identity for mels)."""
        return frames * self.out_std + self.out_mean if self.standardised else frames

    @property
    def reduction_factor(self) -> int:
        return self.decoder.reduction_factor

    def _postnet(self, mel: Tensor, lengths: Tensor | None) -> Tensor:
        if self.postnet is None:
            return mel
        return mel + self.postnet(mel, lengths)  # (B, T, n_mels)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt: Tensor, tgt_lengths: Tensor, teacher_forcing_ratio: float = 1.0
    ) -> VCOutput:
        """Teacher-forced on tgt (B, T_tgt, out_dim), on the network's scale (``standardise``), from src
        (B, T_src, n_mels)."""
        memory, memory_lengths = self.encoder(src, src_lengths)  # (B, T_enc, 2H), (B,)
        out = self.decoder(memory, memory_lengths, tgt, teacher_forcing_ratio)
        mel_post = self._postnet(out.mel, tgt_lengths)
        return VCOutput(out.mel, mel_post, out.stop_logits, out.alignments, memory_lengths)

    @torch.no_grad()
    def infer(
        self, src: Tensor, src_lengths: Tensor, max_frames: int = 1000, stop_threshold: float = 0.5
    ) -> VCInferenceOutput:
        memory, memory_lengths = self.encoder(src, src_lengths)
        out = self.decoder.infer(memory, memory_lengths, max_frames, stop_threshold)
        valid = lengths_to_mask(out.lengths, out.mel.shape[1]).unsqueeze(-1)  # (B, T, 1)
        mel_post = self._postnet(out.mel, out.lengths).masked_fill(~valid, 0.0)
        return VCInferenceOutput(out.mel, mel_post, out.stop_logits, out.alignments, memory_lengths, out.lengths,
                                 out.stopped)


__all__ = ["VC_DECODER", "PyramidalBLSTMEncoder", "PyramidalEncoderConfig", "Seq2SeqVC", "Seq2SeqVCConfig", "VCInferenceOutput", "VCOutput", "pyramid_lengths"]
