"""Decoding a video into a stream of uint8 RGB frame chunks ``(n, H, W, 3)``, bounded in memory.

Three decoders: decord (the default, fast), torchcodec (optional: ``pip install torchcodec`` plus
FFmpeg's shared libraries; samples frames by timestamp with exact seeking) and an ffmpeg pipe
(robust, always there). decord is never trusted
blindly: its frame count must agree with the container's duration x fps and its frame
timestamps must lie on a constant-rate grid before it is used, and if it fails mid-video the
ffmpeg pipe continues from the frame where it stopped. The ffmpeg pipe samples frames by their
timestamps (its ``fps`` filter), so a variable-frame-rate video becomes a constant-rate sequence
whose frame ``k`` really is at ``k / fps``. A video that decodes to fewer frames than its
container promises (a truncated file) is a warning recorded with it, or a failure with
``strict``. The decoder that produced the frames (and any fallback) is recorded. Frames are resized by the decoder:
``center-crop`` scales the short side to ``size`` and crops the centre square (the usual I3D /
CLIP input), ``resize`` squashes to ``size x size``.
"""
from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .ffmpeg import FFmpegError, ffmpeg_exe, passthrough_args, probe

DECODERS = ("auto", "decord", "torchcodec", "ffmpeg")
SPATIAL = ("center-crop", "resize")


class DecodeError(RuntimeError):
    """A video that cannot be decoded; the message names it."""


@dataclass(frozen=True)
class DecodeSpec:
    size: int = 224
    spatial: str = "center-crop"
    fps: float | None = None          # None: native frame rate
    decoder: str = "auto"
    chunk: int = 64                   # frames per chunk handed out
    timeout: float = 3600.0           # seconds for one video through the ffmpeg pipe
    strict: bool = False              # a video decoding short of its container's length fails
    threads: int = 0                  # decoder threads for one video; 0: the decoder's own choice

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.spatial not in SPATIAL:
            raise ValueError(f"spatial must be one of {SPATIAL}, got {self.spatial!r}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (automatic) or positive, got {self.threads}")


