"""The task-agnostic engine: optimiser groups and schedule (``optim``), ``ema``,
``checkpoint`` files, ``distributed`` setup, a run's pieces (``run``) and the ``trainer``."""
from .checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from .ema import ModelEma
from .optim import param_groups, warmup_cosine
from .run import Run, evaluate_split, inference_run, load_trained, prepare
from .trainer import train

__all__ = ["ModelEma", "Run", "evaluate_split", "inference_run", "load_checkpoint", "load_trained", "param_groups",
           "prepare", "resolve_checkpoint", "save_checkpoint", "train", "warmup_cosine"]
