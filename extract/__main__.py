"""``python -m extract`` and the ``mamba-tad-extract`` script: :mod:`extract.cli` as a process."""
from extract.cli_errors import run_process


def main() -> None:
    run_process("extract.cli")


if __name__ == "__main__":
    main()
