"""A weak reference to a module, held by what TrAct attaches to that same module.

What ``tract_hub.patch`` stores on a module (its forward, its ``__prepare_scriptable__``, a row-mask owner's hooks)
needs to reach the module again. A strong reference there would be a reference cycle, and PyTorch tensors do not
count toward the cyclic collector's thresholds: a patched model dropped in a loop (``copy.deepcopy`` per step, a
model per trial) would keep its parameters until the collector happens to run. :class:`ModuleRef` holds the module
weakly, and copies and pickles as the module itself, so a copy of the module refers to the copy.

Example:
    >>> import copy, torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> ref = ModuleRef(layer)
    >>> ref() is layer
    True
    >>> layer_copy, ref_copy = copy.deepcopy((layer, ref))
    >>> ref_copy() is layer_copy
    True
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from torch import nn

from ..errors import TrActStateError


class ModuleRef:
    """A weak reference to ``module`` that deep-copies and pickles as the module (see the module docstring)."""

    __slots__ = ("_ref",)

    def __init__(self, module: nn.Module) -> None:
        self._ref = weakref.ref(module)

    def __call__(self) -> nn.Module:
        module = self._ref()
        if module is None:
            raise TrActStateError(
                "the module this TrAct object belongs to was freed; keep the model (not only its patched layer's "
                "forward) alive while you use it"
            )
        return module

    def get(self) -> nn.Module | None:
        """The module, or ``None`` once it was freed."""
        return self._ref()

    def __reduce__(self) -> tuple[Any, ...]:
        return ModuleRef, (self(),)

    def __deepcopy__(self, memo: dict[int, Any]) -> ModuleRef:
        return ModuleRef(copy.deepcopy(self(), memo))

    def __repr__(self) -> str:
        module = self._ref()
        return f"ModuleRef({'freed' if module is None else type(module).__name__})"
