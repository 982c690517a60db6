"""videopeft: parameter-efficient fine-tuning of video transformers for action recognition.

    model = videopeft.create_model("videomae_base", num_classes=174, pretrained="k400.pth")
    report = videopeft.peft.apply(model, {"name": "adaptmlp"})

Names load on first use (see `videopeft._lazy`), so importing the config layer stays fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from videopeft._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    ".models.vit": ["VideoViT", "create_model", "list_models"],
    ".models.checkpoints": ["load_pretrained", "LoadReport"],
    ".peft": ["peft"],
})
__all__ = [*__all__, "__version__"]

if TYPE_CHECKING:  # for editors and type checkers; at run time the names load lazily
    from . import peft
    from .models.checkpoints import LoadReport, load_pretrained
    from .models.vit import VideoViT, create_model, list_models
