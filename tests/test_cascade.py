"""The two-stage cascade: window arithmetic, stage-2 training windows, detections shifted back to
video time, and the commands end to end on synthetic data."""
import json

import numpy as np
import pytest
import torch

from detect.config import load_config
from detect.data.streams import StreamSet
from detect.data.synthetic import write_two_modality_dataset
from detect.engine import train
from detect.tasks.segments.cascade import centred_window, event_windows, run_cascade, window_steps, write_windows
from detect.outputs import DetectorOutput
from detect.outputs import make_points
from extract.annotations import load_annotations
from extract.store import SnippetGrid, open_store


def test_windows_are_centred_and_kept_inside_the_video():
    assert centred_window(10, 12, 60, 4) == (9, 13)
    assert centred_window(0.5, 1.5, 60, 4) == (0, 4)          # moved right at the start
    assert centred_window(58, 59.5, 60, 4) == (56, 60)        # moved left at the end
    assert centred_window(1, 2, 3, 4) == (0, 3)               # a video shorter than a window
    grid = SnippetGrid(window=4, stride=2, fps=10.0, num_snippets=50)  # step k is centred at 0.2 (k + 1) s
    assert window_steps(grid, 1.0, 2.0) == (4, 9)
    assert window_steps(grid, 20.0, 30.0) is None


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade")
    return write_two_modality_dataset(root / "full", n_train=12, n_test=4, seed=3), root


@pytest.fixture(scope="module")
def stage2_windows(data):
    """Stage-2 training windows around the appearance_a events: ``(summary, folder)``."""
    (feats, heat, ann), root = data
    summary = write_windows({"features": [str(feats)], "heatmaps": [str(heat)]}, ann, "appearance_a", 3.0,
                            root / "windows")
    return summary, root / "windows"


def test_training_windows_slice_every_store_and_shift_the_annotations(data, stage2_windows):
    (feats, heat, ann), root = data
    summary, _ = stage2_windows
    full = load_annotations(ann)
    windows = load_annotations(root / "windows" / "annotations.json")
    assert summary["windows"] == len(windows.database) > 0
    assert windows.classes == ["appearance_b", "skeleton_a", "skeleton_b"]
    with open_store(feats) as f, open_store(root / "windows" / "features") as wf, \
            open_store(root / "windows" / "heatmaps") as wh, open_store(heat) as h:
        for key, video in windows.database.items():
            vid = key.rsplit("_w", 1)[0]
            meta = wf.meta(key)
            f0 = meta.extra["window_start_frame"]
            grid = f.grid(vid)
            k0 = int(np.flatnonzero(grid.start_frames() == f0)[0])
            rows = wf.read(key)
            np.testing.assert_array_equal(rows, f.read(vid)[k0:k0 + len(rows)])
            frames = wh.read(key)
            np.testing.assert_array_equal(frames, h.read(vid)[f0:f0 + len(frames)])
            assert len(frames) == (len(rows) - 1) * 2 + 4          # the frames of exactly those steps
            t0 = f0 / grid.fps
            for a in video.annotations:                             # wholly inside, in window seconds
                assert 0 <= a.segment[0] <= a.segment[1] <= video.duration + 1e-6
                assert any(abs(b.segment[0] - t0 - a.segment[0]) < 1e-3 and b.label == a.label
                           for b in full.database[vid].annotations)


def test_stage2_detections_come_back_in_video_time(data, stage2_windows, monkeypatch):
    """A stand-in stage 2 that always detects steps 1..3 of its window: in video time that is
    the same steps counted from the window's first step."""
    (feats, heat, ann), root = data
    cfg = load_config(None, base={
        "model": {"name": "actionmamba-dbm", "num_classes": 3, "head_dim": 8, "regression_range": [[0, 10000]],
                  "backbone": {"input_dim": 12, "embd_dim": 8, "arch": [1, 1, 0], "backend": "torch"}},
        "data": {"streams": {"features": [str(feats)]}, "annotations": str(stage2_windows[1] / "annotations.json")},
        "output": str(root / "unused")})
    from detect.models import create_model

    model = create_model(cfg.model)

    def fixed(mask, features):
        t = mask.shape[1]
        logits = torch.full((mask.shape[0], t, 3), -20.0)
        logits[:, 2, 1] = 5.0                                        # class 1 ("skeleton_a") centred on step 2
        offsets = torch.ones(mask.shape[0], t, 2)                   # one step to each side: steps 1..3
        return DetectorOutput([logits], [offsets], [mask], [1], make_points([t], [1], [(0, 10000)], mask.device))

    monkeypatch.setattr(model, "forward", fixed)
    streams = StreamSet.open({"features": [str(feats)]})
    annotations = load_annotations(ann)
    events = {"test_012": [(5.0, 6.0)], "test_013": [(0.2, 1.0), (7.0, 9.0)]}
    results = run_cascade([(cfg, model)], streams, annotations, events, 3.0, torch.device("cpu"))
    grid = open_store(feats).grid("test_013")
    for vid, spans in events.items():
        dets = results[vid]
        assert len(dets) == len(spans) and {d["label"] for d in dets} == {"skeleton_a"}
        for w in event_windows({vid: spans}, {vid: grid}, {vid: annotations.database[vid].duration}, 3.0):
            expected = grid.index_to_seconds(np.array([w.first_step + 1.0, w.first_step + 3.0]))
            assert any(np.allclose(d["segment"], expected) for d in dets), (dets, expected)


