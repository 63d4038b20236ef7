"""Loading published InternVideo2 checkpoints into :class:`InternVideo2`, strictly.

Accepted files: a ``.pth``/``.pt``/``.bin`` (``torch.load(weights_only=True, mmap=True)``), a
``.safetensors`` file, or a folder / ``*.safetensors.index.json`` of sharded safetensors (the 6B
stage-2 release). The only renames, all reported:

* wrappers ``model`` / ``module`` / ``state_dict`` are unwrapped;
* one key prefix made of ``module.``, ``model.``, ``backbone.``, ``encoder.`` and
  ``vision_encoder.`` (stage-2) is stripped, found where ``blocks.0.attn.qkv.weight`` is;
* keys outside that prefix (``text_encoder.*``, ``vision_proj.*``, ``temp``, ...) and stage-2's
  ``img_pos_embed``, ``clip_pos_embed``, ``clip_img_pos_embed``, ``clip_decoder.*``,
  ``final_clip_decoder.*`` (distillation parts) are ignored by name and listed.

Every other key must exist in the model with its shape, and every model parameter must come
from the file. The configuration comes from the file's shapes (width, depth, MLP width, patch,
tubelet, frames of ``pos_embed``, heads present); the number of attention heads, which shapes
cannot tell, from the width's published variant. Tensors go straight to their device and dtype
one at a time, into a model built on the meta device: a 6B checkpoint is never held twice.
"""
from __future__ import annotations

import json
import re
import resource
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import torch

from .internvideo2 import VARIANTS, InternVideo2, InternVideo2Config

PREFIX_PARTS = ("module.", "model.", "backbone.", "encoder.", "vision_encoder.")
IGNORED = re.compile(r"^(img_pos_embed|clip_pos_embed|clip_img_pos_embed|clip_decoder\..*|final_clip_decoder\..*)$")
ANCHOR = "blocks.0.attn.qkv.weight"


class CheckpointError(ValueError):
    """A checkpoint that does not fit the encoder; the message names the file and the keys."""


@dataclass
class LoadReport:
    path: str
    prefix: str
    ignored: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    peak_host_gib: float = 0.0
    peak_device_gib: float | None = None


def _shards(path: Path) -> list[Path]:
    if path.is_dir():
        index = sorted(path.glob("*.safetensors.index.json"))
        if index:
            path = index[0]
        else:
            files = sorted(path.glob("*.safetensors"))
            if not files:
                raise CheckpointError(f"{path}: no .safetensors files or index in this folder")
            return files
    if path.name.endswith(".index.json"):
        weight_map = json.loads(path.read_text())["weight_map"]
        return [path.parent / name for name in sorted(set(weight_map.values()))]
    return [path]


