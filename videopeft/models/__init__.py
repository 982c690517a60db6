"""Backbones (VideoViT), position embeddings, checkpoint loading and masked-autoencoder pretraining.

    vit.py          VideoViT and create_model (named variants in archs.py)
    pos_embed.py    the fixed sinusoid table and 3-D resampling of position tables
    checkpoints.py  load_pretrained / LoadReport: read -> convert -> fit -> load -> report, from
      checkpoint_files.py (read files and HF directories, save_pretrained), converters.py (key
      layouts and their renaming, the HF key tables) and fitting.py (shapes fitted to the model)
    pretrain.py     the VideoMAE masked autoencoder

Names load on first use (see `videopeft._lazy`); `archs` is torch-free for the config layer.
"""
from videopeft._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".archs": ["MODEL_ARCHS", "DECODER_ARCHS"],
    ".vit": ["VideoViT", "create_model", "list_models"],
    ".pos_embed": ["sinusoid_table", "resample_pos_embed_3d", "table_for_grid"],
    ".checkpoints": ["load_pretrained", "LoadReport"],
    ".checkpoint_files": ["save_pretrained"],
    ".pretrain": ["PretrainVideoMAE", "create_pretrain_model"],
})
