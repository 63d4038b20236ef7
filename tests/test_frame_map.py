"""Per-frame mAP and the action-conditional metrics against straightforward independent
implementations on random data (ties, classes absent from the split, all-negative videos) and
hand-made cases, including the official Charades 25-point protocol (``Charades_v1_localize.m``)
and MS-TCT's ``sampled_25``."""
import numpy as np
import pytest

from detect.metrics import frame_map
from detect.metrics.action_conditional import action_conditional, condition_mask, grouped_average_precision
from detect.metrics.frame_map import VideoFrames


def brute_force_ap(scores, positive):
    """Precision at each positive, counting the samples ranked above it: higher score, or the
    same score earlier in the input (the stable order the metric documents)."""
    n = len(scores)
    precisions = []
    for k in np.flatnonzero(positive):
        above = [m for m in range(n) if scores[m] > scores[k] or (scores[m] == scores[k] and m <= k)]
        precisions.append(sum(int(positive[m]) for m in above) / len(above))
    return np.mean(precisions) if precisions else None


def brute_force_map(scores, positive):
    per_class = [brute_force_ap(scores[:, k], positive[:, k]) for k in range(scores.shape[1])]
    return np.mean([ap for ap in per_class if ap is not None]), per_class


def random_videos(seed, num_classes=6, step=0.5):
    """Videos of 1-59 steps of ``step`` seconds; segments of classes 1.. only (class 0 absent)."""
    rng = np.random.default_rng(seed)
    videos = []
    for i, length in enumerate(rng.integers(1, 60, size=7)):
        scores = np.round(rng.random((length, num_classes)), 1)  # one decimal: many ties
        times = (np.arange(length) + 0.5) * step
        segments = [] if i == 1 else [(float(a), float(a + rng.random() * 4), int(rng.integers(1, num_classes)))
                                      for a in rng.random(3) * length * step]  # video 1 all negative
        videos.append(VideoFrames(f"v{i}", scores, times, segments, length * step))
    return videos


@pytest.mark.parametrize("seed", range(5))
def test_full_map_matches_a_brute_force_reference(seed):
    videos = random_videos(seed)
    s = np.concatenate([v.scores for v in videos])
    t = np.concatenate([[[any(a <= c <= b and k == cls for a, b, cls in v.segments) for k in range(6)]
                         for c in v.times] for v in videos])
    expected, per_class = brute_force_map(s, t)
    result = frame_map(videos, "full")
    assert result.map == pytest.approx(expected, abs=1e-12)
    assert np.isnan(result.per_class_ap[0]) and result.evaluated_classes == sum(ap is not None for ap in per_class)
    assert result.samples == len(s)


def official_charades_samples(video):
    """``load_charades_localized`` of ``Charades_v1_localize.m`` spelled out: 25 time points
    ``(j-1)/25 * length`` for j = 1..25, labels from ``start <= t <= end``; the submission's
    frame j is the step whose centre is nearest (first on a tie)."""
    scores, labels = [], []
    for j in range(1, 26):
        t = (j - 1) / 25 * video.duration
        distances = [abs(c - t) for c in video.times]
        scores.append(video.scores[distances.index(min(distances))])
        labels.append([any(start <= t <= end and cls == k for start, end, cls in video.segments)
                       for k in range(video.scores.shape[1])])
    return np.array(scores), np.array(labels)


@pytest.mark.parametrize("seed", range(5))
def test_sampled_25_is_the_official_charades_protocol(seed):
    videos = random_videos(seed)
    picked = [official_charades_samples(v) for v in videos]
    expected, _ = brute_force_map(np.concatenate([p[0] for p in picked]), np.concatenate([p[1] for p in picked]))
    result = frame_map(videos, "sampled-25")
    assert result.map == pytest.approx(expected, abs=1e-12)
    assert result.samples == 25 * len(videos)  # every video counts 25 points, however short


def test_sampled_25_hand_made():
    # 10 s, 4 steps of 2.5 s (centres 1.25, 3.75, 6.25, 8.75); points 0, 0.4, ..., 9.6 s
    scores = np.array([[0.1], [0.2], [0.3], [0.4]])
    video = VideoFrames("v", scores, np.array([1.25, 3.75, 6.25, 8.75]), [(0.0, 0.0, 0), (5.0, 5.2, 0)], 10.0)
    s, t = video.samples("sampled-25")
    points = np.arange(25) * 0.4
    assert t[:, 0].tolist() == [1.0 if p == 0.0 or 5.0 <= p <= 5.2 else 0.0 for p in points]
    assert t[0, 0] == 1.0 and t[13, 0] == 1.0 and t.sum() == 2  # the time point 0 counts; 5.2 s is on a closed end
    # nearest centre: 0-2.4 s -> step 0, 2.8-4.8 -> 1 (2.5 s is a tie: 2.4 is nearer 1.25), ... 7.6+ -> 3
    assert s[:, 0].tolist() == [scores[int(np.abs(video.times - p).argmin()), 0] for p in points]
    assert s[6, 0] == 0.1 and s[7, 0] == 0.2 and s[24, 0] == 0.4
    tie = VideoFrames("t", scores[:2], np.array([1.0, 3.0]), [], 50.0)  # 2.0 s is a tie between steps 0 and 1
    assert tie.samples("sampled-25")[0][1, 0] == 0.1  # the earlier step, as argmin


