"""Files replaced whole or not at all: written to a temporary name beside the target, then
renamed over it. A full disk, a read-only folder or Ctrl-C leaves the old file (or none) and no
temporary file; the error names the target, not the temporary name."""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Callable


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` fills a temporary file beside ``path``, which then becomes ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):  # never there, or its folder is not one: nothing to clean
        tmp.unlink()


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    return replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
