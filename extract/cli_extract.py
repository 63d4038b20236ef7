"""``python -m extract EXTRACTOR``: snippet features from videos into a store, for every
registered extractor (:mod:`extract.extractors`): options from the extractor's spec, then
:func:`extract.run`; no model code here."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any


def add_source_args(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """Where videos come from and where the store goes (the spec's fields hold how)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video-dir", type=Path, help="folder of videos (searched recursively by extension)")
    src.add_argument("--list", type=Path, help="text file with one video path per line")
    src.add_argument("--frame-dir", type=Path, help="folders of frames, e.g. from `python -m extract frames`")
    p.add_argument("--id-style", default="auto", choices=("auto", "stem", "relative"),
                   help="video ids: stems when unique (auto), always stems, or relative paths")
    p.add_argument("--out", required=True, type=Path, help="store to create or resume")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    p.add_argument("--anonymize", type=Path, metavar="MAPPING",
                   help="store videos under keyed-hash ids of this mapping file (the one `extract annotations "
                        "convert --anonymize` wrote), and their paths nowhere")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return src


def _metadata(spec: type, name: str) -> typing.Mapping[str, Any]:
    """A field's option metadata: its own, else the nearest base class's (a subclass that only
    changes a default keeps the base's help)."""
    for cls in spec.__mro__:
        f = getattr(cls, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata:
            return f.metadata
    return {}


def add_spec_arguments(p: argparse.ArgumentParser, spec: type, inputs: argparse._MutuallyExclusiveGroup) -> None:
    """One option per field of the dataclass ``spec``, from its type, default and metadata
    (:func:`extract.spec.opt`); ``input`` fields join the ``inputs`` group. Fields with a parser
    take text, which the spec parses (a bad value is its one-line ``ValueError``)."""
    hints = typing.get_type_hints(spec)
    for f in dataclasses.fields(spec):
        meta = _metadata(spec, f.name)
        kind = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default
        text = meta.get("help", "") + (f" (default {default})" if default not in (None, False, "") else "")
        kwargs: dict[str, Any] = {"dest": f.name, "help": text}
        if kind is bool:
            kwargs.update(action="store_true")
        else:
            kwargs.update(type=kind if kind in (int, float, Path) else str, default=default,
                          choices=meta.get("choices"), required=required)
        (inputs if meta.get("input") else p).add_argument("--" + f.name.replace("_", "-"), **kwargs)


def spec_from_args(spec: type, args: argparse.Namespace) -> Any:
    """The ``spec`` dataclass of the parsed options (its checks raise ``ValueError``)."""
    return spec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(spec)})


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """One subcommand per registered extractor: the inputs plus its spec's fields."""
    from .extractors import EXTRACTORS

    for name, extractor in EXTRACTORS.items():
        p = sub.add_parser(name, help=extractor.help, description=extractor.help, epilog=extractor.examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_spec_arguments(p, extractor.spec, add_source_args(p))
        p.set_defaults(func=run_extractor, extractor=extractor)


def anonymized(sources, mapping: Path):
    """``sources`` under anonymised ids, named by those ids in stores and messages."""
    from .annotations.anonymize import anonymize_ids

    ids = anonymize_ids([s.video_id for s in sources], mapping)
    return [dataclasses.replace(s, video_id=ids[s.video_id], shown_as=ids[s.video_id]) for s in sources]


def sources_of(args: argparse.Namespace, spec: Any) -> list:
    """The inputs the options name: exactly one of --video-dir, --list, --frame-dir or a folder
    field of the spec (``--flow-dir``), anonymised with ``--anonymize``."""
    from .video.sources import find_videos

    own = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if _metadata(type(spec), f.name).get("input")}
    given = {k: v for k, v in {"video_dir": args.video_dir, "list": args.list, "frame_dir": args.frame_dir,
                               **own}.items() if v is not None}
    if len(given) != 1:
        names = ["--video-dir", "--list", "--frame-dir", *("--" + k.replace("_", "-") for k in own)]
        raise ValueError(f"give exactly one of {', '.join(names)}")
    frames = next((v for k, v in given.items() if k not in ("video_dir", "list")), None)
    sources = find_videos(args.video_dir, args.list, frames, args.id_style)
    return anonymized(sources, args.anonymize) if args.anonymize else sources


def run_extractor(args: argparse.Namespace) -> int:
    """The chosen extractor's spec from the options, its inputs, then :func:`extract.run`."""
    from .extraction import run
    from .store import StoreError
    from .weights import MissingWeightsError

    try:
        spec = spec_from_args(args.extractor.spec, args)
        sources = sources_of(args, spec)
        if not sources:
            raise SystemExit("error: no videos found")
        summary = run(spec, sources, args.out)
    except (FileNotFoundError, ValueError, MissingWeightsError, RuntimeError, StoreError) as exc:
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
