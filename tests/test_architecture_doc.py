"""docs/ARCHITECTURE.md's worked examples work as written: a segments model, a dense model and a
task (with a model of it) register, pass the registry-wide checks, train and score; an
extractor extracts a video. Each runs against copies of the registries, so the real ones stay
untouched."""
import re
import sys
import types
from pathlib import Path

import pytest
import yaml
from planted import make_planted

import detect.models.registry
import detect.tasks
from detect.config import load_config
from detect.engine import train
from detect.engine.score import score_file
from detect.errors import ConfigError
from extract.registry import Registry

DOC = Path(__file__).parents[1] / "docs" / "ARCHITECTURE.md"


def section(title: str) -> str:
    text = DOC.read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def blocks(title: str, kind: str = "python") -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section(title), re.S)


def copy_of(registry: Registry) -> Registry:
    out = Registry(registry.kind)
    for name, entry in registry.items():
        out.add(name, entry)
    return out


@pytest.fixture
def registries(monkeypatch):
    """Scratch copies of the model and task registries; the doc's modules go into them."""
    monkeypatch.setattr(detect.models.registry, "MODELS", copy_of(detect.models.registry.MODELS))
    monkeypatch.setattr(detect.tasks, "TASKS", copy_of(detect.tasks.TASKS))
    return detect.models.registry


def load_module(code: str, name: str, monkeypatch) -> types.ModuleType:
    """``code`` as the module ``name`` of the package, as if its file were there."""
    module = types.ModuleType(name)
    module.__package__ = name.rpartition(".")[0]
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(code, f"{DOC}:{name}", "exec"), module.__dict__)
    return module


def scored_like_training(summary: dict, ann: Path, split: str, task: str) -> None:
    """The predictions file training wrote scores to training's number."""
    from detect.tasks import get_task

    metric = get_task(task).metric
    path = next(f for f in summary["files"] if f.endswith(get_task(task).prediction_suffix))
    name, result = score_file(ann, path, split)
    assert name == task
    assert result[metric] == pytest.approx(summary["test"][metric], abs=1e-12)


def run_config(model: dict, store: Path, ann: Path, out: Path, **task) -> dict:
    return {"model": model, "data": {"streams": {"features": [str(store)]}, "annotations": str(ann),
                                     "train_split": "training", "test_split": "testing", "num_workers": 0,
                                     "max_seq_len": 128},
            **({"task": task} if task else {}),
            "optim": {"lr": 3e-3, "epochs": 2, "warmup_epochs": 1, "batch_size": 4, "amp": "none"},
            "output": str(out)}


def check_like_every_model(name: str) -> None:
    import test_registry

    test_registry.test_every_model_runs_forward_and_backward_on_the_cpu(name)
    test_registry.test_every_model_pads_exactly(name)
    test_registry.test_every_model_round_trips_a_strict_state_dict(name)


def test_the_segments_model_example_trains_on_planted_data(registries, monkeypatch, tmp_path):
    code, = blocks("Adding a segments model")
    load_module(code, "detect.models.conv1", monkeypatch)
    entry = registries.model_entry("conv1")
    assert entry.task == "segments" and entry.config.name == "conv1"
    check_like_every_model("conv1")
    config, = blocks("Adding a segments model", "yaml")
    assert yaml.safe_load(config)["model"]["name"] == "conv1"
    store, ann = make_planted(tmp_path, n_train=12, n_test=4, dim=16)
    cfg = run_config({"name": "conv1", "num_classes": 3, "input_dim": 16}, store, ann, tmp_path / "run",
                     postprocess={"max_seg_num": 100})
    summary = train(load_config(None, base=cfg), progress=False)
    assert summary["task"] == "segments"
    scored_like_training(summary, ann, "testing", "segments")


