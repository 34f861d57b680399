"""Image transforms of the recipes: augmentation presets and input normalization.

Presets (``data.augment``):
    * ``none``: resize (when an image size is set) and normalize;
    * ``cifar``: random crop with 4 pixels of zero padding at the images' own size (32x32 for CIFAR, 28x28 for
      Fashion-MNIST), horizontal flip (the paper's CIFAR setup);
    * ``cifar_rotate15``: ``cifar``, then a random rotation within +-15 degrees (the augmentation of the CIFAR-100
      suite's reference repository, weiaicunzai/pytorch-cifar100);
    * ``imagenet``: random-resized crop and horizontal flip (torchvision's ImageNet reference);
    * ``deit3``: DeiT-III's simple random crop, horizontal flip, 3-Augment (grayscale / solarization / Gaussian
      blur, one of them per image) and color jitter;
    * ``finetune``: random-resized crop and flip at the target resolution (transfer learning).

Normalization (``data.normalize``): ``standard`` subtracts the mean and divides by the std; ``unit`` leaves the
pixels in [0, 1] and ``raw255`` in [0, 255] (the paper's ablation on inputs that are not standardized).

Example:
    >>> from PIL import Image
    >>> train = build_image_transform("cifar", train=True, image_size=32, normalize="standard",
    ...                               mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    >>> train(Image.new("RGB", (32, 32))).shape
    torch.Size([3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import transforms as T


class ScaleTo255:
    """Multiply a [0, 1] tensor by 255 (inputs that are not standardized)."""

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor * 255.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def normalization(normalize: str, mean: Sequence[float], std: Sequence[float]) -> Callable[[torch.Tensor], Any]:
    """The tensor-side normalization for ``data.normalize``."""
    if normalize == "standard":
        return T.Normalize(mean, std)
    if normalize == "raw255":
        return ScaleTo255()
    return _Identity()


class _Identity:
    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def __repr__(self) -> str:
        return "Identity()"


def three_augment() -> T.RandomChoice:
    """DeiT-III's 3-Augment: one of grayscale, solarization and Gaussian blur per image."""
    return T.RandomChoice(
        [
            T.RandomGrayscale(p=1.0),
            T.RandomSolarize(threshold=128, p=1.0),
            T.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0)),
        ]
    )


def build_image_transform(
    augment: str,
    *,
    train: bool,
    image_size: int | None,
    normalize: str,
    mean: Sequence[float],
    std: Sequence[float],
    color_jitter: float = 0.0,
    eval_crop_pct: float = 1.0,
    native_size: int | None = None,
) -> T.Compose:
    """The PIL-image -> tensor transform for one split (see the module docstring); ``native_size`` is the
    images' own side length, which a ``cifar`` crop keeps when no ``image_size`` is given (default 32)."""
    steps: list[Any] = []
    if train and augment in ("cifar", "cifar_rotate15"):
        size = image_size or native_size or 32
        steps += [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]
        if augment == "cifar_rotate15":
            steps.append(T.RandomRotation(15))
    elif train and augment in ("imagenet", "finetune"):
        steps += [T.RandomResizedCrop(image_size or 224, antialias=True), T.RandomHorizontalFlip()]
    elif train and augment == "deit3":
        size = image_size or 224
        steps += [
            T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
            T.RandomCrop(size, padding=4, padding_mode="reflect"),
            T.RandomHorizontalFlip(),
            three_augment(),
        ]
    elif image_size is not None:
        resize = image_size if train else round(image_size / eval_crop_pct)
        steps += [T.Resize(resize, antialias=True), T.CenterCrop(image_size)]
    if train and color_jitter > 0:
        steps.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
    steps += [T.ToTensor(), normalization(normalize, mean, std)]
    return T.Compose(steps)
