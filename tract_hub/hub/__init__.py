"""Publishing on the Hugging Face Hub in timm's format: save, load, push, pull, and model cards.

A checkpoint directory holds ``model.safetensors``, ``config.json`` (exactly what timm writes, plus one extra
top-level key ``"tract_hub"`` with TrAct's metadata) and ``README.md`` (the model card). Plain
``timm.create_model("hf-hub:org/name", pretrained=True)`` loads timm architectures without this library. The
files are formats of :mod:`tract_hub.artifacts`; building a model from them and writing them from a model is
:mod:`tract_hub.pretrained`'s, which training uses too; this package adds the cards, the upload and the export of
run directories.

Example:
    >>> import tempfile, torch, tract_hub
    >>> from tract_hub.models import create_model
    >>> model = create_model("timm:test_resnet", num_classes=3).eval()
    >>> path = tract_hub.save_pretrained(model, tempfile.mkdtemp() + "/ckpt", metadata={"lam": 0.1})
    >>> loaded = tract_hub.from_pretrained(path).eval()
    >>> x = torch.randn(1, 3, 32, 32)
    >>> torch.equal(model(x), loaded(x))
    True
"""

from ..pretrained import CheckpointSource, from_pretrained, parse_source
from .card import CardInfo, RunResults, parse_front_matter, render_card
from .export import save_run, write_run_card
from .pull import pull
from .push import PushResult, push_to_hub
from .save import save_pretrained

__all__ = [
    "CardInfo",
    "CheckpointSource",
    "PushResult",
    "RunResults",
    "from_pretrained",
    "parse_front_matter",
    "parse_source",
    "pull",
    "push_to_hub",
    "render_card",
    "save_pretrained",
    "save_run",
    "write_run_card",
]
