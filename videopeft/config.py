"""Run configuration: one dataclass per YAML section, YAML loading and dotted overrides.

A config file is YAML whose top-level keys are the sections below (`data`, `model`, `method`,
`train`, `eval`, `pretrain`) plus a few scalars (`output_dir`, `seed`, `device`). Every problem in a
file or on the command line (unknown key, wrong type, missing path, out-of-range value) is collected
and reported together, one line each, before any work starts:

    configs/ssv2/lora.yaml:14: method.rank: expected int, got 'eight'
    command line: trian.lr: unknown key (did you mean train.lr?) (sections: data, model, ...)

`RunConfig.method` is the method's own dataclass (`videopeft.peft.config`), resolved here. The
module imports neither torch nor the model code, so a command line answers `--help` and config
mistakes at once.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from videopeft.constants import (AMPS, ANTIALIAS_CHOICES, AUGMENT_MODES, BACKENDS, CROPS,
                                 DENSE_TRAIN_RULES, FUSIONS, IMAGENET_MEAN, IMAGENET_STD, LAYOUTS,
                                 MISSING_POLICIES, NO_WEIGHT_DECAY,
                                 POS_POLICIES, SAMPLINGS, SHORT_VIDEO_POLICIES, SPATIAL_VIEWS,
                                 SPLITS)
from videopeft.data.annotations import HMDB_SPLITS
from videopeft.errors import ConfigError, Problem, check, did_you_mean, one_of, positive_int
from videopeft.io import atomic_write_text
from videopeft.models.archs import MODEL_ARCHS
from videopeft.peft.config import METHOD_CONFIGS, LinearConfig, PeftConfig

__all__ = [
    "ConfigError", "DataConfig", "ModelConfig", "TrainConfig", "EvalConfig", "PretrainConfig",
    "RunConfig", "Sources", "read_sources", "build_section", "build_run_config", "load_config",
    "method_config", "parse_overrides", "config_to_dict", "save_config", "SECTIONS",
]


def _non_negative(key: str, value: Any) -> Problem | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    return None if ok else Problem(f"expected a number >= 0, got {value!r}", key)


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
    dense_train: str = "linspace"  # linspace (VideoMAE fine-tune) | stride (pre-train, AdaptFormer)
    short_video: str = "repeat_last"  # repeat_last | loop: how short videos are padded
    on_missing: str = "skip"  # listed videos not on disk: skip (train leaves them out) | error
    backend: str = "auto"  # auto | decord | pyav | torchcodec
    workers: int = 2
    flip: bool = False  # horizontal flip; off for direction-dependent labels (SSv2, synthetic)
    rand_augment: str = ""  # timm RandAugment string, e.g. "rand-m7-n4-mstd0.5-inc1"; "" = off
    random_erasing: float = 0.0
    crop: str = "random_resized"  # random_resized (VideoMAE fine-tune) | multi_scale (TSN, AdaptFormer)
    scale: tuple[float, float] = (0.08, 1.0)  # random-resized-crop area range
    antialias: bool | str = "auto"  # auto (as the official pipeline at each resize) | true | false
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    max_retries: int = 10  # train: other clips drawn after a decode failure before giving up
    cache_mb: int = 0  # train: keep decoded videos in memory, up to this many MiB per process
    # where augmentation runs: auto (device on CUDA) | worker | device (workers decode and cut
    # uint8 crops; resize, flip, RandAugment, normalisation and erasing run batched on the device)
    augment: str = "auto"
    num_sample: int = 1  # train: augmented clips cut from each decoded video (VideoMAE --num_sample)
    # decode frames with at most this short side (px); 0 = auto: only as small as no crop needs
    # (see videopeft.data.transforms.decode_short_side), which leaves 240p/320p datasets untouched
    decode_short_side: int = 0
    decode_threads: int = 1  # decoder threads per DataLoader worker (the workers are the parallelism)

    def __post_init__(self) -> None:
        check(one_of("layout", self.layout, LAYOUTS),
              one_of("split", self.split, SPLITS),
              one_of("sampling", self.sampling, SAMPLINGS),
              one_of("dense_train", self.dense_train, DENSE_TRAIN_RULES),
              one_of("crop", self.crop, CROPS),
              one_of("antialias", self.antialias, ANTIALIAS_CHOICES),
              one_of("backend", self.backend, BACKENDS),
              one_of("augment", self.augment, AUGMENT_MODES),
              positive_int("num_sample", self.num_sample),
              positive_int("decode_threads", self.decode_threads),
              _non_negative("decode_short_side", self.decode_short_side),
              one_of("short_video", self.short_video, SHORT_VIDEO_POLICIES),
              one_of("on_missing", self.on_missing, MISSING_POLICIES),
              one_of("hmdb_split", self.hmdb_split, HMDB_SPLITS),
              positive_int("num_frames", self.num_frames),
              positive_int("img_size", self.img_size),
              positive_int("stride", self.stride),
              _non_negative("workers", self.workers),
              _non_negative("max_retries", self.max_retries),
              None if 0.0 <= self.random_erasing <= 1.0 else
              Problem(f"expected a probability in [0, 1], got {self.random_erasing!r}",
                      "random_erasing"),
              None if 0.0 < self.scale[0] <= self.scale[1] <= 1.0 else
              Problem(f"expected 0 < low <= high <= 1, got {list(self.scale)}", "scale"),
              None if self.cache_mb >= 0 else
              Problem(f"expected 0 (off) or a positive number of MiB, got {self.cache_mb!r}",
                      "cache_mb"))


@dataclass
class ModelConfig:
    """Which backbone to build and which weights to start from."""

    name: str = "videomae_base"  # videomae_tiny | _small | _base | _large | _huge
    pretrained: str = ""  # checkpoint file or HF directory; "" = random init
    num_classes: int = 0  # 0 = taken from the dataset's class list
    tubelet_size: int = 2
    patch_size: int = 16
    drop_path_rate: float = 0.0
    # > 0: head.weight ~ trunc_normal(std) once the weights are loaded (AdaptFormer: 0.01);
    # 0 keeps VideoMAE's head init, trunc_normal(0.02) x init_scale 0.001
    head_init_std: float = 0.0
    use_checkpoint: bool = False  # gradient checkpointing
    pos_policy: str = "regenerate"  # regenerate (VideoMAE) | resample: position table at another T/size
    overrides: dict[str, Any] = field(default_factory=dict)  # extra create_model kwargs

    def __post_init__(self) -> None:
        check(one_of("name", self.name, tuple(MODEL_ARCHS)),
              positive_int("tubelet_size", self.tubelet_size),
              positive_int("patch_size", self.patch_size),
              _non_negative("num_classes", self.num_classes),
              _non_negative("head_init_std", self.head_init_std),
              None if 0.0 <= self.drop_path_rate < 1.0 else
              Problem(f"expected a rate in [0, 1), got {self.drop_path_rate!r}", "drop_path_rate"),
              one_of("pos_policy", self.pos_policy, POS_POLICIES))


@dataclass
class TrainConfig:
    """Optimisation recipe."""

    epochs: int = 30
    max_steps: int = 0  # > 0: stop after this many optimizer steps
    batch_size: int = 8  # per process
    accum_steps: int = 1
    global_batch: int = 0  # > 0: accum_steps = global_batch / (world size * batch_size)
    opt: str = "adamw"  # any timm optimizer name (adamw, sgd, ...)
    lr: float = 0.0  # absolute lr; 0 = blr * global_batch / 256
    blr: float = 1e-3
    min_lr: float = 1e-6
    warmup_lr: float = 0.0  # lr at the start of warmup (scaled like min_lr when lr is 0)
    weight_decay: float = 0.05
    # besides biases and 1-D tensors, the parameters (exact names) that get no weight decay
    no_weight_decay: tuple[str, ...] = NO_WEIGHT_DECAY
    momentum: float = 0.9
    layer_decay: float = 1.0  # 1.0 = off; VideoMAE fine-tuning uses 0.75
    warmup_epochs: float = 5.0
    clip_grad: float = 0.0  # 0 = off
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.0
    ema: float = 0.0  # 0 = off, else decay (e.g. 0.9999)
    sync_bn: bool = False  # BatchNorm statistics over all GPUs (SyncBatchNorm); off = per process
    eval_every: int = 1  # epochs between validation passes; 0 = only at the end
    log_every: int = 10  # steps between log lines
    save_every: int = 1  # epochs between checkpoints
    save_every_steps: int = 0  # > 0: also checkpoint every N steps
    keep_last: int = 2
    resume: str = ""  # "" | auto | path to a checkpoint
    compile: bool = False

    def __post_init__(self) -> None:
        check(positive_int("epochs", self.epochs),
              positive_int("batch_size", self.batch_size),
              positive_int("accum_steps", self.accum_steps),
              positive_int("log_every", self.log_every),
              *(_non_negative(k, getattr(self, k)) for k in (
                  "max_steps", "lr", "blr", "min_lr", "warmup_lr", "weight_decay", "momentum",
                  "warmup_epochs", "clip_grad", "mixup", "cutmix", "eval_every", "save_every",
                  "save_every_steps", "keep_last", "global_batch")),
              self._global_batch_problem(),
              None if 0.0 < self.layer_decay <= 1.0 else
              Problem(f"expected a factor in (0, 1] (1 = off), got {self.layer_decay!r}",
                      "layer_decay"),
              None if 0.0 <= self.label_smoothing < 1.0 else
              Problem(f"expected a value in [0, 1), got {self.label_smoothing!r}",
                      "label_smoothing"),
              None if 0.0 <= self.ema < 1.0 else
              Problem(f"expected 0 (off) or a decay in (0, 1), got {self.ema!r}", "ema"),
              one_of("amp", self.amp, AMPS))

    def _global_batch_problem(self) -> Problem | None:
        """global_batch sets the accumulation itself, so it excludes accum_steps and must hold
        whole per-process batches (the world size is checked when training starts)."""
        if not isinstance(self.global_batch, int) or self.global_batch <= 0:
            return None
        if self.accum_steps != 1:
            return Problem(f"expected accum_steps 1 with global_batch {self.global_batch} (the "
                           f"engine derives it), got {self.accum_steps}", "accum_steps")
        if isinstance(self.batch_size, int) and self.batch_size > 0 \
                and self.global_batch % self.batch_size:
            return Problem(f"expected a multiple of batch_size {self.batch_size}, got "
                           f"{self.global_batch}", "global_batch")
        return None


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
        check(one_of("fusion", self.fusion, FUSIONS),
              positive_int("views_temporal", self.views_temporal),
              one_of("views_spatial", self.views_spatial, SPATIAL_VIEWS),
              positive_int("batch_size", self.batch_size),
              _non_negative("short_side", self.short_side))


@dataclass
class PretrainConfig:
    """VideoMAE masked-autoencoder pretraining. Decoder sizes left empty (null) take the
    variant's official decoder (`videopeft.models.archs.DECODER_ARCHS`)."""

    mask_ratio: float = 0.9
    decoder_dim: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None
    normalize_target: bool = True

    def __post_init__(self) -> None:
        check(None if 0.0 < self.mask_ratio < 1.0 else
              Problem(f"expected a value in (0, 1), got {self.mask_ratio}", "mask_ratio"),
              *(positive_int(k, getattr(self, k)) for k in (
                  "decoder_dim", "decoder_depth", "decoder_heads") if getattr(self, k) is not None))


