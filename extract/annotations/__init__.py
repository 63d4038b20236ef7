"""Canonical temporal annotations (ActivityNet-like JSON), converters from native formats, checks."""
from .schema import Annotation, AnnotationError, AnnotationSet, VideoAnnotations, load_annotations

__all__ = ["Annotation", "AnnotationError", "AnnotationSet", "VideoAnnotations", "load_annotations"]
