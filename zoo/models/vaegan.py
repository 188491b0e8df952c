"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric") and its
energy-based variant with an EBGAN autoencoder discriminator (Zhao et al. 2017).

Both train three networks with three optimisers: per batch the discriminator first, then encoder and decoder
from one shared forward pass; the prior path x_p = Dec(z_p), z_p ~ N(0, I), is a second kind of fake.
"""

from __future__ import annotations

import lightning as L
import torch

from datamodules.batches import ImageBatch
from zoo.losses.image_generative import (
    ebgan_discriminator_loss,
    feature_gaussian_nll,
    gan_bce,
    gaussian_kl,
    reconstruction_nll,
    reparameterize,
)
from zoo.media import MediaSample, autoencoder_media
from zoo.models.adversarial import backward_and_step
from zoo.config import block_config, check_interpolation_steps, check_non_negative, check_positive, config_from_value, freeze_sequences
from zoo.nn.dcgan import (
    AutoencoderDiscriminator,
    ConvDecoder,
    ConvDiscriminator,
    EBGANVAENetConfig,
    GaussianEncoder,
    ImageNetConfig,
)


@block_config
class ThreeNetworkTrainingConfig:
    """What both VAE-GAN variants train with: the encoder's ``kl_weight``, Adam for the three networks (``lr``, the
    discriminator's scaled by ``discriminator_lr_scale``, ``betas``), ``interpolation_steps`` of the logged latent
    walks. ``VAEGANTrainingConfig`` and ``EBGANVAETrainingConfig`` add each variant's losses."""

    kl_weight: float = 1.0
    lr: float = 3e-4
    discriminator_lr_scale: float = 1.0
    betas: tuple[float, float] = (0.5, 0.999)
    interpolation_steps: int = 8

    def __post_init__(self) -> None:
        freeze_sequences(self)
        name = type(self).__name__
        check_positive(name, lr=self.lr, discriminator_lr_scale=self.discriminator_lr_scale)
        check_non_negative(name, gamma=getattr(self, "gamma", 0.0), kl_weight=self.kl_weight)
        check_interpolation_steps(self)


@block_config
class VAEGANTrainingConfig(ThreeNetworkTrainingConfig):
    """VAE-GAN's losses (see ``VAEGAN``): the similarity measured in the discriminator's hidden layer
    ``feature_layer``; the decoder's ``gamma`` weight on it; the update balance (``equilibrium``, ``margin``; None:
    off)."""

    feature_layer: int = -1
    gamma: float = 1e-2
    equilibrium: float = 0.68
    margin: float | None = 0.4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not -3 <= self.feature_layer <= 2:
            raise ValueError(f"VAEGANTrainingConfig.feature_layer must index one of the 3 hidden layers (-3..2), but "
                             f"got {self.feature_layer}")
        if self.equilibrium <= 0:
            raise ValueError(f"VAEGANTrainingConfig.equilibrium must be > 0, but got {self.equilibrium}")
        if self.margin is not None and not 0 <= self.margin < self.equilibrium:
            raise ValueError(f"VAEGANTrainingConfig.margin must be in [0, equilibrium={self.equilibrium}) or None, but "
                             f"got {self.margin}")


@block_config
class EBGANVAETrainingConfig(ThreeNetworkTrainingConfig):
    """EBGAN-VAE's losses (see ``EBGANVAE``): the hinge ``margin`` of the energy and the decoder's ``gamma`` weight
    on the pixel NLL."""

    margin: float = 100.0
    gamma: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("EBGANVAETrainingConfig", margin=self.margin)


