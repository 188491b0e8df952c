"""Audio front end shared by every speech experiment: file I/O, mu-law, and waveform <-> spectrogram transforms.

Feature conventions follow keithito/tacotron (``util/audio.py``):

* pre-emphasis ``y[n] = x[n] - a x[n-1]`` before the STFT, undone by the recursive de-emphasis filter after
  Griffin-Lim;
* ``dB = 20 log10(max(magnitude, AMIN)) - ref_db`` and ``normalised = clip((dB - min_db) / -min_db, 0, 1)``,
  so 0 is the noise floor ``min_db`` and 1 the ceiling ``0 dB`` (a magnitude of ``10 ** (ref_db / 20)``);
* Slaney-style mel filterbank, identical to ``librosa.filters.mel(..., htk=False, norm="slaney")``.

Shapes are frequency-major like librosa: waveforms are ``(..., T)`` and spectrograms ``(..., channels, frames)``
with ``channels`` = ``n_freq`` (linear) or ``n_mels`` (mel) and ``frames = 1 + T // hop_length`` (centred STFT,
reflect padding). Any leading batch dimensions are allowed. DataModules that want ``(frames, n_mels)`` transpose
themselves. All transforms are torch ops on the input's device and dtype (no numpy round trips), so they run
batched on the GPU and are differentiable.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import json
import math
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import librosa
import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

__all__ = [
    "AMIN",
    "AudioConfig",
    "AudioError",
    "AudioFrontEnd",
    "Features",
    "deemphasis",
    "load_wav",
    "mu_law_decode",
    "mu_law_encode",
    "preemphasis",
    "save_wav",
]

# Magnitude floor before the log: 10 ** (-100 / 20), keithito's `min_level` for min_level_db = -100. It is a
# constant rather than derived from min_db so that changing min_db only moves the normalisation window.
AMIN = 1e-5

# Bumped whenever the transforms change in a way that invalidates on-disk feature caches; part of cache_key().
_FEATURE_VERSION = 1


@dataclass(frozen=True)
class AudioConfig:
    """Signal-processing settings shared by data and model (keithito/tacotron hparams, Tacotron paper GL power)."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    ref_db: float = 20.0
    min_db: float = -100.0
    preemphasis: float = 0.97
    griffin_lim_iters: int = 60
    griffin_lim_power: float = 1.5

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "griffin_lim_iters"):
            value = getattr(self, name)
            # bool is an int subclass; True as an FFT size is always a typo
            if isinstance(value, bool) or not isinstance(value, int):
                # ValueError rather than TypeError: every bad config field is a ValueError naming the field
                raise ValueError(f"{name} must be an int, but got {value!r}")  # noqa: TRY004
        for name in ("fmin", "fmax", "ref_db", "min_db", "preemphasis", "griffin_lim_power"):
            value = getattr(self, name)
            if value is None and name == "fmax":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, but got {value!r}")
            # Coerce ints to float so AudioConfig(fmin=0) == AudioConfig(fmin=0.0) and both share a cache key.
            object.__setattr__(self, name, float(value))

        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, but got {self.sample_rate}")
        if self.n_fft < 2:
            raise ValueError(f"n_fft must be >= 2, but got {self.n_fft}")
        if self.hop_length < 1:
            raise ValueError(f"hop_length must be >= 1, but got {self.hop_length}")
        if self.hop_length > self.win_length:
            # frames would skip samples and the inverse STFT would have gaps (NOLA violated)
            raise ValueError(
                f"hop_length must be <= win_length, but got hop_length={self.hop_length} > win_length={self.win_length}"
            )
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length must be <= n_fft, but got win_length={self.win_length} > n_fft={self.n_fft}")
        if self.n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, but got {self.n_mels}")
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.fmin < nyquist:
            raise ValueError(f"fmin must be in [0, sample_rate / 2 = {nyquist}), but got {self.fmin}")
        if self.fmax is not None and not self.fmin < self.fmax <= nyquist:
            raise ValueError(f"fmax must be in (fmin = {self.fmin}, sample_rate / 2 = {nyquist}], but got {self.fmax}")
        if self.min_db >= 0:
            raise ValueError(f"min_db must be negative, but got {self.min_db}")
        if not 0.0 <= self.preemphasis < 1.0:
            # a >= 1 makes the de-emphasis IIR unstable
            raise ValueError(f"preemphasis must be in [0, 1), but got {self.preemphasis}")
        if self.griffin_lim_iters < 1:
            raise ValueError(f"griffin_lim_iters must be >= 1, but got {self.griffin_lim_iters}")
        if self.griffin_lim_power <= 0:
            raise ValueError(f"griffin_lim_power must be positive, but got {self.griffin_lim_power}")

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT of ``num_samples`` samples."""
        return 1 + num_samples // self.hop_length

    def cache_key(self) -> str:
        """16-hex-digit SHA-256 of every field (and the feature version); identical on every machine and run."""
        # json with sorted keys and float repr is deterministic across platforms, unlike hash() or pickle
        payload = json.dumps({"version": _FEATURE_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# File I/O
# ---------------------------------------------------------------------------------------------------------------


# Checkpoints keep their hyperparameters, AudioConfig included; torch.load's weights-only unpickler (the default
# since torch 2.6) accepts only allow-listed classes, and this plain frozen dataclass is safe to allow.
torch.serialization.add_safe_globals([AudioConfig])


class AudioError(ValueError):
    """Unreadable, corrupt, truncated or empty audio file; the message names the file."""


def _riff_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(declared, available) bytes of a RIFF/WAVE ``data`` chunk when the file holds fewer bytes than declared.

    libsndfile silently shrinks the frame count of a truncated WAV to what is on disk (it only logs
    "data : N (should be M)"), so a half-copied file would load as a shorter clip without this check.
    """
    file_size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None  # not a little-endian RIFF WAVE (RF64 / W64 / other formats are libsndfile's job)
        offset = 12
        while offset + 8 <= file_size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = file_size - offset - 8
                # 0 and 0xFFFFFFFF mark streamed WAVs whose writer never patched the length in
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                    return chunk_size, available
                return None
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are word aligned
    return None


