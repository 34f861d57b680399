"""Install and remove TrAct on named layers of a model, in place.

These functions take explicit layer names; :func:`tract_hub.patch` adds the registry that finds them.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import _torch_internals as internals
from ..core.layer_ops import SUPPORTED_LAYER_TYPES, LayerCall, LayerOpMode
from ..core.module_ref import ModuleRef
from ..core.names import class_name
from ..errors import InvalidArgumentError, TargetNotFoundError, TrActStateError, UnsupportedLayerError
from .distributed import accumulated_gradient
from .gradient import GradientState
from .layer import TrActForward, probe_input
from .row_masks import RowMaskSource
from .scripting import SWAPS, PlainForScripting

logger = logging.getLogger(__name__)

#: Below this lambda, ``x^T x / N + lam * I`` is nearly singular whenever a batch has fewer rows than features or
#: constant inputs: a float32-summed covariance cannot resolve it, and float64 only barely.
SMALL_LAM = 1e-6
_warned_small_lam = False

#: The accumulation of a layer that was unpatched, kept so that patching it again continues it exactly.
_UNPATCHED_STATES: weakref.WeakKeyDictionary[nn.Module, GradientState] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class PatchedLayer:
    """What :func:`patched_layers` reports for one patched layer."""

    name: str
    layer_type: str
    lam: float
    exact: bool
    found_by: str
    unfrozen: bool


def check_lam(lam: object) -> float:
    """``lam`` as a float (any real number type, NumPy's included), or :class:`InvalidArgumentError` when it is not
    a positive finite number. Warns once when it is so small that the solve cannot honour it."""
    global _warned_small_lam
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not math.isfinite(lam) or lam <= 0:
        raise InvalidArgumentError(
            f"lam={lam!r} is not a positive finite number; TrAct's lambda is typically 0.1 (0.05 to 0.2 in the paper)"
        )
    if lam < SMALL_LAM and not _warned_small_lam:
        _warned_small_lam = True
        logger.warning(
            "TrAct: lam=%g is below %g. Where a batch has fewer rows than features (N < n) or constant inputs, "
            "x^T x/N + lam*I is then nearly singular: a covariance summed in float32 cannot resolve lam, and even "
            "float64 loses most digits (gradients off by orders of magnitude, NaN when the factorization fails). "
            "The paper uses 0.05 to 0.2.",
            lam,
            SMALL_LAM,
        )
    return float(lam)


def _installed(module: nn.Module) -> TrActForward | None:
    forward = module.__dict__.get("forward")
    return forward if isinstance(forward, TrActForward) else None


def iter_patched(model: nn.Module) -> Iterator[tuple[str, TrActForward]]:
    """(qualified name, installed forward) of every patched layer of ``model``."""
    SWAPS.restore()  # a module TorchScript just prepared holds the patched layers again
    for name, module in model.named_modules(remove_duplicate=True):
        installed = _installed(module)
        if installed is not None:
            yield name, installed


def check_layer(name: str, module: nn.Module) -> None:
    """Refuse (with the reason and the fix) any layer TrAct cannot honour exactly."""
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        raise UnsupportedLayerError(
            f"layer {name!r} ({class_name(module)}) has uninitialized lazy parameters; run one forward pass "
            "before patching"
        )
    if not isinstance(module, SUPPORTED_LAYER_TYPES):
        raise UnsupportedLayerError(
            f"layer {name!r} is a {class_name(module)}; TrAct acts on nn.Linear and nn.Conv1d/2d/3d layers "
            "(and their subclasses). Name the Linear/convolution inside it as target="
        )
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise UnsupportedLayerError(f"layer {name!r} ({class_name(module)}) has no weight tensor")
    if weight.is_complex() or not weight.is_floating_point():
        raise UnsupportedLayerError(f"layer {name!r} has a {weight.dtype} weight; TrAct needs a real float weight")
    _probe(name, module)


def _probe(name: str, module: nn.Module) -> None:
    """Run the layer's forward once on the smallest input (no gradient) and check that it makes exactly one
    Linear/convolution call, with a weight of the layer's weight shape."""
    seen: list[LayerCall] = []

    def record(call: LayerCall) -> Any:
        seen.append(call)
        return call.run()

    forward = module.__dict__.get("forward") or functools.partial(type(module).forward, module)
    if isinstance(forward, TrActForward):
        forward = forward.layer_forward()
    try:
        with torch.no_grad(), LayerOpMode(record):
            forward(probe_input(module))
    except Exception as error:  # the layer's own forward failed on a minimal input
        raise UnsupportedLayerError(
            f"layer {name!r} ({class_name(module)}) could not be checked: its forward failed on a minimal input "
            f"({type(error).__name__}: {error})"
        ) from error
    if len(seen) != 1 or tuple(seen[0].weight.shape) != tuple(module.weight.shape):
        found = [tuple(call.weight.shape) for call in seen]
        raise UnsupportedLayerError(
            f"layer {name!r} ({class_name(module)}): TrAct needs its forward to make exactly one F.linear/F.conv*d "
            f"call with a weight of shape {tuple(module.weight.shape)}; found calls with weights {found}"
        )


def resolve_targets(model: nn.Module, target: str | Sequence[str]) -> list[tuple[str, nn.Module]]:
    """Look up each named submodule; a missing name gives the closest existing names."""
    names = [target] if isinstance(target, str) else list(target) if isinstance(target, Sequence) else None
    if not names or any(not isinstance(n, str) for n in names):
        raise InvalidArgumentError(f"target={target!r} must be a module name or a non-empty list of names")
    modules = dict(model.named_modules())
    resolved = []
    for name in names:
        if name not in modules:
            import difflib

            close = difflib.get_close_matches(name, list(modules), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise TargetNotFoundError(
                f"target {name!r} is not a submodule of {type(model).__name__}{hint} "
                "(names are those of model.named_modules())"
            )
        resolved.append((name, modules[name]))
    return resolved


def patch_layers(
    model: nn.Module,
    names: str | Sequence[str],
    lam: float = 0.1,
    *,
    exact: bool = True,
    found_by: Mapping[str, str] | None = None,
    unfreeze: bool = True,
    process_group: Any = None,
    row_masks: Mapping[str, tuple[str, str]] | None = None,
) -> list[PatchedLayer]:
    """Install TrAct in place on the named layers of ``model``; returns what was patched.

    All layers are checked before any is patched. A layer already patched gets the new settings (TrAct is never
    applied twice; a new ``lam`` applies to everything its ``.grad`` has accumulated). A frozen weight is made
    trainable when ``unfreeze`` (and ``unpatch`` freezes it again). ``found_by`` maps a name to the rule that
    located it (default ``"target"``). ``row_masks`` maps a layer name to ``(module, argument)``: the forward
    argument of that module (a name in ``model``) that marks the layer's padding input rows
    (:mod:`~tract_hub.patching.row_masks`).
    """
    check_model(model)
    found_by = found_by or {}
    lam = check_lam(lam)
    if not isinstance(exact, bool):
        raise InvalidArgumentError(
            f"exact={exact!r} must be True (the default) or False (the paper's per-backward mode)"
        )
    if exact:
        internals.require_exact_mode()
    targets = resolve_targets(model, names)
    owners = {name: resolve_targets(model, owner)[0][1] for name, (owner, _) in (row_masks or {}).items()}
    for name, module in targets:
        check_layer(name, module)
        if exact:
            _check_weight_is_a_parameter(name, module)
        _check_mode_switch(name, module, exact)
    report = []
    for name, module in targets:
        installed = _installed(module)
        if installed is None:
            installed = TrActForward(
                module_ref=ModuleRef(module),
                lam=lam,
                exact=exact,
                found_by=found_by.get(name, "target"),
                previous_forward=module.__dict__.get("forward"),
                state=_UNPATCHED_STATES.pop(module, None) or GradientState(),
            )
            module.forward = installed  # instance attributes: class, parameters and state_dict are untouched
            module.__prepare_scriptable__ = PlainForScripting(module)
        elif (installed.lam, installed.exact) != (lam, exact):
            logger.info(
                "TrAct: %s already patched; lam %s -> %s, exact %s -> %s",
                name,
                installed.lam,
                lam,
                installed.exact,
                exact,
            )
            if installed.exact != exact:
                installed.reset()
            installed.lam, installed.exact = lam, exact
        installed.process_group = process_group
        if name in owners:
            _install_row_mask(installed, owners[name], row_masks[name][1])
        if unfreeze and not module.weight.requires_grad:
            module.weight.requires_grad_(True)
            installed.unfrozen = True
            logger.warning(
                "TrAct: the first layer %r was frozen (requires_grad=False); it is now trainable. An optimizer "
                "built before tract_hub.patch does not hold this parameter: build it after patching, or pass "
                "optimizer= to tract_hub.patch to add it.",
                name,
            )
        report.append(_record(name, installed))
    if "__prepare_scriptable__" not in model.__dict__:
        model.__dict__["__prepare_scriptable__"] = PlainForScripting(model)
    return report


def _install_row_mask(installed: TrActForward, owner: nn.Module, argument: str) -> None:
    current = installed.row_masks
    if current is not None and current.owner is owner and current.argument == argument:
        return
    if current is not None:
        current.remove()
    installed.row_masks = RowMaskSource(owner, argument, installed.module)


def check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(
            f"model={model!r:.80} is a {type(model).__name__}, not a torch.nn.Module; pass the model itself"
        )


def _check_weight_is_a_parameter(name: str, module: nn.Module) -> None:
    """Exact mode follows the accumulation in the weight's own ``.grad``: a weight computed on each access
    (``torch.nn.utils.parametrize``, the old ``weight_norm`` hooks) has none."""
    if module._parameters.get("weight") is None:
        raise UnsupportedLayerError(
            f"layer {name!r} ({class_name(module)}): its weight is computed from other parameters on each access "
            "(a parametrization such as weight_norm), so it has no .grad in which exact mode could follow the "
            "accumulation. Use exact=False (the paper's per-backward TrAct), or remove the parametrization."
        )


def _check_mode_switch(name: str, module: nn.Module, exact: bool) -> None:
    """Refuse to switch between exact and per-backward mode while the layer's ``.grad`` holds an accumulation:
    the two modes define that gradient differently, so the mixture would be neither."""
    installed = _installed(module)
    if installed is None or installed.exact == exact:
        return
    grad = accumulated_gradient(module)
    if grad is not None and bool(grad.ne(0).any()):  # patch() is not on the hot path: one sync is fine here
        raise TrActStateError(
            f"layer {name!r}: switching TrAct from {'exact' if installed.exact else 'per-backward'} to "
            f"{'exact' if exact else 'per-backward'} mode while its .grad holds an accumulated gradient; call "
            "optimizer.zero_grad() (or model.zero_grad()) first, i.e. switch between optimizer steps"
        )


def _record(name: str, installed: TrActForward) -> PatchedLayer:
    module = installed.module
    return PatchedLayer(
        name=name,
        layer_type=class_name(module),
        lam=installed.lam,
        exact=installed.exact,
        found_by=installed.found_by,
        unfrozen=installed.unfrozen,
    )


def patched_layers(model: nn.Module) -> tuple[PatchedLayer, ...]:
    """The patched layers of ``model``: name, type, lambda, mode, the rule that found them, and whether the
    patch made a frozen weight trainable.

    Example:
        >>> import torch, tract_hub
        >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), target="0")
        >>> [(layer.name, layer.lam) for layer in tract_hub.patched_layers(model)]
        [('0', 0.1)]
    """
    check_model(model)
    return tuple(_record(name, installed) for name, installed in iter_patched(model))


def unpatch(model: nn.Module) -> nn.Module:
    """Remove TrAct from every patched layer of ``model``, in place, and return the model.

    The layers behave exactly as before patching (a weight the patch unfroze is frozen again). A ``.grad``
    accumulated under TrAct keeps its value (it already is TrAct's gradient); later backwards add plain gradients.
    Patching the same layers again continues the accumulation exactly, as long as ``.grad`` still holds what the
    last TrAct backward left there.

    Example:
        >>> import torch, tract_hub
        >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Linear(4, 2)), target="0")
        >>> tract_hub.is_patched(tract_hub.unpatch(model))
        False
    """
    check_model(model)
    found = False
    for _, installed in list(iter_patched(model)):
        module = installed.module
        del module.__dict__["forward"]
        module.__dict__.pop("__prepare_scriptable__", None)
        if installed.row_masks is not None:
            installed.row_masks.remove()
        if installed.exact:
            _UNPATCHED_STATES[module] = installed.state
        if installed.previous_forward is not None:
            module.forward = installed.previous_forward
        if installed.unfrozen:
            module.weight.requires_grad_(False)
        found = True
    if isinstance(model.__dict__.get("__prepare_scriptable__"), PlainForScripting):
        del model.__dict__["__prepare_scriptable__"]
    if not found:
        logger.warning("tract_hub.unpatch: %s has no TrAct layer; nothing changed", type(model).__name__)
    return model


def is_patched(model: nn.Module) -> bool:
    """True when TrAct is installed on at least one layer of ``model``.

    Example:
        >>> import torch, tract_hub
        >>> tract_hub.is_patched(torch.nn.Linear(4, 2))
        False
    """
    check_model(model)
    return any(True for _ in iter_patched(model))
