"""Every user mistake is one line on stderr and exit code 1, never a traceback; nothing is written."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from planted import make_planted, task_config, tiny_config
from videos import make_video

from detect import cli as detect_cli
from detect.config import load_config
from detect.engine import train
from extract import cli as extract_cli

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    store, ann = make_planted(root, n_train=12, n_test=4)
    cfg = tiny_config(store, ann, root / "run", epochs=2)
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    train(load_config(None, base=cfg), progress=False)
    no_info = shutil.copytree(store, root / "no_info")
    (no_info / "store.json").unlink()
    truncated = shutil.copytree(store, root / "truncated")
    shard = sorted((truncated / "shards").iterdir())[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    damaged = shutil.copytree(store, root / "damaged")
    shard = sorted((damaged / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[:64] = b"\xff" * 64  # the HDF5 superblock
    shard.write_bytes(bytes(data))
    (root / "garbage.pt").write_bytes(b"not a checkpoint at all")
    (root / "charades.csv").write_text("id,length,actions\nABC12,abc,c001 1.0 2.0\n")
    _bad_prediction_files(root)
    (root / "vids").mkdir()
    make_video(root / "vids" / "a", 8, fps=25.0, width=48, height=32)
    (root / "d8").mkdir()
    make_planted(root / "d8", n_train=2, n_test=2, dim=8)  # features of another width
    dense = task_config(store, ann, root / "dense_run", "frame-conv", dim=16)
    dense["optim"]["epochs"] = 2
    train(load_config(None, base=dense), progress=False)
    return root, store, ann


def _bad_prediction_files(root):
    """Prediction files a user might hand ``detect evaluate`` by mistake, one fault each."""
    def detections(det):
        return json.dumps({"results": {"test_012": [det]}})

    good = {"label": "jump", "score": 0.5, "segment": [1.0, 2.0]}
    (root / "as_list.json").write_text(json.dumps({"results": [good]}))
    (root / "string_segment.json").write_text(detections({**good, "segment": "1-2"}))
    (root / "string_score.json").write_text(detections({**good, "score": "high"}))
    (root / "nan_reversed.json").write_text(detections({**good, "score": float("nan"), "segment": [2.0, 1.0]}))
    (root / "reversed.json").write_text(detections({**good, "segment": [2.0, 1.0]}))
    (root / "garbage.npz").write_bytes(np.random.default_rng(0).bytes(500))
    classes = np.asarray(["jump", "throw", "spin"])
    np.savez(root / "wrong_shape.npz", classes=classes, **{"test_012/scores": np.zeros((5, 2)),
                                                          "test_012/times": np.arange(5.0)})
    np.savez(root / "no_times.npz", classes=classes, **{"test_012/scores": np.zeros((5, 3))})
    np.savez(root / "other_classes.npz", classes=np.asarray(["a", "b", "c"]),
             **{"test_012/scores": np.zeros((5, 3)), "test_012/times": np.arange(5.0)})
    (root / "bad_clips.json").write_text(json.dumps({"classes": ["jump", "throw", "spin"],
                                                     "results": {"test_012": {"label": "jump", "scores": [0.5]}}}))
    (root / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (root / "not_yaml.yaml").write_bytes(b"\x00\xff: [unclosed")
    (root / "wrong_type.yaml").write_text("num_heads: four\n")


def _cases(root, store, ann):
    c, dets = str(root / "c.yaml"), str(root / "run" / "test_detections.json")
    ckpt, dense_ckpt = str(root / "run" / "best.pt"), str(root / "dense_run" / "best.pt")
    train_ = ["train", "--config", c]
    return [
        ("detect", train_ + ["data.streams.features=/missing", "output=" + str(root / "r1")], "/missing"),
        ("detect", train_ + ["data.streams.features=", "output=" + str(root / "r2")],
         "streams.features must be a store path or a list of them, got None"),
        ("detect", train_ + ["optim.batch_size=0", "output=" + str(root / "r3")], "batch_size must be at least 1, got 0"),
        ("detect", train_ + ["optim.epochs=2.5", "output=" + str(root / "r4")], "optim.epochs: expected int, got 2.5"),
        ("detect", train_ + ["model.backbone.input_dim=99", "output=" + str(root / "r5")],
         f"model.backbone.input_dim is 99, but stream 'features' ({store}) has 16 channels"),
        ("detect", train_ + [f"data.streams.features={root / 'no_info'}", "output=" + str(root / "r6")], "store.json"),
        ("detect", train_ + [f"data.streams.features={root / 'truncated'}", "output=" + str(root / "r7")], "truncated"),
        ("detect", train_ + [f"data.streams.features={root / 'damaged'}", "output=" + str(root / "r8")], "damaged"),
        ("detect", train_ + ["output=" + str(root / "run")], "holds a run"),
        ("detect", ["evaluate", "--annotations", str(ann), "--predictions", dets, "--tiou", "0.5,abc"],
         "--tiou: 'abc' is not a number"),
        ("detect", ["evaluate", "--annotations", str(ann), "--predictions", dets, "--split", "nosuch"],
         f"{ann} has no videos in subset 'nosuch' (its subsets: testing, training)"),
        ("detect", ["evaluate", "--annotations", str(ann), "--predictions", str(root / "nothere.json")], "nothere.json"),
        ("detect", ["eval", "--checkpoint", str(root / "garbage.pt")], "garbage.pt is not a readable checkpoint"),
        ("detect", ["eval", "--checkpoint", str(root / "nothere.pt")], "no checkpoint at"),
        ("detect", ["plot", dets, "--annotations", str(ann), "--video", "test_012", "--out", str(root / "fig.xyz")],
         "the file name must end in one of"),
        ("detect", ["plot", str(root / "nothere.json"), "--annotations", str(ann), "--video", "test_012", "--out",
                    str(root / "fig.png")], "cannot read"),
        ("detect", ["push", str(root / "garbage.pt"), "me/x"], "garbage.pt is not a readable checkpoint"),
        ("detect", ["infer", "--checkpoint", str(root / "run" / "best.pt"), "--split", "val", "--out",
                    str(root / "o.json"), "data.val_split=null", "data.val_holdout=null"], "split 'val'"),
        ("extract", ["annotations", "convert", "--from", "charades-csv", str(root / "charades.csv"), "--out",
                     str(root / "a.json")], "video 'ABC12': length 'abc' is not a number"),
        ("extract", ["inspect", str(root / "no_info")], "store.json"),
        ("extract", ["pack", "--from", str(root / "nothere"), "--format", "npy", "--out", str(root / "p"),
                     "--window", "4", "--stride", "2", "--fps", "10"], "nothere"),
        # options every extractor's spec checks before a model loads or a store is made
        ("extract", ["clip-frames", "--video-dir", str(root / "empty"), "--out", str(root / "cf")], "no videos found"),
        ("extract", ["clip-frames", "--video-dir", str(root / "empty"), "--out", str(root / "cf"), "--size", "-8"],
         "--size must be at least 1, got -8"),
        ("extract", ["skeleton", "--video-dir", str(root / "empty"), "--out", str(root / "sk"), "--pose", "vfss",
                     "--frame-size", "0"], "--frame-size must be at least 1, got 0"),
        ("extract", ["skeleton", "--video-dir", str(root / "empty"), "--out", str(root / "sk"), "--pose", "vfss",
                     "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        ("extract", ["skeleton", "--video-dir", str(root / "empty"), "--out", str(root / "sk"), "--pose", "vfss",
                     "--edges", "0-1,x"], '--edges: expected "a-b,c-d,...", got \'0-1,x\''),
        ("extract", ["internvideo2", "--video-dir", str(root / "empty"), "--out", str(root / "iv"), "--model", "m",
                     "--snippet-frames", "0"], "--snippet-frames must be in 1..--window (16), got 0"),
        ("extract", ["i3d", "--out", str(root / "i3"), "--fps", "fast"], "--fps must be 'native' or a positive"),
        # evaluate: prediction files of the wrong shape or content
        *[("detect", ["evaluate", "--annotations", str(ann), "--predictions", str(root / name), "--split", "testing"],
           expected) for name, expected in [
            ("as_list.json", "expected {\"results\": {video: [detections]}}, got a list"),
            ("string_segment.json", "video 'test_012', detection 0: 'segment' must be [start, end] in seconds"),
            ("string_score.json", "video 'test_012', detection 0: 'score' must be a finite number, got 'high'"),
            ("nan_reversed.json", "'score' must be a finite number, got nan"),
            ("reversed.json", "'segment' ends before it starts: [2.0, 1.0]"),
            ("garbage.npz", "garbage.npz is not a dense predictions file"),
            ("wrong_shape.npz", "video 'test_012' has scores (5, 2) and times (5,); expected (T, 3) and (T,)"),
            ("no_times.npz", "video 'test_012' lacks its times array"),
            ("other_classes.npz", "scores 3 classes that"),
            ("bad_clips.json", "has scores of shape (1,) (or NaN); expected 3 finite scores"),
        ]],
        ("detect", ["evaluate", "--annotations", str(ann), "--predictions", dets, "--task", "nosuch"],
         "--task: unknown"),
        ("detect", ["evaluate", "--annotations", str(root / "binary.csv"), "--predictions", dets], "binary.csv"),
        # train: configs and overrides
        ("detect", ["train", "--config", str(root / "nothere.yaml")], "nothere.yaml"),
        ("detect", ["train", "--config", str(root / "not_yaml.yaml")], "not_yaml.yaml"),
        ("detect", train_ + ["optim.lr"], "override 'optim.lr' is not key=value"),
        ("detect", train_ + ["model.name=nosuch", "output=" + str(root / "r9")], "nosuch"),
        ("detect", train_ + ["task.nosuch=1", "output=" + str(root / "r10")], "task: unknown keys ['nosuch']"),
        ("detect", train_ + ["optim.lr=fast", "output=" + str(root / "r11")], "optim.lr: expected a number"),
        ("detect", train_ + ["--device", "tpu", "output=" + str(root / "r12")], "--device"),
        # eval, infer, plot, upgrade, cascade
        ("detect", ["eval", "--checkpoint", ckpt, "--split", "nosuch"], "nosuch"),
        ("detect", ["eval", "--checkpoint", ckpt, "--device", "cuda:7"], "--device cuda:7"),
        ("detect", ["infer", "--checkpoint", ckpt, "--out", str(root / "nofolder" / "o.json")], "nofolder"),
        ("detect", ["infer", "--checkpoint", ckpt, "--out", str(root / "o.json"), "--threshold", "2"],
         "argument --threshold: must be in (0, 1), got 2"),
        ("detect", ["infer", "--checkpoint", dense_ckpt, "--out", str(root / "o.npz"), "--merge-gap", "-3"],
         "argument --merge-gap: must be >= 0, got -3"),
        ("detect", ["infer", "--checkpoint", ckpt, "--out", str(root / "o.json"), "--store", str(root / "nothere")],
         "nothere"),
        ("detect", ["infer", "--checkpoint", ckpt, "--out", str(root / "o.json"), "--store", str(root / "d8" / "store"),
                    "--split", "all"], "model.backbone.input_dim is 16, but stream 'features'"),
        ("detect", ["plot", dets, "--annotations", str(ann), "--video", "nosuch", "--out", str(root / "f.png")],
         "nosuch"),
        ("detect", ["upgrade", str(root / "garbage.pt"), str(root / "new.pt")], "garbage.pt"),
        ("detect", ["upgrade", str(FIXTURES / "task_settings_on_model_dense.pt"), str(root / "nofolder" / "n.pt")],
         "no folder"),
        ("detect", ["cascade", "--stage1", ckpt, "--stage2", ckpt, "--out", str(root / "cas.json")],
         "the cascade needs a one-class event detector"),
        ("detect", ["cascade", "--oracle-stage1", "--annotations", str(ann), "--stage2", dense_ckpt, "--out",
                    str(root / "cas.json")], "is a 'dense' model (frame-conv); the cascade runs segment detectors"),
        ("detect", ["cascade", "--stage1", ckpt, "--oracle-stage1", "--stage2", ckpt, "--out", str(root / "c.json")],
         "give either --stage1 CKPT or --oracle-stage1"),
        ("detect", ["cascade", "--oracle-stage1", "--annotations", str(ann), "--stage2", ckpt, "--out",
                    str(root / "c.json"), "--window", "-1"], "argument --window: must be > 0, got -1"),
        ("detect", ["cascade-windows", "--stream", f"features={store}", "--annotations", str(ann), "--event",
                    "nosuch", "--out", str(root / "win")], "--event 'nosuch' is not a class of"),
        ("detect", ["cascade-windows", "--stream", f"features={store}", "--annotations", str(ann), "--event",
                    "jump", "--window", "-4", "--out", str(root / "win")], "argument --window: must be > 0, got -4"),
        ("detect", ["cascade-windows", "--stream", f"features={store}", "--annotations", str(ann), "--event",
                    "jump", "--subsets", "nosuch", "--out", str(root / "win")], "no window to cut"),
        ("detect", ["nosuch"], "invalid choice: 'nosuch'"),
        # extract: stores, weights, annotations, extractors
        ("extract", ["verify", str(root / "nothere")], "nothere"),
        ("extract", ["recover", str(root / "nothere")], "nothere"),
        ("extract", ["inspect", str(root / "c.yaml")], "not a directory"),
        ("extract", ["download", "nosuch-weights"], "nosuch-weights"),
        ("extract", ["annotations", "convert", "--from", "charades-csv", str(root / "binary.csv"), "--out",
                     str(root / "b.json")], "is not a charades-csv text file"),
        ("extract", ["annotations", "convert", "--from", "nosuch", str(root / "binary.csv"), "--out",
                     str(root / "b.json")], "invalid choice: 'nosuch'"),
        ("extract", ["annotations", "check", str(root / "nothere.json")], "nothere.json"),
        ("extract", ["i3d", "--video-dir", str(root / "nothere"), "--out", str(root / "i3")], "nothere"),
        ("extract", ["i3d", "--video-dir", str(root / "empty"), "--out", str(root / "i3"), "--window", "0"], "window"),
        ("extract", ["i3d", "--video-dir", str(root / "empty"), "--out", str(root / "i3"), "--batch-size", "0"],
         "--batch-size must be at least 1, got 0"),
        ("extract", ["i3d", "--video-dir", str(root / "empty"), "--out", str(root / "i3"), "--dtype", "fp64"],
         "invalid choice: 'fp64'"),
        ("extract", ["clip", "--video-dir", str(root / "nothere"), "--out", str(root / "cl")], "nothere"),
        ("extract", ["internvideo2", "--video-dir", str(root / "empty"), "--out", str(root / "iv"), "--checkpoint",
                     str(root / "garbage.pt"), "--model-config", str(root / "wrong_type.yaml")],
         "wrong_type.yaml.num_heads: expected a number, got 'four'"),
        ("extract", ["skeleton", "--video-dir", str(root / "empty"), "--out", str(root / "sk"), "--pose", "vfss",
                     "--sigma", "0"], "need --sigma > 0"),
        ("extract", ["skeleton", "--video-dir", str(root / "vids"), "--out", str(root / "sk"), "--pose", "vfss",
                     "--pose-weights", str(root / "garbage.pt"), "--device", "cpu"],
         "garbage.pt is not a TorchScript landmark model"),
        ("extract", ["i3d", "--video-dir", str(root / "vids"), "--out", str(root / "i3"), "--weights",
                     str(root / "garbage.pt"), "--device", "cpu"], "garbage.pt"),
        ("extract", ["skeleton", "--video-dir", str(root / "empty"), "--out", str(root / "sk"), "--pose", "vfss",
                     "--smooth-px", "-1"], "--smooth-px >= 0"),
        ("extract", ["frames", "--video-dir", str(root / "nothere"), "--out", str(root / "fr")], "nothere"),
        ("extract", ["pack", "--from", str(root / "empty"), "--format", "npy", "--out", str(root / "p"),
                     "--window", "4", "--stride", "2", "--fps", "10"], "empty"),
        ("extract", ["nosuch"], "invalid choice: 'nosuch'"),
    ]


def test_every_mistake_is_one_line(world, capsys):
    root, store, ann = world
    (root / "empty").mkdir(exist_ok=True)
    failures = []
    for package, argv, expected in _cases(root, store, ann):
        main = detect_cli.main if package == "detect" else extract_cli.main
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse or a command's own refusal
            code = exc.code if isinstance(exc.code, int) else (print(exc.code, file=sys.stderr) or 1)
        except Exception as exc:  # noqa: BLE001 - a traceback: the finding this table exists for
            code = f"traceback {type(exc).__name__}: {exc}"
        err = capsys.readouterr().err.strip()
        if code == 0 or not err.startswith("error: ") or len(err.splitlines()) != 1 or expected not in err:
            failures.append(f"{package} {' '.join(argv)}\n  -> exit {code}: {err!r}")
    assert not failures, "\n".join(failures)
    assert len(_cases(root, store, ann)) >= 85  # docs/GUIDE.md gives the count
    # refused before anything was written
    assert not any((root / name).exists() for name in ("cf", "sk", "iv", "i3", "win", "cas.json", "o.json", "b.json"))


def test_a_closed_output_pipe_ends_quietly(world):
    root, store, _ = world
    proc = subprocess.run(f"{sys.executable} -m extract inspect {store} --json | true", shell=True,
                          capture_output=True, text=True)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_reports_on_a_damaged_store_name_the_file_and_fail(world, command, capsys):
    root, _, _ = world
    for name in ("damaged", "truncated"):
        assert extract_cli.main([command, str(root / name)]) == 1
        out = capsys.readouterr().out
        assert f"{root / name}/shards/shard-" in out and "cannot be read as" in out


def test_a_full_disk_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    import errno

    import torch

    from detect.engine.checkpoint import save_checkpoint
    from detect.errors import CheckpointError
    from extract.atomic import write_text_atomically

    target = tmp_path / "preds.json"
    target.write_text("old")

    def fill_then_fail(tmp):
        tmp.write_bytes(b"x" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    from extract.atomic import replace_atomically

    with pytest.raises(OSError) as caught:
        replace_atomically(target, fill_then_fail)
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC  # the target, not the temp
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["preds.json"]
    write_text_atomically(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["preds.json"]

    def torch_full_disk(state, tmp):  # torch reports a failed write as a RuntimeError, after a partial file
        Path(tmp).write_bytes(b"x" * 4_000_000)
        raise RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", torch_full_disk)
    with pytest.raises(CheckpointError, match=rf"cannot write {tmp_path / 'last.pt'}: \[enforce fail"):
        save_checkpoint(tmp_path / "last.pt", model={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.json"]  # no 4 MB temporary checkpoint


def test_an_unwritable_output_is_one_line(world, capsys):
    root, _, ann = world
    dets = str(root / "run" / "test_detections.json")
    blocker = root / "a_file"
    blocker.write_text("")
    code = extract_cli.main(["annotations", "convert", "--from", "canonical", str(ann), "--out",
                             str(blocker / "out.json")])  # a file where a folder should be
    err = capsys.readouterr().err.strip()
    assert code == 1 and err == f"error: {blocker / 'out.json'}: Not a directory", err
    code = detect_cli.main(["evaluate", "--annotations", str(ann), "--predictions", dets, "--split", "testing",
                            "--json"])
    assert code == 0, capsys.readouterr().err  # the world's files are intact
