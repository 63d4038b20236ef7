"""``python -m detect cascade`` and ``cascade-windows``: the two-stage cascade's commands
(:mod:`detect.tasks.segments.cascade` holds the logic)."""
from __future__ import annotations

import argparse
import json

from extract.cli_types import FRACTION, POSITIVE

from .errors import ConfigError

EXAMPLES = """examples:
  # stage-2 training data: 4.004 s windows around the ground-truth swallows
  python -m detect cascade-windows --stream features=stores/vfss_rgb,stores/vfss_flow \\
      --stream heatmaps=stores/vfss_heatmaps --annotations vfss.json --event AllTime --out stores/vfss_windows
  python -m detect train --config configs/vfss_stage1.yaml
  python -m detect train --config configs/vfss_sgmamba_stage2.yaml
  # the cascade on the test videos, then the card's protocol
  python -m detect cascade --stage1 runs/vfss_stage1/best.pt --stage2 runs/vfss_sgmamba_stage2/best.pt \\
      --stream heatmaps=stores/vfss_heatmaps --out runs/vfss_cascade_test.json
  python -m detect evaluate --annotations vfss.json --predictions runs/vfss_cascade_test.json --dataset vfss_swallow
  # stage 2's ceiling: ground-truth events instead of stage 1
  python -m detect cascade --oracle-stage1 --annotations vfss.json --stage2 runs/vfss_sgmamba_stage2/best.pt \\
      --stream features=stores/vfss_rgb,stores/vfss_flow --stream heatmaps=stores/vfss_heatmaps --out oracle.json
"""


def _streams(values: list[str] | None) -> dict[str, list[str]]:
    out = {}
    for value in values or []:
        name, sep, paths = value.partition("=")
        if not sep or not name or not paths:
            raise ConfigError(f"--stream {value!r}: expected NAME=STORE[,STORE...]")
        out[name] = paths.split(",")
    return out


def cmd_cascade(args: argparse.Namespace) -> int:
    from extract.annotations import load_annotations

    from .data.streams import StreamSet
    from .engine import inference_run
    from .tasks.segments.cascade import detected_events, ground_truth_events, run_cascade, save_detections
    from .engine.run import check_stream_shapes, default_device, predict_videos

    device = default_device()
    if args.oracle_stage1 == bool(args.stage1):
        raise ConfigError("give either --stage1 CKPT or --oracle-stage1 (with --annotations)")
    stage2 = [_detector(path, "stage 2") for path in args.stage2]
    streams = _streams(args.stream)
    if args.stage1:
        cfg1, model1 = _detector(args.stage1, "stage 1")
        if len(cfg1.data.trained_classes or []) != 1 and not cfg1.task.class_agnostic:
            raise ConfigError(f"stage 1 ({args.stage1}) detects {len(cfg1.data.trained_classes or [])} classes "
                              f"{(cfg1.data.trained_classes or [])[:5]}; the cascade needs a one-class event "
                              f"detector (train it with data.classes: [{args.event}])")
        run1 = inference_run(cfg1, annotations=args.annotations, split=args.split)
        ids = run1.video_ids(args.split)
        events = detected_events(predict_videos(model1.to(device), run1, ids, device), args.threshold)
        annotations = run1.task.annotations
        streams = {**cfg1.data.streams, **streams}
    else:
        if not args.annotations:
            raise ConfigError("--oracle-stage1 takes the events from --annotations")
        annotations = load_annotations(args.annotations)
        ids = sorted(annotations.subset(args.split))
        events = ground_truth_events(annotations, ids, args.event)
    for cfg, _ in stage2:
        missing = sorted(set(cfg.data.streams) - set(streams))
        if missing:
            raise ConfigError(f"stage 2 ({cfg.model.name}) reads streams {missing}: give them as --stream NAME=STORE "
                              "(full-video stores)")
    needed = {name for cfg, _ in stage2 for name in cfg.data.streams}
    opened = StreamSet.open({name: paths for name, paths in streams.items() if name in needed})
    opened.require(ids)
    for cfg, _ in stage2:
        if ids:
            check_stream_shapes(cfg, opened, ids[0])
    results = run_cascade(stage2, opened, annotations, events, args.window, device)
    save_detections(args.out, results)
    summary = {"videos": len(ids), "events": sum(len(e) for e in events.values()),
               "detections": sum(len(d) for d in results.values()), "stage1": "oracle" if args.oracle_stage1 else
               args.stage1, "out": args.out}
    print(json.dumps(summary, indent=2) if args.json else
          f"{summary['videos']} videos, {summary['events']} stage-1 events ({summary['stage1']}), "
          f"{summary['detections']} stage-2 detections -> {args.out}")
    return 0


def _detector(path: str, role: str):
    """``(cfg, model)`` of a segment-detector checkpoint; another task's is a one-line error."""
    from .engine import load_trained

    cfg, model, _ = load_trained(path)
    if cfg.task.name != "segments":
        raise ConfigError(f"{role} ({path}) is a {cfg.task.name!r} model ({cfg.model.name}); the cascade runs "
                          f"segment detectors")
    return cfg, model


def cmd_windows(args: argparse.Namespace) -> int:
    from .tasks.segments.cascade import write_windows

    streams = _streams(args.stream)
    if not streams:
        raise ConfigError("give the full-video stores as --stream NAME=STORE[,STORE...]")
    subsets = args.subsets.split(",") if args.subsets else None
    summary = write_windows(streams, args.annotations, args.event, args.window, args.out, subsets)
    print(json.dumps(summary, indent=2) if args.json else
          f"{summary['windows']} windows of {summary['videos']} videos -> {summary['out']} "
          f"(classes {', '.join(summary['classes'])})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    text = "two-stage cascade: stage-1 events, stage-2 detections in windows around them"
    p = sub.add_parser("cascade", help=text, description=text, epilog=EXAMPLES, formatter_class=raw)
    p.add_argument("--stage1", help="stage-1 checkpoint (one-class event detector)")
    p.add_argument("--oracle-stage1", action="store_true", help="ground-truth --event segments instead of stage 1")
    p.add_argument("--stage2", action="append", required=True,
                   help="stage-2 checkpoint; repeat for per-class models (their detections are merged)")
    p.add_argument("--stream", action="append", help="full-video stores of a stage-2 stream, NAME=STORE[,STORE]")
    p.add_argument("--annotations", help="annotations (default: stage 1's); with --oracle-stage1, required")
    p.add_argument("--split", default="test", help="videos to run (default test)")
    p.add_argument("--event", default="AllTime", help="the event class stage 1 detects (default AllTime)")
    p.add_argument("--threshold", type=FRACTION, default=0.23, help="stage-1 score threshold (default 0.23)")
    p.add_argument("--window", type=POSITIVE, default=4.004, help="stage-2 window, seconds (default 4.004)")
    p.add_argument("--out", required=True, help="detections JSON in video time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cascade)
    text = "stage-2 training data: windows around ground-truth events"
    p = sub.add_parser("cascade-windows", help=text, description=text, epilog=EXAMPLES, formatter_class=raw)
    p.add_argument("--stream", action="append", required=True, help="full-video stores, NAME=STORE[,STORE]")
    p.add_argument("--annotations", required=True)
    p.add_argument("--event", default="AllTime", help="the event class the windows are centred on")
    p.add_argument("--window", type=POSITIVE, default=4.004, help="seconds (default 4.004)")
    p.add_argument("--subsets", help="comma-separated subsets to cut (default: all)")
    p.add_argument("--out", required=True, help="folder for the window stores and annotations.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_windows)
