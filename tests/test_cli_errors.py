"""How a CLI process ends on Ctrl-C, started as a user's shell starts it (SIGINT at its default):
one line and exit code 130, whenever the interrupt comes."""
import signal
import subprocess
import sys
import textwrap

INTERRUPTED = "error: interrupted (Ctrl-C); completed work is kept"
CTRL_C = "import os, signal, time; os.kill(os.getpid(), signal.SIGINT); time.sleep(5)"


def run_as_process(tmp_path, cli: str, entry: str = "from extract.cli_errors import run_process; run_process('cli')"):
    """Run ``entry`` under ``python -m`` beside a module ``cli`` of source ``cli``."""
    (tmp_path / "cli.py").write_text(textwrap.dedent(cli))
    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "__main__.py").write_text(entry)
    return subprocess.run([sys.executable, "-m", "entry"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_inside_embedded_code_still_exits_130_after_one_line(tmp_path):
    """Interrupted inside code that a C extension runs through PyRun_String (pybind11's py::exec
    does): CPython then exits by SIGINT at the end unless the interrupt is not a plain
    KeyboardInterrupt. The CI run of 6730223 ended `detect train` that way (-2 instead of 130)."""
    done = run_as_process(tmp_path, f'''
        import ctypes
        from extract.cli_errors import run_command

        def command():
            run = ctypes.pythonapi.PyRun_String
            run.restype = ctypes.py_object
            run.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
            run(b"{CTRL_C}", 257, {{}}, {{}})
            return 0

        def main():
            return run_command(command)
    ''')
    assert (done.returncode, done.stderr.strip()) == (130, INTERRUPTED)


def test_ctrl_c_while_the_cli_is_imported_is_one_line(tmp_path):
    """The CLIs import torch first, seconds in which Ctrl-C used to print a traceback."""
    done = run_as_process(tmp_path, f'''
        {CTRL_C}

        def main():
            return 0
    ''')
    assert (done.returncode, done.stderr.strip()) == (130, INTERRUPTED)


def test_ctrl_c_after_the_command_ends_the_process_with_130(tmp_path):
    """After the command, the interpreter's exit handlers (DataLoader workers joined, files
    closed) can take a moment; a Ctrl-C there used to print a traceback."""
    done = run_as_process(tmp_path, f'''
        import atexit

        def main():
            print("result")
            atexit.register(lambda: exec({CTRL_C!r}))
            return 0
    ''')
    assert (done.returncode, done.stdout, done.stderr.strip()) == (130, "result\n", INTERRUPTED)


def test_ctrl_c_in_the_last_of_the_shutdown_leaves_the_commands_exit_code(tmp_path):
    """After the exit handlers Python runs no signal handlers (unloading torch takes most of a
    second there): Ctrl-C used to end the finished process by SIGINT, without a word."""
    done = run_as_process(tmp_path, '''
        import os, signal, time

        class Late:
            def __del__(self, os=os, signal=signal, time=time):  # torn down after Python's signal handling
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)

        late = Late()

        def main():
            print("result")
            return 0
    ''')
    assert (done.returncode, done.stdout, done.stderr) == (0, "result\n", "")
