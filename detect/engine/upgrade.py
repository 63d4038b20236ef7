"""Configs and checkpoints of earlier layouts into today's: ``python -m detect upgrade OLD NEW``
(``.pt`` checkpoints, ``.yaml`` configs).

Before the task section (commit c3ce18b and earlier): the task's settings lived on the model
(``center_sample_radius``, ``loss_weight``, ``init_loss_norm``, ``label_smoothing``,
``postprocess``), on ``data`` (``task``, crops, ``class_agnostic``) and on ``eval`` (protocol,
fusion, dense and clips options); they move to ``task:``, settings that other tasks own are
dropped (a config could not set them), and unset protocol values are left to the card. That
layout voted boundaries with IoU x (score + 1.5) weights: an upgraded config keeps them
(``voting_weights: iou-offset``); new configs default to ActionFormer's IoU x score.

Before the model registry (``model.backbone.name``, ``data.stores``): ``optim.epochs`` counts the warm-up epochs; the model is named (``model.name``) and its backbone config holds only the options
its block type uses (mixer options moved up from ``backbone.mamba``); stores became named streams;
the transformer MLP's second conv is ``mlp.3`` (ActionFormer's key); the Mamba blocks' LayerNorm
has ``(C,)`` parameters (ActionMamba's ``nn.LayerNorm``); the loss normaliser moved from the
model into the segments task's loss state.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

import yaml

from ..config import MOVED_TO_TASK, OLD_BACKBONES, ConfigError, moved_keys, read_card, read_config_file
from ..models import model_entry
from ..tasks import get_task, task_for_card
from .checkpoint import load_checkpoint, save_checkpoint

KEPT = {"actionformer": {"drop_path", "n_head", "window", "use_abs_pe"}, "actionformer-conv": set(),
        "actionmamba-dbm": {"drop_path"}, "actionmamba-vim": {"drop_path"}}
COMMON = {"input_dim", "embd_dim", "embd_kernel", "arch", "scale_factor", "max_seq_len"}


def upgrade_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """An old-layout run config as a dict in today's layout (a new dict)."""
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    if "name" not in model and "stores" in (cfg.get("data") or {}):
        cfg = _name_the_model(cfg)
    if not moved_keys(cfg):
        raise ConfigError("not an old-layout config: it names its model and has no task settings outside task:")
    return _task_section(cfg)


def _task_section(cfg: dict[str, Any]) -> dict[str, Any]:
    """Move the task's settings from ``model``, ``data`` and ``eval`` into ``task:``."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    data = out["data"]
    card = read_card(data.get("dataset"))
    name = data.pop("task", None) or (task_for_card(card.task) if card else model_entry(out["model"]["name"]).task)
    get_task(name)  # a registered task
    task = {}
    for task_name, sections in MOVED_TO_TASK.items():
        for section, keys in sections.items():
            for key in keys:
                if key not in out.get(section, {}):
                    continue
                value = out[section].pop(key)
                # other tasks' keys held their defaults (that layout refused others); None was "the card's"
                if task_name == name and value is not None:
                    task[key] = value
    post = task.get("postprocess")
    if isinstance(post, dict) and (post.get("voting_thresh") or 0) > 0:
        task["postprocess"] = {**post, "voting_weights": "iou-offset"}  # how that layout voted
    out["task"] = {"name": name, **task}
    return out


def _name_the_model(cfg: dict[str, Any]) -> dict[str, Any]:
    """The layout before the model registry -> the layout before the task section."""
    model, data = dict(cfg["model"]), dict(cfg["data"])
    backbone = dict(model.pop("backbone", None) or {})
    old = backbone.pop("name", None)
    if old not in OLD_BACKBONES:
        raise ConfigError(f"not an old-layout config: unknown backbone {old!r}")
    name = OLD_BACKBONES[old]
    mamba = backbone.pop("mamba", None) or {}
    backbone = {k: v for k, v in backbone.items() if k in COMMON | KEPT[name]}
    backbone.update({k: v for k, v in mamba.items() if k != "divide_out" or name == "actionmamba-vim"})
    data["streams"] = {"features": list(data.pop("stores"))}
    optim = dict(cfg.get("optim") or {})
    if "epochs" in optim:  # the old layout ran epochs + warmup_epochs; today epochs counts them all
        optim["epochs"] = optim["epochs"] + optim.get("warmup_epochs", 5)
    return {**cfg, "model": {"name": name, **model, "backbone": backbone}, "data": data, "optim": optim}


def upgrade_state_dict(state: dict[str, torch.Tensor], name: str) -> tuple[dict[str, torch.Tensor], Any]:
    """Renamed/reshaped weights and the loss normaliser that the model used to hold (or None)."""
    state = dict(state)
    normalizer = state.pop("loss_normalizer", None)
    out = {}
    for key, value in state.items():
        key = re.sub(r"\.mlp\.2\.", ".mlp.3.", key)
        if name.startswith("actionmamba") and re.fullmatch(r"backbone\.(stem|branch)\.\d+\.norm\.(weight|bias)", key):
            value = value.reshape(-1)
        out[key] = value
    return out, normalizer


def upgrade_checkpoint(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Rewrite checkpoint ``src`` (``best.pt`` or ``last.pt``) as ``dst``; returns the new config."""
    state = load_checkpoint(src)
    before_registry = "name" not in state["config"]["model"]
    config = upgrade_config(state["config"])
    name = config["model"]["name"]
    if before_registry:
        for part in ("model", "ema"):
            if part in state:
                state[part], normalizer = upgrade_state_dict(state[part], name)
                if part == "model" and normalizer is not None and "optimizer" in state:
                    state["criterion"] = {"loss_normalizer": normalizer}
    state["config"] = config
    _write(dst, lambda path: save_checkpoint(path, **state))
    return config


def upgrade_file(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """A checkpoint (``.pt``) or a config (``.yaml``/``.yml``) upgraded into ``dst``; the new config."""
    if Path(src).suffix.lower() not in (".yaml", ".yml"):
        return upgrade_checkpoint(src, dst)
    config = upgrade_config(read_config_file(src))
    text = (f"# upgraded from {Path(src).name} by `python -m detect upgrade`\n"
            + yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
    _write(dst, lambda path: path.write_text(text, encoding="utf-8"))
    return config


def _write(dst: str | Path, write) -> None:
    """``write(Path(dst))``; a missing folder or a failed write (read-only, full disk) is one line."""
    if not Path(dst).parent.is_dir():
        raise ConfigError(f"cannot write {dst}: no folder {Path(dst).parent}")
    try:
        write(Path(dst))
    except OSError as exc:
        raise ConfigError(f"cannot write {dst}: {exc.strerror or exc}") from None
