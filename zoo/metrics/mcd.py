"""Mel-cepstral distortion (Kubichek 1993), F0 RMSE / correlation and duration difference as the published CMU ARCTIC
voice-conversion tables compute them (the objective evaluation of seq2seq-vc's and ESPnet's ``egs/arctic/vc1``).

Protocol, per (converted, natural target) pair of waveforms at the same sample rate:

1. WORLD analysis (pyworld): 70 Hz low-cut FIR (255 taps) on the 16-bit-scaled signal, Harvest F0 in the target
   speaker's range at a 5 ms frame period, CheapTrick spectral envelopes with a 1024-point FFT.
2. SPTK mel-cepstrum (pysptk ``sp2mc``) of order 39 with all-pass constant alpha = 0.466, c0 included (40
   coefficients), and each frame's power in dB relative to the utterance's mean power.
3. MCD: frames above -20 dB normalised power, aligned by fastdtw on the Euclidean distance of the 40 coefficients;
   ``10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)`` averaged over the path.
4. F0: the voiced frames (F0 > 0) of each, aligned by fastdtw on their mel-cepstra; RMSE in Hz and Pearson r.
5. DDUR: the absolute difference in seconds of the two signals' lengths after librosa's silence trimming (60 dB).

fastdtw is called with ``dist=2`` (the L2 norm, computed by NumPy): the same Euclidean distance as the reference
scripts' ``scipy.spatial.distance.euclidean``, so the same path, about 6x faster.

Bad input never crashes a whole evaluation: an empty or non-finite signal is a ``ValueError``; a
silent signal, or one with no frame above the power threshold or no voiced frame, gives NaN for the figures it
cannot have and names why in ``Scores.note``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_PERIOD_MS = 5.0
FFT_SIZE = 1024
MCEP_ORDER = 39
MCEP_ALPHA = 0.466
POWER_THRESHOLD_DB = -20.0
LOW_CUT_HZ = 70.0

# Harvest's F0 search range per speaker (Hz), by the two-pass rule of De Looze & Hirst (2008) on each speaker's
# training prompts (every 6th of arctic_a0001-a0593; ``two_pass_f0_range``): a first Harvest pass over 50-800 Hz,
# then floor = 0.75 x its first quartile, ceiling = 1.5 x its third quartile (bdl 86.5-215.7, slt 115.7-279.6
# Hz, rounded outwards to 5 Hz). The earlier ranges (bdl 50-300, slt 80-380: the 0.5-99.5 % span of a wide
# search, which takes in the search's own octave errors) let Harvest jump octaves: on 20 slt dev utterances a WORLD
# analysis-synthesis with the recording's own F0 scored 22.0 Hz F0 RMSE against it, 16.9 Hz with these ranges;
# mel -> Griffin-Lim copy-synthesis 35.5 and 26.9 Hz (docs/results/attention-distillation/f0-range.md).
F0_RANGES: dict[str, tuple[float, float]] = {"bdl": (85.0, 220.0), "slt": (115.0, 280.0)}


def _protocol_f0(wav: np.ndarray, sample_rate: int, f0_range: tuple[float, float]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The protocol's signal (16-bit scale, 70 Hz low-cut) and its Harvest F0 in ``f0_range`` at 5 ms frames:
    (signal, f0 (T,) Hz with 0 unvoiced, frame times (T,))."""
    import pyworld

    x = low_cut(_check_wav(wav) * np.iinfo(np.int16).max, sample_rate)
    f0, times = pyworld.harvest(x, sample_rate, f0_floor=f0_range[0], f0_ceil=f0_range[1], frame_period=FRAME_PERIOD_MS)
    return x, f0, times


def two_pass_f0_range(wavs: list[np.ndarray], sample_rate: int, first_pass: tuple[float, float] = (50.0, 800.0)
                      ) -> tuple[float, float]:
    """A speaker's F0 search range by De Looze & Hirst's (2008) two-pass rule: Harvest over ``first_pass`` on the
    protocol's signal (16-bit scale, 70 Hz low-cut, 5 ms frames), then ``(0.75 * q25, 1.5 * q75)`` of the voiced
    frames' F0 pooled over ``wavs``. A ValueError when no frame is voiced."""
    voiced = []
    for wav in wavs:
        f0 = _protocol_f0(wav, sample_rate, first_pass)[1]
        voiced.append(f0[f0 > 0])
    pooled = np.concatenate(voiced) if voiced else np.zeros(0)
    if pooled.size == 0:
        raise ValueError("no voiced frame in any of the waveforms: no F0 range to estimate")
    q25, q75 = np.percentile(pooled, [25, 75])
    return float(0.75 * q25), float(1.5 * q75)


