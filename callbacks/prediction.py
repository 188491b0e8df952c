"""Writing predictions: one callback for every experiment's ``predict`` (Lightning's ``BasePredictionWriter``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from zoo.media import Prediction, write_prediction


class PredictionWriter(BasePredictionWriter):
    """Writes the ``Prediction`` records a model's ``predict_step`` returns (``zoo.media.write_prediction``):
    ``<id>.wav``, the alignment figure ``<id>.png``, ``mels/<id>.npy`` and, for models that predict a frame-aligned
    truth (the post-net), ``targets/<id>.npy`` plus an ``index.tsv`` of (prediction, truth) pairs in the
    ``pairs_dir`` format, so one stage's predictions can train the next.

    ``output_dir`` defaults to ``<trainer.default_root_dir>/predictions``. Every rank writes the utterances of its own
    shard; under DDP each rank's pairs index is ``index.rank<r>.tsv`` (concatenate them), alone it is ``index.tsv``.
    ``python -m zoo predict`` adds one of these when the config names no prediction writer.
    """

    def __init__(self, output_dir: str | None = None, figures: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.figures = figures
        self.records: list[dict[str, Any]] = []
        self._pairs: list[tuple[str, str, str]] = []

    def folder(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir is not None else Path(trainer.default_root_dir) / "predictions"

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records, self._pairs = [], []

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if not isinstance(prediction, (list, tuple)) or not all(isinstance(p, Prediction) for p in prediction):
            raise TypeError(f"{type(pl_module).__name__}.predict_step must return a list of zoo.media.Prediction for "
                            f"PredictionWriter, but returned {type(prediction).__name__}")
        folder = self.folder(trainer)
        for pred in prediction:
            record = write_prediction(folder, pred, self.figures)
            self.records.append(record)
            if "mel" in record and "target" in record:
                self._pairs.append((pred.id, record["mel"], record["target"]))

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The pairs index, written once after the last batch (not rewritten per batch)."""
        from datamodules.postnet import INDEX_FILE, write_pairs_index

        if self._pairs:
            alone = trainer.world_size == 1
            write_pairs_index(self.folder(trainer), self._pairs,
                              INDEX_FILE if alone else f"index.rank{trainer.global_rank}.tsv")


__all__ = ["PredictionWriter"]
