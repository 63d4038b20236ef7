"""MS-Temba: the public model's size without its dead heads, exact padding through the dilated
groups, and learning planted per-frame actions."""
import pytest
import torch
from planted import task_config
from trained_like import trained_like

from detect.config import load_config
from detect.data.synthetic import write_context_dataset
from detect.engine import train
from detect.models import create_model


def test_size_is_the_public_models_without_its_unused_heads():
    model = create_model("ms-temba", num_classes=157)  # I3D, Charades
    public, dead = 16_679_244, 257_000 + 2 * 385_000 + 4 * 577_000  # seven Linear(d, 1000) heads
    assert sum(p.numel() for p in model.parameters()) == public - dead == 13_344_244
    names = dict(model.named_parameters())
    assert "blocks.2.ssm.groups.2.mixer.A_b_log" in names and "fuser.norm_f.weight" in names


@pytest.mark.parametrize("variant", ["v3", "v1"])
@pytest.mark.parametrize("length", [30, 31, 29])  # every remainder modulo the dilations 2 and 3
def test_a_video_alone_and_batched_gives_the_same_outputs(length, variant):
    torch.manual_seed(0)
    model = trained_like(create_model("ms-temba", num_classes=5, input_dim=6, embed_dims=(8, 12, 16),
                                      variant=variant, backend="torch"), seed=3).double().eval()
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


def context_run(root, model, **fields):
    """A run on synthetic actions whose class shows only at their onset (``detect.data.synthetic``)."""
    store, ann = root / "data" / "store", root / "data" / "annotations.json"
    if not store.exists():
        write_context_dataset(root / "data")
    cfg = task_config(store, ann, root / model, model, **fields)
    cfg["model"]["num_classes"] = 4
    cfg["data"]["max_seq_len"] = 256
    cfg["optim"].update(epochs=30, lr=1e-2)
    cfg["task"] = {"aux_weight": 0.3}
    return cfg


@pytest.mark.slow  # 45 s on 2 cores: the default suite keeps within its 15 minutes
def test_ms_temba_learns_context_dependent_actions_and_beats_the_conv_baseline(tmp_path):
    temba = train(load_config(None, base=context_run(tmp_path, "ms-temba", embed_dims=[16, 24, 32], drop_path=0.0,
                                                     backend="torch")), progress=False)
    conv = train(load_config(None, base=context_run(tmp_path, "frame-conv")), progress=False)
    assert temba["task"] == "dense" and temba["test"]["mAP"] > 0.8, temba["test"]
    assert temba["test"]["mAP"] > conv["test"]["mAP"] + 0.2, (temba["test"], conv["test"])
    from detect.cli import main  # per-frame score curves of a test video under its ground truth

    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "ms-temba" / "test_frames.npz"), "--annotations",
                 str(tmp_path / "data" / "annotations.json"), "--video", "test_040", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000


def test_the_padding_test_fails_without_masks(monkeypatch):
    """What the public code does (no masks anywhere) breaks the same check."""
    from detect.models import ms_temba

    forward = ms_temba.BiSSMLayer.forward
    monkeypatch.setattr(ms_temba.BiSSMLayer, "forward",
                        lambda self, x, mask, return_c=False: forward(self, x, torch.ones_like(mask), return_c))
    with pytest.raises(AssertionError):
        test_a_video_alone_and_batched_gives_the_same_outputs(29, "v3")


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_strided_split_and_merge_are_inverse_for_every_length(k):
    from detect.models.ms_temba import merge_strided, split_strided

    for length in range(1, 41):
        x = torch.randn(2, length, 3)
        parts = split_strided(x, k)
        assert sum(p.shape[1] for p in parts) == length
        assert torch.equal(merge_strided(parts, length), x)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_contiguous_chunks_cover_each_videos_valid_steps_once(k):
    from detect.models.ms_temba import contiguous_chunks, fold_chunks, unfold_chunks

    for length in range(1, 41):
        lengths = torch.tensor([length, 41, max(1, length // 2)])
        x = torch.randn(3, 41, 2)
        pos, valid = contiguous_chunks(lengths, k)
        for b, n in enumerate(lengths.tolist()):  # chunk j is steps [j*c, (j+1)*c) of the video's own length
            c = -(-n // k)
            assert pos[b][valid[b]].tolist() == list(range(n))
            assert all(pos[b, j][valid[b, j]].tolist() == list(range(j * c, min((j + 1) * c, n))) for j in range(k))
        valid_steps = torch.arange(41)[None] < lengths[:, None]
        back = unfold_chunks(fold_chunks(x, pos), pos, valid, 41)
        assert torch.equal(back[valid_steps], x[valid_steps]) and not back[~valid_steps].any()


def tiny_temba(**fields):
    return create_model("ms-temba", num_classes=5, input_dim=6, embed_dims=(8, 12, 16), backend="torch", **fields)


@pytest.mark.parametrize("variant", ["v3", "v1"])
def test_cstate_term_signs_padding_and_gradient(variant):
    torch.manual_seed(0)
    align = tiny_temba(variant=variant, cstate_weight=1.0).double().eval()
    diverse = tiny_temba(variant=variant, cstate_weight=1.0, cstate_objective="diverse").double().eval()
    diverse.load_state_dict(align.state_dict())
    x = torch.randn(1, 6, 40, dtype=torch.float64)
    padded = torch.cat([x[..., :29], torch.full((1, 6, 11), 7.0, dtype=torch.float64)], -1)
    a = align(x[..., :29], torch.ones(1, 29, dtype=torch.bool)).extra_losses["cstate_loss"]
    # two blocks have groups: align = sum over them of (1 - cos), diverse = sum of cos
    d = diverse(x[..., :29], torch.ones(1, 29, dtype=torch.bool)).extra_losses["cstate_loss"]
    torch.testing.assert_close(a + d, torch.tensor(2.0, dtype=torch.float64))
    p = align(padded, torch.arange(40)[None] < 29).extra_losses["cstate_loss"]
    torch.testing.assert_close(p, a, rtol=0, atol=1e-12)  # padding never enters the term
    a.backward()
    x_proj = align.blocks[1].ssm.groups[0].mixer.x_proj if variant == "v3" else align.blocks[1].ssm.layer.mixer.x_proj
    assert x_proj.weight.grad.abs().sum() > 0  # the C projections are what the term trains
    assert "cstate_loss" not in tiny_temba(variant=variant)(x.float(), torch.ones(1, 40, dtype=torch.bool)).extra_losses


def test_v1_is_the_conv_local_module_with_one_shared_ssm_per_block():
    model = create_model("ms-temba", num_classes=157, variant="v1")
    names = dict(model.named_parameters())
    assert names["blocks.2.proj.conv.conv.weight"].shape == (576, 384, 3)
    assert model.blocks[2].proj.conv.conv.dilation == (3,)
    assert not any(".groups." in n for n in names) and "blocks.2.ssm.layer.mixer.A_b_log" in names
