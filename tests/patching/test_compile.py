"""torch.compile of a patched model: one graph (``fullgraph=True``: no break at the first layer), eager's gradients.

Inductor takes minutes to compile a timm ResNet-50 or ViT-S/16 on a CPU, so the timm families are compiled here at
a small size with the ``aot_eager`` backend (Dynamo's capture and AOTAutograd's partition, where a graph break or an
untraceable operator would show) and a small network with Inductor itself; ``benchmarks/gpu_step.py`` compiles the
full-size models with Inductor. Models run in float64 so that eager and compiled agree to rounding.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import tract_hub
from tests.reference import relative_error


def small_resnet() -> nn.Module:
    from timm.models.resnet import Bottleneck, ResNet

    return ResNet(block=Bottleneck, layers=(1, 1, 1, 1), num_classes=4, base_width=16)


def small_vit() -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=4)


def small_convnet() -> nn.Module:
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, 4))


def grads_eager_and_compiled(
    build, x: torch.Tensor, backend: str, micro_batches: int = 1
) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    eager = tract_hub.patch(build().double())
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model, fullgraph=True, backend=backend)
    for module in (eager, compiled):
        for part in x.chunk(micro_batches):
            module(part).square().mean().backward()
    return eager, compiled_model


@pytest.mark.slow  # full compiles
@pytest.mark.parametrize(
    "build, backend",
    [(small_resnet, "aot_eager"), (small_vit, "aot_eager"), (small_convnet, "inductor")],
    ids=["timm-resnet-bottleneck", "timm-vit", "convnet-inductor"],
)
def test_fullgraph_compile_gives_eagers_gradients(build, backend: str) -> None:
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eager, compiled = grads_eager_and_compiled(build, x, backend, micro_batches=2)
    for (name, a), (_, b) in zip(eager.named_parameters(), compiled.named_parameters()):
        assert relative_error(b.grad, a.grad) < 1e-9, name
    plain = tract_hub.unpatch(copy.deepcopy(eager))
    plain.zero_grad()
    for part in x.chunk(2):
        plain(part).square().mean().backward()
    first = tract_hub.patched_layers(eager)[0].name
    ours, theirs = (dict(m.named_parameters())[f"{first}.weight"].grad for m in (compiled, plain))
    assert relative_error(ours, theirs) > 1e-2  # and it is TrAct, not the plain gradient


def test_export_gives_the_plain_graph() -> None:
    model = tract_hub.patch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), target="0")
    exported = torch.export.export(model, (torch.randn(2, 3, 8, 8),))
    assert "tract_hub" not in exported.graph_module.code
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(exported.module()(x), model(x))
