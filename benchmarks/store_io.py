"""Store I/O against a folder of .npy files holding the same arrays.

Writes N videos of (rows, dim) arrays both ways, then reads random videos both ways, and
prints a table with the store / npy ratio. Each figure is the median of --repeats runs.

    python benchmarks/store_io.py                       # 400 x (2000, 2048) float16, 3.3 GB
    python benchmarks/store_io.py --videos 50 --repeats 1   # a quick look

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

from extract.store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta, open_store


def make_arrays(n: int, rows: int, dim: int, dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((rows, dim), dtype=np.float32).astype(dtype) for _ in range(n)]


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
    arrays = make_arrays(args.videos, args.rows, args.dim, args.dtype)
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


if __name__ == "__main__":
    main()
