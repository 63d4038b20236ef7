"""``python -m detect``: train, evaluate and run models on feature stores, for three tasks:
segment detection, dense per-frame detection and clip classification.

Run ``python -m detect COMMAND --help`` for a command's options and examples.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from extract.cli_errors import OneLineParser
from extract.cli_types import COUNT, FRACTION, NON_NEGATIVE

from .errors import ConfigError, DetectError

EXAMPLES = {
    "demo": """examples:
  python -m detect demo                       # sample videos -> I3D store -> ActionMamba -> mAP and a plot
  python -m detect demo --task dense          # the same videos -> MS-Temba -> per-frame mAP and score curves
  python -m detect demo --task clips          # motion clips -> 8 frames each -> MSF-Mamba -> top-1 and confusion
  python -m detect demo --out /tmp/demo --json
""",
    "eval": """examples:
  python -m detect eval --checkpoint runs/thumos14_i3d_dbm/best.pt                 # the test split, as training
  python -m detect eval --checkpoint hf://me/thumos14-i3d-dbm/best.pt --split val --json
""",
    "upgrade": """examples:
  python -m detect upgrade runs/old/best.pt runs/old/best_upgraded.pt
  python -m detect upgrade my_old_config.yaml my_config.yaml
""",
    "plot": """examples:
  python -m detect plot runs/x/test_detections.json --annotations thumos14.json --video video_test_0000004 --out f.png
  python -m detect plot runs/x/test_frames.npz --annotations tsu.json --video P02T01C06 --out curves.png   # dense
""",
    "push": """examples:
  python -m detect push runs/thumos14_i3d_dbm/best.pt me/thumos14-i3d-dbm --private
""",
    "train": """examples:
  python -m detect train --config configs/thumos14_i3d_dbm.yaml
  python -m detect train --config configs/thumos14_i3d_dbm.yaml model.backbone.drop_path=0.2 optim.lr=2e-4
  torchrun --nproc-per-node 4 -m detect train --config configs/activitynet_iv2_6b_dbm.yaml
  python -m detect train --config configs/thumos14_i3d_dbm.yaml --resume     # continue runs/... exactly
""",
    "infer": """examples:
  python -m detect infer --checkpoint runs/x/best.pt --out test.json           # the config's test split
  python -m detect evaluate --annotations ann.json --predictions test.json --split test   # = training's number
  python -m detect infer --checkpoint runs/x/best.pt --split all --store stores/new --out all.json
  python -m detect infer --checkpoint runs/tsu/best.pt --out test.npz --scores-store stores/tsu_scores \\
      --segments test_segments.json --threshold 0.5 --merge-gap 2       # dense: scores as a store, segments
""",
    "models": """examples:
  python -m detect models
  python -m detect models --json | jq '.[] | {name, parameters}'
""",
    "evaluate": """examples:
  python -m detect evaluate --annotations thumos14.json --detections runs/x/test_detections.json --split test \\
      --tiou 0.3,0.4,0.5,0.6,0.7 --clean-gt
  python -m detect evaluate --annotations anet.json --detections dets.json --dataset activitynet --json
  python -m detect evaluate --annotations tsu.json --predictions runs/x/test_frames.npz --dataset tsu
  python -m detect evaluate --annotations charades.json --predictions runs/x/test_frames.npz \\
      --action-conditional 0,20,40
  python -m detect evaluate --annotations smg.json --predictions runs/x/test_clips.json --split test
