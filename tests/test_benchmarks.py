"""The benchmark suite runs end to end and records what it claims.

Both suites run once per session at their `--quick` size, one torch thread, through the real
entry point (`python -m benchmarks`) into a temporary folder: the CPU suite as is, the GPU suite
on the CPU with decord, av and matplotlib made unimportable (the GPU machine has none of them),
with `--profile` and a made-up `--peak-tflops` so the MFU path runs too. The tests then check that
every section is there, every measured number is finite and positive, and every ratio is the
quotient of the recorded numbers it names.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from engine_fixtures import REPO, tool_env

sys.path.insert(0, str(REPO))

from benchmarks import gpu_suite  # noqa: E402
from benchmarks.gpu_suite import GOALS, Goal  # noqa: E402
from benchmarks.training import METHODS, peak_tflops  # noqa: E402

# The GPU machine has none of these: the GPU suite must run without them.
BLOCKED = ("decord", "av", "matplotlib")
GPU_SCRIPT = (
    "import runpy, sys\n"
    f"for name in {BLOCKED!r}:\n"
    "    sys.modules[name] = None  # import raises ImportError\n"
    "sys.argv = ['benchmarks', *sys.argv[1:]]\n"
    "runpy.run_module('benchmarks', run_name='__main__', alter_sys=True)\n"
)


def _run(args: list[str], out: Path, script: str | None = None) -> dict:
    cmd = [sys.executable, "-c", script, *args] if script else [
        sys.executable, "-m", "benchmarks", *args]
    proc = subprocess.run([*cmd, "--quick", "--threads", "1", "--out", str(out)], cwd=REPO,
                          env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = sorted(out.glob("*.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text()) | {"_json": str(found[0])}


@pytest.fixture(scope="module")
def cpu_record(tmp_path_factory) -> dict:
    return _run(["--suite", "cpu"], tmp_path_factory.mktemp("bench_cpu"))


@pytest.fixture(scope="module")
def gpu_record(tmp_path_factory) -> dict:
    return _run(["--suite", "gpu", "--device", "cpu", "--profile", "--peak-tflops", "1"],
                tmp_path_factory.mktemp("bench_gpu"), script=GPU_SCRIPT)


def _stats(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every Stat ({median, n, min, max, values}) in a record, with where it is."""
    if isinstance(node, dict):
        if {"median", "n", "values"} <= node.keys():
            yield path, node
            return
        for key, value in node.items():
            yield from _stats(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _stats(value, f"{path}[{i}]")


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check_stats(record: dict) -> int:
    stats = list(_stats(record))
    for where, s in stats:
        assert s["n"] == len(s["values"]) >= 1, where
        assert all(_positive(v) for v in s["values"]), where
        assert s["min"] <= s["median"] <= s["max"], where
    return len(stats)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9)


# ----------------------------------------------------------------------------- CPU suite

def test_cpu_suite_writes_json_and_markdown_with_every_section(cpu_record):
    meta = cpu_record["meta"]
    assert meta["suite"] == "cpu" and meta["quick"] and meta["threads"] == 1
    assert meta["device"]["slug"].startswith("cpu-") and meta["device"]["name"]
    assert meta["torch"] and _positive(meta["seconds"])
    stem = Path(cpu_record["_json"])
    assert stem.name == f"{meta['date']}-{meta['device']['slug']}-cpu-quick.json"
    md = stem.with_suffix(".md").read_text()
    for section in ("backbone", "methods", "data", "multiview", "eval"):
        assert section in cpu_record, section
    for heading in ("## Backbone", "## AdaptMLP-64 vs full", "## Data path",
                    "### ssv2-240p", "### kinetics-320p", "## Multi-view eval",
                    "## Evaluation end to end"):
        assert heading in md, heading
    assert _check_stats(cpu_record) >= 20


