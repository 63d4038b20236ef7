"""``extract frames``: dump video frames to image folders with ffmpeg.

Each video becomes ``OUT/<video id>/000001.jpg ...`` plus ``frames.json`` (source, fps, frame
count, size, format). A folder appears only when complete (written under a temporary name, then
renamed), so interrupted runs resume cleanly; failures go to ``OUT/failures.jsonl``. The folders
are accepted by every extractor through ``--frame-dir``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .cli_types import COUNT, Number, POSITIVE
from .video.ffmpeg import FFmpegError, ffmpeg_exe, passthrough_args, run_ffmpeg
from .video.sources import Source, find_videos


def _scale_filter(args: argparse.Namespace) -> str | None:
    if args.size:
        width, _, height = args.size.partition("x")
        return f"scale={int(width)}:{int(height)}:flags=bilinear"
    if args.short_side:
        s = args.short_side
        return f"scale=w='if(gt(iw,ih),-2,{s})':h='if(gt(iw,ih),{s},-2)':flags=bilinear"
    return None


def dump(source: Source, out: Path, args: argparse.Namespace) -> int:
    """Frames of one video into ``out/<id>``; returns the frame count."""
    final = out / source.video_id
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    filters = [f for f in ([f"fps={args.fps}"] if args.fps else []) + [_scale_filter(args)] if f]
    quality = ["-q:v", str(args.quality)] if args.format == "jpg" else []
    cmd = ["-i", str(source.path), "-map", "0:v:0", *(["-vf", ",".join(filters)] if filters else []),
           *(passthrough_args() if not args.fps else []), *quality, str(tmp / f"%06d.{args.format}")]
    try:
        run_ffmpeg(["-loglevel", "error", *cmd], timeout=args.timeout, what=str(source.path))
        count = sum(1 for _ in tmp.glob(f"*.{args.format}"))
        if count == 0:
            raise FFmpegError(f"{source.path}: ffmpeg wrote no frames")
        fps = args.fps or _native_fps(source.path)
        (tmp / "frames.json").write_text(json.dumps({"source": str(source.path), "fps": fps, "frames": count,
                                                     "format": args.format, "filters": filters,
                                                     "dumped_by": f"ffmpeg via mamba-tad ({ffmpeg_exe()})"}))
        shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return count
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _native_fps(path: Path) -> float:
    from .video.ffmpeg import probe

    return probe(path).fps


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("frames", help="dump video frames to image folders with ffmpeg", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""
examples:
  python -m extract frames --video-dir videos/ --out frames/ --short-side 256
  python -m extract frames --video-dir charades/ --out frames24/ --fps 24 --format jpg --quality 2
  python -m extract i3d --frame-dir frames/ --out stores/x      # extract from the dumped folders
""")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video-dir", type=Path)
    src.add_argument("--list", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--fps", type=POSITIVE, help="resample to this frame rate (default: every frame)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", help="WxH, e.g. 340x256 (the THUMOS14 I3D release)")
    size.add_argument("--short-side", type=COUNT, help="scale the short side to this, keeping the aspect")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"))
    p.add_argument("--quality", type=Number(int, 2, 31), default=2, help="JPEG quality, 2 (best) .. 31 (default 2)")
    p.add_argument("--workers", type=COUNT, default=4, help="videos dumped in parallel")
    p.add_argument("--timeout", type=POSITIVE, default=3600, help="seconds per video")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from joblib import Parallel, delayed
    from tqdm import tqdm

    try:
        sources = find_videos(args.video_dir, args.list)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in sources if not (args.out / s.video_id / "frames.json").exists()]

    def one(src: Source):
        try:
            return src.video_id, dump(src, args.out, args), None
        except (FFmpegError, OSError) as exc:
            return src.video_id, 0, str(exc)

    failed, frames, started = {}, 0, time.perf_counter()
    jobs = Parallel(n_jobs=args.workers, prefer="threads", return_as="generator")(delayed(one)(s) for s in todo)
    with open(args.out / "failures.jsonl", "a", encoding="utf-8") as log:
        for vid, count, error in tqdm(jobs, total=len(todo), desc="frames", unit="video", disable=None):
            frames += count
            if error:
                failed[vid] = error
                log.write(json.dumps({"id": vid, "error": error}) + "\n")
    print(f"dumped {len(todo) - len(failed)} videos ({frames} frames), {len(sources) - len(todo)} already there, "
          f"{len(failed)} failed, {time.perf_counter() - started:.1f}s")
    for vid, error in failed.items():
        print(f"failed {vid}: {error}", file=sys.stderr)
    return 1 if failed and not args.keep_going else 0
