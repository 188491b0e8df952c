"""eSpeak NG formant synthesis through ctypes: the voice of every embedded offline corpus.

The shared library and its data come from the ``espeakng-loader`` wheel, so nothing is downloaded
and no ``espeak`` binary is spawned. eSpeak keeps all of its state in process-wide globals, hence one
lazily initialised instance per process, guarded by a lock.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_RATE", "Voice", "espeak_version", "synthesize"]

SAMPLE_RATE = 22050

# speak_lib.h constants (stable across eSpeak and eSpeak NG releases).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing data file calls exit() inside the library
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK, _EE_INTERNAL_ERROR, _EE_BUFFER_FULL, _EE_NOT_FOUND = 0, -1, 1, 2
_ERROR_NAMES = {
    _EE_INTERNAL_ERROR: "EE_INTERNAL_ERROR",
    _EE_BUFFER_FULL: "EE_BUFFER_FULL",
    _EE_NOT_FOUND: "EE_NOT_FOUND",
}
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_RATE_MIN, _RATE_MAX = 80, 450  # espeakRATE_MINIMUM / espeakRATE_MAXIMUM

_EDGE_SILENCE_S = 0.05
_TRIM_FRAME = 256  # ~12 ms at 22050 Hz
_TRIM_TOP_DB = 40.0

_VOICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\+[A-Za-z0-9_ -]+)?$")

# int (*t_espeak_callback)(short *wav, int numsamples, espeak_EVENT *events); events are unused.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _data_path() -> Path:
    """Folder ``espeak-ng-data`` shipped inside the espeakng-loader wheel."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


@dataclass(frozen=True)
class Voice:
    """One speaker of the embedded corpora: an eSpeak voice (``lang[+variant]``) and its prosody settings."""

    name: str = "en-us"  # espeak voice name, optionally with a variant, e.g. "en-us+m3"
    rate: int = 175  # words per minute
    pitch: int = 50  # 0..100, relative to the voice's own base pitch
    pitch_range: int = 50  # 0..100, 0 is a monotone

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _VOICE_NAME.match(self.name):
            raise ValueError(f"name must look like 'en-us' or 'en-us+m3', but got {self.name!r}")
        if "+" in self.name:
            variant = self.name.split("+", 1)[1]
            # eSpeak silently ignores an unknown variant, which would make two "different" speakers identical.
            if not (_data_path() / "voices" / "!v" / variant).is_file():
                raise ValueError(f"unknown eSpeak voice variant {variant!r} in voice name {self.name!r}")
        if not _RATE_MIN <= self.rate <= _RATE_MAX:
            raise ValueError(f"rate must be in {_RATE_MIN}..{_RATE_MAX} words per minute, but got {self.rate}")
        if not 0 <= self.pitch <= 100:
            raise ValueError(f"pitch must be in 0..100, but got {self.pitch}")
        if not 0 <= self.pitch_range <= 100:
            raise ValueError(f"pitch_range must be in 0..100, but got {self.pitch_range}")


class _Engine:
    """The process-wide libespeak-ng instance in synchronous mode, collecting samples through a callback."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = ctypes.c_int
        self._lib = lib
        # wavegen also draws libc rand() for breath noise: seeding both makes a fresh process bit-exact.
        self._libc = ctypes.CDLL(None)

        data_path = espeakng_loader.get_data_path()
        sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT)
        if sample_rate < 0:
            raise RuntimeError(f"espeak_Initialize failed ({sample_rate}) with data path {data_path!r}")
        if sample_rate != SAMPLE_RATE:
            raise RuntimeError(f"libespeak-ng synthesises at {sample_rate} Hz, but the corpora assume {SAMPLE_RATE} Hz")
        self.version = lib.espeak_Info(None).decode()

        self._chunks: list[np.ndarray] = []
        # Kept on self: if the CFUNCTYPE object were collected, the library would call freed memory.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, numsamples: int, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0 = keep synthesising

    def _check(self, status: int, what: str) -> None:
        if status != _EE_OK:
            raise RuntimeError(f"{what} failed with {_ERROR_NAMES.get(status, status)}")

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        """Raw int16 samples for ``text`` spoken by ``voice``."""
        # Voice and parameters are process-global (another wrapper loading the same .so shares them), so they
        # are set on every call rather than trusted from the last one; a voice switch costs well under 1 ms.
        status = self._lib.espeak_SetVoiceByName(voice.name.encode())
        if status == _EE_NOT_FOUND:
            raise ValueError(f"unknown eSpeak voice {voice.name!r}")
        self._check(status, f"espeak_SetVoiceByName({voice.name!r})")
        for param, value, label in ((_PARAM_RATE, voice.rate, "rate"), (_PARAM_PITCH, voice.pitch, "pitch"),
                                    (_PARAM_RANGE, voice.pitch_range, "range")):  # fmt: skip
            self._check(self._lib.espeak_SetParameter(param, value, 0), f"espeak_SetParameter({label}={value})")
        self._lib.espeak_ng_SetRandSeed(0)
        self._libc.srand(0)
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        status = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        chunks, self._chunks = self._chunks, []
        self._check(status, f"espeak_Synth({text[:40]!r})")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _reset_lock_in_child() -> None:
    # A fork taken while another thread held the lock would deadlock the child forever. eSpeak's
    # synchronous mode runs no threads of its own, so its copied globals stay usable in the child.
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def espeak_version() -> str:
    """Version string of the loaded libespeak-ng (part of the corpora's identity)."""
    with _LOCK:
        return _engine().version


def _trim_silence(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Cut leading/trailing silence (40 dB below the loudest frame) and pad both edges to exactly 50 ms."""
    n_frames = len(audio) // _TRIM_FRAME
    if n_frames == 0:
        raise RuntimeError("eSpeak returned less than one frame of audio")
    frames = audio[: n_frames * _TRIM_FRAME].reshape(n_frames, _TRIM_FRAME)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-_TRIM_TOP_DB / 20))
    # The whole last frame is kept: it may hold the tail of a fricative below frame resolution.
    start, end = loud[0] * _TRIM_FRAME, min(len(audio), (loud[-1] + 1) * _TRIM_FRAME)
    # eSpeak's own leading pause is ~12 ms and its trailing one ~0, so pad rather than only cut.
    edge = np.zeros(round(_EDGE_SILENCE_S * sample_rate), dtype=audio.dtype)
    return np.concatenate([edge, audio[start:end], edge])


def synthesize(text: str, voice: Voice = Voice()) -> np.ndarray:
    """Speak ``text`` with eSpeak NG: float32 mono in [-1, 1] at SAMPLE_RATE, 50 ms of silence at each end.

    Bit-exact for the same sequence of calls in a fresh process; across other call orders the sample
    count can drift by a few milliseconds because eSpeak's wave generator carries state between utterances.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, but got {text!r}")
    if not isinstance(voice, Voice):
        raise ValueError(f"voice must be a zoo.corpora.Voice, but got {type(voice).__name__}")
    with _LOCK:
        samples = _engine().synthesize(text, voice)
    if not np.any(samples):
        raise RuntimeError(f"eSpeak produced no audible audio for {text!r} with {voice}")
    audio = _trim_silence(samples).astype(np.float32) / 32768.0
    return audio
