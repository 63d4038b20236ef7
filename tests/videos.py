"""Synthetic test videos made at test time with ffmpeg: known frame count, fps and content."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from extract.video.ffmpeg import ffmpeg_exe

CODECS = {  # name: (extension, ffmpeg encoder arguments)
    "h264": ("mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10", "-preset", "ultrafast"]),
    "mjpeg": ("avi", ["-c:v", "mjpeg", "-q:v", "2"]),
    "vp9": ("webm", ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "15", "-deadline", "realtime", "-cpu-used", "8"]),
}


def frame_content(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Frames whose brightness encodes their index; smooth so lossy codecs keep it."""
    t = np.arange(n)[:, None, None]
    y = np.linspace(0, 1, height)[None, :, None]
    x = np.linspace(0, 1, width)[None, None, :]
    base = 40 + (t * 7 + seed * 13) % 160
    shape = (n, height, width)
    r = np.broadcast_to(base + 30 * x, shape)
    g = np.broadcast_to(base + 30 * y, shape)
    b = np.broadcast_to(base * 1.0, shape)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def make_video(path: Path, frames: int, fps: float = 30.0, width: int = 96, height: int = 64,
               codec: str = "h264", seed: int = 0, extra: list[str] = ()) -> Path:
    """``extra``: more ffmpeg output options (e.g. ``-movflags +faststart``)."""
    ext, args = CODECS[codec]
    path = path.with_suffix("." + ext) if path.suffix != "." + ext else path
    data = frame_content(frames, width, height, seed)
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", *args, *extra, "-r", str(fps), str(path)]
    subprocess.run(cmd, input=data.tobytes(), check=True, timeout=120)
    return path


def make_vfr_video(path: Path, frames: int = 40, width: int = 64, height: int = 48) -> Path:
    """Variable frame rate: frames at irregular timestamps (concat of two rates)."""
    a = make_video(path.with_name(path.stem + "_a"), frames // 2, 30.0, width, height)
    b = make_video(path.with_name(path.stem + "_b"), frames - frames // 2, 15.0, width, height, seed=1)
    listing = path.with_name(path.stem + "_list.txt")
    listing.write_text(f"file '{a.name}'\nfile '{b.name}'\n")
    out = path.with_suffix(".mp4")
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                    str(listing), "-c", "copy", str(out)], check=True, timeout=120)
    return out
