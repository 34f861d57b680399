"""What works on the unpatched model works on the patched one: input gradients of a frozen model, gradient
penalties (``create_graph=True``), ``torch.func.grad`` and per-sample gradients with ``vmap(grad(...))``. Each is
checked against the float64 formula: TrAct is the linear map ``G -> G @ inverse(x^T x / N + lam I)`` of the
first layer's weight gradient, with the covariance of the rows of the call (of each sample under ``vmap``)."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

import tract_hub
from tests.exact.micro_batches import LAM, TOLERANCE, make_model, micro_batch
from tests.reference import conv_rows, relative_error, tract_reference


def rows_of(x: torch.Tensor) -> torch.Tensor:
    return conv_rows(x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)


def test_input_gradients_of_a_frozen_patched_model() -> None:
    """Saliency maps, FGSM, adversarial training: the weight needs no gradient, the input does."""
    model = tract_hub.patch(make_model(), LAM, target="0").requires_grad_(False)
    plain = make_model().requires_grad_(False)
    x = micro_batch(0)[0].requires_grad_(True)
    (saliency,) = torch.autograd.grad(model(x).square().sum(), x)
    (expected,) = torch.autograd.grad(plain(x).square().sum(), x)
    assert torch.equal(saliency, expected)
    assert model[0].weight.grad is None


def test_fgsm_step_on_a_frozen_timm_model() -> None:
    model = tract_hub.patch(timm.create_model("resnet10t", num_classes=4), LAM).eval().requires_grad_(False)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    F.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def penalized(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, transform) -> list[torch.Tensor]:
    """Gradients of ``loss + |grad loss|^2`` (a gradient-norm penalty), the first layer's transformed by
    ``transform`` wherever the first layer's weight gradient appears."""
    params = list(model.parameters())
    loss = F.cross_entropy(model(x), y, reduction="sum")
    grads = list(torch.autograd.grad(loss, params, create_graph=True))
    grads[0] = transform(grads[0])
    penalty = loss + sum(g.square().sum() for g in grads)
    result = list(torch.autograd.grad(penalty, params))
    result[0] = transform(result[0])
    return result


def test_gradient_penalty_with_create_graph() -> None:
    x, y = micro_batch(0)
    rows = rows_of(x)
    factor = torch.linalg.inv(rows[0].T @ rows[0] / rows.shape[1] + LAM * torch.eye(rows.shape[2], dtype=x.dtype))

    def tract_map(g: torch.Tensor) -> torch.Tensor:
        return (g.reshape(g.shape[0], -1) @ factor).reshape(g.shape)

    expected = penalized(make_model(), x, y, tract_map)
    model = tract_hub.patch(make_model(), LAM, target="0")
    params = list(model.parameters())
    loss = F.cross_entropy(model(x), y, reduction="sum")
    grads = torch.autograd.grad(loss, params, create_graph=True)
    (loss + sum(g.square().sum() for g in grads)).backward()
    for parameter, reference in zip(params, expected):
        assert relative_error(parameter.grad, reference) < TOLERANCE


@pytest.mark.parametrize("exact", [True, False])
def test_no_factor_is_kept_between_steps_unless_a_double_backward_needs_it(exact: bool) -> None:
    """The n x n Cholesky factor is memory the size of the covariance: kept only for create_graph's backward."""
    model = tract_hub.patch(make_model(), LAM, target="0", exact=exact)
    x, y = micro_batch(0)
    F.cross_entropy(model(x), y).backward()
    assert model[0].forward.state.factor is None
    params = list(model.parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
    assert model[0].forward.state.factor is None  # handed to the graph of the double backward, not kept
    sum(g.square().sum() for g in grads).backward()
    assert params[0].grad is not None and torch.isfinite(params[0].grad).all()


def test_torch_func_grad_gives_the_per_call_gradient() -> None:
    model = tract_hub.patch(make_model(), LAM, target="0")
    params = {name: p.detach() for name, p in model.named_parameters()}
    x, y = micro_batch(0)

    def loss(p: dict, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, p, (xb,)), yb, reduction="sum")

    weight_grad = grad(loss)(params, x, y)["0.weight"]
    plain = tract_hub.unpatch(copy.deepcopy(model))
    plain_grad = grad(lambda p: F.cross_entropy(functional_call(plain, p, (x,)), y, reduction="sum"))(params)
    assert relative_error(weight_grad, tract_reference(plain_grad["0.weight"], rows_of(x), LAM)) < TOLERANCE
    head_grad = grad(loss)(params, x, y)["3.weight"]  # every other parameter: the ordinary gradient
    assert relative_error(head_grad, plain_grad["3.weight"]) < 1e-12


def test_per_sample_gradients_with_vmap_of_grad() -> None:
    """DP-SGD style: one TrAct gradient per sample, each with that sample's own rows."""
    model = tract_hub.patch(make_model(), LAM, target="0")
    params = {name: p.detach() for name, p in model.named_parameters()}
    x, y = micro_batch(0)

    def loss(p: dict, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, p, (xb[None],)), yb[None], reduction="sum")

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)["0.weight"]
    plain = tract_hub.unpatch(copy.deepcopy(model))
    for index in range(x.shape[0]):
        plain.zero_grad()
        F.cross_entropy(plain(x[index : index + 1]), y[index : index + 1], reduction="sum").backward()
        expected = tract_reference(plain[0].weight.grad, rows_of(x[index : index + 1]), LAM)
        assert relative_error(per_sample[index], expected) < TOLERANCE


@pytest.mark.parametrize(
    "layer",
    [
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
        torch.nn.Conv1d(3, 4, 5, padding="same"),
        torch.nn.Conv3d(2, 3, (1, 2, 2), stride=(1, 2, 2)),
        torch.nn.Linear(5, 3),
    ],
    ids=["conv2d-groups-dilation", "conv1d-same", "conv3d", "linear"],
)
def test_torch_func_rows_match_the_engines(layer: torch.nn.Module) -> None:
    """The batchable unfolding used under transforms gives the engine's per-call gradient."""
    from tract_hub.engine import LayerGeometry, tract_gradient
    from tract_hub.patching.functional import per_call_gradient

    layer = layer.double()
    shape = {torch.nn.Linear: (2, 7, 5), torch.nn.Conv1d: (2, 3, 9), torch.nn.Conv3d: (2, 2, 3, 6, 6)}
    x = torch.randn(shape.get(type(layer), (2, 4, 9, 9)), dtype=torch.float64)
    g = torch.randn_like(layer.weight)
    if isinstance(layer, torch.nn.Linear):
        geometry = LayerGeometry.for_linear(layer.weight)
    else:
        geometry = LayerGeometry.for_conv(layer.weight, layer.stride, layer.padding, layer.dilation, layer.groups)
    expected = tract_gradient(g, x, geometry, LAM)
    assert relative_error(per_call_gradient(g, x, None, geometry, LAM), expected) < 1e-12