@dataclass
class FrameStream:
    """Iterate to get frame chunks; after exhaustion ``frames`` is the exact count decoded."""

    path: Path
    spec: DecodeSpec
    fps: float = 0.0                  # of the output sequence
    source_fps: float = 0.0
    duration: float = 0.0
    decoder: str = ""
    frames: int = 0
    source_size: tuple[int, int] | None = None   # (width, height) before resizing
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.path.is_dir():
            yield from self._images()
            return
        try:
            info = probe(self.path)
        except FFmpegError as exc:
            raise DecodeError(str(exc)) from None
        self.source_fps, self.duration = info.fps, info.duration
        self.source_size = (info.width, info.height)
        self.fps = self.spec.fps or info.fps
        if self.spec.decoder == "torchcodec":
            try:
                yield from self._torchcodec(info)
                self._check_length()
                return
            except _BackendProblem as exc:
                if self.frames:
                    raise DecodeError(f"{self.path}: torchcodec failed at frame {self.frames}: {exc}") from None
                self.notes.append(f"torchcodec: {exc}; ffmpeg pipe")
        use_decord = self.spec.decoder in ("auto", "decord") and self.spec.fps is None
        if self.spec.decoder == "decord" and self.spec.fps is not None:
            self.notes.append("decord cannot resample: used the ffmpeg pipe for --fps")
        if use_decord:
            try:
                yield from self._decord(info)
                self._check_length()
                return
            except _BackendProblem as exc:
                if self.spec.decoder == "decord" and self.frames == 0:
                    raise DecodeError(f"{self.path}: decord: {exc}") from None
                self.notes.append(f"decord: {exc}; ffmpeg pipe from frame {self.frames}")
        yield from self._ffmpeg(start=self.frames)
        self._check_length()

    def _check_length(self) -> None:
        """Fewer frames than duration x fps: a truncated or damaged file, never a normal video."""
        expected = self.duration * self.fps
        if expected > 0 and self.frames < expected - max(2.0, 0.02 * expected):
            message = (f"decoded {self.frames} of the {expected:.0f} frames its container promises "
                       f"({self.frames / self.fps:.2f} of {self.duration:.2f} s): truncated or damaged file?")
            if self.spec.strict:
                raise DecodeError(f"{self.path}: {message}")
            self.warnings.append(message)
            self.duration = self.frames / self.fps  # what was decoded, not what the header claims

    # -- a folder of frames (written by `extract frames`) --------------------------------
    def _images(self) -> Iterator[np.ndarray]:
        import json
        import re

        from PIL import Image

        files = sorted(f for f in self.path.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        flow_x = [f for f in files if re.match(r"^(flow_)?x_", f.name)]
        if flow_x:  # precomputed flow (denseflow layout): x_00001.jpg + y_00001.jpg per frame pair
            files = [(f, f.with_name(f.name.replace("x_", "y_", 1))) for f in flow_x]
            missing = [y for _, y in files if not y.exists()]
            if missing:
                raise DecodeError(f"{self.path}: {missing[0].name} is missing for its x component")
        if not files:
            raise DecodeError(f"{self.path}: no .jpg/.png frames")
        meta_file = self.path / "frames.json"
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        fps = self.spec.fps or meta.get("fps")
        if not fps:
            raise DecodeError(f"{self.path}: no frames.json giving the frame rate; pass --fps")
        if self.spec.fps and meta.get("fps") and abs(self.spec.fps - meta["fps"]) > 1e-6:
            raise DecodeError(f"{self.path}: frames were dumped at {meta['fps']} fps; resample when dumping instead")
        self.fps = self.source_fps = float(fps)
        self.duration = len(files) / self.fps
        self.decoder = ("flow images" if flow_x else "images") + f" ({meta.get('dumped_by', 'unknown tool')})"

        def load(f: Path, mode: str) -> np.ndarray:
            try:
                with Image.open(f) as im:
                    img = im.convert(mode)
            except OSError as exc:
                raise DecodeError(f"{f}: unreadable image ({exc})") from None
            self.source_size = self.source_size or (img.width, img.height)
            width, height = _scaled_size(img.width, img.height, self.spec)
            return np.asarray(img.resize((width, height), Image.BILINEAR))

        for start in range(0, len(files), self.spec.chunk):
            batch = files[start:start + self.spec.chunk]
            frames = [np.stack([load(x, "L"), load(y, "L")], -1) for x, y in batch] if flow_x else \
                [load(f, "RGB") for f in batch]
            chunk = _crop(np.stack(frames), self.spec)
            self.frames += len(chunk)
            yield chunk

    # -- decord ------------------------------------------------------------------------
    def _decord(self, info) -> Iterator[np.ndarray]:
        try:
            import decord
        except ImportError as exc:
            raise _BackendProblem(f"not importable ({exc})") from None
        width, height = _scaled_size(info.width, info.height, self.spec)
        try:
            reader = decord.VideoReader(str(self.path), width=width, height=height, num_threads=self.spec.threads)
        except Exception as exc:  # noqa: BLE001 - decord raises its own error types
            raise _BackendProblem(f"cannot open ({exc})") from None
        count = len(reader)
        expected = info.duration * info.fps
        # decord trusts the container's frame count, which can be wrong (reads past the real end
        # spin forever inside decord): only use it when it agrees with duration x fps.
        if count <= 0 or (expected > 0 and abs(count - expected) > max(2.0, 0.02 * expected)):
            raise _BackendProblem(f"reports {count} frames, the header implies {expected:.1f}")
        try:
            starts = reader.get_frame_timestamp(list(range(count)))[:, 0]
        except Exception as exc:  # noqa: BLE001 - decord raises its own error types
            raise _BackendProblem(f"no frame timestamps ({exc})") from None
        drift = float(np.abs(starts - starts[0] - np.arange(count) / info.fps).max()) if count else 0.0
        if drift > 1.5 / info.fps:  # frame k is not at k / fps: sample by timestamps instead
            self.notes.append(f"variable frame rate (frames up to {drift:.2f} s off a {info.fps:g} fps grid): "
                              f"resampled by timestamp")
            raise _BackendProblem("variable frame rate")
        self.decoder = f"decord {decord.__version__}"
        try:
            for start in range(0, count, self.spec.chunk):
                batch = reader.get_batch(list(range(start, min(start + self.spec.chunk, count)))).asnumpy()
                out = _crop(batch, self.spec)
                self.frames += len(out)
                yield out
        except Exception as exc:  # noqa: BLE001 - decord raises its own error types
            self.decoder += " + ffmpeg"
            raise _BackendProblem(f"failed at frame {self.frames} ({exc})") from None
        finally:
            del reader

    # -- torchcodec ----------------------------------------------------------------------
    def _torchcodec(self, info) -> Iterator[np.ndarray]:
        """Frames nearest to ``k / fps`` by timestamp (so VFR and ``--fps`` come out right), resized
        by the decoder (bilinear, antialiased), after the same frame-count check as decord."""
        try:
            from torchcodec import __version__
            from torchcodec.decoders import VideoDecoder
            from torchcodec.transforms import Resize
        except (ImportError, RuntimeError, OSError) as exc:  # no wheel, or no FFmpeg libraries for it
            raise _BackendProblem(f"not usable ({str(exc).splitlines()[0]})") from None
        width, height = _scaled_size(info.width, info.height, self.spec)
        try:
            decoder = VideoDecoder(str(self.path), dimension_order="NHWC", seek_mode="exact",
                                   transforms=[Resize((height, width))])
        except Exception as exc:  # noqa: BLE001 - torchcodec raises plain RuntimeErrors
            raise _BackendProblem(f"cannot open ({str(exc).splitlines()[0]})") from None
        meta = decoder.metadata
        expected = info.duration * info.fps
        if meta.num_frames <= 0 or (expected > 0 and abs(meta.num_frames - expected) > max(2.0, 0.02 * expected)):
            raise _BackendProblem(f"finds {meta.num_frames} frames, the header implies {expected:.1f}")
        begin, end = meta.begin_stream_seconds, meta.end_stream_seconds
        # The frame nearest to k / fps (as ffmpeg's fps filter picks it): the one shown half a
        # source frame later.
        times = begin + np.arange(int(round((end - begin) * self.fps))) / self.fps + 0.5 / info.fps
        self.decoder = f"torchcodec {__version__}"
        for start in range(0, len(times), self.spec.chunk):
            try:
                batch = decoder.get_frames_played_at(times[start:start + self.spec.chunk].tolist()).data
            except Exception as exc:  # noqa: BLE001
                raise _BackendProblem(f"failed at frame {self.frames} ({str(exc).splitlines()[0]})") from None
            out = _crop(batch.numpy(), self.spec)
            self.frames += len(out)
            yield out

    # -- ffmpeg pipe -------------------------------------------------------------------
    def _ffmpeg(self, start: int = 0) -> Iterator[np.ndarray]:
        size = self.spec.size
        # Frames by timestamp at the output rate: exact for constant-rate videos, and what puts a
        # variable-rate video's frames where their times say.
        filters = [f"fps={self.fps:.6f}"]
        if start:
            filters.append(f"select=gte(n\\,{start})")
        if self.spec.spatial == "center-crop":
            filters += [f"scale=w='if(gt(iw,ih),-2,{size})':h='if(gt(iw,ih),{size},-2)':flags=bilinear",
                        f"crop={size}:{size}"]
        else:
            filters.append(f"scale={size}:{size}:flags=bilinear")
        threads = ["-threads", str(self.spec.threads)] if self.spec.threads else []
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *threads, "-i", str(self.path),
               "-map", "0:v:0", "-vf", ",".join(filters), *passthrough_args(),
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        if not self.decoder:
            self.decoder = "ffmpeg pipe"
        frame_bytes = size * size * 3
        timed_out = threading.Event()
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr)

            def kill() -> None:
                timed_out.set()
                proc.kill()

            killer = threading.Timer(self.spec.timeout, kill)
            killer.start()
            try:
                while True:
                    # a fresh writable buffer per chunk: the frames handed out own it (no copy, and
                    # torch.from_numpy can share it with the main process)
                    data = bytearray(frame_bytes * self.spec.chunk)
                    got = proc.stdout.readinto(data)
                    if not got:
                        break
                    n = got // frame_bytes
                    if n:
                        self.frames += n
                        yield np.frombuffer(data, np.uint8, count=n * frame_bytes).reshape(n, size, size, 3)
                    if got % frame_bytes:
                        break  # a truncated last frame: ffmpeg is dying, its exit code tells why
                code = proc.wait()
            finally:
                killer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()
        if timed_out.is_set():
            raise DecodeError(f"{self.path}: decoding took longer than {self.spec.timeout:.0f} s")
        if code != 0:
            raise DecodeError(f"{self.path}: ffmpeg exited with {code}: {message[-500:]}")
        if self.frames == 0:
            raise DecodeError(f"{self.path}: no frames decoded" + (f" ({message[-300:]})" if message else ""))


