"""Malformed inputs through the command-line tools: each is ONE line ``error: ...`` on stderr
naming the file, line or key, exit status 2, no traceback.

Cases (10): YAML syntax error, unknown key, wrong type; a list annotation line without a label,
a label outside the class map, an SSv2 JSON entry without a field, an HMDB split file with an
unknown code (all through tools/train.py); a checkpoint of another architecture, an adapter of
another backbone (fingerprint), an adapter with a tensor of the wrong shape (tools/eval.py).

The readers' exact messages are unit-tested in test_config.py, test_data_datasets.py,
test_peft_adapter_io.py and test_models_checkpoints.py; here they go through `run_main(main)`
(the tools' `__main__` path) in-process, which is fast, and two representative cases also run
as real subprocesses to check what a user sees: stderr is exactly the one error line.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from engine_fixtures import (REPO, python, tiny_set, tiny_settings, tool_env,  # noqa: F401
                             trained_run, write_yaml)


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"reliability_tool_{name}",
                                                  REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_in_process(name: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    from videopeft.engine.cli import run_main
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        run_main(_load_tool(name).main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return info.value.code, [ln for ln in err.splitlines() if ln.startswith("error:")]


def _run_subprocess(name: str, argv: list[str]) -> subprocess.CompletedProcess:
    cmd = [python(), str(REPO / "tools" / f"{name}.py"), *map(str, argv)]
    return subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, timeout=300)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- the cases

def _yaml_syntax(tmp: Path, tiny) -> tuple[list[str], str]:
    cfg = _write(tmp / "bad.yaml", "data:\n  layout: list\n  num_frames: [8\nmodel: {}\n")
    return [cfg], f"error: {cfg}:"


def _unknown_key(tmp: Path, tiny) -> tuple[list[str], str]:
    settings = tiny_settings(tiny, tmp / "out")
    settings["train"]["epoch"] = 3
    cfg = write_yaml(tmp / "cfg.yaml", settings)
    return [cfg], "train.epoch: unknown key"


def _wrong_type(tmp: Path, tiny) -> tuple[list[str], str]:
    settings = tiny_settings(tiny, tmp / "out")
    settings["train"]["batch_size"] = "three"
    cfg = write_yaml(tmp / "cfg.yaml", settings)
    return [cfg], "train.batch_size"


def _list_config(tmp: Path, tiny, train_txt: str, val_txt: str | None = None) -> Path:
    ann = tmp / "ann"
    shutil.copytree(tiny.annotation, ann)
    _write(ann / "train.txt", train_txt)
    if val_txt is not None:
        _write(ann / "val.txt", val_txt)
    settings = tiny_settings(tiny, tmp / "out")
    settings["data"]["annotation"] = str(ann)
    return write_yaml(tmp / "cfg.yaml", settings)


def _missing_label(tmp: Path, tiny) -> tuple[list[str], str]:
    good = (Path(tiny.annotation) / "train.txt").read_text().splitlines()
    cfg = _list_config(tmp, tiny, "\n".join(good[:3] + [good[3].split()[0]] + good[4:]) + "\n")
    return [cfg], f"{tmp / 'ann' / 'train.txt'}:4: expected '<path> <label>', got "


def _label_not_in_map(tmp: Path, tiny) -> tuple[list[str], str]:
    good = (Path(tiny.annotation) / "train.txt").read_text().splitlines()
    bad = good[:1] + [good[1].split()[0] + " 7"] + good[2:]
    cfg = _list_config(tmp, tiny, "\n".join(bad) + "\n")
    return [cfg], (f"{tmp / 'ann' / 'train.txt'}:2: label 7 not in the class map "
                   f"(classes.txt has 3 classes)")


def _ssv2_missing_field(tmp: Path, tiny) -> tuple[list[str], str]:
    ann = tmp / "ssv2"
    _write(ann / "something-something-v2-labels.json",
           json.dumps({"Moving something up": "0", "Pushing something": "1"}))
    entries = [{"id": str(i), "template": "Moving [something] up"} for i in range(5)]
    entries.insert(3, {"id": "99", "label": "Pushing a box"})
    bad = _write(ann / "something-something-v2-train.json", json.dumps(entries))
    _write(ann / "something-something-v2-validation.json", json.dumps(entries[:1]))
    settings = tiny_settings(tiny, tmp / "out")
    settings["data"].update(layout="ssv2", root=str(tmp), annotation=str(ann))
    return [write_yaml(tmp / "cfg.yaml", settings)], f"{bad}: entry 3: missing field 'template'"


def _hmdb_unknown_code(tmp: Path, tiny) -> tuple[list[str], str]:
    ann = tmp / "splits"
    _write(ann / "brush_hair_test_split1.txt", "a.avi 1 \nb.avi 2 \n")
    bad = _write(ann / "cartwheel_test_split1.txt", "c.avi 1 \nd.avi 2 \ne.avi 7 \n")
    settings = tiny_settings(tiny, tmp / "out")
    settings["data"].update(layout="hmdb51", root=str(tmp), annotation=str(ann))
    return ([write_yaml(tmp / "cfg.yaml", settings)],
            f"{bad}:3: unknown split code '7' (expected 0, 1 or 2)")


TRAIN_CASES = {"yaml_syntax": _yaml_syntax, "unknown_key": _unknown_key, "wrong_type": _wrong_type,
               "missing_label": _missing_label, "label_not_in_class_map": _label_not_in_map,
               "ssv2_missing_field": _ssv2_missing_field, "hmdb_unknown_code": _hmdb_unknown_code}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_input_errors_are_one_line_naming_the_place(tiny_set, tmp_path, capsys, case):
    argv, expected = TRAIN_CASES[case](tmp_path, tiny_set)
    status, errors = _run_in_process("train", argv, capsys)
    assert status == 2
    assert len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / "out" / "results.json").exists()


def _eval_config(tmp: Path, tiny, **sections) -> Path:
    return write_yaml(tmp / "cfg.yaml", tiny_settings(tiny, tmp / "out", **sections))


def _other_arch_checkpoint(tmp: Path, tiny, run: Path) -> tuple[list[str], str]:
    """A plain weight file of a 64-wide model, evaluated with the 48-wide tiny config."""
    import videopeft
    from videopeft.models.checkpoints import save_pretrained
    model = videopeft.create_model("videomae_tiny", num_classes=len(tiny.class_names),
                                   num_frames=4, img_size=32, embed_dim=64, num_heads=4)
    path = tmp / "wide.safetensors"
    save_pretrained(model, path)
    return [_eval_config(tmp, tiny), f"checkpoint={path}"], str(path)


def _other_backbone_adapter(tmp: Path, tiny, run: Path) -> tuple[list[str], str]:
    """The run's adapter onto a backbone initialised from another seed: fingerprints differ."""
    return ([_eval_config(tmp, tiny), f"checkpoint={run / 'adapter.safetensors'}", "seed=1"],
            "fingerprint")


