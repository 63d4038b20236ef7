"""The ffmpeg binary: the system one if present, else imageio-ffmpeg's static build.

Every call is an argument list (paths with spaces or quotes are safe), has a timeout, and
checks the return code; failures raise :class:`FFmpegError` with the command's last stderr lines.
``imageio-ffmpeg`` ships no ffprobe, so :func:`probe` reads ``ffmpeg -i``'s stream header.
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class FFmpegError(RuntimeError):
    """ffmpeg failed, timed out or found no video stream; the message names the file."""


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise FFmpegError(f"no ffmpeg found: install it (apt install ffmpeg) or `pip install imageio-ffmpeg` ({exc})")


@functools.lru_cache(maxsize=None)
def passthrough_args() -> list[str]:
    """Keep every decoded frame as is: ``-fps_mode`` since ffmpeg 5.1, ``-vsync`` before (removed in 7)."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, timeout=30).stdout.decode()
    m = re.search(r"version n?(\d+)\.(\d+)", out)
    new = m is None or (int(m.group(1)), int(m.group(2))) >= (5, 1)
    return ["-fps_mode", "passthrough"] if new else ["-vsync", "passthrough"]


def run_ffmpeg(args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    """Run ``ffmpeg -hide_banner -nostdin ARGS``; raise with stderr on failure or timeout."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FFmpegError(f"{what}: ffmpeg did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.decode(errors="replace").strip().splitlines()[-5:])
        raise FFmpegError(f"{what}: ffmpeg exited with {proc.returncode}:\n{tail}")
    return proc


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float            # average frame rate from the header
    duration: float       # seconds, from the container (0 if unknown)


_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: .*?(?P<w>\d{2,5})x(?P<h>\d{2,5})")
_FPS = re.compile(r"(?P<fps>[\d.]+) fps")
_TBR = re.compile(r"(?P<tbr>[\d.]+k?) tbr")
_DURATION = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)")


def probe(path: str | Path, timeout: float = 60) -> VideoInfo:
    """Width, height, frame rate and duration of the first video stream."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FFmpegError(f"{path}: ffmpeg could not read the header within {timeout:.0f} s") from None
    text = proc.stderr.decode(errors="replace")  # `ffmpeg -i` alone always "fails": no output given
    stream = next((line for line in text.splitlines() if _STREAM.search(line)), None)
    if stream is None:
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        raise FFmpegError(f"{path}: no video stream ({last})")
    m = _STREAM.search(stream)
    fps_match = _FPS.search(stream) or _TBR.search(stream)
    if fps_match is None:
        raise FFmpegError(f"{path}: the video stream states no frame rate")
    fps_text = fps_match.group(1)
    fps = float(fps_text[:-1]) * 1000 if fps_text.endswith("k") else float(fps_text)
    d = _DURATION.search(text)
    duration = int(d["h"]) * 3600 + int(d["m"]) * 60 + float(d["s"]) if d else 0.0
    return VideoInfo(int(m["w"]), int(m["h"]), fps, duration)
