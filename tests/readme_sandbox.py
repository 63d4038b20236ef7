"""A working folder holding tiny stand-ins for every file the README's commands name: a few
one-second videos, small stores and annotations with the real datasets' classes and splits at
the recipes' paths, and random weights in local Hugging Face caches (run offline)."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import torch
from videos import make_video

from extract.cards import load_card
from extract.store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta

ROOT = Path(__file__).parents[1]
COMMIT = "5" * 40
TINY_CLIP = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8,
                                             "head_width": 16},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
TINY_IV2 = dict(embed_dim=48, depth=3, num_heads=4, img_size=28, num_frames=4, attn_pool_num_heads=4,
                clip_embed_dim=24, num_classes=5)


def _hub_snapshot(cache: Path, kind: str, repo_id: str, files: dict[str, bytes]) -> None:
    repo = cache / f"{kind}s--{repo_id.replace('/', '--')}"
    for name, data in files.items():
        (repo / "snapshots" / COMMIT / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / COMMIT / name).write_bytes(data)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _weights(root: Path) -> None:
    """Random weights under the registry's names: what `extract download` finds in the Hub cache."""
    from detect.models import create_model
    from extract.models.i3d import InceptionI3d
    from extract.weights import REGISTRY

    class Landmarks(torch.nn.Module):  # SG-Mamba's model maps a (n, 3, 256, 192) crop to 8 heatmaps
        def forward(self, x):
            return torch.nn.functional.interpolate(x[:, :1], size=(64, 48)).repeat(1, 8, 1, 1).sigmoid()

    landmarks = io.BytesIO()
    torch.jit.save(torch.jit.trace(Landmarks(), torch.zeros(2, 3, 256, 192)), landmarks)
    torch.manual_seed(0)
    payloads = {"i3d-rgb-imagenet": _saved(InceptionI3d().state_dict()),
                "sg-mamba-landmarks": landmarks.getvalue(),
                "videomamba-s16-in1k": _saved({"model": create_model("msf-mamba-s", num_classes=1000).state_dict()})}
    for name, data in payloads.items():
        entry = REGISTRY[name]
        _hub_snapshot(root / "pretrained" / "hf", "model", entry.repo_id, {entry.filename: data})


def _tiny_models(root: Path) -> None:
    """The small CLIP and InternVideo2 that stand in for ViT-L-14 and InternVideo2-1B."""
    import open_clip

    from extract.models.internvideo2 import InternVideo2, InternVideo2Config

    (root / "tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(root / "tiny-clip.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model("tiny-clip", pretrained=None).state_dict(), root / "tiny-clip.pt")
    torch.save({"model": InternVideo2(InternVideo2Config(**TINY_IV2)).state_dict()}, root / "tiny-iv2.pth")
    (root / "tiny-iv2.yaml").write_text("num_heads: 4\nattn_pool_num_heads: 4\nimg_size: 28\n")


def tiny_extractor_specs(root: Path) -> dict[str, dict]:
    """Per registered extractor, the spec fields of a CPU-sized run on this sandbox's stand-ins
    (``_weights`` and ``_tiny_models`` under ``root``); tests/test_registry.py runs each."""
    return {"i3d": {"size": 64},
            "clip": {"model": "tiny-clip", "pretrained": str(root / "tiny-clip.pt"),
                     "model_config": root / "tiny-clip.json"},
            "internvideo2": {"checkpoint": root / "tiny-iv2.pth", "model_config": root / "tiny-iv2.yaml", "size": 28,
                             "snippet_frames": 4},
            "skeleton": {"pose": "vfss", "size": 16}}


