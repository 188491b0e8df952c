"""Callbacks for tests/test_resume.py, loaded by class path in the runs that test launches."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class RecordLosses(Callback):
    """Appends (global step, training loss) after every step and saves the final parameters."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        with open(self.out / "losses.jsonl", "a") as f:
            f.write(json.dumps([trainer.global_step, float(loss)]) + "\n")

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save({k: v.detach().clone() for k, v in pl_module.state_dict().items()}, self.out / "final.pt")


class KillAtStep(Callback):
    """SIGKILLs its own process when the batch after global step ``step`` starts (that step's checkpoint is on disk)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
