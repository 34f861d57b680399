"""torch.compile of a patched model: the same gradients as eager (the first layer runs eagerly)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import tract_hub
from tests.reference import relative_error


@pytest.mark.parametrize("backend", ["inductor"])
def test_compiled_patched_model_matches_eager(backend: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 4))
    tract_hub.patch(model, target="0")
    compiled_model = copy.deepcopy(model)
    compiled = torch.compile(compiled_model, backend=backend)
    x = torch.randn(16, 3, 8, 8)
    for module in (model, compiled):
        module(x).square().mean().backward()
    for (name, eager), (_, traced) in zip(model.named_parameters(), compiled_model.named_parameters()):
        assert relative_error(traced.grad, eager.grad) < 1e-5, name
    # and it is TrAct, not the plain gradient
    plain = copy.deepcopy(model)
    tract_hub.unpatch(plain)
    plain.zero_grad()
    plain(x).square().mean().backward()
    assert relative_error(compiled_model[0].weight.grad, plain[0].weight.grad) > 1e-2
