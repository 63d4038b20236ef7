"""How a CLI command ends on Ctrl-C, in a process of its own as a user's shell starts it."""
import signal
import subprocess
import sys
import textwrap

# A command interrupted inside code that a C extension runs through PyRun_String (as pybind11's
# py::exec does); CPython then exits by SIGINT at the end unless the interrupt is not a plain
# KeyboardInterrupt. The CI run of 6730223 ended `detect train` that way (-2 instead of 130).
COMMAND = textwrap.dedent('''
    import ctypes, sys
    from extract.cli_errors import run_command

    def command():
        run = ctypes.pythonapi.PyRun_String
        run.restype, run.argtypes = ctypes.py_object, [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
        run(b"import os, signal, time\\nos.kill(os.getpid(), signal.SIGINT)\\ntime.sleep(5)\\n", 257, {}, {})
        return 0

    sys.exit(run_command(command))
''')


def test_ctrl_c_inside_embedded_code_still_exits_130_after_one_line(tmp_path):
    (tmp_path / "interrupted").mkdir()
    (tmp_path / "interrupted" / "__main__.py").write_text(COMMAND)
    proc = subprocess.run([sys.executable, "-m", "interrupted"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (proc.returncode, proc.stderr.strip()) == (130, "error: interrupted (Ctrl-C); completed work is kept")
