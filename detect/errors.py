"""The ``detect`` package's error types: bad input or a user's mistake, with a message naming the
file, video, key or field at fault. ``python -m detect`` prints them (and ``extract``'s
:class:`~extract.errors.ExtractError`) in one line and exits 1; anything else is a bug and
keeps its traceback."""
from __future__ import annotations


class DetectError(Exception):
    """Base of every error ``detect`` raises for bad input."""


class ConfigError(DetectError, ValueError):
    """A config that does not fit the schema or the data; the message names the key."""


class DataError(DetectError, ValueError):
    """Inconsistent stores, annotations or predictions; the message names the video or store."""


class BackendError(DetectError, RuntimeError):
    """A kernel backend that cannot run here: not installed, or a GPU backend given CPU tensors."""


class CheckpointError(DetectError):
    """A checkpoint that is missing, unreadable or not one of ours."""
