"""The embedded demo: the toolkit's whole story on a synthetic video benchmark, end to end.

    python tools/demo.py [configs/demo/demo.yaml] [demo.scale=4] [key.sub=value ...]

Steps, each in ``<demo.out>/`` and each skipped when its outputs exist (so re-running finishes an
interrupted demo; an unfinished training run resumes from its checkpoints). ``settings.json``
records the settings; a re-run with other settings stops, naming the changed keys
(`videopeft.run_folder.changed_keys`, the comparison training and the frame study use), except
for added methods or frame counts, which only add cells:

1. ``data/``         the synthetic benchmark (`demo.benchmark`) in the SSv2 layout (`write_synthetic`);
2. ``pretrain/``     VideoMAE masked-autoencoder pre-training on the training videos (no labels);
3. ``runs/``         fine-tuning from that backbone, one cell per (method, frames) with decode-once
                     multi-view evaluation: the table's methods at ``data.num_frames``, then the
                     frame study (`run_frame_study`, which skips the cells already run);
4. ``scratch/``      the same recipe for ``demo.scratch_method`` without pre-training;
5. ``REPORT.md``     the table, plots, reproduce commands, machine, wall time and a paragraph that
                     checks the papers' trends against the numbers (``report/*.png``).

The YAML holds a ``demo:`` section (`DemoConfig`) and normal RunConfig sections, the base of every
fine-tuning run; ``demo.pretrain_overrides`` are dotted overrides applied on top of it for step 2.
Both are read by the config module (`read_sources`), so every bad key, of the demo section or of
any run the demo will start, is reported with its file and line before any step runs. Every
figure in the report is read back from the runs' ``results.json`` / ``log.jsonl``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from videopeft.config import (RunConfig, Sources, build_run_config, build_section,
                              parse_overrides, read_sources)
from videopeft.data.synthetic import (BENCHMARKS, STRIPE_CLASSES, STRIPE_EVIDENCE,
                                      write_synthetic)
from videopeft.engine.machine import machine_summary
from videopeft.engine.pretrain import pretrain
from videopeft.engine.report import markdown_table, plot_losses
from videopeft.errors import ConfigError, Problem, check, one_of
from videopeft.io import atomic_write_json, atomic_write_text
from videopeft.peft.config import METHOD_CONFIGS
from videopeft.run_folder import changed_keys

from .frame_study import cell_name, collect_row, run_frame_study

__all__ = ["DemoConfig", "load_demo_config", "run_demo", "table_rows", "trend_checks",
           "chance_line", "TABLE_COLUMNS"]

_log = logging.getLogger(__name__)

TABLE_COLUMNS = ("method", "pretrained", "frames", "params_trainable", "clip_top1", "video_top1",
                 "gflops_per_view", "clips_per_s")


@dataclass
class DemoConfig:
    """What the demo runs: sizes for a 2-core CPU; `scale` multiplies the data for bigger boxes."""

    out: str = "runs/demo"
    scale: float = 1.0  # multiplies `videos` (and so every step count); 4 = about 4x the compute
    videos: int = 400  # synthetic videos before scaling; 30 % go to validation
    benchmark: str = "stripes"  # stripes | motion: see videopeft.data.synthetic
    num_classes: int = 4
    video_size: int = 40  # frame height of the written videos (px)
    frames_range: tuple[int, int] = (16, 40)
    data_seed: int = 0
    methods: list[str] = field(default_factory=lambda: ["linear", "vpt", "adaptmlp", "lora"])
    study_frames: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    study_methods: list[str] = field(default_factory=lambda: ["linear", "vpt", "adaptmlp"])
    scratch_method: str = "adaptmlp"
    pretrain_overrides: list[str] = field(default_factory=list)  # dotted key=value for step 2

    def __post_init__(self) -> None:
        check(*self._problems())

    def _problems(self) -> list[Problem | None]:
        """Every problem of the section (keys without the ``demo.`` prefix; the loader adds it)."""
        problems: list[Problem | None] = [
            None if self.scale > 0 else
            Problem(f"expected a positive number, got {self.scale}", "scale"),
            None if self.videos >= 2 * self.num_classes else
            Problem(f"expected >= 2 * num_classes = {2 * self.num_classes}, got {self.videos}",
                    "videos"),
            one_of("benchmark", self.benchmark, sorted(BENCHMARKS)),
            None if 1 <= self.frames_range[0] <= self.frames_range[1] else
            Problem(f"expected 1 <= low <= high, got {list(self.frames_range)}", "frames_range"),
            *(one_of("methods", m, list(METHOD_CONFIGS)) for m in self.methods),
            *(one_of("study_methods", m, list(METHOD_CONFIGS)) for m in self.study_methods),
            *(None if isinstance(f, int) and f > 0 else
              Problem(f"expected positive frame counts, got {f!r}", "study_frames")
              for f in self.study_frames),
            None if self.scratch_method in self.methods else
            Problem(f"expected one of demo.methods {self.methods} (its pretrained row is the "
                    f"reference), got {self.scratch_method!r}", "scratch_method"),
        ]
        if self.benchmark in BENCHMARKS and not 2 <= self.num_classes <= len(
                BENCHMARKS[self.benchmark]):
            problems.append(Problem(f"the {self.benchmark} benchmark has "
                                    f"{len(BENCHMARKS[self.benchmark])} classes, got "
                                    f"{self.num_classes}", "num_classes"))
        try:
            parse_overrides(list(self.pretrain_overrides))
        except ConfigError as err:
            problems += [Problem(p.message, "pretrain_overrides") for p in err.problems]
        return problems

    @property
    def num_videos(self) -> int:
        return max(2 * self.num_classes, int(round(self.videos * self.scale)))


def load_demo_config(path: str | os.PathLike, overrides: list[str] | None = None
                     ) -> tuple[DemoConfig, Sources]:
    """The `demo:` section as a DemoConfig, and the other sections (with the overrides) as the
    `Sources` every run of the demo is built from. ConfigError names the file and line (or the
    command line) of every bad demo key."""
    return _split(read_sources(path, overrides))


def _split(sources: Sources) -> tuple[DemoConfig, Sources]:
    demo = build_section(DemoConfig, sources.values.get("demo") or {}, sources, "demo")
    return demo, sources.without("demo")


def _check_runs(demo: DemoConfig, base: Sources, sources: Sources) -> RunConfig:
    """Build (without path checks) every run config the demo will start; returns the base one.

    A problem in a ``demo.pretrain_overrides`` key is blamed on that list's line."""
    base_cfg = build_run_config(base, check_paths=False)
    tubelet = base_cfg.model.tubelet_size
    problems = [Problem(f"expected multiples of model.tubelet_size={tubelet}, got {f}",
                        "demo.study_frames", sources.where("demo", "study_frames"))
                for f in demo.study_frames if f % tubelet]
    given = {item.split("=", 1)[0] for item in demo.pretrain_overrides}
    at = sources.where("demo", "pretrain_overrides")
    try:
        build_run_config(_pretrain_sources(demo, base, Path(demo.out) / "pretrain"),
                         check_paths=False)
    except ConfigError as err:
        problems += [dataclasses.replace(p, where=at) if p.key in given else p
                     for p in err.problems]
    check(*problems)
    return base_cfg


