"""Decoders side by side: decord, torchcodec and the ffmpeg pipe, on the same synthetic videos.

Speed: frames/s decoding whole videos to 224x224 centre crops (what I3D reads), one process, the
backends interleaved per repetition after a warm-up; medians with min-max. Correctness: mean
absolute difference of every frame against the ffmpeg pipe's, and on a variable-frame-rate
video whether the frame at 1.0 s is the one shown at 1.0 s.

    python benchmarks/decode_speed.py --videos 4 --frames 300 --reps 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from videos import frame_content, make_vfr_video, make_video  # noqa: E402

from extract.video.decode import DecodeError, DecodeSpec, decode_all  # noqa: E402

BACKENDS = ("decord", "torchcodec", "ffmpeg")


def timed(paths: list[Path], decoder: str) -> float:
    started, frames = time.perf_counter(), 0
    for path in paths:
        out, stream = decode_all(path, DecodeSpec(size=224, decoder=decoder))
        if not stream.decoder.startswith(decoder if decoder != "ffmpeg" else "ffmpeg pipe"):
            raise SystemExit(f"{decoder} was not used for {path} ({stream.decoder}; {stream.notes})")
        frames += len(out)
    return frames / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="decode_speed_"))
    paths = [make_video(root / f"v{i}", args.frames, fps=30.0, width=320, height=240, seed=i) for i in range(args.videos)]
    for decoder in BACKENDS:  # warm-up: imports, codec initialisation, page cache
        timed(paths[:1], decoder)
    speed = {d: [] for d in BACKENDS}
    for rep in range(args.reps):
        for decoder in (BACKENDS if rep % 2 == 0 else BACKENDS[::-1]):
            speed[decoder].append(timed(paths, decoder))
    reference = [decode_all(path, DecodeSpec(size=224, decoder="ffmpeg"))[0] for path in paths]
    vfr = make_vfr_video(root / "vfr", frames=40)
    second = frame_content(20, 64, 48, seed=1)[:, 24, 32, 2].astype(int)
    print(f"{args.videos} videos x {args.frames} frames, 320x240 h264 -> 224x224; {args.reps} interleaved "
          f"repetitions, medians (min-max)")
    print(f"{'decoder':<12}{'frames/s':>24}{'vs ffmpeg':>11}{'mean |diff| vs ffmpeg':>23}{'VFR frame at 1.0 s':>20}")
    base = statistics.median(speed["ffmpeg"])
    for decoder in BACKENDS:
        diff = np.mean([np.abs(decode_all(path, DecodeSpec(size=224, decoder=decoder))[0].astype(int)
                               - ref.astype(int)).mean() for path, ref in zip(paths, reference)])
        try:
            frames, _ = decode_all(vfr, DecodeSpec(size=32, decoder=decoder))
            right = "right" if abs(int(frames[20, 16, 16, 2]) - second[5]) <= 6 else "WRONG"
        except DecodeError:
            right = "refuses (VFR)"
        s = speed[decoder]
        print(f"{decoder:<12}{statistics.median(s):>10.0f} ({min(s):.0f}-{max(s):.0f}){'':>5}"
              f"{statistics.median(s) / base:>8.2f}{diff:>23.2f}{right:>20}")


if __name__ == "__main__":
    main()