def load_wav(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """Float32 mono waveform ``(T,)`` in [-1, 1] at ``sample_rate``; channels are averaged and other rates are
    resampled with ``librosa.resample(res_type="soxr_hq")``.

    Raises FileNotFoundError for a missing path and AudioError (naming the file) for anything unreadable,
    corrupt, truncated, empty or non-finite.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, but got {sample_rate!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such audio file", str(path))
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")

    try:
        with sf.SoundFile(path) as f:
            expected_frames = f.frames
            file_rate = f.samplerate
            data = f.read(dtype="float32", always_2d=True)  # (T, C)
    except sf.SoundFileError as e:  # LibsndfileError etc.: not audio, bad header, decoder lost sync
        raise AudioError(f"{path}: cannot decode audio ({e})") from e

    shortfall = _riff_data_shortfall(path)
    if shortfall is not None:
        raise AudioError(
            f"{path}: truncated WAV, header declares {shortfall[0]} data bytes but only {shortfall[1]} present"
        )
    if data.shape[0] != expected_frames:
        raise AudioError(
            f"{path}: truncated audio, header declares {expected_frames} frames but {data.shape[0]} were read"
        )
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 frames)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")

    wav = data.mean(axis=1)  # (T,) downmix before resampling: C times cheaper
    if file_rate != sample_rate:
        wav = librosa.resample(wav, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    # Resampling overshoots a full-scale signal slightly (Gibbs) and float WAVs may exceed 1; mu-law and the
    # models assume [-1, 1].
    wav = np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(wav))


def save_wav(path: str | os.PathLike, wav: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write a mono ``(T,)`` waveform as 16-bit PCM WAV, clipped to [-1, 1]; atomic (temp file + rename)."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"wav must be mono with shape (T,), but got shape {wav.shape}")
    if not np.isfinite(wav).all():
        raise ValueError(f"wav contains NaN or Inf; refusing to write {path}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, but got {sample_rate!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Scale by 32768 (the inverse of what libsndfile's reader divides by) so a load/save/load cycle is lossless;
    # only +1.0 itself has no int16 code and is clipped to 32767.
    pcm = np.clip(np.round(wav.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    # Temp file in the destination directory so os.replace is a same-filesystem atomic rename: readers (e.g. a
    # DataLoader worker or TensorBoard) never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            sf.write(f, pcm, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------------------
# Mu-law companding (ITU-T G.711; WaveNet, van den Oord et al. 2016, section 2.2)
# ---------------------------------------------------------------------------------------------------------------


def _check_channels(quantization_channels: int) -> int:
    if (
        isinstance(quantization_channels, bool)
        or not isinstance(quantization_channels, int)
        or quantization_channels < 2
    ):
        raise ValueError(f"quantization_channels must be an int >= 2, but got {quantization_channels!r}")
    return quantization_channels - 1


def mu_law_encode(x: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Float waveform in [-1, 1] (clamped) -> int64 class ids in [0, Q-1], any shape."""
    mu = _check_channels(quantization_channels)
    x = x.clamp(-1.0, 1.0)
    companded = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)  # in [-1, 1]
    # floor(v + 0.5) rounds to the nearest of the mu + 1 uniformly spaced levels
    return torch.floor((companded + 1.0) / 2.0 * mu + 0.5).long().clamp(0, mu)


