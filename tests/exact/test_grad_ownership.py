"""The invariant of DESIGN decision 4, family by family: the accumulation continues exactly while ``.grad`` holds
what the last backward left there; any clear starts afresh; a forward's rows count once, however many backwards
flow through it; any other change to ``.grad`` is the user's: it is kept (``.grad = change + TrAct(all)``), with
one warning. Each case is checked against the float64 formula (``tests/exact/micro_batches.py``)."""

from __future__ import annotations

import copy
import io
import logging

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
    micro_batch,
    patched,
)
from tests.reference import conv_rows, relative_error

WARNING = "changed between two backwards"


def first_grad(model: torch.nn.Module) -> torch.Tensor:
    return model[0].weight.grad


def rows_of(index: int) -> torch.Tensor:
    return conv_rows(micro_batch(index)[0], (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)


def tract_of(model: torch.nn.Module, indices: list[int]) -> torch.Tensor:
    """TrAct of the given micro-batches alone, at the model's current weights."""
    reference = Reference()
    for index in indices:
        reference.add(model, index)
    return reference.tract()


def _zero(grad: torch.Tensor) -> None:
    grad.data.zero_()


def _assign_zeros(grad: torch.Tensor) -> None:
    grad.data = torch.zeros_like(grad)


def _times_zero(grad: torch.Tensor) -> None:
    grad.data.mul_(0)


def _in_place_zero(grad: torch.Tensor) -> None:
    grad.zero_()


@pytest.mark.parametrize("clear", [_zero, _assign_zeros, _times_zero, _in_place_zero])
def test_a_clear_through_data_starts_afresh(clear) -> None:
    """``.data`` bypasses the version counter: the values decide."""
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    clear(first_grad(model))
    reference.clear()
    backward(model, reference, 1)
    backward(model, reference, 2)
    assert_exact(model, reference)


def _clip(model: torch.nn.Module) -> None:
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)


def _times_one(model: torch.nn.Module) -> None:
    first_grad(model).mul_(1)


def _scaler_unscale(model: torch.nn.Module) -> None:
    first_grad(model).mul_(1.0)  # what GradScaler.unscale_ does with a scale of 1
    first_grad(model).add_(0.0)


@pytest.mark.parametrize("touch", [_clip, _times_one, _scaler_unscale], ids=["clip", "mul-1", "unscale"])
def test_a_zero_gradient_micro_batch_still_counts_its_rows(touch, caplog: pytest.LogCaptureFixture) -> None:
    """A masked loss gives an exactly zero ``G``; touching ``.grad`` in place afterwards is not a clear."""
    model, reference = patched(), Reference()
    reference.add(model, 0, scale=0.0)
    (loss_of(model, 0) * 0.0).backward()
    assert torch.count_nonzero(first_grad(model)) == 0
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        touch(model)
        backward(model, reference, 1)
    assert_exact(model, reference)
    assert WARNING not in caplog.text


def heads_loss(out: torch.Tensor, head: int) -> torch.Tensor:
    target = torch.full((out.shape[0],), head % out.shape[1])
    return torch.nn.functional.cross_entropy(out * (head + 1), target, reduction="sum")


@pytest.mark.parametrize("losses", [2, 3])
def test_several_backwards_through_one_forward_count_its_rows_once(losses: int) -> None:
    """Multi-task heads backwarded one by one (``retain_graph=True``), after another micro-batch: the forward's
    rows count once (counted once per backward, they would outweigh the other micro-batch's)."""
    model, reference = patched(), Reference()
    backward(model, reference, 1)
    out = model(micro_batch(0)[0])
    for head in range(losses):
        heads_loss(out, head).backward(retain_graph=head < losses - 1)
    plain = tract_hub.unpatch(copy.deepcopy(model))
    plain.zero_grad()
    out = plain(micro_batch(0)[0])
    sum(heads_loss(out, head) for head in range(losses)).backward()
    reference.grad, reference.rows = reference.grad + plain[0].weight.grad, [*reference.rows, rows_of(0)]
    assert_exact(model, reference)


def test_a_clear_between_backwards_through_one_forward_counts_its_rows_in_the_new_accumulation() -> None:
    model, reference = patched(), Reference()
    out = model(micro_batch(0)[0])
    out.sum().backward(retain_graph=True)
    model.zero_grad(set_to_none=False)  # decided on the device: the forward's rows belong to the new accumulation
    out.square().sum().backward()
    plain = tract_hub.unpatch(copy.deepcopy(model))
    plain.zero_grad()
    plain(micro_batch(0)[0]).square().sum().backward()
    reference.grad, reference.rows = plain[0].weight.grad, [rows_of(0)]
    assert_exact(model, reference)


