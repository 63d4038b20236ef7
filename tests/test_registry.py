"""Registry-wide checks (timm's habit): every registered model, task and extractor.

A model registers a ``tiny`` config; from it and its ``input_shapes`` each model here is built,
run forward and backward on the CPU, checked for exact padding in float64, round-tripped
through a strict state dict, listed by ``detect models`` and documented in docs/CONFIGS.md.
Every task trains a tiny model of its own for two epochs on planted data and its predictions
file scores to training's number through ``detect evaluate``. Every extractor extracts a
synthetic video into a store that ``verify`` finds sound, from the tiny stand-ins that
``readme_sandbox`` keeps for it (a new extractor fails here until it has one).
"""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from planted import make_planted, make_planted_clips
from trained_like import trained_like

from detect.config import load_config
from detect.engine import train
from detect.models import MODELS, create_model, describe_models, model_entry
from detect.tasks import TASKS
from extract.extractors import EXTRACTORS

NAMES = [name for name, _ in MODELS.items()]
CONFIGS_DOC = (Path(__file__).parents[1] / "docs" / "CONFIGS.md").read_text()


def tiny(name: str, num_classes: int = 3, **fields) -> torch.nn.Module:
    entry = model_entry(name)
    return create_model(name, **{**entry.example, **entry.tiny, "num_classes": num_classes, **fields})


def fixed_length(model) -> int | None:
    """Models that take a fixed number of steps (clip recognisers on N frames)."""
    return getattr(model.cfg, "num_frames", None)


