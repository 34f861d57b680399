"""scikit-learn's handwritten digits (shipped with scikit-learn, no download), made harder in a fixed way.

The 8x8 images (values 0..16) are scaled to [0, 1], upsampled (bilinear) to ``size`` x ``size``, and each image
gets its own contrast factor ``c`` (log-uniform in ``contrast``) and brightness offset ``b`` (uniform in
``[0, 1 - c]`` so the pixels stay in [0, 1]): ``x -> c * x + b``. The factors are drawn once from
``corruption_seed``, so they are part of the data set, not an augmentation: the same image always looks the same.
This is the input-statistics problem TrAct addresses (the first layer's gradient scales with the pixel values).

Example:
    >>> from tract_hub.training.recipe import DigitsConfig
    >>> split = load_digits_split(DigitsConfig(size=16))
    >>> split.train_images.shape, split.test_images.shape
    (torch.Size([1347, 1, 16, 16]), torch.Size([450, 1, 16, 16]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..recipe import DigitsConfig

NUM_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    """Images in [0, 1] (N x 1 x size x size, float32) and integer labels, for the train and test parts."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def corrupt(images: torch.Tensor, contrast: tuple[float, float], brightness: bool, seed: int) -> torch.Tensor:
    """``c * x + b`` per image, with ``c`` log-uniform in ``contrast`` and ``b`` uniform in ``[0, 1 - c]``."""
    generator = np.random.default_rng(seed)
    low, high = contrast
    factors = np.exp(generator.uniform(math.log(low), math.log(high), len(images)))
    offsets = generator.uniform(0.0, 1.0 - factors) if brightness else np.zeros(len(images))
    shape = (len(images),) + (1,) * (images.dim() - 1)
    factor = torch.as_tensor(factors, dtype=images.dtype).view(shape)
    offset = torch.as_tensor(offsets, dtype=images.dtype).view(shape)
    return images * factor + offset


def load_digits_split(config: DigitsConfig) -> DigitsSplit:
    """The digits as tensors, upsampled and corrupted as ``config`` says, split stratified into train/test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if config.size != images.shape[-1]:
        images = F.interpolate(images, size=config.size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    images = corrupt(images, config.contrast, config.brightness, config.corruption_seed)
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    train_index, test_index = train_test_split(
        np.arange(len(labels)),
        test_size=config.test_fraction,
        random_state=config.split_seed,
        stratify=digits.target,
    )
    train_index, test_index = torch.as_tensor(train_index), torch.as_tensor(test_index)
    return DigitsSplit(images[train_index], labels[train_index], images[test_index], labels[test_index])