def mu_law_decode(q: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Class ids in [0, Q-1] -> float waveform in [-1, 1] (default float dtype), any shape; inverse of the levels."""
    mu = _check_channels(quantization_channels)
    companded = 2.0 * q.to(torch.get_default_dtype()) / mu - 1.0
    return torch.sign(companded) * torch.expm1(companded.abs() * math.log1p(mu)) / mu


# ---------------------------------------------------------------------------------------------------------------
# Pre-/de-emphasis
# ---------------------------------------------------------------------------------------------------------------


def preemphasis(wav: torch.Tensor, coefficient: float) -> torch.Tensor:
    """FIR ``y[n] = x[n] - a x[n-1]`` along the last dim (``x[-1] = 0``), as scipy.signal.lfilter([1, -a], [1], x)."""
    if coefficient == 0:
        return wav
    return torch.cat([wav[..., :1], wav[..., 1:] - coefficient * wav[..., :-1]], dim=-1)  # (..., T)


def _decay_powers(base: float, exponents: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(base, dtype=like.dtype, device=like.device).pow(exponents.to(like.dtype))


def deemphasis(wav: torch.Tensor, coefficient: float, block: int = 256) -> torch.Tensor:
    """IIR ``y[n] = x[n] + a y[n-1]`` along the last dim (zero state), the exact inverse of ``preemphasis``.

    A Python loop over samples is far too slow and scipy would force a CPU round trip, so the recursion is
    solved blockwise: inside each block of ``block`` samples it is a lower-triangular Toeplitz matmul with
    entries ``a ** (i - j)``; the state handed from block to block obeys the same recursion with coefficient
    ``a ** block``, solved recursively (depth log_block(T)). Differentiable and batched over leading dims.
    """
    if coefficient == 0:
        return wav
    *lead, T = wav.shape
    if T == 0:
        return wav
    L = min(block, T)
    nb = -(-T // L)
    xb = F.pad(wav, (0, nb * L - T)).reshape(*lead, nb, L)  # (..., nb, L)
    idx = torch.arange(L, device=wav.device)
    lag = idx[:, None] - idx[None, :]  # (L, L) i - j
    kernel = torch.where(lag >= 0, _decay_powers(coefficient, lag.clamp(min=0), wav), 0.0)  # (L, L) lower-triangular
    y = xb @ kernel.T  # (..., nb, L) response to each block's own input
    if nb > 1:
        # y at the end of each block: Y_j = local_end_j + a**L * Y_{j-1}
        ends = deemphasis(y[..., -1], coefficient**L, block)  # (..., nb)
        state = F.pad(ends[..., :-1], (1, 0))  # (..., nb) state entering block j
        y = y + state[..., None] * _decay_powers(coefficient, idx + 1, wav)  # (..., nb, L)
    return y.reshape(*lead, nb * L)[..., :T]


# ---------------------------------------------------------------------------------------------------------------
# Spectrogram front end
# ---------------------------------------------------------------------------------------------------------------


class Features(NamedTuple):
    """Normalised spectrograms from one STFT; both in [0, 1]."""

    mel: torch.Tensor  # (..., n_mels, frames)
    linear: torch.Tensor  # (..., n_freq, frames)


class AudioFrontEnd(torch.nn.Module):
    """Waveform <-> spectrogram transforms; buffers (window, mel basis, its pseudo-inverse) follow .to(device).

    The buffers are derived from ``config`` and therefore not persistent: they never enter a model's state_dict,
    so checkpoints do not depend on them and a front end with a different config cannot be silently loaded.
    """

    window: torch.Tensor
    mel_basis: torch.Tensor
    mel_basis_pinv: torch.Tensor

    def __init__(self, config: AudioConfig) -> None:
        super().__init__()
        if not isinstance(config, AudioConfig):
            raise TypeError(f"config must be an AudioConfig, but got {type(config).__name__}")
        self.config = config
        c = config
        with warnings.catch_warnings():
            # librosa only warns about empty filters; they are turned into an error below
            warnings.filterwarnings("ignore", message="Empty filters detected", category=UserWarning)
            mel_basis = librosa.filters.mel(
                sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=False, norm="slaney"
            )  # (n_mels, n_freq) float32
        empty = np.flatnonzero(mel_basis.max(axis=1) == 0)
        if empty.size:
            # a filter narrower than one FFT bin is all zeros: that mel channel is constant and the inverse degenerate
            raise ValueError(
                f"n_mels={c.n_mels} is too many for n_fft={c.n_fft} at sample_rate={c.sample_rate} "
                f"(fmin={c.fmin}, fmax={c.fmax}): mel filters {empty.tolist()} are empty"
            )
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True), persistent=False)  # (win,)
        self.register_buffer("mel_basis", torch.from_numpy(mel_basis), persistent=False)  # (n_mels, n_freq)
        pinv = np.linalg.pinv(mel_basis.astype(np.float64)).astype(np.float32)
        self.register_buffer("mel_basis_pinv", torch.from_numpy(pinv), persistent=False)  # (n_freq, n_mels)

    def extra_repr(self) -> str:
        return repr(self.config)

    # -- STFT ---------------------------------------------------------------------------------------------------

    def _frames(self, dtype: torch.dtype) -> dict:
        """The framing both transforms share: the config's FFT, hop and window sizes, a centred one-sided STFT."""
        c = self.config
        return {"n_fft": c.n_fft, "hop_length": c.hop_length, "win_length": c.win_length,
                "window": self.window.to(dtype), "center": True, "normalized": False, "onesided": True}

    def _stft(self, wav: torch.Tensor) -> torch.Tensor:
        # (B, n_freq, frames)
        return torch.stft(wav, **self._frames(wav.dtype), pad_mode="reflect", return_complex=True)

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, **self._frames(spec.real.dtype), length=length)  # (B, length)

    def stft_magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        """|STFT| of ``wav`` as given (no pre-emphasis): (..., T) -> (..., n_freq, 1 + T // hop_length)."""
        if not wav.is_floating_point():
            raise ValueError(f"wav must be a floating-point tensor, but got {wav.dtype}")
        *lead, T = wav.shape
        if T <= self.config.n_fft // 2:
            # reflect padding needs more than n_fft // 2 samples; torch's own message does not say so
            raise ValueError(f"wav needs more than n_fft // 2 = {self.config.n_fft // 2} samples, but got {T}")
        spec = self._stft(wav.reshape(-1, T))  # (B, n_freq, frames)
        return spec.abs().reshape(*lead, *spec.shape[-2:])  # (..., n_freq, frames)

    # -- dB and normalisation (keithito/tacotron util/audio.py) -------------------------------------------------

    def amp_to_db(self, magnitude: torch.Tensor) -> torch.Tensor:
        return 20.0 * torch.log10(magnitude.clamp(min=AMIN)) - self.config.ref_db

    def db_to_amp(self, db: torch.Tensor) -> torch.Tensor:
        return torch.pow(10.0, (db + self.config.ref_db) / 20.0)

    def normalize(self, db: torch.Tensor) -> torch.Tensor:
        min_db = self.config.min_db
        return ((db - min_db) / -min_db).clamp(0.0, 1.0)

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        min_db = self.config.min_db
        return normalized.clamp(0.0, 1.0) * -min_db + min_db

    # -- analysis -----------------------------------------------------------------------------------------------

    def preemphasize(self, wav: torch.Tensor) -> torch.Tensor:
        return preemphasis(wav, self.config.preemphasis)

    def deemphasize(self, wav: torch.Tensor) -> torch.Tensor:
        return deemphasis(wav, self.config.preemphasis)

    def features(self, wav: torch.Tensor) -> Features:
        """(mel, linear) normalised spectrograms of ``wav`` (..., T) from a single pre-emphasised STFT."""
        magnitude = self.stft_magnitude(self.preemphasize(wav))  # (..., n_freq, frames)
        mel_magnitude = self.mel_basis.to(magnitude.dtype) @ magnitude  # (..., n_mels, frames)
        return Features(
            mel=self.normalize(self.amp_to_db(mel_magnitude)),
            linear=self.normalize(self.amp_to_db(magnitude)),
        )

    def linear(self, wav: torch.Tensor) -> torch.Tensor:
        """Normalised log-linear spectrogram: (..., T) -> (..., n_freq, frames) in [0, 1]."""
        return self.normalize(self.amp_to_db(self.stft_magnitude(self.preemphasize(wav))))

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel spectrogram: (..., T) -> (..., n_mels, frames) in [0, 1]."""
        return self.features(wav).mel

    def frames_of(self, wav: torch.Tensor) -> torch.Tensor:
        """(S,) waveform of any length -> its (1 + S // hop, n_mels) normalised mel, time-major (a synthesised
        utterance that stopped after a frame or two is zero-padded to one FFT window first)."""
        padded = torch.nn.functional.pad(wav.float().cpu(), (0, max(0, self.config.n_fft - wav.shape[0])))
        return self.mel(padded).T[: 1 + wav.shape[0] // self.config.hop_length]

    # -- synthesis ----------------------------------------------------------------------------------------------

    def mel_to_linear_magnitude(self, mel_norm: torch.Tensor, nnls_iters: int = 50) -> torch.Tensor:
        """Normalised mel (..., n_mels, frames) -> linear magnitude (..., n_freq, frames), still pre-emphasised.

        Non-negative least squares ``min_{x >= 0} ||M x - m||`` like librosa.feature.inverse.mel_to_stft, but
        batched on-device: start from the mel basis pseudo-inverse clamped at AMIN, then ``nnls_iters``
        multiplicative updates (Lee & Seung 2001), which keep x non-negative. 50 updates cut the mel misfit of
        the clamped pinv about 15x and take ~1% of the Griffin-Lim time. Bins outside every filter (above fmax)
        come back at the floor AMIN.
        """
        if isinstance(nnls_iters, bool) or not isinstance(nnls_iters, int) or nnls_iters < 0:
            raise ValueError(f"nnls_iters must be an int >= 0, but got {nnls_iters!r}")
        mel_magnitude = self.db_to_amp(self.denormalize(mel_norm))  # (..., n_mels, frames)
        basis = self.mel_basis.to(mel_magnitude.dtype)  # (n_mels, n_freq)
        linear = (self.mel_basis_pinv.to(mel_magnitude.dtype) @ mel_magnitude).clamp(min=AMIN)  # (..., n_freq, frames)
        numerator = basis.T @ mel_magnitude  # (..., n_freq, frames)
        for _ in range(nnls_iters):
            linear = linear * numerator / (basis.T @ (basis @ linear) + 1e-12)  # (..., n_freq, frames)
        return linear.clamp(min=AMIN)

    def griffin_lim(
        self, magnitude: torch.Tensor, n_iter: int | None = None, *, momentum: float = 0.99
    ) -> torch.Tensor:
        """Fast Griffin-Lim (Perraudin, Balazs & Søndergaard 2013) on top of Griffin & Lim (1984).

        Linear magnitude ``(..., n_freq, frames)`` -> waveform ``(..., T)``, momentum 0.99 as in the paper.

        ``T = (frames - 1) * hop_length`` so that re-analysis gives exactly ``frames`` frames. Phases start from
        a fixed-seed uniform draw of shape (n_freq, frames) shared by every batch item, so the result is
        deterministic and a batch equals its items run one by one.
        """
        c = self.config
        n_iter = c.griffin_lim_iters if n_iter is None else n_iter
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
            raise ValueError(f"n_iter must be an int >= 0, but got {n_iter!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), but got {momentum}")
        if not magnitude.is_floating_point():
            raise ValueError(f"magnitude must be a real floating-point tensor, but got {magnitude.dtype}")
        *lead, n_freq, frames = magnitude.shape
        if n_freq != c.n_freq:
            raise ValueError(
                f"magnitude must have n_freq = {c.n_freq} channels, but got shape {tuple(magnitude.shape)}"
            )
        if frames < 2:
            raise ValueError(f"magnitude needs at least 2 frames, but got {frames}")
        length = (frames - 1) * c.hop_length
        target = magnitude.reshape(-1, n_freq, frames)  # (B, n_freq, frames)

        # Random initial phases (librosa's default init), drawn on a CPU generator so every device starts alike.
        generator = torch.Generator().manual_seed(0)
        phase = 2 * math.pi * torch.rand(n_freq, frames, generator=generator, dtype=torch.float64)
        angles = torch.polar(torch.ones_like(phase), phase).to(device=target.device, dtype=_complex_of(target.dtype))
        angles = angles.expand_as(target)  # (B, n_freq, frames)
        previous = None
        # Perraudin's t_n = c_n + alpha (c_n - c_{n-1}); scaling by 1 / (1 + alpha) before the unit-modulus
        # projection gives librosa's / torchaudio's c_n - alpha / (1 + alpha) c_{n-1}.
        for _ in range(n_iter):
            rebuilt = self._stft(self._istft(target * angles, length))  # (B, n_freq, frames) nearest consistent STFT
            angles = rebuilt if previous is None else rebuilt - (momentum / (1 + momentum)) * previous
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        wav = self._istft(target * angles, length)  # (B, T)
        return wav.reshape(*lead, length)

    def _sharpen(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Raise magnitudes to ``griffin_lim_power`` (Tacotron, Wang et al. 2017, section 3.4) about the 0 dB ceiling.

        ``ceiling * (m / ceiling) ** p`` is keithito's ``m ** p`` times the constant ``ceiling ** (1 - p)``: the same
        sound, but the ceiling (normalised 1.0) maps to itself so the waveform stays in range instead of clipping.
        """
        power = self.config.griffin_lim_power
        if power == 1.0:
            return magnitude
        ceiling = 10.0 ** (self.config.ref_db / 20.0)
        return ceiling * (magnitude / ceiling).pow(power)

    def linear_to_wav(self, linear_norm: torch.Tensor) -> torch.Tensor:
        """Normalised linear spectrogram (..., n_freq, frames) -> waveform (..., (frames - 1) * hop_length)."""
        magnitude = self.db_to_amp(self.denormalize(linear_norm))  # (..., n_freq, frames)
        return self.deemphasize(self.griffin_lim(self._sharpen(magnitude)))

    def mel_to_wav(self, mel_norm: torch.Tensor) -> torch.Tensor:
        """Normalised mel spectrogram (..., n_mels, frames) -> waveform (..., (frames - 1) * hop_length)."""
        return self.deemphasize(self.griffin_lim(self._sharpen(self.mel_to_linear_magnitude(mel_norm))))