def _wrong_shape_adapter(tmp: Path, tiny, run: Path) -> tuple[list[str], str]:
    from safetensors import safe_open
    from safetensors.torch import save_file
    source = run / "adapter.safetensors"
    with safe_open(str(source), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = sorted(k for k in tensors if "lora_down" in k)[0]
    tensors[key] = torch.zeros(tensors[key].shape[0] + 2, *tensors[key].shape[1:])
    path = tmp / "reshaped.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return [_eval_config(tmp, tiny), f"checkpoint={path}"], key


EVAL_CASES = {"checkpoint_of_another_arch": _other_arch_checkpoint,
              "adapter_of_another_backbone": _other_backbone_adapter,
              "adapter_tensor_of_wrong_shape": _wrong_shape_adapter}


@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_eval_weight_errors_are_one_line_naming_the_file_and_key(tiny_set, trained_run, tmp_path,
                                                                 capsys, case):
    argv, expected = EVAL_CASES[case](tmp_path, tiny_set, trained_run)
    status, errors = _run_in_process("eval", argv, capsys)
    assert status == 2
    assert len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("tool, case", [("train", "missing_label"),
                                        ("eval", "adapter_tensor_of_wrong_shape")])
def test_as_a_subprocess_the_error_is_one_line_without_traceback(tiny_set, trained_run, tmp_path,
                                                                 tool, case):
    """A config or annotation error comes before any logging: stderr is exactly that line. Eval
    logs its INFO lines (method applied, parameter table) to stderr before the weights are read,
    so there the error is the one `error:` line and the last line (as in test_tools.py)."""
    if tool == "train":
        argv, expected = TRAIN_CASES[case](tmp_path, tiny_set)
    else:
        argv, expected = EVAL_CASES[case](tmp_path, tiny_set, trained_run)
    proc = _run_subprocess(tool, argv)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1] and expected in errors[0], lines
    if tool == "train":
        assert lines == errors
    assert proc.stdout == ""
