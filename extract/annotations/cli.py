"""``python -m extract annotations convert|check``."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..cli_types import POSITIVE
from .check import check
from .convert import CONVERTERS, ConvertOptions
from .schema import AnnotationError, load_annotations

EXAMPLES = """
examples:
  python -m extract annotations convert --from thumos-txt annotation/ --dataset thumos14 \\
      --meta-from thumos14_durations.json --out thumos14.json
  python -m extract annotations convert --from charades-csv Charades_v1_test.csv --dataset charades --out test.json
  python -m extract annotations convert --from tsu smarthome_CS_51.json --fps 25 --out tsu.json
  python -m extract annotations convert --from swallow swallow.json --dataset vfss_swallow --anonymize \\
      --mapping private/vfss_ids.json --out vfss.json
  python -m extract annotations check thumos14.json --dataset thumos14 --store stores/thumos14_i3d --subset test
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("annotations", help="convert annotations to the canonical JSON; check them",
                       description="Canonical annotations (docs/ANNOTATIONS.md): convert native formats, check.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    c = verbs.add_parser("convert", help="native format -> canonical JSON", epilog=EXAMPLES,
                         description="Convert a native annotation format to the canonical JSON (docs/ANNOTATIONS.md).",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--from", dest="fmt", required=True, choices=sorted(CONVERTERS), help="native format")
    c.add_argument("input", type=Path, help="native annotation file (a folder for thumos-txt and smg-finelabels)")
    c.add_argument("--out", required=True, type=Path, help="canonical JSON to write")
    c.add_argument("--dataset", help="dataset card id or path: class list (label ids) and native fps")
    c.add_argument("--fps", type=POSITIVE, help="fps for videos without one (and for frame units)")
    c.add_argument("--units", choices=("seconds", "frames"), default="seconds", help="time units of ms-temba files")
    c.add_argument("--subset", help="set every video's subset (e.g. for a file holding one split)")
    c.add_argument("--meta-from", type=Path, help="ActivityNet-style JSON with per-video duration/fps to fill in")
    c.add_argument("--anonymize", action="store_true", help="replace video ids by keyed hashes")
    c.add_argument("--mapping", type=Path, help="where --anonymize keeps its id mapping (default OUT.mapping.json)")
    c.set_defaults(func=run_convert)

    k = verbs.add_parser("check", help="report problems; exit 1 on errors",
                         description="Duplicates, zero-length, inverted or out-of-video segments, unknown labels, "
                                     "missing fps/duration, and videos missing from a store. Exit 1 on errors. "
                                     "Example: python -m extract annotations check thumos14.json --dataset thumos14 "
                                     "--store stores/thumos14_i3d --subset test")
    k.add_argument("file", type=Path, help="canonical annotation JSON")
    k.add_argument("--dataset", help="dataset card: its class list and task")
    k.add_argument("--store", help="feature store to compare video ids with")
    k.add_argument("--subset", help="only require the videos of this subset to be in the store")
    k.add_argument("--json", action="store_true", help="machine-readable output")
    k.set_defaults(func=run_check)


def _card(name: str | None):
    if name is None:
        return None
    from ..cards import CardError, load_card

    try:
        return load_card(name)
    except CardError as exc:
        raise SystemExit(f"error: {exc}") from None


def run_convert(args: argparse.Namespace) -> int:
    card = _card(args.dataset)
    try:
        meta = load_annotations(args.meta_from).database if args.meta_from else {}
        opts = ConvertOptions(classes=card.classes if card else None, fps=args.fps or (card.fps if card else None),
                              subset=args.subset, units=args.units, meta=meta)
        result = CONVERTERS[args.fmt](args.input, opts)
        if args.anonymize:
            from .anonymize import anonymize

            mapping = args.mapping or args.out.with_name(args.out.name + ".mapping.json")
            result = anonymize(result, mapping)
            print(f"id mapping in {mapping} (keep it private)")
    except AnnotationError as exc:
        raise SystemExit(f"error: {exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:  # a binary or malformed file where text is expected
        raise SystemExit(f"error: {args.input} is not a {args.fmt} text file ({type(exc).__name__}: {exc})") from None
    result.save(args.out)
    n_seg = sum(len(v.annotations) for v in result.database.values())
    subsets = sorted({v.subset for v in result.database.values()})
    print(f"wrote {args.out}: {len(result.database)} videos, {n_seg} annotations, "
          f"{len(result.classes)} classes, subsets {subsets}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    card = _card(args.dataset)
    try:
        result = load_annotations(args.file)
    except AnnotationError as exc:
        raise SystemExit(f"error: {exc}") from None
    store_ids = None
    if args.store:
        from ..store import StoreError, open_store

        try:
            store_ids = set(open_store(args.store).ids)
        except StoreError as exc:
            raise SystemExit(f"error: {exc}") from None
    findings = check(result, classes=card.classes if card else None,
                     task=card.task if card else "segment-detection", store_ids=store_ids, subset=args.subset)
    errors = sum(f.level == "error" for f in findings)
    if args.json:
        print(json.dumps({"file": str(args.file), "errors": errors, "warnings": len(findings) - errors,
                          "findings": [f.__dict__ for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f, file=sys.stdout)
        print(f"{len(result.database)} videos: {errors} errors, {len(findings) - errors} warnings")
    return 1 if errors else 0
