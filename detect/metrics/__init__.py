"""Evaluation: ActivityNet-style detection mAP."""
from .detection_map import DetectionResult, evaluate_detections

__all__ = ["DetectionResult", "evaluate_detections"]
