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
