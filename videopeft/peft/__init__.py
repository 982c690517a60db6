"""Parameter-efficient fine-tuning of a VideoViT behind one call: `apply(model, method)`.

`method` is a mapping (the YAML `method:` section, `{"name": "lora", "rank": 8}`) or a method
dataclass. `apply` freezes the whole model, adds the method's modules, unfreezes exactly what the
method trains plus the common set (head and fc_norm unless the config says otherwise) and returns
a TrainableReport, which prints as a table. The modules a method adds declare what trains
(`adapter_params()`, torchtune's AdapterModule protocol; `get_adapter_params` collects them);
bitfit, partial, linear and full add nothing and select backbone parameters by rule. Base
state-dict keys never change, so backbone weights load before or after `apply`.

    name      config          trains (besides head + fc_norm)
    adaptmlp  AdaptMLPConfig  blocks.i.adaptmlp.*            (AdaptFormer)
    vpt       VPTConfig       vpt.prompts                    (visual prompt tuning)
    prefix    PrefixConfig    prefix.*                       (prefix tuning via attn.kv_prefix)
    adapter   AdapterConfig   blocks.i.adapter_{attn,mlp}.*  (Houlsby adapters)
    lora      LoraConfig      <linear>.lora_{down,up}.weight (LoRA)
    bitfit    BitFitConfig    every bias
    partial   PartialConfig   the last k blocks
    linear    LinearConfig    nothing more
    full      FullConfig      everything

Names load on first use (see `videopeft._lazy`); the method configs (`config.py`) are torch-free.
"""
from videopeft._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".methods": ["apply", "METHODS"],
    "videopeft.config": ["method_config"],
    ".config": ["PeftConfig", "AdaptMLPConfig", "VPTConfig", "PrefixConfig", "AdapterConfig",
                "LoraConfig", "BitFitConfig", "PartialConfig", "LinearConfig", "FullConfig",
                "METHOD_CONFIGS"],
    ".base": ["TrainableReport", "ParamGroup", "AdapterModule", "get_adapter_params"],
    ".lora": ["LoRALinear", "merge_lora", "unmerge_lora"],
    ".prefix": ["fold_prefix"],
    ".vpt": ["precompute_prompt_kv"],
    ".adapter_io": ["save_adapter", "load_adapter", "read_adapter_metadata",
                    "backbone_fingerprint"],
    "videopeft.errors": ["AdapterError"],
})
