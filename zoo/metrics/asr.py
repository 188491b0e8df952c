"""Intelligibility as ASR error rates: PocketSphinx (Huggins-Daines et al. 2006) with the US-English acoustic model,
dictionary and generic language model that ship in its wheel, scored against the prompt text by word and character
error rate (jiwer). The recogniser is not tuned to the prompts: the natural target speech's own WER is the reference
row of every table (far from 0 with a generic language model)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalize_transcript(text: str) -> str:
    """Lower case, punctuation (but apostrophes) to spaces, single spaces: how prompts and hypotheses are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("-", " ")).split())


@dataclass(frozen=True)
class ErrorRates:
    """Corpus-level rates (errors summed over utterances / reference length summed), in percent."""

    wer: float
    cer: float


def error_rates(references: list[str], hypotheses: list[str]) -> ErrorRates:
    """WER and CER (%) of hypotheses against references, both normalised with ``normalize_transcript``. An empty
    hypothesis counts every reference word as deleted."""
    import jiwer

    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need as many hypotheses as references (> 0), but got {len(hypotheses)} and {len(references)}")
    refs = [normalize_transcript(r) for r in references]
    if not all(refs):
        raise ValueError("every reference needs at least one word")
    hyps = [normalize_transcript(h) for h in hypotheses]
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return ErrorRates(100.0 * words.wer, 100.0 * chars.cer)


class PocketSphinxRecognizer:
    """``transcribe(wav, sample_rate) -> text`` with PocketSphinx's default US-English models (loaded once)."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise ValueError(f"ASR needs a non-empty mono waveform, but got shape {wav.shape}")
        if not np.isfinite(wav).all():
            raise ValueError("the waveform holds NaN or infinite samples")
        if sample_rate != SAMPLE_RATE:
            import librosa

            wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
        pcm = (np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


__all__ = ["ErrorRates", "PocketSphinxRecognizer", "error_rates", "normalize_transcript"]
