"""Every summation path end to end, forced on a CPU (DESIGN.md decision 12): float64 (data-center GPUs), shifted
float32 (consumer GPUs) and the CPU's rule, in exact and per-backward mode: the formula's gradient, no host sync,
non-finite in gives non-finite out."""

from __future__ import annotations

import copy

import pytest
import torch

import tract_hub
from tests.engine.test_reference import reference_gradients, run_patched
from tests.layer_cases import LAYER_CASES
from tests.patching.test_tracing import accumulate_and_clear, small_net
from tests.reference import relative_error
from tract_hub.engine import forced_summation

PATHS = {"rule": None, "float32": torch.float32, "float64": torch.float64}
CASES = {case.id: case for case in LAYER_CASES}
SAMPLE = ["linear-3d-tokens", "conv2d-imagenet-stem", "conv2d-groups", "conv2d-patch-embed", "conv1d-same-even"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case_id", SAMPLE)
def test_each_path_gives_the_formulas_gradient(case_id: str, path: str) -> None:
    case = CASES[case_id]
    torch.manual_seed(0)
    module = case.build()
    x = 2 + case.make_input(torch.Generator().manual_seed(0))  # an offset, as pixels in [0, 1] have
    expected = reference_gradients(module, x, 0.1)["weight"]
    with forced_summation(PATHS[path]):
        actual = run_patched(module, x)["weight"]
    assert relative_error(actual, expected) < 1e-4


@pytest.mark.parametrize("path", PATHS)
def test_micro_batches_add_up_to_the_whole_batch_on_each_path(path: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 64, 4))
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    whole, split = (tract_hub.patch(copy.deepcopy(model), 0.1, target="0") for _ in range(2))
    with forced_summation(PATHS[path]):
        whole(x).sum().backward()
        for part in x.chunk(4):
            split(part).sum().backward()
    assert relative_error(split[0].weight.grad, whole[0].weight.grad) < 1e-5


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "per-backward"])
@pytest.mark.parametrize("path", ["float32", "float64"])
def test_meta_device_backward_makes_no_host_sync_on_each_path(path: str, exact: bool) -> None:
    """On the meta device any read of a tensor's value raises: the accelerator paths decide everything there."""
    with forced_summation(PATHS[path]):
        model = tract_hub.patch(small_net("meta"), target="0", exact=exact)
        accumulate_and_clear(model, "meta")
    assert model[0].weight.grad.shape == model[0].weight.shape


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "per-backward"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("poison", ["nan", "inf"])
def test_non_finite_input_gives_non_finite_gradient_on_each_path(poison: str, path: str, exact: bool) -> None:
    torch.manual_seed(0)
    model = tract_hub.patch(small_net("cpu"), 0.1, target="0", exact=exact)
    x = torch.randn(4, 3, 8, 8)
    x[1, 2, 3, 4] = float(poison)
    with forced_summation(PATHS[path]):
        model(x).sum().backward()
    assert not torch.isfinite(model[0].weight.grad).all()
