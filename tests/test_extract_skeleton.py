"""Skeleton heatmaps: a traced TorchScript landmark model through the real torch.jit.load path,
maps at the right pixels, the smoother against noisy tracks, person following, and the pair check."""
import numpy as np
import pytest
import torch
from videos import make_video

from extract.cli import main
from extract.skeleton.maps import FrameGeometry, RenderSpec, video_maps
from extract.skeleton.render import VFSS_EDGES, render_maps
from extract.skeleton.smooth import smooth_tracks
from extract.skeleton.track import follow_person
from extract.store import open_store
from extract.store.report import pair_problems
from extract.weights import sha256_of

pytestmark = pytest.mark.timeout(300)
PEAKS = [(10, 8), (12, 30), (20, 20), (40, 10), (44, 24), (50, 38), (55, 12), (60, 40)]  # (row, col) on 64 x 48


class FixedLandmarks(torch.nn.Module):
    """Heatmaps (n, 8, 64, 48) peaking at PEAKS with height ``level`` times the input's mean brightness
    plus 0.5 (so a dark video gives low confidence)."""

    def __init__(self, level: float) -> None:
        super().__init__()
        maps = torch.zeros(8, 64, 48)
        for k, (r, c) in enumerate(PEAKS):
            maps[k, r, c] = 1.0
        self.register_buffer("maps", maps)
        self.level = level

    def forward(self, x):
        return self.maps[None] * self.level * torch.ones(x.shape[0], 1, 1, 1)


def traced(path, level=0.9):
    torch.jit.save(torch.jit.trace(FixedLandmarks(level), torch.zeros(2, 3, 256, 192)), str(path))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("vfss")
    make_video(root / "swallow", 21, fps=30.0, width=96, height=64)
    return root


def _run(videos, out, weights, *extra):
    return main(["skeleton", "--video-dir", str(videos), "--out", str(out), "--pose", "vfss", "--pose-weights",
                 str(weights), "--frame-size", "96", "--sigma", "2", "--device", "cpu", "--workers", "0", *extra])


def test_vfss_landmarks_become_keypoints_and_heatmaps_on_the_frame_grid(videos, tmp_path):
    assert _run(videos, tmp_path / "maps", traced(tmp_path / "tiny.pt")) == 0
    with open_store(tmp_path / "maps") as maps, open_store(tmp_path / "maps_keypoints") as kps, \
            open_store(tmp_path / "maps_pose") as pose:
        heat, points = maps.read("swallow"), kps.read("swallow")
        assert heat.shape == (21, 56, 56) and heat.dtype == np.float16 and points.shape == (21, 8, 3)
        expected = np.array([[(c + 0.5) / 48, (r + 0.5) / 64] for r, c in PEAKS])
        np.testing.assert_allclose(points[..., :2], np.broadcast_to(expected, (21, 8, 2)), atol=1e-6)
        np.testing.assert_allclose(points[..., 2], 0.9, atol=1e-6)
        meta = maps.meta("swallow")
        assert meta.extra["source_size"] == [96, 64] and meta.extra["warnings"] == []
        box = meta.extra["crop_box"]  # keypoints and their margin inside the crop, original-frame pixels
        px = expected * [96, 64]
        assert box[0] <= px[:, 0].min() and px[:, 0].max() <= box[2] and box[1] <= px[:, 1].min()
        assert px[:, 1].max() <= box[3] <= 64
        assert maps.info.extra["render"]["sigma"] == 2 and maps.grid("swallow") == pose.grid("swallow")
        assert maps.info.extra["cell"] == [1 / 48, 1 / 64]  # the landmark model's heatmap cell
        for store in (maps, kps, pose):  # what made the keypoints, to the byte
            assert store.info.model["sha256"] == sha256_of(tmp_path / "tiny.pt")
        assert 0.4 < heat.max() <= 0.9 + 1e-3  # fusion = mean of keypoint and limb maps at confidence 0.9
        assert pair_problems(maps, pose) == []


def test_edges_are_configurable_and_checked(videos, tmp_path):
    weights = traced(tmp_path / "tiny.pt")
    assert _run(videos, tmp_path / "one_limb", weights, "--edges", "0-7", "--maps", "limbs") == 0
    with open_store(tmp_path / "one_limb") as maps:
        assert maps.info.extra["render"]["edges"] == [[0, 7]] and maps.read("swallow").max() > 0.85
    with pytest.raises(SystemExit, match="--edges name keypoint 8, but the vfss model has 8 keypoints"):
        _run(videos, tmp_path / "bad", weights, "--edges", "0-8")


