"""CLIP image features through open_clip: any architecture and pretrained tag, ``hf-hub:`` names
and local checkpoint files, preprocessing from the model's own config, done on GPU tensors.

OpenAI and LAION-400M weights were trained with QuickGELU; open_clip only *warns* when a GELU
architecture is paired with such a tag, and the features are then silently wrong. Here the
tag's ``quick_gelu`` flag decides: a mismatched architecture gets ``force_quick_gelu`` and the
choice is recorded. Features are unnormalised unless ``normalize=True`` (also recorded).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F


@dataclass
class ClipModel:
    model: torch.nn.Module
    mean: torch.Tensor           # (3,) on the model's device
    std: torch.Tensor
    image_size: int
    identity: dict               # what to record in the store: arch, tag, quick_gelu, normalize, preprocessing
    normalize: bool = False

    @torch.inference_mode()
    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(n, H, W, 3)`` (already ``image_size`` square) -> ``(n, D)`` embeddings."""
        x = x.permute(0, 3, 1, 2).float().div_(255)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False,
                              antialias=True).clamp_(0, 1)
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        return self.model.encode_image(x, normalize=self.normalize)

    def snippets(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(n, T, H, W, 3)`` -> ``(n, D)``: the mean of the T frame embeddings."""
        n, t = x.shape[:2]
        return self.frames(x.reshape(n * t, *x.shape[2:])).reshape(n, t, -1).mean(1)


def _uses_quick_gelu(model: torch.nn.Module) -> bool:
    from open_clip.transformer import QuickGELU

    return any(isinstance(m, QuickGELU) for m in model.visual.modules())


_RANDOM_INITS = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                 "xavier_normal_")


@contextmanager
def _no_random_init():
    """``torch.nn.init``'s random fills as no-ops. open_clip draws every weight (text tower
    included) before the checkpoint, loaded strictly and required, overwrites them all: 2 of the
    5 s that building ViT-B/32 takes on a 2-core CPU, paid by every extraction process."""
    saved = {name: getattr(torch.nn.init, name) for name in _RANDOM_INITS}
    try:
        for name in _RANDOM_INITS:
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)


# optional library -> the open_clip modules that import it (each falls back to None without it)
_OPTIONAL = {"transformers": ("open_clip.hf_model", "open_clip.coca_model"), "timm": ("open_clip.timm_model",)}
_left_out: set[str] = set()   # libraries open_clip was imported without, in this process


def _needed_optional(arch: str) -> set[str]:
    """Which of transformers (Hugging Face text towers, CoCa) and timm (timm image towers) the
    open_clip config ``arch`` uses; all of them where that is unknown (``hf-hub:``, no such config)."""
    found = None if arch.startswith("hf-hub:") else importlib.util.find_spec("open_clip")
    config = None if found is None else Path(found.origin).parent / "model_configs" / f"{arch}.json"
    if config is None or not config.is_file():
        return set(_OPTIONAL)
    cfg = json.loads(config.read_text())
    needed = set()
    if cfg.get("text_cfg", {}).get("hf_model_name") or "multimodal_cfg" in cfg:
        needed.add("transformers")
    if cfg.get("vision_cfg", {}).get("timm_model_name"):
        needed.add("timm")
    return needed


def _import_open_clip(arch: str):
    """open_clip, without importing the optional libraries ``arch`` does not use.

    open_clip imports transformers and timm whenever they are installed; transformers' import
    chain (scikit-learn among it) took 5.6 s of a 14 s process on an H100 machine that has it,
    where extracting per-frame CLIP features of its one-minute video took 1.6 s. A library
    left out here but needed by a later model in the same process is imported then (the modules
    that use it are run again).
    """
    needed = _needed_optional(arch)
    blocked = [] if "open_clip" in sys.modules else [m for m in _OPTIONAL if m not in needed and m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # `import name` raises ImportError: open_clip's fallback
    try:
        import open_clip
    finally:
        for name in blocked:
            del sys.modules[name]
    _left_out.update(blocked)
    for name in needed & _left_out:
        _left_out.discard(name)
        for module in _OPTIONAL[name]:
            importlib.reload(sys.modules[module])
    return open_clip


def load_clip(arch: str, pretrained: str, device: torch.device, normalize: bool = False,
              quick_gelu: bool | None = None, cache_dir: str | None = None) -> ClipModel:
    """open_clip model ``arch`` with weights ``pretrained`` (a tag, ``hf-hub:...`` or a file).

    ``quick_gelu=None`` follows the pretrained tag's flag (a local file has none: say it).
    """
    open_clip = _import_open_clip(arch)
    from open_clip import pretrained as registry

    cfg = {} if Path(pretrained).is_file() or arch.startswith("hf-hub:") else (
        registry.get_pretrained_cfg(arch, pretrained) or {})
    if not cfg and not Path(pretrained).is_file() and not arch.startswith("hf-hub:"):
        known = [t for a, t in open_clip.list_pretrained() if a == arch]
        raise ValueError(f"open_clip has no pretrained tag {pretrained!r} for {arch!r} (known: {known}); "
                         "or give a checkpoint file")
    wants_quick = cfg.get("quick_gelu", False) if quick_gelu is None else quick_gelu
    try:
        with _no_random_init():
            model = open_clip.create_model(
                arch, pretrained=pretrained, device=device, cache_dir=cache_dir, weights_only=True,
                force_quick_gelu=wants_quick and not arch.endswith("quickgelu"), require_pretrained=True)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot load CLIP {arch} / {pretrained}: {exc}. Offline? Run "
                           f"`python -m extract download clip:{arch}:{pretrained}` on a connected machine.") from None
    model.eval()
    if wants_quick != _uses_quick_gelu(model):
        raise RuntimeError(f"{arch} / {pretrained}: activation mismatch (weights expect "
                           f"{'QuickGELU' if wants_quick else 'GELU'})")
    pcfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = pcfg.get("size", getattr(model.visual, "image_size", 224))
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    mean = torch.tensor(pcfg.get("mean", open_clip.OPENAI_DATASET_MEAN), device=device)
    std = torch.tensor(pcfg.get("std", open_clip.OPENAI_DATASET_STD), device=device)
    identity = {"arch": arch, "pretrained": str(pretrained), "quick_gelu": wants_quick, "normalize": normalize,
                "image_size": size, "mean": mean.tolist(), "std": std.tolist(),
                "interpolation": pcfg.get("interpolation", "bicubic"), "resize_mode": pcfg.get("resize_mode", "shortest")}
    return ClipModel(model, mean, std, size, identity, normalize)