def world_resynthesis(wav: np.ndarray, sample_rate: int, f0_range: tuple[float, float]) -> np.ndarray:
    """WORLD analysis (the protocol's: Harvest in ``f0_range``, CheapTrick, D4C) and synthesis of a waveform in
    [-1, 1]: a vocoder fed the recording's own F0 and envelope, so its scores show what resynthesis alone costs
    under these metrics (the reports' ``target_world_resynthesis`` row)."""
    import pyworld

    x, f0, times = _protocol_f0(wav, sample_rate, f0_range)
    sp = pyworld.cheaptrick(x, f0, times, sample_rate, fft_size=FFT_SIZE)
    # D4C leaves NaN in frames of a band-limited signal (an 8 kHz recording resampled to 16 kHz): aperiodic there
    ap = np.nan_to_num(pyworld.d4c(x, f0, times, sample_rate, fft_size=FFT_SIZE), nan=1.0)
    y = pyworld.synthesize(f0, sp, ap, sample_rate, frame_period=FRAME_PERIOD_MS)[: len(x)]
    return np.clip(y / np.iinfo(np.int16).max, -1.0, 1.0)


@dataclass(frozen=True)
class WorldFeatures:
    """One utterance's analysis: f0 (T,) Hz (0 unvoiced), mcep (T, 40) SPTK mel-cepstra, npow (T,) dB relative to the
    utterance's mean power, trimmed_seconds (length after silence trimming), silent (no signal at all)."""

    f0: np.ndarray
    mcep: np.ndarray
    npow: np.ndarray
    trimmed_seconds: float
    silent: bool


@dataclass(frozen=True)
class Scores:
    """Objective scores of one converted utterance against its natural target; NaN where undefined (see note)."""

    mcd_db: float
    f0_rmse_hz: float
    f0_corr: float
    ddur_s: float
    note: str = ""