# ============================================================================= steps

class _Timer:
    """Seconds spent per step, kept in ``timings.json`` so a resumed demo reports the total."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spent: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, step: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.spent[step] = self.spent.get(step, 0.0) + time.perf_counter() - start
            atomic_write_json(self.path, self.spent, indent=1)

    @property
    def total(self) -> float:
        return sum(self.spent.values())


def _write_data(demo: DemoConfig, out: Path) -> Path:
    data = out / "data"
    if (data / "synthetic.json").is_file():
        _log.info("data: %s exists, skipped", data)
        return data
    write_synthetic(data, "ssv2", videos=demo.num_videos, seed=demo.data_seed,
                    num_classes=demo.num_classes, size=demo.video_size,
                    frames_range=demo.frames_range, benchmark=demo.benchmark)
    return data


def _data_overrides(data: Path) -> dict:
    return {"data": {"layout": "ssv2", "root": str(data / "videos"),
                     "annotation": str(data / "annotations")}}


def _pretrain_sources(demo: DemoConfig, base: Sources, run_dir: Path) -> Sources:
    """The pre-training run: the base with `demo.pretrain_overrides`, resumable, no method."""
    settings = base.override({"output_dir": str(run_dir), "train": {"resume": "auto"}})
    return settings.override(parse_overrides(list(demo.pretrain_overrides))).without(
        "method", "eval")


def _pretrain(demo: DemoConfig, base: Sources, out: Path) -> Path:
    run_dir = out / "pretrain"
    path = run_dir / "checkpoints" / "pretrain.pth"
    if path.is_file():
        _log.info("pretrain: %s exists, skipped", path)
        return path
    return pretrain(build_run_config(_pretrain_sources(demo, base, run_dir)), run_name="pretrain")


_EXTENDABLE = ("out", "methods", "study_frames", "study_methods")  # more cells reuse finished ones


def _check_settings(out: Path, demo: DemoConfig, base: Sources) -> None:
    """Record the settings in `out/settings.json`, or refuse to finish a demo folder whose
    finished steps were made with other settings (they would be reused silently). Adding
    methods or frame counts is allowed: only the new cells run."""
    settings = {"demo": {k: v for k, v in dataclasses.asdict(demo).items()
                         if k not in _EXTENDABLE}, **base.values}
    settings = json.loads(json.dumps(settings, default=list))  # tuples -> lists, as stored
    path = out / "settings.json"
    fix = f"set demo.out to a new folder, or delete {out}"
    if path.is_file():
        changed = changed_keys(json.loads(path.read_text()), settings)
        if changed:
            raise ConfigError(f"{out}: its finished steps were made with other settings "
                              f"({', '.join(changed)} changed); {fix}")
        return
    if (out / "data").exists():
        raise ConfigError(f"{out}: holds a demo without settings.json (an older videopeft), so "
                          f"its finished steps cannot be checked; {fix}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")


def run_demo(cfg_path: str | os.PathLike, overrides: list[str] | None = None) -> Path:
    """Run (or finish) every step of the demo; returns the path of REPORT.md."""
    sources = read_sources(cfg_path, overrides)
    demo, base = _split(sources)
    base_cfg = _check_runs(demo, base, sources)  # every problem before any work
    out = Path(demo.out)
    frames = base_cfg.data.num_frames
    _check_settings(out, demo, base)
    timer = _Timer(out / "timings.json")

    _log.info("[1/5] synthetic %s benchmark (%d videos, SSv2 layout)", demo.benchmark,
              demo.num_videos)
    data = timer.run("data", _write_data, demo, out)
    base = base.override(_data_overrides(data))

    _log.info("[2/5] VideoMAE masked pre-training (no labels)")
    backbone = timer.run("pretrain", _pretrain, demo, base, out)

    _log.info("[3/5] fine-tuning from the pre-trained backbone: %s at %d frames; frame study %s "
              "x %s", ", ".join(demo.methods), frames, demo.study_frames,
              ", ".join(demo.study_methods))
    tuned = build_run_config(base.override({"model": {"pretrained": str(backbone)}}))
    runs = out / "runs"
    timer.run("finetune", run_frame_study, tuned, [frames], demo.methods, out_dir=runs)
    study = timer.run("frame_study", run_frame_study, tuned, demo.study_frames,
                      demo.study_methods, out_dir=runs)

    _log.info("[4/5] from scratch (no pre-training): %s at %d frames", demo.scratch_method, frames)
    scratch_cfg = build_run_config(base.override({"model": {"pretrained": ""}}))
    timer.run("scratch", run_frame_study, scratch_cfg, [frames], [demo.scratch_method],
              out_dir=out / "scratch")

    _log.info("[5/5] report")
    return write_report(demo, cfg_path, out, frames, study, timer)


# ============================================================================= report

def table_rows(demo: DemoConfig, out: Path, frames: int) -> list[dict]:
    """The main table: each method at `frames` from the pre-trained backbone, then scratch."""
    rows = []
    for method in demo.methods:
        row = collect_row(out / "runs" / cell_name(method, frames, 0), method, frames, 0)
        rows.append({**row, "pretrained": "yes", "dir": f"runs/{row['run']}"})
    row = collect_row(out / "scratch" / cell_name(demo.scratch_method, frames, 0),
                      demo.scratch_method, frames, 0)
    rows.append({**row, "pretrained": "no (scratch)", "dir": f"scratch/{row['run']}"})
    return rows


_WORDS = {2: "two", 3: "three", 4: "four"}


def _benchmark_story(benchmark: str) -> str:
    """One clause on what decides a class, for the report's first paragraph."""
    if benchmark == "motion":
        return "the class is how one object moves"
    others = len(STRIPE_CLASSES) - 1
    shown = Fraction(STRIPE_EVIDENCE + (1 - STRIPE_EVIDENCE) / (others + 1)).limit_denominator(100)
    return (f"the class is the stripe orientation that dominates over time; each frame shows it "
            f"with probability {shown}, otherwise one of the other {_WORDS.get(others, others)}")


