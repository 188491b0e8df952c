"""User-facing errors: the CLI prints these as one clear message instead of a traceback."""


class ZooError(Exception):
    """Base class of errors caused by input the user can fix (data, config, checkpoint)."""


class DatasetNotFoundError(ZooError, FileNotFoundError):
    """A dataset is not on disk and could not (or may not) be downloaded."""


class DatasetFormatError(ZooError, ValueError):
    """A dataset is on disk but does not have the expected layout or content."""


class CheckpointError(ZooError, ValueError):
    """A checkpoint is missing, unreadable or does not match the model it is loaded into."""
