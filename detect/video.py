"""``python -m detect video``: a trained model on new videos, features made by the recipe its
checkpoint records (:mod:`extract.recipe`): the same extractor, options, grid and weights (checked
by sha256) as the training stores, then the model and the task's post-processing.

Every extractor is built and its weights checked before any video is decoded, so a recipe that
cannot be reproduced here costs one line and no time.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from extract.recipe import RecipeError, check_model, spec_from_recipe

from .errors import DataError


def video_sources(inputs: list[str]) -> list:
    """Sources from video files and folders of videos (ids: file stems, as ``extract``)."""
    from extract.video.sources import VIDEO_EXTENSIONS, Source, find_videos

    sources = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            sources += find_videos(path)
        elif path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            sources.append(Source(path.stem, path))
        else:
            raise DataError(f"--videos {item}: neither a video file ({', '.join(VIDEO_EXTENSIONS)}) nor a folder")
    ids = [s.video_id for s in sources]
    if not ids:
        raise DataError(f"--videos {' '.join(inputs)}: no videos found")
    if len(set(ids)) != len(ids):
        raise DataError(f"two videos have the same name: {sorted({i for i in ids if ids.count(i) > 1})[:3]}")
    return sources


def read_recipe_files(values: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--recipe STREAM=FILE.yaml`` for streams whose recipe is unknown (imported features)."""
    out = {}
    for value in values or []:
        stream, sep, path = value.partition("=")
        if not sep:
            raise DataError(f"--recipe {value!r}: expected STREAM=FILE.yaml")
        try:
            recipe = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(f"--recipe {path}: {exc}") from None
        if not isinstance(recipe, dict) or "extractor" not in recipe:
            raise DataError(f"--recipe {path}: expected a mapping with 'extractor' and 'options'")
        out[stream] = recipe
    return out


def _prepare_stores(recipes: dict[str, list[dict[str, Any]]], given: dict[str, dict[str, Any]], root: Path,
                    device: str | None) -> dict[str, list[tuple[str, Any, Path]]]:
    """Every store's extractor built (weights loaded and compared) before any decoding."""
    from extract.clip_frames import ClipFramesSpec
    from extract.extraction import prepare

    unknown = sorted(set(given) - set(recipes))
    if unknown:
        raise DataError(f"--recipe {unknown[0]}: the model reads no stream of that name (it reads {sorted(recipes)})")
    prepared: dict[str, list[tuple[str, Any, Path]]] = {}
    for stream, entries in recipes.items():
        for k, entry in enumerate(entries):
            where = f"stream {stream!r} (training store {entry['store']})"
            name, spec = spec_from_recipe(given.get(stream) or entry["recipe"], where, {"clip-frames": ClipFramesSpec},
                                          device=device or "auto",
                                          workers=min(4, os.cpu_count() or 1))
            store = root / (stream if len(entries) == 1 else f"{stream}_{k}")
            if name == "clip-frames":
                prepared.setdefault(stream, []).append((name, spec, store))
                continue
            try:
                ready = prepare(spec, store)
            except (FileNotFoundError, ValueError) as exc:
                raise RecipeError(f"{where}: {exc}") from None
            check_model(entry["model"], ready.built.info.model, where)
            prepared.setdefault(stream, []).append((name, ready, store))
    return prepared


def _extract(prepared: dict[str, list[tuple[str, Any, Path]]], sources: list, progress: bool) -> None:
    from extract.clip_frames import write_clip_frames
    from extract.extraction import run

    for stream, stores in prepared.items():
        for name, ready, store in stores:
            summary = (write_clip_frames(ready, sources, store) if name == "clip-frames"
                       else run(ready, sources, progress=progress))
            if summary.get("failed"):
                vid, reason = next(iter(summary["failed"].items()))
                raise DataError(f"{len(summary['failed'])} videos could not be extracted for stream {stream!r}, "
                                f"e.g. {vid}: {reason}")


def detect_videos(checkpoint: str, inputs: list[str], out: str | Path, *, keep_features: str | Path | None = None,
                  recipes: dict[str, dict[str, Any]] | None = None, device: str | None = None, top: int = 30,
                  progress: bool = True) -> dict[str, Any]:
    """Predictions (and a timeline per video) of ``checkpoint`` on the videos ``inputs`` in ``out``."""
    from .engine import inference_run, load_checkpoint, load_trained, resolve_checkpoint
    from .engine.run import default_device, predict_videos

    path = resolve_checkpoint(checkpoint)
    state = load_checkpoint(path)
    recorded = state.get("recipe")
    if not recorded:
        raise RecipeError(f"{checkpoint} records no feature recipe (trained before recipes were kept): extract the "
                          f"videos as its training stores were, then `detect infer --split all --store ...`")
    sources = video_sources(inputs)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="detect-video-") as scratch:
        root = Path(keep_features) if keep_features else Path(scratch) / "features"
        prepared = _prepare_stores(recorded, recipes or {}, root, device)
        _extract(prepared, sources, progress)
        cfg, model, _ = load_trained(str(path))
        cfg.data.streams = {stream: [str(store) for _, _, store in stores] for stream, stores in prepared.items()}
        annotations = Path(cfg.data.annotations)
        if not annotations.is_file():   # a downloaded checkpoint: only the class names are needed
            annotations = Path(scratch) / "classes.json"
            annotations.write_text(json.dumps({"classes": state["classes"], "database": {}}))
        run = inference_run(cfg, annotations=str(annotations), split="all")
        dev = default_device(device)
        ids = [s.video_id for s in sources]
        predictions = predict_videos(model.to(dev), run, ids, dev)
        out.mkdir(parents=True, exist_ok=True)
        written = run.task.write_predictions(predictions, out / f"videos{run.task.prediction_suffix}")
        if run.task.name != "clips":
            for vid in ids:
                duration = run.task.streams.stores[next(iter(cfg.data.streams))][0].meta(vid).duration
                written.append(run.task.plot(vid, {"annotations": [], "duration": duration}, predictions[vid],
                                             run.task.classes, out / f"{vid}_timeline.png", top=top))
    return {"task": run.task.name, "videos": ids, "files": [str(p) for p in written],
            "features": str(keep_features) if keep_features else None}
