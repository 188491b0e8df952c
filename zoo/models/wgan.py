"""Wasserstein GANs: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani et al. 2017).

One training batch is one critic update; the generator is updated after every ``n_critic`` critic updates.
Both counters live in registered buffers, so they are checkpointed and a resumed run keeps the schedule, and
every rank takes the same decision at the same step under DDP.
"""

from __future__ import annotations

import lightning as L
import torch

from datamodules.batches import ImageBatch
from zoo.losses.image_generative import clip_weights_, gradient_penalty
from zoo.media import MediaSample
from zoo.models.adversarial import backward_and_step
from zoo.config import block_config, check_interpolation_steps, check_non_negative, check_positive, config_from_value, freeze_sequences
from zoo.nn.dcgan import ConvDecoder, ConvDiscriminator, CriticNetConfig, interpolate_latents


@block_config
class WGANTrainingConfig:
    """The clipped WGAN's schedule and optimiser (Arjovsky et al. 2017, algorithm 1 and the authors' code):
    ``n_critic`` critic updates per generator update, ``warmup_n_critic`` of them for the first
    ``warmup_generator_steps`` generator updates and at every ``long_critic_every``-th; critic weights clipped to
    ±``clip_value``; RMSprop at ``lr``; ``interpolation_steps`` of the logged latent walks."""

    n_critic: int = 5
    warmup_n_critic: int = 100
    warmup_generator_steps: int = 25
    long_critic_every: int = 500
    clip_value: float = 0.01
    lr: float = 5e-5
    interpolation_steps: int = 8

    def __post_init__(self) -> None:
        check_positive("WGANTrainingConfig", n_critic=self.n_critic, warmup_n_critic=self.warmup_n_critic,
                       long_critic_every=self.long_critic_every, clip_value=self.clip_value, lr=self.lr)
        check_non_negative("WGANTrainingConfig", warmup_generator_steps=self.warmup_generator_steps)
        check_interpolation_steps(self)


@block_config
class WGANGPTrainingConfig:
    """WGAN-GP's (Gulrajani et al. 2017, algorithm 1): ``n_critic`` critic updates per generator update from the
    start, the gradient penalty's weight λ (``gp_weight``), Adam (``lr``, ``betas``); ``interpolation_steps`` of the
    logged latent walks."""

    n_critic: int = 5
    gp_weight: float = 10.0
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    interpolation_steps: int = 8

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_positive("WGANGPTrainingConfig", n_critic=self.n_critic, lr=self.lr)
        check_non_negative("WGANGPTrainingConfig", gp_weight=self.gp_weight)
        check_interpolation_steps(self)


WGAN_NET = CriticNetConfig(latent_dim=64)
WGAN_GP_NET = CriticNetConfig(latent_dim=64, critic_batch_norm=False)  # no batch norm in the penalised critic