@functools.lru_cache(maxsize=4)
def _front_end(config: AudioConfig) -> AudioFrontEnd:
    """One AudioFrontEnd (mel basis and its pseudo-inverse) per config, not one per utterance vocoded."""
    return AudioFrontEnd(config)


def griffin_lim_wav(spec: torch.Tensor, config: AudioConfig, kind: str = "mel") -> torch.Tensor:
    """(T, n_mels) normalised mel frames (or (T, n_freq) linear frames with ``kind="linear"``) -> (S,) waveform in
    [-1, 1] by Griffin-Lim at ``config``'s power and iterations; an utterance shorter than one FFT window (an early
    stop) is padded with silent frames first."""
    if kind not in ("mel", "linear"):
        raise ValueError(f"kind must be 'mel' or 'linear', but got {kind!r}")
    front = _front_end(config)
    min_frames = config.n_fft // config.hop_length + 1
    spec = spec.detach().clamp(0.0, 1.0).float().cpu()
    if spec.shape[0] < min_frames:
        spec = torch.cat([spec, spec.new_zeros(min_frames - spec.shape[0], spec.shape[1])])
    with torch.no_grad():
        wav = front.mel_to_wav(spec.T) if kind == "mel" else front.linear_to_wav(spec.T)
        return wav.clamp(-1.0, 1.0)


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return {torch.float64: torch.complex128, torch.float16: torch.complex32}.get(dtype, torch.complex64)
