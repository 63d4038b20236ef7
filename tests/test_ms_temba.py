"""MS-Temba: the public model's size without its dead heads, exact padding through the dilated
groups, and learning planted per-frame actions."""
import pytest
import torch
from planted import make_planted, task_config
from test_padding import trained_like

from detect.config import load_config
from detect.engine import train
from detect.models import create_model


def test_size_is_the_public_models_without_its_unused_heads():
    model = create_model("ms-temba", num_classes=157)  # I3D, Charades
    public, dead = 16_679_244, 257_000 + 2 * 385_000 + 4 * 577_000  # seven Linear(d, 1000) heads
    assert sum(p.numel() for p in model.parameters()) == public - dead == 13_344_244
    names = dict(model.named_parameters())
    assert "blocks.2.ssm.groups.2.mixer.A_b_log" in names and "fuser.norm_f.weight" in names


@pytest.mark.parametrize("length", [30, 31, 29])  # every remainder modulo the dilations 2 and 3
def test_a_video_alone_and_batched_gives_the_same_outputs(length):
    torch.manual_seed(0)
    model = trained_like(create_model("ms-temba", num_classes=5, input_dim=6, embed_dims=(8, 12, 16),
                                      backend="torch"), seed=3).double().eval()
    g = torch.Generator().manual_seed(1)
    video, other = torch.randn(6, length, generator=g, dtype=torch.float64), torch.randn(6, 47, generator=g,
                                                                                        dtype=torch.float64)
    alone = torch.full((1, 6, 33), 9.0, dtype=torch.float64)
    alone[0, :, :length] = video
    batch = torch.full((2, 6, 47), -4.0, dtype=torch.float64)
    batch[0], batch[1, :, :length] = other, video
    a = model(alone, torch.arange(33)[None] < length)
    b = model(batch, torch.arange(47)[None] < torch.tensor([[47], [length]]))
    for x, y in zip([a.logits] + a.aux_logits, [b.logits] + b.aux_logits):
        torch.testing.assert_close(x[0, :length], y[1, :length], rtol=0, atol=1e-9)


def test_ms_temba_learns_planted_per_frame_actions(tmp_path):
    store, ann = make_planted(tmp_path / "data")
    cfg = task_config(store, ann, tmp_path / "run", "ms-temba", embed_dims=[16, 24, 32], drop_path=0.0,
                      backend="torch")
    cfg["eval"]["aux_weight"] = 0.3
    summary = train(load_config(None, base=cfg), progress=False)
    assert summary["task"] == "dense" and summary["test"]["mAP"] > 0.7, summary["test"]
    from detect.cli import main  # per-frame score curves of a test video under its ground truth

    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "run" / "test_frames.npz"), "--annotations", str(ann), "--video", "test_024",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000


def test_the_padding_test_fails_without_masks(monkeypatch):
    """What the public code does (no masks anywhere) breaks the same check."""
    from detect.models import ms_temba

    forward = ms_temba.BiSSMLayer.forward
    monkeypatch.setattr(ms_temba.BiSSMLayer, "forward", lambda self, x, mask: forward(self, x, torch.ones_like(mask)))
    with pytest.raises(AssertionError):
        test_a_video_alone_and_batched_gives_the_same_outputs(29)
