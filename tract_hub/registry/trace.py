"""Discovery by tracing: follow the input through one forward pass and find the learned Linear/conv calls on it.

The forward runs through :func:`torch.func.functional_call` with copies of the parameters and buffers (on the
meta device, so nothing is computed and the real model is not touched; on the CPU with a small real tensor when
the model cannot run on meta), under a :class:`~torch.overrides.TorchFunctionMode` that carries three facts on
every tensor it sees:

* ``input``: the tensor depends on the model's input;
* ``params``: the names of the learned parameters it depends on;
* ``layer``: it depends on the output of a learned Linear/convolution (or another learned operation) applied to
  the input, i.e. it is a feature, no longer the input.

A call of ``F.linear`` / ``F.conv1d/2d/3d`` whose input is the input (``input`` and not ``layer``) and whose weight
comes from learned parameters (and not from the input) is a first-layer call. Everything else is seen through:
layout, padding, resizing, normalization, and convolutions with a fixed weight (a buffer, such as a DCT).

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.ReflectionPad2d(1), torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    >>> [call.module for call in trace_first_layers(model, (torch.zeros(1, 3, 8, 8),)).calls]
    ['1']
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..core.layer_ops import LAYER_OPS, LayerCall
from .isolation import eval_mode, input_copy, model_dtype, module_stack, preserved_attributes, state_copies
from .meta_ops import meta_result

_TAINT = "_tract_hub_taint"

#: Learned operations TrAct cannot act on: when one consumes the input with a learned operand, what follows is a
#: feature (a later Linear/convolution is not a first layer), and the trace reports the operation.
UNSUPPORTED_LEARNED_OPS: frozenset[Any] = frozenset(
    {
        torch.matmul,
        torch.mm,
        torch.bmm,
        torch.einsum,
        torch.addmm,
        torch.baddbmm,
        torch.Tensor.matmul,
        torch.Tensor.__matmul__,
        torch.Tensor.__rmatmul__,
        torch.Tensor.mm,
        torch.Tensor.bmm,
        F.conv_transpose1d,
        F.conv_transpose2d,
        F.conv_transpose3d,
        F.bilinear,
        F.embedding,
    }
)


@dataclass(frozen=True)
class Taint:
    """What a tensor seen by the trace depends on."""

    input: bool = False
    layer: bool = False
    params: frozenset[str] = frozenset()

    @property
    def is_input(self) -> bool:
        """Derived from the model's input through non-learned operations only."""
        return self.input and not self.layer

    def __or__(self, other: Taint) -> Taint:
        return Taint(self.input or other.input, self.layer or other.layer, self.params | other.params)


CLEAN = Taint()


def taint_of(value: Any) -> Taint:
    return getattr(value, _TAINT, CLEAN) if isinstance(value, torch.Tensor) else CLEAN


def _mark(value: Any, taint: Taint) -> None:
    if isinstance(value, torch.Tensor):
        setattr(value, _TAINT, taint_of(value) | taint)


@dataclass(frozen=True)
class FirstLayerCall:
    """One Linear/convolution call on the model's input, as the trace saw it.

    Attributes:
        module: qualified name of the module owning the weight's parameters.
        op: ``"linear"``, ``"conv1d"``, ``"conv2d"`` or ``"conv3d"``.
        params: the learned parameters the weight was computed from.
        input_shape: shape of the tensor the operation received.
        weight_shape: shape of the weight the operation received.
        caller: the innermost module whose forward made the call (``""``: the model's own forward).
    """

    module: str
    op: str
    params: tuple[str, ...]
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    caller: str
    inside_module_forward: bool


@dataclass
class TraceResult:
    """The first-layer calls of one traced forward, and the learned operations on the input TrAct cannot act on."""

    calls: list[FirstLayerCall] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    device: str = "meta"
    inputs: tuple[tuple[int, ...], ...] = ()

    @property
    def modules(self) -> list[str]:
        """The first-layer modules, each once, in call order."""
        return list(dict.fromkeys(call.module for call in self.calls))


class TraceFailed(RuntimeError):
    """The model's forward raised during the trace; ``partial`` holds what was seen before."""

    def __init__(self, message: str, partial: TraceResult) -> None:
        super().__init__(message)
        self.partial = partial


def _owner(params: frozenset[str]) -> str:
    """The deepest module owning every parameter in ``params``."""
    paths = [name.split(".")[:-1] for name in sorted(params)]
    common = paths[0]
    for path in paths[1:]:
        size = 0
        while size < min(len(common), len(path)) and common[size] == path[size]:
            size += 1
        common = common[:size]
    return ".".join(common)


def _op_name(func: Any) -> str:
    return "linear" if func is F.linear else getattr(func, "__name__", str(func))