def _lazy_tensors(path: Path) -> Iterator[tuple[str, Callable[[], torch.Tensor], tuple[int, ...]]]:
    """``(key, load, shape)`` for every tensor, loading nothing until ``load()`` is called."""
    shards = _shards(path)
    if all(s.suffix == ".safetensors" for s in shards):
        from safetensors import safe_open

        for shard in shards:  # handles stay open until the loads are done (memory-mapped, nothing read yet)
            fh = safe_open(str(shard), framework="pt", device="cpu")
            for key in fh.keys():
                yield key, (lambda fh=fh, key=key: fh.get_tensor(key)), tuple(fh.get_slice(key).get_shape())
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001  (pickle, zip and format errors alike)
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    for wrapper in ("model", "module", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            yield key, (lambda value=value: value), tuple(value.shape)


def _prefix(keys: list[str], path: Path) -> str:
    found = [k[: -len(ANCHOR)] for k in keys if k.endswith(ANCHOR)]
    if len(found) != 1:
        raise CheckpointError(f"{path}: expected one {ANCHOR!r} key (any prefix), found {len(found)}")
    prefix = found[0]
    rest = prefix
    while rest:
        part = next((p for p in PREFIX_PARTS if rest.startswith(p)), None)
        if part is None:
            raise CheckpointError(f"{path}: unknown key prefix {prefix!r}; accepted parts: {', '.join(PREFIX_PARTS)}")
        rest = rest[len(part):]
    return prefix


def infer_config(shapes: dict[str, tuple[int, ...]], path: Path, **overrides) -> InternVideo2Config:
    """The encoder configuration that the (prefix-stripped) ``shapes`` describe."""
    try:
        dim = shapes["cls_token"][-1]
        _, _, tubelet, patch, _ = shapes["patch_embed.proj.weight"]
        pos_tokens = shapes["pos_embed"][1] - 1
        hidden = shapes["blocks.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise CheckpointError(f"{path}: missing key {exc.args[0]!r}; is this an InternVideo2 vision encoder?") from None
    variant = next((v for v in VARIANTS.values() if v["embed_dim"] == dim), None)
    if variant is None and "num_heads" not in overrides:
        raise CheckpointError(f"{path}: width {dim} is none of the published variants "
                              f"({', '.join(k + ' ' + str(v['embed_dim']) for k, v in VARIANTS.items())}); "
                              "give --model-config with num_heads")
    grid = overrides.get("img_size", 224) // patch  # the published encoders are all 224 px
    if pos_tokens % (grid * grid):
        raise CheckpointError(f"{path}: pos_embed has {pos_tokens} patch tokens, not a multiple of {grid}x{grid} "
                              "(a checkpoint trained at another size needs img_size in --model-config)")
    head = shapes.get("head.weight")
    cfg = dict(embed_dim=dim, depth=1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("blocks.")),
               num_heads=variant["num_heads"] if variant else 1, mlp_ratio=hidden / dim, patch_size=patch,
               img_size=grid * patch, num_frames=pos_tokens // (grid * grid) * tubelet, tubelet_size=tubelet,
               qkv_bias="blocks.0.attn.qkv.bias" in shapes, qk_normalization="blocks.0.attn.q_norm.weight" in shapes,
               attn_pool="clip_projector.cross_attn.proj.weight" in shapes,
               clip_embed_dim=shapes.get("clip_projector.cross_attn.proj.weight", (768,))[0],
               num_classes=head[0] if head else 0)
    return replace(InternVideo2Config(**cfg), **overrides)


def load_internvideo2(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                      **overrides) -> tuple[InternVideo2, LoadReport]:
    """The encoder in ``path``, on ``device`` in ``dtype``, with a :class:`LoadReport`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    device = torch.device(device)
    tensors = list(_lazy_tensors(path))
    prefix = _prefix([k for k, _, _ in tensors], path)
    ours, ignored = {}, []
    for key, load, shape in tensors:
        name = key[len(prefix):] if key.startswith(prefix) else None
        if name is None or IGNORED.match(name):
            ignored.append(key)
        else:
            ours[name] = (load, shape)
    cfg = infer_config({k: s for k, (_, s) in ours.items()}, path, **overrides)
    with torch.device("meta"):
        model = InternVideo2(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    unexpected = sorted(set(ours) - set(expected))
    missing = sorted(set(expected) - set(ours))
    wrong = [f"{k} {ours[k][1]} (model {expected[k]})" for k in expected if k in ours and ours[k][1] != expected[k]]
    if unexpected or missing or wrong:
        raise CheckpointError(f"{path}: does not fit the encoder it describes: unexpected {unexpected[:5]}, "
                              f"missing {missing[:5]}, wrong shape {wrong[:5]}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for name, (load, _) in ours.items():  # one tensor at a time, straight to its place
        wanted = torch.float32 if name.endswith(".gamma") else dtype  # layer scale stays fp32, as the public code
        model.load_state_dict({name: load().to(device=device, dtype=wanted)}, strict=False, assign=True)
    report = LoadReport(str(path), prefix, ignored, cfg.__dict__.copy(),
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
                        torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None)
    return model.eval(), report
