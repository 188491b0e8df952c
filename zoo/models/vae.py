"""Variational autoencoder on images (Kingma & Welling 2014): DCGAN-style Gaussian encoder and decoder."""

from __future__ import annotations

import lightning as L
import torch

from datamodules.batches import ImageBatch
from zoo.losses.image_generative import Likelihood, gaussian_kl, reconstruction_nll, reparameterize
from zoo.media import MediaSample, autoencoder_media
from zoo.nn.dcgan import ConvDecoder, GaussianEncoder


class VAE(L.LightningModule):
    """Negative ELBO = -log p(x|z) (summed over pixels) + beta · KL(q(z|x) || N(0, I)) (summed over latent dims).

    Both terms are per image, averaged over the batch; ``beta=1`` is the plain VAE.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 16,
        channels: int = 32,
        hidden: int = 512,
        likelihood: Likelihood = "bernoulli",
        beta: float = 1.0,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        interpolation_steps: int = 8,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', but got {likelihood!r}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, but got {beta}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, but got {lr}")
        if interpolation_steps < 2:
            raise ValueError(f"interpolation_steps must be >= 2, but got {interpolation_steps}")
        self.save_hyperparameters()
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        # batch norm's statistics are per DDP rank unless ``--trainer.sync_batchnorm true`` (GPU only)
        self.encoder = GaussianEncoder(self.image_shape, latent_dim, channels, hidden, batch_norm)
        self.decoder = ConvDecoder(self.image_shape, latent_dim, channels, hidden, batch_norm)

    # --- the model ----------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the deterministic code used for reconstructions and interpolations. -> (B, Z)"""
        return self.encoder(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (B, C, H, W) in [0, 1]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.latent_dim, device=self.device))

    # --- training -----------------------------------------------------------------------------------------
    def _common_step(self, batch: ImageBatch, stage: str) -> torch.Tensor:
        x = batch.images  # (B, C, H, W)
        mu, logvar = self.encoder(x)  # (B, Z) each
        logits = self.decoder(reparameterize(mu, logvar))  # (B, C, H, W)
        recon = reconstruction_nll(logits, x, self.hparams.likelihood)
        kl = gaussian_kl(mu, logvar)
        loss = recon + self.hparams.beta * kl
        on_epoch = stage != "train"
        self.log_dict(
            {f"{stage}/loss": loss, f"{stage}/recon": recon, f"{stage}/kl": kl},
            on_step=not on_epoch, on_epoch=on_epoch, sync_dist=on_epoch, prog_bar=stage != "test",
            batch_size=x.shape[0],
        )
        return loss

    def training_step(self, batch: ImageBatch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._common_step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))

    # --- media --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        return autoencoder_media(self, batch.images, self.hparams.interpolation_steps)
