"""Example inputs for tracing a model whose input shape nobody told us.

The guesses, in order: the shapes a rule gives; timm's ``pretrained_cfg["input_size"]``; image sizes the model
declares (``img_size``, ``image_size``, ``input_size`` attributes); 224 and 32 pixels. The number of channels and
of spatial dimensions come from the first Linear/convolution layer registered in the model (and from timm's
config); the number of positional inputs from the signature of ``model.forward``.

Example:
    >>> import torch
    >>> candidate_shapes(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3)))[0]
    ((1, 1, 224, 224),)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from torch import nn

from ..core.layer_ops import SUPPORTED_LAYER_TYPES

_SIZE_ATTRIBUTES = ("img_size", "image_size", "input_size")
_FRAME_ATTRIBUTES = ("num_frames", "frames", "temporal_size")
_DEFAULT_SIZES = (224, 32)
_DEFAULT_FRAMES = 16

Shapes = tuple[tuple[int, ...], ...]


def positional_inputs(model: nn.Module) -> int:
    """How many positional arguments ``model.forward`` requires (at least one)."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return 1
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            break
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if parameter.kind in positional and parameter.default is inspect.Parameter.empty:
            count += 1
    return max(1, count)


def _as_size(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value, value)
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) and v > 0 for v in value):
        return tuple(value)
    return None


def _first_layer(model: nn.Module) -> nn.Module | None:
    return next((module for module in model.modules() if isinstance(module, SUPPORTED_LAYER_TYPES)), None)


def _declared(model: nn.Module, attributes: tuple[str, ...], limit: int = 3) -> Iterator[Any]:
    found = 0
    for module in model.modules():
        for attribute in attributes:
            value = module.__dict__.get(attribute)
            if value is not None:
                yield value
                found += 1
                if found >= limit:
                    return


def _config_input_size(model: nn.Module) -> tuple[int, ...] | None:
    config = getattr(model, "pretrained_cfg", None)
    size = config.get("input_size") if isinstance(config, dict) else None
    if isinstance(size, (tuple, list)) and len(size) >= 2 and all(isinstance(v, int) and v > 0 for v in size):
        return tuple(size)
    return None


def candidate_shapes(model: nn.Module) -> list[Shapes]:
    """Plausible shapes of the positional inputs of ``model`` (batch 1), most plausible first."""
    first = _first_layer(model)
    config_size = _config_input_size(model)
    channels: list[int] = []
    if isinstance(first, nn.modules.conv._ConvNd):
        channels.append(first.in_channels)
    if config_size:
        channels.append(config_size[0])
    channels.append(3)
    spatial_dims = len(first.kernel_size) if isinstance(first, nn.modules.conv._ConvNd) else 2

    sizes: list[tuple[int, ...]] = []
    if config_size:
        sizes.append(config_size[1:])
    sizes += [size for size in map(_as_size, _declared(model, _SIZE_ATTRIBUTES)) if size]
    sizes += [(size, size) for size in _DEFAULT_SIZES]

    frames = [v for v in _declared(model, _FRAME_ATTRIBUTES) if isinstance(v, int) and v > 0] + [_DEFAULT_FRAMES]
    shapes: list[tuple[int, ...]] = []
    for size in sizes:
        for channel in channels:
            if spatial_dims == 1:
                spatial: tuple[int, ...] = (size[-1],)
            elif spatial_dims == 3:
                spatial = size if len(size) == 3 else (frames[0], *size[-2:])
            else:
                spatial = size[-2:]
            shapes.append((1, channel, *spatial))
    if isinstance(first, nn.Linear):
        shapes += [(1, first.in_features), (1, 1, first.in_features)]
    count = positional_inputs(model)
    return [(shape,) * count for shape in dict.fromkeys(shapes)]
