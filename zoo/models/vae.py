"""Variational autoencoder on images (Kingma & Welling 2014): DCGAN-style Gaussian encoder and decoder."""

from __future__ import annotations

import lightning as L
import torch

from datamodules.batches import ImageBatch
from zoo.losses.image_generative import Likelihood, gaussian_kl, reconstruction_nll, reparameterize
from zoo.media import MediaSample, autoencoder_media
from zoo.config import block_config, check_interpolation_steps, check_non_negative, check_positive, config_from_value, freeze_sequences
from zoo.nn.dcgan import ConvDecoder, GaussianEncoder, ImageNetConfig


@block_config
class VAETrainingConfig:
    """How the VAE trains: the decoder's ``likelihood`` ("bernoulli" or "gaussian"), the KL weight ``beta`` (1: the
    plain VAE), Adam (``lr``, ``betas``), and ``interpolation_steps`` of the logged latent walks."""

    likelihood: Likelihood = "bernoulli"
    beta: float = 1.0
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    interpolation_steps: int = 8

    def __post_init__(self) -> None:
        freeze_sequences(self)
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAETrainingConfig.likelihood must be 'bernoulli' or 'gaussian', but got {self.likelihood!r}")
        check_non_negative("VAETrainingConfig", beta=self.beta)
        check_positive("VAETrainingConfig", lr=self.lr)
        check_interpolation_steps(self)


class VAE(L.LightningModule):
    """Negative ELBO = -log p(x|z) (summed over pixels) + beta · KL(q(z|x) || N(0, I)) (summed over latent dims).

    Both terms are per image, averaged over the batch; ``training.beta = 1`` is the plain VAE.
    """

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: ImageNetConfig = ImageNetConfig(),
        training: VAETrainingConfig = VAETrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        self.image_shape = tuple(image_shape)
        self.net_config = net = config_from_value(ImageNetConfig, net, "net")
        self.training_config = config_from_value(VAETrainingConfig, training, "training")
        self.latent_dim = net.latent_dim
        # batch norm's statistics are per DDP rank unless ``--trainer.sync_batchnorm true`` (GPU only)
        self.encoder = GaussianEncoder(self.image_shape, net.latent_dim, net.channels, net.hidden, net.batch_norm)
        self.decoder = ConvDecoder(self.image_shape, net.latent_dim, net.channels, net.hidden, net.batch_norm)

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
        recon = reconstruction_nll(logits, x, self.training_config.likelihood)
        kl = gaussian_kl(mu, logvar)
        loss = recon + self.training_config.beta * kl
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
        return torch.optim.Adam(self.parameters(), lr=self.training_config.lr, betas=self.training_config.betas)

    # --- media --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        return autoencoder_media(self, batch.images, self.training_config.interpolation_steps)
