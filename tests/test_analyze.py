"""``python -m detect analyze``: files written, strict JSON, and the dense and clip analogues."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect.analysis import clip_confusions, dense_misses
from detect.cli import main
from extract.annotations import load_annotations

FIXTURES = Path(__file__).parent / "fixtures" / "detad"


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_cli_writes_every_number_and_figure(tmp_path, capsys):
    fixture = json.loads((FIXTURES / "activitynet_testing.json").read_text())
    (tmp_path / "gt.json").write_text(json.dumps(fixture["ground_truth"]))
    (tmp_path / "dets.json").write_text(json.dumps(fixture["predictions"]))
    out = tmp_path / "analysis"
    assert main(["analyze", "--annotations", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "dets.json"),
                 "--split", "testing", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "average-mAP_N" in printed.out and "would gain the most" in printed.out
    result = _strict((out / "analysis.json").read_text())
    assert result["average_mAP_N"] == pytest.approx(fixture["official"]["average_mAP_N"], abs=1e-12)
    assert result["standard"]["average_mAP"] > 0 and len(result["tiou"]) == 10
    for stem in ("false_positive_profile", "sensitivity", "per_class_ap"):
        for suffix in (".png", ".svg"):
            assert (out / f"{stem}{suffix}").stat().st_size > 1000
    assert sorted(result["figures"]) == sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".svg"))


def test_cli_refuses_a_preset_for_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--annotations", "a.json", "--predictions", "b.json", "--out", str(tmp_path / "o"),
              "--preset", "kinetics"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'kinetics'" in capsys.readouterr().err


def _dense_annotations(tmp_path):
    gt = {"classes": ["a", "b"], "database": {"v": {"subset": "test", "duration": 40.0, "annotations": [
        {"label": "a", "segment": [0.0, 2.0]},       # XS: 2 s
        {"label": "b", "segment": [10.0, 30.0]}]}}}  # XL: 20 s
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return load_annotations(path)


def test_dense_misses_by_length(tmp_path):
    times = np.arange(0.5, 40, 1.0)                 # 40 steps, one per second
    scores = np.zeros((40, 2))
    scores[0, 0] = 0.9                              # a: 1 of its 2 steps found
    scores[10:25, 1] = 0.8                          # b: 15 of its 20 steps found
    scores[35, 1] = 0.7                             # one false alarm
    result = dense_misses({"v": {"scores": scores, "times": times}}, ["a", "b"], _dense_annotations(tmp_path), "test")
    assert result["missed_steps_by_length"]["XS"] == pytest.approx(0.5)
    assert result["missed_steps_by_length"]["XL"] == pytest.approx(5 / 20)
    assert result["missed_steps_by_length"]["M"] is None
    assert result["action_steps_by_length"] == {"XS": 2, "S": 0, "M": 0, "L": 0, "XL": 20}
    assert result["false_alarm_steps"] == pytest.approx(1 / (80 - 22))


def test_clip_confusions():
    confusion = np.array([[3, 1, 0], [0, 0, 2], [0, 0, 0]])
    result = clip_confusions(confusion, ["x", "y", "z"])
    assert result["per_class_accuracy"] == {"x": 0.75, "y": 0.0, "z": None}
    assert result["top_confusions"][0] == {"true": "y", "predicted": "z", "clips": 2}
    assert len(result["top_confusions"]) == 2


def test_a_preset_for_dense_predictions_is_one_line(tmp_path, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"classes": ["a", "b"], "database": {"v": {"subset": "test", "duration": 4.0,
                                                                     "annotations": [{"label": "a", "segment": [0, 2]}]}}}))
    preds = tmp_path / "p_frames.npz"
    np.savez(preds, classes=np.array(["a", "b"]), **{"v/scores": np.random.rand(4, 2), "v/times": np.arange(4) + 0.5})
    code = main(["analyze", "--annotations", str(gt), "--predictions", str(preds), "--preset", "thumos14",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "DETAD's bins are for segment detections" in err, err
    assert not (tmp_path / "o").exists()
