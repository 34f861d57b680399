"""``locate(model)``: the first layer(s) of a model, found by rules, timm's config, or tracing.

Resolution order (the first tier that answers wins):

1. a rule the user registered (:func:`~tract_hub.registry.register_rule`);
2. a built-in rule for the model's class (torchvision families, a few timm models);
3. timm's own ``model.pretrained_cfg["first_conv"]`` (one name or a tuple of parallel first layers);
4. discovery by tracing one forward pass (:mod:`tract_hub.registry.trace`), on the meta device, or with a
   small real tensor on the CPU when the model cannot run on meta.

A name given by the user (``tract_hub.patch(model, target=...)``) comes before all of them and skips ``locate``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..core.layer_ops import SUPPORTED_LAYER_TYPES
from ..core.names import class_name
from ..errors import FirstLayerNotFoundError, InvalidArgumentError
from . import builtin  # noqa: F401  (registers the built-in rules)
from .inputs import candidate_shapes
from .isolation import make_inputs
from .rules import Rule, list_rules
from .trace import TraceFailed, TraceResult, trace_first_layers

logger = logging.getLogger(__name__)

FIRST_CONV = "timm.first_conv"
TRACE = "trace"

#: Wrappers whose inner model is traced and named with the prefix (``module.conv1`` for DDP).
_WRAPPERS = {
    "torch.nn.parallel.distributed.DistributedDataParallel": "module",
    "torch.nn.parallel.data_parallel.DataParallel": "module",
    "torch._dynamo.eval_frame.OptimizedModule": "_orig_mod",
}


@dataclass(frozen=True)
class FirstLayer:
    """One first layer of a model.

    Attributes:
        name: qualified module name (``model.get_submodule(name)`` is ``module``).
        module: the Linear/convolution module.
        rule: what found it: a rule's name, ``"timm.first_conv"`` or ``"trace"``.
        row_mask: ``(module, argument)`` naming where the model marks the layer's padding input rows (from the
            rule's ``row_mask``), or ``None``.
    """

    name: str
    module: nn.Module
    rule: str
    row_mask: tuple[str, str] | None = None

    @property
    def layer_type(self) -> str:
        """The module's class, e.g. ``"torch.nn.modules.conv.Conv2d"``."""
        return class_name(self.module)


class LocatedLayers(list):
    """The list :func:`locate` returns (of :class:`FirstLayer`), with how the answer was reached.

    Attributes:
        tried: one line per tier that was tried, in order.
        traced: the first layers the trace found (``None`` when it did not run).
        disagreement: with ``verify=True``, why the trace does not confirm the answer (``None`` when it does).
        trace: the full :class:`~tract_hub.registry.trace.TraceResult` when the trace ran.
    """

    def __init__(self, layers: Sequence[FirstLayer] = (), tried: Sequence[str] = ()) -> None:
        super().__init__(layers)
        self.tried: list[str] = list(tried)
        self.traced: list[str] | None = None
        self.disagreement: str | None = None
        self.trace: TraceResult | None = None

    @property
    def names(self) -> list[str]:
        """The qualified names of the first layers."""
        return [layer.name for layer in self]

    @property
    def verified(self) -> bool:
        """True when the trace ran and found exactly these layers."""
        return self.traced is not None and self.disagreement is None


def _unwrap(model: nn.Module) -> tuple[nn.Module, str]:
    prefix = ""
    while True:
        attribute = _WRAPPERS.get(class_name(model))
        inner = getattr(model, attribute, None) if attribute else None
        if not isinstance(inner, nn.Module):
            return model, prefix
        model, prefix = inner, f"{prefix}{attribute}."


def _first_conv_names(model: nn.Module) -> list[str] | None:
    config = getattr(model, "pretrained_cfg", None)
    if not isinstance(config, dict):
        return None
    value = config.get("first_conv")
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (tuple, list)) else []
    names = [name for name in names if isinstance(name, str) and name]
    return names or None


