"""Graph-replayed inference: length buckets, output flattening, and the plain path off CUDA.
(Graphed vs plain outputs on a GPU: benchmarks/compare_actionformer.py checks them before timing.)"""
import torch

from detect.models import create_model
from detect.ops.graphed_forward import GraphedForward, bucket_length, flatten, unflatten


def test_buckets_cover_every_length_with_at_most_a_quarter_more_steps():
    for multiple in (1, 8, 32):
        buckets = set()
        for length in range(1, 9000):
            b = bucket_length(length, multiple)
            assert b >= length and b % multiple == 0
            assert b <= max(1.25 * length, length + multiple), (length, multiple, b)
            buckets.add(b)
        # four per doubling: few graphs for THUMOS-like lengths
        assert len({b for b in buckets if 1024 <= b < 2048}) <= 4
    assert bucket_length(300, 32) == 320 and bucket_length(1000, 32) == 1024 and bucket_length(5000, 32) == 5120


def tiny_detector():
    torch.manual_seed(0)
    return create_model("actionmamba-dbm", num_classes=3, head_dim=16,
                        regression_range=[[0, 4], [4, 8], [8, 16], [16, 10000]],
                        backbone={"input_dim": 8, "embd_dim": 16, "arch": [2, 2, 3], "backend": "torch"}).eval()


def test_flatten_and_unflatten_give_back_the_same_output():
    model = tiny_detector()
    out = model(torch.randn(2, 8, 40), torch.ones(2, 40, dtype=torch.bool))
    leaves = []
    spec = flatten(out, leaves)
    assert len(leaves) == 4 * 4 and all(isinstance(t, torch.Tensor) for t in leaves)
    back = unflatten(spec, [t.clone() for t in leaves])
    assert type(back) is type(out) and back.strides == out.strides
    for name in ("cls_logits", "offsets", "masks", "points"):
        for a, b in zip(getattr(back, name), getattr(out, name)):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


def test_off_cuda_it_is_the_plain_forward_without_gradients():
    model = tiny_detector()
    x, mask = torch.randn(1, 8, 40), torch.arange(40)[None] < 37
    out = GraphedForward(model)(features=x, mask=mask)
    ref = model(x, mask)
    assert out.cls_logits[0].shape == ref.cls_logits[0].shape and not out.cls_logits[0].requires_grad
    for a, b in zip(out.cls_logits, ref.cls_logits):
        torch.testing.assert_close(a, b.detach())
