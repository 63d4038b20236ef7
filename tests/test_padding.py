"""The registry-wide padding check (tests/test_registry.py) can fail: it catches a conv that
reads padded steps, the leak it exists for."""
import pytest

import test_registry


def test_padding_test_can_fail_when_a_layer_reads_the_padding(monkeypatch):
    from detect.layers import masked as layers

    def leaky(self, x, mask, zeroed=False):
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
