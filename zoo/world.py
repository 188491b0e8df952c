"""WORLD vocoder parameters (Morise et al. 2016, "WORLD: a vocoder-based high-quality speech synthesis system") at a
mel front end's frame rate, as one (frames, dim) array per utterance, and synthesis back to a waveform.

One frame of parameters, ``dim = world_dim(sample_rate)`` values (``world_layout`` names the slices):

- ``mcep``: the SPTK mel-cepstrum (pysptk ``sp2mc``) of order ``MCEP_ORDER`` (c0 included) of the CheapTrick
  spectral envelope, all-pass constant ``pysptk.util.mcepalpha(sample_rate)`` (0.41 at 16 kHz);
- ``lf0``: log F0 (Harvest in the speaker's F0 range, on the signal after the metrics' 70 Hz low-cut), linearly interpolated through unvoiced frames so a regression
  target is continuous; ``vuv`` says where it is real;
- ``cap``: D4C's band aperiodicities in dB (pyworld ``code_aperiodicity``: one band per 3 kHz up to Nyquist);
- ``vuv``: 1 voiced, 0 unvoiced.

Frames are centred at ``t * hop_length`` samples, as the zoo's centred STFT puts its mel frames, so frame ``t`` of the
parameters and of the mel describe the same instant; the array has exactly the mel's ``1 + samples // hop_length``
frames.
"""

from __future__ import annotations

import numpy as np

from zoo.metrics.mcd import low_cut

MCEP_ORDER = 39
FFT_SIZE = 1024
INT16 = float(np.iinfo(np.int16).max)


def world_layout(sample_rate: int) -> dict[str, slice]:
    """The slices of one frame of parameters: mcep, lf0, cap, vuv. A ValueError below 12 kHz, where WORLD codes no
    aperiodicity band (its bands are 3 kHz wide and start at 3 kHz)."""
    import pyworld

    n_cap = pyworld.get_num_aperiodicities(sample_rate)
    if n_cap < 1:
        raise ValueError(f"the WORLD vocoder needs a sample rate of at least 12000 Hz (WORLD codes aperiodicity in "
                         f"3 kHz bands above 3 kHz), but got {sample_rate} Hz")
    m = MCEP_ORDER + 1
    return {"mcep": slice(0, m), "lf0": slice(m, m + 1), "cap": slice(m + 1, m + 1 + n_cap),
            "vuv": slice(m + 1 + n_cap, m + 2 + n_cap)}


def world_dim(sample_rate: int) -> int:
    return world_layout(sample_rate)["vuv"].stop


def _alpha(sample_rate: int) -> float:
    import pysptk

    return float(pysptk.util.mcepalpha(sample_rate))


def interpolate_lf0(f0: np.ndarray) -> np.ndarray:
    """(T,) F0 in Hz with 0 unvoiced -> (T,) log F0, unvoiced frames linearly interpolated between their voiced
    neighbours (held flat at the ends); all zeros when nothing is voiced."""
    voiced = np.flatnonzero(f0 > 0)
    if voiced.size == 0:
        return np.zeros(len(f0))
    return np.interp(np.arange(len(f0)), voiced, np.log(f0[voiced]))


def world_parameters(wav: np.ndarray, sample_rate: int, hop_length: int, f0_range: tuple[float, float]) -> np.ndarray:
    """(S,) waveform in [-1, 1] -> (1 + S // hop_length, world_dim) float32 parameters (module docstring).

    A ValueError for an empty or non-finite waveform or a bad F0 range."""
    import pysptk
    import pyworld

    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1 or wav.size == 0 or not np.isfinite(wav).all():
        raise ValueError(f"expected a non-empty finite mono waveform, but got shape {wav.shape}")
    lo, hi = f0_range
    if not 0 < lo < hi:
        raise ValueError(f"f0_range must be (floor, ceiling) with 0 < floor < ceiling, but got {f0_range}")
    frames = 1 + len(wav) // hop_length
    x = low_cut(wav * INT16, sample_rate)  # as the metrics analyse: unfiltered, Harvest's F0 reads 7 Hz worse
    times = np.arange(frames) * hop_length / sample_rate  # the mel frames' centres
    # Harvest's frames at the hop's period are the mel frames' centres; its count can fall one short of theirs
    f0, _ = pyworld.harvest(x, sample_rate, f0_floor=lo, f0_ceil=hi, frame_period=1000.0 * hop_length / sample_rate)
    f0 = f0[np.minimum(np.arange(frames), len(f0) - 1)]
    sp = pyworld.cheaptrick(x, f0, times, sample_rate, fft_size=FFT_SIZE)
    # D4C leaves NaN in frames of a band-limited signal: aperiodic there
    ap = np.nan_to_num(pyworld.d4c(x, f0, times, sample_rate, fft_size=FFT_SIZE), nan=1.0)
    mcep = pysptk.sp2mc(sp, MCEP_ORDER, _alpha(sample_rate))  # (T, 40)
    cap = pyworld.code_aperiodicity(ap, sample_rate)  # (T, n_cap)
    vuv = (f0 > 0).astype(np.float64)
    out = np.concatenate([mcep, interpolate_lf0(f0)[:, None], cap, vuv[:, None]], axis=1)
    return out.astype(np.float32)


def world_synthesize(params: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
    """(T, world_dim) parameters -> (T * hop_length,) waveform in [-1, 1] (WORLD synthesis; F0 is exp(lf0) where
    vuv > 0.5, unvoiced elsewhere)."""
    import pysptk
    import pyworld

    params = np.asarray(params, dtype=np.float64)
    layout = world_layout(sample_rate)
    if params.ndim != 2 or params.shape[1] != layout["vuv"].stop:
        raise ValueError(f"expected (frames, {layout['vuv'].stop}) WORLD parameters at {sample_rate} Hz, but got "
                         f"{params.shape}")
    if len(params) == 0:
        return np.zeros(0)
    f0 = np.where(params[:, layout["vuv"]][:, 0] > 0.5, np.exp(params[:, layout["lf0"]][:, 0]), 0.0)
    sp = pysptk.mc2sp(np.ascontiguousarray(params[:, layout["mcep"]]), _alpha(sample_rate), FFT_SIZE)
    ap = pyworld.decode_aperiodicity(np.ascontiguousarray(params[:, layout["cap"]]), sample_rate, FFT_SIZE)
    y = pyworld.synthesize(np.ascontiguousarray(f0), sp, ap, sample_rate, frame_period=1000.0 * hop_length / sample_rate)
    return np.clip(y[: len(params) * hop_length] / INT16, -1.0, 1.0)


__all__ = ["FFT_SIZE", "MCEP_ORDER", "interpolate_lf0", "world_dim", "world_layout", "world_parameters",
           "world_synthesize"]