def _layer_modules(model: nn.Module, limit: int = 5) -> str:
    names = [name for name, module in model.named_modules() if isinstance(module, SUPPORTED_LAYER_TYPES)]
    shown = ", ".join(repr(name) for name in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"its Linear/convolution layers are {shown}{more}" if names else "it has no Linear/convolution layer"


def _describe(values: Sequence[Any]) -> str:
    """``1x3x224x224, 1x3x224x224`` for tensors or shapes."""
    parts = []
    for value in values:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else value
        parts.append("x".join(map(str, shape)) if isinstance(shape, tuple) else type(value).__name__)
    return ", ".join(parts)


def _trace(
    model: nn.Module, example_inputs: Sequence[Any] | None, rule_inputs: tuple, forward_kwargs: dict
) -> tuple[TraceResult | None, list[str]]:
    """Trace on meta, then on the CPU; returns the first trace that found a first layer, and what failed."""
    if example_inputs is not None:
        candidates = [tuple(example_inputs)]
    else:
        shapes = ([rule_inputs] if rule_inputs else []) + candidate_shapes(model)
        candidates = [make_inputs(shape, "meta", torch.float32) for shape in dict.fromkeys(shapes)]
    failures: list[str] = []
    ran: TraceResult | None = None
    cpu_inputs = candidates[0]  # when nothing runs on meta: the most plausible input
    for inputs in candidates:
        try:
            result = trace_first_layers(model, inputs, device="meta", forward_kwargs=forward_kwargs)
        except TraceFailed as failure:
            failures.append(f"meta, inputs {_describe(inputs)}: {failure}")
            if failure.partial.calls:  # a first layer took this input: the model needs real data
                cpu_inputs = inputs
                break
            continue
        if result.calls:
            return result, failures
        ran = ran or result
    if ran is None:
        try:
            result = trace_first_layers(model, cpu_inputs, device="cpu", forward_kwargs=forward_kwargs)
        except TraceFailed as failure:
            failures.append(f"cpu, inputs {_describe(cpu_inputs)}: {failure}")
        else:
            if result.calls:
                return result, failures
            ran = result
    if ran is not None:
        unsupported = f"; learned operations TrAct cannot act on consumed it: {'; '.join(ran.unsupported)}"
        failures.append(
            f"the forward ran ({ran.device}, inputs {_describe(ran.inputs)}) but no learned Linear/convolution "
            f"consumed the input{unsupported if ran.unsupported else ''}"
        )
    return None, failures


def _check_traced(model: nn.Module, result: TraceResult) -> None:
    outside = [call for call in result.calls if not call.inside_module_forward]
    if outside:
        call = outside[0]
        raise FirstLayerNotFoundError(
            f"{type(model).__name__}: the trace found {call.op} on the input with the weight of {call.module!r}, but "
            f"the call is made by {call.caller or 'the model itself'!r}, not inside {call.module!r}'s forward; "
            "TrAct acts on a layer's own forward. Restructure the model so that the layer is called as a module."
        )


def locate(
    model: nn.Module,
    *,
    verify: bool = False,
    example_inputs: Sequence[Any] | None = None,
) -> LocatedLayers:
    """Find the first layer(s) of ``model``: the learned Linear/convolution layers that consume its input.

    The model is not changed (parameters, buffers, training flags, RNG state, hooks). Tried in order: user
    rules, built-in rules, timm's ``pretrained_cfg["first_conv"]``, tracing one forward pass.

    Args:
        model: any ``nn.Module`` (DDP / DataParallel / ``torch.compile`` wrappers are seen through; names keep
            their prefix).
        verify: also trace the model and report, in ``.disagreement`` and a warning, any difference between the
            answer and the trace.
        example_inputs: positional inputs for the trace, for a model whose input shape cannot be guessed
            (the guesses: a rule's ``inputs``, timm's ``input_size``, declared image sizes, 224 and 32 pixels).

    Returns:
        a list of :class:`FirstLayer` (a :class:`LocatedLayers`, which also says what was tried).

    Raises:
        FirstLayerNotFoundError: no tier found a first layer; the message says what was tried and how to name
            the layer by hand.

    Example:
        >>> import torch, tract_hub
        >>> model = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
        >>> [(layer.name, layer.rule) for layer in tract_hub.locate(model)]
        [('1', 'trace')]
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"locate expects a torch.nn.Module, got {type(model).__name__}")
    root, prefix = _unwrap(model)
    tried: list[str] = []
    matching = [rule for rule in list_rules() if rule.matches(root)]
    answer, found_by = _from_rules(root, matching, tried)
    row_mask = next((rule.row_mask for rule in matching if rule.name == found_by), None)
    if row_mask is not None:
        row_mask = (prefix + row_mask[0], row_mask[1])
    if answer is None:
        answer, found_by = _from_first_conv(root, tried)
    result: TraceResult | None = None
    if answer is None or verify:
        settings = next((rule for rule in matching if rule.inputs or rule.forward_kwargs), None)
        lazy = _lazy_modules(root)
        if lazy:
            failures = [f"not run: the lazy modules {', '.join(lazy)} would be initialized; run one forward first"]
        else:
            inputs, kwargs = (settings.inputs, dict(settings.forward_kwargs)) if settings else ((), {})
            result, failures = _trace(root, example_inputs, inputs, kwargs)
        if result is None:
            tried += [f"trace: {failure}" for failure in failures]
        elif answer is None:
            _check_traced(root, result)
            answer, found_by = result.modules, TRACE
            tried.append(f"trace ({result.device}, inputs {_describe(result.inputs)}): found {', '.join(answer)}")
    if answer is None:
        raise FirstLayerNotFoundError(
            f"could not locate the first layer of {class_name(root)}. Tried: "
            + "; ".join(tried)
            + f". Name it by hand: tract_hub.patch(model, target='<name>') ({_layer_modules(root)})."
        )
    modules = dict(root.named_modules())
    located = LocatedLayers([FirstLayer(prefix + name, modules[name], found_by, row_mask) for name in answer], tried)
    if result is not None:
        located.trace = result
        located.traced = [prefix + name for name in result.modules]
    if verify:
        located.disagreement = _disagreement(located, result, tried)
        if located.disagreement:
            logger.warning("tract_hub.locate(%s, verify=True): %s", type(root).__name__, located.disagreement)
    logger.debug("locate(%s): %s by %s", type(root).__name__, located.names, found_by)
    return located


def known_first_layers(model: nn.Module) -> list[str] | None:
    """The first layers a rule or timm's ``first_conv`` names, without tracing (``None`` when neither does).

    Example:
        >>> import torchvision
        >>> known_first_layers(torchvision.models.resnet18())
        ['conv1']
    """
    root, prefix = _unwrap(model)
    matching = [rule for rule in list_rules() if rule.matches(root)]
    answer, _ = _from_rules(root, matching, [])
    if answer is None:
        answer, _ = _from_first_conv(root, [])
    return None if answer is None else [prefix + name for name in answer]


def _from_rules(model: nn.Module, matching: list[Rule], tried: list[str]) -> tuple[list[str] | None, str]:
    if not matching:
        tried.append(f"rules: none matches {type(model).__qualname__}")
    for rule in matching:
        names = rule.resolve(model)
        if names:
            return names, rule.name
        tried.append(f"rule {rule.name!r}: no Linear/convolution named {', '.join(rule.layers)}")
    return None, ""


def _from_first_conv(model: nn.Module, tried: list[str]) -> tuple[list[str] | None, str]:
    names = _first_conv_names(model)
    if names is None:
        tried.append("timm first_conv: none" if hasattr(model, "pretrained_cfg") else "timm first_conv: no config")
        return None, ""
    modules = dict(model.named_modules())
    bad = [name for name in names if not isinstance(modules.get(name), SUPPORTED_LAYER_TYPES)]
    if bad:
        tried.append(f"timm first_conv {names}: {', '.join(bad)} is not a Linear/convolution of the model")
        return None, ""
    return names, FIRST_CONV


def _disagreement(located: LocatedLayers, result: TraceResult | None, tried: list[str]) -> str | None:
    if result is None:
        return f"could not be verified: {tried[-1]}"
    answer, traced = set(located.names), set(located.traced or [])
    if answer == traced:
        outside = [call.module for call in result.calls if not call.inside_module_forward]
        return f"the weight of {outside} is used outside its module's forward" if outside else None
    rule = located[0].rule
    return (
        f"{rule!r} says {sorted(answer)} but the trace found {sorted(traced)}"
        + (f" (missing: {sorted(traced - answer)})" if traced - answer else "")
        + (f" (not on the input: {sorted(answer - traced)})" if answer - traced else "")
    )


def _lazy_modules(model: nn.Module) -> list[str]:
    """Lazy modules whose parameters a forward would initialize (tracing must not change the model)."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params()
    ]