class _ThreeNetworkVAEGAN(L.LightningModule):
    """The shared loop; subclasses define the discriminator, the losses and (optionally) the update balance."""

    encoder: GaussianEncoder
    decoder: ConvDecoder
    discriminator: torch.nn.Module
    training_config: VAEGANTrainingConfig | EBGANVAETrainingConfig

    def _setup(self, image_shape: tuple[int, int, int], net: ImageNetConfig,
               training: VAEGANTrainingConfig | EBGANVAETrainingConfig) -> None:
        self.automatic_optimization = False
        self.image_shape = tuple(image_shape)
        self.net_config, self.training_config = net, training
        self.encoder = GaussianEncoder(self.image_shape, net.latent_dim, net.channels, net.hidden, net.batch_norm)
        self.decoder = ConvDecoder(self.image_shape, net.latent_dim, net.channels, net.hidden, net.batch_norm)

    # --- the losses a variant defines -----------------------------------------------------------------------
    def discriminator_loss(self, x: torch.Tensor, x_tilde: torch.Tensor, x_p: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def generator_terms(self, x: torch.Tensor, x_tilde_logits: torch.Tensor, x_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarity, adversarial): the reconstruction loss shared by encoder and decoder, and the decoder's GAN term."""
        raise NotImplementedError

    def balance(self, dis_terms: dict[str, torch.Tensor]) -> tuple[bool, bool]:
        """Whether to update (discriminator, decoder) this batch, from the discriminator's current losses."""
        return True, True

    # --- shared ---------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)[0]  # (B, Z) posterior mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (B, C, H, W) in [0, 1]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.net_config.latent_dim, device=self.device))

    def training_step(self, batch: ImageBatch, batch_idx: int) -> None:
        opt_enc, opt_dec, opt_dis = self.optimizers()
        x = batch.images  # (B, C, H, W)
        z_p = torch.randn(x.shape[0], self.net_config.latent_dim, device=x.device)  # (B, Z)

        with self.toggled_optimizer(opt_dis):
            with torch.no_grad():
                x_tilde = self.decode(reparameterize(*self.encoder(x)))
                x_p = self.decode(z_p)
            dis_terms = self.discriminator_loss(x, x_tilde, x_p)
            update_dis, update_dec = self.balance(dis_terms)
            if update_dis:
                backward_and_step(self, opt_dis, dis_terms["loss"])

        # Encoder and decoder share one forward pass but not their losses (Larsen et al., algorithm 1): the
        # encoder gets prior + similarity, the decoder gamma * similarity + GAN; ``inputs=`` routes each loss
        # to its own network only, so the GAN term never reaches the encoder and nothing reaches the discriminator.
        mu, logvar = self.encoder(x)
        x_tilde_logits = self.decoder(reparameterize(mu, logvar))  # (B, C, H, W)
        kl = gaussian_kl(mu, logvar)
        similarity, adversarial = self.generator_terms(x, x_tilde_logits, self.decode(z_p))
        opt_enc.zero_grad()
        opt_dec.zero_grad()
        self.manual_backward(self.training_config.kl_weight * kl + similarity, inputs=list(self.encoder.parameters()),
                             retain_graph=True)
        self.manual_backward(self.training_config.gamma * similarity + adversarial, inputs=list(self.decoder.parameters()))
        opt_enc.step()
        if update_dec:
            opt_dec.step()

        self.log_dict(
            {"train/kl": kl, "train/similarity": similarity, "train/generator_adversarial": adversarial,
             "train/update_discriminator": float(update_dis), "train/update_decoder": float(update_dec),
             **{f"train/discriminator_{k}": v for k, v in dis_terms.items()}},
            prog_bar=False, batch_size=x.shape[0],
        )

    def _eval_step(self, batch: ImageBatch, stage: str) -> None:
        x = batch.images
        mu, logvar = self.encoder(x)
        x_tilde_logits = self.decoder(mu)
        x_p = self.decode(torch.randn_like(mu))
        terms = {
            "kl": gaussian_kl(mu, logvar),
            "similarity": self.generator_terms(x, x_tilde_logits, x_p)[0],
            "pixel_mse": (torch.sigmoid(x_tilde_logits) - x).pow(2).flatten(1).sum(1).mean(),
            "discriminator_loss": self.discriminator_loss(x, torch.sigmoid(x_tilde_logits), x_p)["loss"],
        }
        self.log_dict({f"{stage}/{k}": v for k, v in terms.items()}, sync_dist=True, batch_size=x.shape[0])

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        def adam(module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
            return torch.optim.Adam(module.parameters(), lr=lr, betas=self.training_config.betas)

        # Order matters: training_step unpacks (encoder, decoder, discriminator).
        return [adam(self.encoder, self.training_config.lr), adam(self.decoder, self.training_config.lr),
                adam(self.discriminator, self.training_config.lr * self.training_config.discriminator_lr_scale)]

    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        return autoencoder_media(self, batch.images, self.training_config.interpolation_steps)


class VAEGAN(_ThreeNetworkVAEGAN):
    """Larsen et al. 2016: reconstruction error measured in the discriminator's layer ``feature_layer``.

    Losses (section 2, algorithm 1): encoder L_prior + L_llike^Dis_l; decoder γ·L_llike^Dis_l − L_GAN (here with
    the non-saturating form: the decoder maximises log D(x̃) + log D(x_p)); discriminator L_GAN over real,
    reconstruction and prior sample, real and fake weighted equally (the two fakes share the fake half, as in
    the authors' code). ``feature_layer`` indexes the discriminator's hidden layers (0: first conv, 1: second
    conv, 2 = -1: the last hidden, fully connected layer). On MNIST the last layer's 512 unnormalised features
    give too weak a signal against the KL (the encoder collapses to the prior), so the config uses layer 1.

    Balance (after the authors' code, ``aegan.py``, equilibrium 0.68 ≈ ln 2 and margin 0.4): the discriminator
    skips its update when its mean cross-entropy over real and fake, (real + fake) / 2, is below
    ``equilibrium − margin`` (it is winning), and the decoder skips its update when it is above
    ``equilibrium + margin`` (it is losing); ``margin=None`` turns this off. The authors test real and fake
    separately; on MNIST that deadlocks (measured: the discriminator scores real images confidently, real BCE
    ~0.2, is paused for good, and never learns to reject fakes), so the mean is tested here.
    The discriminator sees real, reconstructed and prior images in one batch, in every pass, so that its
    batch-norm statistics are the same when it is trained and when it trains the encoder and decoder.
    """

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: ImageNetConfig = ImageNetConfig(),
        training: VAEGANTrainingConfig = VAEGANTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        net = config_from_value(ImageNetConfig, net, "net")
        self._setup(image_shape, net, config_from_value(VAEGANTrainingConfig, training, "training"))
        self.discriminator = ConvDiscriminator(self.image_shape, net.channels, net.hidden, batch_norm=True)

    def discriminate(self, x: torch.Tensor, x_tilde: torch.Tensor, x_p: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One discriminator pass over (real, reconstruction, prior sample), each (B, C, H, W).

        Returns the logits of each (B,) x 3 and the layer-l features of real and reconstruction (B, ...) x 2.
        """
        out = self.discriminator(torch.cat([x, x_tilde, x_p]))
        real, recon, prior = out.logits.chunk(3)
        f_real, f_recon, _ = out.features[self.training_config.feature_layer].chunk(3)
        return real, recon, prior, f_real, f_recon

    def discriminator_loss(self, x: torch.Tensor, x_tilde: torch.Tensor, x_p: torch.Tensor) -> dict[str, torch.Tensor]:
        real, recon, prior, _, _ = self.discriminate(x, x_tilde, x_p)
        real_cost, fake_cost = gan_bce(real, True), gan_bce(torch.cat([recon, prior]), False)
        return {"loss": real_cost + fake_cost, "real_cost": real_cost.detach(), "fake_cost": fake_cost.detach(),
                "real_prob": torch.sigmoid(real).mean().detach(),
                "fake_prob": torch.sigmoid(torch.cat([recon, prior])).mean().detach()}

    def generator_terms(self, x: torch.Tensor, x_tilde_logits: torch.Tensor, x_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, recon, prior, f_real, f_recon = self.discriminate(x, torch.sigmoid(x_tilde_logits), x_p)
        similarity = feature_gaussian_nll(f_recon, f_real.detach())
        return similarity, gan_bce(torch.cat([recon, prior]), True)  # non-saturating: -log D(x̃) - log D(x_p)

    def balance(self, dis_terms: dict[str, torch.Tensor]) -> tuple[bool, bool]:
        margin, eq = self.training_config.margin, self.training_config.equilibrium
        if margin is None:
            return True, True
        cost = 0.5 * float(dis_terms["real_cost"] + dis_terms["fake_cost"])
        return cost >= eq - margin, cost <= eq + margin


class EBGANVAE(_ThreeNetworkVAEGAN):
    """A VAE whose decoder is also an EBGAN generator: the discriminator is an autoencoder, its reconstruction
    energy E(x) = ||AE(x) − x||² (summed over pixels) the adversarial signal, with margin ``margin``.

    Encoder: KL + pixel reconstruction NLL; decoder: γ · pixel NLL + E(x̃) + E(x_p); discriminator:
    E(x) + [m − E(x̃)]⁺ + [m − E(x_p)]⁺ (Zhao et al. 2017, eq. 1 and 2, with both kinds of fake).

    Scale (measured on MNIST, docs/results/mnist.md): the energy is summed over the 784 pixels, so real images
    sit at ~12–60 and fakes at ~100–250 in the first 200 batches. A margin of 10 is below even the real energy:
    the hinge is dead, the discriminator is a plain autoencoder of real digits, and with γ = 1 the energy term
    (as large as the pixel NLL) drives the prior samples to grey, checkered images that autoencoder reproduces.
    Defaults m = 100 (inside the fakes' range, so the hinge acts) and γ = 10 (the pixel NLL leads the decoder).
    """

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: EBGANVAENetConfig = EBGANVAENetConfig(),
        training: EBGANVAETrainingConfig = EBGANVAETrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        net = config_from_value(EBGANVAENetConfig, net, "net")
        self._setup(image_shape, net, config_from_value(EBGANVAETrainingConfig, training, "training"))
        self.discriminator = AutoencoderDiscriminator(self.image_shape, net.code_dim, net.channels, net.hidden)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x)  # (B,) summed squared error

    def discriminator_loss(self, x: torch.Tensor, x_tilde: torch.Tensor, x_p: torch.Tensor) -> dict[str, torch.Tensor]:
        energies = self.energy(torch.cat([x, x_tilde, x_p]))  # (3B,)
        real, fake = energies[: x.shape[0]], energies[x.shape[0]:]
        loss = ebgan_discriminator_loss(real, fake, self.training_config.margin)
        return {"loss": loss, "energy_real": real.mean(), "energy_fake": fake.mean()}

    def generator_terms(self, x: torch.Tensor, x_tilde_logits: torch.Tensor, x_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Real images ride along so the autoencoder's batch norm sees the same mix as when it is trained.
        energies = self.energy(torch.cat([x, torch.sigmoid(x_tilde_logits), x_p]))  # (3B,)
        return reconstruction_nll(x_tilde_logits, x, "bernoulli"), energies[x.shape[0]:].mean()
