"""How both CLIs end: a user's mistake is one line on stderr and exit code 1, never a traceback;
a closed output pipe (``... | head``) ends quietly."""
from __future__ import annotations

import os
import sys
from typing import Callable

from .errors import ExtractError


def one_line(exc: BaseException) -> str:
    """The message of ``exc``; for an error re-raised from a DataLoader worker (whose message
    carries the worker's traceback), the original message only."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def run_command(command: Callable[[], int], errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a CLI command: ``ExtractError`` and ``errors`` become ``error: ...`` and exit code 1."""
    try:
        return command()
    except (ExtractError, *errors) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
