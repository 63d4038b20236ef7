"""The extraction engine shared by every extractor.

Worker processes (a DataLoader over the videos) decode and yield frame chunks; the main process
cuts them into snippets per video, pools snippets from several videos into GPU batches for each
stream (RGB, flow), and writes a video to the store as soon as all its snippets have features.
Memory stays bounded for hour-long videos: frames stream through, only features accumulate.
A decoder that hangs is caught by the DataLoader timeout: the videos it was working on are
recorded as failed and extraction resumes with the rest.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .cores import available_cores
from .errors import ExtractError
from .snippets import SnippetCutter
from .store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta
from .store.errors import StoreError
from .video.decode import DecodeError, DecodeSpec, FrameStream
from .video.sources import Source


@dataclass
class Stream:
    """One feature stream: ``model(uint8 (n, T, H, W, C) on device) -> (n, D)``; ``flow`` makes
    per-video flow converters (``None`` for RGB)."""

    name: str
    model: Callable[[torch.Tensor], torch.Tensor]
    flow: Callable[[], Any] | None = None


@dataclass
class Plan:
    streams: list[Stream]
    decode: DecodeSpec
    window: int = 16
    stride: int = 4
    tail: str = "drop"
    batch_size: int = 32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    autocast: torch.dtype | None = None
    decode_timeout: float = 600.0       # seconds without any chunk from the workers


class _Decoded(torch.utils.data.IterableDataset):
    """Items ``(kind, video_id, payload)``: ``chunk`` frames, ``end`` metadata, or ``error``."""

    def __init__(self, sources: list[Source], spec: DecodeSpec) -> None:
        self.sources, self.spec = sources, spec

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        mine = self.sources if info is None else self.sources[info.id::info.num_workers]
        spec = self.spec
        if info is not None and not spec.threads:
            # cores shared among the workers that have a video: a few long videos decode on all cores
            busy = min(info.num_workers, len(self.sources))
            spec = dataclasses.replace(spec, threads=max(1, available_cores() // busy))
        for src in mine:
            stream = FrameStream(src.path, spec)
            try:
                for chunk in stream:
                    # a tensor crosses to the main process through shared memory; a numpy array
                    # would be pickled through a pipe (~10 ms of the main process per 64-frame chunk)
                    yield "chunk", src.video_id, torch.from_numpy(chunk)
            except DecodeError as exc:
                yield "error", src.video_id, src.redact(str(exc))
                continue
            yield "end", src.video_id, {"fps": stream.fps, "source_fps": stream.source_fps, "frames": stream.frames,
                                        "duration": stream.duration, "decoder": stream.decoder,
                                        "notes": stream.notes, "warnings": [src.redact(w) for w in stream.warnings],
                                        "source": src.name, "source_size": stream.source_size}


def _as_is(item):
    """Keep items as they are (the default collation would add a batch dimension)."""
    return item


class _Video:
    def __init__(self, plan: Plan) -> None:
        self.cutters = {s.name: SnippetCutter(plan.window, plan.stride, plan.tail) for s in plan.streams}
        self.flows = {s.name: s.flow() for s in plan.streams if s.flow is not None}
        self.feats: dict[str, list[torch.Tensor]] = {s.name: [] for s in plan.streams}
        self.pending = 0
        self.meta: dict[str, Any] | None = None
        self.shape: tuple[int, int] | None = None


def extract(sources: list[Source], store_path, info: StoreInfo, plan: Plan, *, workers: int = 4,
            retry_failed: bool = False, progress: bool = True) -> dict[str, Any]:
    """Extract features of ``sources`` into the store (this rank's share, resuming)."""
    from tqdm import tqdm

    started = time.perf_counter()
    writer = StoreWriter(store_path, info, retry_failed=retry_failed)
    by_id = {s.video_id: s for s in sources}
    todo = writer.todo(by_id)
    skipped = sum(writer.owns(v) for v in by_id) - len(todo)
    videos: dict[str, _Video] = {}
    queues: dict[str, list[tuple[str, torch.Tensor]]] = defaultdict(list)
    done: list[str] = []
    warned: dict[str, list[str]] = {}
    snippets, written_bytes = 0, 0
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=None if progress else True)

    def run_batch(stream: Stream, items: list[tuple[str, torch.Tensor]]) -> None:
        nonlocal snippets
        x = torch.stack([a for _, a in items])      # on the device: overlapping snippets share frames until here
        with torch.inference_mode(), torch.autocast(plan.device.type, dtype=plan.autocast or torch.float32,
                                                    enabled=plan.autocast is not None):
            feats = stream.model(x).float()         # stays on the device: no sync until the video is written
        for (vid, _), f in zip(items, feats):
            videos[vid].feats[stream.name].append(f)
            videos[vid].pending -= 1
        snippets += len(items)
        bar.set_postfix(snippets_s=f"{snippets / (time.perf_counter() - started):.1f}")

    def queue(vid: str, stream: Stream, pieces: list[torch.Tensor]) -> None:
        videos[vid].pending += len(pieces)
        queues[stream.name].extend((vid, p) for p in pieces)
        while len(queues[stream.name]) >= plan.batch_size:
            batch, queues[stream.name] = queues[stream.name][:plan.batch_size], queues[stream.name][plan.batch_size:]
            run_batch(stream, batch)

    def discard(vid: str) -> None:
        """Forget a failed video, including snippets of it still waiting for a batch."""
        videos.pop(vid, None)
        for name in queues:
            queues[name] = [(v, p) for v, p in queues[name] if v != vid]

    def flush_finished(force: bool = False) -> None:
        if force:
            for stream in plan.streams:
                if queues[stream.name]:
                    run_batch(stream, queues[stream.name])
                    queues[stream.name] = []
        nonlocal written_bytes
        for vid in [v for v, s in videos.items() if s.meta is not None and s.pending == 0]:
            written_bytes += _write(writer, vid, videos.pop(vid), plan)
            done.append(vid)
            bar.update(1)
            if len(done) in (1, 4, 16) or len(done) % 64 == 0:  # as soon as a size is known, then now and then
                try:
                    check_space(store_path, written_bytes, len(done), len(todo) - len(done) - len(writer.failed))
                except DiskFullSoonError:
                    writer.close()  # seal what is finished: the rerun resumes from it
                    raise

    remaining = list(todo)
    while remaining:
        # pinned by the loader's own thread, off the main thread that feeds the GPU
        loader = torch.utils.data.DataLoader(_Decoded([by_id[v] for v in remaining], plan.decode), batch_size=None,
                                             collate_fn=_as_is, num_workers=workers,
                                             pin_memory=plan.device.type == "cuda",
                                             timeout=plan.decode_timeout if workers else 0)
        try:
            for kind, vid, payload in loader:
                if kind == "error":  # possibly after some of its snippets were queued
                    writer.fail(vid, payload)
                    discard(vid)
                    bar.update(1)
                    continue
                state = videos.setdefault(vid, _Video(plan))
                if kind == "chunk":
                    state.shape = payload.shape[1:3]
                    payload = payload.to(plan.device, non_blocking=True)  # each decoded frame crosses once
                    for stream in plan.streams:
                        frames = state.flows[stream.name].push(payload) if stream.flow else payload
                        queue(vid, stream, state.cutters[stream.name].push(frames))
                else:
                    for stream in plan.streams:
                        if stream.flow:
                            tail = state.flows[stream.name].finish(*state.shape)
                            queue(vid, stream, state.cutters[stream.name].push(tail))
                        queue(vid, stream, state.cutters[stream.name].finish())
                    state.meta = payload
                    if payload["warnings"]:
                        warned[vid] = payload["warnings"]
                flush_finished()
            remaining = []
        except RuntimeError as exc:
            if "DataLoader timed out" not in str(exc):
                raise
            stuck = [v for v, s in videos.items() if s.meta is None]
            for vid in stuck:  # a decoder hung inside a worker: these videos are lost, the rest go on
                writer.fail(vid, f"decoding produced nothing for {plan.decode_timeout:.0f} s (hung decoder)")
                discard(vid)
                bar.update(1)
            finished = set(done) | set(writer.failed) | set(videos)
            remaining = [v for v in remaining if v not in finished]
        flush_finished(force=True)
    writer.close()
    bar.close()
    return {"store": str(store_path), "written": len(done), "skipped": skipped, "failed": writer.failed,
            "warnings": {v: w for v, w in warned.items() if v in done}, "snippets": snippets,
            "seconds": time.perf_counter() - started}