class WGAN(L.LightningModule):
    """WGAN with weight clipping, RMSprop and the reference critic schedule (Arjovsky et al. 2017, algorithm 1).

    Critic loss E[D(G(z))] − E[D(x)]; its negative, the Wasserstein estimate, is logged as ``train/wasserstein``.
    As in the authors' code, the critic gets ``warmup_n_critic`` (100) updates per generator update for the first
    ``warmup_generator_steps`` (25) generator updates and at every ``long_critic_every``-th (500th) one.
    """

    training_config: WGANTrainingConfig | WGANGPTrainingConfig

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: CriticNetConfig = WGAN_NET,
        training: WGANTrainingConfig = WGANTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        training = config_from_value(WGANTrainingConfig, training, "training")
        self._setup(image_shape, config_from_value(CriticNetConfig, net, "net", base=WGAN_NET), training,
                    (training.n_critic, training.warmup_n_critic, training.warmup_generator_steps, training.long_critic_every))

    def _setup(self, image_shape: tuple[int, int, int], net: CriticNetConfig,
               training: WGANTrainingConfig | WGANGPTrainingConfig, schedule: tuple[int, int, int, int]) -> None:
        self.automatic_optimization = False
        self.net_config, self.training_config = net, training
        # the critic schedule as attributes: WGAN-GP's is fixed (n_critic from the start), not in its config
        self.n_critic, self.warmup_n_critic, self.warmup_generator_steps, self.long_critic_every = schedule
        self.generator = ConvDecoder(tuple(image_shape), net.latent_dim, net.channels, net.hidden, net.batch_norm)
        self.critic = ConvDiscriminator(tuple(image_shape), net.channels, net.hidden, batch_norm=net.critic_batch_norm)
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("critic_steps_in_round", torch.zeros((), dtype=torch.long))

    # --- the model ----------------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.generator(z))  # (B, C, H, W) in [0, 1]

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.net_config.latent_dim, device=self.device))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).logits  # (B,)

    def critic_updates_for(self, generator_step: int) -> int:
        """How many critic updates precede generator update number ``generator_step`` (0-based)."""
        if generator_step < self.warmup_generator_steps or generator_step % self.long_critic_every == 0:
            return self.warmup_n_critic
        return self.n_critic

    def optimizer_steps_for(self, generator_steps: int) -> int:
        """Lightning's ``global_step`` (every optimiser's steps: critic and generator) after ``generator_steps``
        generator updates; ``trainer.max_steps`` set to it stops two WGANs at equal generator steps."""
        if generator_steps < 0:
            raise ValueError(f"generator_steps must be >= 0, but got {generator_steps}")
        return generator_steps + sum(self.critic_updates_for(g) for g in range(generator_steps))

    # --- training -----------------------------------------------------------------------------------------
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        wasserstein = self.score(real).mean() - self.score(fake).mean()
        return {"loss": -wasserstein, "wasserstein": wasserstein}

    def after_critic_step(self) -> None:
        clip_weights_(self.critic, self.training_config.clip_value)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> None:
        opt_g, opt_c = self.optimizers()
        real = batch.images  # (B, C, H, W)

        with self.toggled_optimizer(opt_c):
            with torch.no_grad():
                fake = self.sample(real.shape[0])
            terms = self.critic_loss(real, fake)
            backward_and_step(self, opt_c, terms["loss"])
            self.after_critic_step()
        self.critic_steps_in_round += 1
        self.log_dict({f"train/{k if k != 'loss' else 'critic_loss'}": v for k, v in terms.items()},
                      prog_bar=True, batch_size=real.shape[0])

        if int(self.critic_steps_in_round) >= self.critic_updates_for(int(self.generator_steps)):
            with self.toggled_optimizer(opt_g):
                generator_loss = -self.score(self.sample(real.shape[0])).mean()
                backward_and_step(self, opt_g, generator_loss)
            self.generator_steps += 1
            self.critic_steps_in_round.zero_()
            self.log("train/generator_loss", generator_loss, batch_size=real.shape[0])
        self.log("train/generator_steps", self.generator_steps.float(), batch_size=real.shape[0])

    def _eval_step(self, batch: ImageBatch, stage: str) -> None:
        real = batch.images
        wasserstein = self.score(real).mean() - self.score(self.sample(real.shape[0])).mean()
        self.log(f"{stage}/wasserstein", wasserstein, sync_dist=True, prog_bar=True, batch_size=real.shape[0])

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # Order matters: training_step unpacks (generator, critic).
        lr = self.training_config.lr
        return [torch.optim.RMSprop(self.generator.parameters(), lr=lr), torch.optim.RMSprop(self.critic.parameters(), lr=lr)]

    # --- media --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        x = batch.images
        z = torch.randn(2, self.net_config.latent_dim, device=x.device)
        return MediaSample(images={
            "inputs": x,
            "samples": self.sample(x.shape[0]),
            "interpolations": self.decode(interpolate_latents(z[0], z[1], self.training_config.interpolation_steps)),
        })


class WGANGP(WGAN):
    """WGAN-GP (Gulrajani et al. 2017, algorithm 1): critic loss + λ·(||∇D(x̂)||₂ − 1)², no clipping, no batch
    norm in the critic, Adam(lr 1e-4, β = (0.5, 0.9)), n_critic = 5 from the start."""

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        net: CriticNetConfig = WGAN_GP_NET,
        training: WGANGPTrainingConfig = WGANGPTrainingConfig(),
    ) -> None:
        L.LightningModule.__init__(self)  # not WGAN's: its clipping schedule and training config are not this one's
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        training = config_from_value(WGANGPTrainingConfig, training, "training")
        self._setup(image_shape, config_from_value(CriticNetConfig, net, "net", base=WGAN_GP_NET), training,
                    (training.n_critic, training.n_critic, 0, 1))

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = super().critic_loss(real, fake)
        gp = gradient_penalty(self.score, real, fake)
        return {"loss": terms["loss"] + self.training_config.gp_weight * gp, "wasserstein": terms["wasserstein"], "gradient_penalty": gp}

    def after_critic_step(self) -> None:
        pass  # the penalty replaces clipping

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.training_config
        return [torch.optim.Adam(self.generator.parameters(), lr=hp.lr, betas=hp.betas),
                torch.optim.Adam(self.critic.parameters(), lr=hp.lr, betas=hp.betas)]
