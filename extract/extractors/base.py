"""What an extractor provides to :func:`extract.run` and the CLI: its typed spec (the options),
its model build (one or more feature streams over decoded snippets) and the store's description
of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar


@dataclass
class Extraction:
    """A built extractor: runner streams, the new store's :class:`StoreInfo` (its grid and shards
    come from the spec, in :func:`extract.run`) and the frame size the decoder must produce.
    ``store`` replaces the given store as the runner's, and ``after`` (runner summary -> summary)
    runs once the runner is done: for extractors whose output needs every frame of a video first
    (skeleton heatmaps)."""

    streams: list[Any]          # extract.runner.Stream
    info: Any                   # extract.store.StoreInfo
    size: int
    store: Path | None = None
    after: Callable[[dict], dict] | None = None


class Extractor:
    name: ClassVar[str]                  # set by the registry
    spec: ClassVar[type]                 # its settings: a dataclass of extract.spec.ExtractSpec
    help: ClassVar[str]
    examples: ClassVar[str]

    @staticmethod
    def build(spec: Any, store: Path, device: Any) -> Extraction:
        """Load the model(s) for ``spec``, writing to ``store``; raise ``ValueError`` or
        ``FileNotFoundError`` for a user's mistake."""
        raise NotImplementedError
