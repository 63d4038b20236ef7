"""Metrics of the three tasks: detection mAP (segments), per-frame mAP (dense), top-k (clips)."""
from .classification import confusion_matrix, topk_accuracy
from .detection_map import DetectionResult, evaluate_detections
from .frame_map import FrameMapResult, frame_map

__all__ = ["DetectionResult", "FrameMapResult", "confusion_matrix", "evaluate_detections", "frame_map",
           "topk_accuracy"]
