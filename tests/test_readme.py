"""The README: its main job runs the pipeline on sample videos; the feature sample reproduces its
test number from the checkpoint; its store example runs as written."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _commands(block: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line) for line in joined.splitlines() if line.startswith("python ")]


@pytest.mark.timeout(900)
def test_the_readme_main_job_runs_the_pipeline_on_sample_videos(tmp_path):
    readme = ROOT.joinpath("README.md").read_text()
    main_job = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    steps = [s for s in _commands(main_job.replace(" && ", "\n")) if s[:3] == ["python", "-m", "detect"]]
    assert steps == [["python", "-m", "detect", "demo"]]
    proc = subprocess.run([sys.executable, *steps[0][1:]], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mAP = float(re.search(r"test average mAP (\d+\.\d+)", proc.stdout).group(1))
    assert mAP > 50, proc.stdout  # actions planted in the videos are found
    named = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("  ") and "(" not in line]
    assert len(named) == 6 and all((tmp_path / path).exists() for path in named), proc.stdout  # every file named
    assert (tmp_path / "runs" / "demo" / "sample" / "videos" / "sample_00.mp4").exists()


def test_the_readme_reproduces_trainings_test_number(tmp_path, monkeypatch):
    readme = ROOT.joinpath("README.md").read_text()
    main_job = readme.split("A second sample holds precomputed", 1)[1].split("```", 2)[1]
    reproduce = readme.split("reproduces the test number", 1)[1].split("```", 2)[1]
    for name in ("configs", "datasets"):
        os.symlink(ROOT / name, tmp_path / name)
    steps = [c for c in _commands(main_job.replace("&& \\\n", "\n").replace(" && ", "\n"))]
    steps = [s for s in steps if s[:3] != ["python3", "-m", "venv"]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    outputs = []
    for argv in steps + _commands(reproduce):
        argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, (argv, proc.stderr[-2000:])
        outputs.append(proc.stdout)
    trained = re.search(r"test average mAP (\d+\.\d+)", outputs[-3]).group(1)
    reproduced = re.search(r"average (\d+\.\d+)", outputs[-1].splitlines()[-1]).group(1)
    assert trained == reproduced, (outputs[-3], outputs[-1])

    # the README's Python example of reading that store, as written, with its commented results
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)
    assert scope["x"].shape == (354, 32) and str(scope["x"].dtype) == "float16"
    assert (scope["grid"].window, scope["grid"].stride, scope["grid"].fps) == (16, 4, 30.0)
    assert scope["grid"].index_to_seconds(10) == 1.6 and scope["grid"].seconds_to_index(12.0) == 88.0
