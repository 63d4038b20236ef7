"""SG-Mamba: the cross-Mamba gate algebra, masks per direction, exact padding, skeleton frames
windowed onto the appearance grid and cropped with it, its size, and two modalities learnt together."""
import numpy as np
import pytest
import torch

from detect.config import load_config
from detect.data.streams import StreamSet, window_frames
from detect.data.synthetic import write_two_modality_dataset
from detect.engine import train
from detect.errors import DataError
from detect.models import create_model
from detect.layers.cross_mamba import CCMFusion, CrossMamba
from extract.store import SnippetGrid


def test_the_other_stream_enters_only_through_the_gate():
    torch.manual_seed(0)
    mixer = CrossMamba(6, 4, backend="torch").double()
    q = torch.randn(2, 9, 6, dtype=torch.float64)
    # a zero gate input zeroes the scan, whatever the query: what is left is the channel term of zeros
    constant = mixer.out_proj(mixer.channel_gamma[:, :, 0] * -torch.nn.functional.silu(mixer.channel_conv.bias))
    for query in (q, 3 * q + 1):
        out = mixer(query, torch.zeros(2, 9, 4, dtype=torch.float64))
        torch.testing.assert_close(out, constant.expand_as(out), rtol=0, atol=1e-12)
    # and the other stream matters only through v_in_proj: same projection, same output
    other = torch.randn(2, 9, 4, dtype=torch.float64)
    with torch.no_grad():
        mixer.v_in_proj.weight[:, 0] = 0
    shifted = other.clone()
    shifted[..., 0] += 5
    torch.testing.assert_close(mixer(q, other), mixer(q, shifted), rtol=0, atol=1e-12)


def test_each_direction_masks_with_its_own_query():
    torch.manual_seed(0)
    ccm = CCMFusion(6, 4, layers=2, drop_path=0.0, backend="torch").double().eval()
    v, h = torch.randn(1, 6, 10, dtype=torch.float64), torch.randn(1, 4, 10, dtype=torch.float64)
    mask_v, mask_h = torch.arange(10)[None] < 7, torch.arange(10)[None] < 9
    v2, h2 = ccm(v, h, mask_v, mask_h)
    assert not v2[..., 7:].any() and not h2[..., 9:].any()              # nothing past a query's own length
    torch.testing.assert_close(h2[..., 7:9], h[..., 7:9])               # where only h is valid, h passes through
    assert not torch.allclose(h2[..., :7], h[..., :7])                  # where both are, it is updated


def tiny_sg(heatmap=None, **fields):
    return create_model("sg-mamba", num_classes=3, appearance_dim=12, down_dim=8,
                        heatmap={"window": 4, "size": 14, "patch": 7, "dim": 8, "depth": 1, **(heatmap or {})},
                        head_dim=8, backbone={"embd_dim": 8, "arch": [1, 1, 2], "backend": "torch"},
                        regression_range=[[0, 4], [4, 8], [8, 1000]], ccm_layers=1, **fields)


def test_a_video_alone_and_in_a_padded_batch_give_the_same_outputs():
    from trained_like import trained_like

    torch.manual_seed(0)
    model = trained_like(tiny_sg(), seed=1).double().eval()
    f, h = torch.randn(2, 12, 16, dtype=torch.float64), torch.rand(2, 16, 4, 14, 14, dtype=torch.float64)
    mask = torch.arange(16)[None] < torch.tensor([[16], [11]])
    batched = model(mask, features=f, heatmaps=h)
    alone = model(torch.arange(12)[None] < 11, features=f[1:, :, :12], heatmaps=h[1:, :12])
    for level, (a, b) in enumerate(zip(alone.cls_logits, batched.cls_logits)):
        n = alone.masks[level][0].sum()
        torch.testing.assert_close(a[0, :n], b[1, :n], rtol=0, atol=1e-9)


def test_sizes_with_and_without_the_down_projection():
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    full = create_model("sg-mamba", num_classes=7, down_dim=None)
    assert round(n(full.ccm) / 1e6, 1) == 70.7 and round(n(full.stem) / 1e6, 1) == 6.9  # the public code's sizes
    assert round(n(full) / 1e6) == 109
    slim = create_model("sg-mamba", num_classes=7)
    assert n(slim) < n(full) / 2 and slim.appearance.backbone.embd[0].conv.in_channels == 512


def test_skeleton_frames_are_windowed_onto_the_appearance_grid():
    frames = np.arange(20)[:, None, None] * np.ones((1, 2, 2))
    grid = SnippetGrid(window=4, stride=3, fps=10.0, num_snippets=6)  # starts 0, 3, ..., 15; the last runs past 20
    windows = window_frames(frames, grid, "x", 10.0)
    assert windows.shape == (6, 4, 2, 2)
    assert windows[:, :, 0, 0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [9, 10, 11, 12],
                                           [12, 13, 14, 15], [15, 16, 17, 18]]
    assert window_frames(frames[:17], grid, "x", 10.0)[-1, :, 0, 0].tolist() == [15, 16, 16, 16]  # pad tail
    with pytest.raises(DataError, match="x: its frames are at 25 fps, the features' grid at 10 fps"):
        window_frames(frames, grid, "x", 25.0)


