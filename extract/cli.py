"""``python -m extract``: feature extraction and dataset preparation.

Every command writes to or reads from a feature store (see docs/FORMAT.md). Run
``python -m extract COMMAND --help`` for a command's options and examples.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import cli_extract, clip_frames, frames, hub, pack
from .annotations import cli as annotations_cli
from .cli_errors import OneLineParser


def _open(path: str, strict: bool = True):
    from .store import StoreError, open_store

    try:
        return open_store(path, strict=strict)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _print_summary(s: dict) -> None:
    info = s["info"]
    model = info["model"] or {}
    sha = (model.get("sha256") or "")[:12]
    print(f"store      {s['path']}  (format v{info['format_version']}, id {info['store_id'][:8]})")
    print(f"feature    {info['feature']}  dtype {info['dtype']}  compression {info['compression'] or 'none'}")
    print(f"model      {model.get('name') or 'unknown'}" + (f"  sha256 {sha}…" if sha else ""))
    print(f"created    {info['created_at']} by {info['created_by']}")
    if info["preprocessing"]:
        print(f"preprocess {json.dumps(info['preprocessing'], sort_keys=True)}")
    v = s["videos"]
    print(f"videos     {v['ok']} ok, {v['failed']} failed, {v['in_unsealed_segments']} in unsealed segments")
    if s["rows"]:
        r = s["rows"]
        for dims, n in s["trailing_dims"].items():
            print(f"arrays     (T, {dims[1:-1]})  x{n}" if dims != "[]" else f"arrays     (T,)  x{n}")
        print(f"T          min {r['min']:.0f}  median {r['median']:.0f}  max {r['max']:.0f}")
        for grid, n in s["grids"].items():
            print(f"grid       {grid}  x{n}")
        f = s["grid_fps"]
        print(f"grid fps   min {f['min']:.3f}  median {f['median']:.3f}  max {f['max']:.3f}")
    print(f"size       {_human_bytes(s['size_bytes'])} in {s['segments']} segments, "
          f"{len(s['shards'])} of {info['num_shards']} shards used")
    if s["shards"]:
        print("\n  shard  segments  videos        size")
        for shard, row in s["shards"].items():
            print(f"  {int(shard):5d}  {row['segments']:8d}  {row['videos']:6d}  {_human_bytes(row['bytes']):>10}")
    for vid, err in s["failures"].items():
        print(f"failed     {vid}: {err}")
    for vid, warnings in s["warnings"].items():
        for warning in warnings:
            print(f"warning    {vid}: {warning}")
    for name, n in s["unsealed"].items():
        print(f"unsealed   {name}: {n} videos (live writer, or run `python -m extract recover`)")
    for problem in s["problems"]:
        print(f"problem    {problem}")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .store.report import summarize

    store = _open(args.store, strict=False)
    summary = summarize(store)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(summary)
    return 1 if store.problems else 0  # unreadable or stray files: the report says which


def cmd_verify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .store.report import verify

    store = _open(args.store, strict=False)
    problems = verify(store, progress=lambda ids: tqdm(ids, desc="verify", unit="video", disable=None))
    if args.pair:
        from .store.report import pair_problems

        problems += pair_problems(store, _open(args.pair, strict=False))
    if args.json:
        print(json.dumps({"store": args.store, "videos": len(store), "problems": problems}, indent=2))
    else:
        for problem in problems:
            print(f"problem: {problem}")
        if not store.info.meta_checksums:
            print("note: this store predates metadata checksums: its per-video metadata (grids, durations) could "
                  "not be checked; re-extract or re-pack it to have them covered")
        print(f"{len(store)} videos read, {len(problems)} problems" + ("" if problems else ": store is sound"))
    return 1 if problems else 0


def cmd_recover(args: argparse.Namespace) -> int:
    from .store import StoreError, recover_store

    try:
        recovered = recover_store(args.store)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"sealed {len(recovered)} videos left by interrupted writers in {args.store}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from .weights import listing

    rows = listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        size = f"{r['size_mb']:.1f} MB" if r["size_mb"] else "size unknown"
        state = f"cached at {r['cached']}" if r["cached"] else f"not downloaded: python -m extract download {r['name']}"
        print(f"{r['name']:<20} {size:>12}  {r['source']}\n{'':<20} {r['notes']}\n{'':<20} licence: {r['licence']}"
              f"\n{'':<20} {state}")
    print("CLIP weights come from open_clip by (architecture, pretrained tag); see `python -m extract clip --help`.")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .weights import download

    for name in args.names:
        if name.startswith("clip:"):  # open_clip fetches and caches its own weights
            from .extraction import resolve_device
            from .models.clip import load_clip
            from .weights import weights_dir

            _, arch, tag = name.split(":", 2)
            load_clip(arch, tag, resolve_device("cpu"), cache_dir=str(weights_dir() / "open_clip"))
            print(f"{name}: cached under {weights_dir() / 'open_clip'}")
            continue
        print(f"{name}: {download(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m extract", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_commands = [
        ("inspect", cmd_inspect, True, "summarise a store: videos, shapes, grid, size, shards, failures",
         "Summarise a store. Example: python -m extract inspect stores/thumos_i3d --json"),
        ("verify", cmd_verify, True, "read every array, check checksums and NaN/Inf; exit 1 on problems",
         "Read every array of a store, compare checksums, flag NaN/Inf, failed videos and unsealed "
         "segments; with --pair OTHER, also that both stores cover the same frames of the same videos (e.g. "
         "appearance features and skeleton heatmaps). Exit code 1 when anything is wrong. Example: "
         "python -m extract verify stores/vfss_i3d --pair stores/vfss_heatmaps"),
        ("recover", cmd_recover, False, "seal what killed writers left in a store's staging area",
         "Seal the videos that interrupted writers completed but did not seal. Resuming an extraction "
         "does this too. Example: python -m extract recover stores/thumos_i3d"),
    ]
    for name, func, has_json, help_text, description in store_commands:
        p = sub.add_parser(name, help=help_text, description=description)
        p.add_argument("store", help="store directory")
        if has_json:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "verify":
            p.add_argument("--pair", metavar="STORE", help="a store of the same videos that must cover the same frames")
        p.set_defaults(func=func)
    p = sub.add_parser("weights", help="list known model weights: source, size, licence, cached or not",
                       description="List the weights registry: source, size, licence, pinned revision and sha256, "
                                   "cached or not. Example: python -m extract weights --json")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_weights)
    p = sub.add_parser("download", help="download and verify model weights by name",
                       description="Download registry weights through huggingface_hub into pretrained/cache "
                                   "(or $MAMBA_TAD_PRETRAINED) and verify their sha256. "
                                   "Example: python -m extract download i3d-rgb-imagenet i3d-flow-imagenet")
    p.add_argument("names", nargs="+", help="registry names (see `python -m extract weights`), or clip:ARCH:TAG")
    p.set_defaults(func=cmd_download)
    cli_extract.add_parsers(sub)
    frames.add_parser(sub)
    clip_frames.add_parser(sub)
    pack.add_parser(sub)
    annotations_cli.add_parser(sub)
    hub.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .cli_errors import run_command

    args = build_parser().parse_args(argv)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
