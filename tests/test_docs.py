"""The generated docs are current, and every command's --help has a description and an example."""
import argparse
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_configs_md_is_generated_from_the_config_dataclasses():
    from detect.config_doc import render

    assert (ROOT / "docs" / "CONFIGS.md").read_text() == render(), \
        "docs/CONFIGS.md is stale: run python -m detect.config_doc > docs/CONFIGS.md"


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _subcommands(sub, path + (name,))


@pytest.mark.parametrize("package", ["extract", "detect"])
def test_every_command_has_a_description_and_an_example(package):
    from importlib import import_module

    parser = import_module(f"{package}.cli").build_parser()
    missing = []
    for path, sub in _subcommands(parser):  # command groups (`extract hub`) and their verbs alike
        prose = f"{sub.description or ''}\n{sub.epilog or ''}"  # not the usage line, which names the program
        if not sub.description or not any(cmd in prose for cmd in ("python -m", "torchrun")):
            missing.append(" ".join(path))
    assert not missing, f"commands without an example in --help: {missing}"


def test_both_console_scripts_run_their_cli():
    import subprocess
    import sys
    from importlib.metadata import entry_points

    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.name.startswith("mamba-tad-")}
    for package in ("extract", "detect"):
        assert scripts[f"mamba-tad-{package}"].value == f"{package}.__main__:main"  # as python -m
        done = subprocess.run([Path(sys.executable).parent / f"mamba-tad-{package}", "--help"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and f"python -m {package}" in done.stdout, done.stderr


def test_an_installed_package_finds_cards_configs_and_a_weights_cache_outside_a_checkout(monkeypatch, tmp_path):
    """``pip install .`` puts the cards and recipes under ``<prefix>/share/mamba-tad``; weights go to
    the user's cache (a checkout keeps its own folders)."""
    import sys

    from extract import cards, weights

    monkeypatch.setattr(cards, "__file__", str(tmp_path / "site-packages" / "extract" / "cards.py"))
    monkeypatch.setattr(weights, "__file__", str(tmp_path / "site-packages" / "extract" / "weights.py"))
    monkeypatch.delenv("MAMBA_TAD_DATASETS", raising=False)
    monkeypatch.delenv("MAMBA_TAD_PRETRAINED", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cards.cards_dir() == Path(sys.prefix) / "share" / "mamba-tad" / "datasets"
    assert cards.shared_dir("configs") == Path(sys.prefix) / "share" / "mamba-tad" / "configs"
    assert weights.weights_dir() == tmp_path / "cache" / "mamba-tad" / "pretrained"
    monkeypatch.undo()
    assert cards.cards_dir() == ROOT / "datasets" and weights.weights_dir() == ROOT / "pretrained" / "cache"
