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
from zoo.nn.dcgan import ConvDecoder, ConvDiscriminator, interpolate_latents


class WGAN(L.LightningModule):
    """WGAN with weight clipping, RMSprop and the reference critic schedule (Arjovsky et al. 2017, algorithm 1).

    Critic loss E[D(G(z))] − E[D(x)]; its negative, the Wasserstein estimate, is logged as ``train/wasserstein``.
    As in the authors' code, the critic gets ``warmup_n_critic`` (100) updates per generator update for the first
    ``warmup_generator_steps`` (25) generator updates and at every ``long_critic_every``-th (500th) one.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 64,
        channels: int = 32,
        hidden: int = 512,
        critic_batch_norm: bool = True,
        n_critic: int = 5,
        warmup_n_critic: int = 100,
        warmup_generator_steps: int = 25,
        long_critic_every: int = 500,
        clip_value: float = 0.01,
        lr: float = 5e-5,
        interpolation_steps: int = 8,
    ) -> None:
        super().__init__()
        for name, value in (("n_critic", n_critic), ("warmup_n_critic", warmup_n_critic),
                            ("long_critic_every", long_critic_every)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, but got {value}")
        if interpolation_steps < 2:
            raise ValueError(f"interpolation_steps must be >= 2, but got {interpolation_steps}")
        if warmup_generator_steps < 0:
            raise ValueError(f"warmup_generator_steps must be >= 0, but got {warmup_generator_steps}")
        if clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, but got {clip_value}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, but got {lr}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        # Kept as attributes, not read from hparams: WGANGP fixes them and saves only its own arguments.
        self.n_critic, self.warmup_n_critic = n_critic, warmup_n_critic
        self.warmup_generator_steps, self.long_critic_every = warmup_generator_steps, long_critic_every
        self.generator = ConvDecoder(tuple(image_shape), latent_dim, channels, hidden, batch_norm=True)
        self.critic = ConvDiscriminator(tuple(image_shape), channels, hidden, batch_norm=critic_batch_norm)
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("critic_steps_in_round", torch.zeros((), dtype=torch.long))

    # --- the model ----------------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.generator(z))  # (B, C, H, W) in [0, 1]

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.hparams.latent_dim, device=self.device))

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
        clip_weights_(self.critic, self.hparams.clip_value)

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
        lr = self.hparams.lr
        return [torch.optim.RMSprop(self.generator.parameters(), lr=lr), torch.optim.RMSprop(self.critic.parameters(), lr=lr)]

    # --- media --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def media_sample(self, batch: ImageBatch) -> MediaSample:
        x = batch.images
        z = torch.randn(2, self.hparams.latent_dim, device=x.device)
        return MediaSample(images={
            "inputs": x,
            "samples": self.sample(x.shape[0]),
            "interpolations": self.decode(interpolate_latents(z[0], z[1], self.hparams.interpolation_steps)),
        })


class WGANGP(WGAN):
    """WGAN-GP (Gulrajani et al. 2017, algorithm 1): critic loss + λ·(||∇D(x̂)||₂ − 1)², no clipping, no batch
    norm in the critic, Adam(lr 1e-4, β = (0.5, 0.9)), n_critic = 5 from the start."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 64,
        channels: int = 32,
        hidden: int = 512,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        interpolation_steps: int = 8,
    ) -> None:
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, but got {gp_weight}")
        super().__init__(image_shape, latent_dim, channels, hidden, critic_batch_norm=False, n_critic=n_critic,
                         warmup_n_critic=n_critic, warmup_generator_steps=0, long_critic_every=1, lr=lr,
                         interpolation_steps=interpolation_steps)
        self.save_hyperparameters()

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = super().critic_loss(real, fake)
        gp = gradient_penalty(self.score, real, fake)
        return {"loss": terms["loss"] + self.hparams.gp_weight * gp, "wasserstein": terms["wasserstein"], "gradient_penalty": gp}

    def after_critic_step(self) -> None:
        pass  # the penalty replaces clipping

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        return [torch.optim.Adam(self.generator.parameters(), lr=hp.lr, betas=tuple(hp.betas)),
                torch.optim.Adam(self.critic.parameters(), lr=hp.lr, betas=tuple(hp.betas))]
