"""CLIP extraction with a tiny open_clip architecture saved to a local checkpoint."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from videos import make_video

from extract.cli import main
from extract.store import count_snippets, open_store

pytestmark = pytest.mark.timeout(300)

TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip

    root = tmp_path_factory.mktemp("clip")
    config = root / "tiny-clip-test.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip-test", pretrained=None)
    torch.save(model.state_dict(), root / "tiny.pt")
    videos = root / "videos"
    videos.mkdir()
    make_video(videos / "clip", 37, fps=24.0, width=64, height=48)
    return config, root / "tiny.pt", videos


def _run(tiny_clip, out, *extra):
    config, weights, videos = tiny_clip
    return main(["clip", "--video-dir", str(videos), "--out", str(out), "--model", "tiny-clip-test", "--pretrained",
                 str(weights), "--model-config", str(config), "--device", "cpu", "--workers", "0", *extra])


def test_window_means_equal_the_mean_of_frame_features(tiny_clip, tmp_path):
    assert _run(tiny_clip, tmp_path / "frames", "--pool", "frame") == 0
    assert _run(tiny_clip, tmp_path / "windows", "--pool", "window", "--window", "16", "--stride", "16",
                "--tail", "pad") == 0
    frames = open_store(tmp_path / "frames").read("clip")
    windows = open_store(tmp_path / "windows")
    assert frames.shape == (37, 16)
    assert windows.shape("clip") == (count_snippets(37, 16, 16, "pad"), 16) == (3, 16)
    padded = np.concatenate([frames, np.repeat(frames[-1:], 48 - 37, axis=0)])  # pad repeats the last frame
    np.testing.assert_allclose(windows.read("clip"), padded.reshape(3, 16, 16).mean(1), rtol=1e-4, atol=1e-5)
    info = windows.info.preprocessing
    assert info["normalize"] is False and info["image_size"] == 32 and info["pool"] == "window"


def test_quick_gelu_and_normalisation_are_applied_and_recorded(tiny_clip, tmp_path):
    from open_clip.transformer import QuickGELU

    from extract.models.clip import load_clip

    config, weights, _ = tiny_clip
    quick = load_clip("tiny-clip-test", str(weights), torch.device("cpu"), quick_gelu=True)
    assert any(isinstance(m, QuickGELU) for m in quick.model.visual.modules()) and quick.identity["quick_gelu"]
    plain = load_clip("tiny-clip-test", str(weights), torch.device("cpu"), quick_gelu=False)
    assert not any(isinstance(m, QuickGELU) for m in plain.model.visual.modules())
    assert _run(tiny_clip, tmp_path / "n", "--pool", "frame", "--normalize") == 0
    feats = open_store(tmp_path / "n").read("clip")
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-4)


def test_openai_tag_requires_quick_gelu():
    from open_clip import pretrained

    assert pretrained.get_pretrained_cfg("ViT-L-14", "openai")["quick_gelu"] is True


def test_unknown_tag_lists_the_known_ones(tmp_path):
    make_video(tmp_path / "clip", 8, fps=10.0, width=32, height=32)
    with pytest.raises(SystemExit, match="no pretrained tag 'nope' for 'ViT-B-32'.*openai"):
        main(["clip", "--video-dir", str(tmp_path), "--out", str(tmp_path / "s"), "--model", "ViT-B-32",
              "--pretrained", "nope", "--device", "cpu"])
    assert not (tmp_path / "s").exists()   # refused before a store was made


def test_features_equal_video_features_openai_clip(tmp_path):
    """A tiny CLIP vision tower in the OpenAI layout: our features (open_clip, as ``extract clip``
    computes them from uint8 frames) equal those of video_features' copy of OpenAI CLIP on the same
    images (fixture made by tests/fixtures/generate_video_features_clip.py; see its ``made_by``)."""
    import open_clip

    from extract.models.clip import load_clip

    ref = torch.load(Path(__file__).parent / "fixtures" / "video_features_clip.pt", weights_only=True)
    vision = ref["vision"]
    config = tmp_path / "video-features-tiny.json"
    config.write_text(json.dumps({"embed_dim": ref["embed_dim"], "quick_gelu": True,
                                  "vision_cfg": {**vision, "head_width": 64},
                                  "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 64, "heads": 1,
                                               "layers": 1}}))
    open_clip.add_model_config(config)
    state = open_clip.create_model("video-features-tiny", pretrained=None).state_dict()
    assert {k for k in state if k.startswith("visual.")} == set(ref["visual_state_dict"])  # the OpenAI layout
    torch.save({**state, **ref["visual_state_dict"]}, tmp_path / "weights.pt")
    clip = load_clip("video-features-tiny", str(tmp_path / "weights.pt"), torch.device("cpu"), quick_gelu=True)
    ours = clip.frames(ref["images"])
    torch.testing.assert_close(ours, ref["features"], rtol=1e-5, atol=1e-6)


def test_skipping_the_random_init_changes_no_weight_and_a_partial_checkpoint_is_refused(tiny_clip, tmp_path,
                                                                                       monkeypatch):
    """open_clip's random fills are skipped because the checkpoint overwrites every weight: the
    loaded model equals the checkpoint exactly, torch's init comes back afterwards, and a
    checkpoint missing a weight is an error instead of uninitialised memory."""
    from extract.models import clip as clip_module

    _, weights, _ = tiny_clip
    uniform = torch.nn.init.uniform_
    state = torch.load(weights, weights_only=True)
    loaded = clip_module.load_clip("tiny-clip-test", str(weights), torch.device("cpu"), quick_gelu=False).model
    assert torch.nn.init.uniform_ is uniform
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, state[name]), name
    import open_clip  # and the same features as open_clip's own build (non-persistent buffers included)

    reference = open_clip.create_model("tiny-clip-test", pretrained=str(weights), weights_only=True).eval()
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.eval().encode_image(image), reference.encode_image(image))
    del state["visual.proj"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match="visual.proj"):
        clip_module.load_clip("tiny-clip-test", str(tmp_path / "partial.pt"), torch.device("cpu"), quick_gelu=False)
    assert torch.nn.init.uniform_ is uniform


def test_open_clip_comes_without_the_optional_libraries_a_model_does_not_use():
    """ViT-B/32 needs neither timm nor transformers (whose import costs seconds of start-up); a timm
    tower loaded later in the same process gets timm after all."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from extract.models.clip import _import_open_clip\n"
            "open_clip = _import_open_clip('ViT-B-32')\n"
            "assert 'timm' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)\n"
            "assert open_clip.timm_model.timm is None\n"
            "model = open_clip.create_model('ViT-B-32-quickgelu')\n"
            "_import_open_clip('ViT-B-16-SigLIP')\n"
            "assert open_clip.timm_model.timm is sys.modules['timm']\n"
            "assert open_clip.create_model('ViT-B-16-SigLIP').visual.__class__.__name__ == 'TimmModel'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
