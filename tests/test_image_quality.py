"""The MNIST quality figures: Fréchet distance on classifier features, accuracy, Laplacian sharpness."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.metrics.image_quality import (
    MNISTClassifier,
    classifier_accuracy,
    frechet_distance,
    laplacian_sharpness,
    load_or_train_classifier,
)


def _digits():
    from datamodules.mnist import embedded_digits

    data = embedded_digits()
    images = torch.from_numpy(data["images"]).float().div(255).unsqueeze(1)  # (1797, 1, 28, 28)
    return images, torch.from_numpy(data["labels"])


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_noise():
    torch.manual_seed(0)
    classifier = MNISTClassifier(num_features=16).eval()
    images, _ = _digits()
    real = images[:300]
    same = frechet_distance(real, real, classifier)
    noisy = [frechet_distance(real, (real + s * torch.rand_like(real)).clamp(0, 1), classifier) for s in (0.2, 0.8)]
    # An untrained classifier's features are small, so compare against the noisy distances rather than a constant.
    assert 0 < noisy[0] < noisy[1]
    assert abs(same) < 1e-3 * noisy[0]


def test_laplacian_sharpness_hand_values_and_blur():
    assert laplacian_sharpness(torch.full((2, 1, 8, 8), 0.3)) == pytest.approx(0.0)
    # A checkerboard of 0/1: the Laplacian is -4 on ones and +4 on zeros, half each: variance 16 (unbiased: 16 * n/(n-1)).
    board = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    n = 6 * 6
    assert laplacian_sharpness(board.float()[None, None]) == pytest.approx(16.0 * n / (n - 1))
    images, _ = _digits()
    x = images[:50]
    blurred = F.avg_pool2d(x, 3, stride=1, padding=1)
    assert laplacian_sharpness(blurred) < 0.5 * laplacian_sharpness(x)


def test_classifier_is_trained_once_and_cached(tmp_path):
    images, labels = _digits()
    cache = tmp_path / "clf.pt"
    clf = load_or_train_classifier(cache, images[:1400], labels[:1400], epochs=3)
    assert cache.is_file()
    assert classifier_accuracy(clf, images[1400:], labels[1400:]) > 0.8
    again = load_or_train_classifier(cache, images[:0], labels[:0])  # no data needed: read from the cache
    for a, b in zip(clf.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_importance_weighted_nll_matches_quadrature_on_a_one_dimensional_latent():
    import math

    from zoo.metrics.likelihood import importance_weighted_nll

    # A Bernoulli decoder of 4 pixels with logits a*z + b and a N(0, 1) prior: log p(x) by quadrature over z.
    a, b = torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([0.1, 0.3, -0.2, -1.0])

    def decode_logits(z):  # (N, 1) -> (N, 1, 2, 2)
        return (z * a + b).reshape(-1, 1, 2, 2)

    x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]).reshape(2, 1, 2, 2)
    grid = torch.linspace(-8, 8, 20001, dtype=torch.float64).unsqueeze(1)
    logits = decode_logits(grid).double()
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits.unsqueeze(1).expand(-1, 2, 1, 2, 2), x.double().expand(grid.shape[0], 2, 1, 2, 2), reduction="none").flatten(2).sum(-1)
    log_prior = -0.5 * (grid**2 + math.log(2 * math.pi))  # (G, 1)
    dz = float(grid[1] - grid[0])
    exact = -(torch.logsumexp(log_px_z + log_prior, dim=0) + math.log(dz))  # (2,)
    gen = torch.Generator().manual_seed(0)
    # a proposal that is not the posterior: the bound still converges to -log p(x) from above
    mu, logvar = torch.full((2, 1), 0.3), torch.full((2, 1), math.log(1.5))
    estimate = importance_weighted_nll(x, mu, logvar, decode_logits, k=20000, chunk=4000, generator=gen)
    torch.testing.assert_close(estimate.double(), exact, atol=0.03, rtol=0)  # Monte Carlo error of k = 20000
    loose = importance_weighted_nll(x, mu, logvar, decode_logits, k=1, generator=gen)
    assert loose.shape == (2,)
    many_single = torch.stack([importance_weighted_nll(x, mu, logvar, decode_logits, k=1, generator=gen) for _ in range(400)])
    assert (many_single.mean(0).double() > exact).all()  # k = 1 is the ELBO: a looser bound on average
    with pytest.raises(ValueError, match="k and chunk"):
        importance_weighted_nll(x, mu, logvar, decode_logits, k=0)


def test_confident_fraction_counts_probabilities_at_or_above_the_threshold():
    from zoo.metrics.image_quality import confident_fraction

    class Fixed(torch.nn.Module):
        def forward(self, x):  # image i's first logit is its mean pixel x 10: softmax max ~1 for bright images
            first = x.flatten(1).mean(1, keepdim=True) * 10
            return torch.cat([first, torch.zeros(x.shape[0], 9)], dim=1)

    images = torch.cat([torch.ones(3, 1, 28, 28), torch.zeros(1, 1, 28, 28)])  # p = e^10/(e^10+9) ~ 0.9996; 0.1
    assert confident_fraction(Fixed(), images) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="threshold"):
        confident_fraction(Fixed(), images, threshold=1.0)
