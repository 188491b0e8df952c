"""Scoring converted (or synthesised) speech against natural target speech with the field's metrics, in parallel.

Per utterance: MCD, F0 RMSE / correlation and DDUR against the natural target (``zoo.metrics.mcd``, the published
ARCTIC protocol), DNSMOS P.835 (``zoo.metrics.dnsmos``) and a PocketSphinx transcript; per set of utterances (a *row*
of a report): the means, corpus-level WER / CER against the prompt texts (``zoo.metrics.asr``), and how many
utterances had an undefined figure, with the reason.

    with Scorer(references, texts, f0_range=F0_RANGES["slt"]) as scorer:
        row = scorer.score({"arctic_b0340": converted_wav, ...})   # np.ndarray at 16 kHz, or wav paths

Everything is computed at 16 kHz (the protocol's, DNSMOS's and PocketSphinx's rate): inputs at another rate are
resampled. The natural targets are analysed once and reused by every row. Work is spread over ``workers``
processes (the WORLD analysis, DNSMOS and the recogniser are single-threaded).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


def read_wav_16k(source: Any) -> np.ndarray:
    """A waveform (np.ndarray, assumed 16 kHz) or a wav file (any rate, resampled) as float64 in [-1, 1]."""
    if isinstance(source, np.ndarray):
        return source.astype(np.float64)
    import soundfile as sf

    try:
        wav, rate = sf.read(str(source), dtype="float64", always_2d=True)
    except (RuntimeError, OSError) as err:  # soundfile's LibsndfileError is a RuntimeError
        raise ValueError(f"{source} cannot be read as audio: {err}") from err
    wav = wav.mean(axis=1)
    if rate != SAMPLE_RATE and wav.size:
        import librosa

        wav = librosa.resample(wav, orig_sr=rate, target_sr=SAMPLE_RATE)
    return wav


_RECOGNIZER: Any = None


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def _analyse(job: tuple[str, Any, tuple[float, float]]) -> tuple[str, Any, str]:
    from zoo.metrics.mcd import world_features

    utt_id, source, f0_range = job
    try:
        return utt_id, world_features(read_wav_16k(source), SAMPLE_RATE, f0_range), ""
    except ValueError as err:
        return utt_id, None, str(err)


def _score_one(job: tuple[str, Any, Any, tuple[float, float]]) -> dict[str, Any]:
    """One converted utterance: objective scores against its reference's analysis, DNSMOS, transcript."""
    global _RECOGNIZER
    from zoo.metrics.asr import PocketSphinxRecognizer
    from zoo.metrics.dnsmos import dnsmos
    from zoo.metrics.mcd import scores_from_features, world_features

    utt_id, source, reference, f0_range = job
    nan = math.nan
    record: dict[str, Any] = {"id": utt_id, "mcd_db": nan, "f0_rmse_hz": nan, "f0_corr": nan, "ddur_s": nan,
                              "dnsmos_sig": nan, "dnsmos_bak": nan, "dnsmos_ovrl": nan, "transcript": "", "note": ""}
    try:
        wav = read_wav_16k(source)
        if reference is None:
            raise ValueError("its natural target could not be analysed")
        scores = scores_from_features(world_features(wav, SAMPLE_RATE, f0_range), reference)
    except ValueError as err:
        record["note"] = str(err)
        return record
    record.update(mcd_db=scores.mcd_db, f0_rmse_hz=scores.f0_rmse_hz, f0_corr=scores.f0_corr, ddur_s=scores.ddur_s,
                  note=scores.note)
    mos = dnsmos(wav.astype(np.float32), SAMPLE_RATE)
    record.update(dnsmos_sig=mos.sig, dnsmos_bak=mos.bak, dnsmos_ovrl=mos.ovrl)
    if _RECOGNIZER is None:
        _RECOGNIZER = PocketSphinxRecognizer()
    record["transcript"] = _RECOGNIZER.transcribe(wav.astype(np.float32), SAMPLE_RATE) if wav.size else ""
    return record


FIGURES = ("mcd_db", "f0_rmse_hz", "f0_corr", "ddur_s", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def summarize(records: list[dict[str, Any]], texts: Mapping[str, str]) -> dict[str, Any]:
    """A row: the mean of each figure over the utterances where it is defined (with the count where it is not),
    corpus-level WER/CER, and the per-utterance records."""
    from zoo.metrics.asr import error_rates

    row: dict[str, Any] = {"n": len(records)}
    for key in FIGURES:
        values = np.array([r[key] for r in records], dtype=np.float64)
        finite = np.isfinite(values)
        row[key] = float(values[finite].mean()) if finite.any() else math.nan
        row[f"{key}_undefined"] = int((~finite).sum())
    rates = error_rates([texts[r["id"]] for r in records], [r["transcript"] for r in records])
    row["wer"], row["cer"] = rates.wer, rates.cer
    row["notes"] = {r["id"]: r["note"] for r in records if r["note"]}
    row["utterances"] = records
    return row


class Scorer:
    """Scores rows of utterances against fixed natural references (see the module docstring)."""

    def __init__(self, references: Mapping[str, Any], texts: Mapping[str, str], f0_range: tuple[float, float],
                 workers: int | None = None) -> None:
        missing = sorted(set(references) - set(texts))
        if missing:
            raise ValueError(f"{len(missing)} references have no prompt text: {', '.join(missing[:5])}")
        if not references:
            raise ValueError("no reference utterances to score against")
        self.texts = dict(texts)
        self.f0_range = f0_range
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None
        self._reference_sources = dict(references)
        self.references: dict[str, Any] = {}
        self.reference_notes: dict[str, str] = {}

    def __enter__(self) -> Scorer:
        import multiprocessing

        if self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init)
        jobs = [(k, v, self.f0_range) for k, v in self._reference_sources.items()]
        for utt_id, features, note in self._map(_analyse, jobs):
            self.references[utt_id] = features
            if note:
                self.reference_notes[utt_id] = note
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _map(self, fn: Any, jobs: list[Any]) -> list[Any]:
        if self._pool is None:
            return [fn(j) for j in jobs]
        return list(self._pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * self.workers))))

    def score(self, converted: Mapping[str, Any]) -> dict[str, Any]:
        """A row: ``{utterance id: waveform (16 kHz np.ndarray) or wav path}`` scored against the references."""
        if not self.references and self._reference_sources:
            raise RuntimeError("use the Scorer as a context manager: `with Scorer(...) as scorer:`")
        unknown = sorted(set(converted) - set(self.references))
        if unknown:
            raise ValueError(f"{len(unknown)} utterances have no reference: {', '.join(unknown[:5])}")
        if not converted:
            raise ValueError("no utterances to score")
        jobs = [(k, v, self.references[k], self.f0_range) for k, v in sorted(converted.items())]
        return summarize(self._map(_score_one, jobs), self.texts)


__all__ = ["FIGURES", "SAMPLE_RATE", "Scorer", "read_wav_16k", "summarize"]
