"""Released checkpoints of the upstream code into our state dicts.

Our ``actionformer``/``actionmamba-*`` state dicts use the upstream key names and shapes (see
tests/fixtures/), so conversion is only unwrapping: ActionFormer's ``.pth.tar`` holds
``state_dict`` and ``state_dict_ema`` (the evaluated weights) of a ``DataParallel`` model, whose
keys carry a ``module.`` prefix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def unwrap_release(state: dict[str, Any], ema: bool = True) -> dict[str, torch.Tensor]:
    """The model weights of an upstream training checkpoint (EMA ones when present and ``ema``)."""
    for key in (("state_dict_ema", "state_dict") if ema else ("state_dict",)) + ("model",):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_release(path: str | Path, ema: bool = True) -> dict[str, torch.Tensor]:
    """``unwrap_release`` of a file, loaded with ``weights_only=True``."""
    return unwrap_release(torch.load(path, map_location="cpu", weights_only=True), ema)
