"""Run configuration: one dataclass per YAML section, YAML loading and dotted overrides.

A config file is YAML whose top-level keys are the sections below (`data`, `model`, `method`,
`train`, `eval`, `pretrain`) plus a few scalars (`output_dir`, `seed`, `device`). Every problem in a
file (unknown key, wrong type, missing path, out-of-range value) is collected and reported together
as one line per problem, `FILE:LINE: key: expected ..., got ...`, before any work starts.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError", "DataConfig", "ModelConfig", "TrainConfig", "EvalConfig", "PretrainConfig",
    "RunConfig", "load_config", "parse_overrides", "config_to_dict", "save_config",
]


class ConfigError(ValueError):
    """A configuration problem; the message has one line per problem, each naming file and key."""


@dataclass
class DataConfig:
    """Where the videos are and how clips are cut from them."""

    layout: str = "list"  # ssv2 | hmdb51 | kinetics | list
    root: str = ""  # folder the annotation's paths are relative to
    annotation: str = ""  # annotation file or folder (layout-specific; empty = layout default)
    split: str = "train"  # train | val (the evaluation split is named by eval.split)
    hmdb_split: int = 1  # HMDB51 official split 1..3
    num_frames: int = 16  # frames per clip fed to the model
    img_size: int = 224
    sampling: str = "segment"  # segment (TSN, SSv2) | dense (Kinetics/HMDB: stride)
    stride: int = 4  # frame stride for dense sampling
    short_video: str = "repeat_last"  # repeat_last | loop: how short videos are padded
    backend: str = "auto"  # auto | decord | pyav | torchcodec
    workers: int = 2
    flip: bool = False  # horizontal flip; off for direction-dependent labels (SSv2, synthetic)
    rand_augment: str = ""  # timm RandAugment string, e.g. "rand-m7-n4-mstd0.5-inc1"; "" = off
    random_erasing: float = 0.0
    scale: tuple[float, float] = (0.08, 1.0)  # random-resized-crop area range
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    max_retries: int = 10  # train: other clips drawn after a decode failure before giving up
    cache_mb: int = 0  # train: keep decoded videos in memory, up to this many MiB per process

    def __post_init__(self) -> None:
        _check_choice("layout", self.layout, ("ssv2", "hmdb51", "kinetics", "list"))
        _check_choice("sampling", self.sampling, ("segment", "dense"))
        _check_choice("backend", self.backend, ("auto", "decord", "pyav", "torchcodec"))
        _check_choice("short_video", self.short_video, ("repeat_last", "loop"))
        _check_positive("num_frames", self.num_frames)
        _check_positive("img_size", self.img_size)
        _check_positive("stride", self.stride)
        if self.cache_mb < 0:
            raise ConfigError(f"cache_mb: expected 0 (off) or a positive number of MiB, "
                              f"got {self.cache_mb!r}")


@dataclass
class ModelConfig:
    """Which backbone to build and which weights to start from."""

    name: str = "videomae_base"
    pretrained: str = ""  # checkpoint file or HF directory; "" = random init
    num_classes: int = 0  # 0 = taken from the dataset's class list
    tubelet_size: int = 2
    patch_size: int = 16
    drop_path_rate: float = 0.0
    use_checkpoint: bool = False  # gradient checkpointing
    overrides: dict[str, Any] = field(default_factory=dict)  # extra create_model kwargs


@dataclass
class TrainConfig:
    """Optimisation recipe."""

    epochs: int = 30
    max_steps: int = 0  # > 0: stop after this many optimizer steps
    batch_size: int = 8  # per process
    accum_steps: int = 1
    opt: str = "adamw"  # any timm optimizer name (adamw, sgd, ...)
    lr: float = 0.0  # absolute lr; 0 = blr * global_batch / 256
    blr: float = 1e-3
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    momentum: float = 0.9
    layer_decay: float = 1.0  # 1.0 = off; VideoMAE fine-tuning uses 0.75
    warmup_epochs: float = 5.0
    clip_grad: float = 0.0  # 0 = off
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.0
    ema: float = 0.0  # 0 = off, else decay (e.g. 0.9999)
    eval_every: int = 1  # epochs between validation passes; 0 = only at the end
    log_every: int = 10  # steps between log lines
    save_every: int = 1  # epochs between checkpoints
    save_every_steps: int = 0  # > 0: also checkpoint every N steps
    keep_last: int = 2
    resume: str = ""  # "" | auto | path to a checkpoint
    compile: bool = False


@dataclass
class EvalConfig:
    """Multi-view evaluation protocol."""

    split: str = "val"
    views_temporal: int = 2
    views_spatial: int = 3
    fusion: str = "softmax_mean"  # softmax_mean | logit_mean | max
    batch_size: int = 8  # videos per batch (all their views go through together)
    short_side: int = 0  # 0 = img_size

    def __post_init__(self) -> None:
        _check_choice("fusion", self.fusion, ("softmax_mean", "logit_mean", "max"))
        _check_positive("views_temporal", self.views_temporal)
        _check_choice("views_spatial", self.views_spatial, (1, 3))


@dataclass
class PretrainConfig:
    """VideoMAE masked-autoencoder pretraining."""

    mask_ratio: float = 0.9
    decoder_dim: int = 192
    decoder_depth: int = 4
    decoder_heads: int = 3
    normalize_target: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio: expected a value in (0, 1), got {self.mask_ratio}")


@dataclass
class RunConfig:
    """A whole run: one field per YAML section."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: dict[str, Any] = field(default_factory=lambda: {"name": "linear"})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    output_dir: str = ""  # "" = runs/<config-stem>-<time>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N


def _check_choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: expected one of {list(choices)}, got {value!r}")


def _check_positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")


# ----------------------------------------------------------------------------- loading