def test_a_video_without_confident_keypoints_gets_zero_maps_and_a_warning(videos, tmp_path):
    assert _run(videos, tmp_path / "maps", traced(tmp_path / "dark.pt", level=0.05)) == 0
    with open_store(tmp_path / "maps") as maps:
        assert not maps.read("swallow").any()
        (warning,) = maps.meta("swallow").extra["warnings"]  # where docs/FORMAT.md says warnings are
        assert "no keypoint above confidence" in warning


def test_keypoint_and_limb_maps_sit_at_the_right_pixels():
    # the crop box is the 64 x 64 frame itself, so output pixel (row v, col u) is frame point (u + 0.5, v + 0.5)
    points = torch.tensor([[[10.5, 20.5], [40.5, 20.5], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]]])
    conf = torch.tensor([[0.8, 0.6, 0, 0, 0, 0, 0, 0]])
    keypoints, limbs = render_maps(points, conf, (0, 0, 64, 64), 64, 2.0, VFSS_EDGES)
    assert keypoints.shape == (1, 64, 64)
    assert keypoints[0, 20, 10] == pytest.approx(0.8) and keypoints[0, 20, 40] == pytest.approx(0.6)
    assert keypoints[0, 20, 25] < 1e-6 and keypoints[0].argmax() == 20 * 64 + 10
    # edge (0, 1) joins them: the limb map is min(conf) along row 20 between columns 10 and 40
    np.testing.assert_allclose(limbs[0, 20, 10:41].numpy(), 0.6, atol=1e-6)
    assert limbs[0, 24, 25] == pytest.approx(0.6 * np.exp(-16 / 8), rel=1e-5)  # 4 px off the segment
    assert limbs[0, 20, 50] == pytest.approx(0.6 * np.exp(-100 / 8), rel=1e-4)  # 10 px past its end
    assert limbs[0, 2:10].max() < 1e-6  # far from every limb with a confident end


CELL = 4.0  # px: a 64 x 48 heatmap cell of a 256 x 192 frame


def moving_track(distance, frames, seed, length=60, start=20, back=35):
    """A landmark that moves ``distance`` px over ``frames`` frames, holds, and moves back (a
    swallow's excursion), observed at heatmap-argmax precision: uniform error within a cell."""
    t = np.arange(length, dtype=float)
    x = 100 + distance * (np.clip((t - start) / frames, 0, 1) - np.clip((t - back) / frames, 0, 1))
    truth = np.stack([x, np.full(length, 80.0)], -1)[:, None]  # (T, 1, 2)
    observed = truth + np.random.default_rng(seed).uniform(-CELL / 2, CELL / 2, truth.shape)
    return truth, torch.from_numpy(observed)


@pytest.mark.parametrize("confidence", [0.5, 0.56, 0.7, 0.8, 1.0])
def test_the_smoother_keeps_motion_at_every_usable_confidence(confidence):
    for distance in (5.0, 7.5, 10.0):
        for frames in (2, 3, 5):
            for seed in range(3):
                truth, observed = moving_track(distance, frames, seed)
                conf = torch.full((len(truth), 1), confidence, dtype=torch.float64)
                smoothed = smooth_tracks(observed, conf, motion=4.0, cell=(CELL, CELL)).numpy()
                kept = (smoothed[27:33, 0, 0].mean() - smoothed[:15, 0, 0].mean()) / distance  # plateau vs rest
                assert 0.7 <= kept <= 1.3, (distance, frames, seed, kept)
                assert np.abs(smoothed - truth).max() <= CELL, (distance, frames, seed)


def test_low_confidence_jumps_stay_rejected():
    truth, observed = moving_track(10.0, 3, seed=0)
    conf = torch.full((len(truth), 1), 0.9, dtype=torch.float64)
    jumped = observed.clone()
    for frame, c in ((8, 0.05), (30, 0.09), (31, 0.09), (45, 0.01)):  # lone and paired jumps of 60 px
        jumped[frame, 0, 0] += 60.0
        conf[frame, 0] = c
    smoothed = smooth_tracks(jumped, conf, motion=4.0, cell=(CELL, CELL)).numpy()
    without = smooth_tracks(observed, conf, motion=4.0, cell=(CELL, CELL)).numpy()
    assert np.abs(smoothed - truth).max() <= CELL
    assert np.abs(smoothed - without).max() < 0.05 * 60  # each jump pulls the track by under 5% of itself


