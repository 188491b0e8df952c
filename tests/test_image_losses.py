"""The image generative losses against hand-computed and brute-force values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoo.losses.image_generative import (
    clip_weights_,
    gaussian_kl,
    gradient_penalty,
    imq_kernel,
    mmd_imq,
    mmd_unbiased,
    reconstruction_nll,
    squared_l2,
    wae_squared_l2_cost,
)


def test_kl_is_summed_over_latent_dims_and_averaged_over_batch_not_divided_by_pixels():
    # q = N(1, 1) in every one of 8 latent dims: KL per dim = 0.5 * (1 + 1 - 1 - 0) = 0.5, per image 8 * 0.5 = 4.
    mu, logvar = torch.ones(5, 8), torch.zeros(5, 8)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(4.0)
    # Not the per-pixel value 4 / 784 (the known bug), and independent of the batch size.
    assert gaussian_kl(torch.ones(50, 8), torch.zeros(50, 8)).item() == pytest.approx(4.0)
    # General case against the closed form for one sample.
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[math.log(2.0), math.log(0.5)]])
    expected = sum(0.5 * (m**2 + v - 1 - math.log(v)) for m, v in ((0.5, 2.0), (-1.0, 0.5)))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_reconstruction_nll_sums_pixels_and_averages_batch():
    logits = torch.zeros(3, 1, 28, 28)  # p = 0.5 everywhere: -log 0.5 per pixel
    x = torch.rand(3, 1, 28, 28).round()
    assert reconstruction_nll(logits, x, "bernoulli").item() == pytest.approx(784 * math.log(2.0), rel=1e-5)
    assert reconstruction_nll(logits, torch.full_like(x, 0.5), "gaussian").item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="laplace"):
        reconstruction_nll(logits, x, "laplace")  # type: ignore[arg-type]


def test_wae_cost_is_the_reference_scaled_squared_distance():
    # Two images of 4 pixels: squared distances 4 * 1² = 4 and 4 * 2² = 16, mean 10; the reference's l2sq cost is 0.05 x that.
    x = torch.zeros(2, 1, 2, 2)
    y = torch.stack([torch.ones(1, 2, 2), torch.full((1, 2, 2), 2.0)])
    assert squared_l2(x, y).item() == pytest.approx(10.0)
    assert wae_squared_l2_cost(x, y).item() == pytest.approx(0.5)
    assert wae_squared_l2_cost(x, y, scale=1.0).item() == pytest.approx(10.0)


def test_imq_kernel_matches_brute_force():
    x, y = torch.randn(4, 3), torch.randn(5, 3)
    k = imq_kernel(x, y, scales=(0.5, 2.0), base=3.0)
    for i in range(4):
        for j in range(5):
            d2 = float(((x[i] - y[j]) ** 2).sum())
            assert k[i, j].item() == pytest.approx(1.5 / (1.5 + d2) + 6.0 / (6.0 + d2), rel=1e-5)


def test_mmd_unbiased_matches_brute_force_and_excludes_diagonal():
    x, y = torch.randn(4, 2), torch.randn(3, 2)
    kernel = lambda a, b: torch.exp(-torch.cdist(a, b).pow(2))  # noqa: E731
    k = lambda a, b: math.exp(-float(((a - b) ** 2).sum()))  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(4) for j in range(4) if i != j) / 12
    yy = sum(k(y[i], y[j]) for i in range(3) for j in range(3) if i != j) / 6
    xy = sum(k(x[i], y[j]) for i in range(4) for j in range(3)) / 12
    assert mmd_unbiased(x, y, kernel).item() == pytest.approx(xx + yy - 2 * xy, rel=1e-5)
    with pytest.raises(ValueError, match="1"):
        mmd_unbiased(x[:1], y, kernel)


def test_mmd_is_near_zero_for_same_distribution_and_grows_with_mean_shift():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(400, 8, generator=g)
    q = torch.randn(400, 8, generator=g)
    same = mmd_imq(p, q).item()
    shifts = [mmd_imq(p, q + s).item() for s in (0.25, 0.5, 1.0, 2.0)]
    assert abs(same) < 0.01
    assert shifts[0] > same + 0.01
    assert all(a < b for a, b in zip(shifts, shifts[1:]))


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(dim=1)  # (B,)


def test_gradient_penalty_on_linear_critic_equals_hand_computed_value():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (||w||_2 - 1)^2 whatever the interpolate;
    # the norm must run over all (C, H, W) = 4 entries: ||w|| = sqrt(1 + 1 + 4 + 4) = sqrt(10).
    w = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])  # (1, 2, 2)
    critic = _Linear(w)
    real, fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((math.sqrt(10.0) - 1.0) ** 2, rel=1e-6)
    gp.backward()  # differentiable w.r.t. the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    expected = 2 * (math.sqrt(10.0) - 1) * w / math.sqrt(10.0)
    torch.testing.assert_close(critic.w.grad, expected)


def test_gradient_penalty_draws_one_coefficient_per_sample():
    seen = {}

    def critic(x: torch.Tensor) -> torch.Tensor:
        seen["x_hat"] = x.detach()
        return x.flatten(1).sum(dim=1)

    real, fake = torch.ones(6, 1, 4, 4), torch.zeros(6, 1, 4, 4)
    torch.manual_seed(0)
    gradient_penalty(critic, real, fake)
    x_hat = seen["x_hat"]  # = alpha per sample, broadcast over every pixel
    per_sample = x_hat.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))
    assert per_sample[:, 0].unique().numel() == 6
    # With a given alpha the interpolate is exactly alpha * real + (1 - alpha) * fake.
    alpha = torch.linspace(0, 1, 6)
    gradient_penalty(critic, real, fake, alpha=alpha)
    torch.testing.assert_close(seen["x_hat"][:, 0, 0, 0], alpha)


def test_weight_clipping_leaves_every_parameter_inside_the_box():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100.0).add_(1.0)
    clip_weights_(net, 0.01)
    for p in net.parameters():
        assert p.abs().max().item() <= 0.01 + 1e-9
    with pytest.raises(ValueError, match="-1"):
        clip_weights_(net, -1.0)
