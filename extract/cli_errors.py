"""How both CLIs end: a user's mistake is one line on stderr and a non-zero exit, never a
traceback. ``ExtractError``/``DetectError`` and an output the machine refuses (a read-only
folder, a full disk, a missing directory) exit 1; Ctrl-C exits 130 (the shell's convention for
SIGINT) after one line; a closed output pipe (``... | head``) ends quietly. Deprecation notices
of dependencies are not shown: they are not the user's business and would precede our error.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import importlib
import os
import signal
import sys
import warnings
from typing import Callable, Iterator, NoReturn

from .errors import ExtractError

INTERRUPTED = "error: interrupted (Ctrl-C); completed work is kept"

# errors of the machine, not of our code: a path that cannot be written or read as asked
_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR,
                errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE, errno.EIO}


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage mistake as one line (``error: PROG: MESSAGE``) instead of the usage
    block; exit code 2 as argparse's. Subcommand parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def one_line(exc: BaseException) -> str:
    """The message of ``exc``; for an error re-raised from a DataLoader worker (whose message
    carries the worker's traceback), the original message only."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split()) if "\n" in text else text


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` of an OS error (both paths of a rename)."""
    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc)
    hint = " (free some space, or write elsewhere)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}: {reason}{hint}" if where else f"{reason}{hint}"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, as our SIGINT handler raises it. Not a plain ``KeyboardInterrupt`` because CPython
    remembers any plain one that crossed code run through ``PyRun_String`` (pybind11's ``py::exec``
    does) and then ends the process by SIGINT at exit, even after we caught it; it matches that
    type exactly, so a subclass is left alone."""


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted


def _exit_interrupted(signum: int, frame: object) -> None:
    with contextlib.suppress(Exception):  # a stream mid-write (re-entered) or closed: exit regardless
        sys.stdout.flush()
        print(INTERRUPTED, file=sys.stderr, flush=True)
    os._exit(130)


def _set_ctrl_c(handler: Callable) -> bool:
    """Put ``handler`` on SIGINT where Python's default handler is there; False where SIGINT is
    not ours to set (ignored, as under ``nohup``; another handler; not the main thread)."""
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return False
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return False
    return True


@contextlib.contextmanager
def _ctrl_c_as_interrupted() -> Iterator[None]:
    """Raise ``Interrupted`` on Ctrl-C while a command runs in a caller's process, then restore
    Python's handler (under :func:`run_process` its handler stays)."""
    ours = _set_ctrl_c(_raise_interrupted)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def run_process(cli_module: str) -> NoReturn:
    """A CLI as a process (``python -m``, the console scripts): ``cli_module``'s ``main()``, with
    Ctrl-C one line and exit code 130 from its first import (torch takes seconds) until the
    interpreter's exit handlers have run. Once the command is over, Ctrl-C ends the process at
    once (an interrupt raised in the shutdown would print a traceback). After the exit handlers
    Python runs no signal handlers, for the most of a second of unloading torch: Ctrl-C is
    ignored there, and the process exits with the command's code, its work done."""
    ours = _set_ctrl_c(_raise_interrupted)
    if ours:
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)  # registered first: runs last
    try:
        code = importlib.import_module(cli_module).main()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        code = 130
    finally:
        if ours:
            signal.signal(signal.SIGINT, _exit_interrupted)
    sys.exit(code)


def run_command(command: Callable[[], int], errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a CLI command: ``ExtractError`` and ``errors`` become ``error: ...`` and exit code 1."""
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!extract\b|detect\b)")
    try:
        with _ctrl_c_as_interrupted():
            return command()
    except (ExtractError, *errors) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT:
            raise
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 1
