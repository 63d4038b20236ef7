"""Models, by name: ``create_model(name, **config)``; ``python -m detect models`` lists them.

Each import below is a model module's registry line.
"""
from . import actionformer, clip_classifier, frame_classifier, ms_temba, msf_mamba, sg_mamba  # noqa: F401  (they register themselves)
from .registry import MODELS, ModelEntry, create_model, describe_models, model_config, model_entry

__all__ = ["MODELS", "ModelEntry", "create_model", "describe_models", "model_config", "model_entry"]
