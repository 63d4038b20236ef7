"""Training end to end on CPU: planted actions are learnt, resume is exact, the CLI works."""
import json
import subprocess
import sys

import pytest
import torch
import yaml
from planted import make_planted, tiny_config

from detect.config import ConfigError, load_config
from detect.data.splits import holdout_fraction, resolve_splits
from detect.engine import param_groups, train, warmup_cosine
from detect.engine.trainer import RunExistsError
from detect.models import create_model
from extract.annotations import load_annotations


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted(tmp_path_factory.mktemp("planted"))


def test_short_cpu_training_learns_the_planted_actions(planted, tmp_path):
    store, ann = planted
    cfg = load_config(None, base=tiny_config(store, ann, tmp_path / "run", epochs=16, optim__ema_decay=0.9))
    summary = train(cfg, progress=False)
    assert summary["best_val"]["epoch"] >= 0
    # Chance is ~0; a detector that sees the planted signal localises most actions.
    assert summary["test"]["average_mAP"] > 0.5, summary["test"]
    assert summary["test"]["mAP"]["0.3"] > 0.8
    assert "clean-gt" in summary["test"]["protocol"] or "official" in summary["test"]["protocol"]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["final_loss"] for r in log if "lr" in r]
    assert losses[-1] < losses[0]
    assert log[0]["note"].startswith("CPU threads: ")       # the thread choice, said once


def test_a_training_split_smaller_than_one_step_is_one_clear_error(planted, tmp_path):
    from detect.errors import DataError

    store, ann = planted
    cfg = load_config(None, base=tiny_config(store, ann, tmp_path / "run", optim__batch_size=4, optim__accumulate=8))
    with pytest.raises(DataError, match=r"has 16 videos, fewer than one optimizer step takes \(optim.batch_size 4 x "
                                        r"optim.accumulate 8 x 1 processes = 32\)"):
        train(cfg, progress=False)


@pytest.mark.parametrize("backend,message", [("triton", "backend 'triton' needs CUDA tensors, got tensors on cpu"),
                                             ("jax", "unknown backend 'jax'")])
def test_a_backend_that_cannot_run_here_is_one_line(planted, tmp_path, capsys, backend, message):
    from detect import cli

    store, ann = planted
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(tiny_config(store, ann, tmp_path / "run", epochs=2)))
    assert cli.main(["train", "--config", str(tmp_path / "cfg.yaml"), f"model.backbone.backend={backend}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(planted, tmp_path):
    store, ann = planted
    base = tiny_config(store, ann, tmp_path / "straight", epochs=3)
    base["data"]["num_workers"] = 2  # worker seeding must be reproducible too
    base["model"]["backbone"]["drop_path"] = 0.2  # random drop path: the RNG state must resume
    base["eval"]["every"] = 1
    train(load_config(None, base=base), progress=False)
    base["output"] = str(tmp_path / "resumed")
    cfg = load_config(None, base=base)
    train(cfg, progress=False, stop_after_epoch=1)
    train(cfg, progress=False, resume=True)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=0, atol=0, msg=f"{part}.{key}")
    assert a["history"][-1]["final_loss"] == b["history"][-1]["final_loss"]


def test_holdout_validation_never_trains_on_its_videos(planted):
    store, ann = planted
    cfg = load_config(None, base=tiny_config(store, ann, "unused"))
    splits = resolve_splits(cfg.data, load_annotations(ann))
    assert splits["val"] and not set(splits["val"]) & set(splits["train"])
    assert all(holdout_fraction(v) < 0.2 for v in splits["val"])
    assert all(v.startswith("test") for v in splits["test"])


def test_no_weight_decay_groups_and_schedule():
    cfg = load_config(None, base=tiny_config("s", "a", "o"))
    model = create_model(cfg.model)
    decay, no_decay = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert any(n.endswith("A_log") for n in no_decay_names) and any(n.endswith(".D") for n in no_decay_names)
    assert any("norm" in n for n in no_decay_names) and any(n.endswith("bias") for n in no_decay_names)
    assert all(names[id(p)].endswith("weight") for p in decay["params"])
    assert warmup_cosine(0, 10, 110, 1e-3, 1e-8) == 0
    assert warmup_cosine(5, 10, 110, 1e-3, 1e-8) == pytest.approx(0.5)
    assert warmup_cosine(10, 10, 110, 1e-3, 1e-8) == pytest.approx(1.0)
    assert warmup_cosine(110, 10, 110, 1e-3, 1e-8) == pytest.approx(1e-5)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"optim: unknown keys \['lrr'\]"):
        load_config(None, ["optim.lrr=1"], base=tiny_config("s", "a", "o"))
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(None, ["optim.lr"], base=tiny_config("s", "a", "o"))
    cfg = load_config(None, ["optim.lr=2e-4", "model.name=actionmamba-vim", "model.backbone.divide_out=true"],
                      base=tiny_config("s", "a", "o"))
    assert cfg.optim.lr == 2e-4 and cfg.model.name == "actionmamba-vim" and cfg.model.backbone.divide_out
    with pytest.raises(ConfigError, match=r"model.backbone: unknown keys \['divide_out'\]"):
        load_config(None, ["model.backbone.divide_out=true"], base=tiny_config("s", "a", "o"))  # DBM has none
    with pytest.raises(ConfigError, match="unknown model 'mamba'; known: actionformer"):
        load_config(None, ["model.name=mamba"], base=tiny_config("s", "a", "o"))


