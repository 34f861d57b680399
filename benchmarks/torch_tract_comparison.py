"""Correctness of tract_hub and of torch_tract (the paper's reference package) on the engine's table of layers.

For every 2-d convolution and Linear case of ``tests/layer_cases.py`` (the only layer types torch_tract wraps),
both implementations' first-layer weight gradients are compared with the float64 reference written from the
formula (``tests/reference.py``). Prints one row per case: the relative error, or the exception raised.
torch_tract is a comparison only (``pip install torch_tract``), never a dependency.

    python benchmarks/torch_tract_comparison.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tract_hub
from tests.engine.test_reference import output_weights, reference_gradients
from tests.layer_cases import LAYER_CASES
from tests.reference import relative_error

LAM = 0.1


def weight_grad(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = module(x)
    (out * output_weights(out.shape, out.dtype)).sum().backward()
    return module.weight.grad


def outcome(build, x: torch.Tensor, expected: torch.Tensor) -> str:
    try:
        error = relative_error(weight_grad(build(), x), expected)
    except Exception as exc:  # a failure is a result here
        return f"raises {type(exc).__name__}"
    return f"{error:.1e}" + ("" if error < 1e-4 else " WRONG")


def main() -> None:
    try:
        import torch_tract
    except ImportError:
        print("torch_tract is not installed (pip install torch_tract); nothing to compare")
        return
    print("| case | tract_hub rel. error | torch_tract rel. error |\n|---|---|---|")
    for case in LAYER_CASES:
        torch.manual_seed(0)
        module = case.build()
        if not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        x = case.make_input(torch.Generator().manual_seed(0))
        expected = reference_gradients(module, x, LAM)["weight"]
        ours = outcome(lambda m=module: tract_hub.patch(copy.deepcopy(m), LAM, target=""), x, expected)
        theirs = outcome(lambda m=module: torch_tract.TrAct(copy.deepcopy(m), l=LAM), x, expected)
        print(f"| {case.id} | {ours} | {theirs} |")


if __name__ == "__main__":
    main()
