"""Store I/O against a folder of .npy files holding the same arrays.

Writes N videos of (rows, dim) arrays both ways, then reads random videos both ways, and
prints a table with the store / npy ratio. Each figure is the median of --repeats runs.

    python benchmarks/store_io.py                       # 400 x (2000, 2048) float16, 3.3 GB
    python benchmarks/store_io.py --videos 50 --repeats 1   # a quick look
    python benchmarks/store_io.py --loader-workers 8 --videos 413 --rows 300 --rows-max 6000 \
        --dtype float32 --repeats 5                      # THUMOS14-sized, through a DataLoader

With ``--loader-workers N`` the writes are not timed; instead every video is read once per
repeat, in a shuffled order, through a ``torch.utils.data.DataLoader`` with N worker processes
(one video per item, as a detector's loader reads them): videos/s and GB/s for each format.

Write times include a final ``os.sync()``: without it they measure how fast the kernel takes
dirty pages, which swings 10x with the dirty-page limits, rather than the format.
Reads run on a warm page cache (the files were just written) unless --drop-caches is given
and the process may write /proc/sys/vm/drop_caches (root, outside most containers).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from extract.store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta, open_store


def make_arrays(n: int, rows: int, rows_max: int | None, dim: int, dtype: str) -> list[np.ndarray]:
    """``n`` arrays of ``rows`` (up to ``rows_max``, uniform) x ``dim``. With ``rows_max`` they are
    slices of one random block (an uncompressed format does not care what the values are, and
    THUMOS-sized sets would not fit in memory otherwise)."""
    rng = np.random.default_rng(0)
    if rows_max is None:
        return [rng.standard_normal((rows, dim), dtype=np.float32).astype(dtype) for _ in range(n)]
    lengths = rng.integers(rows, rows_max + 1, size=n)
    block = rng.standard_normal((int(lengths.max()), dim), dtype=np.float32).astype(dtype)
    return [block[:k] for k in lengths]


class NpyVideos:
    """A map-style dataset of the ``.npy`` folder: video i as a tensor."""

    def __init__(self, folder: Path, ids: list[str]) -> None:
        self.folder, self.ids = folder, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return torch.from_numpy(np.load(self.folder / f"{self.ids[i]}.npy"))


class StoreVideos(NpyVideos):
    """The same from the store (checksums verified), opened once per worker process."""

    store = None

    def __getitem__(self, i: int):
        self.store = self.store or open_store(self.folder)
        return torch.from_numpy(self.store.read(self.ids[i]))


def loader_epoch(dataset, workers: int, seed: int) -> float:
    """Seconds to read every video once, shuffled, through a DataLoader with ``workers`` processes."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(seed))
    return timed(lambda: [None for _ in loader])