class _BackendProblem(Exception):
    """decord or torchcodec cannot (or can no longer) decode this video: the ffmpeg pipe takes over."""


def _scaled_size(width: int, height: int, spec: DecodeSpec) -> tuple[int, int]:
    """Decoder output size: short side = ``size`` (even long side) or the square."""
    if spec.spatial == "resize":
        return spec.size, spec.size
    if width >= height:
        return max(2 * round(width * spec.size / height / 2), spec.size), spec.size
    return spec.size, max(2 * round(height * spec.size / width / 2), spec.size)


def _crop(frames: np.ndarray, spec: DecodeSpec) -> np.ndarray:
    if spec.spatial == "resize":
        return frames
    h, w = frames.shape[1:3]
    top, left = (h - spec.size) // 2, (w - spec.size) // 2
    return np.ascontiguousarray(frames[:, top:top + spec.size, left:left + spec.size])


def decode_all(path: str | Path, spec: DecodeSpec) -> tuple[np.ndarray, FrameStream]:
    """All frames at once (for short clips and tests): ``(N, size, size, 3)`` and the stream's record."""
    stream = FrameStream(Path(path), spec)
    try:
        chunks = list(stream)
    except FFmpegError as exc:
        raise DecodeError(str(exc)) from None
    return np.concatenate(chunks), stream