@dataclass
class RunConfig:
    """A whole run: one field per YAML section."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: PeftConfig = field(default_factory=LinearConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    output_dir: str = ""  # "" = runs/<config-stem>-<time>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
                             "eval": EvalConfig, "pretrain": PretrainConfig}
_SCALARS: dict[str, type] = {"output_dir": str, "seed": int, "device": str}
_PATH_KEYS = (("data", "root"), ("data", "annotation"), ("model", "pretrained"))
_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- values

def _describe(tp: Any) -> str:
    """What a type accepts, as a user reads it: int, float, true or false, a list of ..."""
    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} numbers" if all(a in (int, float) for a in args) \
            else f"a list of {len(args)} values"
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any) -> Any:
    """`value` (as YAML parsed it) as type `tp`; TypeError(what was expected) otherwise.

    Ints pass for floats; a single string passes for a tuple of strings (`targets: attn.qkv`).
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return coerce(value, arm)
            except TypeError:
                pass
        raise TypeError(_describe(tp))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        variadic = origin is list or (len(args) == 2 and args[1] is Ellipsis)
        if isinstance(value, str) and origin is tuple and variadic:
            value = [value]
        if isinstance(value, range):
            value = list(value)
        if not isinstance(value, (list, tuple)) or (not variadic and len(value) != len(args)):
            raise TypeError(_describe(tp))
        try:
            items = [coerce(v, args[0] if variadic else a)
                     for v, a in zip(value, args * len(value) if variadic else args)]
        except TypeError:
            raise TypeError(_describe(tp)) from None
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(_describe(tp))
        return dict(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {bool: isinstance(value, bool), int: number and isinstance(value, int), float: number,
          str: isinstance(value, str)}.get(tp, True)
    if not ok:
        raise TypeError(_describe(tp))
    return float(value) if tp is float else value


# ----------------------------------------------------------------------------- sources

class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key (1-based)."""


class _LinedDict(dict):
    """A mapping that knows the YAML line of each of its keys."""

    def __init__(self, data: Mapping, lines: Mapping | None = None) -> None:
        super().__init__(data)
        self.lines = dict(lines or {})


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    lines = {loader.construct_object(k): k.start_mark.line + 1 for k, _ in node.value}
    return _LinedDict(mapping, lines)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> _LinedDict:
    if not path.is_file():
        raise ConfigError("config file not found", where=str(path))
    try:
        data = yaml.load(path.read_text(), Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"YAML syntax error: {problem}", where=where) from None
    if data is None:
        return _LinedDict({})
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of sections, got {type(data).__name__}",
                          where=f"{path}:1")
    return data


def parse_overrides(items: list[str]) -> dict:
    """Turn `["train.lr=0.1", "data.root=/x"]` into a nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"{item!r}: expected dotted.key=value", where="command line")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.setdefault(part, {}), dict):
                raise ConfigError(f"{item!r}: {part} is given a value and sub-keys",
                                  where="command line")
            node = node[part]
        node[parts[-1]] = value
    return out


