"""A whole training step replayed from one CUDA graph: zeroing the gradients, forward, loss,
backward, clipping, the AdamW update and the EMA update, as one launch.

The eager step launches a few thousand small kernels; on THUMOS14 shapes the GPU works ~18 ms of
a ~48 ms DBM step and waits for the host the rest (``benchmarks/profile_detector.py``). A graph
replays them without the host. It needs a step that never waits for the GPU (the losses select by
masks; ``benchmarks/compare_actionformer.py`` counts 0 host syncs per step) and inputs of fixed
shapes: training batches are padded to ``data.max_seq_len``, and the targets (for segments,
whose count varies per video) are assigned outside the graph (``criterion.assign``) into
fixed-shape buffers. Segments and dense tasks have such criteria; clip batches pad to their
longest clip, so they train eagerly, as does SG-Mamba unless its stem encodes a fixed number of
windows (``model.heatmap.max_windows``).

Capture needs a few warm-up steps first; they would change the weights, the optimizer's moments,
the EMA and the loss normaliser, so all of these are put back, in place, before the first real
step: the graphed run starts from exactly the state the eager one would. The learning rate lives
in a device tensor that the schedule fills, so the captured update reads the current one.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

WARMUP_STEPS = 3


def can_graph(cfg, device: torch.device, world: int, model: nn.Module, criterion: nn.Module) -> bool:
    """Whether ``optim.cuda_graph`` applies: one CUDA process, no gradient accumulation (its
    micro-steps differ), a task whose targets can be assigned outside the graph and a model whose
    forward never waits for the GPU (``capturable``; SG-Mamba's stem needs ``max_windows``)."""
    return (cfg.optim.cuda_graph and device.type == "cuda" and world == 1 and cfg.optim.accumulate == 1
            and hasattr(criterion, "assign") and getattr(model, "capturable", True))


def graph_ready_optimizer(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Learning rates as device tensors, read by the captured update."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
        group["capturable"] = True


def keep_lr_tensors(optimizer: torch.optim.Optimizer, tensors: list[torch.Tensor]) -> None:
    """After the schedule's step: its new learning rate into the tensors the graph reads (a
    scheduler of an older torch assigns a float instead of filling the tensor)."""
    for group, tensor in zip(optimizer.param_groups, tensors):
        if group["lr"] is not tensor:
            tensor.fill_(float(group["lr"]))
            group["lr"] = tensor


class GraphedStep:
    """``step(inputs, batch)`` runs one training step from a CUDA graph, captured at the first
    call; returns the step's losses and gradient norm (device tensors, overwritten by the next
    step: read them before it)."""

    def __init__(self, model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer, ema: Any,
                 clip_grad: float, amp: bool) -> None:
        self.model, self.criterion, self.optimizer, self.ema = model, criterion, optimizer, ema
        self.clip_grad, self.amp = clip_grad, amp
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.graph: torch.cuda.CUDAGraph | None = None

    def _body(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        for p in self.params:
            p.grad.zero_()
        # no autocast cache: a cached cast would be freed once capture ends
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
            losses = self.criterion(self.model(**self.inputs), self.targets)
        losses["final_loss"].backward()
        norm = (torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad) if self.clip_grad > 0
                else torch.zeros((), device=self.params[0].device))
        self.optimizer.step()
        self.ema.update(self.model)
        return losses, norm

    def step(self, inputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor],
                                                                                       torch.Tensor]:
        check = getattr(self.model, "check_inputs", None)
        if check is not None:  # the replay runs no Python: checks on the batch's host tensors
            check(batch["inputs"])
        if self.graph is None:
            self._capture(inputs, batch)
        for name, value in inputs.items():
            if value.shape != self.inputs[name].shape:
                raise RuntimeError(f"a captured training step needs fixed shapes: {name} is {tuple(value.shape)}, "
                                   f"captured with {tuple(self.inputs[name].shape)}")
            self.inputs[name].copy_(value, non_blocking=True)
        for name, value in self.criterion.assign(self.reference, batch).items():
            self.targets[name].copy_(value)
        self.graph.replay()
        return self.losses, self.norm

    def _capture(self, inputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        self.inputs = {k: v.clone() for k, v in inputs.items()}
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            self.reference = self.model(**self.inputs)   # what ``assign`` reads: points, device
        self.targets = self.criterion.assign(self.reference, batch)
        saved = self._snapshot()
        for p in self.params:
            p.grad = torch.zeros_like(p)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.losses, self.norm = self._body()
        self._restore(saved)

    def _snapshot(self) -> dict[str, Any]:
        return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "ema": {k: v.clone() for k, v in self.ema.module.state_dict().items()},
                "criterion": {k: v.clone() for k, v in self.criterion.state_dict().items()},
                "optimizer": {id(p): {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
                              for p, s in self.optimizer.state.items()}}

    @torch.no_grad()
    def _restore(self, saved: dict[str, Any]) -> None:
        """Everything the warm-up steps changed, back to before them, in place (the graph holds
        these tensors)."""
        for module, key in ((self.model, "model"), (self.ema.module, "ema"), (self.criterion, "criterion")):
            for name, value in module.state_dict().items():
                value.copy_(saved[key][name])
        for p, state in self.optimizer.state.items():
            before = saved["optimizer"].get(id(p), {})
            for name, value in state.items():
                if torch.is_tensor(value):
                    value.copy_(before[name]) if name in before else value.zero_()
        for p in self.params:
            p.grad.zero_()
