"""``msf-mamba-{t,s,m}`` and ``msf-mamba-{t,s,m}+``: MSF-Mamba clip recognition (micro-gestures).

    frames uint8 (B, T, H, W, 3) -> [training: random resized crop + horizontal flip, on the
    device] -> resize to img_size, ImageNet mean/std -> VideoMamba backbone: Conv3d(3, d,
    (1, 16, 16)) patches, class token + spatial ``pos_embed``, ``temporal_pos_embedding``,
    ``depth`` blocks x + DropPath(BiMamba(RMSNorm x)), ``norm_f``
    -> patch states as (B, d, T, H', W') -> MCFM (+ ASWM) -> mean over all positions -> head

Parameter names follow VideoMamba (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``temporal_pos_embedding``, ``layers.N.{norm, mixer.*}``, ``norm_f``, ``head``), so its ImageNet
checkpoints load (:func:`load_videomamba`). ``msf: null`` is the VideoMamba-equivalent model
without MCFM (the paper's baseline), pooled the same way.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.mamba import ResidualViM
from ..layers.msf import MSFConfig, MSFFusion
from ..outputs import ClipOutput
from .registry import register_model

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class MSFMambaConfig:
    num_classes: int
    dim: int = 384
    depth: int = 24
    num_frames: int = 16
    img_size: int = 224
    patch: int = 16
    d_state: int = 16
    expand: int = 2
    divide_out: bool = True              # Eq. 9 averages the directions; VideoMamba sums them
    drop_path: float = 0.35
    head_dropout: float = 0.0
    pool: str = "mean"                   # mean over all positions (the paper) | cls
    msf: MSFConfig | None = field(default_factory=MSFConfig)
    crop_scale: tuple[float, float] = (0.25, 1.0)   # training random resized crop (area fraction)
    flip: bool = True
    init_from: str | None = None         # VideoMamba weights: a file or a registry name (videomamba-s16-in1k)
    backend: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.msf, dict):
            self.msf = MSFConfig(**self.msf)
        if self.img_size % self.patch:
            raise ValueError(f"img_size {self.img_size} is not a multiple of the patch {self.patch}")
        if self.pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {self.pool!r}")
        self.crop_scale = tuple(self.crop_scale)


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], flip: bool,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, T, 3, H, W)`` float -> ``(B, T, 3, size, size)``: one crop (area fraction in
    ``scale``, aspect 3/4..4/3) and one flip per clip, the same for all its frames."""
    b, t, c, h, w = x.shape
    out = []
    for i in range(b):
        r = torch.rand(4, generator=generator, device="cpu")
        area = (scale[0] + (scale[1] - scale[0]) * r[0].item()) * h * w
        aspect = float(torch.exp(torch.log(torch.tensor(3 / 4)) + r[1] * torch.log(torch.tensor(16 / 9))))
        ch, cw = min(h, max(1, round((area / aspect) ** 0.5))), min(w, max(1, round((area * aspect) ** 0.5)))
        y0, x0 = int(r[2] * (h - ch + 1)), int(r[3] * (w - cw + 1))
        clip = x[i, :, :, y0:y0 + ch, x0:x0 + cw]
        clip = F.interpolate(clip, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if flip and torch.rand(1, generator=generator).item() < 0.5:
            clip = clip.flip(-1)
        out.append(clip)
    return torch.stack(out)


class MSFMamba(nn.Module):
    def __init__(self, cfg: MSFMambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, grid = cfg.dim, cfg.img_size // cfg.patch
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, d, (1, cfg.patch, cfg.patch), stride=(1, cfg.patch, cfg.patch))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, d))
        self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, d))
        # VideoMamba's schedule: layer i drops with [0] + linspace(0, drop_path, depth) at i
        rates = [0.0] + [cfg.drop_path * j / max(cfg.depth - 1, 1) for j in range(cfg.depth)]
        self.layers = nn.ModuleList(ResidualViM(cfg.dim, cfg.d_state, cfg.expand, cfg.divide_out, rates[i], cfg.backend)
                                    for i in range(cfg.depth))
        self.norm_f = nn.RMSNorm(d, eps=1e-5)
        self.msf = MSFFusion(d, cfg.msf) if cfg.msf is not None else None
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(d, cfg.num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False)
        for p in (self.pos_embed, self.cls_token, self.temporal_pos_embedding):
            nn.init.trunc_normal_(p, std=0.02)

    def load_pretrained(self) -> None:
        """``init_from``'s VideoMamba weights into the backbone (the trainer calls this on a
        fresh run), with a one-line report of what matched."""
        if not self.cfg.init_from:
            return
        from extract.weights import resolve

        report = load_videomamba(self, resolve(self.cfg.init_from))
        print(f"{self.cfg.name}: {len(report['matched'])} tensors from {self.cfg.init_from}; own initialisation for "
              f"{len(report['kept'])} ({', '.join(sorted({k.split('.')[0] for k in report['kept']}))}); "
              f"{len(report['unexpected'])} of the file's unused")

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, T, H, W, 3)`` -> normalised ``(B, 3, T, S, S)``, augmented in training."""
        x = frames.permute(0, 1, 4, 2, 3).float().div_(255)
        size = self.cfg.img_size
        if self.training:
            x = random_resized_crop(x, size, self.cfg.crop_scale, self.cfg.flip)
        elif x.shape[-1] != size or x.shape[-2] != size:
            b, t = x.shape[:2]
            x = F.interpolate(x.flatten(0, 1), size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True).unflatten(0, (b, t))
        return ((x - self.mean) / self.std).transpose(1, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, S, S)`` -> pooled ``(B, d)``."""
        x = self.patch_embed.proj(x)                                      # (B, d, T, g, g)
        b, d, t, g, _ = x.shape
        if t != self.cfg.num_frames:
            raise ValueError(f"clips of {t} frames; this model has {self.cfg.num_frames} temporal positions")
        tokens = x.flatten(3).permute(0, 2, 3, 1) + self.pos_embed[:, None, 1:] + self.temporal_pos_embedding[:, :, None]
        cls = self.cls_token + self.pos_embed[:, :1]
        x = torch.cat([cls.expand(b, -1, -1), tokens.reshape(b, t * g * g, d)], 1)
        for layer in self.layers:
            x = layer(x)
        x = self.norm_f(x)
        if self.cfg.pool == "cls":
            return x[:, 0]
        states = x[:, 1:].reshape(b, t, g, g, d).permute(0, 4, 1, 2, 3)     # (B, d, T, g, g)
        if self.msf is not None:
            states = self.msf(states)
        return states.mean(dim=(2, 3, 4))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> ClipOutput:
        """``frames`` uint8 ``(B, T, H, W, 3)`` (``mask`` unused: every clip has T frames)."""
        return ClipOutput(self.head(self.head_drop(self.features(self.prepare(frames)))))


