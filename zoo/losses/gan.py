"""Adversarial losses of the conditional GANs (pix2pix), as pure functions over discriminator logits of any
shape (per-patch for a PatchGAN), averaged over every element.

``bce`` is the non-saturating GAN of Goodfellow et al. 2014 (section 3), built on the zoo's one binary
cross-entropy term ``zoo.losses.image_generative.gan_bce``; ``lsgan`` is the least-squares GAN of Mao et al.
2017 (eq. 2 with a = 0, b = c = 1), which pix2pix/CycleGAN also offer.
"""

from __future__ import annotations

from typing import Literal

import torch

from zoo.losses.image_generative import gan_bce

GANLoss = Literal["bce", "lsgan"]


def _check(kind: str) -> None:
    if kind not in ("bce", "lsgan"):
        raise ValueError(f"the GAN loss must be 'bce' or 'lsgan', but got {kind!r}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: GANLoss = "bce") -> torch.Tensor:
    """L_D = ½ [ℓ(D(x, y), real) + ℓ(D(x, G(x)), fake)] -> ().

    pix2pix halves the discriminator's objective "to slow down the rate at which D learns relative to G"
    (Isola et al. 2017, section 3.3). ``bce``: ℓ is binary cross-entropy on logits; ``lsgan``: ℓ(s, real) = (s − 1)²,
    ℓ(s, fake) = s², on the raw scores.
    """
    _check(kind)
    if kind == "bce":
        return 0.5 * (gan_bce(real_logits, True) + gan_bce(fake_logits, False))
    return 0.5 * ((real_logits - 1.0).pow(2).mean() + fake_logits.pow(2).mean())


def generator_adversarial_loss(fake_logits: torch.Tensor, kind: GANLoss = "bce") -> torch.Tensor:
    """The generator's adversarial term -> (): ``bce`` −log σ(D(x, G(x))) (non-saturating), ``lsgan`` (D(x, G(x)) − 1)²."""
    _check(kind)
    if kind == "bce":
        return gan_bce(fake_logits, True)
    return (fake_logits - 1.0).pow(2).mean()
