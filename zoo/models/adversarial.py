"""What the zoo's adversarially trained LightningModules share (manual optimisation, one optimiser per network)."""

from __future__ import annotations

import lightning as L
import torch


def backward_and_step(module: L.LightningModule, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One update of one network: call inside ``module.toggled_optimizer(optimizer)`` so that only its parameters
    receive gradients (the others have ``requires_grad`` off), which keeps DDP free of unused-parameter backwards."""
    optimizer.zero_grad()
    module.manual_backward(loss)
    optimizer.step()
