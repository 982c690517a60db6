"""The `videopeft` command: one subcommand per tool running the very code of tools/*.py, a --help
that lists every config key with its default, configs found by shipped name, an answer without
importing torch until work starts, and all of it from an installed package.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine_fixtures import REPO, tool_env
from videopeft.cli import COMMANDS, main
from videopeft.cli.keys import yaml_value
from videopeft.cli.parsing import CONFIG_DIR, find_config, shipped_configs
from videopeft.config import SECTIONS, RunConfig
from videopeft.engine.cli import run_main
from videopeft.errors import ConfigError
from videopeft.peft.config import METHOD_CONFIGS

CONFIG_COMMANDS = ("train", "eval", "pretrain", "frame-study", "demo")
TOOLS = sorted(p.stem for p in (REPO / "tools").glob("*.py"))


def tool_module(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def help_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def error_lines(argv: list[str], capsys) -> list[str]:
    """`videopeft ARGV` under run_main: exit status 2 and the `error:` lines of stderr."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("error:")]


# ----------------------------------------------------------------------------- one code path

def test_every_tool_is_a_subcommand_running_the_same_main():
    assert {tool.replace("_", "-") for tool in TOOLS} == set(COMMANDS)
    for tool in TOOLS:
        assert tool_module(tool).main is COMMANDS[tool.replace("_", "-")].main, tool


def test_videopeft_help_lists_every_subcommand(capsys):
    text = help_of(["--help"], capsys)
    for name, module in COMMANDS.items():
        summary = module.__doc__.splitlines()[0].rstrip(".")
        assert f"  {name}" in text and summary in text, name


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_subcommand_help_shows_its_usage(command, capsys):
    text = help_of([command, "--help"], capsys)
    assert text.startswith(f"usage: videopeft {command} ")
    assert f"videopeft {command}" in text.split("\n\n", 2)[2]  # the examples of its docstring


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_config_commands_list_every_config_key_with_its_default(command, capsys):
    text = help_of([command, "--help"], capsys)
    defaults = RunConfig()
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            value = yaml_value(getattr(getattr(defaults, section), f.name))
            assert f"  {section}.{f.name} = {value}" in text, (section, f.name)
    for scalar in ("output_dir", "seed", "device"):
        assert f"  {scalar} = {yaml_value(getattr(defaults, scalar))}" in text
    for name, cls in METHOD_CONFIGS.items():
        own = [f for f in dataclasses.fields(cls) if f.name not in ("train_head",
                                                                     "train_fc_norm", "head_bn")]
        line = next(ln for ln in text.splitlines() if ln.startswith(f"  method.name={name}:"))
        assert all(f"{f.name} = {yaml_value(getattr(cls(), f.name))}" in line for f in own)
    assert "# ssv2 | hmdb51 | kinetics | list" in text  # the note written beside data.layout
    assert "ssv2/{adaptmlp," in text  # the shipped configs


def test_yaml_values_in_the_help_parse_back_to_the_defaults():
    import yaml

    for value in (1e-6, 0.05, True, None, "", "auto", (0.08, 1.0), {}, ("attn.qkv",)):
        parsed = yaml.safe_load(yaml_value(value))
        assert parsed == (list(value) if isinstance(value, tuple) else value), value


# ----------------------------------------------------------------------------- configs by name

def test_shipped_configs_are_the_repository_configs():
    assert CONFIG_DIR == (REPO / "configs").resolve()
    names = shipped_configs()
    assert "ssv2/adaptmlp" in names and "demo/demo" in names
    assert names == sorted(p.relative_to(REPO / "configs").with_suffix("").as_posix()
                           for p in (REPO / "configs").rglob("*.yaml"))


def test_a_config_is_found_by_path_or_by_name(tmp_path, monkeypatch):
    assert find_config("ssv2/adaptmlp") == CONFIG_DIR / "ssv2" / "adaptmlp.yaml"
    assert find_config("ssv2/adaptmlp.yaml") == CONFIG_DIR / "ssv2" / "adaptmlp.yaml"
    own = tmp_path / "ssv2" / "adaptmlp.yaml"  # a file of that name wins over the shipped one
    own.parent.mkdir()
    own.write_text("seed: 1\n")
    monkeypatch.chdir(tmp_path)
    assert find_config("ssv2/adaptmlp.yaml") == Path("ssv2/adaptmlp.yaml")