def _planted(card: str, videos: dict[str, str], stores: dict[str, int], *, window: int, stride: int, fps: float,
             rng: np.random.Generator, heatmaps: str | None = None, event: str | None = None) -> dict:
    """Stores (``{path: dim}``, features split over them) with actions of three of ``card``'s
    classes planted at annotated times; per-frame heatmaps too when asked; with ``event``, one
    event per video that contains every other action (SG-Mamba's AllTime). Returns the database."""
    classes = load_card(card).classes
    used = [c for c in classes if c != event][:3]
    protos = {c: rng.standard_normal(sum(stores.values())) * 2 for c in used}
    writers = {path: StoreWriter(path, StoreInfo(feature=Path(path).name, dtype="float32", num_shards=1))
               for path in [*stores, *([heatmaps] if heatmaps else [])]}
    database = {}
    for vid, subset in videos.items():
        rows = int(rng.integers(60, 90))
        grid = SnippetGrid(window=window, stride=stride, fps=fps, num_snippets=rows)
        frames = (rows - 1) * stride + window
        duration, centres = frames / fps, grid.centre_seconds()
        feats = rng.standard_normal((rows, sum(stores.values()))) * 0.5
        heat = rng.random((frames, 56, 56)) * 0.1
        anns, t = [], float(rng.uniform(0.5, 2.0))
        while t < duration - 2.5:
            length, label = float(rng.uniform(0.8, 2.0)), used[int(rng.integers(len(used)))]
            feats[(centres >= t) & (centres <= t + length)] += protos[label]
            heat[int(t * fps):int((t + length) * fps), 10:20, 10:20] = 1.0
            anns.append({"label": label, "label_id": classes.index(label),
                         "segment": [round(t, 3), round(t + length, 3)]})
            t += length + float(rng.uniform(0.5, 2.0))
        if event:
            anns.append({"label": event, "label_id": classes.index(event),
                         "segment": [anns[0]["segment"][0], anns[-1]["segment"][1]]})
        meta = VideoMeta(grid=grid, fps=fps, num_frames=frames, duration=duration)
        start = 0
        for path, dim in stores.items():
            writers[path].write(vid, feats[:, start:start + dim].astype(np.float32), meta)
            start += dim
        if heatmaps:
            frame_grid = SnippetGrid(window=1, stride=1, fps=fps, num_snippets=frames)
            writers[heatmaps].write(vid, heat.astype(np.float16), VideoMeta(grid=frame_grid, fps=fps,
                                                                            num_frames=frames, duration=duration))
        database[vid] = {"subset": subset, "duration": duration, "fps": fps, "annotations": anns}
    for writer in writers.values():
        writer.close()
    return {"classes": classes, "database": database}


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def build_sandbox(root: Path) -> dict[str, str]:
    """Fills ``root``; returns the environment the commands run under."""
    for name in ("configs", "datasets"):
        os.symlink(ROOT / name, root / name)
    (root / "videos").mkdir()
    (root / "smg_clips").mkdir()
    for k in range(3):
        make_video(root / "videos" / f"video_{k}.mp4", 30, fps=30.0, width=96, height=64, seed=k)
    _weights(root)
    _tiny_models(root)
    rng = np.random.default_rng(0)
    at = lambda rel: str(root / rel)  # noqa: E731  (the recipes' relative paths)

    thumos = {**{f"video_validation_{i:07d}": "validation" for i in range(1, 9)},
              **{f"video_test_{i:07d}": "test" for i in range(1, 5)}}
    thumos14 = _planted("thumos14", thumos, {at("stores/thumos14_i3d"): 2048}, window=16, stride=4, fps=30.0, rng=rng)
    _write(root / "annotations" / "thumos14.json", thumos14)
    for label in {a["label"] for v in thumos14["database"].values() for a in v["annotations"]}:
        lines = [f"{vid} {a['segment'][0]} {a['segment'][1]}" for vid, v in thumos14["database"].items()
                 if v["subset"] == "test" for a in v["annotations"] if a["label"] == label]
        path = root / "TH14_Temporal_annotations_test" / "annotation" / f"{label}_test.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tf:
        for vid in thumos:
            data = _saved(torch.randn(40, 3200))
            info = tarfile.TarInfo(f"thumos/features/{vid}_spatial_feature.pt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    half = len(tarball.getvalue()) // 2 + 1
    _hub_snapshot(root / "hf", "dataset", "cg1177/thumos14_internvideo2_6b_w16_s4",
                  {f"thumos14_iv2.tar.gz.part{k}": tarball.getvalue()[k * half:(k + 1) * half] for k in range(2)})

    charades = {**{f"TRN{i:02d}": "training" for i in range(8)}, "0A8CF": "testing", "TST01": "testing"}
    _write(root / "annotations" / "charades.json",
           _planted("charades", charades, {at("stores/charades_i3d"): 1024}, window=16, stride=16, fps=24.0, rng=rng))

    vfss = {**{f"clip_{i:02d}": "Train" for i in range(6)}, "clip_10": "Validation", "clip_11": "Validation",
            "clip_20": "Test", "clip_21": "Test"}
    _write(root / "annotations" / "vfss_swallow.json",
           _planted("vfss_swallow", vfss, {at("stores/vfss_i3d_rgb"): 1024, at("stores/vfss_i3d_flow"): 1024}, window=8,
                    stride=3, fps=29.97, rng=rng, heatmaps=at("stores/vfss_heatmaps"), event="AllTime"))

    smg_classes = [f"class_{i}" for i in range(load_card("smg").num_classes)]  # the card names none
    smg = {}
    for i in range(8):
        vid, label = f"smg_{i:02d}", smg_classes[i % 2]
        make_video(root / "smg_clips" / f"{vid}.mp4", 30, fps=30.0, width=64, height=48, seed=10 + i)
        smg[vid] = {"subset": "test" if i >= 6 else "train", "duration": 1.0, "fps": 30.0,
                    "annotations": [{"label": label, "label_id": i % 2, "segment": None}]}
    _write(root / "annotations" / "smg.json", {"classes": smg_classes, "database": smg})
    return {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hf"), "MAMBA_TAD_PRETRAINED": str(root / "pretrained")}
