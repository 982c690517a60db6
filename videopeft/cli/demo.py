"""The embedded demo: synthetic data, pre-training, PEFT, frame study, REPORT.md.

Resumable: a re-run skips the finished steps.

    videopeft demo [CONFIG] [demo.scale=4] [key.sub=value ...]     # CONFIG default: demo/demo
    python tools/demo.py [CONFIG] [demo.scale=4]                   # the same, from a checkout

The demo's own keys (demo.out, demo.scale, demo.methods, ...) are the demo: section of
configs/demo/demo.yaml (videopeft.studies.demo.DemoConfig); the other keys are those below.
"""
from __future__ import annotations

from videopeft._lazy import lazy_module

from .parsing import command_parser, find_config

demo = lazy_module("videopeft.studies.demo")  # torch loads when the work starts

DEFAULT_CONFIG = "demo/demo"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog, config_keys=True)
    parser.add_argument("args", nargs="*", metavar="[CONFIG] key=value",
                        help=f"demo config (default {DEFAULT_CONFIG}), then dotted.key=value "
                             "overrides (demo.* for the demo's own keys)")
    args: list[str] = parser.parse_args(argv).args
    config = args.pop(0) if args and "=" not in args[0] else DEFAULT_CONFIG
    report = demo.run_demo(find_config(config), args)
    print(f"report: {report}")
    print(f"figures: {report.parent / 'report'}/*.png")
    return 0