def write_npy(folder: Path, arrays: list[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for i, a in enumerate(arrays):
        np.save(folder / f"video_{i:05d}.npy", a)


def write_store(folder: Path, arrays: list[np.ndarray], compression: str | None, durable: bool) -> None:
    info = StoreInfo(feature="bench", dtype=arrays[0].dtype.name, num_shards=16, compression=compression)
    with StoreWriter(folder, info, rank=0, world_size=1, durable=durable) as writer:
        for i, a in enumerate(arrays):
            grid = SnippetGrid(window=16, stride=4, fps=30.0, num_snippets=a.shape[0])
            writer.write(f"video_{i:05d}", a, VideoMeta(grid=grid, fps=30.0))


def read_all(read, order: list[str]) -> None:
    for vid in order:
        read(vid)  # the result is dropped at once, as a DataLoader worker hands it on


def read_store(folder: Path, order: list[str], verify: bool) -> None:
    store = open_store(folder)
    read_all(lambda vid: store.read(vid, verify=verify), order)


def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=400)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--rows-max", type=int, default=None, help="video lengths drawn uniformly in [rows, rows-max]")
    p.add_argument("--loader-workers", type=int, default=None, help="read through a DataLoader with N workers")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--dtype", default="float16")
    p.add_argument("--reads", type=int, default=2000, help="random video reads per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compression", default=None, choices=[None, "lzf", "gzip:1"])
    p.add_argument("--durable", action="store_true", help="fsync every video (power-loss safety)")
    p.add_argument("--drop-caches", action="store_true", help="read from a cold page cache if permitted")
    p.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="store_io_", dir=args.dir))
    arrays = make_arrays(args.videos, args.rows, args.rows_max, args.dim, args.dtype)
    total_mb = sum(a.nbytes for a in arrays) / 1e6
    ids = [f"video_{i:05d}" for i in range(args.videos)]
    results: dict[str, dict[str, list[float]]] = {"write+sync MB/s": {"npy": [], "store": []},
                                                  "random read videos/s": {"npy": [], "store": []}}
    writers = {"npy": lambda: write_npy(scratch / "npy", arrays),
               "store": lambda: write_store(scratch / "store", arrays, args.compression, args.durable)}
    readers = {"npy": lambda order: read_all(lambda vid: np.load(scratch / "npy" / f"{vid}.npy"), order),
               "store": lambda order: read_store(scratch / "store", order, verify=True),
               "unverified": lambda order: read_store(scratch / "store", order, verify=False)}
    results["random read videos/s"]["unverified"] = []
    if args.loader_workers is not None:
        loader_main(args, scratch, arrays, ids, writers, total_mb)
        return
    cold = False
    try:
        # Writes: both folders removed before each timed write, the order alternating, so that
        # neither format writes into a page cache already filled by the other.
        for rep in range(args.repeats):
            for name in (("npy", "store") if rep % 2 == 0 else ("store", "npy")):
                for folder in writers:
                    shutil.rmtree(scratch / folder, ignore_errors=True)
                os.sync()
                results["write+sync MB/s"][name].append(total_mb / timed(lambda: (writers[name](), os.sync())))
        for name, write in writers.items():
            shutil.rmtree(scratch / name, ignore_errors=True)
            write()
        os.sync()
        for rep in range(args.repeats):
            order = random.Random(rep).choices(ids, k=args.reads)
            for name in (("npy", "store", "unverified") if rep % 2 == 0 else ("unverified", "store", "npy")):
                cold = args.drop_caches and drop_caches()
                results["random read videos/s"][name].append(args.reads / timed(lambda: readers[name](order)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    table = {op: {k: statistics.median(v) for k, v in row.items()} for op, row in results.items()}
    spread = {op: {k: [min(v), max(v)] for k, v in row.items()} for op, row in results.items()}
    if args.json:
        print(json.dumps({"config": vars(args) | {"dir": str(args.dir)}, "results": table, "min_max": spread,
                          "peak_rss_mb": peak_mb, "cold_cache": cold}, indent=2))
        return
    print(f"{args.videos} videos x ({args.rows}, {args.dim}) {args.dtype} = {total_mb:.0f} MB, "
          f"compression {args.compression}, durable {args.durable}, "
          f"{'cold' if cold else 'warm'} page cache, median of {args.repeats}")
    print(f"{'operation':<24}{'npy folder':>12}{'store':>12}{'store/npy':>11}   (min-max npy | store)")
    for op, row in table.items():
        lo_hi = " | ".join(f"{spread[op][k][0]:.0f}-{spread[op][k][1]:.0f}" for k in ("npy", "store"))
        print(f"{op:<24}{row['npy']:>12.0f}{row['store']:>12.0f}{row['store'] / row['npy']:>11.2f}   ({lo_hi})")
    reads, lo_hi = table["random read videos/s"], spread["random read videos/s"]["unverified"]
    print(f"reads with the XXH3 check (the default) vs without: {reads['store']:.0f} vs {reads['unverified']:.0f} "
          f"videos/s ({lo_hi[0]:.0f}-{lo_hi[1]:.0f}), ratio {reads['store'] / reads['unverified']:.2f}")
    print(f"peak RSS {peak_mb:.0f} MB (includes the {total_mb:.0f} MB of arrays held in memory)")


def loader_main(args, scratch: Path, arrays, ids: list[str], writers: dict, total_mb: float) -> None:
    datasets = {"npy": NpyVideos(scratch / "npy", ids), "store": StoreVideos(scratch / "store", ids)}
    rates: dict[str, list[float]] = {name: [] for name in datasets}
    try:
        for write in writers.values():
            write()
        os.sync()
        for name, dataset in datasets.items():  # warm-up: page cache and worker start-up paths
            loader_epoch(dataset, args.loader_workers, seed=-1)
        for rep in range(args.repeats):
            for name in (("npy", "store") if rep % 2 == 0 else ("store", "npy")):
                rates[name].append(len(ids) / loader_epoch(datasets[name], args.loader_workers, seed=rep))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lengths = [a.shape[0] for a in arrays]
    table = {name: {"videos_s": statistics.median(r), "min_max": [min(r), max(r)],
                    "gb_s": statistics.median(r) * total_mb / len(ids) / 1e3} for name, r in rates.items()}
    ratios = [s / n for s, n in zip(rates["store"], rates["npy"])]
    if args.json:
        print(json.dumps({"config": vars(args) | {"dir": str(args.dir)}, "results": table,
                          "store_vs_npy": ratios}, indent=2))
        return
    print(f"{len(ids)} videos of {min(lengths)}..{max(lengths)} x {args.dim} {args.dtype} = {total_mb:.0f} MB, "
          f"DataLoader with {args.loader_workers} workers, one video per item, shuffled, warm page cache, "
          f"median (min-max) of {args.repeats} interleaved epochs")
    for name, row in table.items():
        print(f"{name:<6} {row['videos_s']:>8.1f} videos/s ({row['min_max'][0]:.1f}-{row['min_max'][1]:.1f})"
              f"  {row['gb_s']:>6.2f} GB/s")
    print(f"store / npy: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) within each epoch pair")


if __name__ == "__main__":
    main()