class _TaintMode(TorchFunctionMode):
    """Propagates :class:`Taint` through every torch function call and records first-layer calls."""

    def __init__(self, stack: list[str], meta: bool) -> None:
        super().__init__()
        self.stack = stack
        self.meta = meta
        self.result = TraceResult()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        flat, _ = tree_flatten((args, kwargs))
        taint = CLEAN
        for value in flat:
            taint = taint | taint_of(value)
        call: FirstLayerCall | None = None
        unsupported: str | None = None
        if func in LAYER_OPS and taint.input:
            taint, call = self._layer_call(func, args, kwargs, taint)
        elif func in UNSUPPORTED_LEARNED_OPS and taint.input:
            taint, unsupported = self._learned_op(func, flat, taint)
        result = meta_result(func, args, kwargs) if self.meta else None
        if result is None:
            result = func(*args, **kwargs)
        # recorded once the operation has accepted its arguments (a wrong input shape fails it)
        if call is not None:
            self.result.calls.append(call)
        if unsupported is not None:
            self.result.unsupported.append(unsupported)
        if taint == CLEAN:
            return result
        out, _ = tree_flatten(result)
        for value in out:
            _mark(value, taint)
        name = getattr(func, "__name__", "")
        if name == "__setitem__" or (name.endswith("_") and not name.endswith("__")):
            _mark(args[0] if args else None, taint)  # in place: the mutated tensor now carries the taint
        _mark(kwargs.get("out"), taint)
        return result

    def _layer_call(self, func: Any, args: tuple, kwargs: dict, taint: Taint) -> tuple[Taint, FirstLayerCall | None]:
        """A Linear/convolution call: a first-layer call when its input is the input and its weight learned."""
        bound = LayerCall.bind(func, args, kwargs)
        x, weight = taint_of(bound.input), taint_of(bound.weight)
        if not (x.is_input and weight.params and not weight.input):
            return taint, None
        module = _owner(weight.params)
        call = FirstLayerCall(
            module=module,
            op=_op_name(func),
            params=tuple(sorted(weight.params)),
            input_shape=tuple(bound.input.shape),
            weight_shape=tuple(bound.weight.shape),
            caller=self.stack[-1] if self.stack else "",
            inside_module_forward=module in self.stack,
        )
        return Taint(input=True, layer=True, params=taint.params), call

    def _learned_op(self, func: Any, flat: list[Any], taint: Taint) -> tuple[Taint, str | None]:
        """Another learned operation on the input (a matmul with a parameter, ...): what follows is a feature."""
        taints = [taint_of(value) for value in flat if isinstance(value, torch.Tensor)]
        if any(t.is_input for t in taints) and any(t.params and not t.input for t in taints):
            params = sorted(set().union(*(t.params for t in taints if not t.input)))
            caller = self.stack[-1] if self.stack else ""
            note = f"{_op_name(func)} with parameter(s) {', '.join(params)} in {caller!r}"
            return Taint(input=True, layer=True, params=taint.params), note
        return taint, None


def trace_first_layers(
    model: nn.Module,
    inputs: Sequence[Any],
    *,
    device: str = "meta",
    forward_kwargs: dict[str, Any] | None = None,
) -> TraceResult:
    """Run ``model`` once on ``inputs`` (positional arguments) and return the Linear/convolution calls on them.

    ``device="meta"`` runs on meta copies of the parameters and buffers (nothing is computed); ``"cpu"`` on
    real CPU copies (float32). Tensors in ``inputs`` are moved to that device. The model runs in eval mode and
    is left as it was: parameters, buffers, module attributes, training flags and the CPU random state (forward
    hooks registered on the model do run, on the trace's tensors). An exception of the forward is raised as
    :class:`TraceFailed`.
    """
    dtype = model_dtype(model) if device == "meta" else torch.float32
    flat, spec = tree_flatten(list(inputs))
    generator = torch.Generator().manual_seed(0)
    moved = []
    for value in flat:
        if isinstance(value, torch.Tensor):
            value = input_copy(value, device, dtype, generator)
            setattr(value, _TAINT, Taint(input=True))
        moved.append(value)
    args = spec.unflatten(moved)
    parameters, buffers = state_copies(model, device)
    for name, copy in parameters.items():
        setattr(copy, _TAINT, Taint(params=frozenset({name})))
    with (
        warnings.catch_warnings(),  # the forward runs on made-up inputs: its warnings would only be noise
        torch.random.fork_rng(devices=[]),
        torch.no_grad(),
        preserved_attributes(model),
        eval_mode(model),
        module_stack(model) as stack,
        _TaintMode(stack, meta=device == "meta") as mode,
    ):
        warnings.simplefilter("ignore")
        mode.result.device = device
        mode.result.inputs = tuple(tuple(v.shape) for v in moved if isinstance(v, torch.Tensor))
        try:
            state = {**parameters, **buffers}
            torch.func.functional_call(model, state, tuple(args), forward_kwargs or {}, tie_weights=True, strict=False)
        except Exception as error:  # the model's own forward failed on these inputs / this device
            message = (str(error).strip().splitlines() or [""])[0][:300]
            raise TraceFailed(f"{type(error).__name__}: {message}", mode.result) from error
    return mode.result
