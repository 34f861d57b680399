"""What one patched layer does in its forward and its backward, and what it remembers between backwards.

See :mod:`tract_hub.patching` for the whole path and the rules a training loop can rely on. In short: the forward
gives each call an id (and, on a synchronizing distributed micro-batch, sums the call's covariance over the
ranks); each backward that accumulates into the weight's ``.grad`` adds its ``G`` and (once per forward) its
covariance to an :class:`~tract_hub.engine.Accumulation` and hands autograd the increment of TrAct's gradient;
the first backward of each backward pass compares ``.grad`` with what the last backward left there to tell a
continued accumulation from a cleared or edited gradient. ``torch.autograd.grad`` and per-backward mode
(``exact=False``) get the call's own TrAct gradient and leave the accumulation alone.

Example:
    >>> import torch, tract_hub
    >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Linear(4, 2)), target="0")
    >>> for _ in range(2):  # two micro-batches; .grad is exact after each
    ...     model(torch.randn(8, 4)).sum().backward()
"""

from __future__ import annotations

import itertools
import logging
import weakref
from typing import Any, Protocol

import torch
from torch import nn

from .. import _torch_internals as internals
from ..engine import Accumulation, LayerGeometry, full_precision, input_covariance_with_summation
from ..engine.solve import factorize, factorize_in_place, solve_with_factor
from .device_flags import DeviceFlag
from .distributed import accumulated_gradient, distributed, reduction_for, world_size
from .forwards import CountedForwards

logger = logging.getLogger(__name__)

#: Process-wide ids of layer forwards (carried to the backward in the forward's token).
_FORWARD_IDS = itertools.count(1)

#: Codes in a forward token for how the forward summed its covariance over ranks (0: it did not).
_REDUCED_CODES = {torch.float64: 64, torch.float32: 32}
_REDUCED_DTYPES = {code: dtype for dtype, code in _REDUCED_CODES.items()}


class TrActForward(Protocol):
    """The settings of an installed layer that its forward and backward read
    (:class:`tract_hub.patching.TrActForward`)."""

    module: nn.Module
    lam: float
    exact: bool
    process_group: Any
    state: GradientState


def reduced_size(geometry: LayerGeometry) -> int:
    """Length of the buffer a forward sums over ranks: this call's covariance and rows, then the rank's pending
    (not yet summed) covariance and rows of earlier micro-batches."""
    return 2 * (geometry.groups * geometry.features**2 + 1)


def call_covariance(
    x: torch.Tensor, geometry: LayerGeometry, row_mask: torch.Tensor | None, lam: float
) -> tuple[torch.Tensor, int | torch.Tensor, torch.dtype]:
    """``x^T x`` per group (float64), the row count and the dtype it was summed in, for one layer call; rows the
    model marks invalid (``row_mask`` false, one entry per row of a Linear layer) are left out of all of them."""
    if row_mask is not None:
        x = x.reshape(-1, geometry.features) * row_mask.reshape(-1, 1).to(x.dtype)
    cov, rows, summation = input_covariance_with_summation(x, geometry, lam=lam)
    return cov, rows if row_mask is None else row_mask.sum(), summation.dtype


