"""Feature extractors, by name; ``python -m extract NAME`` runs one. Each import below is an
extractor module's registry line."""
from __future__ import annotations

from ..registry import Registry
from .base import Extraction, Extractor

EXTRACTORS: Registry[type[Extractor]] = Registry("extractor")

from . import clip, i3d, internvideo2, skeleton  # noqa: E402,F401  (they register themselves)

__all__ = ["EXTRACTORS", "Extraction", "Extractor"]
