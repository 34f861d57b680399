"""``tract_hub.patch``: find the first layer(s) of a model and install TrAct on them, in place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .errors import InvalidArgumentError
from .patching import api as patching

logger = logging.getLogger("tract_hub")


def patch(
    model: nn.Module,
    lam: float = 0.1,
    *,
    target: str | Sequence[str] | None = None,
    exact: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    process_group: Any = None,
) -> nn.Module:
    """Install TrAct in place on the first layer(s) of ``model`` and return the model.

    After any backward, the first layer's ``.grad`` holds the exact TrAct gradient of everything accumulated into
    it since it was last cleared, on one process or many: train exactly as before (gradient accumulation,
    ``GradScaler``, clipping, DDP, FSDP2, Lightning, accelerate), with no call after ``patch``.

    Args:
        model: any ``nn.Module``; its class, parameters and ``state_dict`` are not changed.
        lam: TrAct's lambda (0.1 by default; the paper uses 0.05 to 0.2).
        target: the qualified name(s) of the layer(s) to patch. By default the first layer(s) are located by
            :func:`tract_hub.locate` (user rules, built-in rules, timm's ``first_conv``, then tracing).
        exact: ``True`` (default): TrAct of the whole accumulated batch, however it was split into micro-batches
            and ranks. ``False``: the paper's per-backward mode, one solve per backward with that backward's own
            covariance (the same for one batch on one process, a different update under accumulation or DDP).
        optimizer: a first-layer weight that the patch unfroze is added to it if it does not hold it yet.
        process_group: the ``torch.distributed`` group over which you average gradients yourself, for models that
            run outside ``DistributedDataParallel`` and FSDP2 (those say by themselves how gradients are reduced).

    Patching again updates ``lam`` (and ``exact``, between optimizer steps); TrAct is never applied twice. A
    frozen first layer (e.g. torchvision detection backbones) is made trainable, with a warning and
    ``unfrozen=True`` in :func:`tract_hub.patched_layers`.

    Example:
        >>> import torch, tract_hub
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Flatten())
        >>> model = tract_hub.patch(model, lam=0.1, target="0")
        >>> model(torch.randn(2, 3, 8, 8)).sum().backward()
        >>> tract_hub.is_patched(model)
        True
    """
    patching.check_model(model)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise InvalidArgumentError(
            f"optimizer={optimizer!r:.80} is a {type(optimizer).__name__}, not a torch.optim.Optimizer; pass the "
            "optimizer object that trains the model (or nothing)"
        )
    if target is None:
        from .registry import locate

        located = locate(model)
        names = [layer.name for layer in located]
        rules = {layer.name: layer.rule for layer in located}
        row_masks = {layer.name: layer.row_mask for layer in located if layer.row_mask is not None}
    else:
        names = target
        rules, row_masks = None, None
    report = patching.patch_layers(
        model, names, lam, exact=exact, found_by=rules, process_group=process_group, row_masks=row_masks
    )
    if target is not None:
        _warn_if_not_first_layers(model, [layer.name for layer in report])
    if optimizer is not None:
        _add_unfrozen_to_optimizer(model, report, optimizer)
    if not exact:
        _warn_if_distributed()
    logger.info(
        "TrAct (lam=%s, %s) on %s",
        lam,
        "exact" if exact else "per-backward",
        ", ".join(f"{layer.name} [{layer.found_by}]" for layer in report),
    )
    return model


def _warn_if_not_first_layers(model: nn.Module, named: list[str]) -> None:
    """TrAct is meant for the layers that consume the model's input: say so when a target names another one that
    a rule or timm's ``first_conv`` contradicts (no trace: naming the layer is how a user avoids one)."""
    from .registry.locate import known_first_layers

    known = known_first_layers(model)
    if known is None:
        return
    first = set(known)
    other = [name for name in named if name not in first]
    if other:
        logger.warning(
            "tract_hub.patch(target=%s): %s %s not the model's first layer (the registry finds %s). TrAct is made "
            "for the layer that consumes the input; on a later layer its inputs are features, not pixels, and the "
            "paper's results do not apply. Patching as asked.",
            named,
            ", ".join(repr(name) for name in other),
            "is" if len(other) == 1 else "are",
            sorted(first),
        )


def _add_unfrozen_to_optimizer(model: nn.Module, report: list[patching.PatchedLayer], optimizer: Any) -> None:
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    modules = dict(model.named_modules())
    for layer in report:
        weight = modules[layer.name].weight
        if layer.unfrozen and id(weight) not in held:
            optimizer.add_param_group({"params": [weight]})
            logger.warning(
                "TrAct: added the unfrozen weight of %r to the optimizer (a new param group with the "
                "optimizer's defaults)",
                layer.name,
            )


def _warn_if_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        logger.warning(
            "TrAct in per-backward mode under %d ranks: each rank solves with its own covariance, so the update "
            "depends on how the batch is split. The default, tract_hub.patch(model) (exact=True), gives the "
            "update of the whole batch.",
            dist.get_world_size(),
        )
