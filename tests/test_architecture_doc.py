"""docs/ARCHITECTURE.md's worked example of adding a model works as written."""
import re
from pathlib import Path

import torch

from detect.models import registry
from extract.registry import Registry

DOC = Path(__file__).parents[1] / "docs" / "ARCHITECTURE.md"


def test_the_add_a_model_example_registers_builds_and_runs(monkeypatch):
    section = DOC.read_text().split("## Adding a model", 1)[1].split("## Adding a task", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setattr(registry, "MODELS", Registry("model"))  # keep the real registry untouched
    exec(compile(code, str(DOC), "exec"), {"__name__": "window_mlp_example"})
    entry = registry.model_entry("window-mlp")
    assert entry.task == "dense" and entry.streams == ("features",)
    model = registry.create_model("window-mlp", num_classes=4, input_dim=8)
    mask = torch.arange(12)[None] < torch.tensor([[12], [7]])
    out = model(torch.randn(2, 8, 12), mask)
    assert out.logits.shape == (2, 12, 4)
    assert registry.describe_models()[0]["parameters"] > 0
