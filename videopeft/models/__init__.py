"""Backbones (VideoViT), position embeddings, checkpoint loading and masked-autoencoder pretraining.

Names load on first use (see `videopeft._lazy`); `archs` is torch-free for the config layer.
"""
from videopeft._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".archs": ["MODEL_ARCHS", "DECODER_ARCHS"],
    ".vit": ["VideoViT", "create_model", "list_models"],
    ".pos_embed": ["sinusoid_table", "resample_pos_embed_3d", "table_for_grid"],
    ".checkpoints": ["load_pretrained", "LoadReport"],
    ".pretrain": ["PretrainVideoMAE", "create_pretrain_model"],
})