def test_the_cascade_commands_end_to_end(data, tmp_path):
    from detect.cli import main

    (feats, heat, ann), root = data
    assert main(["cascade-windows", "--stream", f"features={feats}", "--annotations", str(ann), "--event",
                 "appearance_a", "--window", "3.0", "--out", str(tmp_path / "w")]) == 0
    cfg = {"model": {"name": "actionmamba-dbm", "num_classes": 3, "head_dim": 8, "regression_range": [[0, 4], [4, 10000]],
                     "backbone": {"input_dim": 12, "embd_dim": 8, "arch": [1, 1, 1], "backend": "torch"}},
           "data": {"streams": {"features": [str(tmp_path / "w" / "features")]},
                    "annotations": str(tmp_path / "w" / "annotations.json"), "train_split": "training",
                    "val_split": "training", "val_holdout": 0.25, "test_split": "training", "max_seq_len": 32,
                    "num_workers": 0},
           "optim": {"epochs": 2, "warmup_epochs": 1, "batch_size": 4, "amp": "none"},
           "output": str(tmp_path / "stage2"), "seed": 0}
    train(load_config(None, base=cfg), progress=False)
    out = tmp_path / "dets.json"
    assert main(["cascade", "--oracle-stage1", "--annotations", str(ann), "--event", "appearance_a", "--window", "3.0",
                 "--stage2", str(tmp_path / "stage2" / "best.pt"), "--stream", f"features={feats}", "--split",
                 "testing", "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    annotations = load_annotations(ann)
    assert set(results) == set(annotations.subset("testing"))
    for vid, dets in results.items():  # every detection lies in a window around one of the video's events
        events = [a.segment for a in annotations.database[vid].annotations if a.label == "appearance_a"]
        for d in dets:
            assert any(s - 3.0 <= d["segment"][0] and d["segment"][1] <= e + 3.0 for s, e in events), (vid, d)
    assert main(["cascade", "--stage2", str(tmp_path / "stage2" / "best.pt"), "--out", str(out)]) == 1  # no stage 1


def test_a_stage1_model_keeps_only_its_event_class(data, tmp_path):
    (feats, heat, ann), root = data
    cfg = {"model": {"name": "actionmamba-dbm", "num_classes": 1, "head_dim": 8, "regression_range": [[0, 4], [4, 10000]],
                     "backbone": {"input_dim": 12, "embd_dim": 8, "arch": [1, 1, 1], "backend": "torch"}},
           "data": {"streams": {"features": [str(feats)]}, "annotations": str(ann), "classes": ["appearance_a"],
                    "train_split": "training", "val_split": "training", "val_holdout": 0.25, "test_split": "testing",
                    "max_seq_len": 64, "num_workers": 0},
           "optim": {"epochs": 2, "warmup_epochs": 1, "batch_size": 4, "amp": "none"},
           "output": str(tmp_path / "stage1"), "seed": 0}
    train(load_config(None, base=cfg), progress=False)
    dets = json.loads((tmp_path / "stage1" / "test_detections.json").read_text())["results"]
    assert {d["label"] for v in dets.values() for d in v} == {"appearance_a"}
    cfg["data"]["classes"] = ["AllTime"]
    from detect.config import ConfigError
    from detect.engine import prepare

    with pytest.raises(ConfigError, match=r"data.classes: \['AllTime'\] are not classes of"):
        prepare(load_config(None, base=cfg))


def test_interrupted_windows_resume_to_the_same_stores(data, stage2_windows, tmp_path, monkeypatch):
    from store_fixtures import contents

    from detect.tasks.segments import cascade

    (feats, heat, ann), _ = data
    summary, whole = stage2_windows
    streams = {"features": [str(feats)], "heatmaps": [str(heat)]}
    real, written = cascade._write_slice, []

    def interrupted(*args):
        if len(written) == 5:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the cut
        written.append(args[3])
        return real(*args)

    monkeypatch.setattr(cascade, "_write_slice", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_windows(streams, ann, "appearance_a", 3.0, tmp_path / "windows")
    monkeypatch.setattr(cascade, "_write_slice", real)
    assert write_windows(streams, ann, "appearance_a", 3.0, tmp_path / "windows") == {
        **summary, "out": str(tmp_path / "windows")}  # the same command again
    for name in (feats.name, heat.name):
        assert contents(tmp_path / "windows" / name) == contents(whole / name)
    assert (tmp_path / "windows" / "annotations.json").read_text() == (whole / "annotations.json").read_text()
