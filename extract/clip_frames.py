"""``extract clip-frames``: short clips (micro-gestures) as stores of a fixed number of uint8
frames, ``(N, size, size, 3)`` per clip, for recognition models that read frames (MSF-Mamba).

Frames are decoded like every extractor's (``--spatial``: squash or short side + centre crop),
then ``N`` are taken uniformly: frame ``floor((i + 0.5) L / N)`` of a clip of ``L`` frames, so a
clip shorter than ``N`` repeats frames (SMG clips can have 9). Each clip records its sampled
frame indices as its grid's ``starts``. Resumable; failures are recorded, as in every store.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from .recipe import make_recipe
from .spec import DecodeOptions, opt
from .store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta
from .video.decode import DecodeError, DecodeSpec, FrameStream
from .video.sources import Source


@dataclass(kw_only=True)
class ClipFramesSpec(DecodeOptions):
    frames: int = opt(16, "frames per clip")
    spatial: str = opt("resize", "squash to --size squared (as the MSF-Mamba pipeline) or short side + centre crop",
                       choices=("center-crop", "resize"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames < 1:
            raise ValueError(f"--frames must be at least 1, got {self.frames}")


def uniform_indices(length: int, count: int) -> np.ndarray:
    """``count`` frame indices spread evenly over ``length`` frames (repeats when shorter)."""
    return np.floor((np.arange(count) + 0.5) * length / count).astype(np.int64)


def sample_clip(source: Source, spec: DecodeSpec, count: int) -> tuple[np.ndarray, VideoMeta]:
    stream = FrameStream(source.path, spec)
    frames = np.concatenate(list(stream))
    if len(frames) == 0:
        raise DecodeError(f"{source.name}: no frames decoded")
    picked = uniform_indices(len(frames), count)
    grid = SnippetGrid(window=1, stride=1, fps=stream.fps, num_snippets=count, starts=tuple(picked.tolist()))
    extra = {"source_fps": stream.source_fps, "source_size": stream.source_size, "notes": stream.notes,
             "warnings": [source.redact(w) for w in stream.warnings]}  # as every extractor records them
    return frames[picked], VideoMeta(grid=grid, source=source.name, fps=stream.fps, num_frames=len(frames),
                                     duration=len(frames) / stream.fps, decoder=stream.decoder, extra=extra)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .cli_extract import add_source_args, add_spec_arguments

    p = sub.add_parser("clip-frames", help="clips as N uniformly sampled uint8 frames each (recognition input)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""
examples:
  python -m extract clip-frames --video-dir smg_clips/ --out stores/smg_frames16 --frames 16 --size 224 --spatial resize
  python -m detect train --config configs/smg_msf_mamba_s.yaml
""")
    add_spec_arguments(p, ClipFramesSpec, add_source_args(p))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .cli_extract import report, sources_of, spec_from_args

    try:
        spec = spec_from_args(ClipFramesSpec, args)
        sources = sources_of(args, spec)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if not sources:
        raise SystemExit("error: no videos found")
    return report(write_clip_frames(spec, sources, args.out), args)


def write_clip_frames(spec: ClipFramesSpec, sources: list[Source], out) -> dict:
    """``spec.frames`` uniform frames of each source into the store ``out``; the summary."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    decode = DecodeSpec(size=spec.size, spatial=spec.spatial, fps=spec.decode_fps, decoder=spec.decoder,
                        strict=spec.strict)
    info = StoreInfo(feature=f"frames{spec.frames}_{spec.size}", dtype="uint8", num_shards=spec.shards,
                     step_shape=[spec.size, spec.size, 3],
                     preprocessing={"size": spec.size, "spatial": spec.spatial, "frames": spec.frames,
                                    "sampling": "floor((i + 0.5) * L / N)", "fps": spec.fps},
                     recipe=make_recipe("clip-frames", spec))
    started = time.perf_counter()
    summary = {"written": 0, "skipped": 0, "failed": {}, "warnings": {}, "snippets": 0}

    def one(src: Source):
        try:
            return src, sample_clip(src, decode, spec.frames), None
        except (DecodeError, OSError) as exc:
            return src, None, src.redact(str(exc))

    with StoreWriter(out, info, retry_failed=spec.retry_failed) as writer:
        by_id = {s.video_id: s for s in sources}
        todo = writer.todo(by_id)
        summary["skipped"] = sum(writer.owns(v) for v in by_id) - len(todo)
        jobs = Parallel(n_jobs=max(1, spec.workers), prefer="threads", return_as="generator")(
            delayed(one)(by_id[v]) for v in todo)
        for src, result, error in tqdm(jobs, total=len(todo), desc="clips", unit="clip", disable=None):
            if error is not None:
                writer.fail(src.video_id, error)
                summary["failed"][src.video_id] = error
                continue
            writer.write(src.video_id, *result)
            summary["written"] += 1
            summary["snippets"] += spec.frames
    summary["seconds"] = time.perf_counter() - started
    return summary
