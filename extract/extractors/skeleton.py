"""``skeleton``: skeleton keypoint heatmaps per frame (SG-Mamba's skeleton modality)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..spec import ExtractSpec, opt
from . import EXTRACTORS
from .base import Extraction, Extractor

POSES = ("vfss", "coco")
MAPS = ("fusion", "keypoints", "limbs")


def _pose_model(spec: "SkeletonSpec", device):
    from ..models.pose import coco_keypoint_rcnn, vfss_landmarks
    from ..weights import resolve

    if spec.pose == "vfss":
        return vfss_landmarks(resolve(spec.pose_weights or "sg-mamba-landmarks"), device)
    try:
        return coco_keypoint_rcnn(device, spec.persons, spec.pose_weights)
    except (OSError, RuntimeError) as exc:  # torchvision's download (offline) or a bad local file
        raise RuntimeError(
            f"cannot load torchvision's Keypoint R-CNN COCO_V1 weights ({exc}). On a connected machine run "
            "`python -c \"from torchvision.models.detection import keypointrcnn_resnet50_fpn as m; "
            "m(weights='COCO_V1')\"` (they go to $TORCH_HOME/hub/checkpoints), or pass the .pth with "
            "--pose-weights") from None


def parse_edges(text: str) -> tuple[tuple[int, int], ...]:
    """``"a-b,c-d"`` -> ``((a, b), (c, d))``: limbs as pairs of keypoint indices."""
    try:
        edges = tuple(tuple(int(v) for v in part.split("-")) for part in text.split(","))
    except ValueError:
        raise ValueError(f'--edges: expected "a-b,c-d,...", got {text!r}') from None
    if any(len(e) != 2 or min(e) < 0 for e in edges):
        raise ValueError(f'--edges: expected pairs of keypoint indices "a-b,c-d,...", got {text!r}')
    return edges


@dataclass(kw_only=True)
class SkeletonSpec(ExtractSpec):
    pose: str = opt(help="vfss: SG-Mamba's 8-landmark model; coco: torchvision Keypoint R-CNN (17 keypoints)",
                    choices=POSES, required=True)
    pose_weights: str | None = opt(None, "registry name or file (default: sg-mamba-landmarks / torchvision's)")
    persons: int = opt(3, "coco: candidates kept per frame for tracking")
    size: int = opt(56, "heatmap size")
    spatial: str = "resize"
    frame_size: int = opt(256, "decoded frame size fed to the pose model")
    sigma: float = opt(4.0, "Gaussian sigma, pixels of the original frame")
    margin: float = opt(3.0, "crop margin around the keypoints, in sigmas")
    smooth_px: float = opt(4.0, "smoother process noise: a landmark's typical step, pixels of the original frame "
                                "per frame (against one heatmap cell of observation noise); 0 turns it off")
    edges: tuple[tuple[int, int], ...] | None = opt(None, 'limbs as "a-b,c-d,..." keypoint indices (default: the '
                                                          "VFSS 9-limb or the COCO 19-limb skeleton)",
                                                    parse=parse_edges)
    maps: str = opt("fusion", "stored map: mean of keypoint and limb maps, or one of them", choices=MAPS)
    keypoints_out: Path | None = opt(None, "keypoint store (default: OUT_keypoints)")
    pose_out: Path | None = opt(None, "pose candidate store (default: OUT_pose)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pose not in POSES or self.maps not in MAPS:
            raise ValueError(f"--pose must be one of {POSES} and --maps one of {MAPS}")
        for name in ("persons", "frame_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.sigma > 0 or self.margin < 0 or self.smooth_px < 0:
            raise ValueError(f"need --sigma > 0, --margin >= 0 and --smooth-px >= 0, got {self.sigma}, "
                             f"{self.margin}, {self.smooth_px}")


@EXTRACTORS.register("skeleton")
class Skeleton(Extractor):
    help = "skeleton keypoint heatmaps per frame (pose, smoothing, keypoint + limb maps, crop)"
    examples = """
examples:
  python -m extract skeleton --video-dir vfss/ --out stores/vfss_heatmaps --pose vfss --sigma 4 --size 56
  python -m extract skeleton --video-dir videos/ --out stores/smg_heatmaps --pose coco --frame-size 512
  python -m extract skeleton --video-dir vfss/ --out stores/x --pose vfss --pose-weights best_model_trace.pt

Three stores come out, all on the frame grid (one row per decoded frame, --fps as for the
appearance features, so the detector windows them on the appearance grid): OUT (heatmaps
(T, size, size) float16), OUT_keypoints ((T, K, 3): x, y in [0, 1] of the frame, confidence) and
OUT_pose (every pose candidate per frame; rendering again with other options reuses it: delete
OUT and rerun). Frames are squashed to --frame-size squared for the pose model; keypoints are
then brought back to the original frame, where --sigma, --smooth-px and the crop box are in
pixels (so Gaussians stay round on any aspect ratio, as SG-Mamba renders them). `python -m extract verify --pair APPEARANCE_STORE OUT` checks the two
stores cover the same frames.
"""

    spec = SkeletonSpec

    @staticmethod
    def build(spec: SkeletonSpec, store: Path, device) -> Extraction:
        from ..models.pose import candidate_width
        from ..runner import Stream
        from ..skeleton.maps import RenderSpec, render_store
        from ..skeleton.render import COCO_EDGES, VFSS_EDGES
        from ..store import StoreInfo

        edges = spec.edges or (VFSS_EDGES if spec.pose == "vfss" else COCO_EDGES)
        render_spec = RenderSpec(size=spec.size, sigma=spec.sigma, margin=spec.margin, smooth_px=spec.smooth_px,
                                 output=spec.maps, edges=edges)
        pose = _pose_model(spec, device)
        if max(max(e) for e in edges) >= pose.keypoints:
            raise ValueError(f"--edges name keypoint {max(max(e) for e in edges)}, but the {spec.pose} model has "
                             f"{pose.keypoints} keypoints")
        out = Path(store)
        pose_out = spec.pose_out or out.with_name(out.name + "_pose")
        keypoints_out = spec.keypoints_out or out.with_name(out.name + "_keypoints")
        width = pose.persons * candidate_width(pose.keypoints)

        def candidates(x):
            """uint8 ``(n, 1, H, W, 3)`` -> ``(n, persons * (K*3 + 5))``."""
            return pose.run(x[:, 0]).reshape(len(x), width)

        info = StoreInfo(feature=f"pose_candidates_{spec.pose}", dtype="float32",
                         step_shape=[width], model={"name": spec.pose_weights or pose.name, **pose.identity},
                         preprocessing={"frame_size": spec.frame_size, "spatial": spec.spatial, "fps": spec.fps},
                         extra={"keypoints": pose.keypoints, "persons": pose.persons,
                                "frame_size": [spec.frame_size, spec.frame_size],
                                "cell": list(pose.cell or (1 / spec.frame_size, 1 / spec.frame_size))})

        def render(summary: dict) -> dict:
            from tqdm import tqdm

            rendered = render_store(pose_out, out, keypoints_out, render_spec, device, retry_failed=spec.retry_failed,
                                    progress=lambda ids: tqdm(ids, desc="render", unit="video", disable=None))
            return {**summary, "written": rendered["written"], "skipped": rendered["skipped"],
                    "failed": {**summary["failed"], **rendered["failed"]},
                    "warnings": {**summary["warnings"], **rendered["warnings"]},
                    "stores": {"heatmaps": str(out), "keypoints": str(keypoints_out), "pose": str(pose_out)}}

        return Extraction([Stream("pose", candidates)], info, spec.frame_size, store=pose_out, after=render)
