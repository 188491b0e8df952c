"""DCGAN-style image blocks (Radford et al. 2016) shared by every MNIST generative model in the zoo.

Two stride-2 convolutions take an (C, H, W) image to (2·channels, H/4, W/4) and back; ``H`` and ``W`` must be
multiples of 4 (28 for MNIST). Pure ``torch.nn``: no Lightning in here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from zoo.config import block_config, check_positive


@block_config
class ImageNetConfig:
    """The image networks of an MNIST-family model: ``latent_dim``-dimensional codes, conv trunks of ``channels``
    (doubled by the second stride-2 conv) with a ``hidden``-unit fully connected layer, batch norm in the encoder and
    the decoder (generator) when ``batch_norm``."""

    latent_dim: int = 16
    channels: int = 32
    hidden: int = 512
    batch_norm: bool = True

    def __post_init__(self) -> None:
        check_positive(type(self).__name__, latent_dim=self.latent_dim, channels=self.channels, hidden=self.hidden)


@block_config
class CriticNetConfig(ImageNetConfig):
    """``ImageNetConfig`` plus the WGAN critic's batch norm (``critic_batch_norm``; WGAN-GP's critic has none)."""

    critic_batch_norm: bool = True


@block_config
class EBGANVAENetConfig(ImageNetConfig):
    """``ImageNetConfig`` plus the EBGAN discriminator's (an autoencoder's) code size ``code_dim``."""

    code_dim: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("EBGANVAENetConfig", code_dim=self.code_dim)


@block_config
class WAEGANNetConfig(ImageNetConfig):
    """``ImageNetConfig`` plus WAE-GAN's latent adversary: ``adversary_layers`` ReLU layers of ``adversary_hidden``."""

    adversary_hidden: int = 512
    adversary_layers: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("WAEGANNetConfig", adversary_hidden=self.adversary_hidden, adversary_layers=self.adversary_layers)


def _check_image_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(image_shape) != 3 or any(int(d) < 1 for d in image_shape):
        raise ValueError(f"image_shape must be (C, H, W) with positive sizes, but got {image_shape}")
    c, h, w = (int(d) for d in image_shape)
    if h % 4 or w % 4:
        raise ValueError(f"image height and width must be multiples of 4 for two stride-2 stages, but got {image_shape}")
    return c, h, w


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, but got {value}")


class _ConvTrunk(nn.Module):
    """(B, C, H, W) -> (B, 2·channels·H/4·W/4): conv 4x4 stride 2, twice, LeakyReLU(0.2); BN on the second."""

    def __init__(self, image_shape: tuple[int, int, int], channels: int, batch_norm: bool) -> None:
        super().__init__()
        c, h, w = _check_image_shape(image_shape)
        self.conv1 = nn.Sequential(nn.Conv2d(c, channels, 4, 2, 1), nn.LeakyReLU(0.2))
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 4, 2, 1),
            nn.BatchNorm2d(2 * channels) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
        )
        self.out_features = 2 * channels * (h // 4) * (w // 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = self.conv1(x)  # (B, ch, H/2, W/2)
        h2 = self.conv2(h1)  # (B, 2ch, H/4, W/4)
        return h1, h2


class ConvEncoder(nn.Module):
    """Image -> ``out_dim`` numbers (a latent code, or the mean and log-variance of a Gaussian stacked)."""

    def __init__(self, image_shape: tuple[int, int, int], out_dim: int, channels: int = 64, hidden: int = 1024,
                 batch_norm: bool = True) -> None:
        super().__init__()
        _check_positive(out_dim=out_dim, channels=channels, hidden=hidden)
        self.trunk = _ConvTrunk(image_shape, channels, batch_norm)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.trunk.out_features, hidden),
            nn.BatchNorm1d(hidden) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)[1])  # (B, out_dim)


