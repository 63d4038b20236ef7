"""``extract clip-frames``: short clips (micro-gestures) as stores of a fixed number of uint8
frames, ``(N, size, size, 3)`` per clip, for recognition models that read frames (MSF-Mamba).

Frames are decoded like every extractor's (``--spatial``: squash or short side + centre crop),
then ``N`` are taken uniformly: frame ``floor((i + 0.5) L / N)`` of a clip of ``L`` frames, so a
clip shorter than ``N`` repeats frames (SMG clips can have 9). Each clip records its sampled
frame indices as its grid's ``starts``. Resumable; failures are recorded, as in every store.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta
from .video.decode import DecodeError, DecodeSpec, FrameStream
from .video.sources import Source, find_videos


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
    return frames[picked], VideoMeta(grid=grid, source=source.name, fps=stream.fps, num_frames=len(frames),
                                     duration=len(frames) / stream.fps, decoder=stream.decoder)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .cli_extract import add_source_args

    p = sub.add_parser("clip-frames", help="clips as N uniformly sampled uint8 frames each (recognition input)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""
examples:
  python -m extract clip-frames --video-dir smg_clips/ --out stores/smg_frames16 --frames 16 --size 224 --spatial resize
  python -m detect train --config configs/smg_msf_mamba_s.yaml
""", conflict_handler="resolve")
    add_source_args(p)
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--spatial", default="resize", choices=("center-crop", "resize"),
                   help="squash to --size squared (default, as the MSF-Mamba pipeline) or short side + centre crop")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from joblib import Parallel, delayed
    from tqdm import tqdm

    from .cli_extract import anonymized, report

    if args.frames < 1:
        raise SystemExit(f"error: --frames must be >= 1, got {args.frames}")
    try:
        sources = find_videos(args.video_dir, args.list, args.frame_dir, args.id_style)
        if args.anonymize:
            sources = anonymized(sources, args.anonymize)
        spec = DecodeSpec(size=args.size, spatial=args.spatial, fps=None if args.fps == "native" else float(args.fps),
                          decoder=args.decoder, strict=args.strict)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    info = StoreInfo(feature=f"frames{args.frames}_{args.size}", dtype="uint8", num_shards=args.shards,
                     step_shape=[args.size, args.size, 3],
                     preprocessing={"size": args.size, "spatial": args.spatial, "frames": args.frames,
                                    "sampling": "floor((i + 0.5) * L / N)", "fps": args.fps})
    started = time.perf_counter()
    summary = {"written": 0, "skipped": 0, "failed": {}, "warnings": {}, "snippets": 0}

    def one(src: Source):
        try:
            return src, sample_clip(src, spec, args.frames), None
        except (DecodeError, OSError) as exc:
            return src, None, src.redact(str(exc))

    with StoreWriter(args.out, info, retry_failed=args.retry_failed) as writer:
        by_id = {s.video_id: s for s in sources}
        todo = writer.todo(by_id)
        summary["skipped"] = sum(writer.owns(v) for v in by_id) - len(todo)
        jobs = Parallel(n_jobs=max(1, args.workers), prefer="threads", return_as="generator")(
            delayed(one)(by_id[v]) for v in todo)
        for src, result, error in tqdm(jobs, total=len(todo), desc="clips", unit="clip", disable=None):
            if error is not None:
                writer.fail(src.video_id, error)
                summary["failed"][src.video_id] = error
                continue
            writer.write(src.video_id, *result)
            summary["written"] += 1
            summary["snippets"] += args.frames
    summary["seconds"] = time.perf_counter() - started
    return report(summary, args)