def test_cpu_suite_ratios_are_the_recorded_numbers_divided(cpu_record):
    for case in cpu_record["backbone"]["cases"]:
        wall, cpu = case["wall_s"], case["cpu_s"]
        assert case["max_logit_delta"] < 1e-3
        for impl in ("hf_eager", "hf_sdpa"):
            assert _close(case[f"ratio_vs_{impl}"],
                          wall["videopeft"]["median"] / wall[impl]["median"])
            assert _close(case[f"cpu_ratio_vs_{impl}"],
                          cpu["videopeft"]["median"] / cpu[impl]["median"])
    m = cpu_record["methods"]
    a, f = m["methods"]["adaptmlp"], m["methods"]["full"]
    assert a["params_trainable"] < f["params_trainable"] == f["params_total"]
    assert _close(m["speedup_adaptmlp_vs_full"], f["step_s"]["median"] / a["step_s"]["median"])
    assert _close(m["peak_rss_ratio_adaptmlp_vs_full"],
                  a["peak_rss_mb"]["median"] / f["peak_rss_mb"]["median"])
    assert _close(m["rss_growth_ratio_adaptmlp_vs_full"],
                  a["rss_growth_mb"]["median"] / f["rss_growth_mb"]["median"])
    for p in cpu_record["multiview"]["protocols"].values():
        assert _close(p["speedup"], p["decode_once_videos_per_s"]["median"]
                      / p["per_view_videos_per_s"]["median"])
    e = cpu_record["eval"]
    rates = e["videos_per_s"]
    assert e["videos"] >= 1
    assert _close(e["end_to_end_vs_model_only"],
                  rates["end_to_end"]["median"] / rates["model_only"]["median"])
    assert _close(e["scoring_loop_vs_model_only"],
                  rates["scoring_loop"]["median"] / rates["model_only"]["median"])


# ----------------------------------------------------------------------------- data suite

def _median(row: dict) -> float:
    return row["clips_per_s"]["median"]


def test_data_suite_measures_every_row_on_both_realistic_sets(cpu_record):
    """Every row is measured on both sets and decodes the frames the decord loop decodes;
    the device half of augmentation is timed on the device present."""
    from benchmarks.data import ROWS
    from videopeft.data.synthetic import PROFILES

    data = cpu_record["data"]
    assert data["size"]["name"] == "quick"
    assert set(data["profiles"]) == set(PROFILES)
    for name, p in data["profiles"].items():
        assert p["videos"] == 1 and p["size"] == f"{PROFILES[name].width}x{PROFILES[name].height}"
        assert p["mean_kbps"] > 0 and p["write_s"] > 0
        rows = p["rows"]
        assert {"a", "a-e", *(r.key for r in ROWS)} == set(rows)
        for row in ROWS:
            entry = rows[row.key]
            assert "skipped" not in entry, entry
            assert entry["planned_frames"] is True, entry  # decoded the decord loop's frames
            assert entry["clips_per_item"] == row.clips_per_item
            assert entry["clips_per_s"]["median"] > 0
        assert rows["e"]["config"]["num_frames"] == 8 and rows["b"]["config"]["num_frames"] == 16
        assert (rows["c"]["config"]["augment"], rows["d"]["config"]["num_sample"]) == ("device", 2)
    timing = data["device_augmentation"]
    assert timing["device"] == "cpu" and timing["batch"] == 4 and timing["seconds"]["median"] > 0
    assert timing["rand_augment_ops_applied"] > 0  # the RandAugment ops ran too


def test_data_suite_ratios_and_cores_follow_from_the_rates(cpu_record):
    for p in cpu_record["data"]["profiles"].values():
        rows = p["rows"]
        floor = _median(rows["a"])
        for key, row in rows.items():
            if "skipped" in row:
                continue
            assert _close(row["vs_a"], _median(row) / floor), key
            if key in ("a", "a-e"):
                continue
            own = rows["a-e" if key == "e" else "a"]
            assert _close(row["vs_own_decode"], _median(row) / _median(own)), key
            for target, cores in row["cores_needed"].items():
                assert cores == math.ceil(int(target) / _median(row)), (key, target)
        if "clips_per_s" in rows["d"]:
            assert _close(rows["d"]["vs_c"], _median(rows["d"]) / _median(rows["c"]))


