"""``torch.jit.script`` of anything that holds a patched layer: the plain module is scripted, TrAct stays in eager.

TrAct only changes training gradients and runs Python in the backward, which TorchScript cannot compile. So
``patch`` gives the model and each patched layer a ``__prepare_scriptable__`` (:class:`PlainForScripting`) that
hands TorchScript a plain copy of the module tree (new module objects without TrAct, sharing the parameters and
buffers): the scripted module computes the same outputs and shares the weights.

TorchScript prepares the module it was called on first, then each child, and puts each child's prepared version in
place of the child inside the caller's own module. For the module passed to ``torch.jit.script`` that swap touches
nothing of the caller's. For a patched model or layer inside it (timm's ``FeatureGetterNet(model)``, a
``torchvision`` FX feature extractor, an ``nn.Sequential`` with a head) the caller's module briefly holds the plain
copy: :data:`SWAPS` puts the patched module back before the next forward of any module (a global forward
pre-hook, removed once nothing is pending) and before tract_hub lists patched layers.

Example:
    >>> import torch, tract_hub
    >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), target="0")
    >>> wrapper = torch.nn.Sequential(model, torch.nn.Flatten())
    >>> scripted = torch.jit.script(wrapper)
    >>> _ = wrapper(torch.randn(1, 3, 5, 5))  # any forward puts the patched model back
    >>> wrapper[0] is model and tract_hub.is_patched(wrapper)
    True
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from torch import nn
from torch.nn.modules.module import register_module_forward_pre_hook
from torch.utils.hooks import RemovableHandle

from .. import _torch_internals as internals
from ..core.module_ref import ModuleRef
from .layer import TrActForward

logger = logging.getLogger(__name__)


class PlainForScripting:
    """``__prepare_scriptable__`` of a patched model and of each patched layer (see the module docstring)."""

    def __init__(self, module: nn.Module) -> None:
        self.module_ref = ModuleRef(module)  # the module holds this object: no reference cycle

    def __call__(self) -> nn.Module:
        module = self.module_ref()
        root = internals.scripting_root()
        logger.warning(
            "torch.jit.script(%s): TrAct is not part of the scripted module (it only changes training gradients "
            "and TorchScript cannot run it); the scripted module computes the same outputs and shares the weights, "
            "and the eager modules keep TrAct",
            type(root if isinstance(root, nn.Module) else module).__name__,
        )
        plain = plain_tree(module)
        if isinstance(root, nn.Module) and root is not module:
            SWAPS.add(root, plain, module)
        prepare = getattr(type(plain), "__prepare_scriptable__", None)
        return prepare(plain) if prepare is not None else plain


def plain_tree(module: nn.Module) -> nn.Module:
    """A copy of the module tree (new objects, shared parameters and buffers) without any TrAct attribute."""
    clone = copy.copy(module)
    clone.__dict__.pop("__prepare_scriptable__", None)
    if isinstance(clone.__dict__.get("forward"), TrActForward):
        previous = clone.__dict__.pop("forward").previous_forward
        if previous is not None:
            clone.forward = previous
    clone._modules = {name: plain_tree(child) if child is not None else None for name, child in module._modules.items()}
    return clone


class ScriptingSwaps:
    """Plain copies that TorchScript put inside the caller's modules, and the patched modules they stand for."""

    def __init__(self) -> None:
        self._pending: list[tuple[ModuleRef, nn.Module, nn.Module]] = []
        self._hook: RemovableHandle | None = None

    def add(self, root: nn.Module, plain: nn.Module, patched: nn.Module) -> None:
        """Note that ``plain`` will stand for ``patched`` somewhere inside ``root`` once TorchScript is done."""
        self._pending.append((ModuleRef(root), plain, patched))
        if self._hook is None:
            self._hook = register_module_forward_pre_hook(self._before_forward)

    def restore(self) -> None:
        """Put every patched module back where a plain copy stands for it."""
        pending, self._pending = self._pending, []
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        for root_ref, plain, patched in pending:
            root = root_ref.get()  # a root that is gone (scripted as a temporary) has nothing to restore
            if root is None:
                continue
            for parent in root.modules():
                for name, child in parent._modules.items():
                    if child is plain:
                        parent._modules[name] = patched

    def _before_forward(self, module: nn.Module, args: Any) -> None:
        self.restore()


#: The process's pending swaps.
SWAPS = ScriptingSwaps()

__all__ = ["SWAPS", "PlainForScripting", "ScriptingSwaps", "plain_tree"]
