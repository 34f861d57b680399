"""``tract_hub.patch(model)`` with no target, then one real forward/backward at small resolution: the gradient
of every located first layer equals the paper's formula, built in float64 from the input the layer received
and the gradient of its output (``gradient_reference.py``, independent of tract_hub's patching code)."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

import tract_hub
import tract_hub.models  # registers tract_resnet8_cifar with timm
from tests.registry.gradient_reference import LayerCallRecorder

LAM = 0.1


class Patchify(nn.Module):
    """Linear on 4x4 patches cut by reshaping (the timm models that patchify with a Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(48, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * 16)
        return self.head(self.proj(x).mean(1))


def frames(batch: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)


# (case, model factory, inputs, forward keyword arguments)
CASES = [
    ("conv2d-cifar-stem", lambda: timm.create_model("tract_resnet8_cifar"), (torch.rand(2, 3, 16, 16),), {}),
    ("patchify-conv", lambda: timm.create_model("test_vit", img_size=32), (torch.rand(2, 3, 32, 32),), {}),
    ("conv2d-same", lambda: timm.create_model("tf_mobilenetv3_small_minimal_100"), (torch.rand(2, 3, 32, 32),), {}),
    ("scaled-std-conv", lambda: timm.create_model("test_nfnet"), (torch.rand(2, 3, 32, 32),), {}),
    ("parallel-branches", lambda: timm.create_model("mobileone_s0"), (torch.rand(2, 3, 32, 32),), {}),
    ("linear-patchify", Patchify, (torch.rand(2, 3, 16, 16),), {}),
    ("conv3d-video", lambda: torchvision.models.video.mc3_18(), (torch.rand(2, 3, 4, 32, 32),), {}),
    ("two-encoders", lambda: torchvision.models.optical_flow.raft_small(), frames(1, 128), {"num_flow_updates": 1}),
]


def _loss(output) -> torch.Tensor:
    tensors = output if isinstance(output, (list, tuple)) else [output]
    return sum((t * torch.linspace(-1, 1, t.numel()).view(t.shape)).sum() for t in tensors)


@pytest.mark.parametrize(("case", "factory", "inputs", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_the_located_layers_get_the_tract_gradient(case, factory, inputs, kwargs, one_thread):
    torch.manual_seed(0)
    model = factory().train()
    tract_hub.patch(model, LAM)
    names = [layer.name for layer in tract_hub.patched_layers(model)]
    assert names == tract_hub.locate(model).names and names
    with LayerCallRecorder(model, names) as recorder:
        _loss(model(*inputs, **kwargs)).backward()
    for name in names:
        expected = recorder.expected_grad(name, LAM)
        got = model.get_submodule(name).weight.grad.double()
        assert expected.abs().max() > 0
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())
