"""``extract.run(spec, videos, store)``: one registered extractor over videos into a store, from
Python as from ``python -m extract NAME`` (a thin layer over this)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable

from .errors import ExtractError
from .spec import ExtractSpec


def resolve_device(name: str):
    """``auto``: this rank's GPU if any (torchrun's ``LOCAL_RANK``), else the CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device (cuda, cuda:N, cpu or auto)") from None
    if device.type == "cuda" and device.index is None:
        # one GPU per process: torchrun's LOCAL_RANK, else the first GPU (never all of them)
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def as_sources(videos: Iterable[Any]) -> list:
    """Sources from :class:`~extract.video.sources.Source` objects or video paths (ids: stems)."""
    from .video.sources import Source

    sources = []
    for video in videos:
        if isinstance(video, Source):
            sources.append(video)
            continue
        path = Path(video)
        if not path.exists():
            raise FileNotFoundError(f"no video at {path}")
        sources.append(Source(path.stem if path.is_file() else path.name, path, is_frame_dir=path.is_dir()))
    ids = [s.video_id for s in sources]
    if len(set(ids)) != len(ids):
        raise ValueError("video ids collide: give videos with distinct names (or Sources with ids)")
    return sources


@dataclasses.dataclass
class Prepared:
    """An extractor built for a store (its model loaded): what :func:`run` needs before decoding."""

    spec: ExtractSpec
    store: Path
    built: Any                  # extract.extractors.Extraction
    device: Any

    @property
    def info(self):
        from .recipe import make_recipe

        return dataclasses.replace(self.built.info, grid=self.spec.grid(), num_shards=self.spec.shards,
                                   recipe=make_recipe(self.extractor.name, self.spec))

    @property
    def extractor(self):
        from .extractors import extractor_for

        return extractor_for(self.spec)


def prepare(spec: ExtractSpec, store: str | Path) -> Prepared:
    """Load the extractor that ``spec`` configures (its type names it: ``I3DSpec`` is ``i3d``)."""
    from .extractors import extractor_for

    device = resolve_device(spec.device)
    return Prepared(spec, Path(store), extractor_for(spec).build(spec, Path(store), device), device)


def run(spec: ExtractSpec | Prepared, videos: Iterable[Any], store: str | Path | None = None, *,
        progress: bool = True) -> dict[str, Any]:
    """Extract ``videos`` (paths or sources) into ``store`` with the extractor that ``spec``
    configures (or a :func:`prepare`-d one), resuming a store already there. Returns the summary:
    written, skipped, failed (with reasons), warnings, snippets, seconds."""
    import torch

    from .runner import Plan, extract
    from .video.decode import DecodeSpec

    prepared = spec if isinstance(spec, Prepared) else prepare(spec, store)
    spec, built, device = prepared.spec, prepared.built, prepared.device
    sources = as_sources(videos)
    if not sources:
        raise ExtractError("no videos to extract")
    grid = spec.grid()
    autocast = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[spec.dtype]
    decode = DecodeSpec(size=built.size, spatial=spec.spatial, fps=spec.decode_fps, decoder=spec.decoder,
                        strict=spec.strict)
    plan = Plan(built.streams, decode, window=grid["window"], stride=grid["stride"], tail=grid["tail"],
                batch_size=spec.batch_size, device=device, autocast=autocast if device.type == "cuda" else None)
    summary = extract(sources, built.store or prepared.store, prepared.info, plan, workers=spec.workers,
                      retry_failed=spec.retry_failed, progress=progress)
    return built.after(summary) if built.after is not None else summary
