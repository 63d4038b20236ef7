"""End-to-end I3D extraction on synthetic videos (tiny frames, random weights saved to a file)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_i3d import published_state_dict
from videos import make_video

from extract.models.flow import FlowStream, load_raft
from extract.runner import Plan, Stream, extract
from extract.store import StoreInfo, count_snippets, open_store
from extract.video.decode import DecodeSpec
from extract.video.sources import find_videos

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "a").mkdir()
    (root / "b").mkdir()
    make_video(root / "a" / "clip", 40, fps=25.0, width=80, height=64)
    make_video(root / "b" / "clip", 21, fps=30.0, width=64, height=80, codec="mjpeg")  # same stem
    make_video(root / "short one", 9, fps=30.0)                                           # < one window
    (root / "broken.mp4").write_bytes(b"\x00" * 1000)
    return root


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "i3d_random.pt"
    torch.save(published_state_dict(), path)
    return path


def _run(args, check=True):
    proc = subprocess.run([sys.executable, "-m", "extract", "i3d", *map(str, args)], capture_output=True, text=True,
                          timeout=240)
    if check:
        assert proc.returncode in (0, 1), proc.stderr
    return proc


def test_cli_extracts_every_readable_video_and_records_failures(videos, weights_file, tmp_path):
    args = ["--video-dir", videos, "--out", tmp_path / "s", "--weights", weights_file, "--size", 64, "--device", "cpu",
            "--workers", 2, "--batch-size", 3, "--json"]
    proc = _run(args)
    assert proc.returncode == 1  # one broken video
    summary = json.loads(proc.stdout)
    assert summary["written"] == 3 and list(summary["failed"]) == ["broken"]
    store = open_store(tmp_path / "s")
    assert store.ids == ["a/clip", "b/clip", "short one"]   # colliding stems become relative paths
    for vid, frames in [("a/clip", 40), ("b/clip", 21), ("short one", 9)]:
        meta = store.meta(vid)
        assert meta.num_frames == frames and store.shape(vid) == (count_snippets(frames, 16, 4), 1024)
        assert meta.decoder and meta.grid.window == 16 and meta.grid.stride == 4
    assert store.info.model["sha256"] and store.info.preprocessing["size"] == 64
    assert "no video stream" in store.failures["broken"]
    again = json.loads(_run(args + ["--keep-going"]).stdout)  # resume: nothing left but the failure
    assert again["written"] == 0 and again["skipped"] == 4


def test_features_do_not_depend_on_batch_size_or_workers(videos, weights_file, tmp_path):
    out = {}
    for batch, workers in [(1, 0), (7, 2)]:
        path = tmp_path / f"s{batch}"
        _run(["--video-dir", videos, "--out", path, "--weights", weights_file, "--size", 64, "--device", "cpu",
              "--workers", workers, "--batch-size", batch, "--keep-going"])
        store = open_store(path)
        out[batch] = {vid: store.read(vid) for vid in store}
    for vid in out[1]:
        # fp32 convs pick other algorithms per batch size: differences of ~1e-5 on features of
        # magnitude ~3 are accumulation order, a wrong snippet or frame would differ by ~1
        scale = np.abs(out[1][vid]).max()
        np.testing.assert_allclose(out[1][vid], out[7][vid], rtol=1e-4, atol=2e-5 * scale)


def test_missing_weights_name_the_download_command(videos, tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_TAD_PRETRAINED", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = _run(["--video-dir", videos, "--out", tmp_path / "s", "--device", "cpu"], check=False)
    assert proc.returncode != 0 and "python -m extract download i3d-rgb-imagenet" in proc.stderr


def test_rgb_and_flow_streams_share_the_grid(videos, weights_file, tmp_path):
    from extract.extractors.i3d import i3d_model

    torch.manual_seed(0)
    raft = load_raft("raft_small", "cpu", pretrained=False)
    rgb, _ = i3d_model(str(weights_file), torch.device("cpu"))
    flow_state = published_state_dict(in_channels=2)
    torch.save(flow_state, tmp_path / "flow.pt")
    flow, _ = i3d_model(str(tmp_path / "flow.pt"), torch.device("cpu"))
    plan = Plan([Stream("rgb", rgb), Stream("flow", flow, flow=lambda: FlowStream(raft, torch.device("cpu"), iterations=2))],
                DecodeSpec(size=128), batch_size=4)
    sources = [s for s in find_videos(videos) if s.video_id in ("a/clip", "short one")]
    summary = extract(sources, tmp_path / "both", StoreInfo(feature="i3d_both", dtype="float32", num_shards=2), plan,
                      workers=0, progress=False)
    assert summary["written"] == 2 and not summary["failed"]
    store = open_store(tmp_path / "both")
    assert store.shape("a/clip") == (count_snippets(40, 16, 4), 2048)
    assert store.shape("short one") == (1, 2048)


def test_precomputed_flow_folders(weights_file, tmp_path):
    """TV-L1-style x_/y_ images (denseflow layout) go straight into the flow I3D."""
    import json as _json

    from PIL import Image

    flow_weights = tmp_path / "flow.pt"
    torch.save(published_state_dict(in_channels=2), flow_weights)
    folder = tmp_path / "flow" / "video_a"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 24):
        for axis in "xy":
            Image.fromarray(rng.integers(100, 156, (48, 64), dtype=np.uint8)).save(folder / f"{axis}_{i:05d}.jpg")
    (folder / "frames.json").write_text(_json.dumps({"fps": 30.0}))
    proc = _run(["--flow-dir", tmp_path / "flow", "--stream", "flow", "--flow-weights", flow_weights,
                 "--out", tmp_path / "s", "--size", 64, "--device", "cpu", "--workers", 0, "--json"])
    assert proc.returncode == 0, proc.stderr
    store = open_store(tmp_path / "s")
    assert store.shape("video_a") == (count_snippets(23, 16, 4), 1024)
    assert store.info.preprocessing["flow"].startswith("precomputed")
    assert store.meta("video_a").decoder.startswith("flow images")


def test_torchrun_ranks_split_the_videos(videos, weights_file, tmp_path):
    import os

    common = ["--video-dir", videos, "--out", tmp_path / "s", "--weights", weights_file, "--size", 64, "--device",
              "cpu", "--workers", 0, "--json", "--keep-going"]
    written = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        proc = subprocess.run([sys.executable, "-m", "extract", "i3d", *map(str, common)], capture_output=True,
                              text=True, timeout=240, env=env)
        assert proc.returncode == 0, proc.stderr
        written.append(json.loads(proc.stdout)["written"])
    from extract.store.layout import owner_rank, shard_of

    good = ["a/clip", "b/clip", "short one"]
    owned = [sum(owner_rank(shard_of(v, 16), 2) == rank for v in good) for rank in range(2)]
    assert written == owned  # each rank wrote exactly its own share
    assert open_store(tmp_path / "s").ids == good


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_killing_only_the_main_process_leaves_no_lock_behind(weights_file, tmp_path):
    """An OOM kill hits the main process only; its decoding workers live on for a while. They
    must not keep the shard locks: resume and `extract recover` work at once."""
    import os
    import signal
    import time

    (tmp_path / "v").mkdir()
    for i in range(6):
        make_video(tmp_path / "v" / f"clip{i}", 120, fps=25.0, width=64, height=64, seed=i)
    args = [sys.executable, "-m", "extract", "i3d", "--video-dir", str(tmp_path / "v"), "--out", str(tmp_path / "s"),
            "--weights", str(weights_file), "--size", "64", "--device", "cpu", "--workers", "2", "--batch-size", "2",
            "--shards", "2"]
    main = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (len(list((tmp_path / "s" / "locks").glob("shard-*.lock"))) == 2
                                           and len(_children(main.pid)) >= 2):
        time.sleep(0.05)
    workers = _children(main.pid)
    assert len(workers) >= 2, "the run never started its workers"
    os.kill(main.pid, signal.SIGKILL)
    main.wait()
    try:
        alive = [w for w in workers if os.path.exists(f"/proc/{w}")]
        assert alive, "the workers died with the main process: nothing to test"
        recover = subprocess.run([sys.executable, "-m", "extract", "recover", str(tmp_path / "s")],
                                 capture_output=True, text=True, timeout=120)
        assert recover.returncode == 0, recover.stderr
        resume = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=240)
        assert resume.returncode == 0, resume.stderr
        assert len(open_store(tmp_path / "s")) == 6
    finally:
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_short_decode_is_reported_and_refused_with_strict(weights_file, tmp_path):
    (tmp_path / "v").mkdir()
    whole = make_video(tmp_path / "whole", 180, fps=30.0, width=64, height=64, extra=["-movflags", "+faststart"])
    (tmp_path / "v" / "cut.mp4").write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.4)])
    args = ["--video-dir", tmp_path / "v", "--weights", weights_file, "--size", 64, "--device", "cpu", "--workers", 0]
    proc = _run(args + ["--out", tmp_path / "s", "--json"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["written"] == 1
    assert "of the 180 frames its container promises" in summary["warnings"]["cut"][0]
    meta = open_store(tmp_path / "s").meta("cut")
    assert meta.duration == pytest.approx(meta.num_frames / 30) and meta.extra["warnings"]
    inspect = subprocess.run([sys.executable, "-m", "extract", "inspect", str(tmp_path / "s")], capture_output=True,
                             text=True)
    assert "warning    cut: decoded" in inspect.stdout
    strict = _run(args + ["--out", tmp_path / "strict", "--strict", "--json"])
    assert strict.returncode == 1 and "of the 180 frames" in json.loads(strict.stdout)["failed"]["cut"]


def test_python_api_runs_the_spec_as_the_cli_does(videos, weights_file, tmp_path):
    import extract
    from extract.extractors.i3d import I3DSpec

    _run(["--video-dir", videos, "--out", tmp_path / "cli", "--weights", weights_file, "--size", 64, "--device", "cpu",
          "--workers", 0, "--stride", 8, "--keep-going"])
    spec = I3DSpec(weights=str(weights_file), size=64, device="cpu", workers=0, stride=8)
    summary = extract.run(spec, [videos / "a" / "clip.mp4", videos / "short one.mp4"], tmp_path / "api")
    assert summary["written"] == 2 and not summary["failed"]
    cli, api = open_store(tmp_path / "cli"), open_store(tmp_path / "api")
    assert api.info.grid == cli.info.grid == {"window": 16, "stride": 8, "tail": "drop", "fps": "native"}
    for ours, theirs in [(api.read("clip"), cli.read("a/clip")), (api.read("short one"), cli.read("short one"))]:
        # other batches of snippets (the CLI also had b/clip): accumulation order, ~1e-5 (as above)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5 * np.abs(theirs).max())
    with pytest.raises(ValueError, match="RAFT flow needs frames of at least 128 px"):
        I3DSpec(stream="both", size=64)
    with pytest.raises(ValueError, match="--stride must be at least 1|--window and --stride must be at least 1"):
        I3DSpec(stride=0)


def test_a_disk_too_small_for_the_rest_is_refused_early_and_the_written_videos_kept(weights_file, tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("one", "two"):
        make_video(tmp_path / "in" / name, 20, fps=25.0, width=64, height=48)
    script = f"""
