"""The two-stage cascade (SG-Mamba): stage 1 finds whole events (e.g. a swallow, ``AllTime``) on
full videos; stage 2 detects the micro-actions inside a fixed-duration window centred on each
event; its detections come back in video time and are scored against the original annotations.

Windows (:func:`centred_window`) are ``length`` seconds centred on an event, moved inside the
video where it is shorter than that allows; a window keeps the grid steps whose centre lies in
it (:func:`window_steps`). The same rule cuts the stage-2 training windows around ground-truth
events (:func:`write_windows`: sliced stores and shifted annotations, an action kept when it
lies wholly inside) and the inference windows around stage-1 detections (:func:`run_cascade`),
which read the full-video stores and slice them in memory. Stage 2 runs on each window as a
cropped video (its first step at the window's first step), so its detections convert to video
seconds on the video's own grid: ``t_video = t_window + start of the window's first step``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from extract.annotations import AnnotationSet, VideoAnnotations, load_annotations
from extract.atomic import write_text_atomically
from extract.store import SnippetGrid, StoreWriter

from ...data.streams import StreamSet, VideoItem, slice_time
from ...errors import DataError


@dataclass
class Window:
    video_id: str
    start: float                 # seconds
    end: float
    first_step: int              # the window's steps on the video's grid: first_step .. last_step
    last_step: int


def centred_window(start: float, end: float, duration: float, length: float) -> tuple[float, float]:
    """``length`` seconds centred on ``[start, end]``, moved to lie inside ``[0, duration]``
    (clipped there when the video is shorter than ``length``)."""
    a = (start + end) / 2 - length / 2
    a = min(max(a, 0.0), max(duration - length, 0.0))
    return a, min(a + length, duration)


def window_steps(grid: SnippetGrid, start: float, end: float) -> tuple[int, int] | None:
    """First and last grid step whose centre lies in ``[start, end]``; None when none does."""
    centres = np.asarray(grid.centre_seconds())
    inside = np.flatnonzero((centres >= start) & (centres <= end))
    return (int(inside[0]), int(inside[-1])) if len(inside) else None


def event_windows(events: dict[str, list[tuple[float, float]]], grids: dict[str, SnippetGrid],
                  durations: dict[str, float], length: float) -> list[Window]:
    out = []
    for vid, spans in events.items():
        for start, end in spans:
            a, b = centred_window(start, end, durations[vid], length)
            steps = window_steps(grids[vid], a, b)
            if steps is not None:
                out.append(Window(vid, a, b, *steps))
    return out


def ground_truth_events(annotations: AnnotationSet, video_ids: list[str], label: str) -> dict[str, list]:
    return {vid: [tuple(a.segment) for a in annotations.database[vid].annotations
                  if a.label == label and a.segment is not None] for vid in video_ids}


def detected_events(predictions: dict[str, list[dict]], threshold: float) -> dict[str, list]:
    """Stage-1 detections scoring at least ``threshold`` (any label: stage 1 has one class)."""
    return {vid: [tuple(d["segment"]) for d in dets if d["score"] >= threshold] for vid, dets in predictions.items()}


def run_cascade(stage2: list[tuple[Any, torch.nn.Module]], streams: StreamSet, annotations: AnnotationSet,
                events: dict[str, list[tuple[float, float]]], length: float, device: torch.device,
                batch_size: int = 16) -> dict[str, list[dict[str, Any]]]:
    """Stage 2 on the windows around ``events``; ``{video: [{label, score, segment}]}`` in video
    seconds, the detections of every window and every stage-2 model, best score first."""
    from .. import get_task
    from ...engine.run import length_multiple, use_amp

    items, windows = [], []
    for vid in events:
        full, grid = streams.read(vid)
        duration = annotations.database[vid].duration or float(grid.index_to_seconds(grid.num_snippets))
        for w in event_windows({vid: events[vid]}, {vid: grid}, {vid: duration}, length):
            stop = w.last_step + 1
            no_targets = {"segments": torch.zeros(0, 2), "labels": torch.zeros(0, dtype=torch.int64)}
            items.append(VideoItem(f"{vid}#{len(windows)}", slice_time(full, w.first_step, stop), grid, duration,
                                   no_targets, offset=w.first_step))
            windows.append(w)
    results: dict[str, list[dict[str, Any]]] = {vid: [] for vid in events}
    for cfg, model in stage2:  # class names: each stage-2 checkpoint's own
        classes = cfg.data.trained_classes or load_annotations(cfg.data.annotations).classes
        task = get_task(cfg.task.name)(cfg, AnnotationSet(annotations.database, classes), streams)
        loader = task.loader(items, batch_size, training=False, multiple=length_multiple(model))
        for key, dets in task.predict(model.to(device), loader, device, amp=use_amp(cfg, device)).items():
            results[key.rsplit("#", 1)[0]].extend(dets)
    return {vid: sorted(d, key=lambda x: -x["score"]) for vid, d in results.items()}


def write_windows(stream_paths: dict[str, list[str]], annotations_path: str | Path, event_label: str, length: float,
                  out: str | Path, subsets: list[str] | None = None) -> dict[str, Any]:
    """Stage-2 training data: for every ``event_label`` event of ``subsets`` (default: every
    video), a window of every store (features sliced by steps, per-frame stores by the frames
    of those steps) into ``out/<store name>``, and ``out/annotations.json`` with the other
    classes' actions wholly inside the window, in window seconds. Rerunning after an interruption
    writes the windows still missing. Returns a summary."""
    out = Path(out)
    annotations = load_annotations(annotations_path)
    if event_label not in annotations.classes:
        raise DataError(f"--event {event_label!r} is not a class of {annotations_path} "
                        f"({', '.join(annotations.classes[:10])})")
    streams = StreamSet.open(stream_paths)
    reference = next(iter(streams.stores.values()))[0]
    vids = [v for v in reference.ids if v in annotations.database
            and (subsets is None or annotations.database[v].subset in subsets)]
    if not any(ground_truth_events(annotations, vids, event_label).values()):
        raise DataError(f"no {event_label!r} event in the {len(vids)} videos of {reference.path} "
                        f"{'in subsets ' + ', '.join(subsets) + ' ' if subsets else ''}that {annotations_path} "
                        f"annotates: no window to cut")
    classes = [c for c in annotations.classes if c != event_label]
    database: dict[str, VideoAnnotations] = {}
    writers = {}
    try:
        for store in (s for group in streams.stores.values() for s in group):
            writers[store.path] = StoreWriter(out / store.path.name, replace(store.info, extra={
                **store.info.extra, "cascade_window": {"event": event_label, "seconds": length}}))
        for vid in vids:
            grid = reference.grid(vid)
            video = annotations.database[vid]
            duration = video.duration or float(grid.index_to_seconds(grid.num_snippets))
            windows = event_windows(ground_truth_events(annotations, [vid], event_label), {vid: grid},
                                    {vid: duration}, length)
            if not windows:
                continue
            arrays = {store.path: store.read(vid) for group in streams.stores.values() for store in group}
            starts = grid.start_frames()
            for j, w in enumerate(windows):
                key = f"{vid}_w{j:02d}"
                f0, f1 = int(starts[w.first_step]), int(starts[w.last_step]) + int(grid.window)
                t0 = f0 / grid.fps
                for group in streams.stores.values():
                    for store in group:
                        if writers[store.path].todo([key]):  # else written by an earlier, interrupted run
                            _write_slice(writers[store.path], store, arrays[store.path], vid, key, w, f0, f1)
                inside = [replace(a, segment=(round(a.segment[0] - t0, 4), round(a.segment[1] - t0, 4)),
                                  label_id=classes.index(a.label))
                          for a in video.annotations if a.label != event_label and a.segment is not None
                          and w.start <= a.segment[0] and a.segment[1] <= w.end]
                database[key] = VideoAnnotations(video.subset, (f1 - f0) / grid.fps, video.fps, inside)
    finally:
        for writer in writers.values():
            writer.close()
    write_text_atomically(out / "annotations.json", AnnotationSet(database, classes).to_json())
    return {"windows": len(database), "videos": len(vids), "out": str(out), "classes": classes}


def _write_slice(writer: StoreWriter, store, array: np.ndarray, vid: str, key: str, w: Window, f0: int,
                 f1: int) -> None:
    grid, meta = store.grid(vid), store.meta(vid)
    if grid.window == 1 and grid.stride == 1:  # per-frame store: the frames of the window's steps
        part = array[f0:min(f1, len(array))]
        new_grid = SnippetGrid(window=1, stride=1, fps=grid.fps, num_snippets=len(part))
    else:
        part = array[w.first_step:w.last_step + 1]
        new_grid = SnippetGrid(window=grid.window, stride=grid.stride, fps=grid.fps, num_snippets=len(part),
                               tail=grid.tail)
    if len(part) == 0:
        raise DataError(f"video {vid!r}: {store.path} has nothing in the window {w.start:.3f}-{w.end:.3f} s")
    num = f1 - f0
    writer.write(key, part, replace(meta, grid=new_grid, num_frames=num, duration=num / grid.fps,
                                    extra={**meta.extra, "window_of": vid, "window_start_frame": f0}))


def save_detections(path: str | Path, results: dict[str, list[dict[str, Any]]]) -> None:
    write_text_atomically(path, json.dumps({"results": results}))
