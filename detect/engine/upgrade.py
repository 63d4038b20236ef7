"""Checkpoints written before the model registry (``model.backbone.name``, ``data.stores``) into
today's layout: ``python -m detect upgrade OLD.pt NEW.pt``.

What changed: ``optim.epochs`` counts the warm-up epochs; the model is named (``model.name``) and its backbone config holds only the options
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

from ..config import OLD_BACKBONES, ConfigError
from ..models import model_entry
from .checkpoint import load_checkpoint, save_checkpoint

KEPT = {"actionformer": {"drop_path", "n_head", "window", "use_abs_pe"}, "actionformer-conv": set(),
        "actionmamba-dbm": {"drop_path"}, "actionmamba-vim": {"drop_path"}}
COMMON = {"input_dim", "embd_dim", "embd_kernel", "arch", "scale_factor", "max_seq_len"}


def upgrade_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """An old-layout run config as a dict in today's layout (a new dict)."""
    model, data = dict(cfg["model"]), dict(cfg["data"])
    backbone = dict(model.pop("backbone", None) or {})
    old = backbone.pop("name", None)
    if "name" in model or old not in OLD_BACKBONES or "stores" not in data:
        raise ConfigError("not an old-layout config: it names its model already, or its backbone is unknown")
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
    config = upgrade_config(state["config"])
    name = config["model"]["name"]
    for part in ("model", "ema"):
        if part in state:
            state[part], normalizer = upgrade_state_dict(state[part], name)
            if part == "model" and normalizer is not None and "optimizer" in state:
                state["criterion"] = {"loss_normalizer": normalizer}
    model_entry(name)  # the name is registered
    state["config"] = config
    save_checkpoint(Path(dst), **state)
    return config
