"""NaN and inf never raise: the weight gradient comes out non-finite, so GradScaler skips the step."""

from __future__ import annotations

import pytest
import torch

import tract_hub
from tract_hub.engine import forced_summation


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


def bright_pixels(batch: int = 16, size: int = 32) -> torch.Tensor:
    """Unnormalized pixels near 200 with little variation: a huge common offset, so the float32 rounding of
    ``x^T x`` (about 1e-7 of 4e4) exceeds a small ``lam`` and can make the matrix indefinite."""
    return 200 + 2 * torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


LAYERS = {
    "patch16": lambda: torch.nn.Conv2d(3, 8, 16, stride=16),
    "stem7x7": lambda: torch.nn.Conv2d(3, 8, 7, stride=2, padding=3),
}


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("summed_in", [torch.float32, torch.float64], ids=["float32-sum", "float64-sum"])
@pytest.mark.parametrize("exact", [False, True], ids=["per-backward", "exact"])
@pytest.mark.parametrize("micro_batches", [1, 2])
def test_finite_input_gives_a_finite_gradient_in_every_precision_path(
    layer: str, summed_in: torch.dtype, exact: bool, micro_batches: int
) -> None:
    """DESIGN decision 5 at lam 1e-3 on raw pixels, the covariance summed in each dtype the engine may choose
    (forced here: float32 is the consumer-GPU path). Where the float32 sum makes the factorization fail, the
    solve's rescue gives a finite gradient in both modes."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(LAYERS[layer](), torch.nn.Flatten())
    tract_hub.patch(model, 1e-3, target="0", exact=exact)
    with forced_summation(summed_in):
        for x in bright_pixels().chunk(micro_batches):
            model(x).square().mean().backward()
    assert torch.isfinite(model[0].weight.grad).all()