class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key (1-based)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    lines = {}
    for key_node, _ in node.value:
        lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1
    return _LinedDict(mapping, lines)


class _LinedDict(dict):
    def __init__(self, data: dict, lines: dict) -> None:
        super().__init__(data)
        self.lines = lines


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(), Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    if data is None:
        return _LinedDict({}, {})
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of sections, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise TypeError with what was expected."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise TypeError(f"a list of {len(args)} numbers")
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError("a mapping")
        return dict(value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError("a list")
        return list(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("int")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("float")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError("str")
        return value
    return value


def _build_section(cls: type, values: dict, where: str, lines: dict, errors: list[str],
                   cli_keys: frozenset = frozenset()) -> Any:
    """Build dataclass `cls` from `values`, appending one message per bad key to `errors`.

    Keys in `cli_keys` came from a command-line override and are reported as such.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        line = lines.get(key)
        loc = "command line" if key in cli_keys else (f"{where}:{line}" if line else where)
        if key not in names:
            near = [n for n in sorted(names) if n.startswith(str(key)[:3])]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            errors.append(f"{loc}: {_section_name(cls)}.{key}: unknown key{hint}")
            continue
        try:
            kwargs[key] = _coerce(value, hints[key])
        except TypeError as err:
            errors.append(f"{loc}: {_section_name(cls)}.{key}: expected {err}, got {value!r}")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        line = lines.get(str(err).split(":")[0])
        loc = f"{where}:{line}" if line else where
        errors.append(f"{loc}: {_section_name(cls)}.{err}")
        return None


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig,
             "pretrain": PretrainConfig}


def _section_name(cls: type) -> str:
    return {v: k for k, v in _SECTIONS.items()}.get(cls, cls.__name__)


def parse_overrides(items: list[str]) -> dict:
    """Turn `["train.lr=0.1", "data.root=/x"]` into a nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"command line: {item!r}: expected dotted.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict, extra: dict) -> dict:
    merged = _LinedDict(dict(base), dict(getattr(base, "lines", {})))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_PATH_KEYS = (("data", "root"), ("data", "annotation"), ("model", "pretrained"))


def load_config(path: str | os.PathLike | None, overrides: list[str] | dict | None = None,
                *, check_paths: bool = True) -> RunConfig:
    """Read a YAML file (or none), apply dotted overrides, validate everything, return RunConfig.

    Raises ConfigError listing every problem, one line each, naming the file, line and key.
    """
    src = Path(path) if path else None
    raw = _read_yaml(src) if src else _LinedDict({}, {})
    where = str(src) if src else "<defaults>"
    extra = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    file_method = raw.get("method")
    cli_method = extra.get("method")
    if (isinstance(file_method, dict) and isinstance(cli_method, dict) and "name" in cli_method
            and cli_method["name"] != file_method.get("name")):
        # another method from the command line: the file's method keys belong to the old one
        raw = _LinedDict({k: v for k, v in raw.items() if k != "method"}, getattr(raw, "lines", {}))
    merged = _merge(raw, extra)
    top_lines = getattr(raw, "lines", {})
    errors: list[str] = []
    kwargs: dict[str, Any] = {}
    scalars = {"output_dir": str, "seed": int, "device": str}
    for key, value in merged.items():
        from_cli = key in extra and not isinstance(extra.get(key), dict)
        loc = "command line" if from_cli else (f"{where}:{top_lines[key]}" if key in top_lines else where)
        if key in _SECTIONS:
            if not isinstance(value, dict):
                errors.append(f"{loc}: {key}: expected a mapping, got {value!r}")
                continue
            lines = getattr(value, "lines", {})
            cli = extra.get(key) if isinstance(extra.get(key), dict) else {}
            kwargs[key] = _build_section(_SECTIONS[key], value, where, lines, errors,
                                         frozenset(cli))
        elif key == "method":
            if not isinstance(value, dict) or "name" not in value:
                errors.append(f"{loc}: method: expected a mapping with a 'name', got {value!r}")
                continue
            kwargs[key] = dict(value)
            err = _check_method(kwargs[key])
            if err:
                line = getattr(value, "lines", {}).get(err[0])
                errors.append(f"{where}:{line}: {err[1]}" if line else f"{where}: {err[1]}")
        elif key in scalars:
            try:
                kwargs[key] = _coerce(value, scalars[key])
            except TypeError as err:
                errors.append(f"{loc}: {key}: expected {err}, got {value!r}")
        else:
            errors.append(f"{loc}: {key}: unknown key (sections: {', '.join(_SECTIONS)}, method, "
                          f"{', '.join(scalars)})")
    cfg = None
    if not errors:
        cfg = RunConfig(**kwargs)
        if check_paths:
            for section, key in _PATH_KEYS:
                value = getattr(getattr(cfg, section), key)
                if value and not Path(value).exists():
                    line = getattr(raw.get(section, {}), "lines", {}).get(key)
                    loc = f"{where}:{line}" if line else where
                    errors.append(f"{loc}: {section}.{key}: path not found: {value}")
    if errors:
        raise ConfigError("\n".join(errors))
    return cfg


def _check_method(method: dict) -> tuple[str, str] | None:
    """Validate a method mapping against its peft dataclass; return (key, message) on error."""
    try:
        from videopeft.peft import method_config  # deferred: peft imports models
    except ImportError:
        return None
    try:
        method_config(method)
    except ConfigError as err:
        msg = str(err)
        key = msg.split(":")[0].removeprefix("method.")
        return key, msg
    return None


def config_to_dict(cfg: RunConfig) -> dict:
    """The resolved config as plain YAML-serialisable data."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v
    return plain(dataclasses.asdict(cfg))


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write the resolved config so `load_config(path)` gives it back exactly."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