def random_video(name: str, model, length: int, g: torch.Generator, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """One video's streams as the model takes them, without the batch axis: ``(C, T)`` for a
    features stream, ``(T, *shape)`` for the others (uint8 pixels for ``frames``)."""
    video = {}
    for stream, (_, shape, *_) in model_entry(name).input_shapes(model.cfg).items():
        shape = tuple(20 if s is None else s for s in shape)  # a size the model adapts to: not its own
        if stream == "frames":  # as `extract clip-frames` stores them
            video[stream] = torch.randint(0, 256, (length, *shape), generator=g, dtype=torch.uint8)
        elif len(shape) == 1:
            video[stream] = torch.randn(shape[0], length, generator=g, dtype=dtype)
        else:
            video[stream] = torch.rand(length, *shape, generator=g, dtype=dtype)
    return video


def batch_of(videos: list[dict[str, torch.Tensor]], lengths: list[int], total: int, fill: float = 0.0):
    """The model's keyword arguments: ``videos`` padded to ``total`` steps with ``fill`` (garbage,
    not zeros, so that a layer reading the padding shows) and ``mask``."""
    inputs = {}
    for stream, first in videos[0].items():
        axis = 1 if first.ndim == 2 and stream != "frames" else 0
        shape = list(first.shape)
        shape[axis] = total
        out = torch.full((len(videos), *shape), fill, dtype=first.dtype) if first.is_floating_point() else \
            torch.zeros((len(videos), *shape), dtype=first.dtype)
        for i, (video, n) in enumerate(zip(videos, lengths)):
            index = [i] + [slice(None)] * first.ndim
            index[1 + axis] = slice(0, n)
            out[tuple(index)] = video[stream]
        inputs[stream] = out
    inputs["mask"] = torch.arange(total)[None] < torch.tensor(lengths)[:, None]
    return inputs


def float_leaves(out) -> list[torch.Tensor]:
    leaves = []
    for f in dataclasses.fields(out):
        value = getattr(out, f.name)
        values = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for v in values:
            if dataclasses.is_dataclass(v):
                leaves += float_leaves(v)
            elif torch.is_tensor(v) and v.is_floating_point() and v.requires_grad:
                leaves.append(v)
    return leaves


@pytest.mark.parametrize("name", NAMES)
def test_every_model_runs_forward_and_backward_on_the_cpu(name):
    torch.manual_seed(0)
    model = tiny(name).train()
    assert model.cfg.name == name
    g = torch.Generator().manual_seed(1)
    length = fixed_length(model) or 6 * getattr(model, "length_multiple", 1)
    lengths = [length, length if fixed_length(model) else length - 3]
    out = model(**batch_of([random_video(name, model, n, g) for n in lengths], lengths, length))
    assert isinstance(out, model_entry(name).output)
    loss = sum(x.float().square().mean() for x in float_leaves(out))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert sum(int(g is not None and bool(g.abs().sum() > 0)) for g in grads) > len(grads) // 2


@pytest.mark.parametrize("name", NAMES)
def test_every_model_pads_exactly(name):
    """A video alone and batched with a longer one gives the same outputs (float64, garbage
    padding; parameters drawn as training leaves them, so that a leak is large enough to see).
    A model of a fixed number of steps has no padding: its clip's outputs must not depend on the
    batch."""
    torch.manual_seed(0)
    model = trained_like(tiny(name), seed=1).double().eval()
    multiple = getattr(model, "length_multiple", 1)
    g = torch.Generator().manual_seed(2)
    length = fixed_length(model) or -(-40 // multiple) * multiple - 3   # not a multiple of the largest stride
    longer = fixed_length(model) or -(-90 // multiple) * multiple
    video = random_video(name, model, length, g, torch.float64)
    other = random_video(name, model, longer, g, torch.float64)
    alone = batch_of([video], [length], -(-length // multiple) * multiple, fill=7.5)
    batch = batch_of([other, video], [longer, length], longer, fill=-3.0)
    with torch.no_grad():
        for a, b in zip(model(**alone).video(0, length), model(**batch).video(1, length)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_every_model_round_trips_a_strict_state_dict(name):
    torch.manual_seed(0)
    source = trained_like(tiny(name), seed=3).eval()
    torch.manual_seed(1)
    target = tiny(name).eval()
    target.load_state_dict(source.state_dict(), strict=True)
    length = fixed_length(source) or 3 * getattr(source, "length_multiple", 1)
    inputs = batch_of([random_video(name, source, length, torch.Generator().manual_seed(4))], [length], length)
    with torch.no_grad():
        for a, b in zip(source(**inputs).video(0, length), target(**inputs).video(0, length)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_every_model_is_listed_and_documented():
    proc = subprocess.run([sys.executable, "-m", "detect", "models", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    listed = {row["name"]: row for row in json.loads(proc.stdout)}
    assert sorted(listed) == NAMES
    for name in NAMES:
        assert listed[name]["task"] in TASKS and listed[name]["parameters"] > 0
        assert f"### `{name}`" in CONFIGS_DOC, f"docs/CONFIGS.md lacks {name}: python -m detect.config_doc"
    for name, _ in TASKS.items():
        assert f"### `{name}`" in CONFIGS_DOC, f"docs/CONFIGS.md lacks task {name}: python -m detect.config_doc"
    assert [r["name"] for r in describe_models()] == NAMES


def task_model(task: str) -> str:
    """The smallest registered model of ``task`` that reads only a features stream."""
    candidates = [(sum(p.numel() for p in tiny(n).parameters()), n) for n, e in MODELS.items()
                  if e.task == task and e.streams == ("features",)]
    assert candidates, f"no model of task {task!r} reads a features stream"
    return min(candidates)[1]


@pytest.mark.parametrize("task", [name for name, _ in TASKS.items()])
def test_every_task_trains_and_its_predictions_file_scores_the_same(task, tmp_path):
    name = task_model(task)
    entry = model_entry(name)
    dim = entry.input_shapes(tiny(name).cfg)["features"][1][0]
    store, ann = (make_planted_clips(tmp_path, dim=dim) if TASKS.get(task).card_task == "clip-classification"
                  else make_planted(tmp_path, n_train=12, n_test=4, dim=dim))
    cfg = {"model": {"name": name, **entry.tiny, "num_classes": 3},
           "data": {"streams": {"features": [str(store)]}, "annotations": str(ann), "max_seq_len": 128,
                    "train_split": "training" if "train_" in store.parent.joinpath("ann.json").read_text() else "train",
                    "test_split": "testing" if "test_" in ann.read_text() else "test", "num_workers": 0},
           "task": {"name": task},
           "optim": {"lr": 3e-3, "epochs": 2, "warmup_epochs": 1, "batch_size": 4, "amp": "none"},
           "output": str(tmp_path / "run")}
    summary = train(load_config(None, base=cfg), progress=False)
    metric = TASKS.get(task).metric
    predictions = [f for f in summary["files"] if f.endswith(TASKS.get(task).prediction_suffix)]
    assert predictions, summary["files"]
    proc = subprocess.run([sys.executable, "-m", "detect", "evaluate", "--annotations", str(ann), "--predictions",
                           predictions[0], "--split", cfg["data"]["test_split"], "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[metric] == pytest.approx(summary["test"][metric], abs=1e-12)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    from readme_sandbox import _tiny_models, _weights
    from videos import make_video

    root = tmp_path_factory.mktemp("stand_ins")
    _weights(root)
    _tiny_models(root)
    make_video(root / "clip.mp4", 30, fps=15.0, width=96, height=64)
    return root


@pytest.mark.parametrize("name", [name for name, _ in EXTRACTORS.items()])
def test_every_extractor_writes_a_sound_store_from_a_video(name, stand_ins, tmp_path, monkeypatch):
    import extract
    from extract.store import open_store
    from extract.store.report import summarize, verify
    from readme_sandbox import tiny_extractor_specs

    monkeypatch.setenv("MAMBA_TAD_PRETRAINED", str(stand_ins / "pretrained"))
    fields = tiny_extractor_specs(stand_ins)
    assert name in fields, f"add a tiny stand-in for extractor {name!r} to tests/readme_sandbox.py"
    spec = EXTRACTORS.get(name).spec(**fields[name], device="cpu", workers=0)
    summary = extract.run(spec, [stand_ins / "clip.mp4"], tmp_path / "store", progress=False)
    assert summary["written"] == 1 and not summary["failed"], summary
    store = open_store(tmp_path / "store")
    assert store.ids == ["clip"] and store.shape("clip")[0] > 0
    videos = summarize(store)["videos"]
    assert verify(store) == [] and (videos["ok"], videos["failed"]) == (1, 0)
    assert store.info.grid == spec.grid()


class _ShapeOnlyStore:
    """What the stream-shape check looks at: a path, a grid and a shape per video."""

    def __init__(self, path: str, shape: tuple[int, ...], window: int, stride: int, dtype: str = "float32") -> None:
        from types import SimpleNamespace

        from extract.store import SnippetGrid

        self.path, self._shape, self.info = Path(path), shape, SimpleNamespace(dtype=dtype)
        self._grid = SnippetGrid(window=window, stride=stride, fps=30.0, num_snippets=shape[0])

    def __contains__(self, vid) -> bool:
        return True

    def shape(self, vid):
        return self._shape

    def grid(self, vid):
        return self._grid


def _stores_for(shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> dict[str, list]:
    """Stores that give each stream ``shapes[stream]`` per step: (T, C) features on a snippet
    grid; a multi-axis stream beside features as a per-frame store cut into their windows; one
    on its own (clip frames) as is."""
    with_features = any(len(s) == 1 for s in shapes.values())
    window = next((s[0] for s in shapes.values() if len(s) > 1), 16)
    out = {}
    for stream, shape in shapes.items():
        dtype = dtypes.get(stream, "float32")
        if len(shape) == 1:
            out[stream] = [_ShapeOnlyStore(f"/stores/{stream}", (50, *shape), window, 4, dtype)]
        elif with_features:
            out[stream] = [_ShapeOnlyStore(f"/stores/{stream}", (300, *shape[1:]), 1, 1, dtype)]
        else:
            out[stream] = [_ShapeOnlyStore(f"/stores/{stream}", (8, *shape), 16, 16, dtype)]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_every_stream_shape_is_checked_before_the_model_runs(name):
    from types import SimpleNamespace

    from detect.config import ConfigError
    from detect.data.streams import StreamSet
    from detect.engine.run import check_stream_shapes

    cfg = SimpleNamespace(model=tiny(name).cfg)
    entries = model_entry(name).input_shapes(cfg.model)
    declared = {stream: entry[1] for stream, entry in entries.items()}
    shapes = {stream: tuple(20 if s is None else s for s in shape) for stream, shape in declared.items()}
    dtypes = {stream: entry[2] for stream, entry in entries.items() if len(entry) > 2}
    check_stream_shapes(cfg, StreamSet(_stores_for(shapes, dtypes)), "v")  # the right shapes pass
    for stream, shape in shapes.items():
        for wrong in ((*shape[:-1], shape[-1] + 1), (*shape, 2)):  # another size (channels last); another rank
            stores = _stores_for({**shapes, stream: wrong}, dtypes)
            with pytest.raises(ConfigError, match=rf"stream '{stream}' \(/stores/{stream}\)"):
                check_stream_shapes(cfg, StreamSet(stores), "v")
    for stream, dtype in dtypes.items():  # pixels stored as floats would be scaled twice
        with pytest.raises(ConfigError, match=rf"stream '{stream}' .* holds float32, but .* reads {dtype}"):
            check_stream_shapes(cfg, StreamSet(_stores_for(shapes, {**dtypes, stream: "float32"})), "v")
