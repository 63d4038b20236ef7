"""The ``extract`` package's error type: bad input or a user's mistake, with a message naming the
file, video, key or field at fault. The CLIs print it in one line and exit 1; anything else is a
bug and keeps its traceback."""
from __future__ import annotations


class ExtractError(Exception):
    """Base of every error ``extract`` raises for bad input."""
