"""Run by tests/test_ddp.py as its own process: Lightning's ``ddp`` strategy re-launches this script per rank."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch

from datamodules import LJSpeechDataModule
from zoo.audio import AudioConfig


class RecordBatches(L.LightningModule):
    """Records which utterances each rank trains on; a one-parameter model so DDP has gradients to reduce."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[str]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(list(batch.ids))
        return (self.w * batch.mel.mean()).sum() + (self.w**2).sum()

    def on_train_end(self) -> None:
        Path(self.out, f"rank{self.global_rank}.json").write_text(json.dumps(self.seen))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    root, out = sys.argv[1], sys.argv[2]
    dm = LJSpeechDataModule(root=root, audio=AudioConfig(n_mels=20), batch_size=2, val_size=1, test_size=1, progress=False)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, use_distributed_sampler=False,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, num_sanity_val_steps=0,
                        limit_val_batches=0, default_root_dir=out)
    trainer.fit(RecordBatches(out), datamodule=dm)
