"""MSF-Mamba: the central frame difference, theta, ASWM, the reduction to plain fusion, sizes
against the paper, VideoMamba initialisation, frame stores of clips, and motion-only classes."""
import numpy as np
import pytest
import torch

from detect.models import create_model
from detect.layers.msf import ASWM, MCFM, MSFConfig, MSFFusion, frame_difference


def test_central_frame_difference_by_hand():
    x = torch.tensor([1.0, 2.0, 4.0, 8.0]).view(1, 1, 4)
    assert frame_difference(x, "central", "replicate").flatten().tolist() == [-0.5, -0.5, -1.0, 2.0]
    assert frame_difference(x, "central", "zero").flatten().tolist() == [0.0, -0.5, -1.0, 6.0]
    assert frame_difference(x, "central", "reflect").flatten().tolist() == [-1.0, -0.5, -1.0, 4.0]
    assert frame_difference(x, "first", "replicate").flatten().tolist() == [0.0, 1.0, 2.0, 4.0]
    volume = torch.randn(2, 3, 5, 4, 4)
    d = frame_difference(volume)
    torch.testing.assert_close(d[:, :, 2], volume[:, :, 2] - (volume[:, :, 1] + volume[:, :, 3]) / 2)


def test_theta_starts_at_half_and_stays_inside_the_unit_interval():
    mcfm = MCFM(4, MSFConfig(windows=(3, 5)), spatial=0)
    assert mcfm.theta.tolist() == [0.5, 0.5]
    opt = torch.optim.SGD([mcfm.theta_logit], lr=4.0)
    for _ in range(20):  # push theta up: it approaches 1 without reaching it (sigmoid-parametrised)
        loss = -mcfm.theta.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ((mcfm.theta > 0.9) & (mcfm.theta < 1)).all()


def test_aswm_weights_sum_to_one_at_every_position():
    aswm = ASWM(4, 3, MSFConfig(windows=(3, 5, 7)))
    scales = [torch.randn(2, 4, 5, 3, 3) for _ in range(3)]
    fused, weights = aswm(scales)
    assert weights.shape == (2, 3, 5, 3, 3) and fused.shape == (2, 4, 5, 3, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 5, 3, 3))
    torch.testing.assert_close(fused, sum(w[:, None] * s for w, s in zip(weights.unbind(1), scales)))
    _, average = ASWM(4, 3, MSFConfig(windows=(3, 5, 7), weighting="average"))(scales)
    assert torch.all(average == 1 / 3)


def test_with_theta_zero_and_one_scale_the_block_is_plain_fusion():
    block = MSFFusion(4, MSFConfig(windows=(3,)))
    with torch.no_grad():
        block.mcfm.theta_logit.fill_(float("-inf"))
    x = torch.randn(2, 4, 6, 5, 5)
    torch.testing.assert_close(block(x), torch.nn.functional.gelu(block.mcfm.fuse[0](x)))


@pytest.mark.parametrize("name, paper, tolerance", [
    ("msf-mamba-t", 8.90, 0.01), ("msf-mamba-s", 33.38, 0.01), ("msf-mamba-m", 91.57, 0.01),
    ("msf-mamba-t+", 24.93, 0.02), ("msf-mamba-s+", 97.28, 0.02), ("msf-mamba-m+", 235.32, 0.02)])
def test_sizes_are_the_papers(name, paper, tolerance):
    with torch.device("meta"):
        model = create_model(name, num_classes=17)  # SMG's 17 classes, as the paper's Table VII
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(paper, rel=tolerance)


