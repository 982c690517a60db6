"""Backbones (VideoViT), position embeddings and checkpoint loading."""
from .vit import VideoViT, create_model, list_models, MODEL_ARCHS
from .pos_embed import sinusoid_table, resample_pos_embed_3d, table_for_grid

__all__ = ["VideoViT", "create_model", "list_models", "MODEL_ARCHS", "sinusoid_table",
           "resample_pos_embed_3d", "table_for_grid", "load_pretrained", "LoadReport", "CheckpointError"]


def __getattr__(name: str):
    if name in ("load_pretrained", "LoadReport", "CheckpointError"):
        from . import checkpoints
        return getattr(checkpoints, name)
    raise AttributeError(name)
