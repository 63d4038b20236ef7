"""A flipped byte in a video's data is caught on read: in the store, in training, and skipped
only when asked (training only, loudly)."""
import shutil
import subprocess
import sys

import pytest
import yaml
from planted import make_planted, tiny_config

from detect.config import load_config
from detect.engine import train
from extract.store import CorruptVideoError, open_store


@pytest.fixture()
def corrupt(tmp_path):
    store, ann = make_planted(tmp_path, n_train=12, n_test=4)
    victim = sorted(v for v in open_store(store).ids if v.startswith("train"))[0]
    reader = open_store(store)
    path, offset = reader.segment_of(victim), reader._dataset(victim).id.get_offset()
    with open(path, "r+b") as fh:  # flip one bit of the first value
        fh.seek(offset + 1)
        byte = fh.read(1)
        fh.seek(offset + 1)
        fh.write(bytes([byte[0] ^ 0x10]))
    return store, ann, victim, path


def test_a_read_fails_naming_store_segment_and_video(corrupt):
    store, _, victim, path = corrupt
    with pytest.raises(CorruptVideoError, match=rf"store {store}, segment {path.name}: video '{victim}' does not "
                                                 rf"match its checksum"):
        open_store(store).read(victim)
    open_store(store).read(victim, verify=False)  # verify / repair tools can still look at it


@pytest.mark.parametrize("workers", [0, 2])
def test_training_stops_in_one_line(corrupt, tmp_path, workers):
    store, ann, victim, _ = corrupt
    cfg = tiny_config(store, ann, tmp_path / "run", epochs=2)
    cfg["data"]["num_workers"] = workers
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: store {store}, segment ") and f"video '{victim}'" in proc.stderr


def test_skip_corrupt_trains_without_it_and_says_so(corrupt, tmp_path):
    store, ann, victim, _ = corrupt
    cfg = load_config(None, base=tiny_config(store, ann, tmp_path / "run", epochs=2, data__skip_corrupt=True,
                                             data__val_holdout=None, data__val_split=None))
    assert victim.startswith("train")
    with pytest.warns(UserWarning, match=rf"skipping a corrupt video \(data.skip_corrupt\): .*'{victim}'"):
        summary = train(cfg, progress=False)
    assert "test" in summary
    shutil.rmtree(tmp_path / "run")


def test_training_runs_the_annotation_checks_first(tmp_path):
    import json

    store, ann = make_planted(tmp_path, n_train=12, n_test=4)
    data = json.loads(ann.read_text())
    video = data["database"]["train_003"]
    s, e = video["annotations"][0]["segment"]
    video["annotations"][0]["segment"] = [e, s]                     # inverted
    data["database"]["test_013"]["annotations"][0]["segment"] = [-2.0, 1.0]  # before the video
    ann.write_text(json.dumps(data))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config(store, ann, tmp_path / "run", epochs=2)))
    proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"{ann}: 2 errors, as `python -m extract annotations check" in proc.stderr
    assert "video 'train_003': annotation 0" in proc.stderr and "inverted segment" in proc.stderr
    assert "video 'test_013'" in proc.stderr and "starts before the video" in proc.stderr
    assert not (tmp_path / "run" / "log.jsonl").exists()


def _edit_meta(store, victim, edit):
    """Rewrite ``victim``'s metadata attribute in its (sealed) segment, as a stray byte would."""
    import h5py

    from extract.store.layout import dataset_name

    path = open_store(store).segment_of(victim)
    with h5py.File(path, "r+") as f:
        dset = f["videos"][dataset_name(victim)]
        dset.attrs["meta"] = edit(str(dset.attrs["meta"]))
    return path


@pytest.mark.parametrize("edit", [lambda m: m.replace('"window": ', '"window": 1', 1),  # a plausible grid
                                  lambda m: m[:-1]])                                      # broken JSON
def test_changed_metadata_is_caught_in_one_line_everywhere(tmp_path, edit):
    store, ann = make_planted(tmp_path, n_train=12, n_test=4)
    victim = sorted(v for v in open_store(store).ids if v.startswith("train"))[0]
    path = _edit_meta(store, victim, edit)
    with pytest.raises(CorruptVideoError, match=rf"segment {path.name}: video '{victim}': metadata does not match"):
        open_store(store).meta(victim)
    proc = subprocess.run([sys.executable, "-m", "extract", "verify", str(store)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"problem: video '{victim}': cannot be read: " in proc.stdout and "metadata does not match" in proc.stdout
    cfg = tiny_config(store, ann, tmp_path / "run", epochs=2)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "detect", "train", "--config", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"video '{victim}': metadata does not match its checksum" in proc.stderr


def test_an_edited_store_json_and_a_damaged_segment_header_are_one_line(tmp_path):
    import json

    store, _ = make_planted(tmp_path, n_train=4, n_test=2)
    segment = open_store(store).segments[0].path
    with open(segment, "r+b") as fh:  # the HDF5 superblock
        fh.seek(8)
        fh.write(b"\xff" * 16)
    proc = subprocess.run([sys.executable, "-m", "extract", "verify", str(store)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert f"problem: {segment} cannot be read as a segment" in proc.stdout
    info = json.loads((store / "store.json").read_text())
    info["step_shape"] = [16]
    (store / "store.json").write_text(json.dumps(info))
    proc = subprocess.run([sys.executable, "-m", "extract", "inspect", str(store)], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip() == (
        f"error: {store / 'store.json'} does not match its checksum (changed by hand or damaged); the store's "
        f"parameters cannot be trusted")
