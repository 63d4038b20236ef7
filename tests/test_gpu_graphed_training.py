"""``optim.cuda_graph`` through ``detect train`` on a GPU: the graphed run learns what the eager
run learns, logs, checkpoints and resumes. Skipped without CUDA (CI has none); the GPU machine
runs it (``pytest tests/test_gpu_graphed_training.py``)."""
from __future__ import annotations

import json

import pytest
import torch

from detect.config import load_config
from detect.engine import train
from planted import make_planted, task_config, tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


def _run(store, ann, out, graph: bool, **kw):
    cfg = tiny_config(store, ann, out, epochs=6, optim__cuda_graph=graph, optim__amp="none", **kw)
    cfg["model"]["backbone"]["drop_path"] = 0.0
    return train(load_config(None, base=cfg), progress=False, device="cuda")


def test_graphed_training_matches_eager_and_resumes(tmp_path):
    store, ann = make_planted(tmp_path)
    eager = _run(store, ann, tmp_path / "eager", False)
    graphed = _run(store, ann, tmp_path / "graphed", True)
    assert graphed["test"]["average_mAP"] == pytest.approx(eager["test"]["average_mAP"], abs=0.02)
    losses = [[json.loads(line)["final_loss"] for line in (tmp_path / name / "log.jsonl").read_text().splitlines()
               if '"lr"' in line] for name in ("eager", "graphed")]
    assert losses[0] and losses[1] == pytest.approx(losses[0], rel=1e-3)
    a = torch.load(tmp_path / "eager" / "best.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "graphed" / "best.pt", weights_only=True)["model"]
    num = sum(float((a[k].double() - b[k].double()).norm() ** 2) for k in a if a[k].is_floating_point())
    den = sum(float(a[k].double().norm() ** 2) for k in a if a[k].is_floating_point())
    assert (num / den) ** 0.5 < 1e-3

    cfg = tiny_config(store, ann, tmp_path / "resumed", epochs=6, optim__cuda_graph=True, optim__amp="none")
    cfg["model"]["backbone"]["drop_path"] = 0.0
    train(load_config(None, base=cfg), progress=False, device="cuda", stop_after_epoch=2)
    resumed = train(load_config(None, base=cfg), progress=False, device="cuda", resume=True)
    assert resumed["test"]["average_mAP"] == pytest.approx(graphed["test"]["average_mAP"], abs=0.02)


def test_graphed_dense_training_matches_eager(tmp_path):
    """MS-Temba (v3: no host reads in its forward) with and without the graph: the same per-step
    losses and frame mAP; the C-state term rides along in the graph."""
    store, ann = make_planted(tmp_path)
    runs = {}
    for graph in (False, True):
        cfg = task_config(store, ann, tmp_path / str(graph), "ms-temba", embed_dims=[8, 12, 16], drop_path=0.0,
                          cstate_weight=1.0)
        cfg["optim"]["cuda_graph"] = graph
        runs[graph] = train(load_config(None, base=cfg), progress=False, device="cuda")
    assert runs[True]["test"]["mAP"] == pytest.approx(runs[False]["test"]["mAP"], abs=0.02)
    losses = [[json.loads(line)["final_loss"] for line in (tmp_path / str(g) / "log.jsonl").read_text().splitlines()
               if '"lr"' in line] for g in (False, True)]
    assert losses[0] and losses[1] == pytest.approx(losses[0], rel=1e-3)


def test_graphed_sg_mamba_training_matches_eager(tmp_path):
    """SG-Mamba with a fixed stem window count (``model.heatmap.max_windows``) graphs; with and
    without the graph: the same per-step losses and test mAP."""
    from detect.data.synthetic import write_two_modality_dataset

    feats, heat, ann = write_two_modality_dataset(tmp_path / "data")
    runs = {}
    for graph in (False, True):
        model = {"name": "sg-mamba", "num_classes": 4, "appearance_dim": 12, "down_dim": 16, "fusion_weight": 0.5,
                 "heatmap": {"window": 4, "size": 14, "patch": 7, "dim": 16, "depth": 1, "drop_path": 0.0,
                             "max_windows": 4 * 128},
                 "head_dim": 16, "ccm_layers": 1, "ccm_drop_path": 0.0, "regression_range": [[0, 4], [4, 8], [8, 10000]],
                 "backbone": {"embd_dim": 16, "arch": [1, 1, 2], "backend": "cuda", "drop_path": 0.0,
                              "max_seq_len": 128}}
        cfg = {"model": model,
               "data": {"streams": {"features": [str(feats)], "heatmaps": [str(heat)]}, "annotations": str(ann),
                        "train_split": "training", "val_split": "training", "val_holdout": 0.2,
                        "test_split": "testing", "max_seq_len": 128, "num_workers": 0},
               "optim": {"lr": 3e-3, "epochs": 8, "warmup_epochs": 1, "batch_size": 4, "amp": "none",
                         "weight_decay": 0.01, "ema_decay": 0.9, "cuda_graph": graph},
               "task": {"tiou": [0.3, 0.5, 0.7]}, "eval": {"every": 4}, "output": str(tmp_path / str(graph)),
               "seed": 0, "log_every": 5}
        runs[graph] = train(load_config(None, base=cfg), progress=False, device="cuda")
    assert runs[True]["test"]["average_mAP"] == pytest.approx(runs[False]["test"]["average_mAP"], abs=0.02)
    losses = [[json.loads(line)["final_loss"] for line in (tmp_path / str(g) / "log.jsonl").read_text().splitlines()
               if '"lr"' in line] for g in (False, True)]
    assert losses[0] and losses[1] == pytest.approx(losses[0], rel=1e-3)
