"""``python -m detect``: train, evaluate and run temporal action detectors on feature stores.

Run ``python -m detect COMMAND --help`` for a command's options and examples.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXAMPLES = {
    "train": """examples:
  python -m detect train --config configs/thumos14_i3d_dbm.yaml
  python -m detect train --config configs/thumos14_i3d_dbm.yaml model.backbone.name=mamba-vim optim.lr=2e-4
  torchrun --nproc-per-node 4 -m detect train --config configs/activitynet_iv2_dbm.yaml
  python -m detect train --config configs/thumos14_i3d_dbm.yaml --resume     # continue runs/... exactly
""",
    "evaluate": """examples:
  python -m detect evaluate --annotations thumos14.json --detections runs/x/test_detections.json --split test \\
      --tiou 0.3,0.4,0.5,0.6,0.7 --clean-gt
  python -m detect evaluate --annotations anet.json --detections dets.json --dataset activitynet --json
""",
}


def resolve_checkpoint(spec: str) -> Path:
    """A local path, or ``hf://ORG/REPO/FILE`` downloaded (and cached) through huggingface_hub."""
    if not spec.startswith("hf://"):
        path = Path(spec)
        if not path.is_file():
            raise SystemExit(f"error: no checkpoint at {spec}")
        return path
    parts = spec[len("hf://"):].split("/", 2)
    if len(parts) != 3:
        raise SystemExit(f"error: {spec!r} is not hf://ORG/REPO/FILE")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(f"{parts[0]}/{parts[1]}", parts[2]))
    except LocalEntryNotFoundError:
        raise SystemExit(f"error: {spec} is not in the local Hugging Face cache and the Hub cannot be reached") from None
    except HfHubHTTPError as exc:
        raise SystemExit(f"error: cannot download {spec}: {exc}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .train import train

    try:
        cfg = load_config(args.config, args.overrides)
        summary = train(cfg, resume=args.resume, device=args.device, stop_after_epoch=args.stop_after_epoch)
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        best = summary["best_val"]
        if best["epoch"] >= 0:
            print(f"best validation average mAP {100 * best['average_mAP']:.2f} at epoch {best['epoch']}")
        if "test" in summary:
            test = summary["test"]
            per = "  ".join(f"@{k} {100 * v:.2f}" for k, v in test["mAP"].items())
            print(f"test average mAP {100 * test['average_mAP']:.2f}  ({per}; {test['protocol']})")
        print(f"outputs in {summary['output']}")
    return 0


def _load_run(checkpoint: str, overrides: list[str]):
    import torch

    from .config import load_config
    from .engine import load_checkpoint
    from .models.detector import ActionDetector

    state = load_checkpoint(resolve_checkpoint(checkpoint))
    cfg = load_config(None, overrides, base=state["config"])
    model = ActionDetector(cfg.model)
    model.load_state_dict(state.get("ema", state["model"]))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return cfg, model.to(device), device


def cmd_eval(args: argparse.Namespace) -> int:
    from .engine import build_datasets
    from .train import validate

    cfg, model, device = _load_run(args.checkpoint, args.overrides)
    annotations, classes, datasets = build_datasets(cfg)
    if args.split not in datasets:
        raise SystemExit(f"error: split {args.split!r} has no videos (have {sorted(datasets)})")
    result = validate(model, datasets[args.split], cfg, annotations, classes, device, args.split)
    result.pop("detections")
    print(json.dumps(result, indent=2) if args.json else
          f"{args.split} average mAP {100 * result['average_mAP']:.2f} ({result['protocol']})")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from extract.annotations import AnnotationSet, VideoAnnotations, load_annotations
    from extract.store import open_store

    from .data.dataset import DetectionDataset
    from .engine import fusion_from_config, make_loader, predict

    cfg, model, device = _load_run(args.checkpoint, args.overrides)
    stores = [open_store(p) for p in (args.store or cfg.data.stores)]
    ids = stores[0].ids
    # Class names as in training; durations from --annotations where known (else from the grid).
    annotations = load_annotations(args.annotations or cfg.data.annotations)
    classes = annotations.classes
    database = {vid: annotations.database.get(vid) or VideoAnnotations(subset="", duration=None, fps=None)
                for vid in ids}
    dataset = DetectionDataset(stores, AnnotationSet(database, classes), ids, classes, training=False,
                               downsample_rate=cfg.data.downsample_rate, resize_to=cfg.data.resize_to,
                               class_agnostic=cfg.data.class_agnostic)
    loader = make_loader(dataset, cfg.eval.batch_size, training=False, max_seq_len=cfg.data.max_seq_len,
                         multiple=model.max_stride, workers=cfg.data.num_workers, seed=cfg.seed)
    results = predict(model, loader, classes, device, fusion=fusion_from_config(cfg, classes))
    Path(args.out).write_text(json.dumps({"results": results}))
    print(f"wrote {sum(map(len, results.values()))} detections for {len(results)} videos to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import warnings

    from .metrics import evaluate_detections

    tiou, clean = None, args.clean_gt
    if args.dataset:
        from extract.cards import load_card

        card = load_card(args.dataset)
        tiou = card.evaluation.get("tiou")
        clean = clean or card.evaluation.get("protocol") == "clean-gt"
    if args.tiou:
        tiou = [float(t) for t in args.tiou.split(",")]
    tiou = tiou or [0.5 + 0.05 * i for i in range(10)]
    try:
        gt = json.loads(Path(args.annotations).read_text())["database"]
        dets = json.loads(Path(args.detections).read_text())
        results = dets["results"] if "results" in dets else dets
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise SystemExit(f"error: {exc}") from None
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = evaluate_detections(gt, results, args.split, tiou, clean_gt=clean,
                                     restrict_to_subset=args.restrict_to_subset)
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    if args.json:
        out = result.to_json()
        print(json.dumps({"mAP": out["mAP"], "average": out["average"], "protocol": out["protocol"],
                          "per_class_ap": out["per_class_ap"]}, indent=2))
        return 0
    print(f"protocol: {result.protocol}; subset {args.split!r}; {len(result.classes)} classes")
    header = "class".ljust(28) + "".join(f"{t:>8.2f}" for t in result.tiou)
    print(header)
    for i, name in enumerate(result.classes):
        print(name[:27].ljust(28) + "".join(f"{100 * a:8.2f}" for a in result.ap[:, i]))
    print("mAP".ljust(28) + "".join(f"{100 * m:8.2f}" for m in result.map) + f"   average {100 * result.average:.2f}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_timeline

    try:
        dets = json.loads(Path(args.detections).read_text())
        gt = json.loads(Path(args.annotations).read_text())["database"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise SystemExit(f"error: {exc}") from None
    results = dets.get("results", dets)
    if args.video not in gt and args.video not in results:
        raise SystemExit(f"error: video {args.video!r} is in neither {args.annotations} nor {args.detections}")
    entry = gt.get(args.video, {})
    out = plot_timeline(args.video, entry.get("annotations", []), results.get(args.video, []), args.out,
                        entry.get("duration"), args.top)
    print(f"wrote {out}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_checkpoint

    url = push_checkpoint(Path(args.checkpoint), args.repo_id, private=args.private)
    print(f"pushed {args.checkpoint} to {url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("train", help="train a detector from a YAML config", epilog=EXAMPLES["train"], formatter_class=raw)
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=2e-4")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt exactly")
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: the local GPU if any)")
    p.add_argument("--stop-after-epoch", type=int, help="checkpoint and stop after this epoch (resume later)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="evaluate a checkpoint on a split of its config's data")
    p.add_argument("--checkpoint", required=True, help="path or hf://ORG/REPO/FILE")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("overrides", nargs="*", help="key=value overrides of the stored config")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("infer", help="detect actions in every video of a store")
    p.add_argument("--checkpoint", required=True, help="path or hf://ORG/REPO/FILE")
    p.add_argument("--store", action="append", help="feature store(s), as many as training used (default: config's)")
    p.add_argument("--annotations", help="canonical annotations: video durations and class names")
    p.add_argument("--out", required=True, help="detections JSON (ActivityNet result format)")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_infer)
    p = sub.add_parser("evaluate", help="ActivityNet-style detection mAP of a detections file",
                       epilog=EXAMPLES["evaluate"], formatter_class=raw)
    p.add_argument("--annotations", required=True, help="ground truth (ActivityNet/canonical JSON)")
    p.add_argument("--detections", required=True, help='{"results": {video: [{label, score, segment}]}}')
    p.add_argument("--split", default="test", help="subset to evaluate (default test)")
    p.add_argument("--tiou", help="comma-separated thresholds (default: the card's, else 0.5:0.05:0.95)")
    p.add_argument("--dataset", help="dataset card: thresholds and protocol")
    p.add_argument("--clean-gt", action="store_true", help="drop duplicate and zero-length ground truth")
    p.add_argument("--restrict-to-subset", action="store_true", help="ignore predictions on videos outside --split")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("plot", help="draw ground truth and detections of one video on a timeline")
    p.add_argument("detections", help="detections JSON")
    p.add_argument("--annotations", required=True, help="ground-truth JSON")
    p.add_argument("--video", required=True, help="video id")
    p.add_argument("--out", required=True, help="image file (.png, .pdf, .svg)")
    p.add_argument("--top", type=int, default=30, help="best detections to draw (default 30)")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("push", help="upload a checkpoint, its config and a model card to the Hugging Face Hub")
    p.add_argument("checkpoint", help="best.pt or last.pt of a run")
    p.add_argument("repo_id", help="model repo, e.g. me/thumos14-i3d-dbm")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
