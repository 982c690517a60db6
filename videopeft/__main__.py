"""`python -m videopeft COMMAND ...` is the `videopeft` command (e.g. under `torchrun -m`)."""
from videopeft.cli import console_main

if __name__ == "__main__":
    console_main()
