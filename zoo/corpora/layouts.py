"""Embedded LJSpeech-1.1 and CMU ARCTIC corpora: eSpeak speech written in the real corpora's folder layouts.

The real corpora cannot be downloaded where this project runs, so their loaders read these instead. Each
corpus folder carries a marker file with its generation parameters: a complete folder with matching
parameters is reused as is; a partial one, or one made with other parameters, is regenerated.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf

from zoo.corpora.espeak import SAMPLE_RATE, Voice, espeak_version, synthesize
from zoo.corpora.sentences import draw_sentences

__all__ = [
    "EMBEDDED_VOICES",
    "MARKER_NAME",
    "arctic_prompt_id",
    "lj_utterance_id",
    "write_cmu_arctic",
    "write_ljspeech",
]

# Variants and prosody chosen so speakers differ in timbre (formant scaling), F0 and timing.
# Measured median F0 on a test sentence: lj ~180 Hz, bdl ~93 Hz, slt ~225 Hz, clb ~205 Hz, rms ~83 Hz.
EMBEDDED_VOICES: dict[str, Voice] = {
    "lj": Voice("en-us+f4", rate=165, pitch=50, pitch_range=60),
    "bdl": Voice("en-us+m3", rate=150, pitch=35, pitch_range=45),
    "slt": Voice("en-us+f2", rate=195, pitch=65, pitch_range=55),
    "clb": Voice("en-us+f5", rate=170, pitch=55, pitch_range=50),
    "rms": Voice("en-us+m1", rate=160, pitch=30, pitch_range=40),
}

MARKER_NAME = ".zoo_embedded.json"
_FORMAT_VERSION = 1  # bump when the grammar, trimming or layout changes, so old folders regenerate

_LJ_UTTERANCES_PER_CHAPTER = 100  # the real LJ001..LJ050 chapters hold 100 to 400 utterances each
_LJ_MAX_UTTERANCES = 999 * _LJ_UTTERANCES_PER_CHAPTER
_ARCTIC_A_PROMPTS = 593  # the real set: arctic_a0001..a0593, then arctic_b0001..b0539
_ARCTIC_MAX_PROMPTS = _ARCTIC_A_PROMPTS + 9999
# A separate sentence stream from LJSpeech's, so the two corpora do not share text for the same seed.
_ARCTIC_SEED_OFFSET = 1_000_003
_ARCTIC_MIN_CHARS, _ARCTIC_MAX_CHARS = 20, 90  # ARCTIC prompts are short, single-clause sentences
_PROGRESS_MIN = 8
_NO_NAME = re.compile(r"(?!)")  # matches no file name: only an interrupted run's temporaries are removed


_NORMALIZER = "zoo.text.normalize_text"


def _has_normalizer() -> bool:
    """Whether ``zoo.text`` exists, found without importing it (its import costs seconds)."""
    return importlib.util.find_spec("zoo.text") is not None


def _normalizer():
    """``zoo.text.normalize_text``; only called once ``_has_normalizer()`` said the module exists."""
    from zoo.text import normalize_text

    return normalize_text


def _progress(items: Sequence, desc: str, enabled: bool) -> Iterator:
    if enabled and len(items) > _PROGRESS_MIN:
        from tqdm.auto import tqdm

        return iter(tqdm(items, desc=desc, unit="utt"))
    return iter(items)


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def _write_atomic_wav(path: Path, audio: np.ndarray) -> None:
    # The temporary name does not end in .wav, so a crash never leaves a plausible-looking wav behind.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return {}  # a torn marker counts as a partial folder


def _is_complete(folder: Path, params: dict, expected: Sequence[Path]) -> bool:
    marker = _read_marker(folder)
    return (
        marker is not None
        and marker.get("complete") is True
        and marker.get("params") == params
        and all(path.is_file() for path in expected)
    )


def _claim(folder: Path, params: dict, own_file: Path) -> None:
    """Mark ``folder`` as being (re)generated, refusing to overwrite a corpus zoo did not write."""
    if _read_marker(folder) is None and own_file.exists():
        raise FileExistsError(
            f"{folder} holds {own_file.name} but no {MARKER_NAME}: it looks like a real corpus, "
            "so the embedded one will not overwrite it; pass another root"
        )
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic_text(folder / MARKER_NAME, json.dumps({"complete": False, "params": params}, indent=2))
    _remove_stale(folder, _NO_NAME, set())


def _finish(folder: Path, params: dict) -> None:
    _write_atomic_text(folder / MARKER_NAME, json.dumps({"complete": True, "params": params}, indent=2))


def _remove_stale(folder: Path, pattern: re.Pattern, keep: set[str]) -> None:
    """Delete an interrupted run's temporary files, and earlier generations' files that ``keep`` no longer lists."""
    for path in folder.iterdir():
        stale = pattern.fullmatch(path.name) and path.name not in keep
        temporary = path.name.startswith(".") and ".tmp-" in path.name and path.is_file()
        if stale or temporary:
            path.unlink()


def _check_count(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValueError(f"{name} must be an int in 1..{maximum}, but got {value!r}")


def lj_utterance_id(index: int) -> str:
    """Id of the ``index``-th (0-based) embedded LJSpeech utterance, e.g. ``LJ001-0001``."""
    chapter, position = divmod(index, _LJ_UTTERANCES_PER_CHAPTER)
    return f"LJ{chapter + 1:03d}-{position + 1:04d}"


def arctic_prompt_id(index: int) -> str:
    """Id of the ``index``-th (0-based) ARCTIC prompt: ``arctic_a0001``..``arctic_a0593``, then ``arctic_b0001``..."""
    if index < _ARCTIC_A_PROMPTS:
        return f"arctic_a{index + 1:04d}"
    return f"arctic_b{index - _ARCTIC_A_PROMPTS + 1:04d}"


def write_ljspeech(root: str | Path, n_utterances: int = 200, seed: int = 0, progress: bool = True) -> Path:
    """Write an eSpeak LJSpeech-1.1 (``metadata.csv`` + ``wavs/LJxxx-xxxx.wav``) under ``root``; return its folder."""
    _check_count("n_utterances", n_utterances, _LJ_MAX_UTTERANCES)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, but got {seed!r}")
    folder = Path(root) / "LJSpeech-1.1"
    wavs = folder / "wavs"
    ids = [lj_utterance_id(i) for i in range(n_utterances)]
    voice = EMBEDDED_VOICES["lj"]
    params = {
        "corpus": "LJSpeech-1.1",
        "format_version": _FORMAT_VERSION,
        "n_utterances": n_utterances,
        "seed": seed,
        "voice": asdict(voice),
        "sample_rate": SAMPLE_RATE,
        "espeak": espeak_version(),
        # The third column changes when zoo.text appears, so that is part of the folder's identity too.
        "normalizer": _NORMALIZER if _has_normalizer() else None,
    }
    if _is_complete(folder, params, [folder / "metadata.csv"] + [wavs / f"{i}.wav" for i in ids]):
        return folder

    # Without zoo.text the third column repeats the raw text, as the brief for the embedded corpus allows.
    normalize = _normalizer() if params["normalizer"] else None
    _claim(folder, params, folder / "metadata.csv")
    wavs.mkdir(exist_ok=True)
    _remove_stale(wavs, re.compile(r"LJ\d{3}-\d{4}\.wav"), {f"{i}.wav" for i in ids})
    texts = draw_sentences(n_utterances, seed, 20, 180, allow_quotes=True)
    lines = []
    for utt_id, text in _progress(list(zip(ids, texts)), "embedded LJSpeech", progress):
        _write_atomic_wav(wavs / f"{utt_id}.wav", synthesize(text, voice))
        normalized = text if normalize is None else normalize(text)
        if "|" in text + normalized or "\n" in text + normalized:
            raise RuntimeError(f"metadata.csv field separator inside {utt_id}: {text!r} / {normalized!r}")
        lines.append(f"{utt_id}|{text}|{normalized}\n")
    _write_atomic_text(folder / "metadata.csv", "".join(lines))
    _finish(folder, params)
    return folder


def write_cmu_arctic(
    root: str | Path,
    speakers: Sequence[str] = ("bdl", "slt"),
    n_prompts: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write a parallel eSpeak CMU ARCTIC (``cmu_us_<spk>_arctic/{wav,etc}``) per speaker; return speaker -> folder."""
    if isinstance(speakers, str):
        raise ValueError(f"speakers must be a sequence of names such as ('bdl', 'slt'), but got {speakers!r}")
    speakers = tuple(speakers)
    if not speakers:
        raise ValueError("speakers must name at least one speaker")
    unknown = [s for s in speakers if s not in EMBEDDED_VOICES]
    if unknown:
        raise ValueError(f"unknown speaker(s) {unknown}; embedded voices are {sorted(EMBEDDED_VOICES)}")
    if len(set(speakers)) != len(speakers):
        raise ValueError(f"speakers must be distinct, but got {speakers}")
    _check_count("n_prompts", n_prompts, _ARCTIC_MAX_PROMPTS)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, but got {seed!r}")

    ids = [arctic_prompt_id(i) for i in range(n_prompts)]
    texts: list[str] | None = None  # drawn only if some speaker needs (re)generating
    folders: dict[str, Path] = {}
    for speaker in speakers:
        folder = Path(root) / f"cmu_us_{speaker}_arctic"
        folders[speaker] = folder
        voice = EMBEDDED_VOICES[speaker]
        params = {
            "corpus": "cmu_arctic",
            "format_version": _FORMAT_VERSION,
            "speaker": speaker,
            "n_prompts": n_prompts,
            "seed": seed,
            "voice": asdict(voice),
            "sample_rate": SAMPLE_RATE,
            "espeak": espeak_version(),
        }
        txt = folder / "etc" / "txt.done.data"
        if _is_complete(folder, params, [txt] + [folder / "wav" / f"{i}.wav" for i in ids]):
            continue
        if texts is None:
            # No quotes: txt.done.data wraps each prompt in double quotes, as the real file does.
            texts = draw_sentences(n_prompts, seed + _ARCTIC_SEED_OFFSET, _ARCTIC_MIN_CHARS, _ARCTIC_MAX_CHARS, False)
        _claim(folder, params, txt)
        (folder / "wav").mkdir(exist_ok=True)
        (folder / "etc").mkdir(exist_ok=True)
        _remove_stale(folder / "wav", re.compile(r"arctic_[ab]\d{4}\.wav"), {f"{i}.wav" for i in ids})
        for utt_id, text in _progress(list(zip(ids, texts)), f"embedded ARCTIC {speaker}", progress):
            _write_atomic_wav(folder / "wav" / f"{utt_id}.wav", synthesize(text, voice))
        _write_atomic_text(txt, "".join(f'( {utt_id} "{text}" )\n' for utt_id, text in zip(ids, texts)))
        _finish(folder, params)
    return folders