SIZES = {"t": (192, 24, 0.1), "s": (384, 24, 0.35), "m": (576, 32, 0.8)}  # dim, depth, VideoMamba's drop path
PAPER_SIZES = {"t": 8.90, "s": 33.38, "m": 91.57, "t+": 24.93, "s+": 97.28, "m+": 235.32}  # Table VII, M
PLUS = {"windows": (3, 5, 7), "share_kernel": True}  # the '+' parameter counts imply one kernel per window


def _variant(size: str, plus: bool):
    dim, depth, drop = SIZES[size]
    name = f"msf-mamba-{size}" + ("+" if plus else "")
    msf = MSFConfig(**PLUS) if plus else MSFConfig()
    config = dataclasses.make_dataclass(
        f"MSFMamba{size.upper()}{'Plus' if plus else ''}Config",
        [("dim", int, field(default=dim)), ("depth", int, field(default=depth)),
         ("drop_path", float, field(default=drop)),
         ("msf", MSFConfig | None, field(default_factory=lambda: dataclasses.replace(msf)))],
        bases=(MSFMambaConfig,))
    return name, config


for _size in SIZES:
    for _plus in (False, True):
        _name, _config = _variant(_size, _plus)
        register_model(_name, config=_config, output=ClipOutput, streams=("frames",),
                       description=f"MSF-Mamba-{_size.upper()}{'+' if _plus else ''}: VideoMamba backbone, "
                                   f"motion-aware state fusion{' over windows 3/5/7 with ASWM' if _plus else ''} "
                                   f"(paper: {PAPER_SIZES[_size + ('+' if _plus else '')]:.2f}M at 17 classes)",
                       example={"num_classes": 17},
                       input_shapes=lambda cfg: {"frames": ("model.img_size", (None, None, 3), "uint8")},  # resized
                       tiny={"dim": 16, "depth": 2, "img_size": 32, "patch": 8, "num_frames": 4,
                             "backend": "torch"})(MSFMamba)


def load_videomamba(model: MSFMamba, path, strict_backbone: bool = True) -> dict[str, list[str]]:
    """Initialise ``model``'s backbone from a VideoMamba checkpoint (e.g. the ImageNet-1K
    ``videomamba_s16_in1k_res224.pth`` of ``OpenGVLab/VideoMamba``): wrappers ``model`` /
    ``module`` and prefixes ``backbone.`` / ``encoder.`` removed, ``pos_embed`` resized
    bicubically and ``temporal_pos_embedding`` linearly to the model's grid and frames, ``head``
    dropped when its class count differs. Returns what matched, what the model kept from its own
    initialisation (MCFM/ASWM, a new head) and what the file had that the model has not; a
    backbone parameter missing from the file, or of another shape, is an error."""
    from pathlib import Path

    from extract.weights import load_state_dict

    state = load_state_dict(Path(path))
    for wrapper in ("model", "module", "state_dict"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    state = {k.removeprefix("backbone.").removeprefix("encoder."): v for k, v in state.items()}
    own = model.state_dict()
    if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
        cls, grid = state["pos_embed"][:, :1], state["pos_embed"][:, 1:]
        side, g = round(grid.shape[1] ** 0.5), round((own["pos_embed"].shape[1] - 1) ** 0.5)
        grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.float(), size=(g, g), mode="bicubic", align_corners=False)
        state["pos_embed"] = torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(1, -1, grid.shape[1]).to(cls.dtype)], 1)
    temporal = state.get("temporal_pos_embedding")
    if temporal is not None and temporal.shape != own["temporal_pos_embedding"].shape:
        resized = F.interpolate(temporal.float().transpose(1, 2), size=own["temporal_pos_embedding"].shape[1],
                                mode="linear", align_corners=False)
        state["temporal_pos_embedding"] = resized.transpose(1, 2).to(temporal.dtype)
    if "head.weight" in state and state["head.weight"].shape != own["head.weight"].shape:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    report = {"matched": sorted(k for k in state if k in own and state[k].shape == own[k].shape),
              "kept": sorted(k for k in own if k not in state),
              "unexpected": sorted(k for k in state if k not in own)}
    wrong = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in state
             if k in own and state[k].shape != own[k].shape]
    backbone_missing = [k for k in report["kept"] if not k.startswith(("msf.", "head."))]
    if strict_backbone and (wrong or backbone_missing):
        raise ValueError(f"{path}: does not fit {model.cfg.name}: wrong shapes {wrong[:5]}, "
                         f"backbone parameters missing {backbone_missing[:5]}")
    model.load_state_dict({k: state[k] for k in report["matched"]}, strict=False)
    return report