def test_a_model_missing_part_of_its_contract_is_refused_at_config_load(registries, monkeypatch, tmp_path):
    code, = blocks("Adding a segments model")
    load_module(code.replace('"conv1"', '"conv1-unsaid"').replace("output=DetectorOutput", "output=None"),
                "detect.models.conv1_unsaid", monkeypatch)
    cfg = run_config({"name": "conv1-unsaid", "num_classes": 3, "input_dim": 16}, tmp_path, tmp_path / "a.json",
                     tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^model 'conv1-unsaid' does not say what it returns: register it "
                                          r"with output=\.\.\."):
        load_config(None, base=cfg)
    load_module(code.replace('"conv1"', '"conv1-nameless"').replace("    num_classes: int\n", "    classes: int = 3\n")
                .replace("cfg.num_classes", "cfg.classes").replace('example={"num_classes": 20}', "example={}"),
                "detect.models.conv1_nameless", monkeypatch)
    cfg["model"] = {"name": "conv1-nameless", "input_dim": 16}
    with pytest.raises(ConfigError, match=r"^model 'conv1-nameless': its config has no num_classes, which the "
                                          r"'segments' task reads$"):
        load_config(None, base=cfg)


def test_the_dense_model_example_registers_builds_and_runs(registries, monkeypatch):
    code, = blocks("Adding a dense model")
    load_module(code, "detect.models.window_mlp", monkeypatch)
    entry = registries.model_entry("window-mlp")
    assert entry.task == "dense" and entry.streams == ("features",)
    check_like_every_model("window-mlp")
    assert any(row["name"] == "window-mlp" and row["parameters"] > 0 for row in registries.describe_models())


def test_the_task_example_trains_writes_and_scores_its_predictions(registries, monkeypatch, tmp_path):
    task_code, model_code = blocks("Adding a task")
    load_module(task_code, "detect.tasks.counting", monkeypatch)
    load_module(model_code, "detect.models.count_pool", monkeypatch)
    assert registries.model_entry("count-pool").task == "counting"
    check_like_every_model("count-pool")
    store, ann = make_planted(tmp_path, n_train=12, n_test=4, dim=16)
    cfg = run_config({"name": "count-pool", "num_classes": 3, "input_dim": 16}, store, ann, tmp_path / "run")
    loaded = load_config(None, base=cfg)
    assert loaded.task.name == "counting" and loaded.task.loss == "poisson"  # the model's task, its default
    summary = train(loaded, progress=False)
    assert summary["task"] == "counting" and summary["test"]["mae"] >= 0
    scored_like_training(summary, ann, "testing", "counting")
    cfg["task"] = {"loss": "l1"}
    with pytest.raises(ConfigError, match="loss must be 'poisson' or 'mse', got 'l1'"):
        load_config(None, base=cfg)


def test_the_extractor_example_runs_from_the_cli_and_from_python(monkeypatch, tmp_path, capsys):
    import numpy as np
    from videos import make_video

    import extract
    import extract.extractors
    from extract.cli import main
    from extract.store import open_store

    extractor_code, python_code = blocks("Adding an extractor")
    monkeypatch.setattr(extract.extractors, "EXTRACTORS", copy_of(extract.extractors.EXTRACTORS))
    load_module(extractor_code, "extract.extractors.mean_rgb", monkeypatch)
    (tmp_path / "videos").mkdir()
    make_video(tmp_path / "videos" / "clip", 40, fps=25.0, width=64, height=48)
    store = tmp_path / "store"
    assert main(["mean-rgb", "--video-dir", str(tmp_path / "videos"), "--out", str(store), "--size", "32",
                 "--device", "cpu", "--workers", "0", "--gamma", "0.5"]) == 0
    features = open_store(store).read("clip")
    assert features.shape == ((40 - 16) // 8 + 1, 3)                 # the spec's stride default, 8
    assert np.all((features > 0) & (features < 1))
    assert open_store(store).info.grid == {"window": 16, "stride": 8, "tail": "drop", "fps": "native"}
    with pytest.raises(SystemExit):
        main(["mean-rgb", "--help"])
    assert "--gamma GAMMA" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="^error: --gamma must be positive, got -1.0$"):
        main(["mean-rgb", "--video-dir", str(tmp_path / "videos"), "--out", str(tmp_path / "bad"), "--gamma", "-1"])
    monkeypatch.chdir(tmp_path)   # the Python example, with its paths
    exec(compile(python_code, str(DOC), "exec"), {"__name__": "run_example"})
    np.testing.assert_allclose(open_store(tmp_path / "stores" / "x").read("clip"), features ** 2, rtol=1e-5)
