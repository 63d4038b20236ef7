"""``extract pack`` from each per-video feature format."""
import json
import pickle

import numpy as np
import pytest

from extract.cli import main
from extract.store import open_store


def _arrays(n=3):
    rng = np.random.default_rng(7)
    return {f"video_{i}": rng.standard_normal((20 + 5 * i, 32)).astype(np.float32) for i in range(n)}


def _pack(src, out, *extra):
    return main(["pack", "--from", str(src), "--out", str(out), "--window", "16", "--stride", "4", *extra])


def _check(out, arrays, fps=30.0):
    store = open_store(out)
    assert store.ids == sorted(arrays)
    for vid, a in arrays.items():
        np.testing.assert_array_equal(store.read(vid), a.reshape(a.shape[0], -1))
        grid = store.grid(vid)
        assert (grid.window, grid.stride, grid.fps, grid.num_snippets) == (16, 4, fps, a.shape[0])
    return store


def test_pack_npy(tmp_path):
    arrays = _arrays()
    (tmp_path / "src").mkdir()
    for vid, a in arrays.items():
        np.save(tmp_path / "src" / f"{vid}.npy", a)
    assert _pack(tmp_path / "src", tmp_path / "out", "--format", "npy", "--fps", "30") == 0
    store = _check(tmp_path / "out", arrays)
    assert store.info.grid["window"] == 16 and store.info.preprocessing["imported_from"] == "npy"
    assert _pack(tmp_path / "src", tmp_path / "out", "--format", "npy", "--fps", "30", "--json") == 0  # resume


def test_pack_npz_with_and_without_key(tmp_path, capsys):
    arrays = _arrays()
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    for vid, a in arrays.items():
        np.savez(tmp_path / "one" / f"{vid}.npz", feature=a)
        np.savez(tmp_path / "two" / f"{vid}.npz", feature=a, frame_cnt=np.array(7))
    assert _pack(tmp_path / "one", tmp_path / "a", "--format", "npz", "--fps", "30") == 0
    _check(tmp_path / "a", arrays)
    assert _pack(tmp_path / "two", tmp_path / "b", "--format", "npz", "--fps", "30", "--key", "feature") == 0
    _check(tmp_path / "b", arrays)
    with pytest.raises(SystemExit, match="several arrays.*--key"):
        _pack(tmp_path / "two", tmp_path / "c", "--format", "npz", "--fps", "30")


def test_pack_pt_squeezes_t11c_and_strips_suffix(tmp_path):
    import torch

    arrays = _arrays()
    (tmp_path / "src" / "sub").mkdir(parents=True)
    for vid, a in arrays.items():
        torch.save(torch.from_numpy(a).reshape(a.shape[0], 1, 1, a.shape[1]),
                   tmp_path / "src" / "sub" / f"{vid}_spatial_feature.pt")
    assert _pack(tmp_path / "src", tmp_path / "out", "--format", "pt", "--fps", "30",
                 "--strip-suffix", "_spatial_feature") == 0
    _check(tmp_path / "out", {f"sub/{vid}": a for vid, a in arrays.items()})


def test_pack_pkl_needs_explicit_trust(tmp_path, capsys):
    arrays = _arrays()
    (tmp_path / "src").mkdir()
    for vid, a in arrays.items():
        (tmp_path / "src" / f"{vid}.pkl").write_bytes(pickle.dumps({"feat": a}))
    with pytest.raises(SystemExit, match="--allow-pickle"):
        _pack(tmp_path / "src", tmp_path / "no", "--format", "pkl", "--fps", "30")
    assert _pack(tmp_path / "src", tmp_path / "yes", "--format", "pkl", "--fps", "30", "--allow-pickle") == 0
    _check(tmp_path / "yes", arrays)


def test_pack_fps_and_duration_from_annotations(tmp_path, capsys):
    arrays = _arrays()
    (tmp_path / "src").mkdir()
    for vid, a in arrays.items():
        np.save(tmp_path / "src" / f"{vid}.npy", a)
    database = {vid: {"subset": "test", "fps": 25.0, "duration": 12.5, "annotations": []} for vid in arrays}
    del database["video_2"]
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}))
    rc = _pack(tmp_path / "src", tmp_path / "out", "--format", "npy", "--fps-from", str(tmp_path / "ann.json"))
    assert rc == 1  # video_2 has no fps
    store = open_store(tmp_path / "out")
    assert store.ids == ["video_0", "video_1"]
    assert store.meta("video_0").duration == 12.5 and store.grid("video_0").fps == 25.0
    assert "no 'fps'" in store.failures["video_2"]


def test_pack_records_broken_files_and_keeps_going(tmp_path, capsys):
    arrays = _arrays()
    (tmp_path / "src").mkdir()
    for vid, a in arrays.items():
        np.save(tmp_path / "src" / f"{vid}.npy", a)
    (tmp_path / "src" / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(tmp_path / "src" / "nan.npy", np.full((4, 32), np.nan, np.float32))
    np.save(tmp_path / "src" / "empty.npy", np.zeros((0, 32), np.float32))
    assert _pack(tmp_path / "src", tmp_path / "out", "--format", "npy", "--fps", "30") == 1
    err = capsys.readouterr().err
    assert "failed broken" in err and "failed nan" in err and "NaN" in err and "failed empty" in err
    assert _pack(tmp_path / "src", tmp_path / "out", "--format", "npy", "--fps", "30", "--keep-going") == 0
    assert sorted(open_store(tmp_path / "out").failures) == ["broken", "empty", "nan"]
    _check(tmp_path / "out", arrays)


def test_a_store_holds_one_per_step_shape(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    shapes = {"a": (20, 32), "b": (20, 16), "c": (20, 4, 32), "d": (25, 32)}
    for vid, shape in shapes.items():
        np.save(src / f"{vid}.npy", rng.standard_normal(shape).astype(np.float32))
    assert _pack(src, tmp_path / "s", "--format", "npy", "--fps", "30") == 1
    store = open_store(tmp_path / "s")
    assert store.ids == ["a", "d"] and store.info.step_shape == [32]
    failures = store.failures
    assert set(failures) == {"b", "c"}
    assert failures["b"].startswith(f"{src / 'b.npy'}: video 'b': arrays of ") and "are (T, 32), this one is (20, 16)" \
        in failures["b"]
    assert "this one is (20, 4, 32)" in failures["c"]
    # resuming with other files cannot change the store's shape either
    np.save(src / "e.npy", rng.standard_normal((20, 16)).astype(np.float32))
    for vid in "bc":
        (src / f"{vid}.npy").unlink()
    assert _pack(src, tmp_path / "s", "--format", "npy", "--fps", "30", "--keep-going") == 0
    assert "e" in open_store(tmp_path / "s").failures
