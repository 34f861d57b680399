"""What a recipe can be checked for before training starts, without data, memory or the network.

:func:`preflight` builds the recipe's model on the meta device (no memory is allocated, no weights are read)
exactly as the trainer builds it, and checks that its ``target`` layer(s) exist and can be patched. A model
fine-tuned from a Hub repository (``model.init: hf-hub:...``) is not built: that would download it; its target
is checked when the trainer loads it.

Example:
    >>> from tract_hub.training.recipe import load_recipe
    >>> preflight(load_recipe("recipes/demo_digits.yaml", ["target=conv1"]))
    >>> try:
    ...     preflight(load_recipe("recipes/demo_digits.yaml", ["target=no_such_layer"]))
    ... except RecipeError as error:
    ...     print(str(error)[:60])
    target='no_such_layer' does not fit timm:tract_resnet8_cifar
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..artifacts.run_dir import RunDirectory
from ..errors import RecipeError, TrActError
from ..patching.api import check_layer, resolve_targets
from .modeling import build_model
from .recipe import Recipe

logger = logging.getLogger(__name__)

#: A number of classes to build the model with when the data set's is not known without reading it (the first
#: layer does not depend on it).
_ANY_CLASSES = 10


def _builds_offline(recipe: Recipe) -> bool:
    init = recipe.model.init
    return init is None or RunDirectory.holds_run(init) or Path(init.removeprefix("local-dir:")).is_dir()


def preflight(recipe: Recipe) -> None:
    """Build ``recipe``'s model on the meta device and check its ``target``; :class:`RecipeError` if it does not fit.

    Nothing is allocated, read from a data set or downloaded (see the module docstring).
    """
    if recipe.target is None:
        return
    if not _builds_offline(recipe):
        logger.info("target %r is checked when %s is loaded", recipe.target, recipe.model.init)
        return
    num_classes = recipe.model.kwargs.get("num_classes", _ANY_CLASSES)
    targets = [recipe.target] if isinstance(recipe.target, str) else list(recipe.target)
    with torch.device("meta"):
        built = build_model(recipe, num_classes)
    try:
        for name, module in resolve_targets(built.model, targets):  # what tract_hub.patch checks, installing nothing
            check_layer(name, module)
    except TrActError as error:
        raise RecipeError(f"target={recipe.target!r} does not fit {built.architecture}: {error}") from None
