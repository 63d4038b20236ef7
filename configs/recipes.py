"""Write the published-recipe configs: {thumos14_i3d, thumos14_iv2_6b, activitynet_iv2_6b, hacs_iv2_6b,
fineaction_iv2_1b} x {transformer, vim, dbm}, from one table so that they cannot drift apart.

    python configs/recipes.py            # (re)write configs/*_{transformer,vim,dbm}.yaml
    python configs/recipes.py --check    # exit 1 if a file differs from what this script writes

Sources: ActionFormer's THUMOS14/I3D recipe and ActionMamba's per-dataset configs (see the
reference notes). Paths under stores/ and annotations/ are where the README's commands put them.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
SIX = [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
EIGHT = [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 128], [128, 256], [256, 10000]]

RECIPES = {
    "thumos14_i3d": {
        "card": "thumos14", "store": "stores/thumos14_i3d", "input_dim": 2048, "classes": 20, "dim": 512,
        "arch": [2, 2, 5], "ranges": SIX, "window": 19, "lr": 1e-4, "epochs": 30, "batch": 2, "max_seq_len": 2304,
        "loss_norm": 100, "loss_weight": 1.0, "smoothing": 0.0,
        "post": {"multiclass_nms": True, "nms_sigma": 0.5, "max_seg_num": 200},
    },
    "thumos14_iv2_6b": {
        "card": "thumos14", "store": "stores/thumos14_iv2_6b", "input_dim": 3200, "classes": 20, "dim": 512,
        "arch": [2, 2, 5], "ranges": SIX, "window": 19, "lr": 1e-4, "epochs": 45, "batch": 2, "max_seq_len": 2304,
        "loss_norm": 100, "loss_weight": 1.0, "smoothing": 0.0,
        "post": {"multiclass_nms": True, "nms_sigma": 0.5, "max_seg_num": 200},
    },
    "activitynet_iv2_6b": {
        "card": "activitynet", "store": "stores/activitynet_iv2_6b", "input_dim": 3200, "classes": 1, "dim": 256,
        "arch": [2, 2, 5], "ranges": SIX, "window": [7, 7, 7, 7, 7, -1], "lr": 1e-3, "epochs": 10, "batch": 16,
        "max_seq_len": 192, "resize_to": 192, "loss_norm": 200, "loss_weight": 2.0, "smoothing": 0.1,
        "post": {"multiclass_nms": False, "nms_sigma": 0.75, "voting_thresh": 0.9, "max_seg_num": 100},
    },
    "hacs_iv2_6b": {
        "card": "hacs", "store": "stores/hacs_iv2_6b", "input_dim": 3200, "classes": 1, "dim": 256,
        "arch": [2, 2, 5], "ranges": SIX, "window": [25, 25, 25, 25, 25, -1], "abs_pe": True, "lr": 1e-3,
        "epochs": 20, "batch": 16, "max_seq_len": 2304, "loss_norm": 400, "loss_weight": 1.0, "smoothing": 0.1,
        "post": {"multiclass_nms": False, "nms_sigma": 0.75, "voting_thresh": 0.7, "max_seg_num": 100,
                 "duration_thresh": 0.1},
    },
    "fineaction_iv2_1b": {
        "card": "fineaction", "store": "stores/fineaction_iv2_1b", "input_dim": 1408, "classes": 106, "dim": 512,
        "arch": [2, 2, 7], "ranges": EIGHT, "window": 7, "lr": 1e-3, "epochs": 20, "batch": 16, "max_seq_len": 2304,
        "downsample": 2, "loss_norm": 100, "loss_weight": 1.0, "smoothing": 0.0,
        "post": {"multiclass_nms": True, "nms_sigma": 0.5, "max_seg_num": 200},
    },
}
MODELS = {"transformer": "actionformer", "vim": "actionmamba-vim", "dbm": "actionmamba-dbm"}


def recipe(name: str, block: str) -> dict:
    r = RECIPES[name]
    backbone = {"input_dim": r["input_dim"], "embd_dim": r["dim"], "arch": r["arch"],
                # ActionMamba hard-codes drop path 0.3 in its Mamba blocks; ActionFormer uses 0.1
                "drop_path": 0.1 if block == "transformer" else 0.3}
    if block == "transformer":
        backbone.update(n_head=4, window=r["window"], use_abs_pe=r.get("abs_pe", False))
    data = {"streams": {"features": [r["store"]]}, "annotations": f"annotations/{r['card']}.json", "dataset": r["card"],
            "max_seq_len": r["max_seq_len"], "num_workers": 4}
    task = {"name": "segments", "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0]}
    if "resize_to" in r:
        task["resize_to"] = r["resize_to"]
    if "downsample" in r:
        task["downsample_rate"] = r["downsample"]
    if r["classes"] == 1:
        task["class_agnostic"] = True
    task.update(init_loss_norm=r["loss_norm"], loss_weight=r["loss_weight"], label_smoothing=r["smoothing"],
                postprocess=copy.deepcopy(r["post"]))
    if r["classes"] == 1:
        # Published numbers label class-agnostic segments with an external video classifier's
        # top-2 classes: set task.ext_score_file=... (without it, mAP is class-agnostic).
        task.update(ext_score_file=None, fusion_topk=2, fusion_mode="sqrt")
    cfg = {
        "model": {"name": MODELS[block], "num_classes": r["classes"], "head_dim": r["dim"], "backbone": backbone,
                  "regression_range": r["ranges"]},
        "data": data,
        "task": task,
        # epochs count the 5 warm-up ones (the upstream configs add them on top of "epochs")
        "optim": {"lr": r["lr"], "weight_decay": 0.05, "epochs": r["epochs"] + 5, "warmup_epochs": 5,
                  "batch_size": r["batch"], "clip_grad": 1.0, "ema_decay": 0.999, "amp": "bf16",
                  "cuda_graph": True},  # one GPU: each step replayed from a CUDA graph (2.0-3.3x it/s)
        "eval": {"every": 1, "start_epoch": 5},
        "output": f"runs/{name}_{block}",
    }
    return cfg


def render(name: str, block: str) -> str:
    head = (f"# {name} with the {MODELS[block]} model. Generated by configs/recipes.py: edit the table there.\n"
            f"# python -m detect train --config configs/{name}_{block}.yaml [key=value ...]\n")
    return head + yaml.safe_dump(recipe(name, block), sort_keys=False, default_flow_style=None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    stale = []
    for name in RECIPES:
        for block in MODELS:
            path = HERE / f"{name}_{block}.yaml"
            text = render(name, block)
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(path.name)
            else:
                path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
