"""What an extractor provides to the runner and the CLI: its arguments, its model build (one or
more feature streams over decoded snippets) and the store's description of it."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar


@dataclass
class Extraction:
    """A built extractor: runner streams, the new store's :class:`StoreInfo`, and the grid and
    frame size the decoder must produce. ``store`` replaces ``--out`` as the runner's store, and
    ``after`` (runner summary -> summary) runs once the runner is done: for extractors whose
    output needs every frame of a video first (skeleton heatmaps)."""

    streams: list[Any]          # extract.runner.Stream
    info: Any                   # extract.store.StoreInfo
    size: int
    window: int
    stride: int
    store: Path | None = None
    after: Callable[[dict], dict] | None = None


class Extractor:
    name: ClassVar[str]                  # set by the registry
    help: ClassVar[str]
    examples: ClassVar[str]

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser, inputs: argparse._MutuallyExclusiveGroup) -> None:
        """Options of this extractor (the shared ones are already on ``p``; ``inputs`` is the
        group of input sources, for extractors that read another kind of input)."""
        raise NotImplementedError

    @staticmethod
    def build(args: argparse.Namespace, device: Any) -> Extraction:
        """Load the model(s); raise ``ValueError``/``FileNotFoundError`` for a user's mistake."""
        raise NotImplementedError
