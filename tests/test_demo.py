"""The demo at CI size (configs/demo/smoke.yaml): REPORT.md with its table and PNGs, every number
in the tables read back from the runs' results.json / log.jsonl, a resumed demo redoing nothing,
the trend paragraph saying when a trend does not hold, and one-line errors for bad demo keys."""
from __future__ import annotations

import json
import re

import pytest

from engine_fixtures import REPO
from videopeft.config import ConfigError
from videopeft.studies.demo import DemoConfig, load_demo_config, run_demo, trend_checks

SMOKE = REPO / "configs" / "demo" / "smoke.yaml"


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, monkeypatch_module):
    out = tmp_path_factory.mktemp("demo") / "demo"
    return run_demo(SMOKE, [f"demo.out={out}"])


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TQDM_DISABLE", "1")
        yield mp


def _tables(text: str) -> list[list[dict]]:
    """Every markdown table of `text` as a list of {column: cell} rows."""
    tables, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            head = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("| "):
                rows.append(dict(zip(head, (c.strip() for c in lines[i].strip("|").split("|")))))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def _measured(run_dir) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    events = [json.loads(ln) for ln in (run_dir / "log.jsonl").read_text().splitlines() if ln]
    eff = [e for e in events if e.get("event") == "efficiency"][-1]
    return {"params_trainable": str(results["params"]["trainable"]),
            "clip_top1": format(results["clip_top1"], ".4g"),
            "video_top1": format(results["video_top1"], ".4g"),
            "gflops_per_view": format(results["gflops_per_view"], ".4g"),
            "clips_per_s": format(eff["clips_per_s"], ".4g"),
            "frames": str(results["num_frames"])}


def test_demo_writes_a_report_with_its_table_and_figures(demo_report):
    text = demo_report.read_text()
    for png in re.findall(r"\]\((report/[\w.]+\.png)\)", text):
        assert (demo_report.parent / png).stat().st_size > 0
    assert {"report/frame_study.png", "report/loss_curves.png", "report/confusion_matrix.png"} <= \
        set(re.findall(r"\]\((report/[\w.]+\.png)\)", text))
    main, study = _tables(text)
    assert [r["method"] for r in main] == ["linear", "vpt", "adaptmlp", "adaptmlp"]
    assert [r["pretrained"] for r in main][-1] == "no (scratch)"
    assert len(study) == 6  # 3 methods x frames [2, 4]
    assert "python tools/train.py" in text and "Wall time" in text and "Machine" in text


def test_every_number_in_the_tables_comes_from_the_runs(demo_report):
    out = demo_report.parent
    main, study = _tables(demo_report.read_text())
    for row in main:
        folder = "runs" if row["pretrained"] == "yes" else "scratch"
        measured = _measured(out / folder / f"{row['method']}-f{row['frames']}-s0")
        assert {k: row[k] for k in measured} == measured
    for row in study:
        measured = _measured(out / "runs" / f"{row['method']}-f{row['frames']}-s0")
        assert {k: row[k] for k in measured} == measured


def test_a_second_demo_skips_every_finished_step(demo_report):
    out = demo_report.parent
    results = sorted(out.glob("*/*/results.json")) + [out / "pretrain/checkpoints/pretrain.pth"]
    stamps = {p: p.stat().st_mtime_ns for p in results}
    assert run_demo(SMOKE, [f"demo.out={out}"]) == demo_report
    assert {p: p.stat().st_mtime_ns for p in results} == stamps


def test_a_demo_folder_made_with_other_settings_is_refused_before_any_work(demo_report,
                                                                             tmp_path):
    out = demo_report.parent
    with pytest.raises(ConfigError, match=rf"{out}: its finished steps were made with other "
                                          r"settings \(demo.data_seed, train.lr changed\); set "
                                          r"demo.out to a new folder, or delete"):
        run_demo(SMOKE, [f"demo.out={out}", "train.lr=0.2", "demo.data_seed=3"])
    old = tmp_path / "old"
    (old / "data").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds a demo without settings.json"):
        run_demo(SMOKE, [f"demo.out={old}"])
    assert not (old / "settings.json").exists()


