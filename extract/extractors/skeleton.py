"""``skeleton``: skeleton keypoint heatmaps per frame (SG-Mamba's skeleton modality)."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import EXTRACTORS
from .base import Extraction, Extractor


def _pose_model(args: argparse.Namespace, device):
    from ..models.pose import coco_keypoint_rcnn, vfss_landmarks
    from ..weights import resolve

    if args.pose == "vfss":
        return vfss_landmarks(resolve(args.pose_weights or "sg-mamba-landmarks"), device)
    try:
        return coco_keypoint_rcnn(device, args.persons, args.pose_weights)
    except (OSError, RuntimeError) as exc:  # torchvision's download (offline) or a bad local file
        raise RuntimeError(
            f"cannot load torchvision's Keypoint R-CNN COCO_V1 weights ({exc}). On a connected machine run "
            "`python -c \"from torchvision.models.detection import keypointrcnn_resnet50_fpn as m; "
            "m(weights='COCO_V1')\"` (they go to $TORCH_HOME/hub/checkpoints), or pass the .pth with "
            "--pose-weights") from None


def _edges(text: str) -> tuple[tuple[int, int], ...]:
    try:
        edges = tuple(tuple(int(v) for v in part.split("-")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected "a-b,c-d,...", got {text!r}') from None
    if any(len(e) != 2 or min(e) < 0 for e in edges):
        raise argparse.ArgumentTypeError(f'expected pairs of keypoint indices "a-b,c-d,...", got {text!r}')
    return edges


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
OUT and rerun). Frames are squashed to --frame-size squared for the pose model; --sigma is in
pixels of that frame. `python -m extract verify --pair APPEARANCE_STORE OUT` checks the two
stores cover the same frames.
"""

    @staticmethod
    def add_arguments(p, inputs):
        p.add_argument("--pose", required=True, choices=("vfss", "coco"),
                       help="vfss: SG-Mamba's 8-landmark model; coco: torchvision Keypoint R-CNN (17 keypoints)")
        p.add_argument("--pose-weights", help="registry name or file (default: sg-mamba-landmarks / torchvision's)")
        p.add_argument("--persons", type=int, default=3, help="coco: candidates kept per frame for tracking")
        p.add_argument("--size", type=int, default=56, help="heatmap size (default 56)")
        p.add_argument("--frame-size", type=int, default=256, help="decoded frame size fed to the pose model")
        p.add_argument("--sigma", type=float, default=4.0, help="Gaussian sigma, pixels of the frame (default 4)")
        p.add_argument("--margin", type=float, default=3.0, help="crop margin around the keypoints, in sigmas")
        p.add_argument("--smooth-q", type=float, default=1e-4,
                       help="smoother transition variance per frame, (fraction of the frame)^2; 0 turns it off")
        p.add_argument("--edges", type=_edges, help='limbs as "a-b,c-d,..." keypoint indices (default: the VFSS '
                                                   "9-limb or the COCO 19-limb skeleton)")
        p.add_argument("--maps", default="fusion", choices=("fusion", "keypoints", "limbs"),
                       help="stored map: mean of keypoint and limb maps (default), or one of them")
        p.add_argument("--keypoints-out", type=Path, help="keypoint store (default: OUT_keypoints)")
        p.add_argument("--pose-out", type=Path, help="pose candidate store (default: OUT_pose)")
        p.set_defaults(spatial="resize", tail="drop", window=1, stride=1)

    @staticmethod
    def build(args: argparse.Namespace, device) -> Extraction:
        from ..models.pose import candidate_width
        from ..runner import Stream
        from ..skeleton.maps import RenderSpec, render_store
        from ..skeleton.render import COCO_EDGES, VFSS_EDGES
        from ..store import StoreInfo

        edges = args.edges or (VFSS_EDGES if args.pose == "vfss" else COCO_EDGES)
        spec = RenderSpec(size=args.size, sigma=args.sigma, margin=args.margin, smooth_q=args.smooth_q,
                          output=args.maps, edges=edges)
        if args.persons < 1:
            raise ValueError(f"--persons must be >= 1, got {args.persons}")
        pose = _pose_model(args, device)
        if max(max(e) for e in edges) >= pose.keypoints:
            raise ValueError(f"--edges name keypoint {max(max(e) for e in edges)}, but the {args.pose} model has "
                             f"{pose.keypoints} keypoints")
        out = Path(args.out)
        pose_out = args.pose_out or out.with_name(out.name + "_pose")
        keypoints_out = args.keypoints_out or out.with_name(out.name + "_keypoints")
        width = pose.persons * candidate_width(pose.keypoints)

        def candidates(x):
            """uint8 ``(n, 1, H, W, 3)`` -> ``(n, persons * (K*3 + 5))``."""
            return pose.run(x[:, 0]).reshape(len(x), width)

        info = StoreInfo(feature=f"pose_candidates_{args.pose}", dtype="float32", num_shards=args.shards,
                         step_shape=[width], model={"name": args.pose_weights or pose.name, **pose.identity},
                         preprocessing={"frame_size": args.frame_size, "spatial": args.spatial, "fps": args.fps},
                         grid={"window": 1, "stride": 1, "tail": "drop", "fps": args.fps},
                         extra={"keypoints": pose.keypoints, "persons": pose.persons,
                                "frame_size": [args.frame_size, args.frame_size]})

        def render(summary: dict) -> dict:
            from tqdm import tqdm

            rendered = render_store(pose_out, out, keypoints_out, spec, device, retry_failed=args.retry_failed,
                                    progress=lambda ids: tqdm(ids, desc="render", unit="video", disable=None))
            return {**summary, "written": rendered["written"], "skipped": rendered["skipped"],
                    "failed": {**summary["failed"], **rendered["failed"]},
                    "warnings": {**summary["warnings"], **rendered["warnings"]},
                    "stores": {"heatmaps": str(out), "keypoints": str(keypoints_out), "pose": str(pose_out)}}

        return Extraction([Stream("pose", candidates)], info, args.frame_size, 1, 1, store=pose_out, after=render)