def test_videomamba_weights_initialise_the_backbone(tmp_path):
    from detect.models.msf_mamba import load_videomamba

    tiny = dict(dim=16, depth=2, img_size=32, patch=8, backend="torch")
    source = create_model("msf-mamba-t", num_classes=1000, msf=None, num_frames=8, img_size=48, **{
        k: v for k, v in tiny.items() if k != "img_size"})  # an ImageNet-like checkpoint: other grid, frames, head
    torch.save({"model": {f"backbone.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "vm.pth")
    model = create_model("msf-mamba-t+", num_classes=17, **tiny)
    report = load_videomamba(model, tmp_path / "vm.pth")
    assert "layers.1.mixer.A_b_log" in report["matched"] and "head.weight" in report["kept"]
    assert all(k.startswith(("msf.", "head.")) for k in report["kept"])
    torch.testing.assert_close(model.layers[1].mixer.in_proj.weight, source.layers[1].mixer.in_proj.weight)
    assert model.pos_embed.shape == (1, 17, 16) and model.temporal_pos_embedding.shape == (1, 16, 16)
    fresh = create_model("msf-mamba-t", num_classes=17, init_from=str(tmp_path / "vm.pth"), **tiny)
    fresh.load_pretrained()  # what the trainer does at the start of a fresh run
    torch.testing.assert_close(fresh.norm_f.weight, source.norm_f.weight)
    torch.save({"model": {k: v for k, v in source.state_dict().items() if "layers.1" not in k}}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="backbone parameters missing"):
        load_videomamba(create_model("msf-mamba-t", num_classes=17, **tiny), tmp_path / "bad.pth")


def test_clip_frames_store_sixteen_uniform_frames_per_clip(tmp_path):
    from videos import make_video

    from extract.cli import main
    from extract.clip_frames import uniform_indices
    from extract.store import open_store

    assert uniform_indices(32, 16).tolist() == list(range(1, 32, 2))
    assert uniform_indices(9, 16).tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8]  # all 9, 7 twice
    clips = tmp_path / "clips"
    clips.mkdir()
    make_video(clips / "short", 9, fps=30.0, width=48, height=40)
    make_video(clips / "long", 40, fps=30.0, width=48, height=40)
    assert main(["clip-frames", "--video-dir", str(clips), "--out", str(tmp_path / "frames"), "--size", "32",
                 "--workers", "0"]) == 0
    with open_store(tmp_path / "frames") as store:
        for vid, n in [("short", 9), ("long", 40)]:
            frames = store.read(vid)
            assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
            assert store.meta(vid).num_frames == n and list(store.grid(vid).starts) == uniform_indices(n, 16).tolist()


@pytest.mark.slow  # 50 s on 2 cores: the default suite keeps within its 15 minutes
def test_mcfm_beats_the_same_model_without_cfd_on_motion_only_classes(tmp_path):
    from detect.config import load_config
    from detect.data.synthetic import write_motion_clips
    from detect.engine import train

    frames, ann = write_motion_clips(tmp_path / "data")

    def run(difference):
        cfg = {"model": {"name": "msf-mamba-t", "num_classes": 3, "dim": 16, "depth": 2, "img_size": 32, "patch": 8,
                         "drop_path": 0.0, "backend": "torch", "flip": False, "crop_scale": [1.0, 1.0],
                         "msf": {"difference": difference}},
               "data": {"streams": {"frames": [str(frames)]}, "annotations": str(ann), "train_split": "train",
                        "val_split": "train", "val_holdout": 0.2, "test_split": "test", "num_workers": 0},
               "optim": {"lr": 2e-3, "epochs": 40, "warmup_epochs": 1, "batch_size": 8, "amp": "none",
                         "weight_decay": 0.05, "ema_decay": 0.9},
               "eval": {"every": 2}, "output": str(tmp_path / difference), "seed": 0, "log_every": 50}
        return train(load_config(None, base=cfg), progress=False)["test"]["top1"]

    with_cfd, without = run("central"), run("none")
    print(f"test top-1 with CFD {with_cfd:.3f}, without {without:.3f}")  # docs/MODELS.md quotes this run (pytest -s)
    assert with_cfd > 0.5 and with_cfd > without + 0.15, (with_cfd, without)  # chance is 1/3