@pytest.mark.parametrize("name, close", [
    ("ssv2/adaptmpl", "ssv2/adaptmlp"),
    ("lora", "ssv2/lora"),  # the same name in every folder
    ("configs/kinetics400/vpt.yml", "kinetics400/vpt"),
])
def test_an_unknown_config_name_is_one_line_listing_close_names(name, close, capsys):
    lines = error_lines(["train", name], capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: command line: config {name!r}: ")
    assert close in lines[0]


def test_a_name_close_to_nothing_lists_every_shipped_config():
    with pytest.raises(ConfigError) as err:
        find_config("zzzzzz")
    assert all(name in str(err.value) for name in shipped_configs())


def test_a_shipped_config_runs_by_name_until_its_data_is_missing(capsys):
    """`videopeft train ssv2/adaptmlp` reads the shipped file: its data paths are checked."""
    lines = error_lines(["train", "ssv2/adaptmlp"], capsys)
    shipped = CONFIG_DIR / "ssv2" / "adaptmlp.yaml"
    assert lines and all(ln.startswith(f"error: {shipped}:") for ln in lines)
    assert any("data.annotation: path not found" in ln for ln in lines)


def test_the_tool_and_the_command_answer_alike(tmp_path):
    """Same stderr, stdout and exit status for a config error, as separate processes."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  num_frame: 8\n")
    runs = [subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=120)
            for cmd in ([sys.executable, str(REPO / "tools" / "train.py"), str(bad)],
                        [sys.executable, "-m", "videopeft", "train", str(bad)])]
    for proc in runs:
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith(f"error: {bad}:2: data.num_frame: unknown key (did you mean "
                                      "data.num_frames?) (keys of data: layout, ")
        assert proc.stderr.count("\n") == 1
    assert runs[0].stderr == runs[1].stderr


# ----------------------------------------------------------------------------- fast start

def test_help_and_config_errors_do_not_import_torch(tmp_path):
    """Every `--help` (the command's and the tools') and a config error, in one fresh process:
    afterwards neither torch nor timm has been imported."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: fast\n")
    code = textwrap.dedent(f"""
        import runpy, sys
        from videopeft.cli import COMMANDS, main
        from videopeft.engine.cli import run_main

        def exits(call):
            try:
                call()
            except SystemExit as stop:
                return stop.code
        codes = [exits(lambda: main(["--help"]))]
        codes += [exits(lambda: main([name, "--help"])) for name in COMMANDS]
        for tool in {TOOLS!r}:
            sys.argv = [{str(REPO / "tools")!r} + "/" + tool + ".py", "--help"]
            codes.append(exits(lambda: runpy.run_path(sys.argv[0], run_name="__main__")))
        codes.append(exits(lambda: run_main(main, ["train", {str(bad)!r}])))
        codes.append(exits(lambda: run_main(main, ["eval", "ssv2/nothing", "checkpoint=x"])))
        print(codes)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm")))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=tool_env(), cwd=tmp_path, timeout=300)
    codes, heavy = proc.stdout.strip().splitlines()[-2:]
    assert codes == str([0] * (1 + len(COMMANDS) + len(TOOLS)) + [2, 2]), proc.stderr[-2000:]
    assert heavy == "[]"
    assert "train.lr: expected float, got 'fast'" in proc.stderr


def test_a_tool_config_error_imports_no_torch_by_importtime(tmp_path):
    """`python -X importtime tools/train.py BAD.yaml` lists every module imported: no torch."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: videomae_bse\n")
    proc = subprocess.run([sys.executable, "-X", "importtime", str(REPO / "tools" / "train.py"),
                           str(bad)], capture_output=True, text=True, env=tool_env(), timeout=120)
    assert proc.returncode == 2
    imported = [ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines()
                if ln.startswith("import time:") and "|" in ln]
    assert "videopeft.config" in imported  # the listing is real
    assert [m for m in imported if m.split(".")[0] in ("torch", "timm")] == []
    assert "model.name: expected one of" in proc.stderr


# ----------------------------------------------------------------------------- installed package

@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built from a copy of the checkout and installed with pip into a folder of its
    own (`--target`, no dependencies, no index, no build isolation: offline, fast, and no venv
    touched); its `bin/videopeft`."""
    for tool in ("pip", "setuptools"):
        if importlib.util.find_spec(tool) is None:
            pytest.skip(f"{tool} is not installed: the package cannot be built offline")
    base = tmp_path_factory.mktemp("install")
    src, target = base / "src", base / "target"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "configs", src / "configs")
    shutil.copytree(REPO / "videopeft", src / "videopeft", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--no-build-isolation", "--quiet", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    script = target / "bin" / "videopeft"
    assert script.is_file()
    return script


def _run_installed(script: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed command, importing videopeft from the install folder only."""
    env = {**tool_env(), "PYTHONPATH": str(script.parents[1])}
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env,
                          cwd=script.parents[2], timeout=120)


@pytest.mark.slow  # a wheel build and 12 processes, ~20 s on 2 shared cores
def test_the_installed_command_answers_help_for_every_subcommand(installed):
    proc = _run_installed(installed, "--help")
    assert proc.returncode == 0, proc.stderr
    assert all(f"  {name}" in proc.stdout for name in COMMANDS)
    for name in COMMANDS:
        proc = _run_installed(installed, name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith(f"usage: videopeft {name} ")
        if name in CONFIG_COMMANDS:
            assert "data.num_frames = 16" in proc.stdout


@pytest.mark.slow
def test_the_installed_package_ships_its_configs(installed):
    """A shipped name resolves inside the installed package (a copy, not the checkout)."""
    proc = _run_installed(installed, "train", "ssv2/adaptmlp")
    shipped = installed.parents[1] / "videopeft" / "configs" / "ssv2" / "adaptmlp.yaml"
    assert proc.returncode == 2 and shipped.is_file() and not shipped.is_symlink()
    assert proc.stderr.startswith(f"error: {shipped}:"), proc.stderr
    assert "Traceback" not in proc.stderr
    names = sorted(p.relative_to(shipped.parents[1]).with_suffix("").as_posix()
                   for p in shipped.parents[1].rglob("*.yaml"))
    assert names == shipped_configs()
    assert os.path.commonpath([shipped, REPO]) != str(REPO)
