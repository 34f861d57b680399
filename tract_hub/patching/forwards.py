"""Which forwards' input rows an accumulation already holds, so that a forward counts its rows once.

Several backwards may flow through one forward (``retain_graph=True``: several losses of one forward, multi-task
heads). Each backward brings its own ``G``, but the layer's input rows belong to the forward: they count once in
``x^T x`` and ``N``. Each forward of a patched layer gets an id (carried from the forward to its backward as an
operator output); the first backward through it counts its rows. A later backward through the same forward counts
them again only if the gradient was cleared in between (a new accumulation), which may have been decided on the
device, so that comparison is made there too: a small ring of generations on the device, one slot per recent
forward.

Example:
    >>> import torch
    >>> forwards, generation = CountedForwards(), torch.zeros((), dtype=torch.int64)
    >>> forwards.count(7, generation) is None  # first backward through forward 7: count its rows
    True
    >>> forwards.count(7, generation)  # a second backward in the same accumulation: do not
    tensor(False)
"""

from __future__ import annotations

from collections import OrderedDict

import torch


class CountedForwards:
    """Forward ids whose rows were counted, with the accumulation generation they were counted in.

    Holds the :data:`CAPACITY` most recent forwards of one layer; a forward backwarded again after that many newer
    forwards of the same layer counts its rows again.
    """

    CAPACITY = 64

    def __init__(self) -> None:
        self._slots: OrderedDict[int, int] = OrderedDict()
        self._ring: torch.Tensor | None = None

    def forget(self) -> None:
        """Drop every id (the accumulation started over on the host's decision)."""
        self._slots.clear()

    def count(self, forward_id: int, generation: torch.Tensor) -> torch.Tensor | None:
        """Note a backward through forward ``forward_id`` in accumulation ``generation`` (a 0-d int64 tensor).

        Returns ``None`` when the forward was not counted yet (count its rows), else a 0-d bool on the device:
        true when it was counted in an earlier generation (the gradient was cleared since), false when not.
        """
        if self._ring is None or self._ring.device != generation.device:
            self._ring = torch.zeros(self.CAPACITY, dtype=torch.int64, device=generation.device)
            self._slots.clear()
        slot = self._slots.get(forward_id)
        if slot is None:
            if len(self._slots) >= self.CAPACITY:
                _, slot = self._slots.popitem(last=False)
            else:
                slot = len(self._slots)
            self._slots[forward_id] = slot
            self._ring[slot].copy_(generation)
            return None
        self._slots.move_to_end(forward_id)
        again = self._ring[slot] != generation
        self._ring[slot].copy_(generation)
        return again
