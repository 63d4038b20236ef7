"""The README's main job runs the pipeline on sample videos, then the three commands after training
(its other commands: test_readme_commands.py)."""
import json
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
def test_the_readme_main_job_and_the_other_demos_run_on_sample_videos(tmp_path):
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

    # the three commands after training, on the demo's checkpoint, predictions and run
    section = re.search(r"## After training.*?```bash\n(.*?)```", readme, re.S).group(1)
    after = _commands(section)
    assert [c[3] for c in after] == ["video", "analyze", "report"]
    for command in after:
        proc = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    new = json.loads((tmp_path / "runs/demo/new_videos/videos_detections.json").read_text())["results"]
    assert sorted(new) == ["sample_08", "sample_09"] and all(new.values())
    analysis = json.loads((tmp_path / "runs/demo/analysis/analysis.json").read_text())
    assert analysis["average_mAP_N"] > 0.5 and (tmp_path / "runs/demo/analysis/false_positive_profile.svg").exists()
    assert "<svg" in (tmp_path / "runs/demo/report.html").read_text()

    # the README's demos of the other tasks, in the same folder (the dense one reuses the videos and features)
    demos = [shlex.split(re.sub(r"\s+#.*$", "", line)) for line in readme.splitlines()
             if line.startswith("python -m detect demo --task")]
    assert [d[-1] for d in demos] == ["dense", "clips"]
    floors = {"dense": r"test per-frame mAP (\d+\.\d+)", "clips": r"test top-1 (\d+\.\d+)"}
    for demo in demos:
        proc = subprocess.run([sys.executable, *demo[1:]], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
        score = float(re.search(floors[demo[-1]], proc.stdout).group(1))
        assert score > 50, proc.stdout  # chance: the positive rate (~21%) per frame; one in three clips
        named = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("  ") and "(" not in line]
        assert len(named) == 6 and all((tmp_path / path).exists() for path in named), proc.stdout
