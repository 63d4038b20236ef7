"""``python -m detect report RUN``: one self-contained HTML page of a training run, readable
offline: config and feature recipe, metrics and their protocol, per-class AP, precision-recall
curves, the ``detect analyze`` figures, training curves, and the timelines of chosen videos
(the worst and best by AP, or named ones) with frame thumbnails when the videos are given."""
from __future__ import annotations

import json
import tempfile
import warnings
from html import escape
from pathlib import Path
from typing import Any

import yaml

from extract.annotations import load_annotations
from extract.atomic import write_text_atomically

from ..errors import DataError
from . import figures
from .page import figure, page, table
from .timeline import timeline_svg


def build_report(run: str | Path, out: str | Path, *, videos: str | Path | None = None,
                 video_ids: list[str] | None = None, per_end: int = 2) -> Path:
    """Write the page of run folder ``run`` to ``out``; ``per_end`` worst and best videos unless
    ``video_ids`` names them; ``videos``: the folder of the videos, for thumbnails."""
    run = Path(run)
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise DataError(f"{run} has no summary.json: give the folder of a finished `detect train` run")
    summary = json.loads(summary_path.read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    annotations_path = Path(cfg["data"]["annotations"])
    split = cfg["data"].get("test_split") or "test"
    predictions = next((Path(f) for f in summary.get("files", []) if Path(f).is_file()), None)
    sections = [("config", "Config and feature recipe", _config_section(run, cfg))]
    sections.append(("metrics", "Metrics", _metrics_section(summary)))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if predictions is not None:
            sections += _prediction_sections(summary, annotations_path, predictions, split, scratch, videos,
                                             video_ids, per_end)
        if (run / "log.jsonl").is_file():
            from ..plot import plot_curves

            svg = figures.inline_svg(plot_curves(run / "log.jsonl", scratch / "curves.svg"),
                                     "training loss per iteration and validation metric per epoch")
            sections.append(("training", "Training curves", figure(svg, "Training loss (left) and the validation "
                                                                        "metric per epoch (right).")))
    title = f"mamba-tad report: {run.name} ({summary['task']})"
    out = Path(out)
    write_text_atomically(out, page(title, sections))
    return out


def _config_section(run: Path, cfg: dict[str, Any]) -> str:
    html = ""
    checkpoint = run / "best.pt"
    if checkpoint.is_file():
        from ..engine import load_checkpoint

        recipe = load_checkpoint(checkpoint).get("recipe")
        html += ("<h3>Feature recipe</h3>" + (f"<pre>{escape(yaml.safe_dump(recipe, sort_keys=False))}</pre>" if recipe
                 else "<p>This checkpoint records no feature recipe (written before recipes were kept).</p>"))
    return html + f"<h3>Config</h3><pre>{escape(yaml.safe_dump(cfg, sort_keys=False))}</pre>"


def _metrics_section(summary: dict[str, Any]) -> str:
    from ..tasks import get_task

    task = get_task(summary["task"])
    rows = []
    for name in ("best_val", "test"):
        if name in summary:
            rows.append([name.replace("_", " "), task.headline(summary[name])])
    return table(["split", "result"], rows, f"{summary['task']} metric {summary['metric']}; protocol as stated")


def _prediction_sections(summary, annotations_path: Path, predictions: Path, split: str, scratch: Path, videos,
                         video_ids, per_end) -> list[tuple[str, str, str]]:
    from ..analysis import analyze
    from ..tasks import get_task

    if video_ids and summary["task"] != "segments":
        raise DataError(f"--video: timelines are drawn for segment runs; this run's task is {summary['task']!r}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(annotations_path, predictions, split, scratch / "analysis", task=summary["task"])
    sections = []
    per_class = result["standard"].get("per_class_ap")
    if per_class:
        rows = [[name, *(f"{100 * v:.2f}" for v in aps)] for name, aps in per_class.items()]
        thresholds = list(result["standard"].get("mAP", {})) or ["AP"]
        sections.append(("per-class", "Per-class AP", table(["class", *thresholds], rows, "AP (%) per class")))
    names = {"false_positive_profile": "DETAD false-positive profile and the gain of removing each error type",
             "sensitivity": "DETAD sensitivity: average-mAP_N and false negatives by ground-truth characteristic",
             "per_class_ap": "per-class AP", "missed_steps_by_length": "action steps missed, by action length"}
    svgs = [figure(figures.inline_svg(scratch / "analysis" / name, caption), caption.capitalize() + ".")
            for name, caption in ((f, names[Path(f).stem]) for f in result["figures"] if f.endswith(".svg"))]
    if summary["task"] == "segments":
        gt = load_annotations(annotations_path)
        results, _ = get_task("segments").read_predictions(predictions)   # validated, and read once (cached)
        database = {vid: v.to_dict() for vid, v in gt.database.items()}
        tiou = 0.5 if 0.5 in [float(t) for t in result["standard"]["mAP"]] else float(next(iter(result["standard"]["mAP"])))
        pr = figures.pr_curves(database, split, results, tiou, scratch / "pr.svg")
        sections.append(("pr", "Precision-recall", figure(figures.inline_svg(pr, f"precision-recall curves at tIoU {tiou:g}"),
                                                            f"Precision against recall per class at tIoU {tiou:g}.")))
        sections.append(("videos", "Videos", _video_section(database, split, results, videos, video_ids, per_end)))
    sections.append(("analysis", "Error analysis", "".join(svgs) or "<p>No figures for this task.</p>"))
    return sections


def _video_section(database, split, results, videos, video_ids, per_end) -> str:
    from ..metrics.detection_map import evaluate_detections

    ids = [vid for vid, e in database.items() if e["subset"].lower() == split.lower() and e["annotations"]]
    if video_ids:
        unknown = [v for v in video_ids if v not in database]
        if unknown:
            raise DataError(f"--video {unknown[0]!r} is not in the annotations")
        chosen = [(v, None) for v in video_ids]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ap = {vid: evaluate_detections({vid: database[vid]}, {vid: results.get(vid, [])}, split,
                                           [0.3, 0.5, 0.7]).average for vid in ids}
        ranked = sorted(ids, key=lambda v: ap[v])
        picks = list(dict.fromkeys(ranked[:per_end] + ranked[::-1][:per_end]))
        chosen = [(v, ap[v]) for v in picks]
    sources = {}
    if videos is not None:
        from extract.video.sources import find_videos

        sources = {s.video_id: s.path for s in find_videos(Path(videos))}
    html = ""
    for vid, ap in chosen:
        entry = database[vid]
        head = f"{vid}" + ("" if ap is None else f": AP {100 * ap:.1f} (mean over tIoU 0.3, 0.5, 0.7)")
        html += f"<h3>{escape(head)}</h3>"
        if vid in sources and entry.get("duration"):
            html += '<div class="thumbs">' + "".join(
                f'<figure><img src="{uri}" alt="frame of {escape(vid)} at {t:.1f} s"><figcaption>{t:.1f} s'
                f'</figcaption></figure>' for t, uri in figures.thumbnails(sources[vid], entry["duration"])) + "</div>"
        html += figure(timeline_svg(vid, entry["annotations"], results.get(vid, []), entry.get("duration")),
                       "Ground truth (green, upper) and the top 30 detections (blue, lower; opacity = score). "
                       "Hover or focus a detection for its score.")
    return html or "<p>No annotated test videos.</p>"


__all__ = ["build_report"]
