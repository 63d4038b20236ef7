"""Decoding synthetic videos of several containers and codecs, and refusing broken ones, never hanging."""
import numpy as np
import pytest
from videos import CODECS, frame_content, make_vfr_video, make_video

from extract.video.decode import DecodeError, DecodeSpec, decode_all
from extract.video.ffmpeg import probe

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codecs_decode_to_the_known_frames_with_both_decoders(tmp_path, codec):
    path = make_video(tmp_path / f"clip 'quoted' {codec}", 37, fps=25.0, width=90, height=62, codec=codec)
    info = probe(path)
    assert (info.width, info.height, info.fps) == (90, 62, 25.0)
    frames, stream = decode_all(path, DecodeSpec(size=62, spatial="center-crop"))
    piped, piped_stream = decode_all(path, DecodeSpec(size=62, spatial="center-crop", decoder="ffmpeg"))
    assert frames.shape == piped.shape == (37, 62, 62, 3) and stream.frames == 37
    assert stream.decoder.startswith("decord") and piped_stream.decoder == "ffmpeg pipe"
    # blue encodes the frame index (40 + 7 i); lossy codecs keep it within a few levels
    expected = frame_content(37, 90, 62)[:, 31, 45, 2].astype(int)
    assert np.abs(frames[:, 31, 31, 2].astype(int) - expected).max() <= 6
    assert np.abs(frames.astype(int) - piped.astype(int)).mean() < 1.0


def test_resize_resample_odd_sizes_and_a_single_frame(tmp_path):
    path = make_video(tmp_path / "odd", 30, fps=30.0, width=77, height=51, codec="mjpeg")
    frames, _ = decode_all(path, DecodeSpec(size=32, spatial="resize"))
    assert frames.shape == (30, 32, 32, 3)
    resampled, stream = decode_all(path, DecodeSpec(size=32, fps=10.0))
    assert resampled.shape[0] == 10 and stream.fps == 10.0 and stream.source_fps == 30.0
    one, _ = decode_all(make_video(tmp_path / "one", 1, fps=30.0), DecodeSpec(size=32))
    assert one.shape == (1, 32, 32, 3)


def test_variable_frame_rate_frames_sit_at_their_timestamps(tmp_path):
    """20 frames at 30 fps (0.67 s), then 20 at 15 fps (1.33 s): 2 s, 20 fps on average. The frame
    shown at 1.0 s is the second part's frame 5; indexing frames at the average rate would put
    that part's frame 0 there."""
    path = make_vfr_video(tmp_path / "vfr", frames=40)
    second = frame_content(20, 64, 48, seed=1)[:, 24, 32, 2].astype(int)
    for decoder in ("auto", "ffmpeg"):
        frames, stream = decode_all(path, DecodeSpec(size=32, decoder=decoder))
        assert stream.fps == 20.0 and frames.shape[0] == 40
        at_one_second = int(frames[20, 16, 16, 2])
        assert abs(at_one_second - second[5]) <= 6 and abs(at_one_second - second[0]) > 20
        if decoder == "auto":
            assert any("variable frame rate" in note for note in stream.notes)


def test_a_truncated_video_is_a_warning_or_with_strict_a_failure(tmp_path):
    whole = make_video(tmp_path / "whole", 180, fps=30.0, extra=["-movflags", "+faststart"])
    path = tmp_path / "cut.mp4"
    path.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.4)])  # the index up front claims 180
    frames, stream = decode_all(path, DecodeSpec(size=32))
    assert 0 < frames.shape[0] < 120
    assert stream.warnings == [f"decoded {frames.shape[0]} of the 180 frames its container promises "
                               f"({frames.shape[0] / 30:.2f} of 6.00 s): truncated or damaged file?"]
    assert stream.duration == pytest.approx(frames.shape[0] / 30)  # the real duration, not the header's
    with pytest.raises(DecodeError, match=r"cut.mp4: decoded \d+ of the 180 frames"):
        decode_all(path, DecodeSpec(size=32, strict=True))


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 200, "truncated"])
def test_broken_files_fail_clearly(tmp_path, content):
    path = tmp_path / "broken.mp4"
    if content == "truncated":
        data = make_video(tmp_path / "whole", 60).read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(DecodeError, match="broken.mp4"):
        decode_all(path, DecodeSpec(size=32))


def test_decoder_timeout_is_enforced(tmp_path):
    path = make_video(tmp_path / "slow", 300, width=640, height=480)
    with pytest.raises(DecodeError, match="longer than"):
        decode_all(path, DecodeSpec(size=224, decoder="ffmpeg", timeout=0.01))


def _torchcodec_usable() -> bool:
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads FFmpeg's libraries)
    except (ImportError, RuntimeError, OSError):
        return False
    return True


@pytest.mark.skipif(not _torchcodec_usable(), reason="torchcodec or FFmpeg's shared libraries are not installed")
def test_torchcodec_samples_by_timestamp_and_checks_the_length(tmp_path):
    path = make_video(tmp_path / "cfr", 60, fps=30.0, width=80, height=60)
    ours, stream = decode_all(path, DecodeSpec(size=48, decoder="torchcodec"))
    piped, _ = decode_all(path, DecodeSpec(size=48, decoder="ffmpeg"))
    assert stream.decoder.startswith("torchcodec") and ours.shape == piped.shape == (60, 48, 48, 3)
    assert np.abs(ours.astype(int) - piped.astype(int)).mean() < 2.0  # antialiased vs plain bilinear resize
    index = frame_content(60, 80, 60)[:, 30, 40, 2].astype(int)
    resampled, _ = decode_all(path, DecodeSpec(size=48, decoder="torchcodec", fps=10.0))
    assert np.abs(resampled[:, 24, 24, 2].astype(int) - index[::3]).max() <= 6  # frame 3k is shown at k / 10
    vfr = make_vfr_video(tmp_path / "vfr", frames=40)
    second = frame_content(20, 64, 48, seed=1)[:, 24, 32, 2].astype(int)
    frames, _ = decode_all(vfr, DecodeSpec(size=32, decoder="torchcodec"))
    assert abs(int(frames[20, 16, 16, 2]) - second[5]) <= 6
    whole = make_video(tmp_path / "whole", 120, fps=30.0, extra=["-movflags", "+faststart"])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    frames, stream = decode_all(cut, DecodeSpec(size=32, decoder="torchcodec"))
    assert stream.warnings and "of the 120 frames" in stream.warnings[0]


@pytest.mark.parametrize("decoder", ["decord", "ffmpeg"])
def test_decoder_threads_change_speed_not_frames(tmp_path, decoder):
    """Several threads per video (what the runner gives workers when there are fewer videos than
    workers) decode exactly the frames one thread does."""
    path = make_video(tmp_path / "threads", 70, fps=30.0, width=160, height=120, codec="h264")
    one, _ = decode_all(path, DecodeSpec(size=48, decoder=decoder, threads=1))
    several, _ = decode_all(path, DecodeSpec(size=48, decoder=decoder, threads=3))
    assert one.shape == (70, 48, 48, 3) and np.array_equal(one, several)
    with pytest.raises(ValueError, match="threads"):
        DecodeSpec(threads=-1)
