"""Clips for classification: one label per clip, from its clip-level annotation.

A clip is labelled by its annotations with ``"segment": null`` (or, when it has none, by its
segments); a clip whose labels disagree is an error naming it, never a silent pick.
"""
from __future__ import annotations

import torch

from extract.annotations import AnnotationSet

from ..errors import DataError
from .streams import StreamDataset, VideoItem, pad_batch, padded_length


def clip_label(annotations: AnnotationSet, vid: str, classes: list[str]) -> int:
    """The class index of clip ``vid``."""
    anns = annotations.database[vid].annotations
    whole = [a.label for a in anns if a.segment is None] or [a.label for a in anns]
    if len(set(whole)) != 1:
        raise DataError(f"clip {vid!r} needs exactly one label, has {sorted(set(whole)) or 'none'}")
    if whole[0] not in classes:
        raise DataError(f"clip {vid!r}: label {whole[0]!r} is not in the class list")
    return classes.index(whole[0])


class ClipDataset(StreamDataset):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.labels = [clip_label(self.annotations, vid, self.classes) for vid in self.video_ids]

    def __getitem__(self, index: int) -> VideoItem:
        item = self.read(index)
        item.targets = {"label": torch.tensor(self.labels[index])}
        return item


def collate_clips(items: list[VideoItem], pad_to: int | None, multiple: int) -> dict:
    """Padded streams and mask (``inputs``, padded to the longest clip), ``labels (B,)``."""
    return {"inputs": pad_batch(items, padded_length(items, None, multiple)),
            "labels": torch.stack([it.targets["label"] for it in items]), "items": items}
