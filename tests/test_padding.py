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
