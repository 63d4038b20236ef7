"""The training loop, for every task: AdamW + warmup/cosine per iteration, EMA, clipping, bf16
autocast, gradient accumulation, DDP under torchrun, exact resume, model selection on the
validation split by the task's metric, the best checkpoint evaluated on test.

Outputs in ``cfg.output``: ``config.yaml``, ``log.jsonl`` (one JSON object per logged step and
per epoch), TensorBoard events in ``tb/``, ``curves.png`` (loss and validation metric),
``last.pt`` (everything needed to resume exactly), ``best.pt`` (the EMA weights with the best
validation score), the task's test predictions (``test_*``) and ``summary.json``.
"""
from __future__ import annotations

import contextlib
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from extract.atomic import write_text_atomically

from ..config import RunConfig, to_dict
from ..data.workers import loader_workers
from ..errors import DataError, DetectError
from ..tasks.base import move_inputs
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import close_distributed, configure_cpu_threads, init_distributed
from .ema import ModelEma
from .graphed_step import GraphedStep, can_graph, graph_ready_optimizer, keep_lr_tensors
from .optim import param_groups, warmup_cosine
from .run import build_model, default_device, evaluate_split, length_multiple, prepare, use_amp


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


def _scores(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluation result without its predictions (what logs and summaries keep)."""
    return {k: v for k, v in result.items() if k != "predictions"}


RUN_FILES = ("last.pt", "best.pt", "summary.json")       # a run that got somewhere: never overwritten
STARTED_FILES = ("log.jsonl", "config.yaml", "tb")      # what a run writes before its first checkpoint


class RunExistsError(DetectError):
    """The output folder holds another run; the message says how to continue or start anew."""


def config_text(cfg: RunConfig) -> str:
    """``config.yaml`` of a run, as written into its folder."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def check_output(out: Path, resume: bool, cfg: RunConfig) -> list[Path]:
    """Refuse to train into a folder that holds a run unless resuming it (nothing is clobbered).
    A run stopped before its first checkpoint (killed, Ctrl-C) holds nothing to resume: the
    same config restarts it, with or without ``--resume``; the files it left are returned, to be
    cleared. Such a start of another config is refused."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not resume:
        raise RunExistsError(f"{out} holds a run ({', '.join(found)}): pass --resume to continue it, or "
                             f"output=<new folder> to start another")
    if resume and found and not (out / "last.pt").exists():
        raise RunExistsError(f"{out} holds a finished or broken run without last.pt: nothing to resume")
    if found:
        return []
    started = [out / name for name in STARTED_FILES if (out / name).exists()]
    saved = out / "config.yaml"
    if saved.exists() and saved.read_text(encoding="utf-8") != config_text(cfg):
        raise RunExistsError(f"{out} holds the start of another run (stopped before its first checkpoint, with "
                             f"another config.yaml): train into output=<new folder>, or delete {out}")
    return started


def train(cfg: RunConfig, resume: bool = False, device: str | None = None, progress: bool = True,
          stop_after_epoch: int | None = None) -> dict[str, Any]:
    """Train, select on validation, evaluate the best checkpoint on test. Returns a summary.

    ``stop_after_epoch`` ends the run after that epoch, checkpointed, as a preempted job would;
    ``resume`` continues it exactly. A folder that holds a run is refused without ``resume``, and
    the run folder is locked while rank 0 writes it.
    """
    from extract.store.lock import WriterLock

    out = Path(cfg.output)
    check_output(out, resume, cfg)  # every rank, before any of them can write (the process group is a barrier)
    rank, world, local_rank = init_distributed()
    dev = default_device(device) if device else torch.device(f"cuda:{local_rank}" if torch.cuda.is_available()
                                                             else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(out / ".lock", f"run folder {out}", "wait for it or train into another output=") \
        if rank == 0 else None
    try:
        if lock is not None:  # again under the lock: another run may have finished meanwhile
            for path in check_output(out, resume, cfg):  # a start without a checkpoint: begin again
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        return _train(cfg, resume, dev, rank, world, progress, stop_after_epoch)
    finally:
        if lock is not None:
            lock.close()
        close_distributed(world)


def _train(cfg: RunConfig, resume: bool, dev: torch.device, rank: int, world: int, progress: bool,
           stop_after_epoch: int | None) -> dict[str, Any]:
    from tqdm import tqdm

    out = Path(cfg.output)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    threads = configure_cpu_threads(loader_workers(cfg.data.num_workers), dev)
    run = prepare(cfg)
    task, metric = run.task, run.task.metric
    recipe = run.task.streams.recipes()
    datasets = {name: run.dataset(name, training=name == "train") for name, ids in run.splits.items() if ids}
    model = build_model(cfg)
    if not (resume and (out / "last.pt").exists()) and hasattr(model, "load_pretrained"):
        model.load_pretrained()  # a fresh run starts from the published weights its config names
    model = model.to(dev)
    criterion = task.criterion(model).to(dev)
    ema = ModelEma(model, cfg.optim.ema_decay)
    # fused: one kernel for the whole update on CUDA (the CPU keeps the for-each path)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  fused=dev.type == "cuda")
    train_set = datasets["train"]
    sampler = (torch.utils.data.distributed.DistributedSampler(train_set, world, rank, seed=cfg.seed, drop_last=True)
               if world > 1 else None)
    per_step = cfg.optim.batch_size * cfg.optim.accumulate * world
    if len(train_set) < per_step:  # full batches only: not one optimizer step would run
        raise DataError(f"the training split has {len(train_set)} videos, fewer than one optimizer step takes "
                        f"(optim.batch_size {cfg.optim.batch_size} x optim.accumulate {cfg.optim.accumulate} x "
                        f"{world} processes = {per_step}): lower optim.batch_size or optim.accumulate")
    steps_per_epoch = len(train_set) // per_step
    total = steps_per_epoch * cfg.optim.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(
        s, steps_per_epoch * cfg.optim.warmup_epochs, total, cfg.optim.lr, cfg.optim.eta_min))
    start_epoch, best, history = 0, {metric: -1.0, "epoch": -1}, []
    if resume and (out / "last.pt").exists():
        state = load_checkpoint(out / "last.pt", map_location=dev)
        model.load_state_dict(state["model"])
        ema.module.load_state_dict(state["ema"])
        criterion.load_state_dict(state["criterion"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if dev.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), dev)
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
    graphed = None
    if can_graph(cfg, dev, world, model, criterion):
        graph_ready_optimizer(optimizer, dev)
        lr_tensors = [group["lr"] for group in optimizer.param_groups]
        graphed = GraphedStep(model, criterion, optimizer, ema, cfg.optim.clip_grad, use_amp(cfg, dev))
    ddp = torch.nn.parallel.DistributedDataParallel(model, [dev] if dev.type == "cuda" else None) if world > 1 else model
    log = _Log(out, rank == 0)
    if threads:
        log.write({"epoch": start_epoch, "note": threads}, start_epoch * steps_per_epoch)
    if rank == 0:
        # whole or absent: a half-written one (Ctrl-C) would read as another run's and block the restart
        write_text_atomically(out / "config.yaml", config_text(cfg))
    amp = use_amp(cfg, dev)
    multiple = length_multiple(model)
    step = start_epoch * steps_per_epoch
    last_epoch = cfg.optim.epochs - 1
    if stop_after_epoch is not None:
        last_epoch = min(last_epoch, stop_after_epoch)
    show = None if progress and rank == 0 else True  # None: shown on a terminal only
    epochs_bar = tqdm(range(start_epoch, last_epoch + 1), desc="train", unit="epoch", disable=show)
    for epoch in epochs_bar:
        train_set.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        loader = task.loader(train_set, cfg.optim.batch_size, training=True, multiple=multiple, epoch=epoch,
                             sampler=sampler)
        model.train()
        criterion.train()
        started = time.perf_counter()
        batches = iter(loader)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", disable=show, leave=False)
        for _ in bar:
            if graphed is not None:
                batch = next(batches)
                losses, grad_norm = graphed.step(move_inputs(batch, dev), batch)
                scheduler.step()
                keep_lr_tensors(optimizer, lr_tensors)
            else:
                optimizer.zero_grad(set_to_none=True)
                for micro in range(cfg.optim.accumulate):
                    batch = next(batches)
                    sync = micro == cfg.optim.accumulate - 1 or world == 1
                    context = contextlib.nullcontext() if sync else ddp.no_sync()
                    with context, torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        losses = criterion(ddp(**move_inputs(batch, dev)), batch)
                    (losses["final_loss"] / cfg.optim.accumulate).backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad) \
                    if cfg.optim.clip_grad > 0 else torch.tensor(0.0)
                optimizer.step()
                scheduler.step()
                ema.update(model)
            step += 1
            if rank == 0 and step % cfg.log_every == 0:
                record = {"step": step, "epoch": epoch, "lr": float(scheduler.get_last_lr()[0]),
                          "grad_norm": float(grad_norm), **{k: float(v.detach()) for k, v in losses.items()}}
                log.write(record, step)
                bar.set_postfix(loss=f"{record['final_loss']:.3f}")
        epoch_record = {"epoch": epoch, "step": step, "seconds": time.perf_counter() - started,
                        "final_loss": float(losses["final_loss"].detach())}
        if rank == 0 and "val" in datasets and epoch >= cfg.eval.start_epoch and (epoch + 1) % cfg.eval.every == 0:
            val = _scores(evaluate_split(ema.module, run, run.splits["val"], "val", dev, datasets["val"]))
            epoch_record[f"val_{metric}"] = val[metric]
            if val[metric] > best[metric]:
                best = {**val, "epoch": epoch}
                save_checkpoint(out / "best.pt", model=ema.module.state_dict(), config=to_dict(cfg), epoch=epoch,
                                classes=task.classes, val=best, recipe=recipe)
        epochs_bar.set_postfix({k: f"{v:.3f}" for k, v in epoch_record.items()
                                if k in ("final_loss", f"val_{metric}")})
        history.append(epoch_record)
        log.write(epoch_record, step)
        if rank == 0:
            rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
            save_checkpoint(out / "last.pt", model=model.state_dict(), ema=ema.module.state_dict(),
                            criterion=criterion.state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), epoch=epoch, best=best, history=history, rng=rng,
                            config=to_dict(cfg), classes=task.classes, recipe=recipe)
    summary: dict[str, Any] = {"output": str(out), "task": task.name, "metric": metric,
                               "epochs": cfg.optim.epochs, "best_val": best}
    if last_epoch < cfg.optim.epochs - 1:
        summary["stopped_after_epoch"] = last_epoch
    elif rank == 0:
        if not (out / "best.pt").exists():  # no validation split: the final EMA weights are the model
            save_checkpoint(out / "best.pt", model=ema.module.state_dict(), config=to_dict(cfg), epoch=last_epoch,
                            classes=task.classes, val=best, recipe=recipe)
        if "test" in datasets:
            final = build_model(cfg).to(dev)
            final.load_state_dict(load_checkpoint(out / "best.pt", map_location=dev)["model"])
            test = evaluate_split(final, run, run.splits["test"], "test", dev, datasets["test"])
            summary["test"] = _scores(test)
            written = task.write_predictions(test["predictions"], out / f"test{task.prediction_suffix}", test)
            summary["files"] = [str(p) for p in written]
            log.write({f"test_{metric}": test[metric], "epoch": last_epoch, "step": step}, step)
        write_text_atomically(out / "summary.json", json.dumps(summary, indent=2))
    log.close()
    if rank == 0:
        from ..plot import plot_curves

        plot_curves(out / "log.jsonl", out / "curves.png")
    return summary
