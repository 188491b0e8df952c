"""``torch.compile`` for an experiment's networks, as an opt-in callback (off by default; see bench/README.md)."""

from __future__ import annotations

from typing import Literal

import torch
from lightning.pytorch.callbacks import Callback


class CompileNetworks(Callback):
    """Compiles the LightningModule's network submodules in place with ``nn.Module.compile`` before fitting.

    In place, so parameter names and checkpoints are those of an uncompiled run (a compiled run resumes an eager
    one and vice versa). ``modules``: the attribute names to compile (default: every direct child module that
    has parameters, e.g. ``net``, or ``generator`` and ``critic``); a frozen distillation teacher is not a child
    and stays eager. Variable-length speech batches recompile per new shape unless ``dynamic`` is true.

        python -m zoo fit --config configs/wavenet_mol.yaml --trainer.callbacks+=callbacks.CompileNetworks
    """

    def __init__(self, modules: list[str] | None = None, mode: Literal["default", "reduce-overhead", "max-autotune"] = "default",
                 dynamic: bool | None = None, fullgraph: bool = False) -> None:
        if mode not in ("default", "reduce-overhead", "max-autotune"):
            raise ValueError(f"mode must be default, reduce-overhead or max-autotune, but got {mode!r}")
        self.modules, self.mode, self.dynamic, self.fullgraph = modules, mode, dynamic, fullgraph
        self.compiled: list[str] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.compiled:
            return
        names = self.modules if self.modules is not None else [
            name for name, child in pl_module.named_children() if any(True for _ in child.parameters())]
        for name in names:
            child = getattr(pl_module, name, None)
            if not isinstance(child, torch.nn.Module):
                raise ValueError(f"CompileNetworks: {type(pl_module).__name__} has no network {name!r} "
                                 f"(its children: {[n for n, _ in pl_module.named_children()]})")
            child.compile(mode=self.mode, dynamic=self.dynamic, fullgraph=self.fullgraph)
            self.compiled.append(name)