def test_the_smoother_removes_outliers_and_leaves_what_it_cannot_see():
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 400)[:, None]
    truth = torch.stack([100 + 40 * torch.sin(2 * np.pi * (t + k / 5)) for k in range(4)], 1).squeeze(-1)
    truth = torch.stack([truth, truth.flip(0)], -1).double()  # (T, K, 2) px, slow motion
    conf = torch.full((400, 4), 0.9, dtype=torch.float64)
    noisy = truth + CELL / 2 * torch.randn(truth.shape, generator=g, dtype=torch.float64)
    bad = torch.rand(400, 4, generator=g) < 0.1  # unconfident frames far off
    noisy[bad] += 60
    conf[bad] = 0.05
    smoothed = smooth_tracks(noisy, conf, motion=4.0, cell=(CELL, CELL))
    raw_err, err = (noisy - truth).norm(dim=-1).mean(), (smoothed - truth).norm(dim=-1).mean()
    assert err < raw_err / 3, (float(raw_err), float(err))
    assert torch.equal(smooth_tracks(noisy, conf, motion=0, cell=(CELL, CELL)), noisy)
    conf[:, 3] = 0  # never observed: left as it was, not NaN
    assert torch.equal(smooth_tracks(noisy, conf, motion=4.0, cell=(CELL, CELL))[:, 3], noisy[:, 3])


def test_sigma_is_in_pixels_of_the_original_frame_on_a_non_square_video():
    # one landmark at (60, 30) px of a 192 x 96 source that the pose model saw squashed to 96 x 96
    candidates = np.zeros((3, 1, 8 * 3 + 5))
    candidates[:, 0, :3] = [30.0, 30.0, 0.9]
    candidates[:, 0, -5:] = [0, 0, 96, 96, 1.0]
    geometry = FrameGeometry(decoded=(96, 96), original=(192, 96), cell=(1 / 48, 1 / 64))
    spec = RenderSpec(size=33, sigma=4.0, margin=3.0, output="keypoints", edges=VFSS_EDGES)
    maps, points, extra = video_maps(candidates, 8, geometry, spec, torch.device("cpu"))
    assert extra["crop_box"] == pytest.approx([48.0, 18.0, 72.0, 42.0])  # 3 sigmas around (60, 30), square
    np.testing.assert_allclose(points[:, 0], [[60 / 192, 30 / 96, 0.9]] * 3, atol=1e-6)
    peak = maps[0].astype(np.float32)
    assert np.unravel_index(peak.argmax(), peak.shape) == (16, 16)
    np.testing.assert_allclose(peak[16, :], peak[:, 16], atol=1e-3)  # round, not stretched along x


def test_following_a_person_keeps_the_same_one_when_scores_swap():
    def candidate(x, score):  # one keypoint at x; box around it
        return [x, 10.0, 0.9, x - 5, 0.0, x + 5, 20.0, score]

    frames = [[candidate(10, 0.9), candidate(50, 0.6)], [candidate(11, 0.5), candidate(50, 0.95)],
              [candidate(12, 0.7), candidate(49, 0.8)], [candidate(0, 0.0), candidate(80, 0.9)]]
    person = follow_person(torch.tensor(frames), keypoints=1)
    assert person[:, 0, 0].tolist() == [10, 11, 12, 80]  # lost in the last frame: the best-scoring one


def test_verify_pair_reports_frames_that_do_not_match(videos, tmp_path):
    assert _run(videos, tmp_path / "a", traced(tmp_path / "tiny.pt")) == 0
    assert _run(videos, tmp_path / "b", tmp_path / "tiny.pt", "--fps", "15") == 0
    assert main(["verify", str(tmp_path / "a"), "--pair", str(tmp_path / "a_pose")]) == 0
    with open_store(tmp_path / "a") as a, open_store(tmp_path / "b") as b:
        assert pair_problems(a, b) == ["video 'swallow': frame rates differ (30 vs 15 fps)",
                                       "video 'swallow': frame counts differ (21 in a vs 11 in b)"]
    assert main(["verify", str(tmp_path / "a"), "--pair", str(tmp_path / "b")]) == 1