""",
}


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .engine import train
    from .engine.distributed import is_main_process
    from .tasks import get_task

    summary = train(load_config(args.config, args.overrides), resume=args.resume, device=args.device,
                    stop_after_epoch=args.stop_after_epoch)
    if not is_main_process():  # under torchrun, rank 0 reports
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    task = get_task(summary["task"])
    best, metric = summary["best_val"], summary["metric"]
    if best["epoch"] >= 0:
        print(f"best validation {metric.replace('_', ' ')} {100 * best[metric]:.2f} at epoch {best['epoch']}")
    if "test" in summary:
        print(f"test {task.headline(summary['test'])}")
    print(f"outputs in {summary['output']}")
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _trained(args: argparse.Namespace):
    from .engine import load_trained
    from .engine.run import default_device

    device = default_device(args.device)
    cfg, model, _ = load_trained(args.checkpoint, args.overrides)
    return cfg, model.to(device), device


def cmd_eval(args: argparse.Namespace) -> int:
    from .engine import evaluate_split, prepare

    cfg, model, device = _trained(args)
    run = prepare(cfg)
    result = evaluate_split(model, run, run.video_ids(args.split), args.split, device)
    result.pop("predictions")
    print(json.dumps(result, indent=2) if args.json else f"{args.split} {run.task.headline(result)}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .engine import inference_run
    from .engine.run import predict_videos

    cfg, model, device = _trained(args)
    run = inference_run(cfg, args.store, args.annotations, args.split)
    if (args.scores_store or args.segments) and not hasattr(run.task, "write_score_store"):
        raise ConfigError(f"--scores-store and --segments apply to per-frame (dense) models; this one solves "
                          f"{run.task.name!r}")
    predictions = predict_videos(model, run, run.video_ids(args.split), device)
    written = run.task.write_predictions(predictions, Path(args.out))
    if args.scores_store:
        written.append(run.task.write_score_store(predictions, Path(args.scores_store)))
    if args.segments:
        written.append(run.task.write_segments(predictions, Path(args.segments), args.threshold, args.merge_gap))
    print(f"wrote {run.task.name} predictions for {len(predictions)} videos ({args.split}) to "
          f"{', '.join(map(str, written))}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .tasks import get_task

    summary = run_demo(args.out, args.device, args.task)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"\n{args.task} demo done in {summary['seconds']:.0f} s; test {get_task(args.task).headline(summary['test'])}")
    picture = {"segments": "a test clip's timeline", "dense": "a test clip's per-frame scores",
               "clips": "the test clips' confusion matrix"}[args.task]
    for what, key in [("sample videos", "videos"), ("their annotations", "annotations"),
                      ("features", "features"), ("trained model", "checkpoint"),
                      ("test predictions", "predictions"), (f"open this: {picture}", "picture")]:
        print(f"  {what:<44}{summary[key]}")
    if summary["random_init_features"]:
        print("  (features from a random I3D initialisation: python -m extract download i3d-rgb-imagenet "
              "for the real ones)")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from .engine.upgrade import upgrade_file

    cfg = upgrade_file(args.old, args.new)
    print(f"wrote {args.new}: model {cfg['model']['name']}, task {cfg['task']['name']}, streams "
          f"{cfg['data']['streams']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<20}{'task':<10}{'streams':<12}{'params':>10}  description")
    for r in rows:
        print(f"{r['name']:<20}{r['task']:<10}{','.join(r['streams']):<12}{r['parameters'] / 1e6:>9.2f}M  "
              f"{r['description']}")
    print("\nparameters at the default config (python -m detect models --json shows it); "
          "configs select one with model.name")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a predictions file against annotations: detection mAP, per-frame mAP or top-k."""
    from .engine.score import parse_tiou, score_file
    from .tasks import get_task

    given = {"tiou": parse_tiou(args.tiou) if args.tiou else None, "clean_gt": args.clean_gt,
             "restrict_to_subset": args.restrict_to_subset or None, "frame_map": args.frame_map,
             "action_conditional": args.action_conditional, "topk": args.topk}
    task, result = score_file(args.annotations, args.predictions, args.split, task=args.task, dataset=args.dataset,
                              settings={k: v for k, v in given.items() if v is not None})
    for note in result.pop("notes", []):
        print(f"warning: {note}", file=sys.stderr)
    print(json.dumps(result, indent=2) if args.json else f"subset {args.split!r}: {get_task(task).report(result)}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from extract.annotations import load_annotations

    from .tasks import get_task, task_for_predictions

    formats = _image_formats()
    if Path(args.out).suffix.lstrip(".").lower() not in formats:
        raise DetectError(f"--out {args.out}: the file name must end in one of .{', .'.join(sorted(formats))}")
    gt = load_annotations(args.annotations).database
    entry = gt[args.video].to_dict() if args.video in gt else {}
    task = get_task(task_for_predictions(args.detections))
    predictions, classes = task.read_predictions(Path(args.detections))
    if args.video not in gt and args.video not in predictions:
        raise DetectError(f"video {args.video!r} is in neither {args.annotations} nor {args.detections}")
    out = task.plot(args.video, entry, predictions.get(args.video), classes, Path(args.out), top=args.top)
    print(f"wrote {out}")
    return 0


def _image_formats() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_checkpoint

    address = push_checkpoint(Path(args.checkpoint), args.repo_id, private=args.private)
    print(f"pushed {args.checkpoint}; use it as --checkpoint {address}")
    return 0


def _command(sub: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` starts with its one-line description and ends with examples."""
    return sub.add_parser(name, help=text, description=text, epilog=EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m detect", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _command(sub, "demo", "the whole pipeline on built-in sample videos: extract, train, evaluate, plot")
    p.add_argument("--task", default="segments", choices=("segments", "dense", "clips"),
                   help="which task's pipeline (default segments)")
    p.add_argument("--out", default="runs/demo", help="folder for everything it writes (default runs/demo)")
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: the local GPU if any)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)
    p = _command(sub, "train", "train a model from a YAML config")
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=2e-4")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt exactly")
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: the local GPU if any)")
    p.add_argument("--stop-after-epoch", type=NON_NEGATIVE, help="checkpoint and stop after this epoch (resume later)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_train)
    p = _command(sub, "eval", "evaluate a checkpoint on a split of its config's data")
    p.add_argument("--checkpoint", required=True, help="path or hf://ORG/REPO[@REVISION][/FILE]")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("overrides", nargs="*", help="key=value overrides of the stored config")
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: the local GPU if any)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = _command(sub, "infer", "run a trained model on a split, or every video of a store")
    p.add_argument("--checkpoint", required=True, help="path or hf://ORG/REPO[@REVISION][/FILE]")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                   help="the config's split (default test, as training reports it), or every video of the store")
    p.add_argument("--store", action="append", help="feature store(s), as many as training used (default: config's)")
    p.add_argument("--annotations", help="canonical annotations: video durations and class names")
    p.add_argument("--out", required=True, help="predictions file: detections JSON (segments), .npz (dense), "
                                                 "JSON (clips)")
    p.add_argument("--scores-store", metavar="DIR", help="dense: also write the per-frame scores as a feature store")
    p.add_argument("--segments", metavar="JSON", help="dense: also write segments (runs of frames scoring >= "
                                                      "--threshold) as a detections JSON")
    p.add_argument("--threshold", type=FRACTION, default=0.5, help="dense: score threshold of --segments (default 0.5)")
    p.add_argument("--merge-gap", type=NON_NEGATIVE, default=0, metavar="STEPS",
                   help="dense: merge runs at most this many steps apart (default 0)")
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: the local GPU if any)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_infer)
    p = _command(sub, "upgrade", "rewrite a checkpoint or config of an earlier layout in today's")
    p.add_argument("old", help="best.pt / last.pt, or a .yaml config, written before the task section (or before "
                               "model.name)")
    p.add_argument("new", help="where to write the upgraded checkpoint or config")
    p.set_defaults(func=cmd_upgrade)
    p = _command(sub, "models", "list the registered models: task, input streams, parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    p = _command(sub, "evaluate", "score a predictions file: detection mAP, per-frame mAP or top-k")
    p.add_argument("--annotations", required=True, help="ground truth (ActivityNet/canonical JSON)")
    p.add_argument("--predictions", "--detections", dest="predictions", required=True,
                   help='detections JSON {"results": {video: [{label, score, segment}]}}, or a dense .npz / clips '
                        'JSON written by train or infer')
    p.add_argument("--split", default="test", help="subset to evaluate (default test)")
    p.add_argument("--task", help="segments, dense or clips (default: the --dataset card's, else the file's format)")
    p.add_argument("--dataset", help="dataset card: task, thresholds and protocol")
    p.add_argument("--tiou", help="segments: comma-separated thresholds (default: the card's, else 0.3:0.1:0.7)")
    p.add_argument("--clean-gt", action=argparse.BooleanOptionalAction, default=None,
                   help="segments: merge overlapping ground truth first (default: the card's protocol, else on)")
    p.add_argument("--restrict-to-subset", action="store_true",
                   help="segments: ignore predictions on videos outside --split")
    p.add_argument("--frame-map", help="dense: per-frame mAP mode: full, sampled-25 (the official Charades 25 "
                                       "time points) or ms-tct-25 (MS-TCT/MS-Temba's sampled_25); default: the "
                                       "card's, else full")
    p.add_argument("--action-conditional", type=_int_list, metavar="TAUS",
                   help="dense: also MLAD's action-conditional metrics at these offsets, e.g. 0,20,40")
    p.add_argument("--topk", type=_int_list, metavar="KS", help="clips: accuracies to report (default 1,5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    p = _command(sub, "plot", "draw ground truth and detections (or per-frame scores) of one video")
    p.add_argument("detections", help="detections JSON, or a dense .npz of per-frame scores")
    p.add_argument("--annotations", required=True, help="ground-truth JSON")
    p.add_argument("--video", required=True, help="video id")
    p.add_argument("--out", required=True, help="image file (.png, .pdf, .svg)")
    p.add_argument("--top", type=COUNT, default=30, help="best detections to draw (default 30)")
    p.set_defaults(func=cmd_plot)
    p = _command(sub, "push", "upload a checkpoint, its config and a model card to the Hugging Face Hub")
    p.add_argument("checkpoint", help="best.pt or last.pt of a run")
    p.add_argument("repo_id", help="model repo, e.g. me/thumos14-i3d-dbm")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_push)
    from .cli_cascade import add_parsers as add_cascade_parsers

    add_cascade_parsers(sub)
    from .cli_results import add_parsers as add_result_parsers

    add_result_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from extract.cli_errors import run_command

    args = build_parser().parse_args(argv)
    return run_command(lambda: args.func(args), (DetectError,))
