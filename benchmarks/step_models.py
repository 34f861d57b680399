"""Models and the timing loop shared by the step benchmarks (``exact_mode.py``, ``gpu_step.py``).

The paper's small models (CIFAR ResNet-18, the CIFAR ViT: 7 layers, 12 heads, width 384, patch 4) and timm's
ResNet-50 and ViT-S/16, each with the name of its first layer; and :func:`interleaved_medians`, which runs every
variant once per round in a shuffled order and reports the median per variant.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class BenchModel:
    name: str
    build: Callable[[], nn.Module]
    image_size: int
    first_layer: str


def _cifar_resnet18() -> nn.Module:
    import timm

    import tract_hub.models  # noqa: F401  (registers tract_resnet18_cifar with timm)

    return timm.create_model("tract_resnet18_cifar", num_classes=10)


def _cifar_vit() -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=32, patch_size=4, embed_dim=384, depth=7, num_heads=12, num_classes=10)


def _timm(name: str, **kwargs) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, num_classes=1000, **kwargs)

    return build


def _tiny_vit() -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2, num_classes=10)


def _tiny_resnet() -> nn.Module:
    import timm

    import tract_hub.models  # noqa: F401

    return timm.create_model("tract_resnet8_cifar", num_classes=10, width=4)


MODELS = {
    "cifar-vit": BenchModel("CIFAR ViT (7 layers, 12 heads, width 384, patch 4)", _cifar_vit, 32, "patch_embed.proj"),
    "cifar-resnet18": BenchModel("CIFAR ResNet-18", _cifar_resnet18, 32, "conv1"),
    "resnet50": BenchModel("timm ResNet-50 (224)", _timm("resnet50"), 224, "conv1"),
    "vit-s16": BenchModel("timm ViT-S/16 (224)", _timm("vit_small_patch16_224"), 224, "patch_embed.proj"),
    # smoke-test stand-ins: the same code paths, seconds on a CPU
    "tiny-vit": BenchModel("tiny ViT (smoke)", _tiny_vit, 16, "patch_embed.proj"),
    "tiny-resnet": BenchModel("tiny CIFAR ResNet-8 (smoke)", _tiny_resnet, 16, "conv1"),
}


def interleaved_medians(
    steps: dict[str, Callable[[], float]], rounds: int, warmup: int = 2, seed: int = 0
) -> dict[str, float]:
    """Median seconds per variant: ``warmup`` untimed rounds, then ``rounds`` rounds, each running every variant
    once in a shuffled order (so a slow phase of the machine hits all variants alike). Each step returns the
    seconds it measured itself."""
    order, rng = list(steps), random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(warmup + rounds):
        rng.shuffle(order)
        for name in order:
            elapsed = steps[name]()
            if index >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}
