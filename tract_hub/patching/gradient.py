"""The backward of a patched layer: the ordinary weight gradient in, TrAct's out, exact whatever the loop does.

Exact mode (the default) keeps, beside the layer, an :class:`~tract_hub.engine.Accumulation` of everything that
went into the layer's ``.grad`` since it was last cleared and hands autograd the increment of TrAct's gradient
(see that class). So after any backward, ``.grad`` holds the exact TrAct gradient of all micro-batches (and ranks)
accumulated into it, like any other parameter's ``.grad``: clipping, ``GradScaler.unscale_``, timm's scaler,
Lightning, accelerate and hand-written updates see the right value, and no call is needed after ``patch``.

A cleared gradient is noticed at the first call of the layer in each backward pass: ``.grad`` is ``None``
(``zero_grad()``), or it is not the tensor this layer saw at the end of its last backward, or that tensor was
modified in place since (``zero_grad(set_to_none=False)``, unscaling, clipping, DDP's averaging); in the last two
cases whether it is all zeros is decided on the device. Per-backward mode (``exact=False``, the paper's behaviour)
solves each call with its own covariance. ``torch.autograd.grad`` with respect to the weight, which does not
accumulate into ``.grad``, gets the per-call TrAct gradient and leaves the accumulation alone.

Example:
    >>> import torch, tract_hub
    >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Linear(4, 2)), target="0")
    >>> for _ in range(2):  # two micro-batches; .grad is exact after each
    ...     model(torch.randn(8, 4)).sum().backward()
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Protocol

import torch
from torch import nn
from torch.autograd import Variable

from ..engine import Accumulation, LayerGeometry, full_precision, input_covariance, tract_gradient
from .distributed import DDPForward, accumulated_gradient, reduction_for, world_size


class TrActForward(Protocol):
    """The settings of an installed layer that its backward reads (:class:`tract_hub.patching.TrActForward`)."""

    module: nn.Module
    lam: float
    exact: bool
    process_group: Any
    state: GradientState


logger = logging.getLogger(__name__)


_AUTOGRAD_KEYS = tuple(
    getattr(torch._C.DispatchKey, name)
    for name in ("AutogradFunctionality", "AutogradOther", "AutogradNestedTensor", "ADInplaceOrView")
)


def _gradient_accumulator(weight: torch.Tensor) -> Any:
    """The autograd node that accumulates into ``weight.grad``. Operators run below the autograd dispatch keys,
    so they are lifted for the one view through which PyTorch exposes a leaf's accumulator."""
    exclude = torch._C._dispatch_tls_local_exclude_set()
    for key in _AUTOGRAD_KEYS:
        exclude = exclude.remove(key)
    include = torch._C._dispatch_tls_local_include_set()
    with torch._C._ForceDispatchKeyGuard(include, exclude), torch.enable_grad():
        return weight.view_as(weight).grad_fn.next_functions[0][0]


def accumulates_into_grad(weight: torch.Tensor) -> bool:
    """Whether the running backward will accumulate into ``weight.grad`` (``False`` under ``torch.autograd.grad``)."""
    node = _gradient_accumulator(weight)
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except RuntimeError:  # PyTorch refuses the question for a leaf during autograd.grad(): no accumulation
        return False


class GradientState:
    """What one patched layer remembers between backwards (never saved, copied or pickled with the model)."""

    def __init__(self) -> None:
        self.accumulation: Accumulation | None = None
        self.graph_task: int | None = None
        self.seen: weakref.ref[torch.Tensor] | None = None
        self.seen_version = -1
        self.ddp: DDPForward | None = None
        self.warned_unreduced = False

    def reset(self) -> None:
        self.accumulation, self.seen = None, None

    # -- once per backward pass -----------------------------------------------------------------------------------
    def begin_backward(self, layer: TrActForward) -> None:
        """At the layer's first call in a backward pass: notice a cleared gradient, and arrange to remember which
        tensor holds the gradient once the pass is over."""
        task = torch._C._current_graph_task_id()
        if task == self.graph_task:
            return
        self.graph_task = task
        Variable._execution_engine.queue_callback(_after_backward_of(layer))
        grad = accumulated_gradient(layer.module)
        if grad is None or self.accumulation is None:
            self.accumulation = None
            return
        if self.seen is not None and self.seen() is grad and grad._version == self.seen_version:
            return
        self.accumulation.clear_where((grad == 0).all())

    def after_backward(self, layer: TrActForward) -> None:
        self.graph_task = None
        grad = accumulated_gradient(layer.module)
        self.seen = weakref.ref(grad) if grad is not None else None
        self.seen_version = grad._version if grad is not None else -1

    # -- every call -----------------------------------------------------------------------------------------------
    def weight_gradient(
        self, layer: TrActForward, grad: torch.Tensor, x: torch.Tensor, geometry: LayerGeometry
    ) -> torch.Tensor:
        """The gradient to hand to autograd for the weight the layer's call used."""
        if not layer.exact or not accumulates_into_grad(layer.module.weight):
            return tract_gradient(grad, x, geometry, layer.lam)
        self.begin_backward(layer)
        with full_precision(x.device):
            cov, rows = input_covariance(x, geometry)
            if self.accumulation is None:
                self.accumulation = Accumulation.empty(grad, geometry.groups)
            self.accumulation.add(grad, cov, rows)
            self._reduce(layer)
            return self.accumulation.increment(layer.lam).to(grad.dtype)

    def _reduce(self, layer: TrActForward) -> None:
        reduction = reduction_for(layer.module, ddp=self.ddp, process_group=layer.process_group)
        if reduction.unknown_under_distributed:
            self._warn_unreduced(layer)
        if not reduction.groups:
            return
        buffer = self.accumulation.unreduced()
        reduction.all_reduce(buffer)
        self.accumulation.add_reduced(buffer)

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
    reference = weakref.ref(layer)

    def callback() -> None:
        alive = reference()
        if alive is not None:
            alive.state.after_backward(alive)

    return callback
