"""Feature extraction and dataset preparation for temporal action localization.

``extract.run(spec, videos, store)`` runs a registered extractor from Python (its spec type,
e.g. ``extract.extractors.i3d.I3DSpec``, names it); ``python -m extract NAME`` is the same from
the shell. Light on import: video decoders, open_clip and torch are imported where they are used.
"""
from .extraction import run

__all__ = ["run"]
