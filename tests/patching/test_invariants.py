"""Patching changes how the first layer learns and nothing else."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

import tract_hub


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 5),
    )


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(6, 3, 8, 8, generator=generator), torch.randint(0, 5, (6,), generator=generator)


def grads_after_step(model: nn.Module) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    x, y = batch()
    nn.functional.cross_entropy(model(x), y).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def assert_same_grads(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_state_dict_is_unchanged() -> None:
    model = small_net()
    before = copy.deepcopy(model.state_dict())
    tract_hub.patch(model, target="0")
    after = model.state_dict()
    assert list(before) == list(after)
    for key in before:
        assert before[key].shape == after[key].shape and torch.equal(before[key], after[key])


def test_checkpoints_load_strictly_both_ways() -> None:
    vanilla, patched = small_net(), tract_hub.patch(small_net(), target="0")
    with torch.no_grad():
        for p in vanilla.parameters():
            p.add_(1.0)
    patched.load_state_dict(vanilla.state_dict(), strict=True)
    assert torch.equal(patched[0].weight, vanilla[0].weight)
    other = small_net()
    other.load_state_dict(patched.state_dict(), strict=True)


def test_isinstance_training_flag_rng_and_hooks_are_untouched() -> None:
    model = small_net().eval()
    calls = []
    model[0].register_forward_hook(lambda module, args, out: calls.append("forward"))
    model[0].register_forward_pre_hook(lambda module, args: calls.append("pre"))
    model[0].weight.register_hook(lambda grad: calls.append("grad") or None)
    hooks = (dict(model[0]._forward_hooks), dict(model[0]._forward_pre_hooks), dict(model[0]._backward_hooks))
    rng = torch.get_rng_state()
    tract_hub.patch(model, target="0")
    assert torch.equal(rng, torch.get_rng_state())
    assert type(model[0]) is nn.Conv2d and isinstance(model[0], nn.Conv2d)
    assert not model.training and not model[0].training
    assert hooks == (dict(model[0]._forward_hooks), dict(model[0]._forward_pre_hooks), dict(model[0]._backward_hooks))
    model(batch()[0]).sum().backward()
    assert calls == ["pre", "forward", "grad"]


def test_patching_twice_applies_tract_once_and_updates_lam() -> None:
    once = tract_hub.patch(small_net(), 0.2, target="0")
    twice = tract_hub.patch(tract_hub.patch(small_net(), 0.2, target="0"), 0.2, target="0")
    assert_same_grads(grads_after_step(once), grads_after_step(twice))
    updated = tract_hub.patch(tract_hub.patch(small_net(), 0.05, target="0"), 0.2, target="0")
    assert tract_hub.patched_layers(updated)[0].lam == 0.2
    assert_same_grads(grads_after_step(once), grads_after_step(updated))


def test_unpatch_restores_the_exact_original_behaviour() -> None:
    vanilla = small_net()
    patched = tract_hub.patch(small_net(), target="0")
    assert not torch.equal(grads_after_step(vanilla)["0.weight"], grads_after_step(patched)["0.weight"])
    tract_hub.unpatch(patched)
    assert not tract_hub.is_patched(patched) and "forward" not in patched[0].__dict__
    assert_same_grads(grads_after_step(vanilla), grads_after_step(patched))


def test_unpatch_of_an_unpatched_model_warns(caplog: pytest.LogCaptureFixture) -> None:
    tract_hub.unpatch(small_net())
    assert "nothing changed" in caplog.text


@pytest.mark.parametrize("how", ["deepcopy", "torch.save", "to-float64"])
def test_copies_keep_tract(how: str) -> None:
    patched = tract_hub.patch(small_net(), target="0")
    reference = grads_after_step(patched)
    if how == "deepcopy":
        copied = copy.deepcopy(patched)
    elif how == "torch.save":
        buffer = io.BytesIO()
        torch.save(patched, buffer)
        buffer.seek(0)
        copied = torch.load(buffer, weights_only=False)
    else:
        copied = copy.deepcopy(patched).to(torch.float64)
    assert tract_hub.is_patched(copied)
    (layer,) = tract_hub.patched_layers(copied)
    assert layer.name == "0"
    installed = copied[0].__dict__["forward"]
    assert installed.module is copied[0]  # bound to the copy, not to the original
    grads = grads_after_step(copied) if how != "to-float64" else None
    if grads is not None:
        assert_same_grads(reference, grads)
    else:
        copied.zero_grad()
        x, y = batch()
        nn.functional.cross_entropy(copied(x.double()), y).backward()
        assert copied[0].weight.grad.dtype == torch.float64
        assert torch.allclose(copied[0].weight.grad.float(), reference["0.weight"], rtol=1e-3, atol=1e-5)


def test_frozen_first_layer_is_unfrozen_and_refrozen_by_unpatch(caplog: pytest.LogCaptureFixture) -> None:
    model = small_net()
    model[0].weight.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    tract_hub.patch(model, target="0", optimizer=optimizer)
    (layer,) = tract_hub.patched_layers(model)
    assert layer.unfrozen and model[0].weight.requires_grad
    assert "frozen" in caplog.text
    assert any(model[0].weight is p for group in optimizer.param_groups for p in group["params"])
    tract_hub.unpatch(model)
    assert not model[0].weight.requires_grad


def test_no_grad_forward_is_the_plain_forward() -> None:
    patched = tract_hub.patch(small_net(), target="0").eval()
    vanilla = small_net().eval()
    with torch.no_grad():
        assert torch.equal(patched(batch()[0]), vanilla(batch()[0]))


def test_other_instance_forward_is_kept_and_restored() -> None:
    model = small_net()
    seen = []
    original = model[0].forward

    def wrapped(x):
        seen.append(x.shape)
        return original(x)

    model[0].forward = wrapped
    tract_hub.patch(model, target="0")
    grads_after_step(model)
    assert seen, "the previous instance-level forward must still run"
    tract_hub.unpatch(model)
    assert model[0].forward is wrapped
