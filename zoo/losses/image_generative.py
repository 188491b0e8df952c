"""Losses of the image generative models (VAE, VAE-GAN, EBGAN, WAE, WGAN), as pure functions.

Convention: per-sample terms are *summed* over their own dimensions (pixels, latent units, features) and
*averaged* over the batch, so a VAE's loss is the negative ELBO per image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Likelihood = Literal["bernoulli", "gaussian"]
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def wae_squared_l2_cost(x: torch.Tensor, y: torch.Tensor, scale: float = 0.05) -> torch.Tensor:
    """WAE's reconstruction cost c(x, G(z)) = scale · ||x - y||² (B, ...), (B, ...) -> ().

    The reference (tolstikhin/wae ``wae.py``, cost ``'l2sq'``) multiplies the per-image squared distance, summed
    over pixels and averaged over the batch, by 0.05; the paper's λ (10 for WAE-MMD, 1 for WAE-GAN on MNIST) is
    tuned against that scaled cost, so dropping the factor acts as a 20 × smaller λ.
    """
    return scale * squared_l2(x, y)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims, averaged over the batch. (B, Z), (B, Z) -> ().

    Not divided by the number of pixels: the reconstruction term is a sum over pixels too, and dividing
    only the KL by 784 would weaken the prior ~784-fold (a common bug).
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, Z)
    return kl.sum(dim=1).mean()


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014): a sample with a gradient to mu and sigma."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def reconstruction_nll(logits: torch.Tensor, target: torch.Tensor, likelihood: Likelihood = "bernoulli") -> torch.Tensor:
    """-log p(x | z) summed over pixels, averaged over the batch. (B, C, H, W) logits, (B, C, H, W) in [0, 1] -> ().

    ``bernoulli``: binary cross-entropy on the logits; ``gaussian``: unit-variance Gaussian on sigmoid(logits),
    i.e. half the squared error (the constant log 2π is dropped).
    """
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif likelihood == "gaussian":
        per_pixel = 0.5 * (torch.sigmoid(logits) - target).pow(2)
    else:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', but got {likelihood!r}")
    return per_pixel.flatten(1).sum(dim=1).mean()


def squared_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x - y||² summed over all non-batch dims, averaged over the batch. (B, ...), (B, ...) -> ()."""
    return (x - y).pow(2).flatten(1).sum(dim=1).mean()


def feature_gaussian_nll(fake_features: torch.Tensor, real_features: torch.Tensor) -> torch.Tensor:
    """Larsen et al. 2016, eq. 8: -log N(Dis_l(x) | Dis_l(x̃), I), up to a constant. (B, ...), (B, ...) -> ()."""
    return 0.5 * squared_l2(fake_features, real_features)


def gan_bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of discriminator logits against "real" (1) or "fake" (0), averaged. (B,) -> ().

    The non-saturating generator loss is ``gan_bce(D(G(z)), real=True)`` (Goodfellow et al. 2014, section 3).
    """
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def ebgan_discriminator_loss(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: float) -> torch.Tensor:
    """EBGAN (Zhao et al. 2017, eq. 1): D(x) + [m - D(G(z))]^+, averaged over the batch. (B,), (B,) -> ()."""
    return energy_real.mean() + F.relu(margin - energy_fake).mean()


def imq_kernel(x: torch.Tensor, y: torch.Tensor, scales: Sequence[float] = IMQ_SCALES, base: float = 1.0) -> torch.Tensor:
    """Inverse multiquadratics k(x, y) = sum_s C_s / (C_s + ||x - y||²), C_s = s · base. (N, Z), (M, Z) -> (N, M).

    WAE (Tolstikhin et al. 2018, section 4) uses C = 2 · d_z · σ_z² as ``base`` and sums over several scales
    because no single C suits every stage of training.
    """
    d2 = torch.cdist(x, y).pow(2)  # (N, M)
    return sum(s * base / (s * base + d2) for s in scales)  # type: ignore[return-value]


def mmd_unbiased(x: torch.Tensor, y: torch.Tensor, kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Unbiased estimate of MMD²(P, Q) from x ~ P (N, Z) and y ~ Q (M, Z), N, M >= 2 -> ().

    Within-sample sums leave out the diagonal k(x_i, x_i) (Gretton et al. 2012, eq. 3), so the estimate is
    zero in expectation, and may be slightly negative, when P = Q.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples on each side, but got {n} and {m}")
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2.0 * kxy.mean()


def mmd_imq(z_q: torch.Tensor, z_p: torch.Tensor, prior_var: float = 1.0, scales: Sequence[float] = IMQ_SCALES) -> torch.Tensor:
    """WAE-MMD's penalty: unbiased MMD² with the IMQ kernel at C = 2 · d_z · σ_z² times each scale. (N, Z), (M, Z) -> ()."""
    base = 2.0 * z_q.shape[1] * prior_var
    return mmd_unbiased(z_q, z_p, lambda a, b: imq_kernel(a, b, scales, base))


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3) without λ: E[(||∇D(x̂)||₂ - 1)²], x̂ = α·real + (1-α)·fake -> ().

    One α ~ U[0, 1] per sample (B,), broadcast over the image; the norm runs over all non-batch dims.
    ``create_graph`` keeps the penalty differentiable w.r.t. the critic's parameters.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, but got {tuple(real.shape)} and {tuple(fake.shape)}")
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    alpha = alpha.view(-1, *([1] * (real.dim() - 1)))  # (B, 1, 1, 1)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)  # (B,)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)  # (B,)
    return (norms - 1.0).pow(2).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, clip: float) -> None:
    """WGAN (Arjovsky et al. 2017, algorithm 1): clamp every parameter of the critic into [-clip, clip], in place."""
    if clip <= 0:
        raise ValueError(f"clip must be > 0, but got {clip}")
    for p in module.parameters():
        p.clamp_(-clip, clip)
