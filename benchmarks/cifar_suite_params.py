"""Parameter counts of the CIFAR-100 suite: the reference repository's code, its README, and tract_hub's models.

The reference is weiaicunzai/pytorch-cifar100 (models/*.py at the commits read for tract_hub; see
recipes/README.md). Its counts are computed here layer by layer from that code's structure, independently of
tract_hub's model files: a convolution has ``in / groups * out * kh * kw`` weights plus ``out`` biases when it has
a bias, a batch norm ``2 * channels``, a linear layer ``in * out + out``. Every count is at 100 classes. tract_hub's
models are built on the meta device (no memory, no initialization) and counted. Prints a Markdown table and writes
it to benchmarks/results/cifar_suite_params.md.

    python benchmarks/cifar_suite_params.py
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch

from tract_hub.models import CIFAR100_SUITE

CLASSES = 100
Kernel = int | tuple[int, int]


def conv(cin: int, cout: int, k: Kernel, groups: int = 1, bias: bool = True) -> int:
    kh, kw = (k, k) if isinstance(k, int) else k
    return cin // groups * cout * kh * kw + (cout if bias else 0)


def bn(channels: int) -> int:
    return 2 * channels


def linear(cin: int, cout: int) -> int:
    return cin * cout + cout


def conv_bn(cin: int, cout: int, k: Kernel, groups: int = 1, bias: bool = True) -> int:
    return conv(cin, cout, k, groups, bias) + bn(cout)


def basic(cin: int, cout: int, k: Kernel) -> int:
    """The Inception files' BasicConv2d: a bias-free convolution and batch norm."""
    return conv_bn(cin, cout, k, bias=False)


