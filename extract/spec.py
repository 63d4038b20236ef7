"""Typed extractor settings. Each extractor's spec is a dataclass: :class:`ExtractSpec` (how any
extractor decodes, batches and stores) or :class:`GridSpec` (plus the snippet grid), with the
extractor's own fields on top. ``python -m extract NAME`` builds its options from these fields
(:mod:`extract.cli_extract`), so each option is declared once, here or in its extractor."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

DTYPES = ("fp32", "bf16", "fp16")
SPATIAL = ("center-crop", "resize")
DECODERS = ("auto", "decord", "torchcodec", "ffmpeg")
TAILS = ("drop", "pad")


def opt(default: Any = None, help: str = "", *, choices: tuple | None = None, parse: Callable | None = None,
        input: bool = False, required: bool = False) -> Any:
    """A spec field and its command-line option: ``help`` (the CLI adds the default), ``choices``,
    a ``parse`` function for text the field's type cannot read, ``input`` for a folder of frames
    that replaces --video-dir. ``required`` fields have no default (keyword-only in the spec)."""
    metadata = {"help": help, "choices": choices, "parse": parse, "input": input}
    if required:
        return field(metadata=metadata)
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(kw_only=True)
class DecodeOptions:
    """How videos are decoded and stored: what every command that writes a store from videos has."""

    fps: str = opt("native", "'native' or a frame rate to resample to")
    size: int | None = opt(224, "frame size fed to the model")
    spatial: str = opt("center-crop", "short side to --size then centre crop, or squash to --size x --size",
                       choices=SPATIAL)
    decoder: str = opt("auto", "auto: decord when its frame count and timestamps check out, else an ffmpeg pipe "
                               "(by timestamp); torchcodec (optional) samples by timestamp with exact seeking",
                       choices=DECODERS)
    workers: int = opt(4, "decoding processes")
    shards: int = opt(16, "shards of a new store")
    retry_failed: bool = opt(False, "try again videos that failed before")
    strict: bool = opt(False, "fail a video that decodes short of its container's length (default: store it, warn)")

    def __post_init__(self) -> None:
        for f in fields(self):  # text from the command line (or Python) for fields with their own parser
            parse = f.metadata.get("parse")
            if parse is not None and isinstance(getattr(self, f.name), str):
                setattr(self, f.name, parse(getattr(self, f.name)))
        for name, low in (("size", 1), ("workers", 0), ("shards", 1)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
        if self.fps != "native":
            try:
                ok = float(self.fps) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"--fps must be 'native' or a positive frame rate, got {self.fps!r}")
        for name, allowed in (("spatial", SPATIAL), ("decoder", DECODERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @property
    def decode_fps(self) -> float | None:
        return None if self.fps == "native" else float(self.fps)


@dataclass(kw_only=True)
class ExtractSpec(DecodeOptions):
    """What every extractor shares: decoding and storing, batching, device and precision."""

    batch_size: int = opt(32, "snippets per GPU batch")
    device: str = opt("auto", "cuda, cuda:N or cpu (auto: this rank's GPU if any)")
    dtype: str = opt("fp32", "autocast precision on CUDA", choices=DTYPES)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def grid(self) -> dict[str, Any]:
        """The snippet grid of the store: one row per decoded frame unless a subclass says otherwise."""
        return {"window": 1, "stride": 1, "tail": "drop", "fps": self.fps}


@dataclass(kw_only=True)
class GridSpec(ExtractSpec):
    """Snippet features: ``window`` frames every ``stride`` frames (an extractor may change the
    defaults by redeclaring the field with a plain default; its help stays the one here)."""

    window: int = opt(16, "frames per snippet")
    stride: int = opt(4, "frames between snippet starts")
    tail: str = opt("drop", "frames after the last whole window: drop them, or pad a last snippet", choices=TAILS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"--window and --stride must be at least 1, got {self.window} and {self.stride}")
        if self.tail not in TAILS:
            raise ValueError(f"--tail must be one of {', '.join(TAILS)}, got {self.tail!r}")

    def grid(self) -> dict[str, Any]:
        return {"window": self.window, "stride": self.stride, "tail": self.tail, "fps": self.fps}
