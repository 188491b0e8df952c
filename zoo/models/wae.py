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
from zoo.config import block_config, check_interpolation_steps, check_non_negative, check_positive, config_from_value, freeze_sequences
from zoo.nn.dcgan import ConvDecoder, ConvEncoder, ImageNetConfig, LatentDiscriminator, WAEGANNetConfig


@block_config
class WAETrainingConfig:
    """What both WAEs train with (Tolstikhin et al. 2018, MNIST, section 4): the prior N(0, ``prior_var`` I), the
    squared-L2 cost scaled by ``reconstruction_scale`` (tolstikhin/wae's 0.05), the divergence weight λ
    (``divergence_weight``: 10 for the MMD, 1 for the adversary), Adam (``lr``, ``betas``) for encoder and decoder,
    ``interpolation_steps`` of the logged latent walks."""

    prior_var: float = 1.0
    divergence_weight: float = 10.0
    reconstruction_scale: float = 0.05
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    interpolation_steps: int = 8

    def __post_init__(self) -> None:
        freeze_sequences(self)
        name = type(self).__name__
        check_positive(name, prior_var=self.prior_var, reconstruction_scale=self.reconstruction_scale, lr=self.lr)
        check_non_negative(name, divergence_weight=self.divergence_weight)
        check_interpolation_steps(self)


@block_config
class WAEMMDTrainingConfig(WAETrainingConfig):
    """``WAETrainingConfig`` plus the IMQ kernels' ``kernel_scales`` (x 2·d_z·σ_z²)."""

    kernel_scales: tuple[float, ...] = IMQ_SCALES

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.kernel_scales or any(scale <= 0 for scale in self.kernel_scales):
            raise ValueError(f"WAEMMDTrainingConfig.kernel_scales must be a non-empty list of positive numbers, but "
                             f"got {self.kernel_scales}")


@block_config
class WAEGANTrainingConfig(WAETrainingConfig):
    """``WAETrainingConfig`` plus the latent adversary's Adam learning rate ``adversary_lr``."""

    adversary_lr: float = 5e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("WAEGANTrainingConfig", adversary_lr=self.adversary_lr)


WAE_NET = ImageNetConfig(latent_dim=8)  # the paper's d_z = 8 on MNIST
WAE_GAN_NET = WAEGANNetConfig(latent_dim=8)
WAE_GAN_TRAINING = WAEGANTrainingConfig(divergence_weight=1.0)  # λ = 1 with the latent adversary


class _WAE(L.LightningModule):
    """Deterministic encoder Q(z|x), decoder G(z); subclasses define the latent divergence."""

    def _setup(self, image_shape: tuple[int, int, int], net: ImageNetConfig, training: WAETrainingConfig) -> None:
        self.net_config, self.training_config = net, training
        self.encoder = ConvEncoder(tuple(image_shape), net.latent_dim, net.channels, net.hidden, net.batch_norm)
        self.decoder = ConvDecoder(tuple(image_shape), net.latent_dim, net.channels, net.hidden, net.batch_norm)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, Z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (B, C, H, W) in [0, 1]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def prior(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.net_config.latent_dim, device=self.device) * self.training_config.prior_var**0.5

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.prior(n))

    def divergence(self, z: torch.Tensor) -> torch.Tensor:
        """D(Q_Z, P_Z) as the encoder and decoder see it, for a batch of codes (B, Z) -> ()."""
        raise NotImplementedError

    def cost(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The objective's reconstruction term c(x, G(Q(x))): the scaled squared distance."""
        return wae_squared_l2_cost(x_hat, x, self.training_config.reconstruction_scale)

    def _eval_step(self, batch: ImageBatch, stage: str) -> None:
        x = batch.images
        z = self.encode(x)
        x_hat = self.decode(z)
        mmd = mmd_imq(z, self.prior(z.shape[0]), self.training_config.prior_var)
        # recon is the unscaled ||x - x~||² per image (comparable with the other autoencoders' figures); the loss uses
        # the scaled cost. The MMD is logged for both variants so that their latent fit can be compared on one number.
        self.log_dict({f"{stage}/recon": squared_l2(x_hat, x), f"{stage}/mmd": mmd,
                       f"{stage}/loss": self.cost(x_hat, x) + self.training_config.divergence_weight * mmd},
                      sync_dist=True, batch_size=x.shape[0])

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _autoencoder_optimizer(self) -> torch.optim.Optimizer:
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        return torch.optim.Adam(params, lr=self.training_config.lr, betas=self.training_config.betas)

    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        return autoencoder_media(self, batch.images, self.training_config.interpolation_steps)


class WAEMMD(_WAE):
    """WAE-MMD (Tolstikhin et al. 2018, algorithm 2): unbiased MMD² with inverse multiquadratic kernels summed
    over the scales ``kernel_scales`` × 2·d_z·σ_z²."""

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: ImageNetConfig = WAE_NET,
        training: WAEMMDTrainingConfig = WAEMMDTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        self._setup(image_shape, config_from_value(ImageNetConfig, net, "net", base=WAE_NET),
                    config_from_value(WAEMMDTrainingConfig, training, "training"))

    def divergence(self, z: torch.Tensor) -> torch.Tensor:
        return mmd_imq(z, self.prior(z.shape[0]), self.training_config.prior_var, self.training_config.kernel_scales)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> torch.Tensor:
        x = batch.images
        z = self.encode(x)  # (B, Z)
        x_hat = self.decode(z)
        recon = squared_l2(x_hat, x)
        mmd = self.divergence(z)
        loss = self.cost(x_hat, x) + self.training_config.divergence_weight * mmd
        self.log_dict({"train/loss": loss, "train/recon": recon, "train/mmd": mmd}, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self._autoencoder_optimizer()


class WAEGAN(_WAE):
    """WAE-GAN (Tolstikhin et al. 2018, algorithm 1): an adversary in latent space tells prior samples from codes;
    the encoder is trained with the non-saturating loss -log D(Q(x)) (λ-weighted) plus the reconstruction cost."""

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: WAEGANNetConfig = WAE_GAN_NET,
        training: WAEGANTrainingConfig = WAE_GAN_TRAINING,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        net = config_from_value(WAEGANNetConfig, net, "net", base=WAE_GAN_NET)
        self._setup(image_shape, net, config_from_value(WAEGANTrainingConfig, training, "training", base=WAE_GAN_TRAINING))
        self.automatic_optimization = False
        self.adversary = LatentDiscriminator(net.latent_dim, net.adversary_hidden, net.adversary_layers)

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
            backward_and_step(self, opt_adv, self.training_config.divergence_weight * adv_loss)

        with self.toggled_optimizer(opt_ae):
            z = self.encode(x)
            x_hat = self.decode(z)
            recon = squared_l2(x_hat, x)
            fool = self.divergence(z)
            loss = self.cost(x_hat, x) + self.training_config.divergence_weight * fool
            backward_and_step(self, opt_ae, loss)

        self.log_dict({"train/loss": loss, "train/recon": recon, "train/encoder_adversarial": fool,
                       "train/adversary_loss": adv_loss}, batch_size=x.shape[0])

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        adversary = torch.optim.Adam(self.adversary.parameters(), lr=self.training_config.adversary_lr, betas=self.training_config.betas)
        return [self._autoencoder_optimizer(), adversary]
