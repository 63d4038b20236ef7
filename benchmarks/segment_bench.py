"""Shared pieces of the segment-detector benchmarks: THUMOS14-shaped models and batches, a
training step, and a video's detections as ``predict`` makes them, timed.

Training: batch 2 x 2048 x 2304 (one video of 1800 valid steps), loss, backward, clipping, an
AdamW step and the EMA update, as ``detect train`` does a step (its parameter groups, fused AdamW
on CUDA, :class:`detect.engine.ema.ModelEma`). Inference: one video of features on the GPU, padded to the largest stride, forward
(the model itself or :class:`detect.ops.graphed_forward.GraphedForward`), then decoding, Soft-NMS
and conversion to seconds on the host.
"""
from __future__ import annotations

import statistics
import time

import torch

from detect.models import create_model
from detect.models.detector import ActionDetector
from detect.tasks.segments.config import SegmentsConfig
from detect.tasks.segments.postprocess import PostprocessConfig
from detect.tasks.segments.decode import decode_batch_to_host
from detect.tasks.segments.task import SegmentLoss, to_seconds

STRIDE, WINDOW, FPS = 4, 16, 30.0


def make_model(name: str, backend: str, device: str = "cuda", **backbone_options) -> ActionDetector:
    backbone = {"input_dim": 2048, "embd_dim": 512, **({"backend": backend} if "mamba" in name else {}),
                **backbone_options}
    return create_model(name, num_classes=20, head_dim=512, backbone=backbone).to(device)


def thumos_train_batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """``(features, mask, segments, labels)``: batch 2 x 2048 x 2304, the second video 1800 steps."""
    device = g.device
    feats = torch.randn(2, 2048, 2304, device=device, generator=g)
    mask = torch.ones(2, 2304, dtype=torch.bool, device=device)
    mask[1, 1800:] = False
    segments = [torch.tensor([[100.0, 180.0], [900.0, 1000.0]], device=device),
                torch.tensor([[40.0, 60.0]], device=device)]
    labels = [torch.tensor([3, 7], device=device), torch.tensor([1], device=device)]
    return feats, mask, segments, labels


def spread(values: list[float]) -> str:
    """``median (min-max)`` of repeated measurements."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def footprint(model, opt) -> int:
    """Bytes the contestant keeps between steps: parameters, gradients and optimizer state."""
    return _bytes([*model.parameters(), *(p.grad for p in model.parameters() if p.grad is not None),
                   *(v for s in opt.state.values() for v in s.values() if torch.is_tensor(v))])


def segment_step_fn(model, feats, mask, segments, labels, amp, graph: bool = False, fused: bool | None = None):
    """A training step of ``model`` on this batch as the trainer takes it (lr 1e-4), or with
    ``graph`` as it takes it with ``optim.cuda_graph`` (replayed from one CUDA graph);
    ``step.footprint()`` gives its resident bytes (the EMA copy included)."""
    criterion = SegmentLoss(SegmentsConfig(), model.cfg.num_classes).to(feats.device)
    return training_step_fn(model, criterion, {"features": feats, "mask": mask},
                            {"segments": segments, "labels": labels}, amp, graph, fused)


def training_step_fn(model, criterion, inputs: dict, batch: dict, amp: bool, graph: bool = False,
                     fused: bool | None = None):
    """A training step of any task as ``detect train`` takes it: its parameter groups, fused AdamW
    (lr 1e-4; ``fused`` None: fused on CUDA only, as the trainer), clipping at 1, the EMA update;
    with ``graph`` replayed from one CUDA graph (``optim.cuda_graph``). ``step.footprint()``: the
    bytes it keeps between steps, the EMA copy included, and for a graph the memory pool its
    capture reserved (what its replays write)."""
    from detect.engine.ema import ModelEma
    from detect.engine.graphed_step import GraphedStep, graph_ready_optimizer
    from detect.engine.optim import param_groups

    device = next(model.parameters()).device
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4,
                            fused=device.type == "cuda" if fused is None else fused)
    ema = ModelEma(model, 0.999)
    if graph:
        graph_ready_optimizer(opt, device)
        graphed = GraphedStep(model, criterion, opt, ema, 1.0, amp)
        captured = {}

        def step():
            if graphed.graph is None:
                torch.cuda.synchronize()
                before = torch.cuda.memory_allocated()
                graphed.step(inputs, batch)
                torch.cuda.synchronize()
                # kept outside the pool: gradients, AdamW state, input and target buffers
                captured["bytes"] = torch.cuda.memory_allocated() - before + graph_pool_bytes(graphed.graph)
                return
            graphed.step(inputs, batch)
        step.footprint = lambda: (_bytes(model.parameters()) + _bytes(ema.module.state_dict().values())
                                  + captured.get("bytes", 0))
        return step

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = criterion(model(**inputs), batch)["final_loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
    step.footprint = lambda: footprint(model, opt) + _bytes(ema.module.state_dict().values())
    return step


def graph_pool_bytes(graph: torch.cuda.CUDAGraph) -> int:
    """Bytes of the memory pool a captured graph owns: every tensor its replays write lives there,
    freed or not, so this is the graph's working memory (the allocator's snapshot, by pool id)."""
    pool = tuple(graph.pool())
    return sum(seg["total_size"] for seg in torch.cuda.memory_snapshot()
               if tuple(seg.get("segment_pool_id", ())) == pool)


def host_syncs(step) -> int:
    """How many times one step makes the host wait for the GPU (CUDA's sync debug mode)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def timed_steps(step, iters: int) -> tuple[float, float]:
    """``(it/s, peak GiB)`` of ``iters`` steps; the peak as if the contestant ran alone: its
    weights, gradients and optimizer state plus what its steps allocate above what was resident."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    rate = iters / (time.perf_counter() - start)
    return rate, (torch.cuda.max_memory_allocated() - before + step.footprint()) / 2 ** 30


class _Item:
    """What :func:`detect.tasks.segments.to_seconds` reads of a video."""

    def __init__(self, n: int):
        from extract.store import SnippetGrid

        self.grid = SnippetGrid(window=WINDOW, stride=STRIDE, fps=FPS, num_snippets=n)
        self.offset, self.downsample = 0, 1
        self.duration = ((n - 1) * STRIDE + WINDOW) / FPS


@torch.no_grad()
def timed_detections(model, forward, x: torch.Tensor, amp: bool):
    """``forward`` (the model itself, or as ``predict`` runs it: :class:`GraphedForward`), then
    decoding: ((forward ms, post-processing ms, segments), (seconds, scores, labels))."""
    n = x.shape[-1]
    padded = -(-n // model.length_multiple) * model.length_multiple
    t0 = time.perf_counter()
    xp = torch.nn.functional.pad(x[None], (0, padded - n))
    mask = torch.arange(padded, device="cuda")[None] < n
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        out = forward(features=xp, mask=mask)
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    (segs, scores, labels), = decode_batch_to_host(out, PostprocessConfig())  # as predict decodes a batch
    seconds = to_seconds(segs, _Item(n))
    t2 = time.perf_counter()
    return (1000 * (t1 - t0), 1000 * (t2 - t1), len(scores)), (seconds, scores, labels)
