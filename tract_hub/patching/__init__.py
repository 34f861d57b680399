"""Installing TrAct on layers: in place, without changing what the model saves."""

from .api import PatchedLayer, is_patched, iter_patched, patch_layers, patched_layers, unpatch
from .layer import TrActForward

__all__ = ["PatchedLayer", "TrActForward", "is_patched", "iter_patched", "patch_layers", "patched_layers", "unpatch"]
