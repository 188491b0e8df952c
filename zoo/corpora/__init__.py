"""Offline speech corpora synthesised with eSpeak NG, written in the layouts of LJSpeech-1.1 and CMU ARCTIC."""

from zoo.corpora.espeak import SAMPLE_RATE, Voice, espeak_version, synthesize
from zoo.corpora.layouts import (
    EMBEDDED_VOICES,
    MARKER_NAME,
    arctic_prompt_id,
    lj_utterance_id,
    write_cmu_arctic,
    write_ljspeech,
)
from zoo.corpora.sentences import english_sentences

__all__ = [
    "EMBEDDED_VOICES",
    "MARKER_NAME",
    "SAMPLE_RATE",
    "Voice",
    "arctic_prompt_id",
    "english_sentences",
    "espeak_version",
    "lj_utterance_id",
    "synthesize",
    "write_cmu_arctic",
    "write_ljspeech",
]
