"""Checkpoint checks before Lightning loads one: the right experiment, the same shapes, a clear error otherwise."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from zoo.errors import CheckpointError

# Lightning resolves these names itself (e.g. the newest ``last.ckpt``); they are checked by Lightning alone.
_SYMBOLIC = {"last", "best", "hpc", "registry"}


def class_path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def load_weights_only(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with the safe unpickler; a missing or unreadable file is a CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {str(err).splitlines()[0]}") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


def check_checkpoint_matches(path: str | Path | None, model: torch.nn.Module) -> None:
    """Raise CheckpointError when the checkpoint at ``path`` was written by another experiment or config.

    Compares the class recorded by the CLI (``_class_path``) and then every parameter and buffer shape, and names
    both sides, instead of letting ``load_state_dict`` fail deep inside Lightning.
    """
    if path is None or str(path) in _SYMBOLIC:
        return
    ckpt = load_weights_only(path)
    saved_class = ckpt.get("hyper_parameters", {}).get("_class_path")
    if saved_class is not None and saved_class != class_path(model):
        raise CheckpointError(f"checkpoint {path} was written by {saved_class}, but this run's model is {class_path(model)}")
    report_state_dict_mismatch(path, ckpt["state_dict"], model.state_dict())


def report_state_dict_mismatch(path: str | Path, saved: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    """Raise CheckpointError listing missing, unexpected and differently shaped tensors (the first few of each)."""
    shapes = [f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if not (shapes or missing or unexpected):
        return
    parts = []
    for title, items in (("different shapes", shapes), ("missing from the checkpoint", missing),
                         ("not in the model", unexpected)):
        if items:
            parts.append(f"{len(items)} {title} ({'; '.join(items[:3])}{'; ...' if len(items) > 3 else ''})")
    raise CheckpointError(f"checkpoint {path} does not match this model's configuration: " + ", ".join(parts))


def load_experiment(path: str | Path, accepted: dict[str, str], what: str) -> Any:
    """A trained LightningModule from a zoo checkpoint, weights only, in eval mode, for inference.

    ``accepted`` maps the class paths this stage takes to a phrase naming them (``{"zoo.models.wavenet.WaveNetVocoder":
    "a WaveNet vocoder"}``); a checkpoint of another kind, unreadable, or whose tensors do not fit the model its own
    hyper-parameters describe, is a CheckpointError naming the file and ``what`` it was given as.
    """
    import importlib
    import inspect

    from zoo.audio import AudioConfig

    ckpt = load_weights_only(path)
    hparams = dict(ckpt.get("hyper_parameters", {}))
    saved = hparams.get("_class_path")
    if saved not in accepted:
        wanted = " or ".join(f"{phrase} ({cls})" for cls, phrase in accepted.items())
        found = f"was written by {saved}" if saved else "does not record which experiment wrote it"
        raise CheckpointError(f"{what}: checkpoint {path} {found}, but {what} must be {wanted}")
    module, name = saved.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in hparams.items() if k in params}
    if isinstance(kwargs.get("audio"), dict):
        kwargs["audio"] = AudioConfig(**kwargs["audio"])
    model = cls(**kwargs)
    try:
        report_state_dict_mismatch(path, ckpt["state_dict"], model.state_dict())
    except CheckpointError as err:
        raise CheckpointError(f"{what}: {err}") from err
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def datamodule_hparams(path: str | Path) -> dict[str, Any]:
    """The DataModule's saved constructor arguments (``characters``, ``audio``, ...), or {} if none were saved."""
    return dict(load_weights_only(path).get("datamodule_hyper_parameters", {}) or {})