def test_old_style_configs_say_how_to_update():
    old = tiny_config("s", "a", "o")
    old["model"].pop("name")
    old["model"]["backbone"]["name"] = "mamba-dbm"
    with pytest.raises(ConfigError, match="model.name: actionmamba-dbm"):
        load_config(None, base=old)
    old = tiny_config("s", "a", "o")
    old["data"]["stores"] = old["data"].pop("streams")["features"]
    with pytest.raises(ConfigError, match=r"as data.streams: \{features"):
        load_config(None, base=old)


def test_a_model_of_another_task_is_named_at_config_load():
    cfg = tiny_config("s", "a", "o")
    cfg["data"]["dataset"] = "charades"  # a dense-detection card
    with pytest.raises(ConfigError, match=r"model 'actionmamba-dbm' solves the 'segments' task \(it returns "
                                          r"DetectorOutput\), but dataset 'charades' is a 'dense' task"):
        load_config(None, base=cfg)
    cfg = tiny_config("s", "a", "o")
    cfg["data"]["streams"] = {"heatmaps": ["s"]}
    with pytest.raises(ConfigError, match=r"reads streams \['features'\], but data.streams has no"):
        load_config(None, base=cfg)


def test_cli_train_evaluate_eval_infer(planted, tmp_path):
    store, ann = planted
    cfg = tiny_config(store, ann, tmp_path / "run", epochs=4)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = [sys.executable, "-m", "detect"]
    proc = subprocess.run(run + ["train", "--config", str(tmp_path / "cfg.yaml"), "optim.ema_decay=0.9", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    dets = tmp_path / "run" / "test_detections.json"
    assert summary["files"] == [str(dets)]
    proc = subprocess.run(run + ["evaluate", "--annotations", str(ann), "--detections", str(dets), "--split", "testing",
                                 "--tiou", "0.3,0.5,0.7", "--clean-gt", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scored = json.loads(proc.stdout)
    assert scored["average_mAP"] == pytest.approx(summary["test"]["average_mAP"])
    assert set(scored["mAP"]) == {"0.3", "0.5", "0.7"}
    proc = subprocess.run(run + ["evaluate", "--annotations", str(ann), "--detections", str(dets), "--split", "testing",
                                 "--tiou", "0.5", "--no-clean-gt"], capture_output=True, text=True)
    assert "protocol: official" in proc.stdout and "jump" in proc.stdout
    proc = subprocess.run(run + ["eval", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["average_mAP"] == pytest.approx(summary["test"]["average_mAP"])
    out = tmp_path / "dets.json"  # infer on the config's test split, then evaluate: training's number exactly
    proc = subprocess.run(run + ["infer", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--out", str(out),
                                 "--device", "cpu"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for bad, code, said in [
            (["--device", "nope"], 1, "error: --device 'nope' is not a device (cuda, cuda:N or cpu)"),
            (["--merge-gap", "-3"], 2, "error: python -m detect infer: argument --merge-gap: must be >= 0, got -3 "
                                       "(see --help)")]:
        refused = subprocess.run(run + ["infer", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--out",
                                        str(tmp_path / "no.json"), *bad], capture_output=True, text=True)
        assert refused.returncode == code and refused.stderr.strip() == said
    assert not (tmp_path / "no.json").exists()
    assert len(json.loads(out.read_text())["results"]) == 8
    proc = subprocess.run(run + ["evaluate", "--annotations", str(ann), "--predictions", str(out), "--split", "testing",
                                 "--tiou", "0.3,0.5,0.7", "--clean-gt", "--json"], capture_output=True, text=True)
    assert json.loads(proc.stdout)["average_mAP"] == summary["test"]["average_mAP"]
    proc = subprocess.run(run + ["infer", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--store", str(store),
                                 "--annotations", str(ann), "--split", "all", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert len(results) == 32 and all(0 <= d["segment"][0] <= d["segment"][1] for v in results.values() for d in v)


def test_class_agnostic_resized_training_with_score_fusion(planted, tmp_path):
    """The ActivityNet recipe: one class, features resized to a fixed length, classes from a file."""
    store, ann = planted
    database = load_annotations(ann).database
    classes = ["jump", "throw", "spin"]
    scores = {vid: [float(any(a.label == c for a in v.annotations)) for c in classes] for vid, v in database.items()}
    ext = tmp_path / "ext.json"
    ext.write_text(json.dumps({"class": classes, "results": scores}))
    base = tiny_config(store, ann, tmp_path / "run", epochs=13, optim__ema_decay=0.9, task__resize_to=64,
                       task__class_agnostic=True, task__ext_score_file=str(ext))
    base["model"]["num_classes"] = 1
    summary = train(load_config(None, base=base), progress=False)
    assert "fused with" in summary["test"]["protocol"]
    assert summary["test"]["mAP"]["0.3"] > 0.5, summary["test"]
    dets = json.loads((tmp_path / "run" / "test_detections.json").read_text())["results"]
    video = next(iter(dets))
    present = {c for c, s in zip(classes, scores[video]) if s}
    assert {d["label"] for d in dets[video] if d["score"] > 0} <= present  # top-2 fusion: absent classes score 0


def test_resized_grid_converts_back_to_the_same_seconds(planted):
    from detect.data.segments import SegmentDataset
    from detect.data.streams import StreamSet

    store, ann = planted
    annotations = load_annotations(ann)
    vid = sorted(annotations.database)[0]
    streams = StreamSet.open({"features": [store]})
    plain = SegmentDataset(streams, annotations, [vid], annotations.classes, training=False)[0]
    resized = SegmentDataset(streams, annotations, [vid], annotations.classes, training=False, resize_to=50)[0]
    assert resized.streams["features"].shape[1] == 50
    back = resized.grid.index_to_seconds(resized.targets["segments"].double().numpy())
    expected = plain.grid.index_to_seconds(plain.targets["segments"].double().numpy())
    assert back == pytest.approx(expected, abs=1e-4)


def test_ddp_under_torchrun_on_cpu(planted, tmp_path):
    store, ann = planted
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(tiny_config(store, ann, tmp_path / "ddp", epochs=3)))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "detect",
                           "train", "--config", str(tmp_path / "cfg.yaml"), "--json"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)  # one report, from rank 0
    assert "test" in summary and (tmp_path / "ddp" / "best.pt").exists()
    state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 3


def test_plot_push_and_hf_checkpoint(planted, tmp_path, monkeypatch, capsys):
    from detect import cli
    from detect.engine import resolve_checkpoint
    from detect.errors import CheckpointError
    from detect.hub import push_checkpoint

    store, ann = planted
    train(load_config(None, base=tiny_config(store, ann, tmp_path / "run", epochs=2)), progress=False)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    dets = tmp_path / "run" / "test_detections.json"
    video = next(iter(json.loads(dets.read_text())["results"]))
    assert cli.main(["plot", str(dets), "--annotations", str(ann), "--video", video, "--out",
                     str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"

    class FakeApi:
        files = {}

        def create_repo(self, repo_id, **kw):
            pass

        def upload_file(self, path_or_fileobj, path_in_repo, repo_id):
            self.files[path_in_repo] = path_or_fileobj
            return type("CommitInfo", (), {"oid": "c0ffee"})()

    api = FakeApi()
    assert push_checkpoint(tmp_path / "run" / "best.pt", "me/tiny", api=api) == "hf://me/tiny@c0ffee/best.pt"
    assert set(api.files) == {"best.pt", "config.yaml", "recipe.yaml", "README.md"}
    card = api.files["README.md"].read().decode()
    assert "hf://me/tiny/best.pt" in card and "## Feature recipe" in card and "No validation result" in card
    assert "Classes (3)" in card

    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda repo, name, revision: str(tmp_path / "run" / name))
    assert resolve_checkpoint("hf://me/tiny/best.pt") == tmp_path / "run" / "best.pt"
    with pytest.raises(CheckpointError, match=r"hf://ORG/REPO\[@REVISION\]\[/FILE\]"):
        resolve_checkpoint("hf://me")
    assert cli.main(["eval", "--checkpoint", "hf://me/"]) == 1
    assert capsys.readouterr().err == "error: 'hf://me/' is not hf://ORG/REPO[@REVISION][/FILE]\n"


def test_a_folder_holding_a_run_is_refused_unless_resuming(planted, tmp_path):
    store, ann = planted
    cfg = load_config(None, base=tiny_config(store, ann, tmp_path / "run", epochs=2))
    train(cfg, progress=False, stop_after_epoch=0)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config(store, ann, tmp_path / "run", epochs=2)))
    proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: {tmp_path / 'run'} holds a run (last.pt): pass "
                                   f"--resume to continue it, or output=<new folder> to start another")
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == before  # nothing touched
    assert train(cfg, progress=False, resume=True)["epochs"] == 2


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_stopped_before_its_first_checkpoint_restarts_with_the_same_command(planted, tmp_path, resume):
    from detect.engine.trainer import config_text

    store, ann = planted
    cfg = load_config(None, base=tiny_config(store, ann, tmp_path / "run", epochs=2))
    run = tmp_path / "run"
    (run / "tb").mkdir(parents=True)  # what a run killed in its first epoch leaves
    (run / "config.yaml").write_text(config_text(cfg))
    (run / "log.jsonl").write_text('{"step": 5, "epoch": 0, "loss": 3.0}\n')
    summary = train(cfg, progress=False, resume=resume)
    assert summary["epochs"] == 2 and (run / "last.pt").exists()
    assert '"loss": 3.0' not in (run / "log.jsonl").read_text()  # the aborted start's log is gone, not mixed in
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text(config_text(cfg).replace("lr: 0.003", "lr: 0.01"))
    (other / "log.jsonl").write_text("{}\n")
    cfg.output = str(other)
    with pytest.raises(RunExistsError, match="holds the start of another run"):
        train(cfg, progress=False, resume=resume)
    assert (other / "log.jsonl").read_text() == "{}\n"  # another run's files are never touched


def test_ctrl_c_is_one_line_and_resume_continues(planted, tmp_path):
    import signal
    import time

    store, ann = planted
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config(store, ann, tmp_path / "run", epochs=6)))
    command = [sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "log.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip() == "error: interrupted (Ctrl-C); completed work is kept", err
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True)  # restarts or resumes
    assert done.returncode == 0, done.stderr


def test_ctrl_c_while_the_config_is_written_leaves_a_run_that_restarts(planted, tmp_path, monkeypatch):
    """An interrupt in the middle of writing config.yaml (the CI run of 2920f54 hit one) must not
    leave half a config, which the restart would take for another run's and refuse."""
    from pathlib import Path

    from detect.engine.trainer import config_text

    store, ann = planted
    cfg = load_config(None, base=tiny_config(store, ann, tmp_path / "run", epochs=2))
    write_text = Path.write_text

    def interrupted_midway(path, text, *args, **kwargs):
        if "config.yaml" in path.name:
            write_text(path, text[:len(text) // 2], *args, **kwargs)
            raise KeyboardInterrupt
        return write_text(path, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", interrupted_midway)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(Path, "write_text", write_text)
    assert not any("config.yaml" in p.name for p in (tmp_path / "run").iterdir())
    train(cfg, progress=False, resume=True)
    assert (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8") == config_text(cfg)


def test_two_trainings_cannot_write_one_folder(planted, tmp_path):
    import os

    from extract.store.lock import WriterLock

    store, ann = planted
    (tmp_path / "run").mkdir()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config(store, ann, tmp_path / "run", epochs=2)))
    held = WriterLock(tmp_path / "run" / ".lock", "run folder")  # a training in progress (this process)
    try:
        proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                              capture_output=True, text=True)
    finally:
        held.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: run folder {tmp_path / 'run'} is being written by another process "
                                  f"(pid {os.getpid()} on ")
    assert proc.stderr.strip().endswith("wait for it or train into another output=")
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_workers_and_threads_leave_each_other_cores(monkeypatch):
    from detect.data import workers
    from detect.engine.distributed import configure_cpu_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(workers, "available_cores", lambda: 2)
        monkeypatch.setattr("detect.engine.distributed.available_cores", lambda: 2)
        assert workers.loader_workers(4) == 1 and workers.loader_workers(0) == 0
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
            monkeypatch.delenv(name, raising=False)
        configure_cpu_threads(1, torch.device("cpu"))
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(workers, "available_cores", lambda: 16)
        assert workers.loader_workers(4) == 4
    finally:
        torch.set_num_threads(before)


def test_cpu_training_respects_the_users_thread_settings(monkeypatch, capsys):
    import torch

    from detect.data.workers import available_cores
    from detect.engine.distributed import configure_cpu_threads

    before = torch.get_num_threads()
    try:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
            monkeypatch.delenv(name, raising=False)
        torch.set_num_threads(64)
        cores = available_cores()
        assert configure_cpu_threads(0, torch.device("cpu")) == f"CPU threads: {cores} ({cores} cores, 0 loader workers)"
        assert torch.get_num_threads() == cores           # today's cap
        torch.set_num_threads(1)                          # a caller's choice is kept
        assert configure_cpu_threads(0, torch.device("cpu")).startswith("CPU threads: 1 (set by the caller")
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
        configure_cpu_threads(1, torch.device("cpu"))
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_cpu_threads(0, torch.device("cpu")) == "CPU threads: 1 (OMP_NUM_THREADS=1)"
        assert torch.get_num_threads() == 1
        assert capsys.readouterr().err == ""              # not a terminal: the run's log has it
        assert configure_cpu_threads(0, torch.device("cuda")) is None
    finally:
        torch.set_num_threads(before)