def _merge(base: Mapping, extra: Mapping) -> _LinedDict:
    merged = _LinedDict(dict(base), getattr(base, "lines", {}))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# a new name on the command line starts that section afresh: the file's other keys belong to the
# old method (its rank, bottleneck ...) or the old architecture (overrides such as embed_dim)
_RESET_BY_NAME = {"method": None, "model": ("overrides",)}


def _drop_replaced(raw: _LinedDict, cli: Mapping) -> _LinedDict:
    out = _LinedDict(raw, raw.lines)
    for section, keys in _RESET_BY_NAME.items():
        old, new = raw.get(section), cli.get(section)
        if not (isinstance(old, dict) and isinstance(new, dict) and "name" in new
                and new["name"] != old.get("name")):
            continue
        if keys is None:
            del out[section]
        else:
            dropped = {k: old[k] for k in keys if old.get(k)}
            if dropped:
                _log.warning("%s.name %s on the command line: the file's %s for %s are dropped",
                             section, new["name"], ", ".join(f"{section}.{k} {v}"
                                                             for k, v in dropped.items()),
                             old.get("name"))
            out[section] = _LinedDict({k: v for k, v in old.items() if k not in keys},
                                      getattr(old, "lines", {}))
    return out


@dataclass
class Sources:
    """A config file merged with command-line overrides, remembering where each key came from."""

    values: _LinedDict
    file: str = ""  # "" when there is no file
    cli: dict = field(default_factory=dict)

    def where(self, *path: str) -> str:
        """'command line', 'FILE:LINE' or 'FILE' for the key at `path` (e.g. "train", "lr");
        '' when there is neither a file nor an override (a mapping built in code)."""
        given: Any = self.cli
        for part in path:
            given = given.get(part) if isinstance(given, dict) else None
        if given is not None and not isinstance(given, dict):
            return "command line"
        node, line = self.values, None
        for part in path:  # only keys read from the file have a line
            line = getattr(node, "lines", {}).get(part) if isinstance(node, dict) else None
            node = node.get(part) if isinstance(node, dict) else None
        if line:
            return f"{self.file}:{line}"
        if given is not None:  # a section that only the command line names
            return "command line"
        return self.file or ("command line" if self.cli else "")

    def without(self, *sections: str) -> Sources:
        """The same sources minus some top-level sections (an application's own, e.g. `demo`)."""
        kept = _LinedDict({k: v for k, v in self.values.items() if k not in sections},
                          self.values.lines)
        return Sources(kept, self.file, {k: v for k, v in self.cli.items() if k not in sections})

    def override(self, extra: Mapping) -> Sources:
        """These sources with more overrides on top (counted as command line)."""
        cli = _merge(self.cli, extra)
        return Sources(_merge(_drop_replaced(self.values, extra), extra), self.file, dict(cli))


