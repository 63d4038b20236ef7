"""Every shipped config loads, builds its model, and the recipe files match their generator."""
import subprocess
import sys
from pathlib import Path

import pytest

from detect.config import load_config
from detect.models import create_model

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_recipe_files_are_up_to_date():
    script = Path(__file__).parents[1] / "configs" / "recipes.py"
    assert subprocess.run([sys.executable, str(script), "--check"]).returncode == 0


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds(path):
    cfg = load_config(path)
    model = create_model(cfg.model)
    if hasattr(model, "strides"):  # a segment detector: one regression range per pyramid level
        assert len(model.strides) == len(cfg.model.regression_range)
    if getattr(cfg.task, "class_agnostic", False):
        assert cfg.model.num_classes == 1


def test_published_sizes():
    size = {p.stem: sum(q.numel() for q in create_model(load_config(p).model).parameters()) / 1e6
            for p in CONFIGS if "iv2" in p.stem and "transformer" not in p.stem}
    assert size["thumos14_iv2_6b_dbm"] == pytest.approx(20.3, abs=0.05)
    assert size["thumos14_iv2_6b_vim"] == pytest.approx(21.6, abs=0.05)
    assert size["activitynet_iv2_6b_dbm"] == pytest.approx(6.4, abs=0.05)
    assert size["fineaction_iv2_1b_dbm"] == pytest.approx(21.0, abs=0.05)


def test_config_files_read_yaml_1_2_numbers():
    from extract.typed_config import parse_yaml

    assert parse_yaml("a: 1e-05\nb: 1E5\nc: -2.5e+3\nd: .5\ne: 3\nf: '1e-05'\ng: 1.0\nh: .inf") == {
        "a": 1e-05, "b": 1e5, "c": -2500.0, "d": 0.5, "e": 3, "f": "1e-05", "g": 1.0, "h": float("inf")}