def _as_row_count(rows: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A row count as a 1-element tensor of ``like``'s dtype and device (filled there: no host-to-device copy)."""
    if isinstance(rows, torch.Tensor):
        return rows.to(like.dtype).reshape(1)
    return torch.full((1,), rows, dtype=like.dtype, device=like.device)


class GradientState:
    """What one patched layer remembers between backwards (see the module docstring).

    Copying or pickling the model keeps the accumulation and what ``.grad`` held after the last backward, so a
    copy whose ``.grad`` holds the same values continues exactly; the rest belongs to one process's graphs.
    """

    def __init__(self) -> None:
        self.accumulation: Accumulation | None = None
        self.left: torch.Tensor | None = None  # .grad after the last backward (or at the start of the running one)
        self.pass_total: torch.Tensor | None = None  # increments handed out in a backward whose end was not seen
        self.pass_cleared: bool | torch.Tensor = False  # whether this backward pass started a new accumulation
        self.graph_task: int | None = None
        self.forwards = CountedForwards()
        self.edits = DeviceFlag()
        self.warned_edit = False
        self.warned_unreduced = False
        self.factor: torch.Tensor | None = None  # the running call's Cholesky factor, until create_graph takes it
        self._accumulator: tuple[weakref.ref[torch.Tensor], Any] | None = None  # the weight's AccumulateGrad node

    def __getstate__(self) -> dict[str, Any]:
        return {"accumulation": self.accumulation, "left": self.left}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()
        self.__dict__.update(state)

    # -- forward ------------------------------------------------------------------------------------------------
    def forward(
        self,
        layer: TrActForward,
        weight: torch.Tensor,
        x: torch.Tensor,
        row_mask: torch.Tensor | None,
        geometry: LayerGeometry,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The weight (copied), this call's token ``[forward id, reduced code]`` (CPU) and the buffer of its
        covariance summed over ranks (empty outside ``torch.distributed``; filled on synchronizing forwards)."""
        size = reduced_size(geometry) if distributed() else 0
        reduced = torch.empty(size, dtype=torch.float64, device=x.device)
        code = 0
        if layer.exact and size:
            reduction = reduction_for(layer.module, process_group=layer.process_group)
            if reduction.unknown_under_distributed:
                self._warn_unreduced(layer)
            if reduction.groups:
                with full_precision(x.device):
                    cov, rows, summed_in = call_covariance(x, geometry, row_mask, layer.lam)
                own = torch.cat([cov.flatten(), _as_row_count(rows, reduced)])
                pending = self.accumulation.take_pending() if self._fits(weight) else torch.zeros_like(own)
                reduced = torch.cat([own, pending])
                reduction.all_reduce(reduced)
                code = _REDUCED_CODES[summed_in]
        token = torch.tensor([next(_FORWARD_IDS), code], dtype=torch.int64)
        return weight.clone(), token, reduced

    def _fits(self, grad: torch.Tensor) -> bool:
        acc = self.accumulation
        return (
            acc is not None
            and acc.raw.shape == grad.shape
            and acc.raw.device == grad.device
            and acc.raw.dtype == Accumulation.sum_dtype(grad.dtype)
            and (acc.pending_cov is not None) == distributed()
        )

    # -- backward -----------------------------------------------------------------------------------------------
    def weight_gradient(
        self,
        layer: TrActForward,
        grad: torch.Tensor,
        x: torch.Tensor,
        row_mask: torch.Tensor | None,
        token: torch.Tensor,
        reduced: torch.Tensor,
        geometry: LayerGeometry,
    ) -> torch.Tensor:
        """The gradient to hand to autograd for the weight the layer's call used, given the ordinary one."""
        if not layer.exact or not self._accumulates(layer.module.weight):
            return self._per_call(layer, grad, x, row_mask, geometry)
        forward_id, code = token.tolist()
        self._begin_backward(layer, grad, geometry)
        acc = self.accumulation
        with full_precision(x.device):
            # everything that may fail (out of memory) before the sums change: a failed call leaves them as they were
            local = None if code else call_covariance(x, geometry, row_mask, layer.lam)
            acc.add_gradient(grad)
            again = self.forwards.count(forward_id, acc.generation)
            if local is not None:
                cov, rows, summed_in = local
                acc.note_precision(summed_in)
                acc.add_local(cov, rows, again, owned=True)
                del local, cov  # added: free it before the solve needs its own n x n buffer
            else:
                own, pending = reduced.chunk(2)
                acc.note_precision(_REDUCED_DTYPES[code])
                acc.add_reduced(own, again)
                if again is None and self.pass_cleared is not True:
                    acc.add_reduced(pending, None if self.pass_cleared is False else ~self.pass_cleared)
            delta, self.factor = acc.increment(layer.lam)
        delta = delta.to(grad.dtype)
        self.pass_total = delta.clone() if self.pass_total is None else self.pass_total + delta
        return delta

    def _accumulates(self, weight: torch.Tensor) -> bool:
        """Whether this backward adds into ``weight.grad`` (its accumulator node is kept between backwards)."""
        if not weight.requires_grad:
            return False
        kept = self._accumulator
        if kept is None or kept[0]() is not weight:
            kept = self._accumulator = (weakref.ref(weight), internals.gradient_accumulator(weight))
        return internals.will_accumulate_into_grad(weight, kept[1])

    def _per_call(
        self,
        layer: TrActForward,
        grad: torch.Tensor,
        x: torch.Tensor,
        row_mask: torch.Tensor | None,
        geometry: LayerGeometry,
    ) -> torch.Tensor:
        with full_precision(x.device):
            cov, rows, summed_in = call_covariance(x, geometry, row_mask, layer.lam)
            if cov.device.type == "cpu":  # the factor in the covariance's buffer (host reads are free here)
                factor = factorize_in_place(cov, rows, layer.lam)
            else:
                factor = factorize(cov, rows, layer.lam, summed_in)
            if factor is None:  # it needs the rescue, which needs the covariance it overwrote: sum it again
                cov, rows, summed_in = call_covariance(x, geometry, row_mask, layer.lam)
                factor = factorize(cov, rows, layer.lam, summed_in)
            self.factor = factor
            return solve_with_factor(grad, factor)

    def _begin_backward(self, layer: TrActForward, grad: torch.Tensor, geometry: LayerGeometry) -> None:
        """At the layer's first call in a backward pass: continue, restart or keep the user's edit (see
        :mod:`tract_hub.patching`), and arrange to note what ``.grad`` holds once the pass is over."""
        task = internals.current_backward_pass()
        if task is not None and task == self.graph_task:
            return
        self.graph_task = task
        internals.run_after_backward(_after_backward_of(layer))
        if self.pass_total is not None:  # the last backward raised after this layer's part: .grad holds it
            left, total = self.left, self.pass_total
            self.left = total if left is None else left + total if left.shape == total.shape else None
            self.pass_total = None
        if not self._fits(grad):
            self.accumulation = Accumulation.empty(grad, geometry.groups, ranks=distributed())
        current = accumulated_gradient(layer.module)
        left = self.left
        if current is None or left is None or current.shape != left.shape or current.dtype != left.dtype:
            self.accumulation.clear()
            self.forwards.forget()
            self.pass_cleared = True
        else:
            same = ((current == left) | (current.isnan() & left.isnan())).all()
            if current.device.type == "cpu" and bool(same):  # on the CPU a host read is free: the common case
                self.pass_cleared = False
                return  # self.left already holds .grad's values
            zero = (current == 0).all()
            self.pass_cleared = ~same & zero
            self.accumulation.clear_where(self.pass_cleared)
            if layer.process_group is None:  # with process_group=, the loop averages .grad itself
                self.edits.post(~same & ~zero)
                self._warn_edited(layer)
        self.left = None if current is None else current.detach().clone()

    def end_backward(self, layer: TrActForward) -> None:
        """Once the backward pass is over (DDP's and FSDP2's own final reductions included): note what ``.grad``
        holds."""
        self.graph_task, self.pass_total = None, None
        current = accumulated_gradient(layer.module)
        self.left = None if current is None else current.detach().clone()

    # -- warnings -----------------------------------------------------------------------------------------------
    def _warn_edited(self, layer: TrActForward) -> None:
        if self.warned_edit or not self.edits.poll():
            return
        self.warned_edit = True
        logger.warning(
            "TrAct on %s: its .grad was changed between two backwards without being cleared (scaled, clipped per "
            "micro-batch, replaced, or a plain gradient added). The change is kept as it is, and each later "
            "backward adds the exact TrAct gradient of the micro-batches since the last clear on top of it: "
            ".grad = (your change) + TrAct(all of them). Clear .grad (optimizer.zero_grad()) to start afresh, or "
            "change it only after the last micro-batch of a step.",
            type(layer.module).__name__,
        )

    def _warn_unreduced(self, layer: TrActForward) -> None:
        if self.warned_unreduced:
            return
        self.warned_unreduced = True
        logger.warning(
            "TrAct on %s: torch.distributed runs %d processes, but the layer's forward ran outside "
            "DistributedDataParallel and FSDP2, so its covariance stays local to each rank. If you average its "
            "gradient over ranks yourself, pass process_group= to tract_hub.patch so the covariance is summed "
            "the same way.",
            type(layer.module).__name__,
            world_size(),
        )


def _after_backward_of(layer: TrActForward) -> Any:
    """A callback for the end of the running backward that queues itself once more, so that it runs after the
    callbacks DDP queues while the backward runs (the averaged gradient is written there)."""
    reference = weakref.ref(layer)

    def last() -> None:
        alive = reference()
        if alive is not None:
            alive.state.end_backward(alive)

    def first() -> None:
        internals.run_after_backward(last)

    return first
