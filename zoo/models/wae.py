"""Wasserstein autoencoders (Tolstikhin et al. 2018): c(x, G(z)) + λ · D(Q_Z, P_Z) with a deterministic encoder.

Defaults are the paper's MNIST settings (section 4): d_z = 8, prior N(0, σ_z² I) with σ_z² = 1, squared-L2 cost
scaled by 0.05 as the reference code computes it (tolstikhin/wae, cost ``'l2sq'``; ``reconstruction_scale``),
Adam lr 1e-3 with β1 = 0.5 for encoder and decoder, λ = 10 with the IMQ-kernel MMD (WAE-MMD) and λ = 1 with a
latent adversary of 4 × 512 ReLU layers trained with lr 5e-4 (WAE-GAN); batch size 100 is set in the configs.
"""

from __future__ import annotations

import lightning as L
import torch

from datamodules.batches import ImageBatch
from zoo.losses.image_generative import IMQ_SCALES, gan_bce, mmd_imq, squared_l2, wae_squared_l2_cost
from zoo.media import MediaSample, autoencoder_media
from zoo.models.adversarial import backward_and_step
from zoo.nn.dcgan import ConvDecoder, ConvEncoder, LatentDiscriminator


class _WAE(L.LightningModule):
    """Deterministic encoder Q(z|x), decoder G(z); subclasses define the latent divergence."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, channels: int, hidden: int,
                 prior_var: float, divergence_weight: float, reconstruction_scale: float, lr: float,
                 betas: tuple[float, float], interpolation_steps: int) -> None:
        super().__init__()
        for name, value in (("prior_var", prior_var), ("reconstruction_scale", reconstruction_scale), ("lr", lr)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, but got {value}")
        if divergence_weight < 0:
            raise ValueError(f"divergence_weight must be >= 0, but got {divergence_weight}")
        if interpolation_steps < 2:
            raise ValueError(f"interpolation_steps must be >= 2, but got {interpolation_steps}")
        self.encoder = ConvEncoder(tuple(image_shape), latent_dim, channels, hidden)
        self.decoder = ConvDecoder(tuple(image_shape), latent_dim, channels, hidden)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, Z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (B, C, H, W) in [0, 1]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def prior(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hparams.latent_dim, device=self.device) * self.hparams.prior_var**0.5

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.prior(n))

    def divergence(self, z: torch.Tensor) -> torch.Tensor:
        """D(Q_Z, P_Z) as the encoder and decoder see it, for a batch of codes (B, Z) -> ()."""
        raise NotImplementedError

    def cost(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The objective's reconstruction term c(x, G(Q(x))): the scaled squared distance."""
        return wae_squared_l2_cost(x_hat, x, self.hparams.reconstruction_scale)

    def _eval_step(self, batch: ImageBatch, stage: str) -> None:
        x = batch.images
        z = self.encode(x)
        x_hat = self.decode(z)
        mmd = mmd_imq(z, self.prior(z.shape[0]), self.hparams.prior_var)
        # recon is the unscaled ||x - x~||² per image (comparable with the other autoencoders' figures); the loss uses
        # the scaled cost. The MMD is logged for both variants so that their latent fit can be compared on one number.
        self.log_dict({f"{stage}/recon": squared_l2(x_hat, x), f"{stage}/mmd": mmd,
                       f"{stage}/loss": self.cost(x_hat, x) + self.hparams.divergence_weight * mmd},
                      sync_dist=True, batch_size=x.shape[0])

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _autoencoder_optimizer(self) -> torch.optim.Optimizer:
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        return torch.optim.Adam(params, lr=self.hparams.lr, betas=tuple(self.hparams.betas))

    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        return autoencoder_media(self, batch.images, self.hparams.interpolation_steps)


class WAEMMD(_WAE):
    """WAE-MMD (Tolstikhin et al. 2018, algorithm 2): unbiased MMD² with inverse multiquadratic kernels summed
    over the scales ``kernel_scales`` × 2·d_z·σ_z²."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 8,
        channels: int = 32,
        hidden: int = 512,
        prior_var: float = 1.0,
        divergence_weight: float = 10.0,
        reconstruction_scale: float = 0.05,
        kernel_scales: tuple[float, ...] = IMQ_SCALES,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        interpolation_steps: int = 8,
    ) -> None:
        super().__init__(image_shape, latent_dim, channels, hidden, prior_var, divergence_weight, reconstruction_scale,
                         lr, betas, interpolation_steps)
        if not kernel_scales or any(s <= 0 for s in kernel_scales):
            raise ValueError(f"kernel_scales must be a non-empty list of positive numbers, but got {kernel_scales}")
        self.save_hyperparameters()

    def divergence(self, z: torch.Tensor) -> torch.Tensor:
        return mmd_imq(z, self.prior(z.shape[0]), self.hparams.prior_var, tuple(self.hparams.kernel_scales))

    def training_step(self, batch: ImageBatch, batch_idx: int) -> torch.Tensor:
        x = batch.images
        z = self.encode(x)  # (B, Z)
        x_hat = self.decode(z)
        recon = squared_l2(x_hat, x)
        mmd = self.divergence(z)
        loss = self.cost(x_hat, x) + self.hparams.divergence_weight * mmd
        self.log_dict({"train/loss": loss, "train/recon": recon, "train/mmd": mmd}, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self._autoencoder_optimizer()


class WAEGAN(_WAE):
    """WAE-GAN (Tolstikhin et al. 2018, algorithm 1): an adversary in latent space tells prior samples from codes;
    the encoder is trained with the non-saturating loss -log D(Q(x)) (λ-weighted) plus the reconstruction cost."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 8,
        channels: int = 32,
        hidden: int = 512,
        prior_var: float = 1.0,
        divergence_weight: float = 1.0,
        reconstruction_scale: float = 0.05,
        adversary_hidden: int = 512,
        adversary_layers: int = 4,
        lr: float = 1e-3,
        adversary_lr: float = 5e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        interpolation_steps: int = 8,
    ) -> None:
        super().__init__(image_shape, latent_dim, channels, hidden, prior_var, divergence_weight, reconstruction_scale,
                         lr, betas, interpolation_steps)
        if adversary_lr <= 0:
            raise ValueError(f"adversary_lr must be > 0, but got {adversary_lr}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.adversary = LatentDiscriminator(latent_dim, adversary_hidden, adversary_layers)

    def divergence(self, z: torch.Tensor) -> torch.Tensor:
        return gan_bce(self.adversary(z), True)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> None:
        opt_ae, opt_adv = self.optimizers()
        x = batch.images

        with self.toggled_optimizer(opt_adv):
            with torch.no_grad():
                z_q = self.encode(x)
            z_p = self.prior(x.shape[0])
            adv_loss = gan_bce(self.adversary(z_p), True) + gan_bce(self.adversary(z_q), False)
            backward_and_step(self, opt_adv, self.hparams.divergence_weight * adv_loss)

        with self.toggled_optimizer(opt_ae):
            z = self.encode(x)
            x_hat = self.decode(z)
            recon = squared_l2(x_hat, x)
            fool = self.divergence(z)
            loss = self.cost(x_hat, x) + self.hparams.divergence_weight * fool
            backward_and_step(self, opt_ae, loss)

        self.log_dict({"train/loss": loss, "train/recon": recon, "train/encoder_adversarial": fool,
                       "train/adversary_loss": adv_loss}, batch_size=x.shape[0])

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        adversary = torch.optim.Adam(self.adversary.parameters(), lr=self.hparams.adversary_lr, betas=tuple(self.hparams.betas))
        return [self._autoencoder_optimizer(), adversary]
