"""Where the solve happens in a step: before clipping and unscaling, once, and never silently skipped."""

from __future__ import annotations

import pytest
import torch

import tract_hub
from tests.exact.scenarios import LAM, LR, Scenario, local_losses, make_model, reference_update
from tests.reference import relative_error
from tract_hub.errors import TrActStateError


def accumulate(model: torch.nn.Module, scaler: torch.amp.GradScaler | None = None) -> None:
    for loss, _ in local_losses(model, list(range(8)), Scenario(micro_batches=2), world=1):
        (scaler.scale(loss) if scaler else loss).backward()


def tract_gradient() -> torch.Tensor:
    """The whole batch's TrAct gradient: the first SGD step with momentum is -lr * gradient."""
    return -reference_update(Scenario()) / LR


def raw_gradient() -> torch.Tensor:
    model = make_model(Scenario())
    accumulate(model)
    return model[0].weight.grad


def patched(**kwargs) -> torch.nn.Module:
    return tract_hub.patch(make_model(Scenario()), LAM, target="0", exact=True, **kwargs)


def test_clipping_after_finalize_sees_the_tract_gradient() -> None:
    model = patched()
    accumulate(model)
    tract_hub.finalize(model)
    norm = torch.nn.utils.clip_grad_norm_([model[0].weight], max_norm=1e-4)
    assert norm.item() == pytest.approx(tract_gradient().norm().item(), rel=1e-9)
    assert abs(tract_gradient().norm() / raw_gradient().norm() - 1) > 0.1  # the two norms are told apart


def test_grad_scaler_unscales_the_tract_gradient() -> None:
    model = patched()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    accumulate(model, scaler)
    tract_hub.finalize(model)
    scaler.unscale_(optimizer)
    assert relative_error(model[0].weight.grad, tract_gradient()) < 1e-10


def test_a_bound_optimizer_finalizes_in_its_step_and_only_once() -> None:
    expected = reference_update(Scenario())
    for explicit_finalize in (False, True):
        model = make_model(Scenario())
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
        tract_hub.patch(model, LAM, target="0", exact=True, optimizer=optimizer)
        before = model[0].weight.detach().clone()
        accumulate(model)
        if explicit_finalize:
            tract_hub.finalize(model)
        optimizer.step()
        assert relative_error(model[0].weight.detach() - before, expected) < 1e-10


def test_stepping_an_unfinalized_weight_raises() -> None:
    model = patched()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    accumulate(model)
    with pytest.raises(TrActStateError, match="finalize"):
        optimizer.step()
    other = torch.optim.SGD(list(model[3].parameters()), lr=LR)  # an optimizer without the first layer is fine
    other.step()
    tract_hub.finalize(model)
    optimizer.step()
