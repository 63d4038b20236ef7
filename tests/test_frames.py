"""`extract frames` dumps, and extraction from frame folders matching direct decoding."""
import json

import numpy as np
import pytest
import torch
from test_i3d import published_state_dict
from videos import make_video

from extract.cli import main
from extract.video.decode import DecodeError, DecodeSpec, decode_all

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("v")
    make_video(root / "clip one", 37, fps=25.0, width=96, height=72)
    make_video(root / "clip two", 20, fps=30.0, width=72, height=96, codec="mjpeg")
    (root / "bad.mp4").write_bytes(b"junk" * 100)
    return root


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_frame_folders_match_direct_decoding(videos, tmp_path, fmt):
    assert main(["frames", "--video-dir", str(videos), "--out", str(tmp_path / "f"), "--format", fmt,
                 "--keep-going"]) == 0
    folder = tmp_path / "f" / "clip one"
    meta = json.loads((folder / "frames.json").read_text())
    assert meta["frames"] == 37 and meta["fps"] == 25.0 and len(list(folder.glob(f"*.{fmt}"))) == 37
    assert "bad" in (tmp_path / "f" / "failures.jsonl").read_text()
    spec = DecodeSpec(size=64)
    direct, _ = decode_all(videos / "clip one.mp4", spec)
    dumped, stream = decode_all(folder, spec)
    assert dumped.shape == direct.shape and stream.fps == 25.0
    # Stated tolerance: PIL's bilinear resize of the dumped frames vs ffmpeg's swscale on the
    # decoded ones (and JPEG at quality 2) differ by under 3 grey levels on average.
    assert np.abs(dumped.astype(int) - direct.astype(int)).mean() < 3.0


def test_i3d_features_from_frame_folders_match_the_videos(videos, tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(published_state_dict(), weights)
    main(["frames", "--video-dir", str(videos), "--out", str(tmp_path / "f"), "--format", "png", "--keep-going"])
    common = ["--weights", str(weights), "--size", "64", "--device", "cpu", "--workers", "0", "--keep-going"]
    assert main(["i3d", "--frame-dir", str(tmp_path / "f"), "--out", str(tmp_path / "from_frames"), *common]) == 0
    assert main(["i3d", "--video-dir", str(videos), "--out", str(tmp_path / "from_video"), *common]) == 0
    from extract.store import open_store

    a, b = open_store(tmp_path / "from_frames"), open_store(tmp_path / "from_video")
    assert a.ids == ["clip one", "clip two"] == b.ids
    for vid in a.ids:
        fa, fb = a.read(vid), b.read(vid)
        assert fa.shape == fb.shape
        assert np.linalg.norm(fa - fb) / np.linalg.norm(fb) < 0.05  # same tolerance, through a random I3D


def test_frame_folder_without_fps_is_refused(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "000001.png")
    with pytest.raises(DecodeError, match="pass --fps"):
        decode_all(folder, DecodeSpec(size=32))
    frames, stream = decode_all(folder, DecodeSpec(size=32, fps=12.0))
    assert frames.shape == (1, 32, 32, 3) and stream.fps == 12.0
