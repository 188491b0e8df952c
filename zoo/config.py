"""The frozen per-block config dataclasses: what they share, and how a stored config becomes one again.

A block's hyper-parameters are declared once, in a frozen dataclass beside the block (``zoo.nn.tacotron.DecoderConfig``,
``zoo.audio.AudioConfig``, ...); the net takes it, its LightningModule takes the net's config keyword-only, and the CLI
maps YAML onto it (``--model.net.decoder.attention_dim 64``). Checkpoints written by the CLI store these configs as
(nested) dicts, so ``config_from_value`` turns either form back into the typed object.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

import torch

C = TypeVar("C")


@typing.dataclass_transform(frozen_default=True)
def block_config(cls: type[C]) -> type[C]:
    """``@dataclass(frozen=True)`` for a block's hyper-parameters, allow-listed for ``torch.load(weights_only=True)``:
    a module built in Python (not by the CLI) stores its config objects in its checkpoint's hyper-parameters, and
    the safe unpickler must be able to read them back."""
    if "__post_init__" in cls.__dict__:
        cls.__post_init__ = _as_config_error(cls.__dict__["__post_init__"])  # type: ignore[attr-defined]
    cls = dataclasses.dataclass(frozen=True)(cls)
    torch.serialization.add_safe_globals([cls])
    return cls


def _as_config_error(post_init: Any) -> Any:
    """A config's validation raising ``zoo.errors.ConfigError`` (a ValueError the CLI prints as one line, not a
    traceback) for every ValueError it raises."""
    import functools

    from zoo.errors import ConfigError

    @functools.wraps(post_init)
    def validate(self: Any) -> None:
        try:
            post_init(self)
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(str(err)) from err

    return validate


def freeze_sequences(config: Any) -> None:
    """In a frozen dataclass's ``__post_init__``: lists (from YAML or JSON) become tuples, so a config read back from
    a file equals the one written and stays hashable."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, list):
            object.__setattr__(config, f.name, tuple(value))


def check_positive(owner: str, **values: int | float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{owner}.{name} must be positive, but got {value}")


def check_non_negative(owner: str, **values: int | float) -> None:
    """Weights and counts where 0 means off."""
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{owner}.{name} must be >= 0, but got {value}")


def check_at_least(minimum: int, **values: int) -> None:
    """Counts and sizes a user passes as plain arguments (no config owner to name): each at least ``minimum``."""
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, but got {value}")


def check_fraction(owner: str, **values: float) -> None:
    """Dropout-like probabilities: in [0, 1)."""
    for name, value in values.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{owner}.{name} must be in [0, 1), but got {value}")


def check_interpolation_steps(config: Any) -> None:
    """The image models' ``interpolation_steps`` (images of a logged latent walk, both ends included): at least 2."""
    if config.interpolation_steps < 2:
        raise ValueError(f"{type(config).__name__}.interpolation_steps must be >= 2, but got {config.interpolation_steps}")


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass named by a field's annotation (``DecoderConfig`` or ``DecoderConfig | None``), else None."""
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a) and isinstance(a, type)]
        return found[0] if len(found) == 1 else None
    return None


def config_from_value(cls: type[C], value: Any, where: str = "config", base: Any = None) -> C:
    """``value`` as a ``cls``: the instance itself, or built from a (nested) dict such as a checkpoint's
    hyper-parameters hold. A dict may name only some fields: the others come from ``base`` (an instance of ``cls``),
    else for a nested block from its field's default in the enclosing config (voice conversion's decoder defaults are
    ``VC_DECODER``, not ``DecoderConfig()``), else from ``cls``'s own defaults. An unknown key is a ValueError naming
    it and the fields ``cls`` has."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a {cls.__name__} or a dict of its fields, but got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} has no field(s) {unknown}; its fields are {list(fields)}")
    kwargs = {}
    for name, item in value.items():
        inner = _dataclass_in(hints[name])
        if inner and item is not None:
            inner_base = getattr(base, name) if base is not None else fields[name].default
            inner_base = inner_base if isinstance(inner_base, inner) else None
            item = config_from_value(inner, item, f"{where}.{name}", inner_base)
        kwargs[name] = item
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def config_arguments(cls: type, hparams: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of ``cls`` found in ``hparams`` (a checkpoint's), every dataclass-typed one rebuilt
    by ``config_from_value``; bookkeeping entries the CLI adds (``_class_path``, ...) are left out."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    kwargs = {}
    for name, value in hparams.items():
        if name not in params:
            continue
        inner = _dataclass_in(hints.get(name))
        kwargs[name] = config_from_value(inner, value, name) if inner and value is not None else value
    return kwargs


__all__ = ["block_config", "check_fraction", "check_interpolation_steps", "check_non_negative", "check_positive", "config_arguments", "config_from_value", "freeze_sequences"]
