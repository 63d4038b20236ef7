"""Checkpoints on the Hugging Face Hub: ``detect push`` uploads one with its config and a card;
``--checkpoint hf://ORG/REPO/FILE`` (see :func:`detect.engine.checkpoint.resolve_checkpoint`) downloads one."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import yaml


def model_card(state: dict[str, Any], repo_id: str, filename: str) -> str:
    """The repo's README: task, classes, the feature recipe, the validation metric with its
    protocol, how to run it, and the training config."""
    cfg = state["config"]
    val = state.get("val") or state.get("best") or {}
    task = (cfg.get("task") or {}).get("name", "?")
    classes = state.get("classes") or []
    metric = {k: v for k, v in val.items() if k in ("average_mAP", "mAP", "top1", "top5", "protocol", "mode", "epoch")}
    recipe = state.get("recipe")
    lines = [f"# {repo_id}", "", f"`{cfg['model']['name']}` trained with mamba-tad for the `{task}` task on "
             f"{cfg['data'].get('dataset') or Path(cfg['data']['annotations']).name}.", "",
             f"**Classes ({len(classes)}):** {', '.join(classes)}", "",
             "## Validation metric", "",
             *(["```json", json.dumps(metric, indent=1), "```"] if "protocol" in metric else
               ["No validation result was recorded in this checkpoint."]), "",
             "## Run it", "", "```bash",
             f"python -m detect video --checkpoint hf://{repo_id}/{filename} --videos VIDEOS/ --out detections/",
             f"python -m detect infer --checkpoint hf://{repo_id}/{filename} --split all --store STORE --out out.json",
             "```", "", "Pin a revision (`hf://ORG/REPO@COMMIT/FILE`) to get the same file every time.", "",
             "## Feature recipe", "",
             "What made the training features, per input stream: `detect video` makes the same ones "
             "(weights checked by sha256).", "", "```yaml",
             yaml.safe_dump(recipe, sort_keys=False).rstrip() if recipe else "# not recorded (an older checkpoint)",
             "```", "", "## Training config", "", "```yaml", yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def push_checkpoint(path: Path, repo_id: str, *, private: bool = False, api: Any = None) -> str:
    """Upload ``path`` (a run's ``best.pt``/``last.pt``), ``config.yaml``, ``recipe.yaml`` and
    ``README.md``; returns the ``hf://`` address pinned to the upload's commit."""
    from .engine import load_checkpoint

    state = load_checkpoint(path)  # refuses files without a model and its config
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    files = {path.name: str(path), "config.yaml": yaml.safe_dump(state["config"], sort_keys=False).encode(),
             "recipe.yaml": yaml.safe_dump(state.get("recipe") or {}, sort_keys=False).encode(),
             "README.md": model_card(state, repo_id, path.name).encode()}
    commit = None
    for name, content in files.items():
        info = api.upload_file(path_or_fileobj=content if isinstance(content, str) else io.BytesIO(content),
                               path_in_repo=name, repo_id=repo_id)
        commit = getattr(info, "oid", None) or commit
    return f"hf://{repo_id}@{commit}/{path.name}" if commit else f"hf://{repo_id}/{path.name}"
