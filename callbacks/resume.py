"""Exact resume: random-number-generator states saved in every checkpoint and restored with it."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def _numpy_state() -> tuple:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return (kind, keys.tolist(), int(pos), int(has_gauss), float(cached))


class RNGStateCallback(Callback):
    """Saves the Python, NumPy, torch CPU and CUDA generator states of this process; restores them on resume.

    Lightning restores the model, optimisers, schedulers, loop counters and (with the zoo's resumable loaders)
    the position inside the epoch, but not these generators: without them dropout masks, noise samples and
    random crops after a resume differ from an uninterrupted run. Each rank restores its own state when the
    checkpoint holds one per rank, else rank zero's.
    """

    def __init__(self) -> None:
        self._rank = 0
        self._pending: dict[str, Any] | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._rank = trainer.global_rank

    def state_dict(self) -> dict[str, Any]:
        state = {
            "python": random.getstate(),
            # plain Python values, so the checkpoint stays loadable by torch.load's weights-only unpickler
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        return {"rank": self._rank, "state": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_train_start, i.e. after the sanity-check validation and the first prefetch, which draw
        # random numbers in a resumed run but happened before the save in the uninterrupted one.
        self._pending = state_dict["state"]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        random.setstate(state["python"])
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
