"""The training loop: AdamW + warmup/cosine per iteration, EMA, clipping, bf16 autocast, gradient
accumulation, DDP under torchrun, exact resume, validation-based model selection, final test.

Outputs in ``cfg.output``: ``config.yaml``, ``log.jsonl`` (one JSON object per logged step and
per epoch), TensorBoard events in ``tb/``, ``curves.png`` (loss and validation mAP), ``last.pt``
(everything needed to resume exactly), ``best.pt`` (the EMA weights with the best validation
mAP), ``test_detections.json`` and ``summary.json``.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .config import RunConfig, to_dict
from .engine import (ModelEma, build_datasets, eval_protocol, fusion_from_config, load_checkpoint, make_loader,
                     param_groups, predict, save_checkpoint, warmup_cosine)
from .metrics import evaluate_detections
from .models.detector import ActionDetector


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


class _Log:
    """JSONL (and TensorBoard when available) on rank 0."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled, self.file, self.tb = enabled, None, None
        if not enabled:
            return
        self.file = open(out / "log.jsonl", "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            pass

    def write(self, record: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb:
            self.tb.close()


def validate(model: ActionDetector, dataset, cfg: RunConfig, annotations, classes, device, split: str) -> dict:
    """Detections and mAP of ``model`` on ``dataset`` (its videos form subset ``split``)."""
    loader = make_loader(dataset, cfg.eval.batch_size, training=False, max_seq_len=cfg.data.max_seq_len,
                         multiple=model.max_stride, workers=cfg.data.num_workers, seed=cfg.seed)
    fusion = fusion_from_config(cfg, classes)
    detections = predict(model, loader, classes, device, amp=_amp(cfg, device), fusion=fusion)
    tiou, clean = eval_protocol(cfg)
    agnostic = cfg.model.num_classes == 1 and fusion is None

    def label(ann):  # without external classes, class-agnostic segments are scored as proposals
        return {**ann.to_dict(), "label": "action"} if agnostic else ann.to_dict()

    subset_db = {vid: {"subset": split, "annotations": [label(a) for a in annotations.database[vid].annotations]}
                 for vid in dataset.video_ids}
    result = evaluate_detections(subset_db, detections, split, tiou, clean_gt=clean)
    protocol = result.protocol + ("; class-agnostic (no ext_score_file)" if agnostic else
                                  f"; fused with {cfg.eval.ext_score_file} ({cfg.eval.fusion_mode})" if fusion else "")
    return {"average_mAP": result.average, "mAP": result.to_json()["mAP"], "protocol": protocol,
            "detections": detections}


def _amp(cfg: RunConfig, device: torch.device) -> bool:
    if cfg.optim.amp not in ("bf16", "none"):
        raise ValueError(f"optim.amp must be 'bf16' or 'none', got {cfg.optim.amp!r}")
    return cfg.optim.amp == "bf16" and device.type == "cuda"


def train(cfg: RunConfig, resume: bool = False, device: str | None = None, progress: bool = True,
          stop_after_epoch: int | None = None) -> dict[str, Any]:
    """Train, select on validation, evaluate the best checkpoint on test. Returns a summary.

    ``stop_after_epoch`` ends the run after that epoch, checkpointed, as a preempted job would;
    ``resume`` continues it exactly.
    """
    from tqdm import tqdm

    rank, world, local_rank = _distributed()
    dev = torch.device(device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"))
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    annotations, classes, datasets = build_datasets(cfg)
    model = ActionDetector(cfg.model).to(dev)
    ema = ModelEma(model, cfg.optim.ema_decay)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr)
    train_set = datasets["train"]
    sampler = (torch.utils.data.distributed.DistributedSampler(train_set, world, rank, seed=cfg.seed, drop_last=True)
               if world > 1 else None)
    per_step = cfg.optim.batch_size * cfg.optim.accumulate * world
    steps_per_epoch = max(len(train_set) // per_step, 1)
    total = steps_per_epoch * (cfg.optim.epochs + cfg.optim.warmup_epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(
        s, steps_per_epoch * cfg.optim.warmup_epochs, total, cfg.optim.lr, cfg.optim.eta_min))
    start_epoch, best, history = 0, {"average_mAP": -1.0, "epoch": -1}, []
    if resume and (out / "last.pt").exists():
        state = load_checkpoint(out / "last.pt", map_location=dev)
        model.load_state_dict(state["model"])
        ema.module.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if dev.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), dev)
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
    ddp = torch.nn.parallel.DistributedDataParallel(model, [dev] if dev.type == "cuda" else None) if world > 1 else model
    log = _Log(out, rank == 0)
    if rank == 0:
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    amp = _amp(cfg, dev)
    step = start_epoch * steps_per_epoch
    last_epoch = cfg.optim.epochs + cfg.optim.warmup_epochs - 1
    if stop_after_epoch is not None:
        last_epoch = min(last_epoch, stop_after_epoch)
    show = None if progress and rank == 0 else True  # None: shown on a terminal only
    epochs_bar = tqdm(range(start_epoch, last_epoch + 1), desc="train", unit="epoch", disable=show)
    for epoch in epochs_bar:
        train_set.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        loader = make_loader(train_set, cfg.optim.batch_size, training=True, max_seq_len=cfg.data.max_seq_len,
                             multiple=model.max_stride, workers=cfg.data.num_workers, seed=cfg.seed, epoch=epoch,
                             sampler=sampler)
        model.train()
        started = time.perf_counter()
        batches = iter(loader)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", disable=show, leave=False)
        for _ in bar:
            optimizer.zero_grad(set_to_none=True)
            for micro in range(cfg.optim.accumulate):
                batch = next(batches)
                sync = micro == cfg.optim.accumulate - 1 or world == 1
                context = contextlib.nullcontext() if sync else ddp.no_sync()
                with context, torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    outputs = ddp(batch["feats"].to(dev), batch["mask"].to(dev))
                    losses = model.loss(outputs, [s.to(dev) for s in batch["segments"]],
                                        [l.to(dev) for l in batch["labels"]])
                (losses["final_loss"] / cfg.optim.accumulate).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad) \
                if cfg.optim.clip_grad > 0 else torch.tensor(0.0)
            optimizer.step()
            scheduler.step()
            ema.update(model)
            step += 1
            if rank == 0 and step % cfg.log_every == 0:
                record = {"step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0],
                          "grad_norm": float(grad_norm), **{k: v.item() for k, v in losses.items()}}
                log.write(record, step)
                bar.set_postfix(loss=f"{record['final_loss']:.3f}")
        epoch_record = {"epoch": epoch, "step": step, "seconds": time.perf_counter() - started,
                        "final_loss": losses["final_loss"].item()}
        if rank == 0 and "val" in datasets and epoch >= cfg.eval.start_epoch and (epoch + 1) % cfg.eval.every == 0:
            val = validate(ema.module, datasets["val"], cfg, annotations, classes, dev, "val")
            epoch_record["val_average_mAP"] = val["average_mAP"]
            if val["average_mAP"] > best["average_mAP"]:
                best = {"average_mAP": val["average_mAP"], "epoch": epoch, "mAP": val["mAP"]}
                save_checkpoint(out / "best.pt", model=ema.module.state_dict(), config=to_dict(cfg), epoch=epoch,
                                classes=classes, val=best)
        epochs_bar.set_postfix({k: f"{v:.3f}" for k, v in epoch_record.items() if k in ("final_loss", "val_average_mAP")})
        history.append(epoch_record)
        log.write(epoch_record, step)
        if rank == 0:
            rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
            save_checkpoint(out / "last.pt", model=model.state_dict(), ema=ema.module.state_dict(),
                            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), epoch=epoch,
                            best=best, history=history, rng=rng, config=to_dict(cfg), classes=classes)
    summary: dict[str, Any] = {"output": str(out), "epochs": cfg.optim.epochs + cfg.optim.warmup_epochs,
                               "best_val": best}
    if last_epoch < cfg.optim.epochs + cfg.optim.warmup_epochs - 1:
        summary["stopped_after_epoch"] = last_epoch
    elif rank == 0:
        if not (out / "best.pt").exists():  # no validation split: the final EMA weights are the model
            save_checkpoint(out / "best.pt", model=ema.module.state_dict(), config=to_dict(cfg), epoch=last_epoch,
                            classes=classes, val=best)
        if "test" in datasets:
            final = ActionDetector(cfg.model).to(dev)
            final.load_state_dict(load_checkpoint(out / "best.pt", map_location=dev)["model"])
            test = validate(final, datasets["test"], cfg, annotations, classes, dev, "test")
            summary["test"] = {k: v for k, v in test.items() if k != "detections"}
            (out / "test_detections.json").write_text(json.dumps({"results": test["detections"]}))
            log.write({"test_average_mAP": test["average_mAP"], "epoch": last_epoch, "step": step}, step)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log.close()
    if rank == 0:
        from .plot import plot_curves

        plot_curves(out / "log.jsonl", out / "curves.png")
    if world > 1:
        torch.distributed.destroy_process_group()
    return summary
