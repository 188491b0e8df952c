"""LJSpeech-1.1 (Ito & Johnson 2017): ``LJSpeech-1.1/metadata.csv`` + ``wavs/``, or its embedded eSpeak twin."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datamodules.base import download_or_explain, missing_data_message
from datamodules.speech import SpeechDataModule, Utterance, UtteranceDataset, listed_utterances
from zoo.download import DATASETS, download_and_extract
from zoo.errors import DatasetFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

_HINT = "https://keithito.com/LJ-Speech-Dataset/"


def read_ljspeech_metadata(folder: Path) -> list[Utterance]:
    """Parse ``metadata.csv`` (``id|raw text|normalized text``, UTF-8, no header, no quoting).

    The normalized column is used when present (numbers already spelled out), else the raw one. Lines with an
    empty transcript are left out with a warning naming them; a line without a ``|`` is a format error.
    Every listed utterance must have its wav file.
    """
    meta = folder / "metadata.csv"
    if not meta.is_file():
        raise DatasetNotFoundError(f"{meta} is missing: {folder} is not an LJSpeech-1.1 folder")
    return listed_utterances(meta, _metadata_entries(meta), folder / "wavs", "LJ", missing_wav_is_error=True)


def _metadata_entries(meta: Path) -> Iterator[tuple[str, str]]:
    with open(meta, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 2 or not fields[0]:
                raise DatasetFormatError(f"{meta}:{lineno}: expected 'id|text|normalized text', got {line[:80]!r}")
            yield fields[0].strip(), (fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]).strip()


class LJSpeechDataModule(SpeechDataModule):
    """LJSpeech single-speaker TTS/vocoder data: batches of (text ids, mel, optionally linear and wav).

    ``source: real`` reads ``<root>/LJSpeech-1.1`` (downloaded there when ``download: true``);
    ``source: embedded`` generates ``<root>/embedded/LJSpeech-1.1`` with eSpeak NG (``embedded_size``
    utterances, seconds) and reads it through the same parser. Splits: a seeded permutation of the sorted
    utterance ids gives ``test_size`` and ``val_size`` utterances (each capped at 10% of the corpus), the rest
    trains. Features are cached under ``<corpus>/.zoo_features/<AudioConfig key>/``, or under ``cache_dir`` when
    set (for a corpus on read-only or shared storage).
    """

    def __init__(self, *, val_size: int = 100, test_size: int = 100, embedded_size: int = 200, **kwargs: Any) -> None:
        super().__init__(val_size=val_size, test_size=test_size, **kwargs)
        if embedded_size < 10:
            raise ValueError(f"embedded_size must be >= 10, but got {embedded_size}")
        self.embedded_size = embedded_size
        self.save_hyperparameters()

    @property
    def folder(self) -> Path:
        base = Path(self.root) / "embedded" if self.source == "embedded" else Path(self.root)
        return base / "LJSpeech-1.1"

    def _ensure_corpus(self) -> None:
        if self.source == "embedded":
            from zoo.corpora import write_ljspeech

            write_ljspeech(self.folder.parent, n_utterances=self.embedded_size, seed=self.seed, progress=self.progress)
            return
        if (self.folder / "metadata.csv").is_file():
            return
        if not self.download:
            raise DatasetNotFoundError(missing_data_message("LJSpeech-1.1", self.folder, "LJSpeechDataModule", _HINT))
        (res,) = DATASETS["LJSpeech-1.1"]
        download_or_explain(
            lambda: download_and_extract(res.url, self.root, res.sha256, marker=".LJSpeech-1.1.extracted",
                                         progress=self.progress),
            "LJSpeech-1.1", "LJSpeechDataModule",
        )
        if not (self.folder / "metadata.csv").is_file():
            raise DatasetFormatError(f"the LJSpeech archive did not contain LJSpeech-1.1/metadata.csv under {self.root}")

    def prepare_data(self) -> None:
        self._ensure_corpus()
        self.feature_store(self.folder).build(read_ljspeech_metadata(self.folder), self.kinds, self.progress)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        utterances = read_ljspeech_metadata(self.folder)
        store = self.feature_store(self.folder)
        store.load(self.kinds)
        parts = self._split([u.id for u in utterances])
        for split, ids in parts.items():
            self.datasets[split] = UtteranceDataset(
                [u for u in utterances if u.id in ids], store, self.symbols, self.kinds, max_frames=self.max_frames
            )
