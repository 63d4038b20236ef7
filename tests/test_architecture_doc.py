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


def test_the_add_an_extractor_example_extracts_a_video(monkeypatch, tmp_path):
    import numpy as np
    from videos import make_video

    import extract.extractors
    from extract.cli import main
    from extract.store import open_store

    section = DOC.read_text().split("## Adding an extractor", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    extractors = Registry("extractor")
    for name, entry in extract.extractors.EXTRACTORS.items():
        extractors.add(name, entry)
    monkeypatch.setattr(extract.extractors, "EXTRACTORS", extractors)
    exec(compile(code, str(DOC), "exec"), {"__name__": "mean_rgb_example"})
    (tmp_path / "videos").mkdir()
    make_video(tmp_path / "videos" / "clip", 40, fps=25.0, width=64, height=48)
    store = tmp_path / "store"
    assert main(["mean-rgb", "--video-dir", str(tmp_path / "videos"), "--out", str(store), "--size", "32",
                 "--device", "cpu", "--workers", "0"]) == 0
    features = open_store(store).read("clip")
    assert features.shape == ((40 - 16) // 4 + 1, 3)
    assert np.all((features > 0) & (features < 1))
