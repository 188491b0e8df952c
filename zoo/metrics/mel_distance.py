"""A fast training-time proxy of mel-cepstral distortion: a cepstral distance of log-mel spectrograms.

This is *not* the MCD that voice-conversion papers report (that one, from WORLD spectral envelopes and SPTK
mel-cepstra, is ``zoo.metrics.mcd``); it needs no waveform, runs inside a validation step and is comparable only
between runs of this zoo at the same ``AudioConfig``. Logged as ``mel_cd_proxy_db``.

The natural-log mel amplitudes over the C mel channels, read as samples of a log spectrum at the frequencies
w_k = pi (k + 1/2) / C, are expanded in SPTK's one-sided cepstral series
``log|X(w_k)| = c_0 + sum_{m>=1} c_m cos(m w_k)`` (a unit cosine ``log|X| = cos w`` gives c_1 = 1, as SPTK's
``sp2mc`` does), i.e. c_0 = 1/C sum_k log|X_k| and c_m = 2/C sum_k log|X_k| cos(m w_k). c0 (energy) is excluded.
The two cepstrum sequences are aligned by dynamic time warping on the Euclidean distance of c1..cD, and
``10 / ln 10 * sqrt(2 * sum_{d>=1} (c_d - c'_d)^2)`` dB is averaged over the warping path.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from zoo.audio import AudioConfig

_DB_TO_NEPER = math.log(10.0) / 20.0  # ln(amplitude) per dB of amplitude


def normalized_mel_to_log_amplitude(mel: Tensor, audio: AudioConfig) -> Tensor:
    """The DataModules' [0, 1] mel -> natural-log mel amplitude (inverse of ``AudioFrontEnd.normalize``/``amp_to_db``)."""
    db = mel.float().clamp(0.0, 1.0) * -audio.min_db + audio.min_db + audio.ref_db  # (..., n_mels) dB of amplitude
    return db * _DB_TO_NEPER


def dct_cepstrum(log_mel: Tensor) -> Tensor:
    """Cepstra c0..c_{C-1} of (..., C) natural-log mel amplitudes in SPTK's one-sided convention:
    ``x_k = c_0 + sum_{m>=1} c_m cos(pi m (k + 1/2) / C)``, i.e. ``c_0 = 1/C sum_k x_k`` and
    ``c_m = 2/C sum_k x_k cos(pi m (k + 1/2) / C)``."""
    n = log_mel.shape[-1]
    m = torch.arange(n, dtype=torch.float64).unsqueeze(1)  # (C, 1)
    k = torch.arange(n, dtype=torch.float64).unsqueeze(0)  # (1, C)
    basis = torch.cos(math.pi / n * (k + 0.5) * m) * (2.0 / n)  # (C_out, C_in)
    basis[0] /= 2.0  # c0 is the mean, not twice it
    return log_mel.double() @ basis.T


def dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost monotonic path from (0, 0) to (T1-1, T2-1) through a (T1, T2) cost matrix, steps (1,0), (0,1),
    (1,1) (the symmetric DTW of Sakoe & Chiba without slope constraint)."""
    t1, t2 = cost.shape
    acc = np.full((t1 + 1, t2 + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, t1 + 1):
        row, prev = acc[i], acc[i - 1]
        diag_or_up = np.minimum(prev[:-1], prev[1:]) + cost[i - 1]  # (T2,) best of (i-1, j-1) and (i-1, j)
        for j in range(1, t2 + 1):  # the (i, j-1) term makes the row sequential
            row[j] = min(diag_or_up[j - 1], row[j - 1] + cost[i - 1, j - 1])
    path, i, j = [], t1, t2
    while (i, j) != (0, 0):
        path.append((i - 1, j - 1))
        moves = ((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
        _, i, j = min(moves, key=lambda m: m[0])
    return path[::-1]


def mel_cepstral_distance_proxy(log_mel_pred: Tensor, log_mel_target: Tensor, n_cepstra: int | None = None) -> float:
    """The proxy distance in dB between (T1, C) and (T2, C) natural-log mel amplitudes, DTW-aligned; c0 excluded
    and c1..c_D used (D = ``n_cepstra`` or C - 1)."""
    if log_mel_pred.ndim != 2 or log_mel_target.ndim != 2 or log_mel_pred.shape[1] != log_mel_target.shape[1]:
        raise ValueError(f"expected (T1, C) and (T2, C), but got {tuple(log_mel_pred.shape)} and {tuple(log_mel_target.shape)}")
    if min(log_mel_pred.shape[0], log_mel_target.shape[0]) < 1:
        raise ValueError("both utterances need at least one frame")
    d = log_mel_pred.shape[1] - 1 if n_cepstra is None else n_cepstra
    if not 1 <= d < log_mel_pred.shape[1]:
        raise ValueError(f"n_cepstra must be in [1, {log_mel_pred.shape[1] - 1}], but got {n_cepstra}")
    a = dct_cepstrum(log_mel_pred.detach().cpu())[:, 1 : d + 1]  # (T1, D)
    b = dct_cepstrum(log_mel_target.detach().cpu())[:, 1 : d + 1]  # (T2, D)
    dist = torch.cdist(a, b).numpy()  # (T1, T2) Euclidean
    path = dtw_path(dist)
    rows, cols = zip(*path)
    per_frame = dist[list(rows), list(cols)]  # (len(path),)
    return float(10.0 / math.log(10.0) * math.sqrt(2.0) * per_frame.mean())


__all__ = ["dct_cepstrum", "dtw_path", "mel_cepstral_distance_proxy", "normalized_mel_to_log_amplitude"]
