"""Output distributions of autoregressive waveform models: losses and samplers as pure functions.

* discretised mixture of logistics (Salimans et al. 2017, "PixelCNN++", as used by WaveNet vocoders): audio in
  [-1, 1] quantised to ``num_classes`` levels, i.e. bins of width ``2 / (num_classes - 1)`` centred on the levels;
* single Gaussian: a continuous density, so its negative log-likelihood goes below 0 once the predicted scale is
  smaller than about ``1 / sqrt(2 pi e)``; that is expected, not a bug;
* categorical over mu-law bins: cross-entropy (the targets come from ``zoo.audio.mu_law_encode``).

Every NLL is in nats per sample; ``bits_per_sample`` converts. Everything is computed in float32 whatever the
network's dtype: under bf16 autocast a bin of width 2 / (2^16 - 1) is far below bf16's resolution near 1 (2^-7),
so ``y ± half_bin`` would round back to ``y`` and every bin probability to the low-probability branch. Samplers take their randomness either as explicit
noise tensors (so two generation paths can be fed the very same noise) or from a ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "UNIFORM_EPS",
    "bits_per_sample",
    "categorical_nll",
    "discretized_mix_logistic_log_prob",
    "discretized_mix_logistic_nll",
    "gaussian_log_prob",
    "gaussian_nll",
    "sample_categorical",
    "sample_discretized_mix_logistic",
    "sample_gaussian",
]

# Uniform draws are kept in (eps, 1 - eps) so log(u), log(1 - u) and log(-log(u)) stay finite (PixelCNN++).
UNIFORM_EPS = 1e-5


def _f32(t: torch.Tensor) -> torch.Tensor:
    """At least float32 (float64 stays float64): the losses never run in bf16/fp16, see the module docstring."""
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


def _split_mol(y_hat: torch.Tensor, log_scale_min: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if y_hat.dim() != 3 or y_hat.shape[1] % 3 != 0:
        raise ValueError(f"y_hat must be (B, 3M, T), but got shape {tuple(y_hat.shape)}")
    m = y_hat.shape[1] // 3
    y_hat = _f32(y_hat)
    logit_probs = y_hat[:, :m]  # (B, M, T)
    means = y_hat[:, m : 2 * m]  # (B, M, T)
    log_scales = y_hat[:, 2 * m :].clamp(min=log_scale_min)  # (B, M, T)
    return logit_probs, means, log_scales


def discretized_mix_logistic_log_prob(
    y_hat: torch.Tensor, y: torch.Tensor, num_classes: int = 2**16, log_scale_min: float = -7.0
) -> torch.Tensor:
    """log P(y) under the discretised logistic mixture. y_hat (B, 3M, T), y (B, T) in [-1, 1] -> (B, T).

    The bin of ``y`` is ``[y - 1/(K-1), y + 1/(K-1)]`` (K = num_classes); at ``y = -1`` the lower edge extends to
    -inf and at ``y = +1`` the upper edge to +inf, so the K bin probabilities sum to 1. Where the CDF difference
    underflows (< 1e-5) the probability is the density at the bin centre times the bin width, in log space.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, but got {num_classes}")
    logit_probs, means, log_scales = _split_mol(y_hat, log_scale_min)
    if y.shape != (y_hat.shape[0], y_hat.shape[2]):
        raise ValueError(f"y must be (B, T) = {(y_hat.shape[0], y_hat.shape[2])}, but got {tuple(y.shape)}")
    y = _f32(y).unsqueeze(1)  # (B, 1, T), broadcast over components
    half_bin = 1.0 / (num_classes - 1)
    centered = y - means  # (B, M, T)
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centered + half_bin)
    min_in = inv_scale * (centered - half_bin)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    # log sigmoid(plus_in): the whole lower tail, for the bin at -1
    log_cdf_plus = plus_in - F.softplus(plus_in)
    # log (1 - sigmoid(min_in)): the whole upper tail, for the bin at +1
    log_one_minus_cdf_min = -F.softplus(min_in)
    # The low-probability case (cdf_delta < 1e-5), in log space. When the bin is narrow against the scale,
    # PixelCNN++'s density at the bin centre times the bin width (relative error (bin / scale)^2 / 24). When it
    # is wide (far tail of a sharp component) that approximation is off by up to a factor sinh(r)/r, so there the
    # CDF difference is taken exactly in log space, on the lower tail where it does not cancel.
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    log_prob_tiny = log_pdf_mid + math.log(2.0 * half_bin)
    upper = centered > 0  # sigmoid(a) - sigmoid(b) == sigmoid(-b) - sigmoid(-a)
    log_cdf_a = F.logsigmoid(torch.where(upper, -min_in, plus_in))
    log_cdf_b = F.logsigmoid(torch.where(upper, -plus_in, min_in))
    # log(cdf_a - cdf_b) = log cdf_a + log(1 - exp(log cdf_b - log cdf_a)); clamp keeps log() and its gradient
    # finite where the discarded branch underflows (torch.where still back-propagates 0 * its gradient)
    log_delta_tail = log_cdf_a + torch.log((-torch.expm1(log_cdf_b - log_cdf_a)).clamp(min=1e-30))
    wide_bin = 2.0 * half_bin * inv_scale > 0.02
    log_prob_low = torch.where(wide_bin, log_delta_tail, log_prob_tiny)
    log_prob_interior = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_prob_low)
    edge = 1.0 - half_bin  # targets are quantised levels; compare halfway to the next level, not with ==
    log_probs = torch.where(y < -edge, log_cdf_plus, torch.where(y > edge, log_one_minus_cdf_min, log_prob_interior))
    log_probs = log_probs + F.log_softmax(logit_probs, dim=1)  # (B, M, T)
    return torch.logsumexp(log_probs, dim=1)  # (B, T)


