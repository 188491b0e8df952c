"""Aligned (waveform window, mel frames) pairs for vocoder training, cut from any speech batch.

Vocoders train on short random windows rather than whole utterances. The cut is done on the device, after the
batch is transferred (``WaveNetVocoder.on_after_batch_transfer`` calls ``cut_windows``), so any speech
DataModule that yields ``SpeechBatch`` with ``wav`` (``load_wav: true``) and ``mel`` works unchanged, and its
length bucketing and DDP sharding stay as they are.

Alignment: with a centred STFT an utterance of S samples has ``1 + S // hop`` frames, and sample ``s`` belongs
to frame ``s // hop`` (the convention the net's upsampler follows). A window of ``frames`` frames starting at
frame ``f`` is the samples ``[f * hop, (f + frames) * hop)``; ``f`` is drawn so that the whole window lies
inside the utterance (``f <= S // hop - frames``). Utterances shorter than a window are zero-padded (silence,
mel floor 0) and the padding is masked out of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class VocoderWindows:
    """Fixed-length training windows: ``wav`` (B, frames * hop), ``mel`` (B, frames, n_mels), ``mask`` (B, frames * hop)."""

    wav: torch.Tensor
    mel: torch.Tensor
    mask: torch.Tensor  # 1 where the sample is real audio, 0 in the padding of short utterances
    speakers: torch.Tensor | None
    starts: torch.Tensor  # (B,) first frame of each window


def cut_windows(
    wav: torch.Tensor,
    wav_lengths: torch.Tensor,
    mel: torch.Tensor,
    hop_length: int,
    frames: int,
    speakers: torch.Tensor | None = None,
    random: bool = True,
    generator: torch.Generator | None = None,
) -> VocoderWindows:
    """Cut one window of ``frames`` mel frames and its ``frames * hop_length`` samples from each utterance.

    wav (B, S_max) padded, wav_lengths (B,), mel (B, T_max, n_mels) time-major. ``random`` picks the start
    frame uniformly among the valid ones (training); otherwise the window is centred (validation: the same
    windows every epoch).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, but got {frames}")
    b = wav.shape[0]
    window = frames * hop_length
    # frames whose samples lie wholly inside the utterance: [0, S // hop)
    full_frames = torch.div(wav_lengths, hop_length, rounding_mode="floor")  # (B,)
    slack = (full_frames - frames).clamp(min=0)  # (B,) number of valid starts - 1
    if random:
        u = torch.rand(b, generator=generator).to(wav.device)  # drawn on the CPU so a CPU generator seeds it
        starts = (u * (slack + 1)).long().clamp(max=slack)
    else:
        starts = slack // 2
    offsets = torch.arange(window, device=wav.device)
    sample_idx = starts[:, None] * hop_length + offsets  # (B, window)
    frame_idx = starts[:, None] + torch.arange(frames, device=wav.device)  # (B, frames)
    mask = (sample_idx < wav_lengths[:, None]).to(wav.dtype)
    # indices past the padded tensors (only for utterances shorter than a window) read padding
    wav_pad = torch.nn.functional.pad(wav, (0, max(0, int(sample_idx.max()) + 1 - wav.shape[1])))
    mel_pad = torch.nn.functional.pad(mel, (0, 0, 0, max(0, int(frame_idx.max()) + 1 - mel.shape[1])))
    out_wav = wav_pad.gather(1, sample_idx) * mask  # (B, window)
    out_mel = mel_pad.gather(1, frame_idx[..., None].expand(-1, -1, mel.shape[2]))  # (B, frames, n_mels)
    return VocoderWindows(wav=out_wav, mel=out_mel, mask=mask, speakers=speakers, starts=starts)