class GaussianEncoder(nn.Module):
    """q(z | x) = N(mu, diag(exp(logvar))) from a :class:`ConvEncoder` with twice the latent width."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, channels: int = 64, hidden: int = 1024,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.net = ConvEncoder(image_shape, 2 * latent_dim, channels, hidden, batch_norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)  # (B, Z) each
        return mu, logvar


class ConvDecoder(nn.Module):
    """z -> image logits (B, C, H, W): linear to (2·channels, H/4, W/4), then two stride-2 transposed convs.

    Returns logits; ``torch.sigmoid`` maps them to pixel intensities in [0, 1].
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, channels: int = 64, hidden: int = 1024,
                 batch_norm: bool = True) -> None:
        super().__init__()
        c, h, w = _check_image_shape(image_shape)
        _check_positive(latent_dim=latent_dim, channels=channels, hidden=hidden)
        self.grid = (2 * channels, h // 4, w // 4)
        bn1 = nn.BatchNorm1d if batch_norm else (lambda n: nn.Identity())
        bn2 = nn.BatchNorm2d if batch_norm else (lambda n: nn.Identity())
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, hidden), bn1(hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * channels * (h // 4) * (w // 4)), bn1(2 * channels * (h // 4) * (w // 4)), nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), bn2(channels), nn.ReLU(),
            nn.ConvTranspose2d(channels, c, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).unflatten(1, self.grid)  # (B, 2ch, H/4, W/4)
        return self.deconv(h)  # (B, C, H, W) logits


class DiscriminatorOutput(NamedTuple):
    logits: torch.Tensor  # (B,) real-vs-fake logit, or the critic's score for a WGAN
    features: tuple[torch.Tensor, ...]  # hidden layers, first to last: (B, ch, H/2, W/2), (B, 2ch, H/4, W/4), (B, hidden)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator / WGAN critic: image -> one score, with its hidden layers for feature-wise losses.

    ``batch_norm=False`` for a WGAN-GP critic: the gradient penalty is per sample, and batch norm would couple
    the samples of a batch (Gulrajani et al. 2017, section 4).
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: int = 64, hidden: int = 1024,
                 batch_norm: bool = True) -> None:
        super().__init__()
        _check_positive(channels=channels, hidden=hidden)
        self.trunk = _ConvTrunk(image_shape, channels, batch_norm)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(self.trunk.out_features, hidden), nn.LeakyReLU(0.2))
        self.out = nn.Linear(hidden, 1)
        self.num_hidden_layers = 3

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        h1, h2 = self.trunk(x)
        h3 = self.fc(h2)  # (B, hidden)
        return DiscriminatorOutput(self.out(h3).squeeze(-1), (h1, h2, h3))


class AutoencoderDiscriminator(nn.Module):
    """EBGAN's discriminator (Zhao et al. 2017): an autoencoder; its reconstruction error ||AE(x) - x||², summed
    over pixels, is the energy of each sample."""

    def __init__(self, image_shape: tuple[int, int, int], code_dim: int = 32, channels: int = 64,
                 hidden: int = 1024) -> None:
        super().__init__()
        self.encoder = ConvEncoder(image_shape, code_dim, channels, hidden, batch_norm=True)
        self.decoder = ConvDecoder(image_shape, code_dim, channels, hidden, batch_norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recon = torch.sigmoid(self.decoder(self.encoder(x)))  # (B, C, H, W)
        return (recon - x).pow(2).flatten(1).sum(dim=1)  # (B,) energy


class LatentDiscriminator(nn.Module):
    """WAE-GAN's adversary in latent space (Tolstikhin et al. 2018): an MLP z -> logit of "drawn from the prior"."""

    def __init__(self, latent_dim: int, hidden: int = 512, num_layers: int = 4) -> None:
        super().__init__()
        _check_positive(latent_dim=latent_dim, hidden=hidden, num_layers=num_layers)
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)  # (B,)


def interpolate_latents(z_start: torch.Tensor, z_end: torch.Tensor, steps: int) -> torch.Tensor:
    """Straight-line walk from z_start to z_end, both ends included: (Z,), (Z,) -> (steps, Z)."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, but got {steps}")
    t = torch.linspace(0.0, 1.0, steps, device=z_start.device, dtype=z_start.dtype)[:, None]  # (steps, 1)
    return (1 - t) * z_start + t * z_end
