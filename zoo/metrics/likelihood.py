"""Test log-likelihood of latent-variable image models: the importance-weighted bound (Burda et al. 2016).

    log p(x) >= log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x),

tight as k grows (k = 5000 in Burda et al.'s Table 1, where a one-stochastic-layer VAE on MNIST scores 86.76 nats).
The likelihood here is a Bernoulli decoder's on binary images; a model trained on grey levels with the Bernoulli
cross-entropy (as the zoo's are) is scored on binarised test images, a likelihood it was not trained for, so its
figure is a bound for that model on that data, not a like-for-like comparison with the published table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def importance_weighted_nll(
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    decode_logits: Callable[[torch.Tensor], torch.Tensor],
    k: int = 5000,
    chunk: int = 500,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """-log p(x) bounded with k importance samples from q = N(mu, exp(logvar)), a N(0, I) prior and a Bernoulli
    decoder: x (B, C, H, W) binary, mu/logvar (B, Z), ``decode_logits`` (N, Z) -> (N, C, H, W). -> (B,) nats.

    The k samples are drawn ``chunk`` at a time (memory: B * chunk decoder outputs) and combined by logsumexp.
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be >= 1, but got k={k}, chunk={chunk}")
    if x.shape[0] != mu.shape[0] or mu.shape != logvar.shape:
        raise ValueError(f"x, mu and logvar must share the batch: {tuple(x.shape)}, {tuple(mu.shape)}, {tuple(logvar.shape)}")
    b, z_dim = mu.shape
    std = (0.5 * logvar).exp()
    log_w = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        eps = torch.randn(n, b, z_dim, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + std * eps  # (n, B, Z)
        logits = decode_logits(z.reshape(n * b, z_dim)).reshape(n, b, *x.shape[1:])  # (n, B, C, H, W)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").flatten(2).sum(-1)
        log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)  # (n, B)
        log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)  # (n, B)
        log_w.append(log_px_z + log_pz - log_qz)
    return -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))  # (B,)


def binarize(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Stochastic binarisation (each pixel ~ Bernoulli(intensity)) with a fixed seed: MNIST's dynamic binarisation,
    frozen, so that every model is scored on the same binary test set. (N, C, H, W) in [0, 1] -> {0, 1}."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.float().cpu(), generator=generator)


__all__ = ["binarize", "importance_weighted_nll"]
