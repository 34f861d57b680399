"""Every private PyTorch interface tract_hub relies on, resolved once, at import, in this one module.

Exact mode needs to know things PyTorch has no public API for: whether a backward pass is running and which one,
whether the running backward will accumulate into a leaf's ``.grad``, what happens at the end of that backward,
whether a ``DistributedDataParallel`` forward is active, which FSDP2 parameter group holds a weight, whether
``torch.func`` is transforming a call. Each is resolved here and named after the public behaviour it stands in
for; the rest of the package imports these names and never reaches into ``torch._`` itself.

Checked on torch 2.9.1 (the floor ``pyproject.toml`` declares, tested in CI) and 2.14.1. Where one of these is
missing from the installed PyTorch, :func:`missing_for_exact_mode` names it and ``tract_hub.patch(exact=True)``
refuses with :class:`~tract_hub.errors.TrActStateError`; exact mode never degrades silently.

Example:
    >>> current_backward_pass() is None  # outside a backward pass
    True
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

import torch

from .errors import TrActStateError

#: The PyTorch releases this module was checked on.
CHECKED_ON = ("2.9.1", "2.14.1")

_C = torch._C
_graph_task_id = getattr(_C, "_current_graph_task_id", None)
_will_execute = getattr(_C, "_will_engine_execute_node", None)
_engine = getattr(getattr(torch.autograd, "Variable", None), "_execution_engine", None)
_autograd_keys = tuple(
    getattr(_C.DispatchKey, name, None)
    for name in ("AutogradFunctionality", "AutogradOther", "AutogradNestedTensor", "ADInplaceOrView")
)
_functorch = getattr(_C, "_functorch", None)
_is_functorch_wrapped = getattr(_functorch, "is_functorch_wrapped_tensor", None)

_REQUIRED_FOR_EXACT = {
    "torch._C._current_graph_task_id (which backward pass is running)": _graph_task_id,
    "torch._C._will_engine_execute_node (whether a backward accumulates into .grad)": _will_execute,
    "Variable._execution_engine.queue_callback (a call at the end of a backward pass)": _engine,
    "torch._C._ForceDispatchKeyGuard (reaching a leaf's gradient accumulator)": getattr(
        _C, "_ForceDispatchKeyGuard", None
    ),
}

#: Operator tags that keep a custom operator out of captured CUDA graphs (``cudagraph_unsafe``, PyTorch >= 2.6).
CUDAGRAPH_UNSAFE_TAGS: tuple[Any, ...] = (torch.Tag.cudagraph_unsafe,) if hasattr(torch.Tag, "cudagraph_unsafe") else ()


def missing_for_exact_mode() -> list[str]:
    """The private interfaces exact mode needs that this PyTorch lacks (empty when it has them all)."""
    missing = [name for name, value in _REQUIRED_FOR_EXACT.items() if value is None]
    return missing + ["torch._C.DispatchKey autograd keys"] * any(key is None for key in _autograd_keys)


def require_exact_mode() -> None:
    """Raise :class:`TrActStateError` when exact mode cannot run on the installed PyTorch."""
    missing = missing_for_exact_mode()
    if missing:
        raise TrActStateError(
            f"exact TrAct needs PyTorch internals that torch {torch.__version__} lacks: {'; '.join(missing)}. "
            f"It was checked on torch {', '.join(CHECKED_ON)}; install one of those, or use exact=False (the "
            "paper's per-backward mode, which needs none of them)"
        )


# -- backward passes ----------------------------------------------------------------------------------------------
def current_backward_pass() -> int | None:
    """An id of the backward pass (autograd graph task) running on this thread, ``None`` outside one.

    Stands in for: "is this the first call of my layer in this ``loss.backward()``?".
    """
    task = _graph_task_id() if _graph_task_id is not None else -1
    return None if task == -1 else task


def run_after_backward(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the running backward pass has finished, after every callback queued before it.

    Stands in for a public "end of backward" hook (DDP and FSDP2 use the same one for their final reductions).
    """
    _engine.queue_callback(callback)


def gradient_accumulator(leaf: torch.Tensor) -> Any:
    """The autograd node that accumulates into ``leaf.grad``, also from inside a custom operator.

    Operators run below the autograd dispatch keys, so they are lifted for the one view through which PyTorch
    exposes a leaf's accumulator.
    """
    exclude = _C._dispatch_tls_local_exclude_set()
    for key in _autograd_keys:
        exclude = exclude.remove(key)
    include = _C._dispatch_tls_local_include_set()
    with _C._ForceDispatchKeyGuard(include, exclude), torch.enable_grad():
        return leaf.view_as(leaf).grad_fn.next_functions[0][0]


def will_accumulate_into_grad(leaf: torch.Tensor, accumulator: Any = None) -> bool:
    """Whether the running backward will add into ``leaf.grad``: ``True`` for ``loss.backward()``, ``False`` for
    ``torch.autograd.grad`` (which returns gradients instead) and for a leaf that needs no gradient.
    ``accumulator``: the leaf's :func:`gradient_accumulator`, when the caller kept it."""
    if not leaf.requires_grad or _will_execute is None:
        return False
    try:
        return bool(_will_execute(accumulator or gradient_accumulator(leaf)))
    except RuntimeError:  # PyTorch refuses the question for a leaf during autograd.grad(): no accumulation
        return False


