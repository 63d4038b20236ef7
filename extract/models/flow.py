"""Optical flow with torchvision's RAFT, computed on the GPU in batches of frame pairs.

Flow is stored like the released TV-L1 frames: clamped to +-20 px and quantised to uint8 with
``round(128 + 255 / 40 * f)``, so a flow "frame" is ``(H, W, 2)`` uint8 and goes through the same
snippet cutter and ``x / 255 * 2 - 1`` scaling as RGB. Each frame is paired with the next; the
last flow frame is repeated so that a video of N frames has N flow frames and the RGB and flow
streams share one snippet grid.
"""
from __future__ import annotations

import numpy as np
import torch

RAFT_MODELS = {"raft_large": "Raft_Large_Weights", "raft_small": "Raft_Small_Weights"}


def load_raft(name: str = "raft_large", device: str | torch.device = "cpu", pretrained: bool = True) -> torch.nn.Module:
    """torchvision RAFT with its default weights (downloaded by torchvision, hash-checked)."""
    from torchvision.models import optical_flow

    if name not in RAFT_MODELS:
        raise ValueError(f"flow model must be one of {sorted(RAFT_MODELS)}, got {name!r}")
    weights = getattr(optical_flow, RAFT_MODELS[name]).DEFAULT if pretrained else None
    try:
        model = getattr(optical_flow, name)(weights=weights, progress=False)
    except Exception as exc:  # noqa: BLE001 - torchvision raises URLError/RuntimeError offline
        raise RuntimeError(f"cannot load {name} weights through torchvision ({exc}); on an offline machine copy "
                           f"them into {torch.hub.get_dir()}/checkpoints first") from None
    return model.eval().to(device)


def quantise(flow: torch.Tensor) -> torch.Tensor:
    """``(n, 2, H, W)`` pixels -> ``(n, H, W, 2)`` uint8, the TV-L1 release convention."""
    q = torch.round(128 + 255 / 40 * flow.clamp(-20, 20)).clamp(0, 255)
    return q.to(torch.uint8).permute(0, 2, 3, 1)


class FlowStream:
    """Push RGB chunks ``(n, H, W, 3)`` uint8 of one video, get its flow frames ``(m, H, W, 2)``."""

    def __init__(self, raft: torch.nn.Module, device: torch.device, batch: int = 16, iterations: int = 12) -> None:
        self.raft, self.device, self.batch, self.iterations = raft, device, batch, iterations
        self.last: torch.Tensor | None = None
        self.last_flow: np.ndarray | None = None

    @torch.inference_mode()
    def _pairs(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, len(first), self.batch):
            a, b = first[i:i + self.batch], second[i:i + self.batch]
            out.append(quantise(self.raft(a, b, num_flow_updates=self.iterations)[-1].float()))
        return torch.cat(out)

    def push(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 ``(n, H, W, 3)`` frames -> uint8 ``(m, H, W, 2)`` flow frames on the device."""
        frames = torch.as_tensor(frames).to(self.device)
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1  # RAFT wants [-1, 1]
        seq = x if self.last is None else torch.cat([self.last, x])
        self.last = seq[-1:]
        if len(seq) < 2:
            return torch.zeros((0, *frames.shape[1:3], 2), dtype=torch.uint8, device=self.device)
        flow = self._pairs(seq[:-1], seq[1:])
        self.last_flow = flow[-1:]
        return flow

    def finish(self, height: int, width: int) -> torch.Tensor:
        """The repeated last flow frame (zero flow, value 128, for a one-frame video)."""
        if self.last_flow is None:
            return torch.full((1, height, width, 2), 128, dtype=torch.uint8, device=self.device)
        return self.last_flow
