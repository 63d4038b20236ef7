"""Every user mistake is one line on stderr and exit code 1, never a traceback; nothing is written."""
import shutil
import subprocess
import sys

import pytest
import yaml
from planted import make_planted, tiny_config

from detect import cli as detect_cli
from detect.config import load_config
from detect.engine import train
from extract import cli as extract_cli


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
    return root, store, ann


def _cases(root, store, ann):
    c, dets = str(root / "c.yaml"), str(root / "run" / "test_detections.json")
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
        err = capsys.readouterr().err.strip()
        if code == 0 or not err.startswith("error: ") or len(err.splitlines()) != 1 or expected not in err:
            failures.append(f"{package} {' '.join(argv)}\n  -> exit {code}: {err!r}")
    assert not failures, "\n".join(failures)
    assert not any((root / name).exists() for name in ("cf", "sk", "iv", "i3"))  # refused before any store


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
        assert f"{root / name}/shards/shard-" in out and "cannot be read as HDF5" in out