# -- wrappers -----------------------------------------------------------------------------------------------------
def active_ddp() -> Any:
    """The ``DistributedDataParallel`` whose forward is running, or ``None``."""
    from torch.nn.parallel import DistributedDataParallel

    finder = getattr(DistributedDataParallel, "_get_active_ddp_module", None)
    return finder() if finder is not None else None


def fsdp_param_groups() -> list[Any] | None:
    """Every live FSDP2 parameter group (``fully_shard``); ``None`` when this PyTorch does not expose them."""
    try:
        from torch.distributed._composable_state import _module_state_mapping
    except ImportError:
        return None
    groups: list[Any] = []
    for entry in list(_module_state_mapping.values()):
        state = entry() if isinstance(entry, weakref.ref) else entry
        found = getattr(state, "_fsdp_param_groups", None)
        if found is None:
            single = getattr(state, "_fsdp_param_group", None)
            found = [single] if single is not None else []
        groups += found
    return groups


def fsdp_param_of(module: torch.nn.Module) -> tuple[Any, Any] | tuple[None, None]:
    """(FSDP2 parameter record, its group) that manages ``module.weight``, or ``(None, None)``.

    Raises :class:`TrActStateError` when the weight is sharded (a ``DTensor``) but this PyTorch's FSDP2 internals
    cannot be read: the covariance could then not be summed over the right ranks.
    """
    groups = fsdp_param_groups()
    if groups is None:
        if _is_sharded(module):
            raise TrActStateError(
                f"exact TrAct on an FSDP2-sharded {type(module).__name__}: torch {torch.__version__} does not "
                "expose FSDP2's parameter groups, so the covariance cannot be summed over the ranks that reduce "
                "the gradient. Use a PyTorch release listed in tract_hub._torch_internals.CHECKED_ON, or exact=False"
            )
        return None, None
    for group in groups:
        for fsdp_param in group.fsdp_params:
            info = fsdp_param._module_info
            if info.module is module and info.param_name == "weight":
                return fsdp_param, group
    return None, None


def fsdp_accumulated_grads(fsdp_param: Any) -> tuple[torch.Tensor | None, ...]:
    """Where FSDP2 keeps a weight's gradient, in the order it is looked for: the sharded parameter's ``.grad``,
    the unsharded gradient kept while gradient sync is off, the unsharded parameter's ``.grad``."""
    return (
        fsdp_param.sharded_param.grad,
        getattr(fsdp_param, "unsharded_accumulated_grad", None),
        getattr(getattr(fsdp_param, "_unsharded_param", None), "grad", None),
    )


def fsdp_reduces(group: Any) -> bool:
    """Whether FSDP2 reduces this group's gradients in the coming backward (``set_requires_gradient_sync``)."""
    return bool(group.reduce_grads)


def fsdp_process_groups(fsdp_param: Any) -> tuple[Any, ...]:
    """The process groups FSDP2 reduces this parameter's gradient over, one per mesh dimension (HSDP has two)."""
    mesh = fsdp_param.mesh_info.mesh
    return tuple(mesh.get_group(dim) for dim in range(mesh.ndim))


def _is_sharded(module: torch.nn.Module) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return False
    return isinstance(module._parameters.get("weight"), DTensor)


# -- transforms ---------------------------------------------------------------------------------------------------
def exporting() -> bool:
    """Whether ``torch.export`` is tracing (and not ``torch.compile``).

    Stands in for ``torch.compiler.is_exporting()``, which the compiler of torch < 2.10 folds to ``True`` while
    ``torch.compile`` traces too; the flag behind it is read directly where it exists.
    """
    flag = getattr(torch.compiler, "_is_exporting_flag", None)
    return bool(flag) if flag is not None else torch.compiler.is_exporting()


def under_functorch(*tensors: torch.Tensor) -> bool:
    """Whether ``torch.func`` (``grad``, ``vmap``, ``jacrev``, ...) is transforming a call on these tensors (never
    while ``torch.compile`` traces: the compiler handles its own transforms)."""
    if _is_functorch_wrapped is None or torch.compiler.is_compiling():
        return False
    return any(isinstance(t, torch.Tensor) and _is_functorch_wrapped(t) for t in tensors)


def scripting_root() -> object | None:
    """The module ``torch.jit.script`` was called on, while TorchScript prepares it and its children (``None``
    outside that).

    Read from TorchScript's own recursion (``call_prepare_scriptable_func_impl``, whose outermost call holds the
    root): a child's prepared copy replaces the child inside the caller's own model, so only the root may be
    swapped for a plain copy.
    """
    frame, root = sys._getframe(), None
    while frame is not None:
        if frame.f_code.co_name == "call_prepare_scriptable_func_impl":
            root = frame.f_locals.get("obj")
        frame = frame.f_back
    return root


def is_real_meta(tensor: torch.Tensor) -> bool:
    """A tensor on the meta device that is not one of the compiler's fake tensors (so real code may run on it)."""
    from torch._subclasses.fake_tensor import FakeTensor

    return tensor.device.type == "meta" and not isinstance(tensor, FakeTensor)
