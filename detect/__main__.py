"""``python -m detect`` and the ``mamba-tad-detect`` script: :mod:`detect.cli` as a process."""
from extract.cli_errors import run_process


def main() -> None:
    run_process("detect.cli")


if __name__ == "__main__":
    main()
