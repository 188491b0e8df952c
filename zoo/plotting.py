"""The zoo's figures, in one public module: headless matplotlib and the alignment plot every speech model draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend (never opens a window on a training node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 80) -> str:
    """Lay out, write and close a figure (the one way every report writes its plots); returns the file's name."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path).name


def save_alignment_figure(alignment: torch.Tensor | np.ndarray, path: str | Path, title: str = "",
                          xlabel: str = "decoder step", ylabel: str = "encoder step") -> None:
    """An attention alignment (T_dec, T_enc) as an image (encoder steps up, decoder steps along), saved to ``path``."""
    a = alignment.detach().float().cpu().numpy() if isinstance(alignment, torch.Tensor) else np.asarray(alignment)
    if a.ndim != 2:
        raise ValueError(f"an alignment is (T_dec, T_enc), but got shape {a.shape}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.imshow(a.T, aspect="auto", origin="lower", interpolation="none")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    save_figure(fig, path)


__all__ = ["pyplot", "save_alignment_figure", "save_figure"]
