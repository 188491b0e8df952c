"""Imports every experiment and DataModule so the CLI can list them and resolve short class names."""

from __future__ import annotations

import importlib

# One line per module that defines a LightningModule or LightningDataModule; an experiment adds itself here.
EXPERIMENT_MODULES = (
    "datamodules",
    "zoo.models.vae",
    "zoo.models.vaegan",
    "zoo.models.wae",
    "zoo.models.wgan",
    "zoo.models.pix2pix",
    "zoo.models.wavenet",
    "zoo.models.tacotron",
    "zoo.models.vc",
    "zoo.models.world_vocoder",
)

# ``python -m zoo reproduce NAME``: NAME -> (module with ``main(argv)``, one-line description)
REPRODUCTIONS = {
    "mnist-generative": ("zoo.reproduce_mnist", "VAE, VAE-GAN, EBGAN-VAE, WAE-MMD/GAN, WGAN, WGAN-GP on MNIST: one table"),
    "attention-distillation": ("zoo.reproduce_vc", "seq2seq voice conversion: student with vs without attention distillation"),
    "postnet": ("zoo.reproduce_postnet", "pix2pix spectrogram post-net: L1 and global-variance ratio, input vs output"),
    "wavenet": ("zoo.reproduce_wavenet", "WaveNet vocoder, Gaussian vs mixture of logistics vs Griffin-Lim: NLL curves, copy-synthesis"),
    "tacotron": ("zoo.reproduce_tacotron", "small Tacotron (r=2) and Tacotron 2: diagonality, focus rate, stop-token stops"),
}


def import_experiments() -> None:
    """Import all registered modules (their classes then show up in ``python -m zoo fit --help``)."""
    for name in EXPERIMENT_MODULES:
        importlib.import_module(name)