def test_sampled_25_ties_rank_in_the_given_video_order():
    # two videos with equal scores everywhere: the one given first ranks first
    pos = VideoFrames("b", np.full((5, 1), 0.5), np.arange(5) + 0.5, [(0.0, 5.0, 0)], 5.0)
    neg = VideoFrames("a", np.full((5, 1), 0.5), np.arange(5) + 0.5, [], 5.0)
    assert frame_map([pos, neg], "sampled-25").map == 1.0
    assert frame_map([neg, pos], "sampled-25").map == pytest.approx(np.mean([k / (25 + k) for k in range(1, 26)]))


def test_sampled_25_needs_a_duration():
    with pytest.raises(ValueError, match="video 'v' has no duration"):
        frame_map([VideoFrames("v", np.zeros((3, 1)), np.arange(3.0))], "sampled-25")


@pytest.mark.parametrize("length", [26, 49, 50, 51, 99, 1000])
def test_ms_tct_25_is_the_public_codes_stride(length):
    scores = np.arange(length, dtype=float)[:, None]
    video = VideoFrames("v", scores, np.arange(length) + 0.5, [], float(length))
    s, _ = video.samples("ms-tct-25")
    assert s[:, 0].tolist() == list(range(1, length, length // 25))[:25]  # rows 1::int(T/25), first 25
    if length < 50:
        assert s[-1, 0] == 25  # the integer stride covers only the start of short videos


def test_ms_tct_25_skips_short_videos_and_refuses_when_nothing_is_left():
    long = VideoFrames("l", np.random.default_rng(0).random((30, 2)), np.arange(30) + 0.5, [(3.0, 9.0, 1)], 30.0)
    short = VideoFrames("s", np.ones((25, 2)), np.arange(25) + 0.5, [(0.0, 25.0, 0)], 25.0)
    assert frame_map([long, short], "ms-tct-25").samples == 25
    with pytest.raises(ValueError, match="every video is that short"):
        frame_map([short], "ms-tct-25")


def brute_force_grouped_ap(scores, positive):
    thresholds = sorted(set(scores.tolist()), reverse=True)
    ap, last_recall = 0.0, 0.0
    for th in thresholds:
        chosen = scores >= th
        tp = (positive & chosen).sum()
        recall = tp / positive.sum()
        ap += (recall - last_recall) * tp / chosen.sum()
        last_recall = recall
    return ap


@pytest.mark.parametrize("seed", range(4))
def test_grouped_ap_matches_its_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores, positive = np.round(rng.random(80), 1), rng.random(80) < 0.3
    assert grouped_average_precision(scores, positive) == pytest.approx(brute_force_grouped_ap(scores, positive))


def test_condition_masks_before_and_after():
    target = np.array([0, 1, 0, 0, 0, 1, 1, 0])[:, None]
    assert condition_mask(target, 0)[:, 0].tolist() == [bool(v) for v in target[:, 0]]
    # tau=2: j in the last 2 steps (this one included) but not now
    assert condition_mask(target, 2)[:, 0].astype(int).tolist() == [0, 0, 1, 0, 0, 0, 0, 1]
    # tau=-2: j in the next 2 steps (this one included) but not now
    assert condition_mask(target, -2)[:, 0].astype(int).tolist() == [1, 0, 0, 0, 1, 0, 0, 0]


def test_action_conditional_hand_made():
    # class 1 co-occurs with class 0 on steps 0-2; the prediction finds it on steps 0 and 1 only
    target = np.array([[1, 1], [1, 1], [1, 1], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.8], [0.9, 0.7], [0.9, 0.2], [0.1, 0.6], [0.9, 0.1]])
    result = action_conditional([scores], [target], tau=0, threshold=0.5)
    # pair (1 | 0): steps 0,1,2,4 -> class 1 positives 0,1,2; predicted 0,1 -> P 1, R 2/3, AP 1
    # pair (0 | 1): steps 0,1,2 -> class 0 all positive, all predicted -> P 1, R 1, AP 1
    assert result["pairs"] == 2
    assert result["precision"] == pytest.approx(1.0) and result["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["mAP"] == pytest.approx(1.0)
    assert result["f1"] == pytest.approx(2 * 1 * (5 / 6) / (1 + 5 / 6))


def test_scoring_ranks_videos_in_the_annotation_files_order():
    from detect.tasks.dense import score_frames
    from extract.annotations import AnnotationSet, VideoAnnotations
    from extract.annotations.schema import Annotation

    times = np.arange(5) + 0.5
    database = {"b": VideoAnnotations("test", 5.0, 1.0, [Annotation("x", 0, (0.0, 5.0))]),  # listed first
                "a": VideoAnnotations("test", 5.0, 1.0, [])}
    predictions = {vid: {"scores": np.full((5, 1), 0.5), "times": times} for vid in database}
    result = score_frames(predictions, AnnotationSet(database, ["x"]), ["a", "b"], ["x"], "sampled-25")
    assert result["mAP"] == 1.0  # b's positives rank first on the tie, as in the file; sorted ids would give 0.5ish
    # ms-tct-25 skips videos of 25 steps or fewer: with none left it is left out, not reported as 0
    assert result["mode"] == "sampled-25" and set(result["frame_map"]) == {"full", "sampled-25"}