class DiskFullSoonError(ExtractError):
    """The videos left would not fit on the store's disk at the size of those written so far."""


def check_space(store_path, written_bytes: int, written: int, left: int) -> None:
    """Refuse to go on when ``left`` videos of the average size written so far need more than the
    store's disk has free: one line, before the disk fills, with the finished videos kept."""
    if not written or not left:
        return
    needed = written_bytes / written * left
    free = shutil.disk_usage(store_path).free
    if needed > free:
        raise DiskFullSoonError(f"{store_path}: the {left} videos left need about {needed / 2**30:.2f} GiB (at "
                                f"{written_bytes / written / 2**20:.1f} MiB per video so far), but its disk has "
                                f"{free / 2**30:.2f} GiB free; the {written} videos written are kept: free some "
                                f"space (or write elsewhere) and rerun the same command")


def _write(writer: StoreWriter, vid: str, state: _Video, plan: Plan) -> int:
    parts = [torch.stack(state.feats[s.name]).cpu().numpy() for s in plan.streams]
    if len({len(p) for p in parts}) != 1:
        writer.fail(vid, f"streams disagree on the snippet count: {[len(p) for p in parts]}")
        return
    meta = state.meta
    grid = SnippetGrid.for_video(meta["frames"], plan.window, plan.stride, meta["fps"], plan.tail)
    video_meta = VideoMeta(grid=grid, source=meta["source"], fps=meta["fps"], num_frames=meta["frames"],
                           duration=meta["duration"] or meta["frames"] / meta["fps"], decoder=meta["decoder"],
                           extra={"source_fps": meta["source_fps"], "source_size": meta["source_size"],
                                  "notes": meta["notes"],
                                  "warnings": meta["warnings"], "streams": [s.name for s in plan.streams]})
    array = np.concatenate(parts, axis=1)
    try:
        writer.write(vid, array, video_meta)
    except StoreError as exc:
        writer.fail(vid, str(exc))
        return 0
    return array.nbytes
