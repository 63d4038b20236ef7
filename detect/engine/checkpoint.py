"""Checkpoint files: atomic writes, loads that cannot run code, ``hf://`` references."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError


def save_checkpoint(path: Path, **state: Any) -> None:
    """Atomic save: a reader never sees a half-written checkpoint, a failed save leaves no
    temporary file, and a write error (full disk: torch reports it as a RuntimeError) is a
    :class:`CheckpointError` naming ``path``."""
    from extract.atomic import replace_atomically

    try:
        replace_atomically(path, lambda tmp: torch.save(state, tmp))
    except RuntimeError as exc:
        raise CheckpointError(f"cannot write {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint dict, loaded without running code (``weights_only``)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as exc:  # noqa: BLE001 - whatever torch.load makes of a foreign or damaged file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a mamba-tad checkpoint (no 'model' and 'config'); released "
                              f"upstream weights load through detect.models.convert")
    return state


def resolve_checkpoint(spec: str) -> Path:
    """A local path, or ``hf://ORG/REPO[@REVISION][/FILE]`` (``FILE`` default ``best.pt``)
    downloaded through huggingface_hub: cached, so it works offline once fetched; pin a revision
    (a commit, as ``detect push`` prints it) to get the same file every time."""
    if not spec.startswith("hf://"):
        path = Path(spec)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {spec}")
        return path
    parts = spec[len("hf://"):].split("/")
    if len(parts) < 2 or not all(parts):
        raise CheckpointError(f"{spec!r} is not hf://ORG/REPO[@REVISION][/FILE]")
    repo, _, revision = parts[1].partition("@")
    filename = "/".join(parts[2:]) or "best.pt"
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(f"{parts[0]}/{repo}", filename, revision=revision or None))
    except LocalEntryNotFoundError:
        raise CheckpointError(f"{spec} is not in the local Hugging Face cache and the Hub cannot be reached") from None
    except HfHubHTTPError as exc:
        raise CheckpointError(f"cannot download {spec}: {exc}") from None