def discretized_mix_logistic_nll(
    y_hat: torch.Tensor, y: torch.Tensor, num_classes: int = 2**16, log_scale_min: float = -7.0, reduce: bool = True
) -> torch.Tensor:
    """Negative log-likelihood (nats per sample) of y (B, T) in [-1, 1] under y_hat (B, 3M, T).

    ``y_hat`` holds M mixture logits, M means and M log-scales (bounded below by ``log_scale_min``) along
    channels. Returns the mean over B and T when ``reduce``, else (B, T).
    """
    nll = -discretized_mix_logistic_log_prob(y_hat, y, num_classes, log_scale_min)
    return nll.mean() if reduce else nll


def _uniform(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def sample_discretized_mix_logistic(
    y_hat: torch.Tensor,
    log_scale_min: float = -7.0,
    uniform: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw y (B, T) in [-1, 1] from the mixture y_hat (B, 3M, T).

    The component is picked by the Gumbel-max trick (argmax of logits + Gumbel noise = a softmax draw), the value
    by inverting the logistic CDF, ``mean + scale * (log u - log(1 - u))``, then clamped to [-1, 1].
    ``uniform`` (B, M + 1, T): M draws for the Gumbel noise, one for the logistic; drawn when absent. All are
    squeezed into (1e-5, 1 - 1e-5).
    """
    logit_probs, means, log_scales = _split_mol(y_hat, log_scale_min)
    b, m, t = logit_probs.shape
    if uniform is None:
        uniform = _uniform((b, m + 1, t), y_hat, generator)
    if uniform.shape != (b, m + 1, t):
        raise ValueError(f"uniform must be (B, M + 1, T) = {(b, m + 1, t)}, but got {tuple(uniform.shape)}")
    u = uniform.clamp(UNIFORM_EPS, 1.0 - UNIFORM_EPS)
    gumbel = -torch.log(-torch.log(u[:, :m]))  # (B, M, T)
    pick = (logit_probs + gumbel).argmax(dim=1, keepdim=True)  # (B, 1, T)
    mean = means.gather(1, pick).squeeze(1)  # (B, T)
    log_scale = log_scales.gather(1, pick).squeeze(1)  # (B, T)
    v = u[:, m]  # (B, T)
    x = mean + torch.exp(log_scale) * (torch.log(v) - torch.log1p(-v))
    return x.clamp(-1.0, 1.0)


def _split_gaussian(y_hat: torch.Tensor, log_scale_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    if y_hat.dim() != 3 or y_hat.shape[1] != 2:
        raise ValueError(f"y_hat must be (B, 2, T) (mean, log-scale), but got shape {tuple(y_hat.shape)}")
    y_hat = _f32(y_hat)
    return y_hat[:, 0], y_hat[:, 1].clamp(min=log_scale_min)  # (B, T) each


def gaussian_log_prob(y_hat: torch.Tensor, y: torch.Tensor, log_scale_min: float = -7.0) -> torch.Tensor:
    """log N(y; mean, exp(log_scale)^2), a density. y_hat (B, 2, T) = (mean, log-scale), y (B, T) -> (B, T)."""
    mean, log_scale = _split_gaussian(y_hat, log_scale_min)
    if y.shape != mean.shape:
        raise ValueError(f"y must be (B, T) = {tuple(mean.shape)}, but got {tuple(y.shape)}")
    z = (_f32(y) - mean) * torch.exp(-log_scale)
    return -0.5 * z.square() - log_scale - 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(y_hat: torch.Tensor, y: torch.Tensor, log_scale_min: float = -7.0, reduce: bool = True) -> torch.Tensor:
    """Gaussian negative log-density (nats per sample); negative once the scale is small, which is expected."""
    nll = -gaussian_log_prob(y_hat, y, log_scale_min)
    return nll.mean() if reduce else nll


def sample_gaussian(
    y_hat: torch.Tensor,
    log_scale_min: float = -7.0,
    normal: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterised draw ``mean + scale * eps`` from y_hat (B, 2, T), clamped to [-1, 1]; eps (B, T) ~ N(0, 1)."""
    mean, log_scale = _split_gaussian(y_hat, log_scale_min)
    if normal is None:
        normal = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    if normal.shape != mean.shape:
        raise ValueError(f"normal must be (B, T) = {tuple(mean.shape)}, but got {tuple(normal.shape)}")
    return (mean + torch.exp(log_scale) * normal).clamp(-1.0, 1.0)


def categorical_nll(logits: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """Cross-entropy (nats per sample) of class ids target (B, T) under logits (B, C, T)."""
    if logits.dim() != 3 or target.shape != (logits.shape[0], logits.shape[2]):
        raise ValueError(f"expected logits (B, C, T) and target (B, T), but got {tuple(logits.shape)} and {tuple(target.shape)}")
    return F.cross_entropy(_f32(logits), target, reduction="mean" if reduce else "none")


def sample_categorical(
    logits: torch.Tensor,
    temperature: float = 1.0,
    uniform: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Class ids (B, T) drawn from softmax(logits / temperature), logits (B, C, T), by the Gumbel-max trick.

    ``uniform`` (B, C, T) in (0, 1) is the Gumbel noise source (drawn when absent).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, but got {temperature}")
    if uniform is None:
        uniform = _uniform(tuple(logits.shape), logits, generator)
    if uniform.shape != logits.shape:
        raise ValueError(f"uniform must be {tuple(logits.shape)}, but got {tuple(uniform.shape)}")
    gumbel = -torch.log(-torch.log(_f32(uniform).clamp(UNIFORM_EPS, 1.0 - UNIFORM_EPS)))
    return (_f32(logits) / temperature + gumbel).argmax(dim=1)


def bits_per_sample(nll_nats: torch.Tensor | float) -> torch.Tensor | float:
    """Nats per sample -> bits per sample (a discrete NLL over 2^16 levels lies in [0, 16])."""
    return nll_nats / math.log(2.0)
