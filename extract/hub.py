"""``extract hub pull|push``: public feature sets from and to the Hugging Face Hub.

``pull`` downloads a dataset repo with ``huggingface_hub`` (resumable, cached in the usual HF
cache), joins split archives, extracts them safely, packs the per-video files into a store
with the grid the dataset card gives for that repo, and compares the result with the
annotations. ``push`` publishes a store and a generated card.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from .archives import UnsafeArchiveError, is_archive, join_parts, safe_extract
from .cards import CardError, DatasetCard, load_card
from .cli_types import COUNT, NON_NEGATIVE
from .errors import ExtractError
from .feature_files import FeatureFileError, collect_files
from .pack import PackSpec, fps_from_annotations, pack_files, print_summary
from .store import StoreError, open_store


class HubError(ExtractError, RuntimeError):
    """A Hub download or upload that cannot proceed; the message says what to do."""


def download_snapshot(repo_id: str, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """The local folder of a Hub dataset repo, downloaded (or resumed) through huggingface_hub."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, cache_dir=cache_dir))
    except GatedRepoError:
        raise HubError(f"{repo_id} is gated: accept its terms on the Hub, then `huggingface-cli login` "
                       "(or set HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise HubError(f"no dataset repo {repo_id!r} on the Hub (or it is private: log in)") from None
    except LocalEntryNotFoundError:
        raise HubError(f"{repo_id} is not in the local Hugging Face cache and the Hub cannot be reached "
                       "(HF_HUB_OFFLINE is set, or no network); download it on a connected machine first") from None


def _fps_lookup(card: DatasetCard, fps: float | str, annotations: Path | None) -> Callable[[str], tuple[float, Any]]:
    per_video = fps_from_annotations(annotations) if annotations else None
    if fps == "native":
        if per_video is None:
            raise HubError(f"the {card.id} features are on a native-fps grid: pass --annotations with per-video fps")
        return per_video

    def lookup(vid: str) -> tuple[float, Any]:
        duration = None
        if per_video is not None:
            try:
                duration = per_video(vid)[1]
            except FeatureFileError:
                pass
        return float(fps), duration

    return lookup


def pull(repo_id: str, card: DatasetCard, out: Path, *, annotations: Path | None = None,
         revision: str | None = None, work_dir: Path | None = None,
         snapshot: Callable[[str, str | None], Path] | None = None, dtype: str = "keep", shards: int = 16,
         workers: int = 4, retry_failed: bool = False) -> dict[str, Any]:
    """Download ``repo_id`` and pack it into the store ``out``. Returns the pack summary plus
    ``missing`` (annotated videos absent from the store) and ``unannotated``."""
    fs = card.feature_set(repo_id)
    folder = (snapshot or download_snapshot)(repo_id, revision)
    prefix, suffix = fs.prefix_suffix
    out.parent.mkdir(parents=True, exist_ok=True)
    # Extract next to the store: same filesystem, and the large temp data never fills /tmp.
    with tempfile.TemporaryDirectory(prefix=".hub-pull-", dir=work_dir or out.parent) as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "joined").mkdir()
        archives = join_parts(folder, tmp_dir / "joined")
        archives += [p for p in sorted(folder.rglob("*")) if p.is_file() and is_archive(p)]
        for i, archive in enumerate(archives):
            print(f"extracting {archive.name}", file=sys.stderr)
            safe_extract(archive, tmp_dir / "extracted" / f"{i:03d}")
        by_id = collect_files(folder, fs.format, prefix, suffix, flat=True)
        if (tmp_dir / "extracted").exists():
            extracted = collect_files(tmp_dir / "extracted", fs.format, prefix, suffix, flat=True)
            clash = set(by_id) & set(extracted)
            if clash:
                raise FeatureFileError(f"{len(clash)} videos both loose and inside archives, e.g. {sorted(clash)[0]!r}")
            by_id.update(extracted)
        if not by_id:
            raise HubError(f"{repo_id}: no files matching {fs.file_pattern!r} in the repo or its archives")
        spec = PackSpec(fmt=fs.format, window=fs.window, stride=fs.stride, tail=fs.tail, feature=f"{card.id}/{fs.name}",
                        model=fs.name, dtype=dtype, shards=shards, workers=workers, retry_failed=retry_failed,
                        grid_fps_note=fs.fps, preprocessing={"hub_repo": repo_id, "revision": revision})
        summary = pack_files(by_id, out, spec, _fps_lookup(card, fs.fps, annotations))
    if annotations is not None:
        from .annotations import load_annotations

        annotated = set(load_annotations(annotations).database)
        stored = set(open_store(out).ids)
        summary["missing"] = sorted(annotated - stored)
        summary["unannotated"] = sorted(stored - annotated)
    return summary


