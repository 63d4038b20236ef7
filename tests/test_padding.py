"""The registry-wide padding check (tests/test_registry.py) can fail: it catches a conv that
reads padded steps, the leak it exists for."""
import pytest

import test_registry


def test_padding_test_can_fail_when_a_layer_reads_the_padding(monkeypatch):
    from detect.layers import masked as layers

    def leaky(self, x, mask, zeroed=False, zero_output=True):
        out_mask = layers.downsample_mask(mask, self.stride)
        return self.conv(x) * out_mask.to(x.dtype), out_mask

    monkeypatch.setattr(layers.MaskedConv1D, "forward", leaky)
    with pytest.raises(AssertionError):
        test_registry.test_every_model_pads_exactly("actionmamba-dbm")


@pytest.mark.parametrize("length", [24, 25, 31])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_downsampled_masks_are_nearest_neighbour(length, stride):
    """The strided view taken when the stride divides the length is what nearest interpolation gives."""
    import torch
    import torch.nn.functional as F

    from detect.layers.masked import downsample_mask

    mask = torch.rand(3, 1, length, generator=torch.Generator().manual_seed(length)) > 0.4
    expected = F.interpolate(mask.float(), size=length // stride, mode="nearest").bool()
    assert torch.equal(downsample_mask(mask, stride), expected)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_zeroing_padding_is_one_product_with_the_same_values(dtype):
    """No cast of the mask is dispatched, forward or backward, and the values are those of the
    product with the mask cast to floats."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from detect.layers.masked import zero_padding

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    x = torch.randn(2, 5, 9, dtype=getattr(torch, dtype), requires_grad=True)
    mask = torch.rand(2, 1, 9, generator=torch.Generator().manual_seed(0)) > 0.3
    with Ops() as ops:
        out = zero_padding(x, mask)
        out.backward(torch.ones_like(out))
    assert "_to_copy" not in ops.names and ops.names.count("mul") == 2, ops.names
    assert torch.equal(out, x * mask.to(x.dtype)) and out.dtype == x.dtype
    assert torch.equal(x.grad, mask.to(x.dtype).expand_as(x))