def test_the_kit_summary_shows_the_data_rows(cpu_record):
    from benchmarks.kit import summary

    record = {"env": None, "parts": [], "gpu": None, "data": cpu_record, "frame_study": None,
              "tests": None}
    text = summary(record)
    section = text.split("## Data suite")[1].split("## Frame study")[0]
    rows = cpu_record["data"]["profiles"]["kinetics-320p"]["rows"]
    assert f"| kinetics-320p | b: {rows['b']['name']} | {_median(rows['b']):.2f} |" in section
    assert "Partial record" not in section
    partial = json.loads(json.dumps(cpu_record))
    partial["meta"]["partial"] = True
    assert "Partial record" in summary(record | {"data": partial})


# ----------------------------------------------------------------------------- GPU suite

def _measurement_ok(m: dict, *, memory: bool) -> None:
    for key in ("clips_per_s", "flops_per_step", "achieved_tflops", "mfu", "params_total",
                "params_trainable", "first_step_s"):
        assert _positive(m[key]), (m["label"], key, m[key])
    assert _close(m["clips_per_s"], m["batch"] / m["step_s"]["median"])
    assert _close(m["achieved_tflops"], m["flops_per_step"] / m["step_s"]["median"] / 1e12)
    assert _close(m["mfu"], m["achieved_tflops"] / m["peak_tflops"])
    assert (m["peak_memory_mib"] is not None) == memory


def test_gpu_suite_runs_on_cpu_without_decoders_and_records_every_section(gpu_record):
    meta, opts = gpu_record["meta"], gpu_record["options"]
    assert meta["suite"] == "gpu" and meta["device"]["type"] == "cpu"
    assert '"error"' not in json.dumps(gpu_record)
    assert opts["peak_tflops"] == 1.0 and opts["peak_source"] == "--peak-tflops"
    assert set(gpu_record["methods"]) == set(METHODS)
    measurements = [*gpu_record["methods"].values(), gpu_record["hf"]["hf_eager"],
                    gpu_record["hf"]["hf_sdpa"], gpu_record["compile"]["compiled"],
                    gpu_record["checkpointing"]["on"],
                    *(m for rows in gpu_record["frames"].values() for m in rows)]
    for m in measurements:
        _measurement_ok(m, memory=False)  # no CUDA: memory is not measured
    assert _check_stats(gpu_record) == len(measurements) + 2  # + eager/off copies of adaptmlp
    for method, rows in gpu_record["frames"].items():
        assert [m["frames"] for m in rows] == opts["frames"] == [4, 8, 16, 32]
        assert all(0 < m["attention_share"] < 1 for m in rows), method
        assert [m["tokens"] for m in rows] == sorted(m["tokens"] for m in rows)
    md = Path(gpu_record["_json"]).with_suffix(".md").read_text()
    for heading in ("### Methods", "### AdaptMLP-64: videopeft vs HF", "### Frame count",
                    "### torch.compile", "### Gradient checkpointing", "## Goals"):
        assert heading in md, heading
    folder = Path(gpu_record["_json"]).parent
    profile = gpu_record["profile"]
    assert "aten::" in (folder / profile["table"]).read_text()
    assert (folder / profile["trace"]).stat().st_size > 0


def test_gpu_suite_ratios_and_flops_follow_from_the_measurements(gpu_record):
    methods, hf = gpu_record["methods"], gpu_record["hf"]
    ours = methods["adaptmlp"]
    for impl in ("eager", "sdpa"):
        assert _close(hf[f"speedup_vs_hf_{impl}"],
                      ours["clips_per_s"] / hf[f"hf_{impl}"]["clips_per_s"])
    assert hf["same_trainable_params"]
    assert hf["hf_eager"]["params_trainable"] == ours["params_trainable"]
    assert _close(gpu_record["ratios"]["adaptmlp_vs_full_throughput"],
                  ours["clips_per_s"] / methods["full"]["clips_per_s"])
    assert gpu_record["ratios"]["adaptmlp_vs_full_memory"] is None  # CPU: not measured
    c, g = gpu_record["compile"], gpu_record["checkpointing"]
    assert _close(c["speedup"], c["compiled"]["clips_per_s"] / c["eager"]["clips_per_s"])
    assert _close(g["throughput_ratio_on_vs_off"],
                  g["on"]["clips_per_s"] / g["off"]["clips_per_s"])
    # a frozen backbone skips its weight gradients; a linear probe skips the backbone's backward
    assert methods["linear"]["flops_per_step"] < ours["flops_per_step"] \
        < methods["full"]["flops_per_step"]
    # compiling or checkpointing changes no model FLOPs (recomputation is not model work)
    assert c["compiled"]["flops_per_step"] == g["on"]["flops_per_step"] == ours["flops_per_step"]
    goals = {goal["key"]: goal for goal in gpu_record["goals"]}
    assert set(goals) == {goal.key for goal in GOALS}
    assert _close(goals["mfu_adaptmlp"]["value"], ours["mfu"])
    assert goals["vs_full_memory"]["passed"] is None


