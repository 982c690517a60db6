"""videopeft: parameter-efficient fine-tuning of video transformers for action recognition."""
from .models import VideoViT, create_model, list_models

__version__ = "0.1.0"
__all__ = ["VideoViT", "create_model", "list_models", "load_pretrained", "__version__"]


def load_pretrained(model, path, **kwargs):
    """Load a checkpoint (official VideoMAE, HF VideoMAE, timm ViT) into `model`; see models.checkpoints."""
    from .models.checkpoints import load_pretrained as _load
    return _load(model, path, **kwargs)
