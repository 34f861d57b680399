"""Running a model's forward for the trace without changing the model.

The trace runs the forward on copies of the parameters and buffers (:func:`state_copies`), in eval mode
(:func:`eval_mode`), with every module attribute put back afterwards (:func:`preserved_attributes`), and keeps
track of which modules' forwards are running (:func:`module_stack`).

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    >>> with preserved_attributes(model), eval_mode(model):
    ...     model.extra = 1
    ...     model.training
    False
    >>> model.training, hasattr(model, "extra")
    (True, False)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as module_hooks


@contextlib.contextmanager
def module_stack(model: nn.Module) -> Iterator[list[str]]:
    """The qualified names of the modules whose forward is running, innermost last.

    Uses global module hooks (removed at the end of the block) that only act in the calling thread.
    """
    names = {id(module): name for name, module in model.named_modules(remove_duplicate=False)}
    stack: list[str] = []
    thread = threading.get_ident()

    def enter(module: nn.Module, args: Any) -> None:
        if threading.get_ident() == thread:
            stack.append(names.get(id(module), "?"))

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        if threading.get_ident() == thread and stack:
            stack.pop()

    pre = module_hooks.register_module_forward_pre_hook(enter)
    post = module_hooks.register_module_forward_hook(leave, always_call=True)
    try:
        yield stack
    finally:
        pre.remove()
        post.remove()


@contextlib.contextmanager
def preserved_attributes(model: nn.Module) -> Iterator[None]:
    """Put back every module's attributes as they were (one level deep) when the block ends.

    Some forwards store things on their modules (torchvision's anchor generator moves its cached anchors to the
    input's device, models cache position embeddings): without this, a meta trace would leave meta tensors there.
    """
    saved = []
    for module in model.modules():
        attributes = dict(vars(module))
        contents = {
            key: (list(value) if isinstance(value, list) else dict(value))
            for key, value in attributes.items()
            if isinstance(value, list | dict)
        }
        saved.append((module, attributes, contents))
    try:
        yield
    finally:
        for module, attributes, contents in saved:
            current = vars(module)
            for key in [key for key in current if key not in attributes]:
                del current[key]
            current.update(attributes)
            for key, value in contents.items():
                container = attributes[key]
                if isinstance(container, list):
                    container[:] = value
                else:
                    container.clear()
                    container.update(value)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every module in eval mode for the trace (its own flag is put back by :func:`_preserved_attributes`)."""
    for module in model.modules():
        module.training = False
    yield


def _meta_copy(tensor: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(tensor, device="meta", requires_grad=False)


def _cpu_copy(tensor: torch.Tensor, generator: torch.Generator, is_parameter: bool) -> torch.Tensor:
    """A real CPU tensor (float32 for floating tensors): a parameter already there shares its storage (the forward
    only reads it), a buffer is copied; a tensor without data (meta) gets plausible values."""
    dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
    if tensor.device.type != "meta":
        return tensor.detach().to("cpu", dtype, copy=not is_parameter)
    if not tensor.is_floating_point():
        return torch.zeros(tensor.shape, dtype=dtype)
    if is_parameter:
        return torch.randn(tensor.shape, generator=generator, dtype=dtype) * 0.02
    return torch.ones(tensor.shape, dtype=dtype)


def state_copies(model: nn.Module, device: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """New tensor objects for every parameter and buffer of ``model`` on ``device`` (``"meta"`` or ``"cpu"``), for
    :func:`torch.func.functional_call`: ``(parameters, buffers)`` by qualified name."""
    generator = torch.Generator().manual_seed(0)
    if device == "meta":
        return (
            {name: _meta_copy(param) for name, param in model.named_parameters()},
            {name: _meta_copy(buffer) for name, buffer in model.named_buffers()},
        )
    return (
        {name: _cpu_copy(param, generator, is_parameter=True) for name, param in model.named_parameters()},
        {name: _cpu_copy(buffer, generator, is_parameter=False) for name, buffer in model.named_buffers()},
    )


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 when it has none)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def input_copy(value: torch.Tensor, device: str, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """``value`` on ``device`` (floating tensors in ``dtype``); a meta tensor gets uniform [0, 1) values on the CPU."""
    target = dtype if value.is_floating_point() else value.dtype
    if value.device.type == "meta" and device != "meta":
        if value.is_floating_point():
            return torch.rand(value.shape, generator=generator, dtype=target)
        return torch.zeros(value.shape, dtype=target)
    return value.detach().to(device, target, copy=True)


def make_inputs(shapes: Sequence[Sequence[int]], device: str, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """One input tensor per shape: uninitialized on meta, uniform in [0, 1) on the CPU (fixed seed)."""
    if device == "meta":
        return tuple(torch.empty(tuple(shape), device="meta", dtype=dtype) for shape in shapes)
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.rand(tuple(shape), generator=generator, dtype=torch.float32) for shape in shapes)
