"""Replace video ids by keyed hashes; the mapping goes to a separate, private file.

Clip ids of clinical data (VFSS) embed patient names and exam dates. A plain hash of such an id
can be reversed by hashing candidate names and dates, so ids are hashed with HMAC-SHA256 under
a random key kept in the mapping file: the same mapping file gives the same ids on every run.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from .schema import AnnotationError, AnnotationSet


def _load_key(mapping_path: Path) -> tuple[bytes, dict[str, str]]:
    if not mapping_path.exists():
        return secrets.token_bytes(32), {}
    try:
        data = json.loads(mapping_path.read_text(encoding="utf-8"))
        return bytes.fromhex(data["key"]), dict(data["ids"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnnotationError(f"{mapping_path} is not an id mapping written by --anonymize ({exc})") from None


def anonymized_id(key: bytes, video_id: str) -> str:
    return "anon_" + hmac.new(key, video_id.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


def anonymize_ids(video_ids: list[str], mapping_path: Path) -> dict[str, str]:
    """``{original: anonymised}`` under the key of ``mapping_path`` (created with mode 0600 if
    missing), to which the new ids are added: annotations and stores anonymised with one
    mapping file share their ids."""
    key, ids = _load_key(mapping_path)
    renamed = {}
    for vid in video_ids:
        new = anonymized_id(key, vid)
        if ids.get(new, vid) != vid:
            raise AnnotationError(f"anonymised id collision between {vid!r} and {ids[new]!r}")
        ids[new] = vid
        renamed[vid] = new
    fd = os.open(mapping_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"note": "private: maps anonymised ids back to the original ones", "key": key.hex(),
                   "ids": dict(sorted(ids.items()))}, fh, indent=1)
    return renamed


def anonymize(result: AnnotationSet, mapping_path: Path) -> AnnotationSet:
    """Rename every video; add the new ids to ``mapping_path``."""
    renamed = anonymize_ids(list(result.database), mapping_path)
    return AnnotationSet({renamed[vid]: video for vid, video in result.database.items()}, result.classes)
