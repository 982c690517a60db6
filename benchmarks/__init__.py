"""videopeft's benchmark suite: `python -m benchmarks --suite cpu|gpu [--quick] [--out DIR]`.

One entry point (`__main__.py`), two suites (`cpu_suite.py`, `gpu_suite.py`) and one module per
measurement: backbone.py (videopeft vs HF VideoMAE), methods.py (AdaptMLP vs full, CPU, child
processes), data.py (pipeline and multi-view decoding), evaluation.py (evaluate() end to end),
training.py (train step, FLOPs, MFU, memory, attention share, profiles), hf.py (HF VideoMAE and
its adapter twin); common.py (statistics, timers, device facts), report.py (result files).
See benchmarks/README.md for what each number means.
"""
