"""Padding is exact, end to end: a video's outputs do not depend on what else is in its batch.

Parameters are drawn as training leaves them (LayerNorm biases and gains far from 0 and 1,
residual scales near 1, non-zero conv biases): with the initial ones (zero biases, 1e-4
scales) a leak through the padding is too small to see. Padding is garbage, not zeros.
"""
import pytest
import torch

from detect.models import create_model

DETECTORS = ["actionformer", "actionformer-conv", "actionmamba-vim", "actionmamba-dbm", "actionmamba-msf"]


def trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith(("A_log", "A_b_log")):
                p.copy_(torch.log(torch.rand(p.shape, generator=g, dtype=p.dtype) * 8 + 0.5))
            elif name.endswith("scale"):
                p.copy_(1 + 0.3 * noise)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.5 * noise)
            elif name.endswith("bias") or "norm" in name:
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise / max(p[0].numel(), 1) ** 0.5)
    return model


def valid_outputs(out, index, length):
    """Valid steps of every level of video ``index``: logits and offsets."""
    rows = []
    for logits, offsets, stride in zip(out.cls_logits, out.offsets, out.strides):
        valid = -(-length // stride)
        rows += [logits[index, :valid], offsets[index, :valid]]
    return rows


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("length", [40, 37])  # a multiple of the largest stride (8) and not
def test_a_video_alone_and_batched_with_a_longer_one_gives_the_same_outputs(name, length):
    torch.manual_seed(0)
    cfg = dict(num_classes=3, head_dim=16, regression_range=[[0, 4], [4, 8], [8, 16], [16, 10000]],
               backbone={"input_dim": 8, "embd_dim": 16, "arch": [2, 2, 3]})
    if name == "actionformer":
        cfg["backbone"]["window"] = 5
    model = trained_like(create_model(name, **cfg), seed=1).double().eval()
    g = torch.Generator().manual_seed(2)
    video, other = torch.randn(8, length, generator=g, dtype=torch.float64), torch.randn(8, 90, generator=g,
                                                                                         dtype=torch.float64)
    alone = torch.full((1, 8, 40), 7.5, dtype=torch.float64)  # garbage padding
    alone[0, :, :length] = video
    batch = torch.full((2, 8, 96), -3.0, dtype=torch.float64)
    batch[0, :, :90], batch[1, :, :length] = other, video
    out_alone = model(alone, torch.arange(40)[None] < length)
    out_batch = model(batch, torch.arange(96)[None] < torch.tensor([[90], [length]]))
    for a, b in zip(valid_outputs(out_alone, 0, length), valid_outputs(out_batch, 1, length)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_padding_test_can_fail_when_a_layer_reads_the_padding(monkeypatch):
    """The same check catches the leak this test suite exists for: a conv that reads padded inputs."""
    from detect.models import layers

    def leaky(self, x, mask, zeroed=False):
        out_mask = layers.downsample_mask(mask, self.stride)
        return self.conv(x) * out_mask.to(x.dtype), out_mask

    monkeypatch.setattr(layers.MaskedConv1D, "forward", leaky)
    with pytest.raises(AssertionError):
        test_a_video_alone_and_batched_with_a_longer_one_gives_the_same_outputs("actionmamba-dbm", 37)