import collections, shutil, sys
Usage = collections.namedtuple("Usage", "total used free")
shutil.disk_usage = lambda path: Usage(10**9, 10**9 - 1000, 1000)  # 1000 bytes free: no second video fits
from extract.cli import main
sys.exit(main(["i3d", "--video-dir", {str(tmp_path / 'in')!r}, "--out", {str(tmp_path / 's')!r}, "--weights", {str(weights_file)!r}, "--size", "64",
               "--device", "cpu", "--workers", "0"]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "the 1 videos left need about" in proc.stderr and "the 1 videos written are kept" in proc.stderr
    assert len(open_store(tmp_path / "s")) == 1  # sealed, and the rerun resumes from it


@pytest.mark.parametrize("decoder", ["auto", "ffmpeg"])
def test_workers_hand_frames_over_in_shared_memory(videos, decoder):
    """Chunks cross from the decoding workers as shared-memory tensors, equal to the decoded frames
    (a numpy array would be pickled through a pipe; the pipe's read-only buffers are copied, not warned about)."""
    import warnings

    from extract.runner import _as_is, _Decoded
    from extract.video.decode import decode_all
    from extract.video.sources import Source

    path = videos / "a" / "clip.mp4"
    spec = DecodeSpec(size=32, spatial="resize", decoder=decoder, chunk=16)
    loader = torch.utils.data.DataLoader(_Decoded([Source("a", path)], spec), batch_size=None,
                                         collate_fn=_as_is, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items = list(loader)
    chunks = [payload for kind, _, payload in items if kind == "chunk"]
    assert [kind for kind, _, _ in items][-1] == "end" and len(chunks) == 3
    assert all(isinstance(c, torch.Tensor) and c.is_shared() and c.dtype == torch.uint8 for c in chunks)
    np.testing.assert_array_equal(torch.cat(chunks).numpy(), decode_all(path, spec)[0])
