"""One dataclass per PEFT method: the YAML `method:` section, checked on construction.

Kept free of torch (like the rest of the config layer) so a command line can validate a config
before the model code is imported. The modules that apply each method live beside this file and
import their config from here; `METHOD_CONFIGS` maps the YAML name to its class, and
`videopeft.config.method_config` turns a mapping into one of these.

Every `problems()` reports keys without the section (`rank`); the config loader adds `method.`
and the file and line.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from videopeft.constants import QKV_PARTS
from videopeft.errors import Problem, check, fraction, one_of, positive_int

__all__ = [
    "PeftConfig", "Layers", "layers_problem", "SLICE_PATTERN", "AdaptMLPConfig", "VPTConfig",
    "PrefixConfig", "AdapterConfig", "LoraConfig", "LORA_TARGETS", "qkv_part", "BitFitConfig",
    "PartialConfig", "LinearConfig", "FullConfig", "METHOD_CONFIGS",
]

# A layer selection: None (every block), a list of block indices (negative counts from the end),
# or a slice string "start:stop" such as "6:" (the last six blocks of a 12-block model) or ":-2".
Layers = list[int] | str | None

SLICE_PATTERN = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")


def layers_problem(key: str, value: Any) -> Problem | None:
    """Syntax of a layer selection (indices are checked against the depth at apply time)."""
    if value is None:
        return None
    if isinstance(value, str) and SLICE_PATTERN.match(value):
        return None
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    return Problem(f"expected null (all blocks), a non-empty list of block indices or a "
                   f"'start:stop' slice, got {value!r}", key)


def _boolean(key: str, value: Any) -> Problem | None:
    return None if isinstance(value, bool) else Problem(f"expected true or false, got {value!r}",
                                                        key)


@dataclass(kw_only=True)
class PeftConfig:
    """The part of every method's config that says what trains besides the method's own tensors.

    train_head: the classifier (`head`) trains; true in every method by default.
    train_fc_norm: the final norm before the head (`fc_norm`, or `norm` in the cls-token variant)
        trains, as in AdaptFormer's main_video.py.
    head_bn: put AdaptFormer's BatchNorm1d(affine=False, eps=1e-6) in front of the head (no
        parameters, running statistics only; saved in adapter files).
    """

    name: ClassVar[str] = ""
    train_head: bool = True
    train_fc_norm: bool = True
    head_bn: bool = False

    def __post_init__(self) -> None:
        if isinstance(getattr(self, "layers", None), (range, tuple)):
            self.layers = list(self.layers)  # type: ignore[attr-defined]
        check(*(_boolean(k, getattr(self, k)) for k in ("train_head", "train_fc_norm", "head_bn")),
              *self.problems())

    def problems(self) -> list[Problem | None]:
        """The method's own range checks, one problem (or None) per key; all reported together."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form, `{"name": ..., key: value}`, that `method_config` reads back."""
        def plain(v: Any) -> Any:
            return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
        return {"name": self.name, **{f.name: plain(getattr(self, f.name))
                                      for f in dataclasses.fields(self)}}


@dataclass(kw_only=True)
class AdaptMLPConfig(PeftConfig):
    """AdaptMLP options; defaults = AdaptFormer's video recipe (ShoufaChen/AdaptFormer:main_video.py).

    bottleneck: hidden width r (`--ffn_num`, 64). scale: a float (0.1) or "learnable" (a
    Parameter initialised to 1). layernorm: "none" | "in" | "out". dropout: after the ReLU.
    mode: "parallel" | "sequential". layers: None = every block, or indices / "start:stop".
    """

    name: ClassVar[str] = "adaptmlp"
    bottleneck: int = 64
    scale: float | str = 0.1
    layernorm: str = "none"
    dropout: float = 0.0
    mode: str = "parallel"
    layers: Layers = None

    def problems(self) -> list[Problem | None]:
        scale_ok = self.scale == "learnable" or (
            isinstance(self.scale, (int, float)) and not isinstance(self.scale, bool))
        return [positive_int("bottleneck", self.bottleneck),
                None if scale_ok else
                Problem(f"expected a float or 'learnable', got {self.scale!r}", "scale"),
                one_of("layernorm", self.layernorm, ("none", "in", "out")),
                fraction("dropout", self.dropout),
                one_of("mode", self.mode, ("parallel", "sequential")),
                layers_problem("layers", self.layers)]


@dataclass(kw_only=True)
class VPTConfig(PeftConfig):
    """VPT options. num_prompts: p tokens per set (5 = KMnP/vpt's MODEL.PROMPT.NUM_TOKENS;
    AdaptFormer's `--vpt_num` default is 1). deep: fresh prompts per block (True) or input only.
    location: "prepend" | "add". share: "none" | "inter" (one set for all blocks, deep only).
    dropout: on the prompt tokens. layers: prompted blocks for deep VPT (None = all)."""

    name: ClassVar[str] = "vpt"
    num_prompts: int = 5
    deep: bool = True
    location: str = "prepend"
    share: str = "none"
    dropout: float = 0.0
    layers: Layers = None

    def problems(self) -> list[Problem | None]:
        shallow = self.deep is False
        return [positive_int("num_prompts", self.num_prompts),
                _boolean("deep", self.deep),
                one_of("location", self.location, ("prepend", "add")),
                one_of("share", self.share, ("none", "inter")),
                fraction("dropout", self.dropout),
                layers_problem("layers", self.layers),
                Problem(f"expected null for shallow VPT (deep: false), got {self.layers!r}",
                        "layers") if shallow and self.layers is not None else None,
                Problem(f"expected 'none' for shallow VPT (deep: false), got {self.share!r}",
                        "share") if shallow and self.share != "none" else None]