def _verdict(ok: bool) -> str:
    return "holds" if ok else "does NOT hold in this run"


def chance_line(rows: list[dict], num_classes: int, num_videos: int) -> str | None:
    """A warning when no table row beats chance by two binomial standard deviations."""
    p = 1.0 / num_classes
    bar = 100 * (p + 2 * math.sqrt(p * (1 - p) / max(num_videos, 1)))
    best = max(r["video_top1"] for r in rows)
    if best > bar:
        return None
    return (f"- **No method learned the task in this run**: the best video top-1 is {best:.1f}%, "
            f"within two standard deviations of chance ({100 * p:.0f}% ± "
            f"{(bar - 100 * p) / 2:.1f} over {num_videos} videos), so every comparison below is "
            f"noise, whatever its verdict says.")


def trend_checks(rows: list[dict], study: list[dict], scratch_method: str,
                 num_classes: int = 0, num_videos: int = 0) -> list[str]:
    """One sentence per paper trend, each computed from the measured video top-1 numbers (and a
    warning first when nothing beats chance, given `num_classes` and validation `num_videos`)."""
    top1 = {r["method"]: r["video_top1"] for r in rows if r["pretrained"] == "yes"}
    scratch = next(r["video_top1"] for r in rows if r["pretrained"] != "yes")
    warning = chance_line(rows, num_classes, num_videos) if num_classes else None
    lines = [warning] if warning else []
    if {"adaptmlp", "vpt", "linear"} <= set(top1):
        a, v, lin = top1["adaptmlp"], top1["vpt"], top1["linear"]
        lines.append(f"- **AdaptMLP ≥ VPT ≥ linear** (AdaptFormer, VPT papers): AdaptMLP {a:.1f}%, "
                     f"VPT {v:.1f}%, linear {lin:.1f}% — the full ordering "
                     f"{_verdict(a >= v >= lin)}; AdaptMLP ≥ linear {_verdict(a >= lin)}.")
    if scratch_method in top1:
        p = top1[scratch_method]
        lines.append(f"- **Pre-training helps**: {scratch_method} from the MAE backbone {p:.1f}% "
                     f"vs from scratch {scratch:.1f}% — {_verdict(p > scratch)}.")
    cells = {(r["method"], int(r["frames"])): r["video_top1"] for r in study}
    frames = sorted({int(r["frames"]) for r in study})
    if len(frames) >= 2:
        lo, hi = frames[0], frames[-1]
        if ("adaptmlp", lo) in cells and ("adaptmlp", hi) in cells:
            a_lo, a_hi = cells[("adaptmlp", lo)], cells[("adaptmlp", hi)]
            lines.append(f"- **More frames help a temporal task**: AdaptMLP {a_hi:.1f}% at {hi} "
                         f"frames vs {a_lo:.1f}% at {lo} — {_verdict(a_hi > a_lo)}.")
        if all((m, f) in cells for m in ("adaptmlp", "linear") for f in (lo, hi)):
            g_lo = cells[("adaptmlp", lo)] - cells[("linear", lo)]
            g_hi = cells[("adaptmlp", hi)] - cells[("linear", hi)]
            lines.append(f"- **The AdaptMLP − linear gap grows with frames** (AdaptFormer Fig. 4): "
                         f"{g_lo:+.1f} points at {lo} frames, {g_hi:+.1f} at {hi} — "
                         f"{_verdict(g_hi > g_lo)}.")
    return lines


