"""Discovery by tracing: what counts as a first layer, on small models whose answer is known by construction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tract_hub.registry import locate, trace_first_layers


class Padded(nn.Module):
    """Resize, normalize with fixed buffers, reflect-pad, then the first conv."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.25))
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear")
        x = F.pad((x - self.mean) / self.std, (1, 1, 1, 1), mode="reflect")
        return self.head(self.conv(x))


class SpaceToDepth(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(12, 8, 1)

    def forward(self, x):
        return self.conv(F.pixel_unshuffle(x, 2)).relu()


class Patchify(nn.Module):
    """Cut 4x4 patches by reshaping, then a Linear patch embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3 * 16, 32)
        self.mlp = nn.Linear(32, 32)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * 16)
        return self.mlp(self.proj(x))


class FixedTransformStem(nn.Module):
    """A fixed convolution (a buffer, like a DCT) then a fixed Linear, then learned 1x1 convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("basis", torch.randn(16, 3, 4, 4))
        self.register_buffer("mix", torch.randn(16, 16))
        self.learned = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        x = F.conv2d(x, self.basis, stride=4)
        x = F.linear(x.movedim(1, -1), self.mix).movedim(-1, 1)
        return self.learned(x)


class StandardizedConv(nn.Conv2d):
    """Weight standardization: the weight the convolution uses is computed from the parameter on the fly."""

    def forward(self, x):
        weight = self.weight
        weight = (weight - weight.mean((1, 2, 3), keepdim=True)) / (weight.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class Parallel(nn.Module):
    """Two branches on the input, summed (RepVGG-style), and a copy of the input resized (CrossViT-style)."""

    def __init__(self) -> None:
        super().__init__()
        self.kxk = StandardizedConv(3, 8, 3, padding=1)
        self.one = nn.Conv2d(3, 8, 1)
        self.small = nn.Conv2d(3, 8, 2, stride=2)
        self.body = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        y = self.body(self.kxk(x) + self.one(x))
        return y.mean((2, 3)) + self.small(F.interpolate(x, scale_factor=0.5)).mean((2, 3))


class InputSkip(nn.Module):
    """The input is added back after the first layer: the second conv sees features, not the input."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 3, 3, padding=1)
        self.second = nn.Conv2d(3, 3, 3, padding=1)
        self.third = nn.Conv2d(6, 3, 1)

    def forward(self, x):
        y = self.second(self.first(x) + x)
        return self.third(torch.cat([y, x * 2], dim=1))


class LearnedInputNorm(nn.Module):
    """A learned elementwise normalization (BatchNorm with affine parameters) before the first conv."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(3)
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(self.norm(x))


class InPlace(nn.Module):
    """In-place edits and an input written into a fresh tensor by item assignment."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3)

    def forward(self, x):
        x = x.clone()
        x.mul_(2.0)
        canvas = x.new_zeros(x.shape[0], 4, *x.shape[2:])
        canvas[:, :3] = x
        return self.conv(canvas)


class TwoFrames(nn.Module):
    """RAFT-like: one encoder sees both frames (batched), the other only the first."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 8, 3)
        self.context = nn.Conv2d(3, 8, 3)

    def forward(self, image1, image2):
        fmap1, fmap2 = self.features(torch.cat([image1, image2])).chunk(2)
        return (fmap1 * fmap2).sum() + self.context(image1).sum()


class SharedStem(nn.Module):
    """The same first layer applied to two crops of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.stem(x[..., :16]).sum() + self.stem(x[..., 16:]).sum()


class DataDependent(nn.Module):
    """Control flow on the input's values (``.item()``): cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        if x.max().item() > 1.0:
            x = x / 255.0
        return self.conv(x)


IMAGE = (1, 3, 32, 32)

# (case, model factory, input shapes, the first layers by construction)
CASES = [
    ("plain", lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)), [IMAGE], ["0"]),
    ("resize-normalize-pad", Padded, [IMAGE], ["conv"]),
    ("space-to-depth", SpaceToDepth, [IMAGE], ["conv"]),
    ("patchify-linear", Patchify, [IMAGE], ["proj"]),
    ("fixed-buffer-transforms", FixedTransformStem, [IMAGE], ["learned"]),
    ("weight-standardization", lambda: nn.Sequential(StandardizedConv(3, 8, 3), nn.Conv2d(8, 8, 1)), [IMAGE], ["0"]),
    ("parallel-and-resized-branches", Parallel, [IMAGE], ["kxk", "one", "small"]),
    ("input-added-back", InputSkip, [IMAGE], ["first"]),
    ("learned-input-norm", LearnedInputNorm, [IMAGE], ["conv"]),
    ("in-place-and-setitem", InPlace, [IMAGE], ["conv"]),
    ("two-inputs", TwoFrames, [IMAGE, IMAGE], ["features", "context"]),
    ("shared-stem", SharedStem, [IMAGE], ["stem"]),
    ("conv1d", lambda: nn.Sequential(nn.Conv1d(2, 8, 5), nn.Conv1d(8, 8, 5)), [(1, 2, 64)], ["0"]),
    ("conv3d", lambda: nn.Sequential(nn.Conv3d(3, 8, (3, 7, 7)), nn.Conv3d(8, 8, 1)), [(1, 3, 4, 16, 16)], ["0"]),
    ("linear-mlp", lambda: nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Linear(16, 2)), [(1, 3, 4, 4)], ["1"]),
]


@pytest.mark.parametrize(("case", "factory", "shapes", "expected"), CASES, ids=[case[0] for case in CASES])
def test_trace_finds_the_layers_that_consume_the_input(case, factory, shapes, expected):
    model = factory()
    result = trace_first_layers(model, [torch.empty(shape, device="meta") for shape in shapes])
    assert sorted(result.modules) == sorted(expected)
    assert all(call.inside_module_forward for call in result.calls)
    assert result.device == "meta"


@pytest.mark.parametrize(("case", "factory", "shapes", "expected"), CASES, ids=[case[0] for case in CASES])
def test_locate_without_inputs_guesses_the_shape_and_agrees(case, factory, shapes, expected):
    located = locate(factory())
    assert sorted(located.names) == sorted(expected)
    assert {layer.rule for layer in located} == {"trace"}


def test_a_call_is_recorded_with_what_it_received():
    (call,) = trace_first_layers(SpaceToDepth(), [torch.empty(IMAGE, device="meta")]).calls
    assert (call.module, call.op, call.params, call.caller) == ("conv", "conv2d", ("conv.weight",), "conv")
    assert call.input_shape == (1, 12, 16, 16) and call.weight_shape == (8, 12, 1, 1)


def test_learned_operations_trace_cannot_patch_are_reported():
    class Projection(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.color = nn.Parameter(torch.eye(3))
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.conv((x.movedim(1, -1) @ self.color).movedim(-1, 1))

    result = trace_first_layers(Projection(), [torch.empty(IMAGE, device="meta")])
    assert result.calls == []
    assert len(result.unsupported) == 1 and "color" in result.unsupported[0]


def test_models_that_cannot_run_on_meta_are_traced_on_the_cpu():
    located = locate(DataDependent(), verify=True)
    assert located.names == ["conv"] and located.trace.device == "cpu"
    assert located.disagreement is None
