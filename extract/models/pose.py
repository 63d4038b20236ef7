"""Per-frame pose models: uint8 frames -> up to ``persons`` candidates per frame, each as K
keypoints ``(x, y, confidence)`` in pixels of the given frames plus a box and a score.

* ``vfss``: SG-Mamba's TorchScript landmark model (8 anatomical landmarks of videofluoroscopic
  swallow studies): frames resized to 256x192 (H x W), mean 0.548/0.553/0.551, std 0.307; per
  landmark the heatmap argmax gives the point and its value the confidence. One "person": the
  box is the whole frame, the score 1.
* ``coco``: torchvision's Keypoint R-CNN (ResNet-50 FPN, COCO_V1 weights: 17 keypoints); the
  ``persons`` best detections per frame, keypoint confidence ``sigmoid(keypoint score)``.

``torch.jit.load`` runs TorchScript, not arbitrary Python; the file is checked against its
recorded sha256 before loading (:mod:`extract.weights`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..weights import sha256_of

VFSS_MEAN, VFSS_STD = (0.548, 0.553, 0.551), (0.307, 0.307, 0.307)


@dataclass
class PoseModel:
    name: str
    keypoints: int
    persons: int
    run: Callable[[torch.Tensor], torch.Tensor]   # uint8 (n, H, W, 3) -> (n, persons, K*3 + 5)
    identity: dict                                # recorded in the store: what made the keypoints, sha256
    cell: tuple[float, float] | None = None       # keypoint quantum, fraction of the frame (x, y); None: a pixel


def candidate_width(keypoints: int) -> int:
    """Values per candidate: K x (x, y, confidence), then the box (x0, y0, x1, y1) and the score."""
    return keypoints * 3 + 5


def heatmap_peaks(heatmaps: torch.Tensor) -> torch.Tensor:
    """``(n, K, h, w)`` -> ``(n, K, 3)``: argmax (x, y) at pixel centres normalised to [0, 1], and
    the maximum as the confidence. Points sit at cell centres, half a cell right of and below
    SG-Mamba's (which takes the cell's corner, ``index / w``)."""
    n, k, h, w = heatmaps.shape
    value, index = heatmaps.flatten(2).max(-1)
    x = (index % w).float().add_(0.5) / w
    y = torch.div(index, w, rounding_mode="floor").float().add_(0.5) / h
    return torch.stack([x, y, value.float()], -1)


def vfss_landmarks(path, device: torch.device) -> PoseModel:
    try:
        model = torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as exc:
        raise RuntimeError(f"{path} is not a TorchScript landmark model ({str(exc).splitlines()[0]})") from None
    mean = torch.tensor(VFSS_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(VFSS_STD, device=device).view(1, 3, 1, 1)
    with torch.inference_mode():
        _, k, cells_y, cells_x = model(torch.zeros(1, 3, 256, 192, device=device)).shape

    @torch.inference_mode()
    def run(frames: torch.Tensor) -> torch.Tensor:
        n, h, w, _ = frames.shape
        x = frames.permute(0, 3, 1, 2).float().div_(255)
        x = F.interpolate(x, size=(256, 192), mode="bilinear", align_corners=False, antialias=True)
        peaks = heatmap_peaks(model((x - mean) / std).float())
        peaks[..., 0] *= w
        peaks[..., 1] *= h
        box = torch.tensor([0.0, 0.0, w, h, 1.0], device=frames.device).expand(n, 5)
        return torch.cat([peaks.reshape(n, -1), box], 1)[:, None]

    return PoseModel("vfss", k, 1, run, {"pose": "vfss", "input": "256x192 (H x W), bilinear",
                                         "mean": list(VFSS_MEAN), "std": list(VFSS_STD), "sha256": sha256_of(path),
                                         "heatmap": [cells_y, cells_x]},
                     cell=(1 / cells_x, 1 / cells_y))


def coco_keypoint_rcnn(device: torch.device, persons: int = 3, weights_path=None) -> PoseModel:
    from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights, keypointrcnn_resnet50_fpn

    weights = KeypointRCNN_ResNet50_FPN_Weights.COCO_V1
    if weights_path is None:
        model = keypointrcnn_resnet50_fpn(weights=weights)
        weights_path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name  # where torchvision put it
    else:  # a local file of the same weights (e.g. copied from a connected machine's torch hub cache)
        model = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    model = model.eval().to(device)
    width = candidate_width(17)

    @torch.inference_mode()
    def run(frames: torch.Tensor) -> torch.Tensor:
        images = list(frames.permute(0, 3, 1, 2).float().div_(255))
        out = torch.zeros(len(images), persons, width, device=frames.device)
        for i, det in enumerate(model(images)):
            m = min(persons, len(det["scores"]))  # detections come sorted by score
            kp = det["keypoints"][:m].clone()
            kp[..., 2] = torch.sigmoid(det["keypoints_scores"][:m])
            out[i, :m] = torch.cat([kp.reshape(m, -1), det["boxes"][:m], det["scores"][:m, None]], 1)
        return out

    return PoseModel("coco", 17, persons, run, {"pose": "coco", "model": "torchvision keypointrcnn_resnet50_fpn "
                                                "COCO_V1", "confidence": "sigmoid(keypoint score)",
                                                "sha256": sha256_of(Path(weights_path))})
