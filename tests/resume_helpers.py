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


class SaveRankState(Callback):
    """At the end of training every rank saves its parameters (trainable and frozen), its global step and the
    names of the parameters DDP reduces: tests/test_ddp.py compares the ranks."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def on_train_end(self, trainer, pl_module) -> None:
        params = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        frozen = {k: v.detach().clone() for k, v in pl_module.named_buffers()}
        teacher = getattr(pl_module, "_teacher", None)
        if teacher is not None:  # the distillation teacher lives outside the module tree
            frozen.update({f"teacher.{k}": v.detach().clone() for k, v in teacher.state_dict().items()})
        wrapped = trainer.strategy.model  # the DistributedDataParallel wrapper
        reduced = sorted(k for k, p in wrapped.named_parameters() if p.requires_grad)
        torch.save({"params": params, "frozen": frozen, "global_step": trainer.global_step, "reduced": reduced,
                    "wrapper": type(wrapped).__name__, "teacher_training": None if teacher is None else teacher.training},
                   self.out / f"rank{trainer.global_rank}.pt")


class RecordTrainMetrics(Callback):
    """Appends, after every training batch, its (epoch, batch index) and the step-logged ``train/*`` metrics (every
    loss a model logs, the GANs' included); saves the final weights and buffers at the end."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        # the batch itself (which items, which random crops or windows), as a checksum of its tensors
        tensors = [v for v in vars(batch).values() if isinstance(v, torch.Tensor)] if hasattr(batch, "__dict__") else []
        logged["batch_checksum"] = float(sum(float(t.double().sum()) for t in tensors))
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps([f"{trainer.current_epoch}:{batch_idx}", logged]) + "\n")

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save({k: v.detach().clone() for k, v in pl_module.state_dict().items()}, self.out / "final.pt")


class CheckpointAndKill(Callback):
    """After ``batches`` training batches (counted over epochs), saves a checkpoint as ModelCheckpoint would at that
    point and SIGKILLs its own process: a run stopped without warning mid-epoch, whatever its optimiser steps."""

    def __init__(self, batches: int, path: str) -> None:
        self.batches, self.path, self.seen = batches, path, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen == self.batches:
            trainer.save_checkpoint(self.path)
            os.kill(os.getpid(), signal.SIGKILL)
