"""Integer handles for installed TrAct layers.

The custom operators that carry TrAct through ``torch.compile`` and ``torch.fx`` graphs can only take tensors and
numbers, so each installed layer gets a process-unique integer that the operators look up here. The table holds
weak references: a layer that is no longer reachable disappears from it.

Example:
    >>> handles = LayerHandles()
    >>> class Layer: ...
    >>> layer = Layer()
    >>> handle = handles.add(layer)
    >>> handles.get(handle) is layer
    True
"""

from __future__ import annotations

import itertools
import weakref
from typing import Generic, TypeVar

from ..errors import TrActStateError

T = TypeVar("T")


class LayerHandles(Generic[T]):
    """A weak table ``int -> object`` with handles that are never reused within a process."""

    def __init__(self) -> None:
        self._objects: weakref.WeakValueDictionary[int, T] = weakref.WeakValueDictionary()
        self._next = itertools.count(1)

    def add(self, obj: T) -> int:
        handle = next(self._next)
        self._objects[handle] = obj
        return handle

    def get(self, handle: int) -> T:
        obj = self._objects.get(handle)
        if obj is None:
            raise TrActStateError(
                f"TrAct layer handle {handle} is not installed in this process (the layer was unpatched or freed "
                "while a graph that uses it was still running); patch the model again and rebuild the graph"
            )
        return obj
