"""Config errors name the file, the line and the key, one line per problem, before any work.

Also: every shipped config under configs/ loads, and a saved config reads back identically.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from videopeft.config import (ConfigError, DataConfig, RunConfig, build_run_config, load_config,
                              save_config)
from videopeft.peft.config import AdaptMLPConfig, LoraConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(p for p in CONFIG_DIR.glob("*/*.yaml") if p.parent.name != "demo")
DEMO_CONFIGS = sorted((CONFIG_DIR / "demo").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    return str(info.value)


def test_unknown_key_names_file_line_key_the_closest_and_every_valid_key(tmp_path):
    path = write(tmp_path, "data:\n  layout: list\n  num_frame: 8\n")
    keys = ", ".join(f.name for f in dataclasses.fields(DataConfig))
    assert error_of(path) == (f"{path}:3: data.num_frame: unknown key (did you mean "
                              f"data.num_frames?) (keys of data: {keys})")


def test_wrong_type_names_file_line_key_and_expectation(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  lr: fast\n")
    assert error_of(path) == f"{path}:3: train.lr: expected float, got 'fast'"


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error_of(missing) == f"{missing}: config file not found"


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "data:\n  layout: list\n  root: [a, b\ntrain: {}\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}:4: YAML syntax error") and "\n" not in msg


def test_unknown_method_key_names_the_method_and_its_keys(tmp_path):
    path = write(tmp_path, "method:\n  name: lora\n  rnk: 4\n")
    msg = error_of(path)
    assert msg.startswith(f"{path}:3: method.rnk: expected a key of method 'lora'")
    assert "rank" in msg and "\n" not in msg


def test_wrong_method_value_type(tmp_path):
    path = write(tmp_path, "method:\n  name: lora\n  rank: eight\n")
    assert error_of(path) == f"{path}:3: method.rank: expected int, got 'eight'"


def test_unknown_method_name(tmp_path):
    path = write(tmp_path, "method:\n  name: lorax\n")
    assert "method.name: expected one of" in error_of(path)


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "trian:\n  epochs: 3\n")
    assert error_of(path).startswith(f"{path}:1: trian.epochs: unknown key (did you mean "
                                     f"train.epochs?) (sections: data, model, train,")
    path = write(tmp_path, "trian:\n  epochs: 3\n  lr: 0.1\n")
    assert error_of(path).startswith(f"{path}:1: trian: unknown key (did you mean train?)")


def test_missing_data_path_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, f"data:\n  layout: list\n  root: {tmp_path / 'no_videos'}\n")
    assert error_of(path) == f"{path}:3: data.root: path not found: {tmp_path / 'no_videos'}"
    load_config(path, check_paths=False)  # the same file without the path check is fine


def test_bad_command_line_override_says_command_line(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n")
    assert error_of(path, ["train.lr=abc"]) == "command line: train.lr: expected float, got 'abc'"


def test_every_problem_is_reported_at_once_one_line_each(tmp_path):
    path = write(tmp_path, "data:\n  num_frame: 8\ntrain:\n  lr: fast\nmethod:\n  name: lora\n"
                           "  rnk: 4\n")
    lines = error_of(path).splitlines()
    assert [ln.split(": ")[0] for ln in lines] == [f"{path}:2", f"{path}:4", f"{path}:7"]


def test_overrides_are_applied_and_typed(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n")
    cfg = load_config(path, ["train.lr=0.5", "data.num_frames=8", "method.name=vpt"])
    assert (cfg.train.lr, cfg.data.num_frames, cfg.method.name, cfg.train.epochs) == \
        (0.5, 8, "vpt", 3)


def test_saved_config_reads_back_identically(tmp_path):
    cfg = load_config(None, {"method": {"name": "lora", "rank": 4}, "train": {"lr": 0.1}})
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", check_paths=False) == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_config_loads(path):
    cfg = load_config(path, check_paths=False)
    assert isinstance(cfg, RunConfig)
    first, second = path.read_text().splitlines()[:2]
    assert first.startswith("# ") and ("recipe" in first.lower() or "pre-training" in first)
    assert second.startswith("# Run: ") and path.parent.name + "/" + path.name in second


def test_every_dataset_has_every_method():
    names = {(p.parent.name, p.stem) for p in CONFIGS}
    for dataset in ("ssv2", "hmdb51", "kinetics400", "synthetic"):
        for method in ("adaptmlp", "vpt", "lora", "linear", "full"):
            assert (dataset, method) in names


def test_a_method_name_on_the_command_line_replaces_the_files_method(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method:\n  name: lora\n  rank: 4\n")
    cfg = load_config(path, ["method.name=adaptmlp", "method.bottleneck=8"], check_paths=False)
    assert cfg.method == AdaptMLPConfig(bottleneck=8)
    same = load_config(path, ["method.rank=2"], check_paths=False)
    assert same.method == LoraConfig(rank=2)


@pytest.mark.parametrize("path", DEMO_CONFIGS, ids=lambda p: p.name)
def test_demo_configs_load_and_their_base_sections_are_valid_run_configs(path):
    from videopeft.studies.demo import DemoConfig, load_demo_config

    demo, base = load_demo_config(path)
    assert isinstance(demo, DemoConfig)
    assert isinstance(build_run_config(base, check_paths=False), RunConfig)
    assert path.read_text().splitlines()[2].startswith("# Run: ") or "# Run: " in path.read_text()


def test_a_misspelt_model_name_is_one_line_with_the_closest_name(tmp_path):
    path = write(tmp_path, "model:\n  name: videomae_bsae\n")
    assert error_of(path) == (f"{path}:2: model.name: expected one of ['videomae_tiny', "
                              "'videomae_small', 'videomae_base', 'videomae_large', "
                              "'videomae_huge'], got 'videomae_bsae' (did you mean videomae_base?)")


def test_a_bad_amp_is_caught_with_the_config_not_after_loading(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 2\n  amp: bf32\n")
    assert error_of(path).startswith(f"{path}:3: train.amp: expected one of ['auto', 'bf16', "
                                     f"'fp16', 'off'], got 'bf32'")


def test_every_bad_key_of_one_section_is_reported(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 0\n  amp: fast\n  layer_decay: 2\n")
    lines = error_of(path).splitlines()
    assert [ln.split(": ")[:2] for ln in lines] == [
        [f"{path}:2", "train.epochs"], [f"{path}:4", "train.layer_decay"], [f"{path}:3", "train.amp"]]


def test_frames_and_size_must_fit_the_tubelet_and_patch_grid(tmp_path):
    path = write(tmp_path, "data:\n  num_frames: 7\n  img_size: 100\n")
    assert error_of(path).splitlines() == [
        f"{path}:2: data.num_frames: expected a multiple of model.tubelet_size=2, got 7",
        f"{path}:3: data.img_size: expected a multiple of model.patch_size=16, got 100"]


def test_a_typo_on_the_command_line_is_blamed_on_the_command_line(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n")
    assert error_of(path, ["train.lrr=0.1"]).startswith(
        "command line: train.lrr: unknown key (did you mean train.lr?) (keys of train: epochs, ")
    assert error_of(path, ["trian.lr=0.1"]).startswith(
        "command line: trian.lr: unknown key (did you mean train.lr?) (sections: ")


def test_a_new_model_name_on_the_command_line_drops_the_files_overrides(tmp_path):
    path = write(tmp_path, "model:\n  name: videomae_base\n  overrides: {depth: 2}\n")
    assert load_config(path, check_paths=False).model.overrides == {"depth": 2}
    small = load_config(path, ["model.name=videomae_small"], check_paths=False)
    assert (small.model.name, small.model.overrides) == ("videomae_small", {})


def test_pretrain_decoder_follows_the_model_unless_the_config_sets_it():
    """A videomae_base pre-training config without a pretrain: section gets ViT-B's decoder (384
    wide, 4 blocks), not the small model's 192."""
    from videopeft.engine.pretrain import PretrainTask

    def decoder_of(overrides: list[str]) -> tuple[int, int]:
        cfg = load_config(None, ["model.name=videomae_base", "data.num_frames=2",
                                 "data.img_size=16", *overrides], check_paths=False)
        model = PretrainTask(cfg).build(cfg, [])
        return model.encoder_to_decoder.out_features, len(model.decoder.blocks)

    assert decoder_of([]) == (384, 4)
    assert decoder_of(["pretrain.decoder_dim=192", "pretrain.decoder_depth=2"]) == (192, 2)
