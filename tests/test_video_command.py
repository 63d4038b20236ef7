"""``python -m detect video``: a checkpoint's recorded feature recipe applied to new videos gives
the detections that ``extract i3d`` + ``detect infer`` give; a recipe that cannot be reproduced is
one line before any decoding."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import extract
from detect.cli import main
from detect.config import load_config
from detect.demo import make_sample
from detect.engine import train
from extract.extractors.i3d import I3DSpec
from planted import tiny_config
from test_i3d import published_state_dict

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three sample videos, their I3D store (random weights in a file) and a model trained on it."""
    root = tmp_path_factory.mktemp("video_command")
    videos, annotations = make_sample(root / "sample", videos=3)
    weights = root / "i3d_random.pt"
    torch.manual_seed(0)
    torch.save(published_state_dict(), weights)
    spec = I3DSpec(weights=str(weights), size=64, device="cpu", workers=0, stride=8)
    extract.run(spec, sorted(videos.glob("*.mp4")), root / "store", progress=False)
    cfg = tiny_config(root / "store", annotations, root / "run", epochs=2, data__train_split="train",
                      data__val_split="test", data__test_split="test", optim__batch_size=2)
    cfg["model"]["backbone"]["input_dim"] = 1024
    cfg["model"]["num_classes"] = 2
    train(load_config(None, base=cfg), progress=False)
    return root, videos, weights


def test_same_detections_as_extract_then_infer(trained, tmp_path):
    root, videos, _ = trained
    state = torch.load(root / "run" / "best.pt", weights_only=True)
    recipe = state["recipe"]["features"][0]
    assert recipe["recipe"]["extractor"] == "i3d" and recipe["recipe"]["options"]["stride"] == 8
    assert recipe["model"]["sha256"] and "workers" not in recipe["recipe"]["options"]
    assert main(["infer", "--checkpoint", str(root / "run" / "best.pt"), "--split", "all", "--store",
                 str(root / "store"), "--out", str(tmp_path / "infer.json")]) == 0
    assert main(["video", "--checkpoint", str(root / "run" / "best.pt"), "--videos", str(videos), "--out",
                 str(tmp_path / "new"), "--keep-features", str(tmp_path / "kept"), "--device", "cpu"]) == 0
    ours = json.loads((tmp_path / "new" / "videos_detections.json").read_text())["results"]
    theirs = json.loads((tmp_path / "infer.json").read_text())["results"]
    assert sorted(ours) == sorted(theirs) == ["sample_00", "sample_01", "sample_02"]
    for vid in ours:
        assert [d["label"] for d in ours[vid]] == [d["label"] for d in theirs[vid]]
        for key in ("segment", "score"):
            np.testing.assert_allclose([d[key] for d in ours[vid]], [d[key] for d in theirs[vid]], atol=1e-5)
        assert (tmp_path / "new" / f"{vid}_timeline.png").stat().st_size > 1000
    kept = json.loads((tmp_path / "kept" / "features" / "store.json").read_text())
    assert kept["recipe"] == recipe["recipe"]


def test_other_weights_are_refused_before_decoding(trained, tmp_path, capsys):
    root, videos, weights = trained
    torch.manual_seed(1)
    torch.save(published_state_dict(), tmp_path / "other.pt")
    state = torch.load(root / "run" / "best.pt", weights_only=True)
    state["recipe"]["features"][0]["recipe"]["options"]["weights"] = str(tmp_path / "other.pt")
    torch.save(state, tmp_path / "other_weights.pt")
    assert main(["video", "--checkpoint", str(tmp_path / "other_weights.pt"), "--videos", str(videos), "--out",
                 str(tmp_path / "new"), "--keep-features", str(tmp_path / "kept"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stream 'features'" in err and "sha256" in err and "i3d_random.pt" in err
    assert not (tmp_path / "kept").exists() and not (tmp_path / "new").exists()


def test_unknown_recipes_say_what_to_pass(trained, tmp_path, capsys):
    root, videos, weights = trained
    state = torch.load(root / "run" / "best.pt", weights_only=True)
    known = state["recipe"]["features"][0]["recipe"]
    state["recipe"]["features"][0]["recipe"] = {"extractor": "unknown", "source": "feature set 'x' imported"}
    torch.save(state, tmp_path / "imported.pt")
    args = ["video", "--checkpoint", str(tmp_path / "imported.pt"), "--videos", str(videos), "--out",
            str(tmp_path / "new"), "--device", "cpu"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unknown (feature set 'x' imported)" in err and "--recipe STREAM=FILE.yaml" in err
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(known))
    assert main(args + ["--recipe", f"features={tmp_path / 'recipe.yaml'}"]) == 0
    assert main(args + ["--recipe", f"heatmaps={tmp_path / 'recipe.yaml'}"]) == 1
    assert "the model reads no stream of that name" in capsys.readouterr().err
    del state["recipe"]
    torch.save(state, tmp_path / "old.pt")
    assert main(["video", "--checkpoint", str(tmp_path / "old.pt"), "--videos", str(videos), "--out",
                 str(tmp_path / "o")]) == 1
    assert "records no feature recipe" in capsys.readouterr().err


def test_hf_checkpoints_come_from_a_pinned_revision_of_the_local_cache(trained, tmp_path, monkeypatch):
    """``hf://ORG/REPO@REV`` resolves through huggingface_hub's own cache lookup, offline."""
    import huggingface_hub.constants

    from detect.engine import resolve_checkpoint

    root, _, _ = trained
    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hub"
    snapshot = cache / "models--me--tiny" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "best.pt").write_bytes((root / "run" / "best.pt").read_bytes())
    (cache / "models--me--tiny" / "refs").mkdir()
    (cache / "models--me--tiny" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert resolve_checkpoint(f"hf://me/tiny@{commit}").read_bytes() == (root / "run" / "best.pt").read_bytes()
    assert resolve_checkpoint("hf://me/tiny/best.pt").parent == snapshot
    assert main(["eval", "--checkpoint", "hf://me/tiny@" + "f" * 40, "--device", "cpu"]) == 1
