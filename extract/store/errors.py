"""Errors raised by the feature store. Every message names the store, file or video at fault."""
from __future__ import annotations

from ..errors import ExtractError


class StoreError(ExtractError):
    """A store is missing, malformed, of another version, or cannot be written as asked."""


class UnknownVideoError(StoreError, KeyError):
    """A video id that the store does not hold."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class ShardLockedError(StoreError):
    """Another live process is writing the same shard."""


class BadArrayError(StoreError, ValueError):
    """An array cannot be stored: empty, non-finite, wrong dtype, or not matching its grid."""


class CorruptVideoError(StoreError):
    """A video's data does not match its stored checksum."""


class CorruptStoreError(StoreError):
    """A store's own files (``store.json``, a segment's header) are damaged or were edited."""
