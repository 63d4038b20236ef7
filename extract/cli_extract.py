"""``python -m extract EXTRACTOR``: snippet features from videos into a store, for every
registered extractor (:mod:`extract.extractors`); no model code here."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DTYPES = ("fp32", "bf16", "fp16")

def add_input_args(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """Every extractor's options: where videos come from and go (:func:`add_source_args`) and
    how the model runs."""
    src = add_source_args(p)
    p.add_argument("--batch-size", type=int, default=32, help="snippets per GPU batch (default 32)")
    p.add_argument("--device", default="auto", help="cuda, cuda:N or cpu (auto: this rank's GPU if any)")
    p.add_argument("--dtype", default="fp32", choices=DTYPES, help="autocast precision on CUDA")
    return src


def add_source_args(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """Inputs, decoding and the output store (what commands without a model need too)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video-dir", type=Path, help="folder of videos (searched recursively by extension)")
    src.add_argument("--list", type=Path, help="text file with one video path per line")
    src.add_argument("--frame-dir", type=Path, help="folders of frames, e.g. from `python -m extract frames`")
    p.add_argument("--id-style", default="auto", choices=("auto", "stem", "relative"),
                   help="video ids: stems when unique (auto), always stems, or relative paths")
    p.add_argument("--out", required=True, type=Path, help="store to create or resume")
    p.add_argument("--fps", default="native", help="'native' or a frame rate to resample to (default native)")
    p.add_argument("--size", type=int, default=224, help="frame size fed to the model (default 224)")
    p.add_argument("--spatial", default="center-crop", choices=("center-crop", "resize"),
                   help="short side to --size then centre crop, or squash to --size x --size")
    p.add_argument("--decoder", default="auto", choices=("auto", "decord", "torchcodec", "ffmpeg"),
                   help="auto: decord when its frame count and timestamps check out, else an ffmpeg pipe "
                        "(by timestamp); torchcodec (optional) samples by timestamp with exact seeking")
    p.add_argument("--workers", type=int, default=4, help="decoding processes (default 4)")
    p.add_argument("--shards", type=int, default=16, help="shards of a new store")
    p.add_argument("--retry-failed", action="store_true", help="try again videos that failed before")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    p.add_argument("--strict", action="store_true",
                   help="fail a video that decodes short of its container's length (default: store it, warn)")
    p.add_argument("--anonymize", type=Path, metavar="MAPPING",
                   help="store videos under keyed-hash ids of this mapping file (the one `extract annotations "
                        "convert --anonymize` wrote), and their paths nowhere")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return src


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """One subcommand per registered extractor: the shared input options plus its own."""
    from .extractors import EXTRACTORS

    for name, extractor in EXTRACTORS.items():
        p = sub.add_parser(name, help=extractor.help, description=extractor.help, epilog=extractor.examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           conflict_handler="resolve")  # an extractor may redefine a shared option
        extractor.add_arguments(p, add_input_args(p))
        p.set_defaults(func=run_extractor, extractor=extractor)


def _device(name: str):
    import os

    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        # one GPU per process: torchrun's LOCAL_RANK, else the first GPU (never all of them)
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _plan(args: argparse.Namespace, streams, device, size: int, window: int, stride: int):
    """The runner's plan from the options every extractor shares."""
    import torch

    from .runner import Plan
    from .video.decode import DecodeSpec

    fps = None if args.fps == "native" else float(args.fps)
    autocast = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    decode = DecodeSpec(size=size, spatial=args.spatial, fps=fps, decoder=args.decoder, strict=args.strict)
    return Plan(streams, decode,
                window=window, stride=stride, tail=args.tail, batch_size=args.batch_size, device=device,
                autocast=autocast if device.type == "cuda" else None)


def anonymized(sources, mapping: Path):
    """``sources`` under anonymised ids, named by those ids in stores and messages."""
    import dataclasses

    from .annotations.anonymize import anonymize_ids

    ids = anonymize_ids([s.video_id for s in sources], mapping)
    return [dataclasses.replace(s, video_id=ids[s.video_id], shown_as=ids[s.video_id]) for s in sources]


def run_extractor(args: argparse.Namespace) -> int:
    """Build the chosen extractor, then decode, extract and store every video."""
    from .runner import extract
    from .store import StoreError
    from .video.sources import find_videos
    from .weights import MissingWeightsError

    device = _device(args.device)
    try:
        built = args.extractor.build(args, device)
        sources = find_videos(args.video_dir, args.list, args.frame_dir, args.id_style)
        if args.anonymize:
            sources = anonymized(sources, args.anonymize)
    except (FileNotFoundError, ValueError, MissingWeightsError, RuntimeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if not sources:
        raise SystemExit("error: no videos found")
    plan = _plan(args, built.streams, device, built.size, built.window, built.stride)
    try:
        summary = extract(sources, built.store or args.out, built.info, plan, workers=args.workers,
                          retry_failed=args.retry_failed)
        if built.after is not None:
            summary = built.after(summary)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None
    return report(summary, args)


def report(summary: dict, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'written':<10}{summary['written']:>8}\n{'skipped':<10}{summary['skipped']:>8}\n"
              f"{'failed':<10}{len(summary['failed']):>8}\n{'warnings':<10}{len(summary['warnings']):>8}\n"
              f"{'snippets':<10}{summary['snippets']:>8}\n{'time':<10}{summary['seconds']:>7.1f}s")
        for vid, error in summary["failed"].items():
            print(f"failed {vid}: {error}", file=sys.stderr)
        for vid, warnings in summary["warnings"].items():
            for warning in warnings:
                print(f"warning {vid}: {warning} (stored; --strict refuses such videos)", file=sys.stderr)
    return 1 if summary["failed"] and not args.keep_going else 0
