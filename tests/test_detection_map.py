"""The detection mAP on hand-computed cases, official quirks and documented deviations."""
import pytest

from detect.metrics.detection_map import evaluate_detections, interpolated_ap


def _gt(videos, subset="test"):
    return {vid: {"subset": subset, "annotations": [{"label": lab, "segment": seg} for lab, seg in anns]}
            for vid, anns in videos.items()}


def _det(label, seg, score):
    return {"label": label, "segment": seg, "score": score}


def test_hand_computed_ap_at_two_thresholds():
    gt = _gt({"v1": [("A", [0, 10]), ("A", [20, 30])]})
    results = {"v1": [_det("A", [0, 10], 0.9), _det("A", [21, 29], 0.8), _det("A", [0, 9], 0.7)]}
    r = evaluate_detections(gt, results, "test", [0.5, 0.85])
    # 0.5: TP, TP, FP -> AP 1.0.  0.85: the 0.8-tIoU match fails: TP, FP, FP -> AP 0.5.
    assert r.map.tolist() == pytest.approx([1.0, 0.5])
    assert r.average == pytest.approx(0.75)


def test_interpolated_ap_matches_voc_all_point():
    # precision 1, 0.5, 2/3 at recalls 1/3, 1/3, 2/3 -> 1/3 * 1 + 1/3 * 2/3
    assert interpolated_ap([1, 0.5, 2 / 3], [1 / 3, 1 / 3, 2 / 3]) == pytest.approx(1 / 3 + 2 / 9)


def test_duplicate_ground_truth_counts_twice_unless_clean():
    gt = _gt({"v1": [("A", [0, 10]), ("A", [0, 10.0005])]})
    results = {"v1": [_det("A", [0, 10], 0.9)]}
    assert evaluate_detections(gt, results, "test", [0.5]).average == pytest.approx(0.5)
    clean = evaluate_detections(gt, results, "test", [0.5], clean_gt=True)
    assert clean.average == pytest.approx(1.0) and "clean-gt" in clean.protocol


def test_zero_length_ground_truth_is_an_unmatchable_positive():
    gt = _gt({"v1": [("A", [5, 5]), ("A", [0, 10])]})
    results = {"v1": [_det("A", [0, 10], 0.9), _det("A", [5, 5], 0.8)]}
    assert evaluate_detections(gt, results, "test", [0.5]).average == pytest.approx(0.5)
    assert evaluate_detections(gt, results, "test", [0.5], clean_gt=True).average == pytest.approx(1.0)


def test_predictions_outside_the_subset_are_false_positives_with_a_warning():
    gt = _gt({"v1": [("A", [0, 10])]})
    gt.update(_gt({"v9": [("A", [0, 10])]}, subset="validation"))
    results = {"v1": [_det("A", [0, 10], 0.5)], "v9": [_det("A", [0, 10], 0.9)], "v404": [_det("A", [0, 1], 0.1)]}
    with pytest.warns(UserWarning, match="2 predictions on videos outside subset 'test'.*false positives"):
        r = evaluate_detections(gt, results, "test", [0.5])
    # FP (0.9), TP (0.5), FP (0.1): precision 0, 1/2, 1/3 at recall 0, 1, 1 -> AP 0.5
    assert r.average == pytest.approx(0.5)
    with pytest.warns(UserWarning, match="ignored"):
        assert evaluate_detections(gt, results, "test", [0.5], restrict_to_subset=True).average == pytest.approx(1.0)


def test_unknown_labels_are_ignored_with_a_warning():
    gt = _gt({"v1": [("A", [0, 10])]})
    results = {"v1": [_det("B", [0, 10], 0.99), _det("A", [0, 10], 0.5)]}
    with pytest.warns(UserWarning, match="labels absent .* ignored: {'B': 1}"):
        r = evaluate_detections(gt, results, "test", [0.5])
    assert r.average == pytest.approx(1.0) and r.classes == ["A"]


def test_score_ties_keep_file_order():
    gt = _gt({"v1": [("A", [0, 10])]})
    first_fp = {"v1": [_det("A", [50, 60], 0.5), _det("A", [0, 10], 0.5)]}
    first_tp = {"v1": [_det("A", [0, 10], 0.5), _det("A", [50, 60], 0.5)]}
    assert evaluate_detections(gt, first_fp, "test", [0.5]).average == pytest.approx(0.5)
    assert evaluate_detections(gt, first_tp, "test", [0.5]).average == pytest.approx(1.0)


def test_zero_length_predictions_never_match():
    gt = _gt({"v1": [("A", [3, 3])]})
    assert evaluate_detections(gt, {"v1": [_det("A", [3, 3], 0.9)]}, "test", [0.1]).average == 0.0


def test_classes_are_those_in_the_ground_truth_and_missing_predictions_score_zero():
    gt = _gt({"v1": [("A", [0, 10]), ("B", [20, 30])], "v2": [("A", [5, 8])]})
    results = {"v1": [_det("A", [0, 10], 0.9)], "v2": [_det("A", [5, 8], 0.8)]}
    r = evaluate_detections(gt, results, "Test", [0.5])  # subset names compare case-insensitively
    assert r.classes == ["A", "B"] and r.ap[0].tolist() == [1.0, 0.0] and r.average == pytest.approx(0.5)
    assert r.to_json()["mAP"] == {"0.5": pytest.approx(0.5)}
