"""MS-Temba ablation on synthetic context-dependent actions (``detect.data.synthetic``): test
per-frame mAP of the conv baseline, the v3 and v1 variants, and the C-state term with both
objectives, over several data/initialisation seeds. CPU is enough (a few minutes per row).

    python experiments/ms_temba_ablation.py --out runs/ms_temba_ablation --seeds 3
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from detect.config import load_config
from detect.data.synthetic import write_context_dataset
from detect.engine import train

TINY = {"embed_dims": [16, 24, 32], "drop_path": 0.0, "backend": "torch"}
ROWS = {
    "frame-conv (baseline)": ("frame-conv", {}),
    "ms-temba v3": ("ms-temba", TINY),
    "ms-temba v1": ("ms-temba", {**TINY, "variant": "v1"}),
    "v3 + C-state align w=1": ("ms-temba", {**TINY, "cstate_weight": 1.0}),
    "v3 + C-state align w=100 (public)": ("ms-temba", {**TINY, "cstate_weight": 100.0}),
    "v3 + C-state diverse w=1": ("ms-temba", {**TINY, "cstate_weight": 1.0, "cstate_objective": "diverse"}),
    "v3 + C-state diverse w=100": ("ms-temba", {**TINY, "cstate_weight": 100.0, "cstate_objective": "diverse"}),
}


def run_config(data: Path, output: Path, model: str, fields: dict, seed: int, epochs: int) -> dict:
    return {"model": {"name": model, "num_classes": 4, "input_dim": 16, **fields},
            "data": {"streams": {"features": [str(data / "store")]}, "annotations": str(data / "annotations.json"),
                     "train_split": "training", "val_split": "training", "val_holdout": 0.2, "test_split": "testing",
                     "max_seq_len": 256, "num_workers": 0},
            "optim": {"lr": 1e-2, "epochs": epochs, "warmup_epochs": 1, "batch_size": 4, "amp": "none",
                      "weight_decay": 0.01, "ema_decay": 0.9},
            "eval": {"every": 2, "aux_weight": 0.3}, "output": str(output), "seed": seed, "log_every": 50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the data and the runs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in ROWS}
    for seed in range(args.seeds):
        data = args.out / f"data_{seed}"
        if not (data / "annotations.json").exists():
            write_context_dataset(data, seed=seed)
        for name, (model, fields) in ROWS.items():
            output = args.out / f"seed{seed}" / name.split(" (")[0].replace(" ", "_").replace("=", "")
            summary = train(load_config(None, base=run_config(data, output, model, fields, seed, args.epochs)),
                            progress=False)
            results[name].append(100 * summary["test"]["mAP"])
            print(f"seed {seed}  {name:36s} {results[name][-1]:6.2f}", flush=True)
    print(f"\n| model | test per-frame mAP, median (min-max) over {args.seeds} seeds |\n|---|---|")
    for name, maps in results.items():
        print(f"| {name} | {statistics.median(maps):.1f} ({min(maps):.1f}-{max(maps):.1f}) |")


if __name__ == "__main__":
    main()
