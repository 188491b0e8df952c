"""DNSMOS P.835 (Reddy et al. 2022): a non-intrusive MOS predictor of speech quality (SIG: the speech signal, BAK: the
background, OVRL: overall, on the 1-5 scale of ITU-T P.835), with the ONNX models that ship inside the ``speechmos``
wheel, run by onnxruntime. Clips shorter than the models' 9.01 s input are tiled to it, as speechmos does."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


_MODEL = None


def _model():
    """speechmos's DNSMOS with its two ONNX sessions on one thread each (loaded once per process): scoring runs in
    several processes, and onnxruntime's default of one thread per core in each would oversubscribe the machine."""
    global _MODEL
    if _MODEL is None:
        import onnxruntime as ort
        from speechmos import dnsmos as _dnsmos

        folder = Path(_dnsmos.__file__).parent / "dnsmos_models"
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        model = object.__new__(_dnsmos.DNSMOS)  # its __init__ would build sessions with the default thread pools
        model.primary_model_path = str(folder / "sig_bak_ovr.onnx")
        model.onnx_sess = ort.InferenceSession(model.primary_model_path, options, providers=["CPUExecutionProvider"])
        model.p808_onnx_sess = ort.InferenceSession(str(folder / "model_v8.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        _MODEL = model
    return _MODEL


@dataclass(frozen=True)
class DNSMOSScores:
    sig: float
    bak: float
    ovrl: float
    p808: float


def dnsmos(wav: np.ndarray, sample_rate: int) -> DNSMOSScores:
    """DNSMOS of a mono waveform in [-1, 1] (resampled to 16 kHz when it is not). An empty or non-finite signal
    is a ``ValueError``; a silent one scores NaN (the models' log-mel input is undefined for it)."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"DNSMOS needs a non-empty mono waveform, but got shape {wav.shape}")
    if not np.isfinite(wav).all():
        raise ValueError("the waveform holds NaN or infinite samples")
    if not np.abs(wav).max() > 0:
        return DNSMOSScores(math.nan, math.nan, math.nan, math.nan)
    if sample_rate != SAMPLE_RATE:
        import librosa

        wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    out = _model()(np.clip(wav, -1.0, 1.0), SAMPLE_RATE, False)
    return DNSMOSScores(float(out["sig_mos"]), float(out["bak_mos"]), float(out["ovrl_mos"]), float(out["p808_mos"]))


__all__ = ["DNSMOSScores", "dnsmos"]
