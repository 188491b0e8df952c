"""Checkpoint checks before Lightning loads one: the right experiment, the same shapes, a clear error otherwise."""

from __future__ import annotations

import pickle
from collections.abc import Callable
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


def load_net_weights(net: torch.nn.Module, path: str | Path, what: str = "init_from", prefix: str = "net.",
                     partial: bool = False) -> list[str]:
    """Load the ``prefix``-ed weights of a Lightning checkpoint into ``net`` (weights only, strict), or raise
    ``CheckpointError`` naming ``what``, the file and every missing, unexpected or mis-shaped tensor.

    ``partial``: load only the tensors the checkpoint has at the same name and shape, keep the rest as initialised,
    and return their names (a network whose input or output layers differ from the checkpoint's, e.g. a converter
    of other acoustic features starting from a mel autoencoder); a checkpoint sharing no tensor is still an error."""
    try:
        saved = load_weights_only(path)["state_dict"]
        state = {k[len(prefix):]: v for k, v in saved.items() if k.startswith(prefix)}
        own = net.state_dict()
        if partial:
            state = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
            if not state:
                raise CheckpointError(f"checkpoint {path} shares no tensor of the same name and shape with the model")
            fresh = sorted(set(own) - set(state))
            net.load_state_dict(state, strict=False)
            return fresh
        report_state_dict_mismatch(path, state, own)
    except CheckpointError as err:
        raise CheckpointError(f"{what}: {err}") from err
    net.load_state_dict(state)
    return []


def load_frozen_net(module_cls: type, path: str | Path, what: str,
                    build: Callable[[dict[str, Any]], torch.nn.Module]) -> torch.nn.Module:
    """A network frozen for use inside another model (a distillation teacher): ``build`` makes it from the
    checkpoint's ``module_cls`` arguments (``checkpoint_arguments``), its weights are loaded strictly, and it is
    returned in eval mode without gradients."""
    net = build(checkpoint_arguments(module_cls, path, what))
    load_net_weights(net, path, what)
    return net.eval().requires_grad_(False)


def load_experiment(path: str | Path, accepted: dict[str, str], what: str) -> Any:
    """A trained LightningModule from a zoo checkpoint, weights only, in eval mode, for inference.

    ``accepted`` maps the class paths this stage takes to a phrase naming them (``{"zoo.models.wavenet.WaveNetVocoder":
    "a WaveNet vocoder"}``); a checkpoint of another kind, unreadable, or whose tensors do not fit the model its own
    hyper-parameters describe, is a CheckpointError naming the file and ``what`` it was given as.
    """
    import importlib

    ckpt = load_weights_only(path)
    hparams = dict(ckpt.get("hyper_parameters", {}))
    saved = hparams.get("_class_path")
    if saved not in accepted:
        wanted = " or ".join(f"{phrase} ({cls})" for cls, phrase in accepted.items())
        found = f"was written by {saved}" if saved else "does not record which experiment wrote it"
        raise CheckpointError(f"{what}: checkpoint {path} {found}, but {what} must be {wanted}")
    module, name = saved.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    model = cls(**constructor_arguments(cls, hparams, path))
    try:
        report_state_dict_mismatch(path, ckpt["state_dict"], model.state_dict())
    except CheckpointError as err:
        raise CheckpointError(f"{what}: {err}") from err
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def constructor_arguments(cls: type, hparams: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, Any]:
    """The keyword arguments that rebuild ``cls`` from a checkpoint's hyper-parameters: its per-block configs typed
    again (``zoo.config.config_arguments``), after ``upgrade_flat_hyperparameters`` for a checkpoint written before
    the configs existed. A value no config takes is a CheckpointError naming the file."""
    from zoo.config import config_arguments

    try:
        return config_arguments(cls, upgrade_flat_hyperparameters(cls, hparams))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: its hyper-parameters do not fit {cls.__name__}: {err}") from err


def checkpoint_arguments(cls: type, path: str | Path, what: str) -> dict[str, Any]:
    """``constructor_arguments`` of the checkpoint at ``path``; an unreadable one is a CheckpointError naming ``what``."""
    try:
        return constructor_arguments(cls, load_weights_only(path).get("hyper_parameters", {}), path)
    except CheckpointError as err:
        raise CheckpointError(f"{what}: {err}") from err


