"""zoo: a PyTorch Lightning experiment zoo for speech and generative models."""

__version__ = "0.1.0"
