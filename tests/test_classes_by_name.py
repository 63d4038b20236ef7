"""Classes travel by name: a checkpoint's outputs are its own classes, whatever order the
annotations handed to ``infer``/``eval``/``evaluate`` list them in; a different set is refused."""
import json
import subprocess
import sys

import pytest
from planted import make_planted, tiny_config

from detect.config import load_config
from detect.engine import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    store, ann = make_planted(root, n_train=12, n_test=4)
    train(load_config(None, base=tiny_config(store, ann, root / "run", epochs=4)), progress=False)
    return root, ann, root / "run" / "best.pt"


def _relabelled(ann, path, order, rename=None):
    """``ann`` with its classes listed in ``order`` (label ids follow), the same segments; labels
    renamed by ``rename``."""
    data = json.loads(ann.read_text())
    data["classes"] = order
    for video in data["database"].values():
        for a in video["annotations"]:
            a["label"] = (rename or {}).get(a["label"], a["label"])
            a["label_id"] = order.index(a["label"])
    path.write_text(json.dumps(data))
    return path


def _infer(ckpt, ann, out):
    return subprocess.run([sys.executable, "-m", "detect", "infer", "--checkpoint", str(ckpt), "--annotations",
                           str(ann), "--out", str(out)], capture_output=True, text=True)


def test_infer_maps_classes_by_name_whatever_their_order(trained):
    root, ann, ckpt = trained
    classes = json.loads(ann.read_text())["classes"]
    assert _infer(ckpt, ann, root / "same.json").returncode == 0
    swapped = _relabelled(ann, root / "swapped.json", classes[::-1])
    proc = _infer(ckpt, swapped, root / "swapped_dets.json")
    assert proc.returncode == 0, proc.stderr
    assert f"{swapped} lists the checkpoint's 3 classes in another order; they are matched by name" in proc.stderr
    assert json.loads((root / "swapped_dets.json").read_text()) == json.loads((root / "same.json").read_text())


def test_a_different_class_set_is_refused_naming_the_difference(trained):
    root, ann, ckpt = trained
    classes = json.loads(ann.read_text())["classes"]
    other = _relabelled(ann, root / "other.json", classes[:2] + ["somersault"], {classes[2]: "somersault"})
    proc = _infer(ckpt, other, root / "o.json")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (f"{other} does not have the classes the checkpoint was trained on: 1 of the checkpoint's classes are not in it: "
            f"['{classes[2]}']; 1 of its classes are not the checkpoint's: ['somersault']") in proc.stderr
    assert not (root / "o.json").exists()
