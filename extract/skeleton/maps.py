"""The per-video pass from per-frame pose candidates to stored skeleton heatmaps.

For each video of the pose store: follow one person (:func:`.track.follow_person`), bring its
keypoints to pixels of the **original** frame (the pose model saw it squashed to a square; the
source size is in the pose store's per-video ``extra.source_size``), smooth the tracks there
(:func:`.smooth.smooth_tracks`: ``smooth_px`` per frame against one heatmap cell), crop to the
clip's keypoint box grown by ``margin`` sigmas, render keypoint and limb maps there
(:func:`.render.render_maps`, ``sigma`` in original-frame pixels, so Gaussians are round on any
aspect ratio, as SG-Mamba renders them) in batches of frames on the device, and write two stores
on the pose store's frame grid: heatmaps ``(T, size, size)`` float16 and keypoints ``(T, K, 3)``
(x, y in [0, 1] of the frame, confidence). A video without one confident keypoint gets all-zero
maps and a warning in its metadata (``extra.warnings``), not a failure.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..store import StoreInfo, StoreWriter, VideoMeta, open_store
from .render import crop_box, render_maps
from .smooth import smooth_tracks
from .track import follow_person

OUTPUTS = ("fusion", "keypoints", "limbs")


@dataclass
class RenderSpec:
    size: int = 56
    sigma: float = 4.0               # pixels of the original frame
    margin: float = 3.0              # crop margin, in sigmas
    smooth_px: float = 4.0           # smoother process noise, original-frame pixels per frame; 0: off
    min_confidence: float = 0.1      # keypoints at or below it stay out of the crop box
    output: str = "fusion"
    batch: int = 128                 # frames rendered at once
    edges: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.size < 4 or self.sigma <= 0 or self.margin < 0 or self.smooth_px < 0:
            raise ValueError(f"need size >= 4, sigma > 0, margin >= 0, smooth_px >= 0, got {self}")


@dataclass(frozen=True)
class FrameGeometry:
    """How the pose model's pixels map to the original frame's."""

    decoded: tuple[int, int]          # (width, height) the pose model saw
    original: tuple[int, int]         # (width, height) of the source video
    cell: tuple[float, float]         # keypoint quantum, fraction of the frame (x, y)

    def scale(self) -> torch.Tensor:
        return torch.tensor([self.original[0] / self.decoded[0], self.original[1] / self.decoded[1]],
                            dtype=torch.float64)

    def cell_px(self) -> tuple[float, float]:
        return self.cell[0] * self.original[0], self.cell[1] * self.original[1]


def video_maps(candidates: np.ndarray, keypoints: int, geometry: FrameGeometry, spec: RenderSpec,
               device: torch.device) -> tuple[np.ndarray, np.ndarray, dict]:
    """``candidates (T, P, K*3 + 5)`` in decoded-frame pixels -> heatmaps ``(T, size, size)``
    float16, keypoints ``(T, K, 3)`` float32 with x, y in [0, 1], and what to record (crop box in
    original-frame pixels, warnings)."""
    w, h = geometry.original
    person = follow_person(torch.from_numpy(candidates).double(), keypoints)
    conf = person[..., 2]
    points = smooth_tracks(person[..., :2] * geometry.scale(), conf, spec.smooth_px, geometry.cell_px())
    t = len(points)
    box = crop_box(points, conf, (w, h), spec.margin * spec.sigma, spec.min_confidence)
    maps = np.zeros((t, spec.size, spec.size), dtype=np.float16)
    extra: dict = {"crop_box": list(box) if box else None, "warnings": []}
    if box is None:
        extra["warnings"].append(f"no keypoint above confidence {spec.min_confidence} in {t} frames: all-zero maps")
    else:
        pts, cf = points.to(device), conf.to(device)
        for start in range(0, t, spec.batch):
            kp, limbs = render_maps(pts[start:start + spec.batch], cf[start:start + spec.batch], box, spec.size,
                                    spec.sigma, spec.edges)
            chosen = {"fusion": (kp + limbs) / 2, "keypoints": kp, "limbs": limbs}[spec.output]
            maps[start:start + spec.batch] = chosen.cpu().numpy().astype(np.float16)
    scale = torch.tensor([w, h], dtype=torch.float64)
    keypoints_out = torch.cat([points / scale, conf[..., None]], -1).float().numpy()
    return maps, keypoints_out, extra


def render_store(pose_store: str | Path, heatmap_store: str | Path, keypoint_store: str | Path, spec: RenderSpec,
                 device: torch.device, progress=iter, retry_failed: bool = False) -> dict:
    """Render every video of ``pose_store`` not yet in ``heatmap_store``; a summary dict."""
    pose = open_store(pose_store)
    pinfo = pose.info
    keypoints, frame_size = pinfo.extra["keypoints"], tuple(pinfo.extra["frame_size"])
    persons = pinfo.extra["persons"]
    cell = tuple(pinfo.extra.get("cell") or (1 / frame_size[0], 1 / frame_size[1]))
    recorded = {"pose_store": str(pose_store), "pose": pinfo.model, "render": asdict(spec),
                "frame_size": list(frame_size), "cell": list(cell),
                "units": "render.sigma, render.smooth_px and crop_box: pixels of the original frame"}
    base = dict(num_shards=pinfo.num_shards, grid=pinfo.grid, model=pinfo.model, preprocessing=pinfo.preprocessing,
                recipe=pinfo.recipe)
    maps_info = StoreInfo(feature=f"skeleton_heatmaps_{spec.output}", dtype="float16",
                          step_shape=[spec.size, spec.size], extra=recorded, **base)
    kp_info = StoreInfo(feature="skeleton_keypoints", dtype="float32", step_shape=[keypoints, 3],
                        extra={**recorded, "layout": "x, y in [0, 1] of the frame; confidence"}, **base)
    summary: dict = {"written": 0, "skipped": 0, "failed": {}, "warnings": {}}
    with StoreWriter(heatmap_store, maps_info, retry_failed=retry_failed) as maps_out, \
            StoreWriter(keypoint_store, kp_info, retry_failed=retry_failed) as kp_out:
        todo = maps_out.todo(pose.ids)
        summary["skipped"] = len(pose.ids) - len(todo)
        for vid in progress(todo):
            meta = pose.meta(vid)
            source_size = meta.extra.get("source_size")
            notes = [] if source_size else [f"source frame size unknown: sigma and smooth_px are pixels of the "
                                            f"{frame_size[0]}x{frame_size[1]} decoded frame"]
            geometry = FrameGeometry(frame_size, tuple(source_size or frame_size), cell)
            try:
                candidates = pose.read(vid).reshape(-1, persons, keypoints * 3 + 5)
                maps, kps, extra = video_maps(candidates, keypoints, geometry, spec, device)
            except Exception as exc:  # noqa: BLE001  (one bad video is recorded, the rest go on)
                maps_out.fail(vid, str(exc))
                summary["failed"][vid] = str(exc)
                continue
            warnings = extra.pop("warnings")
            out_meta = replace(meta, extra={**meta.extra, **extra,
                                            "notes": meta.extra.get("notes", []) + notes,
                                            "warnings": meta.extra.get("warnings", []) + warnings})
            if kp_out.todo([vid]):  # else an interrupted run stored the keypoints before the maps
                kp_out.write(vid, kps, out_meta)
            maps_out.write(vid, maps, out_meta)
            summary["written"] += 1
            if warnings:
                summary["warnings"][vid] = warnings
    pose.close()
    return summary
