"""Sentences to synthesise, for ``python -m zoo predict`` with a text-to-speech model (no audio needed).

``--data datamodules.text_prompts.TextPromptDataModule --data.texts '["One.", "Two."]'`` or
``--data.text_file prompts.txt`` (one sentence a line, blank lines skipped). It gives the model the same links
as the speech DataModules (``audio``, ``vocab_size`` from ``characters``), so a checkpoint trained on LJSpeech
finds the same symbol table and audio settings; batches are ``SpeechBatch`` with text only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from datamodules.batches import SpeechBatch, pad_sequences
from zoo.audio import AudioConfig
from zoo.text import DEFAULT_CHARACTERS, SymbolTable

log = logging.getLogger(__name__)


class TextPromptDataModule(L.LightningDataModule):
    """Predict-only DataModule over given sentences; ids are ``prompt000``, ``prompt001``, ..."""

    def __init__(
        self,
        texts: list[str] | None = None,
        text_file: str | None = None,
        audio: AudioConfig = AudioConfig(),
        characters: str = DEFAULT_CHARACTERS,
        batch_size: int = 8,
    ) -> None:
        super().__init__()
        if (texts is None) == (text_file is None):
            raise ValueError(f"give exactly one of texts and text_file, but got texts={texts!r}, text_file={text_file!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        self.texts, self.text_file = texts, text_file
        self.audio = audio
        self.symbols = SymbolTable(characters)
        self.batch_size = batch_size

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def sentences(self) -> list[str]:
        if self.text_file is not None:
            lines = Path(self.text_file).read_text(encoding="utf-8").splitlines()
        else:
            lines = list(self.texts or [])
        sentences = [line.strip() for line in lines if line.strip()]
        if not sentences:
            raise ValueError(f"no sentence to synthesise in {self.text_file or self.texts!r}")
        return sentences

    def _items(self) -> list[tuple[str, torch.Tensor]]:
        items = []
        for i, sentence in enumerate(self.sentences()):
            encoded = self.symbols.encode(sentence)
            if encoded.dropped:
                log.warning("prompt%03d: dropped characters outside the symbol table: %s", i, dict(encoded.dropped))
            items.append((f"prompt{i:03d}", torch.tensor(encoded.ids, dtype=torch.long)))
        return items

    @staticmethod
    def collate(items: list[tuple[str, torch.Tensor]]) -> SpeechBatch:
        text, lengths = pad_sequences([ids for _, ids in items], value=0)
        return SpeechBatch(ids=[i for i, _ in items], text=text, text_lengths=lengths, mel=None, mel_lengths=None)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self._items(), batch_size=self.batch_size, shuffle=False, collate_fn=self.collate)
