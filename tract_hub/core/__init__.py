"""What the patching and the registry share: the Linear/convolution operations TrAct acts on, and the table of
installed TrAct layers that the compiled operators look up.

Example:
    >>> import torch
    >>> from tract_hub.core import SUPPORTED_LAYER_TYPES
    >>> isinstance(torch.nn.Conv2d(3, 8, 3), SUPPORTED_LAYER_TYPES)
    True
"""

from .handles import LayerHandles
from .layer_ops import LAYER_OPS, SUPPORTED_LAYER_TYPES, LayerCall, LayerOpMode

__all__ = ["LAYER_OPS", "SUPPORTED_LAYER_TYPES", "LayerCall", "LayerHandles", "LayerOpMode"]
