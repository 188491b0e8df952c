"""Prediction goes through Lightning's predict loop with the zoo's DataModules, sharded without repeats."""

from __future__ import annotations

import lightning as L
import torch

from datamodules import MNISTDataModule
from datamodules.sampling import ShardSampler


class Echo(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def predict_step(self, batch, batch_idx):
        return batch.labels


def test_predict_runs_through_lightning_and_covers_the_test_split_in_order():
    dm = MNISTDataModule(source="embedded", batch_size=50)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, use_distributed_sampler=False)
    out = trainer.predict(Echo(), datamodule=dm)
    labels = torch.cat(out)
    assert torch.equal(labels, dm.datasets["test"].labels)


def test_shard_sampler_puts_every_item_on_exactly_one_rank():
    shards = [list(ShardSampler(11, 3, r)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))
    assert [len(ShardSampler(11, 3, r)) for r in range(3)] == [len(s) for s in shards]