def resnet(
    blocks: list[int], bottleneck: bool, conv_bias: bool = False, stem_bias: bool = False, se: bool = False
) -> int:
    """resnet.py, senet.py (biases, SE with reduction 16), stochasticdepth.py (biases in basic blocks)."""
    total, cin = conv_bn(3, 64, 3, bias=stem_bias), 64
    for stage, (count, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
        for index in range(count):
            stride = 2 if stage and not index else 1
            cout = width * (4 if bottleneck else 1)
            if bottleneck:
                total += conv_bn(cin, width, 1, bias=conv_bias) + conv_bn(width, width, 3, bias=conv_bias)
                total += conv_bn(width, cout, 1, bias=conv_bias)
            else:
                total += conv_bn(cin, width, 3, bias=conv_bias) + conv_bn(width, width, 3, bias=conv_bias)
            if stride != 1 or cin != cout:
                total += conv_bn(cin, cout, 1, bias=conv_bias)
            if se:
                total += linear(cout, cout // 16) + linear(cout // 16, cout)
            cin = cout
    return total + linear(cin, CLASSES)


def resnext(blocks: list[int]) -> int:
    """resnext.py: 32 groups of ``4 * width / 64`` channels, grouped 1x1 reduction and 3x3."""
    total, cin = conv_bn(3, 64, 3, bias=False), 64
    for stage, (count, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
        for index in range(count):
            inner, cout = 32 * (4 * width // 64), 4 * width
            total += conv_bn(cin, inner, 1, 32, False) + conv_bn(inner, inner, 3, 32, False)
            total += conv_bn(inner, cout, 1, bias=False)
            if (stage and not index) or cin != cout:
                total += conv_bn(cin, cout, 1, bias=False)
            cin = cout
    return total + linear(cin, CLASSES)


def wide_resnet(depth: int = 40, k: int = 10) -> int:
    """wideresidual.py: pre-activation blocks, convolutions with biases, a 1x1 convolution shortcut."""
    total, cin = conv(3, 16, 3), 16
    for stage, width in enumerate((16 * k, 32 * k, 64 * k)):
        for index in range((depth - 4) // 6):
            total += bn(cin) + conv(cin, width, 3) + bn(width) + conv(width, width, 3)
            if cin != width or (stage and not index):
                total += conv(cin, width, 1)
            cin = width
    return total + bn(cin) + linear(cin, CLASSES)


VGG = {
    11: [64, 128, 256, 256, 512, 512, 512, 512],
    13: [64, 64, 128, 128, 256, 256, 512, 512, 512, 512],
    16: [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512],
    19: [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512],
}


def vgg(depth: int) -> int:
    """vgg.py: 3x3 convolutions with biases and batch norm; 512-4096-4096-classes classifier."""
    total, cin = 0, 3
    for width in VGG[depth]:
        total, cin = total + conv_bn(cin, width, 3), width
    return total + linear(512, 4096) + linear(4096, 4096) + linear(4096, CLASSES)


def densenet(blocks: list[int], k: int) -> int:
    """densenet.py: DenseNet-BC, stem of 2k channels, compression 0.5 (rounded down)."""
    channels = 2 * k
    total = conv(3, channels, 3, bias=False)
    for index, count in enumerate(blocks):
        for _ in range(count):
            total += bn(channels) + conv(channels, 4 * k, 1, bias=False) + bn(4 * k) + conv(4 * k, k, 3, bias=False)
            channels += k
        if index < len(blocks) - 1:
            total += bn(channels) + conv(channels, channels // 2, 1, bias=False)
            channels //= 2
    return total + bn(channels) + linear(channels, CLASSES)


def googlenet() -> int:
    """googlenet.py: three bias-free stem convolutions, nine Inception modules with biases."""
    total = conv_bn(3, 64, 3, bias=False) + conv_bn(64, 64, 3, bias=False) + conv_bn(64, 192, 3, bias=False)
    modules = [
        (192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
        (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
        (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128),
    ]  # fmt: skip
    for cin, n1, r3, n3, r5, n5, pool in modules:
        total += conv_bn(cin, n1, 1) + conv_bn(cin, r3, 1) + conv_bn(r3, n3, 3) + conv_bn(cin, r5, 1)
        total += conv_bn(r5, n5, 3) + conv_bn(n5, n5, 3) + conv_bn(cin, pool, 1)
    return total + linear(1024, CLASSES)


def inception_v3() -> int:
    """inceptionv3.py (its Inception-A pool branch is a 3x3 convolution)."""
    total = basic(3, 32, 3) + basic(32, 32, 3) + basic(32, 64, 3) + basic(64, 80, 1) + basic(80, 192, 3)
    for cin, pool in ((192, 32), (256, 64), (288, 64)):
        total += basic(cin, 64, 1) + basic(cin, 48, 1) + basic(48, 64, 5) + basic(cin, 64, 1) + basic(64, 96, 3)
        total += basic(96, 96, 3) + basic(cin, pool, 3)
    total += basic(288, 384, 3) + basic(288, 64, 1) + basic(64, 96, 3) + basic(96, 96, 3)
    for c7 in (128, 160, 160, 192):
        total += basic(768, 192, 1) + basic(768, c7, 1) + basic(c7, c7, (7, 1)) + basic(c7, 192, (1, 7))
        total += basic(768, c7, 1) + 3 * basic(c7, c7, (7, 1)) + basic(c7, 192, (1, 7)) + basic(768, 192, 1)
    total += basic(768, 192, 1) + basic(192, 320, 3) + basic(768, 192, 1) + basic(192, 192, (1, 7))
    total += basic(192, 192, (7, 1)) + basic(192, 192, 3)
    for cin in (1280, 2048):
        total += basic(cin, 320, 1) + basic(cin, 384, 1) + 2 * basic(384, 384, (1, 3)) + basic(cin, 448, 1)
        total += basic(448, 384, 3) + 2 * basic(384, 384, (3, 1)) + basic(cin, 192, 1)
    return total + linear(2048, CLASSES)


def inception_stem() -> int:
    total = basic(3, 32, 3) + basic(32, 32, 3) + basic(32, 64, 3) + basic(64, 96, 3)
    total += basic(160, 64, 1) + basic(64, 64, (7, 1)) + basic(64, 64, (1, 7)) + basic(64, 96, 3)
    return total + basic(160, 64, 1) + basic(64, 96, 3) + basic(192, 192, 3)


def inception_v4() -> int:
    """inceptionv4.py, InceptionV4(4, 7, 3)."""
    total = inception_stem()
    block_a = basic(384, 64, 1) + basic(64, 96, 3) + basic(96, 96, 3) + basic(384, 64, 1) + basic(64, 96, 3)
    total += 4 * (block_a + 2 * basic(384, 96, 1))
    total += basic(384, 192, 1) + basic(192, 224, 3) + basic(224, 256, 3) + basic(384, 384, 3)
    block_b = basic(1024, 192, 1) + basic(192, 192, (1, 7)) + basic(192, 224, (7, 1)) + basic(224, 224, (1, 7))
    block_b += basic(224, 256, (7, 1)) + basic(1024, 192, 1) + basic(192, 224, (1, 7)) + basic(224, 256, (7, 1))
    total += 7 * (block_b + basic(1024, 384, 1) + basic(1024, 128, 1))
    total += basic(1024, 256, 1) + basic(256, 256, (1, 7)) + basic(256, 320, (7, 1)) + basic(320, 320, 3)
    total += basic(1024, 192, 1) + basic(192, 192, 3)
    block_c = basic(1536, 384, 1) + basic(384, 448, (1, 3)) + basic(448, 512, (3, 1)) + basic(512, 256, (1, 3))
    block_c += basic(512, 256, (3, 1)) + basic(1536, 384, 1) + basic(384, 256, (3, 1)) + basic(384, 256, (1, 3))
    total += 3 * (block_c + 2 * basic(1536, 256, 1))
    return total + linear(1536, CLASSES)


def inception_resnet_v2() -> int:
    """inceptionv4.py, InceptionResNetV2(5, 10, 5): 1x1 shortcut and projection convolutions with biases."""
    total = inception_stem()

    def block_a(cin: int) -> int:
        branches = basic(cin, 32, 1) + basic(32, 48, 3) + basic(48, 64, 3) + basic(cin, 32, 1) + basic(32, 32, 3)
        return branches + basic(cin, 32, 1) + conv(128, 384, 1) + conv(cin, 384, 1) + bn(384)

    def block_b(cin: int) -> int:
        branches = basic(cin, 128, 1) + basic(128, 160, (1, 7)) + basic(160, 192, (7, 1)) + basic(cin, 192, 1)
        return branches + conv(384, 1154, 1) + conv(cin, 1154, 1) + bn(1154)

    def block_c(cin: int) -> int:
        branches = basic(cin, 192, 1) + basic(192, 224, (1, 3)) + basic(224, 256, (3, 1)) + basic(cin, 192, 1)
        return branches + conv(448, 2048, 1) + conv(cin, 2048, 1) + bn(2048)

    total += 5 * block_a(384)
    total += basic(384, 256, 1) + basic(256, 256, 3) + basic(256, 384, 3) + basic(384, 384, 3)
    total += block_b(1152) + 9 * block_b(1154)
    total += basic(1154, 256, 1) + basic(256, 384, 3) + basic(1154, 256, 1) + basic(256, 288, 3)
    total += basic(1154, 256, 1) + basic(256, 288, 3) + basic(288, 320, 3)
    total += block_c(2146) + 4 * block_c(2048)
    return total + linear(2048, CLASSES)


def separable(cin: int, cout: int, k: int = 3, depthwise_bias: bool = False, pointwise_bias: bool = False) -> int:
    return conv(cin, cin, k, cin, depthwise_bias) + conv(cin, cout, 1, 1, pointwise_bias)


def xception() -> int:
    """xception.py: bias-free separable convolutions, 1x1 shortcut convolutions with biases."""
    total = basic(3, 32, 3) + basic(32, 64, 3)
    for cin, cout in ((64, 128), (128, 256), (256, 728)):
        total += separable(cin, cout) + bn(cout) + separable(cout, cout) + bn(cout) + conv_bn(cin, cout, 1)
    total += 8 * 3 * (separable(728, 728) + bn(728))
    total += separable(728, 728) + bn(728) + separable(728, 1024) + bn(1024) + conv_bn(728, 1024, 1)
    total += separable(1024, 1536) + bn(1536) + separable(1536, 2048) + bn(2048)
    return total + linear(2048, CLASSES)


def mobilenet() -> int:
    """mobilenet.py: bias-free depthwise, pointwise with bias (its bias=False reaches the depthwise only)."""
    total = basic(3, 32, 3)
    pairs = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 5
    for cin, cout in [*pairs, (512, 1024), (1024, 1024)]:
        total += conv(cin, cin, 3, cin, False) + bn(cin) + conv_bn(cin, cout, 1)
    return total + linear(1024, CLASSES)


def mobilenet_v2() -> int:
    """mobilenetv2.py: every convolution with bias; the classifier is a 1x1 convolution."""

    def bottleneck(cin: int, cout: int, t: int) -> int:
        return conv_bn(cin, cin * t, 1) + conv_bn(cin * t, cin * t, 3, cin * t) + conv_bn(cin * t, cout, 1)

    total = conv_bn(3, 32, 1) + bottleneck(32, 16, 1)
    for repeats, cin, cout in ((2, 16, 24), (3, 24, 32), (4, 32, 64), (3, 64, 96), (3, 96, 160)):
        total += bottleneck(cin, cout, 6) + (repeats - 1) * bottleneck(cout, cout, 6)
    return total + bottleneck(160, 320, 6) + conv_bn(320, 1280, 1) + conv(1280, CLASSES, 1)


def squeezenet() -> int:
    """squeezenet.py: convolutions with biases and batch norm; a 1x1 convolution classifier."""
    total = conv_bn(3, 96, 3)
    fires = [(96, 128, 16), (128, 128, 16), (128, 256, 32), (256, 256, 32)]
    fires += [(256, 384, 48), (384, 384, 48), (384, 512, 64), (512, 512, 64)]
    for cin, cout, squeeze in fires:
        total += conv_bn(cin, squeeze, 1) + conv_bn(squeeze, cout // 2, 1) + conv_bn(squeeze, cout // 2, 3)
    return total + conv(512, CLASSES, 1)


def shufflenet() -> int:
    """shufflenet.py, 3 groups: convolutions with biases; a stride-2 unit expands to ``out - in``."""
    total, cin = conv_bn(3, 24, 3), 24
    for count, cout in ((4, 240), (8, 480), (4, 960)):
        for index in range(count):
            mid = cout // 4
            total += conv_bn(cin, mid, 1, 3) + conv_bn(mid, mid, 3, mid)
            total += conv_bn(mid, cout - cin, 1, 3) if (not index or cin != cout) else conv_bn(mid, cout, 1, 3)
            cin = cout
    return total + linear(960, CLASSES)


def shufflenet_v2() -> int:
    """shufflenetv2.py, ratio 1: convolutions with biases."""
    total, cin = conv_bn(3, 24, 3), 24
    for cout, repeats in ((116, 3), (232, 7), (464, 3)):
        down = conv_bn(cin, cin, 1) + 2 * conv_bn(cin, cin, 3, cin) + 2 * conv_bn(cin, cout // 2, 1)
        half = cout // 2
        total += down + repeats * (2 * conv_bn(half, half, 1) + conv_bn(half, half, 3, half))
        cin = cout
    return total + conv_bn(464, 1024, 1) + linear(1024, CLASSES)


def nasnet(used_only: bool) -> int:
    """nasnet.py, NasNetA(4, 2, 44, 44). Every cell's Fit module holds a factorized reduction and a 1x1 projection
    of the previous cell's input; a cell uses at most one. ``used_only`` counts only the one a cell uses."""

    def branch(channels: int, k: int, first_bias: bool) -> int:
        return (
            separable(channels, channels, k, first_bias, True)
            + separable(channels, channels, k, True, True)
            + 2 * bn(channels)
        )

    def fit(prev: int, filters: int, use: str) -> int:
        reduce = 2 * conv(prev, filters // 2, 1) + bn(filters)
        project = conv_bn(prev, filters, 1)
        if not used_only:
            return reduce + project
        return {"reduce": reduce, "project": project, "none": 0}[use]

    def normal(cin: int, prev: int, f: int, use: str) -> int:
        cell = conv_bn(cin, f, 1, bias=False) + 3 * branch(f, 3, False) + 2 * branch(f, 5, False)
        return cell + fit(prev, f, use)

    def reduction(cin: int, prev: int, f: int) -> int:
        cell = conv_bn(cin, f, 1) + 2 * branch(f, 7, True) + 2 * branch(f, 5, True) + branch(f, 3, True)
        return cell + fit(prev, f, "project")

    total, f = conv_bn(3, 44, 3, bias=False), 44
    x, prev = 44, 44
    for stage in range(3):
        for index in range(4):
            use = "reduce" if (stage and not index) else "project" if prev != f else "none"
            total += normal(x, prev, f, use)
            x, prev = 6 * f, x
        if stage < 2:
            f *= 2
            total += reduction(x, prev, f)
            x, prev = 4 * f, x
    return total + linear(6 * f, CLASSES)


def stochastic_depth(blocks: list[int], bottleneck: bool) -> int:
    return resnet(blocks, bottleneck, conv_bias=not bottleneck, stem_bias=True)


#: Suite name -> (count from the reference code, the reference README's figure in millions or None).
REFERENCE: dict[str, tuple[int, float | None]] = {
    "mobilenet": (mobilenet(), 3.3),
    "mobilenetv2": (mobilenet_v2(), 2.36),
    "squeezenet": (squeezenet(), 0.78),
    "shufflenet": (shufflenet(), 1.0),
    "shufflenetv2": (shufflenet_v2(), 1.3),
    "vgg11_bn": (vgg(11), 28.5),
    "vgg13_bn": (vgg(13), 28.7),
    "vgg16_bn": (vgg(16), 34.0),
    "vgg19_bn": (vgg(19), 39.0),
    "densenet121": (densenet([6, 12, 24, 16], 32), 7.0),
    "densenet161": (densenet([6, 12, 36, 24], 48), 26.0),
    "densenet201": (densenet([6, 12, 48, 32], 32), 18.0),
    "googlenet": (googlenet(), 6.2),
    "inceptionv3": (inception_v3(), 22.3),
    "inceptionv4": (inception_v4(), 41.3),
    "inceptionresnetv2": (inception_resnet_v2(), 65.4),
    "xception": (xception(), 21.0),
    "resnet18": (resnet([2, 2, 2, 2], False), 11.2),
    "resnet34": (resnet([3, 4, 6, 3], False), 21.3),
    "resnet50": (resnet([3, 4, 6, 3], True), 23.7),
    "resnet101": (resnet([3, 4, 23, 3], True), 42.7),
    "resnet152": (resnet([3, 8, 36, 3], True), 58.3),
    "resnext50": (resnext([3, 4, 6, 3]), 14.8),
    "resnext101": (resnext([3, 4, 23, 3]), 25.3),
    "resnext152": (resnext([3, 4, 36, 3]), 33.3),
    "seresnet18": (resnet([2, 2, 2, 2], False, True, True, True), 11.4),
    "seresnet34": (resnet([3, 4, 6, 3], False, True, True, True), 21.6),
    "seresnet50": (resnet([3, 4, 6, 3], True, True, True, True), 26.5),
    "seresnet101": (resnet([3, 4, 23, 3], True, True, True, True), 47.7),
    "seresnet152": (resnet([3, 8, 36, 3], True, True, True, True), 66.2),
    "nasnet": (nasnet(used_only=False), 5.2),
    "wideresnet": (wide_resnet(40, 10), 55.9),
    "stochasticdepth18": (stochastic_depth([2, 2, 2, 2], False), 11.22),
    "stochasticdepth34": (stochastic_depth([3, 4, 6, 3], False), 21.36),
    "stochasticdepth50": (stochastic_depth([3, 4, 6, 3], True), 23.71),
    "stochasticdepth101": (stochastic_depth([3, 4, 23, 3], True), None),
}


def ours(architecture: str) -> int:
    with torch.device("meta"):
        model = timm.create_model(architecture, num_classes=CLASSES)
    return sum(p.numel() for p in model.parameters())


def table() -> str:
    lines = [
        "| suite name | tract_hub architecture | reference code | reference README | tract_hub | vs code | vs README |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, architecture in CIFAR100_SUITE.items():
        code, readme = REFERENCE[name]
        count = ours(architecture)
        vs_readme = f"{100 * (count / 1e6 - readme) / readme:+.2f}%" if readme else "n/a"
        shown = f"{readme}M" if readme else "not listed"
        lines.append(
            f"| {name} | `{architecture}` | {code:,} | {shown} | {count:,} | {100 * (count - code) / code:+.2f}% "
            f"| {vs_readme} |"
        )
    lines.append(f"\nnasnet, counting only the parameters the reference code uses: {nasnet(used_only=True):,}.")
    return "\n".join(lines)


if __name__ == "__main__":
    text = table()
    print(text)
    out = Path(__file__).resolve().parent / "results" / "cifar_suite_params.md"
    out.write_text("# CIFAR-100 suite: parameter counts at 100 classes\n\n" + text + "\n")
