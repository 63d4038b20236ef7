"""Every command of the README, in the README's order, on the tiny stand-ins of
``readme_sandbox`` (the two commands at the top are run by test_readme.py and by CI)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from readme_sandbox import build_sandbox

ROOT = Path(__file__).parents[1]

# What the test runs instead of a README text, and why; every entry must be used.
SUBSTITUTIONS = {
    "--model ViT-L-14 --pretrained openai":  # 428 M parameters is minutes per video on a CPU
        "--model tiny-clip --pretrained tiny-clip.pt --model-config tiny-clip.json",
    "--model internvideo2-1b-k400-f16":      # 1 B parameters, and the weights are gated
        "--checkpoint tiny-iv2.pth --model-config tiny-iv2.yaml --size 28 --snippet-frames 4",
    "--nproc-per-node 8": "--nproc-per-node 2",   # this machine has 2 cores and no GPU
}
# Appended to `detect train`: one short epoch on the CPU (key=value overrides, as a user would).
QUICK = ["optim.epochs=1", "optim.warmup_epochs=0", "eval.start_epoch=0", "data.num_workers=0", "optim.amp=none"]
SHORTER = {"thumos14_i3d": ["data.max_seq_len=256"], "vfss_stage1": ["data.max_seq_len=256"],
           "vfss_sgmamba_stage2": ["model.heatmap.dim=64", "model.heatmap.depth=1", "model.heatmap.patch=14",
                                   "optim.accumulate=1"],  # the stem's long scans; 6 windows
           "smg_msf_mamba_s": ["model.img_size=32", "optim.batch_size=2"]}  # 6 training clips
NOT_RUN = {  # line start -> why
    "pip install": "installs packages (CI installs as the README's first command says)",
    "python -m detect demo --task": "run by test_readme.py after the main job's demo, reusing its videos and features",
    "torchrun --nnodes 2": "needs a second machine",
    "python -m detect video --checkpoint runs/demo": "run by test_readme.py on the main job's checkpoint",
    "python -m detect analyze --annotations runs/demo": "run by test_readme.py on the main job's predictions",
    "python -m detect report runs/demo": "run by test_readme.py on the main job's run",
}


def readme_commands() -> list[str]:
    readme = ROOT.joinpath("README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)[2:]  # after the install-and-demo and test commands
    lines = re.sub(r"\\\n\s*", " ", "\n".join(blocks)).splitlines()
    return [re.sub(r"\s+#.*$", "", line).strip() for line in lines if line.strip() and not line.startswith("#")]


def adapted(command: str, used: set[str]) -> list[str] | None:
    if any(command.startswith(start) for start in NOT_RUN):
        return None
    for text, instead in SUBSTITUTIONS.items():
        if text in command:
            command = command.replace(text, instead)
            used.add(text)
    argv = shlex.split(command)
    if "train" in argv and "--config" in argv:
        argv += QUICK + next((v for k, v in SHORTER.items() if k in argv[argv.index("--config") + 1]), [])
    if argv[0] == "python":
        argv[0] = sys.executable
    return argv


def test_every_readme_command_runs(tmp_path, monkeypatch):
    env = {**os.environ, **build_sandbox(tmp_path), "PYTHONPATH": str(ROOT)}
    used: set[str] = set()
    outputs = {}
    for command in readme_commands():
        argv = adapted(command, used)
        if argv is None:
            continue
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        outputs[command] = proc.stdout
    assert used == set(SUBSTITUTIONS), f"substitutions no longer in the README: {set(SUBSTITUTIONS) - used}"

    # the checkpoint alone reproduces the test number that training printed
    trained = next(out for cmd, out in outputs.items() if cmd.endswith("thumos14_i3d_dbm.yaml"))
    evaluated = next(out for cmd, out in outputs.items() if "runs/thumos14_test.json" in cmd and "evaluate" in cmd)
    assert re.search(r"test average mAP (\d+\.\d+)", trained).group(1) == \
        re.search(r"average (\d+\.\d+)", evaluated.splitlines()[-1]).group(1)
    for made in ("stores/my_i3d", "stores/my_clip", "stores/my_iv2", "stores/my_pose", "stores/thumos14_iv2_6b",
                 "runs/video_test_0000004.png", "runs/0A8CF.png", "runs/vfss_cascade.json",
                 "runs/charades_segments.json",
                 "stores/smg_frames16", "runs/smg_msf_mamba_s/best.pt", "runs/thumos14_i3d_dbm_8gpu/best.pt"):
        assert (tmp_path / made).exists(), made

    # the README's Python example, as written, with its commented results
    example = re.search(r"```python\n(.*?)```", ROOT.joinpath("README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)
    assert scope["x"].shape == (354, 32) and str(scope["x"].dtype) == "float16"
    assert (scope["grid"].window, scope["grid"].stride, scope["grid"].fps) == (16, 4, 30.0)
    assert scope["grid"].index_to_seconds(10) == 1.6 and scope["grid"].seconds_to_index(12.0) == 88.0


def test_only_installs_multi_node_lines_and_the_demo_follow_ups_are_skipped():
    skipped = [c for c in readme_commands() if adapted(c, set()) is None]
    assert [c.split()[:5] for c in skipped if c.startswith("python -m detect demo")] == [
        ["python", "-m", "detect", "demo", "--task"]] * 2  # run by test_readme.py
    after = [c.split()[3] for c in skipped if "runs/demo" in c and not c.startswith("python -m detect demo")]
    assert after == ["video", "analyze", "report"]      # run by test_readme.py on the main job's outputs
    rest = [c for c in skipped if "runs/demo" not in c and not c.startswith("python -m detect demo")]
    assert len(rest) == 2 and rest[0].startswith("pip install") and "--nnodes 2" in rest[1]
