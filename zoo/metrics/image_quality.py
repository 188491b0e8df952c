"""Sample-quality figures for the MNIST generative models, the same for every model.

- Fréchet distance (Heusel et al. 2017) computed by torchmetrics' ``FrechetInceptionDistance`` on the
  penultimate features of a small MNIST classifier instead of Inception-v3 (which has never seen digits);
- the classifier's accuracy on reconstructions (does the reconstruction keep the digit's identity?);
- sharpness: the variance of the Laplacian of each image, averaged over images (blur lowers it).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


class MNISTClassifier(nn.Module):
    """A small LeNet-style CNN: (B, 1, 28, 28) in [0, 1] -> 10 logits; ``features`` is its penultimate layer."""

    def __init__(self, num_features: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        if num_features < 1 or num_classes < 2:
            raise ValueError(f"need num_features >= 1 and num_classes >= 2, but got {num_features} and {num_classes}")
        self.num_features = num_features
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, num_features), nn.ReLU(),
        )
        self.head = nn.Linear(num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes)


class ClassifierFeatures(nn.Module):
    """The feature extractor handed to torchmetrics: float images in [0, 1] -> penultimate features (B, F)."""

    def __init__(self, classifier: MNISTClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = classifier.num_features  # read by torchmetrics instead of a dummy forward

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x.float()).double()


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 2, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0) -> MNISTClassifier:
    """Train the metric's classifier once (Adam, cross-entropy). images (N, 1, 28, 28) in [0, 1], labels (N,)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, but got {epochs}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MNISTClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def load_or_train_classifier(cache: str | Path, images: torch.Tensor, labels: torch.Tensor, epochs: int = 2) -> MNISTClassifier:
    """The cached classifier at ``cache`` (a state dict), trained and saved there on first use."""
    cache = Path(cache)
    model = MNISTClassifier()
    if cache.is_file():
        model.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        return model.eval()
    model = train_classifier(images, labels, epochs=epochs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), cache)
    return model


@torch.no_grad()
def classifier_accuracy(classifier: MNISTClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of ``images`` (N, 1, 28, 28) the classifier labels as ``labels`` (N,)."""
    classifier.eval()
    correct = sum(int((classifier(images[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum())
                  for i in range(0, len(images), batch_size))
    return correct / len(images)


def frechet_distance(real: torch.Tensor, fake: torch.Tensor, classifier: MNISTClassifier, batch_size: int = 500) -> float:
    """Fréchet distance between Gaussians fitted to the classifier's penultimate features of two image sets.

    real (N, 1, 28, 28), fake (M, 1, 28, 28), both in [0, 1]; N and M should exceed the feature width (128)
    for full-rank covariances. Computed by torchmetrics' FrechetInceptionDistance with a custom extractor.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=ClassifierFeatures(classifier), normalize=True,
                                      input_img_size=tuple(real.shape[1:]))
    for i in range(0, len(real), batch_size):
        metric.update(real[i : i + batch_size], real=True)
    for i in range(0, len(fake), batch_size):
        metric.update(fake[i : i + batch_size], real=False)
    return float(metric.compute())


def laplacian_sharpness(images: torch.Tensor) -> float:
    """Mean over images of the variance of the 3x3 Laplacian response (valid region). (N, C, H, W) -> float.

    Blurry reconstructions (the VAE's known weakness) have little high-frequency energy, hence a low value.
    """
    kernel = LAPLACIAN.to(images)[None, None].expand(images.shape[1], 1, 3, 3)
    response = F.conv2d(images, kernel, groups=images.shape[1])  # (N, C, H-2, W-2)
    return float(response.flatten(1).var(dim=1).mean())


@torch.no_grad()
def confident_fraction(classifier: MNISTClassifier, images: torch.Tensor, threshold: float = 0.9,
                       batch_size: int = 500) -> float:
    """Share of ``images`` (N, 1, 28, 28) the classifier labels with probability >= ``threshold``: how many samples
    are recognisable as some digit (a figure for generators with no test-set likelihood)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), but got {threshold}")
    classifier.eval()
    confident = sum(int((F.softmax(classifier(images[i : i + batch_size]), dim=1).amax(1) >= threshold).sum())
                    for i in range(0, len(images), batch_size))
    return confident / len(images)
