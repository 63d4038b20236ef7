"""The DETAD diagnosis equals the official code's numbers on the same inputs.

The fixtures hold synthetic inputs and what HumamAlwassel/DETAD (24f7d95, run from a scratch
folder with np.int/np.float/np.infty fixed; see each file's ``made_by``) computed from them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect.analysis.characteristics import PRESETS, Bins, context
from detect.analysis.detad import ERROR_TYPES
from detect.analysis.segments import analyze_segments
from extract.annotations import load_annotations

FIXTURES = Path(__file__).parent / "fixtures" / "detad"
OFFICIAL_ERRORS = ["True Positive", "Double Detection Err", "Wrong Label Err", "Localization Err", "Confusion Err",
                   "Background Err"]


def _analyze(tmp_path: Path, ground_truth: dict, predictions: dict, preset: str) -> dict:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(ground_truth))
    return analyze_segments(load_annotations(path), path, predictions["results"], "testing", preset)


def _close(ours, official) -> None:
    if official is None:
        assert ours is None
    else:
        assert ours == pytest.approx(official, abs=1e-12)


@pytest.mark.parametrize("name, preset", [("activitynet_testing", "activitynet"), ("thumos14", "thumos14")])
def test_equals_official_detad(tmp_path, name, preset):
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    official = fixture["official"]
    ours = _analyze(tmp_path, fixture["ground_truth"], fixture["predictions"], preset)
    _close(ours["average_mAP_N"], official["average_mAP_N"])
    assert set(ours["per_class_ap_n"]) == set(official["per_class_ap_n"])
    for label, aps in official["per_class_ap_n"].items():
        _close(ours["per_class_ap_n"][label], aps)
    profile = ours["false_positive_profile"]
    _close(profile["average_mAP_N_top_10G"], official["average_mAP_N_top_10G"])
    for band, row in zip(profile["fractions"], official["profile"]):
        for ours_name, official_name in zip(ERROR_TYPES, OFFICIAL_ERRORS):
            _close(band[ours_name], row[OFFICIAL_ERRORS.index(official_name)])
    for ours_name, official_name in zip(ERROR_TYPES[1:], OFFICIAL_ERRORS[1:]):
        _close(profile["error_fix_gain"][ours_name], official["error_fix_gain"][official_name])
    for characteristic, bins in official["sensitivity"].items():
        assert list(ours["sensitivity"][characteristic]) == list(bins)
        for label, value in bins.items():
            _close(ours["sensitivity"][characteristic][label], value)
    for characteristic, bins in official["false_negative_rate"].items():
        assert set(ours["false_negative_rate"][characteristic]) == set(bins)
        for label, value in bins.items():
            _close(ours["false_negative_rate"][characteristic][label], value)
    assert any("zero or negative length" in note for note in ours["notes"])


def test_computed_characteristics_equal_the_files(tmp_path):
    """Length, coverage and instance count computed from the segments give the official numbers
    of the file that carries them."""
    fixture = json.loads((FIXTURES / "thumos14.json").read_text())
    for entry in fixture["ground_truth"]["database"].values():
        for ann in entry["annotations"]:
            for key in ("length", "coverage", "num-instances", "context-size", "context-distance", "agreement"):
                del ann[key]
    ours = _analyze(tmp_path, fixture["ground_truth"], fixture["predictions"], "thumos14")
    assert "computed from the annotations: coverage, length, num-instances" in " ".join(ours["notes"])
    for characteristic in ("coverage", "length", "num-instances"):
        for label, value in fixture["official"]["sensitivity"][characteristic].items():
            _close(ours["sensitivity"][characteristic][label], value)
        for label, value in fixture["official"]["false_negative_rate"][characteristic].items():
            _close(ours["false_negative_rate"][characteristic][label], value)


def test_bins_are_right_closed_with_the_lowest_edge_included():
    bins = PRESETS["activitynet"].bins["length"]
    values = np.array([0.0, 1e-9, 30.0, 30.0001, 180.0, 1e6, -1.0, np.nan])
    assert bins.assign(values).tolist() == [0, 0, 0, 1, 3, 4, -1, -1]
    size = PRESETS["activitynet"].bins["context-size"]
    assert size.assign(np.arange(7.0)).tolist() == list(range(7))
    assert Bins((0.0, 1.0), ("a",)).assign(np.array([1.0, 1.5])).tolist() == [0, -1]


def test_context_counts_the_instance_length_windows_that_touch_other_instances():
    # A (10-20) with B right after it (22-25): window 1 after A; C (45-50) in A's window 3 after.
    start, end = np.array([10.0, 22.0, 45.0]), np.array([20.0, 25.0, 50.0])
    size, distance = context(start, end, duration=100.0)
    assert size[0] == 2 and distance[0] == 3
    assert size[1] == 3 and distance[1] == 3            # A fills B's three 3-s windows before it
    assert size[2] == 0 and distance[2] == 0            # C's windows (30-45 before, 50-65 after) are empty
    alone, far = context(np.array([0.0]), np.array([5.0]), 5.0)
    assert alone[0] == 0 and far[0] == 0


def _one_class(tmp_path, predictions):
    gt = {"database": {
        "a": {"subset": "testing", "duration": 100.0, "annotations": [{"label": "X", "segment": [10.0, 20.0]},
                                                                       {"label": "Y", "segment": [50.0, 60.0]}]},
        "b": {"subset": "testing", "duration": 100.0, "annotations": []}}}
    return _analyze(tmp_path, gt, {"results": predictions}, "thumos14")


def test_error_types_follow_the_papers_rules(tmp_path):
    dets = {"a": [{"label": "X", "segment": [10.0, 20.0], "score": 0.9},     # true positive
                  {"label": "X", "segment": [10.0, 20.5], "score": 0.8},     # double detection
                  {"label": "Y", "segment": [10.0, 19.0], "score": 0.7},     # wrong label (tIoU 0.9 with X)
                  {"label": "Y", "segment": [45.0, 50.5], "score": 0.6},     # background (tIoU 0.03 with Y, under 0.1)
                  {"label": "X", "segment": [17.0, 30.0], "score": 0.5},     # localization (tIoU 0.15 with X)
                  {"label": "X", "segment": [52.0, 70.0], "score": 0.4},     # confusion (Y's, tIoU 0.4)
                  {"label": "X", "segment": [80.0, 90.0], "score": 0.3}],    # background
            "b": [{"label": "X", "segment": [10.0, 20.0], "score": 0.35},    # background (no ground truth)
                  {"label": "X", "segment": [12.0, 20.0], "score": 0.34}]}   # background: not a's ground truth
    ours = _one_class(tmp_path, dets)
    # G_X = G_Y = 1: band k holds rank k of each class. X ranks: TP, double, loc, conf, bg(0.35), bg(0.34), bg(0.3)
    # Y ranks: wrong label, background (tIoU 0.03 is under 0.1)
    bands = ours["false_positive_profile"]["fractions"]
    assert bands[0]["true positive"] == 0.5 and bands[0]["wrong label"] == 0.5
    assert bands[1]["double detection"] == 0.5 and bands[1]["background"] == 0.5
    assert bands[2]["localization"] == 1.0
    assert bands[3]["confusion"] == 1.0
    assert bands[4]["background"] == bands[5]["background"] == bands[6]["background"] == 1.0
    assert bands[7]["background"] is None


def test_labels_without_ground_truth_are_left_out_and_said(tmp_path):
    ours = _one_class(tmp_path, {"a": [{"label": "X", "segment": [10.0, 20.0], "score": 0.9},
                                       {"label": "Z", "segment": [10.0, 20.0], "score": 0.8}]})
    assert ours["counts"]["detections"] == 1
    assert any("1 detections of labels without evaluated ground truth" in n for n in ours["notes"])
    assert ours["per_class_ap_n"]["X"] == [1.0]
    assert ours["sensitivity"]["length"]["M"] == pytest.approx(0.5)   # Y: no predictions, AP_N 0