@dataclass(kw_only=True)
class PrefixConfig(PeftConfig):
    """Prefix options: num_prefix P keys/values per block; reparam through an MLP of width
    reparam_hidden (512, Li & Liang's table-to-text setting [unverified]); layers (None = all)."""

    name: ClassVar[str] = "prefix"
    num_prefix: int = 10
    reparam: bool = True
    reparam_hidden: int = 512
    layers: Layers = None

    def problems(self) -> list[Problem | None]:
        return [positive_int("num_prefix", self.num_prefix),
                _boolean("reparam", self.reparam),
                positive_int("reparam_hidden", self.reparam_hidden),
                layers_problem("layers", self.layers)]


@dataclass(kw_only=True)
class AdapterConfig(PeftConfig):
    """Houlsby adapter options. bottleneck 64 matches AdaptMLP's default for a like-for-like
    comparison (Houlsby et al. swept 8/64/256); act "gelu" (the ViT's own) or "relu"."""

    name: ClassVar[str] = "adapter"
    bottleneck: int = 64
    act: str = "gelu"
    layers: Layers = None

    def problems(self) -> list[Problem | None]:
        return [positive_int("bottleneck", self.bottleneck),
                one_of("act", self.act, ("gelu", "relu")),
                layers_problem("layers", self.layers)]


# the Linear layers of a block that LoRA can wrap, by name suffix; attn.q / attn.k / attn.v are
# the row blocks of the fused attn.qkv
LORA_TARGETS = ("attn.qkv", "attn.q", "attn.k", "attn.v", "attn.proj", "mlp.fc1", "mlp.fc2")


def qkv_part(target: str) -> tuple[str, str] | None:
    """("attn.qkv", "q") for a target naming one part of a fused qkv ("attn.q"), else None."""
    owner, _, part = target.rpartition(".")
    if part in QKV_PARTS:
        return (f"{owner}.qkv" if owner else "qkv"), part
    return None


@dataclass(kw_only=True)
class LoraConfig(PeftConfig):
    """LoRA options: rank r, alpha (update scale alpha/r), dropout on the LoRA input, target
    Linears by name suffix (attn.qkv, attn.proj, mlp.fc1, mlp.fc2), blocks (None = all).

    A target `attn.q`, `attn.k` or `attn.v` puts a rank-r update on that part of the fused
    `attn.qkv` only (its output rows), each part with its own factors: `[attn.q, attn.v]` is the
    LoRA paper's W_q, W_v setting (Hu et al. 2021; microsoft/LoRA:loralib/layers.py `MergedLinear`
    with enable_lora=[True, False, True] on a fused projection).
    """

    name: ClassVar[str] = "lora"
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("attn.qkv",)
    layers: Layers = None

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):  # `method.targets=mlp.fc1` on the command line
            self.targets = (self.targets,)
        elif isinstance(self.targets, list):
            self.targets = tuple(self.targets)
        super().__post_init__()

    def problems(self) -> list[Problem | None]:
        targets_ok = (isinstance(self.targets, tuple) and self.targets
                      and all(isinstance(t, str) and t for t in self.targets))
        alpha_ok = isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool) \
            and self.alpha > 0
        return [positive_int("rank", self.rank),
                None if alpha_ok else Problem(f"expected a positive float, got {self.alpha!r}",
                                              "alpha"),
                fraction("dropout", self.dropout),
                None if targets_ok else Problem(f"expected a non-empty list of layer names such "
                                                f"as {list(LORA_TARGETS)}, got {self.targets!r}",
                                                "targets"),
                self._overlap_problem() if targets_ok else None,
                layers_problem("layers", self.layers)]

    def _overlap_problem(self) -> Problem | None:
        """A part of qkv and the whole qkv cannot both be targets (two updates on one weight)."""
        both = [t for t in self.targets if (qkv_part(t) or ("",))[0] in self.targets]
        if both:
            whole = qkv_part(both[0])[0]
            return Problem(f"expected either {whole} or its parts, got both ({whole} and "
                           f"{', '.join(both)})", "targets")
        return None


@dataclass(kw_only=True)
class BitFitConfig(PeftConfig):
    """Train every bias (see videopeft.peft.simple for which)."""

    name: ClassVar[str] = "bitfit"


@dataclass(kw_only=True)
class PartialConfig(PeftConfig):
    """Train the last k blocks."""

    name: ClassVar[str] = "partial"
    k: int = 1

    def problems(self) -> list[Problem | None]:
        return [positive_int("k", self.k)]


@dataclass(kw_only=True)
class LinearConfig(PeftConfig):
    """Linear probe: head and fc_norm only."""

    name: ClassVar[str] = "linear"


@dataclass(kw_only=True)
class FullConfig(PeftConfig):
    """Full fine-tuning."""

    name: ClassVar[str] = "full"


# the YAML `method.name` -> its config class (videopeft.peft.METHODS adds the apply functions)
METHOD_CONFIGS: dict[str, type[PeftConfig]] = {cls.name: cls for cls in (
    AdaptMLPConfig, VPTConfig, PrefixConfig, AdapterConfig, LoraConfig, BitFitConfig,
    PartialConfig, LinearConfig, FullConfig)}
