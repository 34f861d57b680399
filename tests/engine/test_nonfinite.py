"""NaN and inf never raise: the weight gradient comes out non-finite, so GradScaler skips the step."""

from __future__ import annotations

import pytest
import torch

import tract_hub


def _patched(exact: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 36, 4)
    )
    return tract_hub.patch(model, 0.1, target="0", exact=exact)


@pytest.mark.parametrize("exact", [False, True], ids=["per-backward", "exact"])
@pytest.mark.parametrize("poison", ["nan-input", "inf-input", "nan-grad", "inf-grad"])
def test_non_finite_gives_non_finite_weight_gradient(poison: str, exact: bool) -> None:
    model = _patched(exact)
    x = torch.randn(4, 3, 8, 8)
    if poison.endswith("input"):
        x[1, 2, 3, 4] = float("nan") if poison.startswith("nan") else float("inf")
    loss = model(x).sum()
    if poison.endswith("grad"):
        loss = loss * (float("nan") if poison.startswith("nan") else float("inf"))
    loss.backward()
    assert not torch.isfinite(model[0].weight.grad).all()


@pytest.mark.parametrize("exact", [False, True], ids=["per-backward", "exact"])
def test_grad_scaler_skips_the_step(exact: bool) -> None:
    model = _patched(exact)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    before = model[0].weight.detach().clone()
    x = torch.randn(4, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    scaler.scale(model(x).sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    assert torch.equal(model[0].weight.detach(), before)
    assert scaler.get_scale() < 2.0**8
