"""`python -m benchmarks --suite cpu|gpu|data [--quick] [--out benchmarks/results]`: run a suite
and write `<out>/<YYYY-MM-DD>-<device>-<suite>[-quick].{json,md}`; see benchmarks/README.md."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from .common import cpu_cores

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--suite", choices=("cpu", "gpu", "data"), required=True)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repeats: a smoke test, not a result")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--threads", type=int, default=cpu_cores(),
                        help="torch threads (default: every core this process may use)")
    data = parser.add_argument_group("data suite")
    data.add_argument("--data-size", choices=("full", "kit"), default="full",
                      help="videos and rounds (benchmarks/data.py SIZES; --quick: the smallest)")
    gpu = parser.add_argument_group("gpu suite")
    gpu.add_argument("--device", default="auto",
                     help="auto (cuda if available) | cuda[:N] | cpu; the data suite times its "
                          "device-side augmentation there")
    gpu.add_argument("--batch", type=int, default=None,
                     help="clips per step (default: sized to the card, see training.CARD_BATCH; "
                          "quick 2)")
    gpu.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto",
                     help="autocast dtype (auto: bf16 on CUDA, off on CPU)")
    gpu.add_argument("--peak-tflops", type=float, default=None,
                     help="dense bf16 peak for MFU, overriding the per-device table")
    gpu.add_argument("--compile-backend", default=None,
                     help="torch.compile backend (default: inductor on CUDA, aot_eager on CPU)")
    gpu.add_argument("--profile", action="store_true",
                     help="also write a torch.profiler table and trace of the AdaptMLP step")
    gpu.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                     help="skip the sections that would start after this many seconds; the "
                          "JSON is rewritten after every section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    args = parse_args(argv)
    import torch

    from . import report
    from .common import resolve_device, run_meta

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device if args.suite in ("gpu", "data") else "cpu")
    meta = run_meta(device, args.suite, args.quick, ["python -m benchmarks", *(
        sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()
    if args.suite == "cpu":
        from . import cpu_suite

        sections = cpu_suite.run(args.quick, args.threads)
        markdown = cpu_suite.markdown(sections)
    elif args.suite == "data":
        from . import data

        sections = data.run("quick" if args.quick else args.data_size, device,
                            on_section=lambda record: report.write_partial(
                                args.out, meta | {"seconds": time.perf_counter() - start}, record))
        markdown = data.markdown(sections)
    else:
        from . import gpu_suite

        opts = gpu_suite.options(device, quick=args.quick, batch=args.batch, amp=args.amp,
                                 peak_override=args.peak_tflops,
                                 compile_backend=args.compile_backend, profile=args.profile,
                                 time_budget_s=args.time_budget)
        sections = gpu_suite.run(opts, report.stem(args.out, meta),
                                 on_section=lambda record: report.write_partial(
                                     args.out, meta | {"seconds": time.perf_counter() - start},
                                     record))
        markdown = gpu_suite.markdown(sections) + [""] + gpu_suite.markdown_goals(
            sections["goals"])
    meta["seconds"] = time.perf_counter() - start
    meta["load_average_end"] = os.getloadavg()[0]
    json_path, md_path = report.write(args.out, meta, sections, markdown)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return json_path, md_path


if __name__ == "__main__":
    main()