# the flat names of checkpoints written before the per-block configs that are not ``<block>_<field>`` or a field name
_RENAMED = {"use_gst": "gst.enabled", "output": "output.kind"}
# hyper-parameters models no longer take (prediction writing moved to ``callbacks.PredictionWriter``): dropped
_RETIRED = frozenset({"predict_dir", "griffin_lim_iters"})
# data-linked sizes the CLI once passed to every module; dropped where the module does not take them (voice
# conversion's checkpoints carry an unused ``vocab_size``)
_LINKED = frozenset({"vocab_size"})


def upgrade_flat_hyperparameters(cls: type, hparams: dict[str, Any], apply_defaults: bool = True) -> dict[str, Any]:
    """The one converter for checkpoints written before the per-block configs (``zoo.config``), whose modules took
    every hyper-parameter flat (``attention_dim=128, postnet_channels=512, lr=1e-3``).

    Each flat name is placed in the config argument (``net``, ``training``) of ``cls`` that has it: as a field of the
    training config, of a block of the net config (``attention_dim`` -> ``net.decoder.attention_dim``), or as
    ``<block>_<field>`` (``encoder_hidden`` -> ``net.encoder.hidden``), starting from the constructor's default
    configs (a bare name two blocks have was the decoder's); a name with two places is a ValueError. Hyper-parameters that already use the configs are
    returned as they are. ``apply_defaults=False`` returns the nested dicts of just the given names (what a YAML
    config written for the flat signature becomes)."""
    import dataclasses
    import inspect

    params = inspect.signature(cls.__init__).parameters
    configs = {name: p.default for name, p in params.items() if dataclasses.is_dataclass(p.default) and name != "audio"}
    if not configs or any(name in hparams for name in configs):  # no per-block configs, or already in their layout
        return dict(hparams)
    places: dict[str, list[str]] = {}
    for arg, default in configs.items():
        for f in dataclasses.fields(default):
            value = getattr(default, f.name)
            if dataclasses.is_dataclass(value):  # a block of a net config
                for g in dataclasses.fields(value):
                    for flat in (g.name, f"{f.name}_{g.name}"):
                        places.setdefault(flat, []).append(f"{arg}.{f.name}.{g.name}")
            else:
                places.setdefault(f.name, []).append(f"{arg}.{f.name}")
    for flat, dotted in _RENAMED.items():
        places[flat] = [f"net.{dotted}"]
    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for flat, value in hparams.items():
        if flat in params or flat.startswith("_"):  # the CLI's bookkeeping (_class_path, ...) stays
            out[flat] = value
            continue
        if flat in _RETIRED or flat in _LINKED:  # _LINKED ones the module takes were kept just above
            continue
        if flat not in places:
            raise ValueError(f"the flat hyper-parameter {flat!r} is not a field of any of {cls.__name__}'s configs "
                             f"({', '.join(configs)}): convert the checkpoint's hyper-parameters by hand (drop or rename "
                             f"it) and save it again")
        # "<block>_<field>" is that block's; a bare name two blocks have was the decoder's (Tacotron's
        # encoder_prenet_sizes and prenet_sizes)
        found = [p for p in places[flat] if p.split(".", 1)[1].replace(".", "_") == flat] or places[flat]
        if len(found) > 1:
            found = [p for p in found if ".decoder." in p] or found
        if len(found) != 1:
            raise ValueError(f"the flat hyper-parameter {flat!r} fits {found}")
        arg, *path = found[0].split(".")
        node = nested.setdefault(arg, {})
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    if not apply_defaults:
        return {**out, **nested}
    for arg, changes in nested.items():
        out[arg] = _replace(configs[arg], changes)
    return out


def _replace(config: Any, changes: dict[str, Any]) -> Any:
    import dataclasses

    updates = {k: _replace(getattr(config, k), v) if isinstance(v, dict) else v for k, v in changes.items()}
    return dataclasses.replace(config, **updates)


def datamodule_hparams(path: str | Path) -> dict[str, Any]:
    """The DataModule's saved constructor arguments (``characters``, ``audio``, ...), or {} if none were saved."""
    return dict(load_weights_only(path).get("datamodule_hyper_parameters", {}) or {})
