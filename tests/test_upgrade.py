"""Checkpoints written before the model registry upgrade to today's layout and give the same
outputs. The fixtures were written by that code (commit 6e231cb): a tiny transformer and a tiny
DBM detector with perturbed weights, a probe input and the outputs it gave."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detect.config import ConfigError
from detect.engine import load_checkpoint, load_trained

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["actionformer", "actionmamba-dbm"])
def test_an_old_checkpoint_upgrades_and_gives_the_same_outputs(name, tmp_path):
    old = FIXTURES / f"pre_registry_{name}.pt"
    with pytest.raises(ConfigError, match="python -m detect upgrade OLD NEW"):
        load_trained(str(old))
    new = tmp_path / "best.pt"
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(old), str(new)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"model {name}" in proc.stdout
    cfg, model, state = load_trained(str(new))
    assert cfg.model.name == name and cfg.data.streams == {"features": ["stores/x"]}
    probe = load_checkpoint(old)["probe"]
    with torch.no_grad():
        out = model.eval()(probe["input"], torch.ones(1, probe["input"].shape[-1], dtype=torch.bool))
    for ours, theirs in zip(out.cls_logits + out.offsets, probe["cls_logits"] + probe["offsets"]):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_upgrading_a_current_checkpoint_is_refused(tmp_path):
    new = tmp_path / "best.pt"
    subprocess.run([sys.executable, "-m", "detect", "upgrade", str(FIXTURES / "pre_registry_actionformer.pt"),
                    str(new)], check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(new), str(tmp_path / "again.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error: not an old-layout config")
