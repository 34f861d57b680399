"""Bad input: a clear error of the project's own type, naming what was given and the fix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tract_hub
from tract_hub.errors import InvalidArgumentError, TargetNotFoundError, TrActError, UnsupportedLayerError


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ConvTranspose2d(4, 4, 3), nn.LazyLinear(3))


@pytest.mark.parametrize("lam", [0, -0.1, float("nan"), float("inf"), "0.1", True, None])
def test_lam_must_be_a_positive_finite_number(lam: object) -> None:
    with pytest.raises(InvalidArgumentError, match="lam=") as info:
        tract_hub.patch(net(), lam, target="0")
    assert isinstance(info.value, ValueError) and isinstance(info.value, TrActError)


def test_missing_target_names_close_matches() -> None:
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(3, 4, 3))
    with pytest.raises(TargetNotFoundError, match="did you mean 'conv1'"):
        tract_hub.patch(model, target="conv_1")


@pytest.mark.parametrize("target, reason", [("1", "BatchNorm2d"), ("2", "ConvTranspose2d"), ("3", "lazy")])
def test_layers_that_are_not_linear_or_conv_are_refused(target: str, reason: str) -> None:
    model = net()
    with pytest.raises(UnsupportedLayerError, match=reason):
        tract_hub.patch(model, target=target)
    assert not tract_hub.is_patched(model)


class TwoConvs(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(F.conv2d(x, self.weight, padding=1), self.weight, padding=1)


class MatmulLinear(nn.Linear):
    def forward(self, x):
        return x @ self.weight.T


@pytest.mark.parametrize(
    "layer, found",
    [
        (TwoConvs(4, 4, 3), "found calls with weights \\[\\(4, 4, 3, 3\\), \\(4"),
        (MatmulLinear(4, 2), "found calls with weights \\[\\]"),
    ],
)
def test_layers_whose_forward_the_engine_cannot_honour_are_refused(layer: nn.Module, found: str) -> None:
    with pytest.raises(UnsupportedLayerError, match=found):
        tract_hub.patch(layer, target="")
    assert not tract_hub.is_patched(layer)


def test_a_list_target_patches_all_or_nothing() -> None:
    model = net()
    with pytest.raises(UnsupportedLayerError):
        tract_hub.patch(model, target=["0", "1"])
    assert not tract_hub.is_patched(model)


@pytest.mark.parametrize("target", [[], [3], ""])
def test_target_type_errors(target: object) -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    if target == "":
        with pytest.raises(UnsupportedLayerError, match="Sequential"):
            tract_hub.patch(model, target=target)
    else:
        with pytest.raises(InvalidArgumentError, match="target="):
            tract_hub.patch(model, target=target)


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda: tract_hub.patch(nn.Sequential(nn.Linear(2, 2)), target=0), "target="),
        (lambda: tract_hub.patch(nn.Sequential(nn.Linear(2, 2)), target=("0", 1)), "target="),
        (lambda: tract_hub.unpatch("model"), "model='model'"),
        (lambda: tract_hub.is_patched(None), "model=None"),
        (lambda: tract_hub.patched_layers(42), "model=42"),
        (lambda: tract_hub.patch("model", target="0"), "model='model'"),
        (lambda: tract_hub.patch(nn.Sequential(nn.Linear(2, 2)), target="0", optimizer="sgd"), "optimizer='sgd'"),
        (lambda: tract_hub.patch(nn.Sequential(nn.Linear(2, 2)), target="0", exact="yes"), "exact='yes'"),
    ],
)
def test_arguments_of_the_wrong_type_get_the_projects_error(call, named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named) as info:
        call()
    assert isinstance(info.value, TrActError)


def test_numpy_and_other_real_lambdas_are_accepted() -> None:
    import numpy as np

    for lam in (np.float32(0.1), np.float64(0.1), 1, np.int64(2)):
        model = tract_hub.patch(nn.Sequential(nn.Linear(2, 2)), lam, target="0")
        assert tract_hub.patched_layers(model)[0].lam == pytest.approx(float(lam))


def test_a_lambda_too_small_to_honour_warns_once(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    from tract_hub.patching import api

    monkeypatch.setattr(api, "_warned_small_lam", False)
    for _ in range(2):
        tract_hub.patch(nn.Sequential(nn.Linear(2, 2)), 1e-12, target="0")
    assert caplog.text.count("lam=1e-12 is below") == 1


def test_a_parametrized_weight_is_refused_in_exact_mode_and_works_per_backward() -> None:
    model = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 3)))
    with pytest.raises(UnsupportedLayerError, match="exact=False"):
        tract_hub.patch(model, target="0")
    assert not tract_hub.is_patched(model)
    tract_hub.patch(model, target="0", exact=False)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    assert model[0].parametrizations.weight.original0.grad is not None
