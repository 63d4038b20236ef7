"""Every benchmark script runs its ``main`` when invoked (a script without the guard exits 0 having
measured nothing, which a GPU run only shows as an empty log)."""
import ast
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_script_with_main_calls_it(script):
    tree = ast.parse(script.read_text())
    if not any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
        pytest.skip(f"{script.name} is a library of the other scripts (no main)")
    guards = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    assert guards and "main()" in ast.unparse(guards[-1]), f"{script.name} never calls main()"


def test_dispatch_count_runs_on_the_cpu_and_actionformer_casts_no_masks():
    """The launch-count proxy runs anywhere; ActionFormer's eager forward dispatches no dtype casts
    (each was a kernel launch per masked layer before ``zero_padding``)."""
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "benchmarks" / "dispatch_count.py"
    done = subprocess.run([sys.executable, str(script), "--model", "actionformer", "--length", "256"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "operators per forward" in done.stdout and "convolution" in done.stdout
    assert "_to_copy" not in done.stdout, done.stdout


def test_dispatch_count_of_a_training_step_counts_backward_and_the_fused_optimizer():
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "benchmarks" / "dispatch_count.py"
    done = subprocess.run([sys.executable, str(script), "--model", "actionformer", "--mode", "train",
                           "--length", "128", "--sites", "200"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "operators per training step" in done.stdout
    assert "convolution_backward autograd" in done.stdout and "_fused_adamw_ optim/" in done.stdout
