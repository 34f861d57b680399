"""A patched model is freed as soon as its last reference goes, as an unpatched one is.

What ``patch`` attaches to a module (its forward, ``__prepare_scriptable__``, a row-mask owner's hooks) refers back
to the module weakly. A reference cycle there would leave every dropped copy of a patched model to the cyclic
collector, which does not count tensor memory: timm's own ``test_prune_intermediate_layers_contract`` deep-copies a
412M-parameter model a dozen times and ran out of 24 GiB that way. The collector is off in these tests, so only
reference counting can free the model.
"""

from __future__ import annotations

import copy
import gc
import io
import pickle
import weakref
from collections.abc import Callable, Iterator

import pytest
import timm
import torch
from torch import nn

import tract_hub
from tract_hub.errors import TrActStateError


@pytest.fixture(autouse=True)
def no_cyclic_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def conv_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def naflexvit() -> nn.Module:
    from timm.models.naflexvit import NaFlexVit, NaFlexVitCfg

    return NaFlexVit(cfg=NaFlexVitCfg(patch_size=16, embed_dim=32, depth=1, num_heads=2), num_classes=3)


BUILDERS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "conv-net": (conv_net, (2, 3, 8, 8)),
    "timm-resnet": (lambda: timm.create_model("test_resnet", num_classes=3), (2, 3, 32, 32)),
    "timm-naflexvit-row-masks": (naflexvit, (2, 3, 32, 32)),
}


def train_step(model: nn.Module, shape: tuple[int, ...]) -> None:
    model(torch.randn(shape)).sum().backward()


def freed_by_refcount(make: Callable[[], nn.Module]) -> bool:
    model = make()
    alive = weakref.ref(model)
    del model
    return alive() is None


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "per-backward"])
@pytest.mark.parametrize("name", BUILDERS)
def test_a_trained_patched_model_is_freed_without_the_cyclic_collector(name: str, exact: bool) -> None:
    build, shape = BUILDERS[name]

    def trained() -> nn.Module:
        model = tract_hub.patch(build(), 0.1, exact=exact)
        train_step(model, shape)
        return model

    assert freed_by_refcount(build)  # the control: the unpatched model
    assert freed_by_refcount(trained)


def test_copies_pickles_and_unpatched_models_are_freed_too() -> None:
    build, shape = BUILDERS["timm-resnet"]
    model = tract_hub.patch(build(), 0.1)
    train_step(model, shape)
    assert freed_by_refcount(lambda: copy.deepcopy(model))
    assert freed_by_refcount(lambda: pickle.loads(pickle.dumps(model)))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    assert freed_by_refcount(lambda: torch.load(io.BytesIO(buffer.getvalue()), weights_only=False))
    assert freed_by_refcount(lambda: tract_hub.unpatch(tract_hub.patch(build(), 0.1)))


def test_a_copy_refers_to_its_own_layers() -> None:
    build, shape = BUILDERS["timm-naflexvit-row-masks"]
    model = tract_hub.patch(build(), 0.1)
    clone = copy.deepcopy(model)
    installed = clone.embeds.proj.forward
    assert installed.module is clone.embeds.proj
    assert installed.row_masks.owner is clone.embeds and installed.row_masks.layer is clone.embeds.proj
    assert clone.__prepare_scriptable__.module_ref() is clone
    train_step(clone, shape)
    assert installed.state.accumulation is not None and model.embeds.proj.weight.grad is None


def test_a_forward_kept_after_its_layer_was_freed_says_so() -> None:
    forward = tract_hub.patch(conv_net(), 0.1, target="0")[0].forward
    with pytest.raises(TrActStateError, match="was freed"):
        forward(torch.randn(1, 3, 8, 8))
