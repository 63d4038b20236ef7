"""Writer subprocess for the crash and concurrency tests.

usage: write_videos.py STORE N_VIDEOS [--rank R --world W] [--compression lzf] [--segment-bytes B]
Prints ``ready`` once the writer is open, then ``done ID`` after each video is written.
"""
import argparse
import sys

from store_fixtures import store_info, video_ids, write_videos

from extract.store import StoreWriter

parser = argparse.ArgumentParser()
parser.add_argument("store")
parser.add_argument("n", type=int)
parser.add_argument("--rank", type=int, default=0)
parser.add_argument("--world", type=int, default=1)
parser.add_argument("--compression", default=None)
parser.add_argument("--segment-bytes", type=int, default=2 << 30)
args = parser.parse_args()

with StoreWriter(args.store, store_info(args.compression), rank=args.rank, world_size=args.world,
                 max_segment_bytes=args.segment_bytes) as writer:
    print("ready", flush=True)
    write_videos(writer, video_ids(args.n), on_done=lambda vid: print(f"done {vid}", flush=True))
sys.exit(0)
