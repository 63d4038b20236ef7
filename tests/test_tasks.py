"""The dense and clips tasks end to end on planted data, their metrics against hand-made cases,
and the model listing."""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from planted import make_planted, make_planted_clips, task_config

from detect.config import ConfigError, load_config
from detect.engine import train
from detect.metrics import confusion_matrix, frame_map, topk_accuracy
from detect.metrics.frame_map import VideoFrames, average_precision
from detect.models import MODELS


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted(tmp_path_factory.mktemp("planted"))


def test_average_precision_hand_made():
    # ranked: pos, neg, pos -> precisions at the positives 1 and 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(average_precision(np.array([0.1, 0.2]), np.array([0, 0])))
    video = VideoFrames("v", np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([0.5, 1.5]), [(0.0, 0.6, 0)], 2.0)
    result = frame_map([video])
    assert result.map == 1.0 and result.evaluated_classes == 1  # class 1 has no positive: not averaged


def test_topk_and_confusion():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    labels = np.array([0, 1, 1])
    assert topk_accuracy(probs, labels, (1, 2)) == {"top1": pytest.approx(2 / 3), "top2": 1.0}
    assert confusion_matrix(probs.argmax(1), labels, 3).tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_dense_task_trains_a_per_frame_model_and_infers(planted, tmp_path):
    store, ann = planted
    cfg = task_config(store, ann, tmp_path / "run", "frame-conv", dim=32)
    summary = train(load_config(None, base=cfg), progress=False)
    assert summary["task"] == "dense" and summary["metric"] == "mAP"
    assert summary["test"]["mAP"] > 0.7, summary["test"]  # chance is the positive rate, ~0.15
    assert "per-frame mAP (full" in summary["test"]["protocol"]
    saved = np.load(tmp_path / "run" / "test_frames.npz")
    assert saved["classes"].tolist() == ["jump", "throw", "spin"]
    vid = sorted(k for k in saved.files if k.endswith("/scores"))[0]
    assert saved[vid].shape[1] == 3 and saved[vid].shape[0] == saved[vid.replace("scores", "times")].shape[0]
    out = tmp_path / "all.npz"
    proc = subprocess.run([sys.executable, "-m", "detect", "infer", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                           "--split", "all", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "dense predictions for 32 videos" in proc.stdout and len(np.load(out).files) == 1 + 2 * 32
    # per-frame scores as a store on the features' grid, and thresholded segments that score as detections
    proc = subprocess.run([sys.executable, "-m", "detect", "infer", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                           "--out", str(tmp_path / "t.npz"), "--scores-store", str(tmp_path / "scores"),
                           "--segments", str(tmp_path / "segs.json"), "--merge-gap", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from extract.store import open_store

    with open_store(tmp_path / "scores") as scores, open_store(store) as features:
        assert sorted(scores.ids) == [f"test_{i:03d}" for i in range(24, 32)]
        assert scores.info.extra["classes"] == ["jump", "throw", "spin"]
        assert scores.shape("test_024") == (features.shape("test_024")[0], 3)
        assert scores.grid("test_024") == features.grid("test_024")
        np.testing.assert_allclose(scores.read("test_024"), np.load(tmp_path / "t.npz")["test_024/scores"])
    proc = subprocess.run([sys.executable, "-m", "detect", "evaluate", "--annotations", str(ann), "--predictions",
                           str(tmp_path / "segs.json"), "--split", "testing", "--tiou", "0.3,0.5", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["average_mAP"] > 0.5, proc.stdout + proc.stderr


def test_frames_to_segments_hand_made():
    from detect.tasks.dense import frames_to_segments

    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.2, 0.6], [0.7, 0.1], [0.1, 0.1], [0.6, 0.1]])
    times = np.arange(6) * 0.5 + 0.25  # steps of 0.5 s
    segs = frames_to_segments(scores, times, ["a", "b"], 0.5)
    # by score: a 0.85, a 0.7, b 0.65, a 0.6
    assert [(d["label"], d["segment"]) for d in segs] == [("a", [0.0, 1.0]), ("a", [1.5, 2.0]), ("b", [0.5, 1.5]),
                                                         ("a", [2.5, 3.0])]
    assert segs[0]["score"] == pytest.approx(0.85)
    merged = frames_to_segments(scores, times, ["a", "b"], 0.5, merge_gap=1)  # a: steps 0-3 and 5 join
    (a,) = [d for d in merged if d["label"] == "a"]
    assert a["segment"] == [0.0, 3.0] and a["score"] == pytest.approx(np.mean([0.9, 0.8, 0.2, 0.7, 0.1, 0.6]))


def test_clips_task_trains_a_clip_classifier(tmp_path):
    store, ann = make_planted_clips(tmp_path / "clips")
    cfg = task_config(store, ann, tmp_path / "run", "clip-pool", input_dim=12)
    cfg["data"].update(train_split="train", val_split="train", test_split="test")
    cfg["optim"].update(epochs=31, lr=1e-2)  # 3 steps per epoch
    summary = train(load_config(None, base=cfg), progress=False)
    assert summary["task"] == "clips" and summary["test"]["top1"] > 0.8, summary["test"]
    assert np.asarray(summary["test"]["confusion"]).sum() == 6
    results = json.loads((tmp_path / "run" / "test_clips.json").read_text())["results"]
    assert len(results) == 6 and (tmp_path / "run" / "test_clips_confusion.png").stat().st_size > 1000
    proc = subprocess.run([sys.executable, "-m", "detect", "eval", "--checkpoint", str(tmp_path / "run" / "best.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("test top-1"), proc.stderr


def test_models_lists_every_registered_model_with_its_task_and_size():
    proc = subprocess.run([sys.executable, "-m", "detect", "models", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(MODELS)
    assert rows["actionformer"]["task"] == "segments" and rows["frame-conv"]["task"] == "dense"
    assert rows["clip-pool"]["task"] == "clips" and rows["actionmamba-dbm"]["streams"] == ["features"]
    assert rows["actionformer"]["parameters"] == 29_251_612  # the official THUMOS14 I3D model's count


def test_a_card_of_another_task_with_the_wrong_model_fails_in_one_line(planted, tmp_path):
    store, ann = planted
    cfg = task_config(store, ann, tmp_path / "run", "frame-conv")
    cfg["data"]["dataset"] = "thumos14"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: model 'frame-conv' solves the 'dense' task (it returns FrameOutput), but "
                                   "dataset 'thumos14' is a 'segments' task, which reads DetectorOutput")


def test_evaluate_dispatches_on_the_predictions_file(planted, tmp_path):
    store, ann = planted
    cfg = task_config(store, ann, tmp_path / "run", "frame-conv", dim=32)
    summary = train(load_config(None, base=cfg), progress=False)
    run = [sys.executable, "-m", "detect", "evaluate", "--annotations", str(ann), "--split", "testing", "--json"]
    proc = subprocess.run(run + ["--predictions", str(tmp_path / "run" / "test_frames.npz")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mAP"] == pytest.approx(summary["test"]["mAP"])
    proc = subprocess.run(run[:-1] + ["--predictions", str(tmp_path / "run" / "test_frames.npz"),
                                      "--action-conditional", "0,-20,20"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]  # every mode reported, the card's (here full) first
    assert first.index("(full;") < first.index("sampled-25") < first.index("ms-tct-25")
    assert [line.split(",")[0] for line in proc.stdout.splitlines()[1:]] == [
        "action-conditional (tau=0", "action-conditional (tau=-20", "action-conditional (tau=20"]
    proc = subprocess.run(run[:-1] + ["--predictions", str(tmp_path / "run" / "test_frames.npz"),
                                      "--action-conditional", "x"], capture_output=True, text=True)
    assert proc.returncode == 2 and "expected comma-separated integers, got 'x'" in proc.stderr
    proc = subprocess.run(run[:-1] + ["--predictions", str(tmp_path / "run" / "test_frames.npz"), "--split", "training"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "have no predictions" in proc.stderr


def test_a_missing_store_is_one_line(planted, tmp_path):
    store, ann = planted
    cfg = task_config(tmp_path / "nowhere", ann, tmp_path / "run", "frame-conv")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "nowhere" in proc.stderr


def test_an_option_of_another_task_is_an_error_not_ignored(planted, tmp_path):
    store, ann = planted
    cfg = task_config(store, ann, tmp_path / "run", "frame-conv")
    cfg["task"] = {"resize_to": 100}
    with pytest.raises(ConfigError, match=r"task: unknown keys \['resize_to'\]"):
        load_config(None, base=cfg)
    cfg = task_config(store, ann, tmp_path / "run", "clip-pool")
    cfg["task"] = {"frame_map": "sampled-25"}
    with pytest.raises(ConfigError, match=r"task: unknown keys \['frame_map'\]"):
        load_config(None, base=cfg)
    cfg["task"] = {"label_smoothing": 0.1}
    loaded = load_config(None, base=cfg)
    assert loaded.task.name == "clips" and loaded.task.label_smoothing == 0.1


def test_evaluate_names_an_option_of_another_task_and_an_unknown_task(tmp_path):
    from detect.engine.score import score_file

    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"classes": ["a"], "database": {"v": {"subset": "test", "duration": 10.0, "fps": 10.0,
                                                                     "annotations": []}}}))
    dets = tmp_path / "x_detections.json"
    dets.write_text(json.dumps({"results": {"v": []}}))
    with pytest.raises(ConfigError, match=r"^--frame-map: not an option of the 'segments' task, whose predictions"):
        score_file(ann, dets, "test", settings={"frame_map": "full"})
    with pytest.raises(ConfigError, match=r"^--task: unknown task 'counting'; known: clips, dense, segments$"):
        score_file(ann, dets, "test", task="counting")
    name, result = score_file(ann, dets, "test", settings={"tiou": [0.5]})
    assert name == "segments" and list(result["mAP"]) == ["0.5"]


def test_inference_batches_group_videos_of_similar_length_with_the_same_outputs(planted, tmp_path):
    """Sorted by length, batches pad little; the predictions equal those of one video per batch."""
    import torch

    from detect.engine import prepare
    from detect.engine.run import build_model, predict_videos

    store, ann = planted
    cfg = load_config(None, base=task_config(store, ann, tmp_path / "run", "frame-conv", dim=32))
    run = prepare(cfg)
    ids = run.video_ids("test")
    dataset = run.task.dataset(ids, training=False)
    lengths = [dataset.steps(i) for i in range(len(ids))]
    assert lengths == [dataset.read(i).length for i in range(len(ids))] and len(set(lengths)) > 2
    batches = [[item.video_id for item in b["items"]] for b in run.task.loader(dataset, 3, training=False)]
    ordered = [lengths[ids.index(v)] for b in batches for v in b]
    assert ordered == sorted(lengths)
    torch.manual_seed(0)
    model = build_model(cfg)
    cfg.eval.batch_size = 3
    grouped = predict_videos(model, run, ids, torch.device("cpu"))
    cfg.eval.batch_size = 1
    alone = predict_videos(model, run, ids, torch.device("cpu"))
    for vid in ids:
        np.testing.assert_allclose(grouped[vid]["scores"], alone[vid]["scores"], rtol=0, atol=1e-6)
