"""Our detectors' state dicts match the public code's, key for key and shape for shape.

The fixtures list ``state_dict()`` keys and shapes of the upstream models at their published
configs (facts read off the public code, see each fixture's ``source``).
"""
import json
from pathlib import Path

import pytest
import torch

from detect.models import create_model
from detect.models.convert import load_release, unwrap_release

FIXTURES = Path(__file__).parent / "fixtures"
CASES = {
    # fixture: (model, config at the published recipe)
    "actionformer_thumos14_i3d": ("actionformer", {"num_classes": 20, "backbone": {"input_dim": 2048}}),
    "actionmamba_dbm_thumos14_iv2_6b": ("actionmamba-dbm", {"num_classes": 20, "backbone": {"input_dim": 3200}}),
    "actionmamba_vim_thumos14_iv2_6b": ("actionmamba-vim", {"num_classes": 20, "backbone": {"input_dim": 3200}}),
}


def _layout(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())["keys"]


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_state_dict_has_the_public_layout(fixture):
    model_name, cfg = CASES[fixture]
    ours = {k: list(v.shape) for k, v in create_model(model_name, **cfg).state_dict().items()}
    assert ours == _layout(fixture)


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_public_layout_loads_strictly_both_ways(fixture):
    model_name, cfg = CASES[fixture]
    g = torch.Generator().manual_seed(0)
    theirs = {k: torch.randn(shape, generator=g) for k, shape in _layout(fixture).items()}
    model = create_model(model_name, **cfg)
    model.load_state_dict(theirs, strict=True)
    back = model.state_dict()
    assert all(torch.equal(back[k], v) for k, v in theirs.items())


def test_a_released_actionformer_file_unwraps_to_our_keys(tmp_path):
    layout = _layout("actionformer_thumos14_i3d")
    ema = {f"module.{k}": torch.full(shape, 1.0) for k, shape in layout.items()}
    raw = {f"module.{k}": torch.zeros(shape) for k, shape in layout.items()}
    path = tmp_path / "epoch_034.pth.tar"
    torch.save({"epoch": 35, "state_dict": raw, "state_dict_ema": ema, "optimizer": {}, "scheduler": {}}, path)
    model = create_model("actionformer", num_classes=20)
    model.load_state_dict(load_release(path), strict=True)
    assert all(v.eq(1).all() for v in model.state_dict().values())
    model.load_state_dict(unwrap_release(torch.load(path, weights_only=True), ema=False), strict=True)
    assert all(v.eq(0).all() for v in model.state_dict().values())