def test_goals_pass_fail_and_unmeasured():
    at_least = Goal("k", "d", ("a", "b"), ">=", 2.0)
    at_most = Goal("k", "d", ("a", "b"), "<=", 0.6)
    assert at_least.check({"a": {"b": 2.0}})["passed"] is True
    assert at_least.check({"a": {"b": 1.9}})["passed"] is False
    assert at_most.check({"a": {"b": 0.7}})["passed"] is False
    assert at_most.check({"a": {"b": None}})["passed"] is None
    assert at_most.check({"a": {}})["passed"] is None


def test_mfu_peak_comes_from_the_override_or_nothing_on_cpu():
    assert peak_tflops(torch.device("cpu"), None)[0] is None
    assert peak_tflops(torch.device("cpu"), 989.0) == (989.0, "--peak-tflops")


def test_a_failed_measurement_is_recorded_and_the_report_still_renders(gpu_record):
    def out_of_memory() -> dict:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")

    failed = gpu_suite.guarded("frames", out_of_memory, torch.device("cpu"))
    assert failed == {"error": "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"}
    record = json.loads(json.dumps(gpu_record))
    for section in ("hf", "compile", "checkpointing"):
        record[section] = dict(failed)
    record["frames"]["vpt"][-1] = failed | {"frames": 32}
    goals = {g.key: g.check(record) for g in GOALS}
    assert goals["vs_hf_eager_adapter"]["passed"] is None
    md = "\n".join(gpu_suite.markdown(record) + gpu_suite.markdown_goals(list(goals.values())))
    assert md.count("Failed: `RuntimeError: CUDA out of memory") == 3
    assert "| vpt | 32 | failed: `RuntimeError" in md


def test_a_section_past_the_time_budget_is_skipped_not_run(tmp_path):
    from benchmarks import report

    ran = []
    skipped = gpu_suite.guarded("compile", lambda: ran.append(1) or {}, torch.device("cpu"),
                                deadline=0.0)  # time.monotonic() is past it
    assert skipped == {"error": "skipped: past the time budget"} and ran == []
    meta = {"date": "2026-01-01", "device": {"slug": "cpu-2core"}, "suite": "gpu", "quick": True}
    path = report.write_partial(tmp_path, meta, {"methods": {}, "compile": skipped})
    assert json.loads(path.read_text())["meta"]["partial"] is True


@pytest.mark.parametrize("gib,batch", [(141.0, 32), (80.0, 16), (40.0, 8)])
def test_the_gpu_batch_follows_the_card_memory(monkeypatch, gib, batch):
    from types import SimpleNamespace

    from benchmarks.training import batch_for_card

    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: SimpleNamespace(total_memory=gib * 2**30))
    assert batch_for_card(torch.device("cuda"))[0] == batch
    assert batch_for_card(torch.device("cpu"))[0] == 8


def test_child_peak_rss_is_its_own_not_the_parents() -> None:
    """Linux carries ru_maxrss across fork and exec; the methods children must not report the
    peak of the big process that started them."""
    from benchmarks.common import peak_rss_mb

    ballast = bytearray(400 * 2**20)  # the parent's peak grows by 400 MiB
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # touch every page
    parent_peak = peak_rss_mb()
    out = subprocess.run([sys.executable, "-c", "from benchmarks.common import peak_rss_mb; "
                          "print(peak_rss_mb())"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    del ballast
    assert float(out) < parent_peak - 300