def _scale_half(model: torch.nn.Module) -> None:
    first_grad(model).mul_(0.5)


def _replace(model: torch.nn.Module) -> None:
    model[0].weight.grad = torch.full_like(first_grad(model), 0.25)


def _add_plain(model: torch.nn.Module) -> None:
    first_grad(model).add_(torch.ones_like(first_grad(model)))


@pytest.mark.parametrize("edit", [_scale_half, _replace, _add_plain], ids=["scale", "replace", "add"])
def test_an_edit_is_kept_and_the_tract_gradient_added_on_top(edit, caplog: pytest.LogCaptureFixture) -> None:
    """Documented outcome: ``.grad = (edited - left) + TrAct(all micro-batches since the clear)``, warned once."""
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    left = first_grad(model).detach().clone()
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        edit(model)
        change = first_grad(model).detach().clone() - left
        backward(model, reference, 1)
        backward(model, reference, 2)
    assert relative_error(first_grad(model), change + reference.tract()) < TOLERANCE
    assert caplog.text.count(WARNING) == 1


def test_a_post_accumulate_hook_acts_on_what_each_backward_leaves(caplog: pytest.LogCaptureFixture) -> None:
    """A hook runs inside the backward, so what it leaves is what the next backward continues from:
    ``.grad = hook(left + increment)``, as for a plain parameter with the same hook; nothing to warn about."""
    model, reference = patched(), Reference()

    def halve(weight: torch.Tensor) -> None:
        weight.grad.mul_(0.5)

    model[0].weight.register_post_accumulate_grad_hook(halve)
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        backward(model, reference, 0)
        after_first = first_grad(model).detach().clone()
        assert relative_error(after_first, 0.5 * reference.tract()) < TOLERANCE
        backward(model, reference, 1)
    increment = reference.tract() - tract_of(model, [0])
    assert relative_error(first_grad(model), 0.5 * (after_first + increment)) < TOLERANCE
    assert WARNING not in caplog.text


def _deepcopy(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model)


def _save_load(model: torch.nn.Module) -> torch.nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("duplicate", [_deepcopy, _save_load], ids=["deepcopy", "save-load"])
def test_a_copy_with_the_same_grad_continues_exactly(duplicate) -> None:
    """A checkpoint taken mid-accumulation: the copy's ``.grad`` restored from the original's continues."""
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    clone = duplicate(model)
    for original, copied in zip(model.parameters(), clone.parameters()):
        copied.grad = original.grad.detach().clone()
    backward(clone, reference, 1)
    assert_exact(clone, reference)


def test_a_copy_without_grad_starts_afresh() -> None:
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    clone = copy.deepcopy(model)  # PyTorch does not copy .grad: a cleared gradient
    clone.zero_grad()
    fresh = Reference()
    backward(clone, fresh, 1)
    assert_exact(clone, fresh)


def test_unpatch_then_patch_again_continues_the_accumulation() -> None:
    model, reference = patched(), Reference()
    backward(model, reference, 0)
    tract_hub.unpatch(model)
    tract_hub.patch(model, LAM, target="0")
    backward(model, reference, 1)
    assert_exact(model, reference)


class OutOfMemory(RuntimeError):
    pass


def test_a_backward_that_raised_after_the_first_layer_is_continued() -> None:
    """An out-of-memory skip: the failed backward reached the first layer (its part is in .grad), then raised.
    Continuing accumulates exactly what .grad now holds: the failed micro-batch included."""
    model, reference = patched(), Reference()
    backward(model, reference, 0)

    def fail(weight: torch.Tensor) -> None:
        raise OutOfMemory("CUDA out of memory")

    hook = model[0].weight.register_post_accumulate_grad_hook(fail)
    reference.add(model, 1)
    with pytest.raises(OutOfMemory):
        loss_of(model, 1).backward()
    hook.remove()
    backward(model, reference, 2)
    assert_exact(model, reference)


def test_a_backward_that_failed_inside_the_first_layer_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of memory while the layer's own backward runs: .grad did not get that micro-batch, nor do the sums."""
    from tract_hub.patching import gradient

    model, reference = patched(), Reference()
    backward(model, reference, 0)
    real = gradient.call_covariance

    def out_of_memory(*args, **kwargs):
        raise OutOfMemory("CUDA out of memory")

    monkeypatch.setattr(gradient, "call_covariance", out_of_memory)
    with pytest.raises(OutOfMemory):
        loss_of(model, 1).backward()
    monkeypatch.setattr(gradient, "call_covariance", real)
    backward(model, reference, 2)
    assert_exact(model, reference)