def _shown_path(path: str | os.PathLike) -> str:
    """`path` relative to the working directory when it lies inside it (as a user would type it)."""
    relative = os.path.relpath(path)
    return os.fspath(path) if relative.startswith("..") else relative


def write_report(demo: DemoConfig, cfg_path: str | os.PathLike, out: Path, frames: int,
                 study: list[dict], timer: _Timer) -> Path:
    """REPORT.md and report/*.png in `out`, every number read from the runs' outputs."""
    rows = table_rows(demo, out, frames)
    figs = out / "report"
    figs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "runs" / "frame_study.png", figs / "frame_study.png")
    plot_losses({r["method"] + ("" if r["pretrained"] == "yes" else " (scratch)"):
                 out / r["dir"] / "log.jsonl" for r in rows}, figs / "loss_curves.png")
    best = max((r for r in rows if r["pretrained"] == "yes"), key=lambda r: r["video_top1"])
    shutil.copyfile(out / best["dir"] / "plots" / "confusion_matrix.png",
                    figs / "confusion_matrix.png")
    results = json.loads((out / best["dir"] / "results.json").read_text())
    study_cols = ("method", "frames", "video_top1", "clip_top1", "params_trainable",
                  "gflops_per_view", "clips_per_s")
    repro = [f"python tools/make_synthetic.py --layout ssv2 --out {out}/data --videos "
             f"{demo.num_videos} --seed {demo.data_seed} --benchmark {demo.benchmark} "
             f"--num-classes {demo.num_classes} "
             f"--size {demo.video_size} --frames-range {demo.frames_range[0]} "
             f"{demo.frames_range[1]}",
             f"python tools/pretrain.py {out}/pretrain/config.yaml"]
    repro += [f"python tools/train.py {out}/{r['dir']}/config.yaml output_dir=runs/repro/"
              f"{r['run']}{'' if r['pretrained'] == 'yes' else '-scratch'}" for r in rows]
    repro.append(f"python tools/frame_study.py {out}/runs/{rows[0]['run']}/config.yaml "
                 f"frames={list(demo.study_frames)} methods=[{','.join(demo.study_methods)}] "
                 f"output_dir=runs/repro/frame_study")
    views = results["views"]
    text = [
        "# videopeft demo report",
        "",
        f"Synthetic {demo.benchmark} benchmark ({_benchmark_story(demo.benchmark)}; SSv2 layout, "
        f"{demo.num_classes} classes, "
        f"{demo.num_videos} videos, {results['num_videos']} validation videos), a "
        f"VideoMAE pre-trained with masked autoencoding on the training videos, then fine-tuned. "
        f"Accuracy is top-1 (%) on the validation split with decode-once multi-view evaluation "
        f"({views['temporal']} temporal x {views['spatial']} spatial views, "
        f"{results['fusion']}); clips/s is training throughput. Hyper-parameters were not tuned "
        f"on this validation split (the config's comments say where they come from).",
        "",
        f"Machine: {machine_summary()}. Wall time: {timer.total / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in timer.spent.items())}).",
        "",
        f"## Methods at {frames} frames",
        "",
        markdown_table(rows, TABLE_COLUMNS, floatfmt=".4g").rstrip(),
        "",
        "## What the papers say vs what this run shows",
        "",
        *trend_checks(rows, study, demo.scratch_method, demo.num_classes,
                      results["num_videos"]),
        "",
        "A trend marked *does NOT hold* is reported as measured: the benchmark is small and each "
        "number comes from one seed, so differences of a few points are within noise.",
        "",
        "## Frame study (pre-trained backbone)",
        "",
        "![frame study](report/frame_study.png)",
        "",
        markdown_table(study, study_cols, floatfmt=".4g").rstrip(),
        "",
        "## Training loss",
        "",
        "![loss curves](report/loss_curves.png)",
        "",
        f"## Confusion matrix of the best method ({best['method']}, {best['video_top1']:.1f}%)",
        "",
        "![confusion matrix](report/confusion_matrix.png)",
        "",
        "## Reproduce",
        "",
        f"Everything: `python tools/demo.py {_shown_path(cfg_path)}` (finished steps are skipped). "
        "Each number alone (every run folder keeps its resolved `config.yaml`):",
        "",
        "```",
        *repro,
        "```",
        "",
    ]
    path = out / "REPORT.md"
    atomic_write_text(path, "\n".join(text))
    _log.info("report: %s", path)
    return path
