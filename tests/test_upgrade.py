"""Checkpoints and configs of earlier layouts upgrade to today's and give the same outputs. The
fixtures were written by the code of those layouts: before the model registry (commit 6e231cb: a
tiny transformer and a tiny DBM detector) and before the task section (commit c3ce18b: one
checkpoint per task), with perturbed weights, a probe input and the outputs it gave."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detect.config import ConfigError
from detect.engine import load_checkpoint, load_trained

FIXTURES = Path(__file__).parent / "fixtures"


def upgraded(old: Path, tmp_path: Path, refusal: str, says: str):
    """``old`` refused as it is (``refusal``), then upgraded by the CLI (which ``says`` what it
    wrote) and loaded: ``(cfg, model, state)``."""
    with pytest.raises(ConfigError, match=refusal):
        load_trained(str(old))
    new = tmp_path / "best.pt"
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(old), str(new)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert says in proc.stdout
    return load_trained(str(new))


@pytest.mark.parametrize("name", ["actionformer", "actionmamba-dbm"])
def test_an_old_checkpoint_upgrades_and_gives_the_same_outputs(name, tmp_path):
    old = FIXTURES / f"pre_registry_{name}.pt"
    cfg, model, state = upgraded(old, tmp_path, "python -m detect upgrade OLD NEW", f"model {name}")
    assert cfg.model.name == name and cfg.data.streams == {"features": ["stores/x"]}
    probe = load_checkpoint(old)["probe"]
    with torch.no_grad():
        out = model.eval()(probe["input"], torch.ones(1, probe["input"].shape[-1], dtype=torch.bool))
    for ours, theirs in zip(out.cls_logits + out.offsets, probe["cls_logits"] + probe["offsets"]):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_upgrading_a_current_checkpoint_is_refused(tmp_path):
    new = tmp_path / "best.pt"
    subprocess.run([sys.executable, "-m", "detect", "upgrade", str(FIXTURES / "pre_registry_actionformer.pt"),
                    str(new)], check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(new), str(tmp_path / "again.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error: not an old-layout config")


EXPECTED_SETTINGS = {  # what the fixtures set outside a task section, as today's task settings
    "segments": {"center_sample_radius": 1.0, "loss_weight": 2.0, "init_loss_norm": 50.0, "label_smoothing": 0.1,
                 "trunc_thresh": 0.4, "crop_ratio": [0.8, 1.0], "downsample_rate": 2, "tiou": [0.3, 0.5],
                 "clean_gt": True, "fusion_topk": 3, "fusion_mode": "product"},
    "dense": {"aux_weight": 0.3, "frame_map": "sampled-25", "action_conditional": [0, 2]},
    "clips": {"label_smoothing": 0.1},
}


@pytest.mark.parametrize("task", sorted(EXPECTED_SETTINGS))
def test_a_checkpoint_from_before_the_task_section_upgrades_and_gives_the_same_outputs(task, tmp_path):
    """Fixtures written by commit c3ce18b: task settings on the model, data and eval sections, a
    probe input and what the model (and for segments, the post-processing) made of it."""
    old = FIXTURES / f"task_settings_on_model_{task}.pt"
    cfg, model, state = upgraded(old, tmp_path, "layout before the task section", f"task {task}")
    assert cfg.task.name == task
    for key, value in EXPECTED_SETTINGS[task].items():
        assert getattr(cfg.task, key) == value, key
    probe = state["probe"]
    with torch.no_grad():
        out = model.eval()(probe["input"], torch.ones(1, probe["input"].shape[-1], dtype=torch.bool))
    # float32 rounding, not bit-identity: since the fixtures were written the mixers compute in_proj
    # as W @ x^T (the scan's storage), the same products summed in another order
    close = {"rtol": 1e-5, "atol": 1e-6}
    if task != "segments":
        torch.testing.assert_close(out.logits, probe["logits"], **close)
        return
    from detect.tasks.segments.decode import decode_video
    from detect.tasks.segments.task import SegmentLoss

    for ours, theirs in zip(out.cls_logits + out.offsets, probe["cls_logits"] + probe["offsets"]):
        torch.testing.assert_close(ours, theirs, **close)
    pp = cfg.task.postprocess
    assert (pp.max_seg_num, pp.nms_sigma, pp.pre_nms_topk, pp.multiclass_nms, pp.voting_thresh) == (30, 0.6, 500,
                                                                                                     False, 0.5)
    segs, scores, labels = decode_video(out, 0, pp)
    assert len(scores) > 0
    torch.testing.assert_close((segs, scores), (probe["segments"], probe["scores"]), **close)
    assert torch.equal(labels, probe["labels"])
    loss = SegmentLoss(cfg.task, cfg.model.num_classes)
    loss.load_state_dict(state["criterion"])
    assert loss.loss_normalizer.item() == 42.5


def test_a_config_from_before_the_task_section_upgrades_to_the_checkpoints_config(tmp_path):
    import yaml

    from detect.config import load_config, to_dict

    state = load_checkpoint(FIXTURES / "task_settings_on_model_segments.pt")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(state["config"]))
    with pytest.raises(ConfigError, match=r"model.postprocess.*moved to task"):
        load_config(old)
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(old), str(tmp_path / "new.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    subprocess.run([sys.executable, "-m", "detect", "upgrade", str(FIXTURES / "task_settings_on_model_segments.pt"),
                    str(tmp_path / "best.pt")], check=True, capture_output=True)
    assert to_dict(load_config(tmp_path / "new.yaml")) == to_dict(load_trained(str(tmp_path / "best.pt"))[0])
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(old), str(tmp_path / "no" / "new.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot write") and "Traceback" not in proc.stderr
    (tmp_path / "taken").mkdir()   # a failed write (here: a folder in the way) is one line too
    proc = subprocess.run([sys.executable, "-m", "detect", "upgrade", str(old), str(tmp_path / "taken")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: cannot write {tmp_path / 'taken'}: ")
    assert len(proc.stderr.strip().splitlines()) == 1