def test_crops_cut_both_modalities_at_the_same_time(tmp_path):
    from detect.data.segments import SegmentDataset
    from extract.annotations import load_annotations

    feats, heat, ann = write_two_modality_dataset(tmp_path, n_train=2, n_test=0, steps=(60, 61))
    streams = StreamSet.open({"features": [str(feats)], "heatmaps": [str(heat)]})
    full, grid = streams.read("train_000")
    starts = grid.start_frames()
    ds = SegmentDataset(streams, load_annotations(ann), ["train_000"], ["a", "b", "c", "d"], training=True,
                        max_seq_len=32)
    for epoch in range(4):
        ds.set_epoch(epoch)
        item = ds[0]
        k0 = item.offset
        assert item.streams["features"].shape[1] == item.streams["heatmaps"].shape[0] == 32
        torch.testing.assert_close(item.streams["features"], full["features"][:, k0:k0 + 32])
        torch.testing.assert_close(item.streams["heatmaps"], full["heatmaps"][k0:k0 + 32])
        assert starts[k0] == 2 * k0  # the windows of the crop are those of the same grid steps


def two_modality_run(root, towers, epochs=32):
    feats, heat, ann = root / "data" / "features", root / "data" / "heatmaps", root / "data" / "annotations.json"
    if not ann.exists():
        write_two_modality_dataset(root / "data")
    model = {"name": "sg-mamba", "num_classes": 4, "appearance_dim": 12, "down_dim": 16, "towers": towers,
             "fusion_weight": 0.5, "heatmap": {"window": 4, "size": 14, "patch": 7, "dim": 16, "depth": 1,
                                               "drop_path": 0.0},
             "head_dim": 16, "ccm_layers": 1, "ccm_drop_path": 0.0, "regression_range": [[0, 4], [4, 8], [8, 10000]],
             "backbone": {"embd_dim": 16, "arch": [1, 1, 2], "backend": "torch", "drop_path": 0.0, "max_seq_len": 128}}
    return {"model": model,
            "data": {"streams": {"features": [str(feats)], "heatmaps": [str(heat)]}, "annotations": str(ann),
                     "train_split": "training", "val_split": "training", "val_holdout": 0.2, "test_split": "testing",
                     "max_seq_len": 128, "num_workers": 0},
            "optim": {"lr": 3e-3, "epochs": epochs, "warmup_epochs": 1, "batch_size": 4, "amp": "none",
                      "weight_decay": 0.01, "ema_decay": 0.9},
            "task": {"tiou": [0.3, 0.5, 0.7]}, "eval": {"every": 4}, "output": str(root / towers), "seed": 0, "log_every": 20}


@pytest.mark.timeout(900)  # three short trainings: about 100 s on 2 cores
@pytest.mark.slow  # 80 s on 2 cores: the default suite keeps within its 15 minutes
def test_the_fused_model_beats_each_tower_when_each_modality_carries_half_the_classes(tmp_path):
    results = {t: train(load_config(None, base=two_modality_run(tmp_path, t)), progress=False)["test"]["average_mAP"]
               for t in ("appearance", "skeleton", "both")}
    print("test average mAP by tower:", results)  # docs/MODELS.md quotes this run (pytest -s)
    assert results["both"] > 0.65 and results["both"] > max(results["appearance"], results["skeleton"]) + 0.1, results


@pytest.mark.parametrize("spare", [0, 5])
def test_a_stem_with_a_fixed_window_count_equals_the_one_that_selects(spare):
    """``max_windows`` (fixed shapes, for CUDA graphs) encodes the valid windows plus fillers that
    are thrown away: the same outputs and parameter gradients as selecting the valid ones."""
    from detect.layers.heatmap_stem import HeatmapStem, HeatmapStemConfig

    torch.manual_seed(0)
    cfg = dict(window=4, size=14, patch=7, dim=8, depth=2, drop_path=0.0)
    selecting = HeatmapStem(HeatmapStemConfig(**cfg), backend="torch").double().train()
    mask = torch.arange(6)[None] < torch.tensor([[6], [2], [4]])
    fixed = HeatmapStem(HeatmapStemConfig(**cfg, max_windows=int(mask.sum()) + spare), backend="torch").double()
    fixed.load_state_dict(selecting.state_dict())
    heat = torch.rand(3, 6, 4, 14, 14, dtype=torch.float64)
    weights = torch.randn(3, 8, 6, dtype=torch.float64)
    outs, grads = [], []
    for stem in (selecting, fixed):
        out = stem(heat, mask)
        outs.append(out)
        grads.append(torch.autograd.grad((out * weights).sum(), list(stem.parameters())))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    assert not outs[1].transpose(1, 2)[~mask].any()
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_a_batch_over_max_windows_is_refused_and_only_a_fixed_stem_is_capturable():
    from detect.errors import ConfigError

    assert not tiny_sg().capturable
    assert tiny_sg(towers="appearance").capturable
    model = tiny_sg(heatmap={"max_windows": 10})
    assert model.capturable
    mask = torch.ones(2, 8, dtype=torch.bool)
    with pytest.raises(ConfigError, match="model.heatmap.max_windows is 10 but a batch has 16 valid steps"):
        model.check_inputs({"mask": mask})
    inputs = {"features": torch.randn(2, 12, 8), "heatmaps": torch.rand(2, 8, 4, 14, 14)}
    with pytest.raises(ConfigError, match="max_windows"):
        model.train()(mask, **inputs)
    model.check_inputs({"mask": mask[:, :5]})
    model.eval()(mask, **inputs)   # evaluation is never graphed: it selects the valid windows


def test_the_stem_recompute_setting_reaches_its_scans():
    """``model.heatmap.recompute=false`` keeps the stem's scan tensors for backward (time for memory)."""
    from detect.layers.heatmap_stem import HeatmapStem

    for setting, expected in (({}, True), ({"recompute": False}, False)):
        stem = next(m for m in tiny_sg(heatmap=setting).modules() if isinstance(m, HeatmapStem))
        assert [layer.mixer.cfg.recompute for layer in stem.layers] == [expected]
