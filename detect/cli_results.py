"""``python -m detect analyze``, ``report`` and ``video``: what a researcher does with a trained
model (the logic is in :mod:`detect.analysis`, :mod:`detect.report` and :mod:`detect.video`)."""
from __future__ import annotations

import argparse
import json
import sys

from extract.cli_types import COUNT

EXAMPLES = {
    "analyze": """examples:
  python -m detect analyze --annotations runs/demo/sample/annotations.json \\
      --predictions runs/demo/run/test_detections.json --preset thumos14 --out runs/demo/analysis
  python -m detect analyze --annotations activity_net.v1-3.min.json --predictions dets.json --split validation \\
      --out analysis/ --json              # DETAD's ActivityNet bins, tIoU 0.5:0.05:0.95
  python -m detect analyze --annotations tsu.json --predictions runs/tsu/test_frames.npz --out analysis/  # dense
""",
    "video": """examples:
  python -m detect video --checkpoint runs/demo/run/best.pt --videos runs/demo/sample/videos --out runs/demo/new
  python -m detect video --checkpoint hf://me/thumos14-i3d-dbm@3f2c1a9 --videos match.mp4 --out dets/ \
      --keep-features stores/match     # the features stay as a normal store
  python -m detect video --checkpoint runs/x/best.pt --videos clips/ --recipe features=i3d_recipe.yaml --out o/
""",
    "report": """examples:
  python -m detect report runs/demo/run --videos runs/demo/sample/videos --out runs/demo/report.html
  python -m detect report runs/thumos14_i3d_dbm --video video_test_0000004 --out report.html
""",
}


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze
    from .engine.score import parse_tiou

    result = analyze(args.annotations, args.predictions, args.split, args.out, preset=args.preset,
                     tiou=parse_tiou(args.tiou) if args.tiou else None, dataset=args.dataset, task=args.task)
    for note in result.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(summary_lines(result))
    print(f"wrote {args.out}/analysis.json and {', '.join(result['figures'])}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from .video import detect_videos, read_recipe_files

    result = detect_videos(args.checkpoint, args.videos, args.out, keep_features=args.keep_features,
                           recipes=read_recipe_files(args.recipe), device=args.device, top=args.top)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['task']} predictions for {len(result['videos'])} videos: {', '.join(result['files'][:3])}"
          + (" ..." if len(result["files"]) > 3 else ""))
    if result["features"]:
        print(f"features kept in {result['features']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    out = build_report(args.run, args.out, videos=args.videos, video_ids=args.video, per_end=args.per_end)
    print(f"wrote {out}")
    return 0


def summary_lines(result: dict) -> str:
    """A few lines a person reads first."""
    if result["task"] == "segments":
        profile = result["false_positive_profile"]
        first = profile["fractions"][0]
        worst = max(profile["error_fix_gain"].items(), key=lambda kv: kv[1])
        errors = ", ".join(f"{name} {100 * v:.1f}%" for name, v in first.items() if v)
        return (f"average-mAP_N {100 * result['average_mAP_N']:.2f} ({len(result['tiou'])} tIoU thresholds, "
                f"N = {result['counts']['N']:.2f})\n"
                f"top-1G predictions: {errors}\n"
                f"fixing {worst[0]} errors would gain the most: +{100 * worst[1]:.2f} average-mAP_N")
    if result["task"] == "dense":
        misses = ", ".join(f"{k} {100 * v:.1f}%" for k, v in result["missed_steps_by_length"].items() if v is not None)
        return f"action steps missed at {result['threshold']:g} by length: {misses}"
    worst = sorted((v, k) for k, v in result["per_class_accuracy"].items() if v is not None)[:3]
    return "lowest per-class accuracy: " + ", ".join(f"{k} {100 * v:.1f}%" for v, k in worst)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from .analysis import PRESETS

    raw = argparse.RawDescriptionHelpFormatter
    text = "why a model misses: DETAD's false-positive profile, sensitivity and false negatives (segments)"
    p = sub.add_parser("analyze", help=text, description=text, epilog=EXAMPLES["analyze"], formatter_class=raw)
    p.add_argument("--annotations", required=True, help="ground truth (canonical or ActivityNet JSON; DETAD's "
                                                        "characteristic fields are used when present)")
    p.add_argument("--predictions", "--detections", dest="predictions", required=True,
                   help="detections JSON (segments), dense .npz or clips JSON, as train/infer write them")
    p.add_argument("--split", default="test", help="subset to analyse (default test)")
    p.add_argument("--out", required=True, help="folder for analysis.json and the figures (PNG and SVG)")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="segments: DETAD's bins and tIoU thresholds (default thumos14 for --dataset thumos14, "
                        "else activitynet: 0.5:0.05:0.95)")
    p.add_argument("--tiou", help="segments: comma-separated thresholds instead of the preset's")
    p.add_argument("--task", help="segments, dense or clips (default: the --dataset card's, else the file's format)")
    p.add_argument("--dataset", help="dataset card: task and protocol of the standard metric")
    p.add_argument("--json", action="store_true", help="print every number as JSON")
    p.set_defaults(func=cmd_analyze)
    text = "a trained model on new videos: features by its recorded recipe, then its predictions and timelines"
    p = sub.add_parser("video", help=text, description=text, epilog=EXAMPLES["video"], formatter_class=raw)
    p.add_argument("--checkpoint", required=True, help="best.pt of a run, or hf://ORG/REPO[@REVISION][/FILE]")
    p.add_argument("--videos", nargs="+", required=True, help="video files and/or folders of videos")
    p.add_argument("--out", required=True, help="folder for the predictions and one timeline per video")
    p.add_argument("--keep-features", metavar="DIR", help="keep the extracted features as stores under DIR "
                                                           "(one per stream; default: a temporary folder)")
    p.add_argument("--recipe", action="append", metavar="STREAM=FILE",
                   help="a recipe (YAML: extractor, options) for a stream whose training features were imported")
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: the local GPU if any)")
    p.add_argument("--top", type=COUNT, default=30, help="detections drawn per timeline (default 30)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_video)
    text = "one self-contained HTML page of a run: config, recipe, metrics, curves, error analysis, timelines"
    p = sub.add_parser("report", help=text, description=text, epilog=EXAMPLES["report"], formatter_class=raw)
    p.add_argument("run", help="a run folder of `detect train` (summary.json, config.yaml, predictions)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--videos", help="folder of the videos: frame thumbnails along each timeline")
    p.add_argument("--video", action="append", help="a video to show (repeatable; default: the worst and best by AP)")
    p.add_argument("--per-end", type=COUNT, default=2, help="how many worst and best videos (default 2)")
    p.set_defaults(func=cmd_report)
