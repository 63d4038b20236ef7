"""Inception-I3D: loads the published key layouts strictly, and computes what it should."""
import pytest
import torch

from extract.models.i3d import InceptionI3d, i3d_from_state_dict

# The published layout (piergiaj/pytorch-i3d), written out independently of the model code:
# endpoint -> (in channels, out channels, kernel) for plain units; inception blocks by widths.
STEM = {"Conv3d_1a_7x7": (None, 64, 7), "Conv3d_2b_1x1": (64, 64, 1), "Conv3d_2c_3x3": (64, 192, 3)}
MIXED = {"Mixed_3b": (192, [64, 96, 128, 16, 32, 32]), "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
         "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]), "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
         "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]), "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
         "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]), "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
         "Mixed_5c": (832, [384, 192, 384, 48, 128, 128])}


def published_state_dict(in_channels=3, num_classes=400, prefix="", seed=0):
    """Random tensors under the published names and shapes, without num_batches_tracked (as saved
    by PyTorch < 0.4.1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def unit(name, c_in, c_out, k):
        state[f"{prefix}{name}.conv3d.weight"] = torch.randn(c_out, c_in, k, k, k, generator=g) * 0.05
        state[f"{prefix}{name}.bn.weight"] = torch.rand(c_out, generator=g) + 0.5
        state[f"{prefix}{name}.bn.bias"] = torch.randn(c_out, generator=g) * 0.1
        state[f"{prefix}{name}.bn.running_mean"] = torch.randn(c_out, generator=g) * 0.1
        state[f"{prefix}{name}.bn.running_var"] = torch.rand(c_out, generator=g) + 0.5

    for name, (c_in, c_out, k) in STEM.items():
        unit(name, c_in or in_channels, c_out, k)
    for name, (c_in, w) in MIXED.items():
        unit(f"{name}.b0", c_in, w[0], 1)
        unit(f"{name}.b1a", c_in, w[1], 1)
        unit(f"{name}.b1b", w[1], w[2], 3)
        unit(f"{name}.b2a", c_in, w[3], 1)
        unit(f"{name}.b2b", w[3], w[4], 3)
        unit(f"{name}.b3b", c_in, w[5], 1)
    state[f"{prefix}logits.conv3d.weight"] = torch.randn(num_classes, 1024, 1, 1, 1, generator=g) * 0.01
    state[f"{prefix}logits.conv3d.bias"] = torch.zeros(num_classes)
    return state


@pytest.mark.parametrize("in_channels,num_classes,prefix", [
    (3, 400, ""),            # rgb_imagenet.pt
    (2, 400, ""),            # flow_imagenet.pt
    (3, 7, "module."),       # SG-Mamba pretrained_swallow_i3d.pth (DataParallel, 7 classes)
])
def test_published_layouts_load_strictly(in_channels, num_classes, prefix):
    state = published_state_dict(in_channels, num_classes, prefix)
    model = i3d_from_state_dict(state)
    assert model.in_channels == in_channels and model.logits.conv3d.out_channels == num_classes
    ours = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(ours[key[len(prefix):]], value)
    assert len(ours) == len(state) + sum(k.endswith("running_mean") for k in state)  # + num_batches_tracked


def test_foreign_layout_is_refused():
    with pytest.raises(ValueError, match="not an Inception-I3D state dict"):
        i3d_from_state_dict({"conv3d_1a_7x7.conv3d.weight": torch.zeros(1)})  # video_features' port
    state = published_state_dict()
    del state["Mixed_4b.b2b.bn.running_var"]
    with pytest.raises(RuntimeError, match="Missing key"):
        i3d_from_state_dict(state)


def test_features_shape_and_same_padding_arithmetic():
    model = i3d_from_state_dict(published_state_dict()).eval()
    with torch.inference_mode():
        x = torch.rand(2, 3, 16, 112, 112) * 2 - 1
        mixed = model.mixed_5c(x)
        assert mixed.shape == (2, 1024, 2, 4, 4)    # T/8, H/32, W/32 with SAME padding
        feats = model.features(x)
        assert feats.shape == (2, 1024)
        torch.testing.assert_close(feats, mixed.mean(dim=(2, 3, 4)))
        small = model.features(torch.rand(1, 3, 8, 64, 64) * 2 - 1)  # SG-Mamba-sized snippet
        assert small.shape == (1, 1024) and torch.isfinite(small).all()
        # batch invariance: one snippet alone gives the same vector as in a batch
        torch.testing.assert_close(model.features(x[:1]), feats[:1], rtol=1e-4, atol=1e-5)


def test_model_default_builds():
    assert sum(p.numel() for p in InceptionI3d().parameters()) == pytest.approx(12.7e6, rel=0.05)
