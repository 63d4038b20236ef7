"""A generic fault harness over every subcommand of both CLIs, found by walking their parsers
(a new subcommand or option is covered without a new case): a missing input, and every numeric
option given a negative value, end in one ``error:`` line naming the problem and a non-zero exit,
never a traceback, and write nothing."""
import argparse
import sys
from pathlib import Path

import pytest

from detect.cli import build_parser as detect_parser
from detect.cli import main as detect_main
from extract.cli import build_parser as extract_parser
from extract.cli import main as extract_main
from extract.cli_types import Number

NEGATIVE_ALLOWED = {"--layer"}  # InternVideo2 blocks count from the end when negative


def _commands():
    """``(package, [subcommand words], parser)`` for every leaf subcommand."""
    def walk(parser, words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield words, parser
        for action in subs:
            for name, sub in action.choices.items():
                yield from walk(sub, words + [name])

    for package, parser in (("extract", extract_parser()), ("detect", detect_parser())):
        for words, sub in walk(parser, []):
            yield package, words, sub


def _required_argv(parser, tmp: Path) -> list[str]:
    """Values for the required arguments: an empty folder for inputs, a fresh path for outputs."""
    argv = []
    for action in parser._actions:
        if not (action.required or not action.option_strings) or isinstance(action, argparse._HelpAction):
            continue
        name = (action.option_strings or [action.dest])[0]
        if action.choices:
            value = sorted(action.choices)[0]
        elif "out" in name:
            value = str(tmp / "new_output")
        elif action.type in (int, float) or isinstance(action.type, Number):
            value = "1"
        else:
            value = str(tmp / "empty")
        argv += ([name] if action.option_strings else []) + [value] * (2 if action.nargs == 2 else 1)
    return argv


COMMANDS = [(package, words, sub) for package, words, sub in _commands()]
NUMERIC = [(package, words, sub, action.option_strings[0]) for package, words, sub in COMMANDS
           for action in sub._actions if action.option_strings and (action.type in (int, float)
                                                                    or isinstance(action.type, Number))
           and action.option_strings[0] not in NEGATIVE_ALLOWED]


def _run(package, argv, capsys):
    main = detect_main if package == "detect" else extract_main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (print(exc.code, file=sys.stderr) or 1)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("package,words,sub,option", NUMERIC,
                         ids=[f"{p} {' '.join(w)} {o}" for p, w, _, o in NUMERIC])
def test_every_numeric_option_refuses_a_negative_value(package, words, sub, option, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = words + _required_argv(sub, tmp_path) + [option, "-5"]
    code, err = _run(package, argv, capsys)
    assert code not in (0, None) and err.startswith("error: ") and len(err.splitlines()) == 1, (argv, code, err)
    assert option in err, (argv, err)
    assert not (tmp_path / "new_output").exists()


WITH_INPUTS = [(package, words, sub) for package, words, sub in COMMANDS
               if any(a.required or not a.option_strings for a in sub._actions)]  # listings and the demo need none


@pytest.mark.parametrize("package,words,sub", WITH_INPUTS, ids=[f"{p} {' '.join(w)}" for p, w, _ in WITH_INPUTS])
def test_every_command_given_missing_inputs_is_one_line(package, words, sub, tmp_path, capsys):
    argv = words + _required_argv(sub, tmp_path)  # "empty" does not even exist here
    code, err = _run(package, argv, capsys)
    assert code not in (0, None) and err.startswith("error: ") and len(err.splitlines()) == 1, (argv, code, err)
    assert not (tmp_path / "new_output").exists()
