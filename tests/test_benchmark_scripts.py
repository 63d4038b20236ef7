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
