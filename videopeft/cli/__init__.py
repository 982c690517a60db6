"""The `videopeft` command: one subcommand per tool, each the same code as `python tools/<tool>.py`.

    videopeft train ssv2/adaptmlp model.pretrained=PATH     # CONFIG: a file or a shipped name
    videopeft eval RUN/config.yaml checkpoint=RUN/checkpoints/best.pt
    videopeft COMMAND --help                                 # arguments (and the config keys)

Each command is a module here whose `main(argv, prog)` parses its arguments, builds the config,
calls one engine function and prints where the results went; tools/<tool>.py calls the same
`main`. Errors a user can cause become one `error:` line and exit status 2 (`run_main` in
`videopeft.engine.cli`). The command modules import torch only when their work starts (the engine
is a `lazy_module`), so `--help` and a config error answer at once.
"""
from __future__ import annotations

import argparse
import sys
from types import ModuleType

from videopeft import __version__
from videopeft.engine.cli import run_main

from . import (check_videos, demo, evaluate, export, frame_study, infer, make_synthetic, merge,
               pretrain, train)

__all__ = ["COMMANDS", "main", "console_main", "run_main", "check_videos", "demo", "evaluate",
           "export", "frame_study", "infer", "make_synthetic", "merge", "pretrain", "train"]

# subcommand -> its module (tools/<module name>.py runs the same module)
COMMANDS: dict[str, ModuleType] = {
    "train": train, "eval": evaluate, "pretrain": pretrain, "infer": infer,
    "frame-study": frame_study, "check-videos": check_videos, "make-synthetic": make_synthetic,
    "merge": merge, "demo": demo, "export": export,
}


def _summary(module: ModuleType) -> str:
    """The first line of a command module's docstring, without its full stop."""
    return (module.__doc__ or "").strip().splitlines()[0].rstrip(".")


def _parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {_summary(module)}"
                        for name, module in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="videopeft", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Parameter-efficient fine-tuning of video transformers (VideoMAE).",
        epilog=f"commands:\n{listing}\n\n`videopeft COMMAND --help` shows a command's arguments "
               f"and, for those that read a config,\nevery config key with its default. From a "
               f"checkout, `python tools/<command>.py`\n(frame-study: tools/frame_study.py) runs "
               f"the same code.")
    parser.add_argument("--version", action="version", version=f"videopeft {__version__}")
    parser.add_argument("command", metavar="COMMAND", choices=COMMANDS, help="see below")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="...",
                        help="the command's arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`videopeft COMMAND ARGS...`: run that command's `main` on ARGS."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return COMMANDS[args.command].main(args.args, prog=f"videopeft {args.command}")


def console_main() -> None:
    """The installed `videopeft` script (setup.cfg entry_points): `main` under `run_main`."""
    run_main(main)
