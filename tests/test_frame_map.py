"""Per-frame mAP and the action-conditional metrics against straightforward independent
implementations on random data (ties, classes absent from the split, all-negative videos) and
hand-made cases."""
import numpy as np
import pytest

from detect.metrics import frame_map
from detect.metrics.action_conditional import action_conditional, condition_mask, grouped_average_precision
from detect.metrics.frame_map import sample_steps


def brute_force_ap(scores, positive):
    """Precision at each positive, counting the samples ranked above it: higher score, or the
    same score earlier in the input (the stable order the metric documents)."""
    n = len(scores)
    precisions = []
    for k in np.flatnonzero(positive):
        above = [m for m in range(n) if scores[m] > scores[k] or (scores[m] == scores[k] and m <= k)]
        precisions.append(sum(int(positive[m]) for m in above) / len(above))
    return np.mean(precisions) if precisions else None


def random_videos(seed, num_classes=6):
    rng = np.random.default_rng(seed)
    scores, targets = [], []
    for length in rng.integers(1, 60, size=7):
        scores.append(np.round(rng.random((length, num_classes)), 1))  # one decimal: many ties
        target = (rng.random((length, num_classes)) < 0.2).astype(np.float32)
        target[:, 0] = 0  # class 0 absent from the split
        targets.append(target)
    targets[1][:] = 0  # an all-negative video
    return scores, targets


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mode", ["full", "sampled-25"])
def test_frame_map_matches_a_brute_force_reference(seed, mode):
    scores, targets = random_videos(seed)
    picked = [sample_steps(len(s), mode) for s in scores]
    s = np.concatenate([x[i] for x, i in zip(scores, picked)])
    t = np.concatenate([y[i] for y, i in zip(targets, picked)]) > 0
    per_class = [brute_force_ap(s[:, k], t[:, k]) for k in range(s.shape[1])]
    expected = np.mean([ap for ap in per_class if ap is not None])
    result = frame_map(scores, targets, mode)
    assert result.map == pytest.approx(expected, abs=1e-12)
    assert np.isnan(result.per_class_ap[0]) and result.evaluated_classes == sum(ap is not None for ap in per_class)
    assert result.samples == len(s)


@pytest.mark.parametrize("length", [1, 24, 25, 26, 49, 50, 51, 99, 1000, 50_000])
def test_25_frame_sampling_spreads_over_the_whole_video(length):
    steps = sample_steps(length, "sampled-25")
    if length <= 25:
        assert steps.tolist() == list(range(length))
        return
    assert len(steps) == 25 and np.all(np.diff(steps) > 0) and steps[0] >= 0 and steps[-1] < length
    assert steps[0] < length / 25 and steps[-1] >= length - length / 25  # first and last 25th both sampled
    assert np.ptp(np.diff(steps)) <= 1  # evenly spaced up to rounding


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
