"""The TrAct gradient of a patched model's first layers, computed independently of tract_hub's patching code.

:class:`LayerCallRecorder` records, during a real forward/backward of the patched model, every Linear/convolution
call made inside the named modules: the input it received (after any padding the layer does itself), the
arguments of the call, and the gradient of its output. :meth:`LayerCallRecorder.expected_grad` then builds the
paper's formula in float64 from those facts alone, with the project's test reference (``tests/reference.py``)::

    G = grad_z^T x,   G_tract = G @ inverse(x^T x / N + lam * I)     (per call, per group; summed over calls)

and carries it back through the layer's weight computation (weight standardization) with autograd.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from tests.op_recorder import explicit_conv_args
from tests.reference import conv_rows, linear_rows, tract_reference

_NAMES = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_DIMS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3, F.linear: 0}


def _bind(func: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The call's arguments by name, in the form ``tests.op_recorder`` records them."""
    call = dict(zip(_NAMES, args, strict=False))
    call.update(kwargs)
    call["dims"] = _DIMS[func]
    return call


def _rows(call: dict[str, Any]) -> torch.Tensor:
    """The call's input rows, ``(groups, N, n)`` in float64."""
    if call["dims"] == 0:
        return linear_rows(call["input"])[None]
    return conv_rows(call["input"], **explicit_conv_args(call))


class _GradientTap(torch.autograd.Function):
    """A copy of the layer's output whose backward records the gradient that reaches it. A hook on the output
    itself would miss it when the model adds to that tensor in place (timm's NaFlexVit adds its position
    embedding with ``add_``): the hook stays on the tensor's older version."""

    @staticmethod
    def forward(ctx, output, record):  # type: ignore[override]
        ctx.record = record
        return output.clone()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        ctx.record["grad"] = grad.detach().double()
        return grad, None


class LayerCallRecorder(TorchFunctionMode):
    """Use as ``with LayerCallRecorder(model, names) as recorder:`` around forward and backward."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.inside: list[str] = []
        self.calls: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        self._handles = []
        for name in names:
            module = model.get_submodule(name)
            self._handles.append(module.register_forward_pre_hook(self._enter(name)))
            self._handles.append(module.register_forward_hook(self._leave, always_call=True))

    def _enter(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any) -> None:
            self.inside.append(name)

        return hook

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self.inside.pop()

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if func in _DIMS and self.inside and isinstance(output, torch.Tensor) and output.requires_grad:
            call = _bind(func, args, kwargs)
            record = {"rows": _rows(call), "x": call["input"].detach(), "conv": call["dims"] > 0, "grad": None}
            self.calls[self.inside[-1]].append(record)
            return _GradientTap.apply(output, record)
        return output

    def condition(self, name: str, lam: float) -> float:
        """The largest condition number of ``x^T x / N + lam I`` over the layer's calls and groups."""
        worst = 1.0
        for call in self.calls[name]:
            rows = call["rows"]
            cov = rows.transpose(1, 2) @ rows / rows.shape[1]
            eye = torch.eye(rows.shape[-1], dtype=torch.float64)
            worst = max(worst, float(torch.linalg.cond(cov + lam * eye).max()))
        return worst

    def expected_grad(self, name: str, lam: float) -> torch.Tensor:
        """The TrAct gradient of the layer's ``weight`` parameter (float64), from the recorded calls."""
        module = self.model.get_submodule(name)
        used = _used_weight(module, self.calls[name][0]["x"])
        total = torch.zeros(used.shape, dtype=torch.float64)
        for call in self.calls[name]:
            assert call["grad"] is not None, f"no gradient reached the output of {name}"
            rows = call["rows"]  # (groups, N, n)
            groups, count, _ = rows.shape
            grad = call["grad"].movedim(1, -1) if call["conv"] else call["grad"]  # channels last, like the rows
            grad = grad.reshape(count, groups, -1)  # (N, groups, m / groups)
            plain = torch.einsum("rgm,grn->gmn", grad, rows).reshape(used.shape)  # G = grad_z^T x
            total += tract_reference(plain, rows, lam)
        if used is module.weight:
            return total
        (grad,) = torch.autograd.grad(used, module.weight, grad_outputs=total.to(used.dtype))
        return grad.double()


def _used_weight(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The weight the module's class forward passes to its Linear/convolution (with autograd to ``weight``)."""
    captured: list[torch.Tensor] = []

    class Stop(Exception):
        pass

    class Capture(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
            if func in _DIMS:
                captured.append(_bind(func, args, kwargs or {})["weight"])
                raise Stop
            return func(*args, **(kwargs or {}))

    with torch.enable_grad(), Capture(), contextlib.suppress(Stop):
        type(module).forward(module, x[:1].to(module.weight.dtype))
    return captured[0]
