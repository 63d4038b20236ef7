"""Checkpoints on the Hugging Face Hub: ``detect push`` uploads one with its config and a card;
``--checkpoint hf://ORG/REPO/FILE`` (see :func:`detect.engine.checkpoint.resolve_checkpoint`) downloads one."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import yaml


def model_card(state: dict[str, Any], repo_id: str, filename: str) -> str:
    cfg = state["config"]
    val = state.get("val") or state.get("best") or {}
    streams = "; ".join(f"{name}: {', '.join(paths)}" for name, paths in cfg["data"]["streams"].items())
    task = (cfg.get("task") or {}).get("name", "?")
    lines = [f"# {repo_id}", "", f"Model `{cfg['model']['name']}` trained with mamba-tad for the `{task}` task, "
             f"{cfg['model']['num_classes']} classes.", "",
             f"- data: {cfg['data']['dataset'] or cfg['data']['annotations']} (streams: {streams})",
             f"- epoch: {state.get('epoch')}; validation: {json.dumps(val)}", "",
             "Evaluate or run it:", "", "```",
             f"python -m detect eval --checkpoint hf://{repo_id}/{filename}",
             f"python -m detect infer --checkpoint hf://{repo_id}/{filename} --store STORE --out detections.json",
             "```", "", "The features must follow the training grid; `config.yaml` records it.", ""]
    return "\n".join(lines)


def push_checkpoint(path: Path, repo_id: str, *, private: bool = False, api: Any = None) -> str:
    """Upload ``path`` (a run's ``best.pt``/``last.pt``), ``config.yaml`` and ``README.md``."""
    from .engine import load_checkpoint

    state = load_checkpoint(path)  # refuses files without a model and its config
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_file(path_or_fileobj=str(path), path_in_repo=path.name, repo_id=repo_id)
    api.upload_file(path_or_fileobj=io.BytesIO(yaml.safe_dump(state["config"], sort_keys=False).encode()),
                    path_in_repo="config.yaml", repo_id=repo_id)
    api.upload_file(path_or_fileobj=model_card(state, repo_id, path.name).encode(), path_in_repo="README.md",
                    repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"