def test_the_report_says_when_a_trend_does_not_hold():
    rows = [{"method": "linear", "pretrained": "yes", "video_top1": 50.0},
            {"method": "vpt", "pretrained": "yes", "video_top1": 40.0},
            {"method": "adaptmlp", "pretrained": "yes", "video_top1": 45.0},
            {"method": "adaptmlp", "pretrained": "no (scratch)", "video_top1": 60.0}]
    study = [{"method": m, "frames": f, "video_top1": v} for m, f, v in (
        ("linear", 2, 30.0), ("linear", 16, 50.0), ("adaptmlp", 2, 35.0), ("adaptmlp", 16, 30.0))]
    lines = trend_checks(rows, study, "adaptmlp")
    assert len(lines) == 4
    assert all("does NOT hold" in line for line in lines[1:])
    assert lines[0].count("does NOT hold") == 2


def test_scale_multiplies_the_videos_and_bad_demo_keys_stop_early():
    demo, base = load_demo_config(SMOKE, ["demo.scale=4", "train.lr=0.2"])
    assert demo.num_videos == 160 and base.values["train"]["lr"] == 0.2
    assert "demo" not in base.values
    assert DemoConfig().num_videos == 400
    with pytest.raises(ConfigError, match="^command line: demo.scael: unknown key"):
        load_demo_config(SMOKE, ["demo.scael=4"])
    with pytest.raises(ConfigError, match="^command line: demo.benchmark: expected one of"):
        load_demo_config(SMOKE, ["demo.benchmark=stripe"])
    with pytest.raises(ConfigError, match="^command line: demo.num_classes: the stripes benchmark "
                                          "has 4 classes, got 10"):
        load_demo_config(SMOKE, ["demo.num_classes=10"])
    with pytest.raises(ConfigError, match="benchmark: expected one of"):
        DemoConfig(benchmark="stripe")
    assert DemoConfig(benchmark="motion", num_classes=10).num_classes == 10


def test_every_bad_demo_key_is_reported_with_its_line(tmp_path):
    """The demo section goes through the config loader: one line per problem, file:line each,
    before any work (a misspelt method would otherwise fail after pre-training)."""
    path = tmp_path / "demo.yaml"
    path.write_text("demo:\n  out: x\n  scale: big\n  methods: [linear, lroa]\n  vidoes: 9\n"
                    "model:\n  name: videomae_tiny\n")
    with pytest.raises(ConfigError) as err:
        load_demo_config(path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}:3: demo.scale: expected float, got 'big'"
    assert lines[1].startswith(f"{path}:5: demo.vidoes: unknown key (did you mean demo.videos?) "
                               f"(keys of demo: out, scale, videos,") and len(lines) == 2
    path.write_text("demo:\n  methods: [linear, lroa]\n  scratch_method: linear\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:2: demo.methods: expected "
                                          r"one of \[.*\], "
                                          r"got 'lroa' \(did you mean lora\?\)$"):
        load_demo_config(path)


def test_a_bad_pretrain_override_stops_the_demo_before_any_work(tmp_path):
    out = tmp_path / "demo"
    with pytest.raises(ConfigError) as err:
        run_demo(SMOKE, [f"demo.out={out}", "demo.pretrain_overrides=[train.epochs=0]"])
    assert str(err.value) == "command line: train.epochs: expected a positive int, got 0"
    assert not out.exists()
    text = SMOKE.read_text().replace("pretrain_overrides: [", "pretrain_overrides: [train.ema=x, ")
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "pretrain_overrides" in ln)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:{line}: train.ema: expected "
                                          r"float, got 'x'$"):
        run_demo(path, [f"demo.out={out}"])
    assert not out.exists()


def test_the_report_warns_when_nothing_beats_chance():
    rows = [{"method": m, "pretrained": "yes", "video_top1": v}
            for m, v in (("linear", 9.0), ("vpt", 10.0), ("adaptmlp", 12.0))]
    rows.append({"method": "adaptmlp", "pretrained": "no (scratch)", "video_top1": 8.0})
    lines = trend_checks(rows, [], "adaptmlp", num_classes=10, num_videos=120)
    assert lines[0].startswith("- **No method learned the task")
    rows[2]["video_top1"] = 60.0
    assert not trend_checks(rows, [], "adaptmlp", 10, 120)[0].startswith("- **No method")
