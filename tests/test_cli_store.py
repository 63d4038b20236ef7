"""``extract inspect``, ``verify`` and ``recover`` on sound and damaged stores."""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from store_fixtures import store_info, video_ids, write_videos

from extract.cli import main
from extract.store import StoreWriter, open_store


@pytest.fixture
def store_path(tmp_path):
    ids = video_ids(6)
    with StoreWriter(tmp_path / "s", store_info(num_shards=4)) as w:
        write_videos(w, ids[1:])
        w.fail(ids[0], "zero-byte file")
    return tmp_path / "s"


def test_inspect_json_reports_counts_dims_grid_and_shards(store_path, capsys):
    assert main(["inspect", str(store_path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    store = open_store(store_path)
    assert s["videos"] == {"ok": 5, "failed": 1, "in_unsealed_segments": 0}
    assert s["trailing_dims"] == {"[256]": 5}
    assert s["rows"]["max"] == max(store.shape(v)[0] for v in store)
    assert s["grids"] == {"window 16, stride 4, offset 0, tail drop": 5}
    assert sum(row["videos"] for row in s["shards"].values()) == 5
    assert s["size_bytes"] == sum(p.stat().st_size for p in (store_path / "shards").iterdir())
    assert s["info"]["dtype"] == "float16"
    assert list(s["failures"].values()) == ["zero-byte file"]


def test_inspect_human_output(store_path, capsys):
    assert main(["inspect", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "5 ok, 1 failed" in out and "(T, 256)" in out and "zero-byte file" in out


def test_verify_passes_a_sound_store_and_fails_on_failures(tmp_path, store_path, capsys):
    assert main(["verify", str(store_path)]) == 1  # the failed video makes it incomplete
    assert "zero-byte file" in capsys.readouterr().out
    with StoreWriter(tmp_path / "ok", store_info()) as w:
        write_videos(w, video_ids(3))
    assert main(["verify", str(tmp_path / "ok")]) == 0
    assert "store is sound" in capsys.readouterr().out


def _tamper(store_path, value):
    with open_store(store_path) as store:
        vid = store.ids[0]
        segment = store.segment_of(vid)
    with h5py.File(segment, "r+") as f:
        dset = f["videos"][[n for n in f["videos"] if f["videos"][n].attrs["video_id"] == vid][0]]
        dset[3, 7] = value
    return vid


def test_verify_catches_silent_corruption(tmp_path, capsys):
    with StoreWriter(tmp_path / "s", store_info()) as w:
        write_videos(w, video_ids(3))
    vid = _tamper(tmp_path / "s", 123.0)
    assert main(["verify", str(tmp_path / "s"), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert len(problems) == 1 and vid in problems[0] and "checksum mismatch" in problems[0]


def test_verify_flags_nan(tmp_path, capsys):
    with StoreWriter(tmp_path / "s", store_info()) as w:
        write_videos(w, video_ids(3))
    vid = _tamper(tmp_path / "s", np.nan)
    assert main(["verify", str(tmp_path / "s")]) == 1
    out = capsys.readouterr().out
    assert f"video {vid!r}: 1 NaN/Inf values" in out


def test_verify_reports_unsealed_segments_and_recover_seals_them(tmp_path, capsys):
    ids = video_ids(4)
    w = StoreWriter(tmp_path / "s", store_info(num_shards=1))
    write_videos(w, ids)
    w._shards[0].segment.abandon()
    w._shards[0].lock.close()
    assert main(["verify", str(tmp_path / "s")]) == 1
    assert "python -m extract recover" in capsys.readouterr().out
    assert main(["recover", str(tmp_path / "s")]) == 0
    assert "sealed 4 videos" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "s")]) == 0


def test_cli_errors_are_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "extract", "inspect", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: no store at {tmp_path / 'nope'}: not a directory"
