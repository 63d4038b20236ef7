"""Feature extractors, by name; ``python -m extract NAME`` or ``extract.run(spec, ...)`` runs
one. Each import below is an extractor module's registry line."""
from __future__ import annotations

from ..registry import Registry
from .base import Extraction, Extractor

EXTRACTORS: Registry[type[Extractor]] = Registry("extractor")

from . import clip, i3d, internvideo2, skeleton  # noqa: E402,F401  (they register themselves)


def extractor_for(spec) -> type[Extractor]:
    """The extractor whose spec ``spec`` is."""
    for _, extractor in EXTRACTORS.items():
        if type(spec) is extractor.spec:
            return extractor
    raise TypeError(f"{type(spec).__name__} is no registered extractor's spec "
                    f"({', '.join(e.spec.__name__ for _, e in EXTRACTORS.items())})")


__all__ = ["EXTRACTORS", "Extraction", "Extractor", "extractor_for"]