def read_sources(path: str | os.PathLike | None, overrides: list[str] | Mapping | None = None
                 ) -> Sources:
    """Read a YAML file (or none) and apply dotted overrides; nothing is validated yet."""
    src = Path(path) if path else None
    raw = _read_yaml(src) if src else _LinedDict({})
    cli = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    return Sources(_merge(_drop_replaced(raw, cli), cli), str(src) if src else "", cli)


# ----------------------------------------------------------------------------- building

def build_section(cls: type, values: Any, sources: Sources, section: str) -> Any:
    """Build dataclass `cls` from the mapping at `section`; ConfigError names every bad key.

    Problems carry `section.key` and where each key was written (file:line or command line).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"expected a mapping, got {values!r}", key=section,
                          where=sources.where(section))
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs, problems = {}, []
    for key, value in values.items():
        at = sources.where(section, str(key))
        if key not in names:
            problems.append(Problem(f"unknown key{did_you_mean(key, names, f'{section}.')} (keys "
                                    f"of {section}: {', '.join(names)})", f"{section}.{key}", at))
            continue
        try:
            kwargs[key] = coerce(value, hints[key])
        except TypeError as err:
            problems.append(Problem(f"expected {err}, got {value!r}", f"{section}.{key}", at))
    if problems:
        raise ConfigError(*problems)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.relocated(lambda p: _located(p.under(section), sources.where(section, p.key))
                            ) from None


def _located(problem: Problem, where: str) -> Problem:
    return problem if problem.where else dataclasses.replace(problem, where=where)


def method_config(method: Mapping[str, Any] | PeftConfig, sources: Sources | None = None
                  ) -> PeftConfig:
    """The method's dataclass from a `{"name": ..., key: value}` mapping (or the dataclass itself).

    Raises ConfigError with one line per problem, each `method.<key>: expected ..., got ...`
    (with the file and line when `sources` says where the keys were written).
    """
    sources = sources or Sources(_LinedDict({}))
    if isinstance(method, PeftConfig):
        if METHOD_CONFIGS.get(method.name) is not type(method):
            raise ConfigError(f"expected one of {list(METHOD_CONFIGS)}, got {method.name!r}",
                              key="method.name")
        return method
    if not isinstance(method, Mapping) or "name" not in method:
        raise ConfigError(f"expected a mapping with a 'name', got {method!r}", key="method",
                          where=sources.where("method"))
    name = method["name"]
    if name not in METHOD_CONFIGS:
        raise ConfigError(f"expected one of {list(METHOD_CONFIGS)}, got {name!r}"
                          f"{did_you_mean(name, METHOD_CONFIGS)}", key="method.name",
                          where=sources.where("method", "name"))
    cls = METHOD_CONFIGS[name]
    common = [f.name for f in dataclasses.fields(PeftConfig)]
    keys = [f.name for f in dataclasses.fields(cls) if f.name not in common] + common
    unknown = [k for k in method if k != "name" and k not in keys]
    problems = [Problem(f"expected a key of method {name!r} ({', '.join(keys)}), got an unknown "
                        f"key{did_you_mean(k, keys)}", f"method.{k}", sources.where("method", k))
                for k in unknown]
    try:
        built = build_section(cls, {k: v for k, v in method.items()
                                    if k != "name" and k not in unknown}, sources, "method")
    except ConfigError as err:
        problems += err.problems
    if problems:  # in the order the keys were written
        order = {f"method.{k}": i for i, k in enumerate(method)}
        raise ConfigError(*sorted(problems, key=lambda p: order.get(p.key, -1)))
    return built


def _cross_checks(cfg: RunConfig, sources: Sources) -> list[Problem]:
    """Problems that involve two sections: clip sizes the tubelet and patch grid must divide."""
    d, m = cfg.data, cfg.model
    out = []
    if d.num_frames % m.tubelet_size:
        out.append(Problem(f"expected a multiple of model.tubelet_size={m.tubelet_size}, got "
                           f"{d.num_frames}", "data.num_frames", sources.where("data", "num_frames")))
    if d.img_size % m.patch_size:
        out.append(Problem(f"expected a multiple of model.patch_size={m.patch_size}, got "
                           f"{d.img_size}", "data.img_size", sources.where("data", "img_size")))
    return out


def _unknown_top_level(key: str, value: Any, sources: Sources) -> ConfigError:
    """A misspelt section or scalar. With one sub-key (`trian.lr=0.1`) the message names the
    dotted key and suggests the dotted key it was probably meant to be (`train.lr`)."""
    known = [*SECTIONS, "method", *_SCALARS]
    shown, hint = key, did_you_mean(key, known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if isinstance(value, dict) and len(value) == 1:
        sub = str(next(iter(value)))
        shown = f"{key}.{sub}"
        fields = {f.name for f in dataclasses.fields(SECTIONS[close[0]])} \
            if close and close[0] in SECTIONS else set()
        if sub in fields or (close and close[0] == "method"):
            hint = f" (did you mean {close[0]}.{sub}?)"
    return ConfigError(f"unknown key{hint} (sections: {', '.join(known)})", key=shown,
                       where=sources.where(key))


def build_run_config(sources: Sources, *, check_paths: bool = True) -> RunConfig:
    """Validate every section of `sources` into a RunConfig; ConfigError lists every problem."""
    problems: list[Problem] = []
    kwargs: dict[str, Any] = {}
    for key, value in sources.values.items():
        try:
            if key in SECTIONS:
                kwargs[key] = build_section(SECTIONS[key], value, sources, key)
            elif key == "method":
                kwargs[key] = method_config(value, sources)
            elif key in _SCALARS:
                try:
                    kwargs[key] = coerce(value, _SCALARS[key])
                except TypeError as err:
                    raise ConfigError(f"expected {err}, got {value!r}", key=key,
                                      where=sources.where(key)) from None
            else:
                raise _unknown_top_level(str(key), value, sources)
        except ConfigError as err:
            problems += err.problems
    if problems:
        raise ConfigError(*problems)
    cfg = RunConfig(**kwargs)
    problems = _cross_checks(cfg, sources)
    if check_paths:
        for section, key in _PATH_KEYS:
            value = getattr(getattr(cfg, section), key)
            if value and not Path(value).exists():
                problems.append(Problem(f"path not found: {value}", f"{section}.{key}",
                                        sources.where(section, key)))
    check(*problems)
    return cfg


def load_config(path: str | os.PathLike | None, overrides: list[str] | Mapping | None = None,
                *, check_paths: bool = True) -> RunConfig:
    """Read a YAML file (or none), apply dotted overrides, validate everything, return RunConfig.

    Raises ConfigError listing every problem, one line each, naming the file, line and key.
    """
    return build_run_config(read_sources(path, overrides), check_paths=check_paths)


# ----------------------------------------------------------------------------- saving

def config_to_dict(cfg: Any) -> dict:
    """A config dataclass (RunConfig or a section) as plain YAML-serialisable data."""
    def plain(v: Any) -> Any:
        if isinstance(v, PeftConfig):
            return plain(v.to_dict())
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(cfg)


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write the resolved config so `load_config(path)` gives it back exactly."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