def _check_wav(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1:
        raise ValueError(f"expected a mono waveform (S,), but got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError("the waveform is empty")
    if not np.isfinite(wav).all():
        raise ValueError("the waveform holds NaN or infinite samples")
    return wav


def low_cut(x: np.ndarray, sample_rate: int, cutoff: float = LOW_CUT_HZ) -> np.ndarray:
    from scipy.signal import firwin, lfilter

    taps = firwin(255, cutoff / (sample_rate // 2), pass_zero=False)
    return lfilter(taps, 1, x)


def normalized_power_db(spectral_envelope: np.ndarray) -> np.ndarray:
    """(T, F) power spectral envelope -> (T,) frame power in dB relative to the utterance's mean frame power.

    A frame's power is the mean of its full (two-sided) power spectrum: the DC and Nyquist bins once, the others
    twice, over the FFT length."""
    fft_len = 2 * (spectral_envelope.shape[1] - 1)
    power = (spectral_envelope[:, 0] + spectral_envelope[:, -1] + 2.0 * spectral_envelope[:, 1:-1].sum(1)) / fft_len
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(power / power.mean())


def world_features(wav: np.ndarray, sample_rate: int, f0_range: tuple[float, float]) -> WorldFeatures:
    """The protocol's analysis (steps 1-2 of the module docstring) of a waveform in [-1, 1]."""
    import librosa
    import pysptk
    import pyworld

    wav = _check_wav(wav)
    if not np.abs(wav).max() > 0:  # nothing to analyse: Harvest's frame count, no figures
        n = int(1000.0 * len(wav) / sample_rate / FRAME_PERIOD_MS) + 1
        return WorldFeatures(np.zeros(n), np.zeros((n, MCEP_ORDER + 1)), np.full(n, -np.inf), 0.0, True)
    trimmed = librosa.effects.trim(wav)[0]
    x, f0, times = _protocol_f0(wav, sample_rate, f0_range)
    sp = pyworld.cheaptrick(x, f0, times, sample_rate, fft_size=FFT_SIZE)  # (T, FFT_SIZE / 2 + 1)
    mcep = pysptk.sp2mc(sp, MCEP_ORDER, MCEP_ALPHA)  # (T, 40)
    return WorldFeatures(f0, mcep, normalized_power_db(sp), len(trimmed) / sample_rate, False)


def _fastdtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from fastdtw import fastdtw

    _, path = fastdtw(a, b, dist=2)
    rows, cols = np.array(path).T
    return rows, cols


def mcd_from_mcep(converted: np.ndarray, reference: np.ndarray) -> float:
    """MCD (dB) between (T1, D) and (T2, D) mel-cepstra (all D coefficients used), fastdtw-aligned."""
    if converted.ndim != 2 or reference.ndim != 2 or converted.shape[1] != reference.shape[1]:
        raise ValueError(f"expected (T1, D) and (T2, D), but got {converted.shape} and {reference.shape}")
    if min(len(converted), len(reference)) < 1:
        raise ValueError("both utterances need at least one frame")
    rows, cols = _fastdtw_path(converted, reference)
    diff2 = ((converted[rows] - reference[cols]) ** 2).sum(1)  # (path,)
    return float(np.mean(10.0 / math.log(10.0) * np.sqrt(2.0 * diff2)))


def frame_mcd_db(converted: "torch.Tensor", reference: "torch.Tensor") -> "torch.Tensor":
    """Mean mel-cepstral distortion (dB) of frame-aligned (N, D) mel-cepstra, no DTW and no frame selection (a
    training-time figure on a model's own cepstra, torch): ``10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)``."""
    if converted.shape != reference.shape or converted.dim() != 2:
        raise ValueError(f"expected two (N, D) tensors of one shape, but got {tuple(converted.shape)} and {tuple(reference.shape)}")
    return (10.0 / math.log(10.0) * (2.0 * ((converted - reference) ** 2).sum(1)).sqrt()).mean()


def scores_from_features(converted: WorldFeatures, reference: WorldFeatures) -> Scores:
    """Steps 3-5 of the protocol on two analyses."""
    from scipy.stats import pearsonr

    notes = []
    ddur = abs(converted.trimmed_seconds - reference.trimmed_seconds)
    if converted.silent or reference.silent:
        which = "converted" if converted.silent else "reference"
        return Scores(math.nan, math.nan, math.nan, ddur, f"{which} signal is silent")
    conv_speech = converted.mcep[converted.npow > POWER_THRESHOLD_DB]
    ref_speech = reference.mcep[reference.npow > POWER_THRESHOLD_DB]
    mcd = mcd_from_mcep(conv_speech, ref_speech) if len(conv_speech) and len(ref_speech) else math.nan
    if math.isnan(mcd):
        notes.append("no frame above the power threshold")
    conv_voiced, ref_voiced = converted.f0 > 0, reference.f0 > 0
    f0_rmse = f0_corr = math.nan
    if conv_voiced.sum() >= 2 and ref_voiced.sum() >= 2:
        rows, cols = _fastdtw_path(converted.mcep[conv_voiced], reference.mcep[ref_voiced])
        a, b = converted.f0[conv_voiced][rows], reference.f0[ref_voiced][cols]
        f0_rmse = float(np.sqrt(np.mean((a - b) ** 2)))
        f0_corr = float(pearsonr(a, b)[0]) if a.std() > 0 and b.std() > 0 else math.nan
    else:
        notes.append(f"{'converted' if conv_voiced.sum() < 2 else 'reference'} signal has no voiced frames")
    return Scores(mcd, f0_rmse, f0_corr, ddur, "; ".join(notes))


def objective_scores(converted: np.ndarray, reference: np.ndarray, sample_rate: int,
                     f0_range: tuple[float, float]) -> Scores:
    """MCD, F0 RMSE/CORR and DDUR of a converted waveform against its natural target, both in [-1, 1] at
    ``sample_rate`` (see the module docstring)."""
    return scores_from_features(world_features(converted, sample_rate, f0_range),
                                world_features(reference, sample_rate, f0_range))


__all__ = ["F0_RANGES", "Scores", "WorldFeatures", "frame_mcd_db", "low_cut", "mcd_from_mcep", "normalized_power_db", "objective_scores",
           "scores_from_features", "two_pass_f0_range", "world_features", "world_resynthesis"]
