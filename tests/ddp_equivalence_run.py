"""Run by tests/test_ddp.py as its own process: ``STEPS`` optimiser steps of one experiment, either as ``world``
DDP ranks with batch G/world each or as one process with batch G, over the same examples; saves the final weights.

Step s trains on examples [s*G, (s+1)*G) of the training split; rank r takes the r-th slice. The models' own
randomness is made independent of how the batch is split, so that any difference comes from DDP itself: the VAE's
posterior noise is drawn for the whole global batch on every rank (same generator and seed) and sliced; the vocoder trains on
the centred window of each utterance instead of a random one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

import zoo.models.vae
import zoo.models.wavenet
from datamodules import LJSpeechDataModule, MNISTDataModule
from datamodules.vocoder import cut_windows
from zoo.audio import AudioConfig
from zoo.losses.image_generative import reparameterize
from zoo.models.vae import VAE
from zoo.losses.output_distribution import OutputConfig
from zoo.models.wavenet import WaveNetTrainingConfig, WaveNetVocoder
from zoo.nn.dcgan import ImageNetConfig
from zoo.nn.wavenet import WaveNetConfig

GLOBAL_BATCH, STEPS = 8, 3


class SameExamples(L.LightningDataModule):
    def __init__(self, inner: L.LightningDataModule) -> None:
        super().__init__()
        self.inner = inner

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.setup("fit")

    def train_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        per = GLOBAL_BATCH // world
        batches = [list(range(s * GLOBAL_BATCH + rank * per, s * GLOBAL_BATCH + (rank + 1) * per)) for s in range(STEPS)]
        return DataLoader(self.inner._dataset("train"), batch_sampler=batches, collate_fn=self.inner.collate)


_NOISE = torch.Generator().manual_seed(123)  # its own stream: Lightning re-seeds the global one when DDP starts


def _global_noise_reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    eps = torch.randn(world * mu.shape[0], *mu.shape[1:], generator=_NOISE)[rank * mu.shape[0] : (rank + 1) * mu.shape[0]]
    return mu + eps * torch.exp(0.5 * logvar)


def build(family: str, data_root: str) -> tuple[L.LightningModule, L.LightningDataModule]:
    if family == "vae":
        assert reparameterize is zoo.models.vae.reparameterize
        zoo.models.vae.reparameterize = _global_noise_reparameterize
        # batch norm would normalise over each rank's half batch: off (there is no SyncBatchNorm on CPU)
        model = VAE(net=ImageNetConfig(latent_dim=4, channels=8, hidden=32, batch_norm=False))
        return model, MNISTDataModule(source="embedded", root=data_root, batch_size=GLOBAL_BATCH)
    if family == "wavenet":
        zoo.models.wavenet.cut_windows = lambda *a, **k: cut_windows(*a, **{**k, "random": False})
        audio = AudioConfig(n_mels=20)
        net = WaveNetConfig(layers=4, stacks=2, residual_channels=8, gate_channels=16, skip_channels=8,
                            output=OutputConfig(num_mixtures=2))
        model = WaveNetVocoder(audio=audio, net=net, training=WaveNetTrainingConfig(window_frames=2))
        return model, LJSpeechDataModule(root=data_root, source="embedded", embedded_size=40, val_size=4, test_size=4,
                                         audio=audio, load_wav=True, batch_size=GLOBAL_BATCH, progress=False)
    raise ValueError(family)


if __name__ == "__main__":
    family, world, out, data_root = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    L.seed_everything(0)
    model, dm = build(family, data_root)
    trainer = L.Trainer(accelerator="cpu", devices=world, strategy="ddp" if world > 1 else "auto", max_steps=STEPS,
                        deterministic=True, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, default_root_dir=str(out))
    trainer.fit(model, datamodule=SameExamples(dm))
    if trainer.global_rank == 0:
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / f"world{world}.pt")
