"""User-facing errors: the CLI prints these as one clear message instead of a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


class ZooError(Exception):
    """Base class of errors caused by input the user can fix (data, config, checkpoint)."""


class ConfigError(ZooError, ValueError):
    """A hyper-parameter has a value its config does not accept (raised by every ``zoo.config.block_config``)."""


class DatasetNotFoundError(ZooError, FileNotFoundError):
    """A dataset is not on disk and could not (or may not) be downloaded."""


class DatasetFormatError(ZooError, ValueError):
    """A dataset is on disk but does not have the expected layout or content."""


class CheckpointError(ZooError, ValueError):
    """A checkpoint is missing, unreadable or does not match the model it is loaded into."""


class StageMismatchError(ZooError, ValueError):
    """Two stages of a speech chain (model, post-net, vocoder) were trained on different audio front ends."""


def user_error_in(err: BaseException) -> ZooError | None:
    """The ZooError that ``err`` is or was raised from (jsonargparse re-raises a config's error as its own)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ZooError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


@contextlib.contextmanager
def exit_on_user_error(*errors: type[BaseException]) -> Iterator[None]:
    """For a command's body: a ZooError (or one of ``errors``) becomes one ``error: ...`` line and exit status 2
    instead of a traceback (``ZOO_TRACEBACK=1`` keeps the traceback)."""
    try:
        yield
    except (ZooError, *errors) as err:
        if os.environ.get("ZOO_TRACEBACK"):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
