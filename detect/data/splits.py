"""Which videos train, validate and test: the config's splits (the dataset card's where unset)."""
from __future__ import annotations

import hashlib

from extract.annotations import AnnotationSet

from ..errors import ConfigError, DataError


def holdout_fraction(video_id: str) -> float:
    """A stable number in [0, 1) per video: blake2b of the id."""
    return int.from_bytes(hashlib.blake2b(video_id.encode(), digest_size=8).digest(), "big") / 2 ** 64


def resolve_splits(data, annotations: AnnotationSet) -> dict[str, list[str]]:
    """Video ids of ``train``, ``val`` and ``test`` for a :class:`DataConfig` (whose unset splits
    :func:`detect.config.load_config` took from the dataset card). When validation draws on the
    training split (``val_holdout``), a fixed fraction of its videos (by id hash) is held out of
    training."""
    split = {k: getattr(data, f"{k}_split") for k in ("train", "val", "test")}
    holdout = data.val_holdout
    if split["train"] is None:
        raise ConfigError("no training split: set data.train_split or data.dataset")
    train = sorted(annotations.subset(split["train"]))
    out = {"train": train, "val": [], "test": sorted(annotations.subset(split["test"])) if split["test"] else []}
    if split["val"] == split["train"] and holdout:
        out["val"] = [v for v in train if holdout_fraction(v) < holdout]
        out["train"] = [v for v in train if holdout_fraction(v) >= holdout]
    elif split["val"]:
        out["val"] = sorted(annotations.subset(split["val"]))
    if not out["train"]:
        raise DataError(f"no videos in training split {split['train']!r} of {data.annotations}")
    return out
