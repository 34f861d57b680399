"""What the patching and the registry share: the Linear/convolution operations TrAct acts on, the table of
installed TrAct layers that the compiled operators look up, the weak module references TrAct's attachments hold
(:class:`ModuleRef`), and how a class is named (:func:`class_name`).

Example:
    >>> import torch
    >>> from tract_hub.core import SUPPORTED_LAYER_TYPES
    >>> isinstance(torch.nn.Conv2d(3, 8, 3), SUPPORTED_LAYER_TYPES)
    True
"""

from .handles import LayerHandles
from .layer_ops import LAYER_OPS, SUPPORTED_LAYER_TYPES, LayerCall, LayerOpMode
from .module_ref import ModuleRef
from .names import class_name

__all__ = ["LAYER_OPS", "SUPPORTED_LAYER_TYPES", "LayerCall", "LayerHandles", "LayerOpMode", "ModuleRef", "class_name"]