def store_card(store_path: Path, repo_id: str, card: DatasetCard | None) -> str:
    """A README for a pushed store: what it is and how to pull it back."""
    store = open_store(store_path)
    info = store.info
    lines = [f"# {info.feature}", "", f"Feature store written by {info.created_by} ({info.created_at}).", "",
             f"- videos: {len(store)}", f"- dtype: {info.dtype}", f"- grid: {json.dumps(info.grid)}",
             f"- model: {json.dumps(info.model)}", f"- preprocessing: {json.dumps(info.preprocessing)}"]
    if card is not None:
        lines += [f"- dataset: {card.name} ({card.id}); access: {card.access['licence']}"]
    lines += ["", "Format: the mamba-tad feature store (docs/FORMAT.md). Read it with",
              "", "```python", "from huggingface_hub import snapshot_download", "from extract.store import open_store",
              f'store = open_store(snapshot_download("{repo_id}", repo_type="dataset"))', "```", ""]
    return "\n".join(lines)


def push(store_path: Path, repo_id: str, *, card: DatasetCard | None = None, private: bool = False,
         api: Any = None) -> str:
    """Upload a sealed store (no staging or lock files) and its README to a dataset repo."""
    store = open_store(store_path)
    if store.unsealed:
        raise HubError(f"{store_path} has unsealed segments: finish or `python -m extract recover` it first")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_file(path_or_fileobj=store_card(store_path, repo_id, card).encode(), path_in_repo="README.md",
                    repo_id=repo_id, repo_type="dataset")
    api.upload_folder(folder_path=str(store_path), repo_id=repo_id, repo_type="dataset",
                      allow_patterns=["store.json", "shards/*.h5", "failures/*.jsonl"])
    return f"https://huggingface.co/datasets/{repo_id}"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hub", help="pull public feature sets from the Hugging Face Hub into stores; push stores",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""
examples:
  python -m extract hub pull cg1177/thumos14_internvideo2_6b_w16_s4 --dataset thumos14 \\
      --annotations thumos14.json --out stores/thumos14_iv2_6b --dtype float16
  python -m extract hub push stores/thumos14_i3d me/thumos14-i3d --dataset thumos14 --private
""")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    pl = verbs.add_parser("pull", help="download a feature repo and pack it into a store",
                          description="Download a public feature repo (at --revision, else its default branch) and "
                                      "pack it into a store.",
                          formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""
example:
  python -m extract hub pull cg1177/thumos14_internvideo2_6b_w16_s4 --dataset thumos14 \\
      --annotations thumos14.json --out stores/thumos14_iv2_6b --dtype float16
""")
    pl.add_argument("repo_id", help="Hub dataset repo, e.g. cg1177/thumos14_internvideo2_6b_w16_s4")
    pl.add_argument("--dataset", required=True, help="dataset card listing this repo's grid")
    pl.add_argument("--out", required=True, type=Path, help="store to create or resume")
    pl.add_argument("--annotations", type=Path, help="canonical annotations: per-video fps, and the missing-video report")
    pl.add_argument("--revision", help="branch, tag or commit of the repo")
    pl.add_argument("--work-dir", type=Path, help="where archives are extracted (default: beside --out)")
    pl.add_argument("--dtype", default="keep", help="storage dtype, e.g. float16 (default: as released)")
    pl.add_argument("--shards", type=COUNT, default=16)
    pl.add_argument("--workers", type=NON_NEGATIVE, default=4, help="threads loading files")
    pl.add_argument("--retry-failed", action="store_true")
    pl.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=run_pull)
    ps = verbs.add_parser("push", help="publish a store to a Hub dataset repo",
                          description="Publish a store to a Hugging Face dataset repo, with a README that cites the "
                                      "card. Example: python -m extract hub push stores/thumos14_i3d me/thumos14-i3d "
                                      "--dataset thumos14 --private")
    ps.add_argument("store", type=Path)
    ps.add_argument("repo_id")
    ps.add_argument("--dataset", help="dataset card to cite in the README")
    ps.add_argument("--private", action="store_true")
    ps.set_defaults(func=run_push)


def run_pull(args: argparse.Namespace) -> int:
    try:
        card = load_card(args.dataset)
        summary = pull(args.repo_id, card, args.out, annotations=args.annotations, revision=args.revision,
                       work_dir=args.work_dir, dtype=args.dtype, shards=args.shards, workers=args.workers,
                       retry_failed=args.retry_failed)
    except (CardError, HubError, StoreError, FeatureFileError, UnsafeArchiveError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print_summary(summary, args.json)
    if not args.json and "missing" in summary:
        print(f"{len(summary['missing'])} annotated videos missing from the store, "
              f"{len(summary['unannotated'])} stored videos without annotations")
        for vid in summary["missing"]:
            print(f"  missing {vid}")
    return 1 if summary["failed"] and not args.keep_going else 0


def run_push(args: argparse.Namespace) -> int:
    try:
        card = load_card(args.dataset) if args.dataset else None
        url = push(args.store, args.repo_id, card=card, private=args.private)
    except (CardError, HubError, StoreError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"pushed {args.store} to {url}")
    return 0
