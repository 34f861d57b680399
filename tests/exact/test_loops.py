"""Ordinary training loops, misuses included: after any backward the first layer's ``.grad`` is the exact TrAct
gradient of the micro-batches accumulated into it since it was last cleared, checked against the float64 formula.

Definition used throughout (README, "Exact by construction"): for the micro-batches since the last clear, the sum
of their ordinary weight gradients ``G`` (each taken at the weights of its own forward) times
``inverse(x^T x / N + lam I)`` over all of their input rows, with the ``lam`` the layer has at that backward.
"""

from __future__ import annotations

import copy

import pytest
import torch

import tract_hub
from tests.exact.micro_batches import (
    LAM,
    TOLERANCE,
    Reference,
    assert_exact,
    backward,
    loss_of,
    make_model,
    micro_batch,
    patched,
)
from tests.reference import conv_rows, relative_error, tract_reference
from tract_hub.errors import TrActStateError


@pytest.mark.parametrize("micro_batches", [1, 2, 4])
def test_grad_is_exact_after_every_backward(micro_batches: int) -> None:
    model, reference = patched(), Reference()
    for index in range(micro_batches):
        backward(model, reference, index)
        assert_exact(model, reference)


@pytest.mark.parametrize(
    "clear",
    [
        lambda model, opt: opt.zero_grad(),
        lambda model, opt: opt.zero_grad(set_to_none=False),
        lambda model, opt: model.zero_grad(),
        lambda model, opt: model.zero_grad(set_to_none=False),
    ],
    ids=["optimizer-none", "optimizer-zeros", "model-none", "model-zeros"],
)
def test_a_cleared_gradient_starts_a_new_accumulation(clear) -> None:
    """backward, zero_grad, backward, step: the discarded micro-batch no longer counts (a skipped step)."""
    model, reference = patched(), Reference()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    backward(model, reference, 0)
    clear(model, optimizer)
    reference.clear()
    backward(model, reference, 1)
    backward(model, reference, 2)
    assert_exact(model, reference)


def test_changing_lam_between_micro_batches_applies_the_new_lam_to_the_whole_accumulation() -> None:
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    tract_hub.patch(model, 0.2, target="0")
    backward(model, reference, 1)
    assert_exact(model, reference, lam=0.2)


def test_switching_mode_with_an_accumulated_gradient_is_refused() -> None:
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    with pytest.raises(TrActStateError, match="zero_grad"):
        tract_hub.patch(model, LAM, target="0", exact=False)
    assert tract_hub.patched_layers(model)[0].exact
    backward(model, reference, 1)  # still exact mode, still exact
    assert_exact(model, reference)
    model.zero_grad()
    tract_hub.patch(model, LAM, target="0", exact=False)  # between steps it is fine
    assert not tract_hub.patched_layers(model)[0].exact


def test_reading_the_gradient_between_micro_batches_changes_nothing() -> None:
    """backward, clip (reads .grad), backward: still the exact gradient of both, TrAct applied once."""
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e9)
    backward(model, reference, 1)
    assert_exact(model, reference)


def test_accumulating_across_a_step_without_zero_grad() -> None:
    """backward, step, backward (no zero_grad): the accumulation continues, as a plain .grad does."""
    model, reference = patched(), Reference()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    backward(model, reference, 0)
    optimizer.step()
    backward(model, reference, 1)  # G of micro-batch 1 at the updated weights
    assert_exact(model, reference)


def test_clipping_and_a_hand_written_update_see_the_tract_gradient() -> None:
    model, reference = patched(), Reference()
    for index in range(2):
        backward(model, reference, index)
    expected = reference.tract()
    norm = torch.nn.utils.clip_grad_norm_([model[0].weight], max_norm=1e-6)
    assert norm.item() == pytest.approx(expected.norm().item(), rel=1e-9)
    model.zero_grad()
    reference.clear()
    for index in range(2):
        backward(model, reference, index)
    before = model[0].weight.detach().clone()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    assert relative_error(model[0].weight.detach() - before, -0.1 * reference.tract()) < TOLERANCE


def test_unpatch_keeps_the_accumulated_tract_gradient() -> None:
    model, reference = patched(), Reference()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for index in range(2):
        backward(model, reference, index)
    tract_hub.unpatch(model)
    before = model[0].weight.detach().clone()
    optimizer.step()
    assert relative_error(model[0].weight.detach() - before, -0.1 * reference.tract()) < TOLERANCE


@pytest.mark.parametrize("micro_batches", [1, 2, 4])
def test_grad_scaler_unscale_and_clip_without_any_tract_hub_call(micro_batches: int) -> None:
    model, reference = patched(), Reference()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for index in range(micro_batches):
        reference.add(model, index)
        scaler.scale(loss_of(model, index)).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e9)
    assert_exact(model, reference)
    before = model[0].weight.detach().clone()
    scaler.step(optimizer)
    scaler.update()
    assert relative_error(model[0].weight.detach() - before, -0.1 * reference.tract()) < TOLERANCE


def test_a_skipped_step_then_a_clean_step() -> None:
    """A NaN micro-batch poisons .grad (GradScaler skips), zero_grad clears it, the next step is exact."""
    model, reference = patched(), Reference()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    (scaler.scale(loss_of(model, 0)) * float("nan")).backward()
    before = model[0].weight.detach().clone()
    scaler.step(optimizer)
    scaler.update()
    assert torch.equal(model[0].weight.detach(), before)
    optimizer.zero_grad(set_to_none=False)
    backward(model, reference, 1)
    assert_exact(model, reference)


def test_autograd_grad_gets_the_per_call_gradient_and_leaves_the_accumulation_alone() -> None:
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    (functional,) = torch.autograd.grad(loss_of(model, 5), model[0].weight)
    alone = Reference()
    alone.add(model, 5)
    assert relative_error(functional, alone.tract()) < TOLERANCE
    backward(model, reference, 1)
    assert_exact(model, reference)


def test_a_layer_called_twice_in_one_forward_solves_over_both_inputs() -> None:
    model = patched()
    x0, x1 = micro_batch(0)[0], micro_batch(1)[0]
    first, rest = model[0], model[1:]
    out = rest(first(x0)).sum() + rest(first(x1)).square().sum()
    out.backward()
    plain = tract_hub.unpatch(copy.deepcopy(model))
    plain.zero_grad()
    (plain[1:](plain[0](x0)).sum() + plain[1:](plain[0](x1)).square().sum()).backward()
    rows = torch.cat([conv_rows(x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1) for x in (x0, x1)], dim=1)
    assert relative_error(first.weight.grad, tract_reference(plain[0].weight.grad, rows, LAM)) < TOLERANCE


def test_per_backward_mode_is_the_papers_sum_of_per_backward_solves() -> None:
    model = tract_hub.patch(make_model(), LAM, target="0", exact=False)
    expected = None
    for index in range(2):
        alone = Reference()
        alone.add(model, index)
        expected = alone.tract() if expected is None else expected + alone.tract()
        loss_of(model, index).backward()
    assert relative_error(model[0].weight.grad, expected) < TOLERANCE
