"""What the CIFAR model families share: the classifier interface timm expects, and their ``pretrained_cfg``.

Every CIFAR family in this package (one file per family, timm's layout) builds a feature extractor and ends in
:class:`CifarClassifier`'s head: global average pooling, an optional ``pre_logits`` block, dropout, one ``fc``
layer. That gives each model timm's interface (``num_classes``, ``num_features``, ``forward_features``,
``forward_head``, ``get_classifier``, ``reset_classifier``), so timm, the hub and the trainer treat them like any
timm model.

Example:
    >>> import torch
    >>> class Tiny(CifarClassifier):
    ...     def __init__(self, num_classes=100):
    ...         super().__init__()
    ...         self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
    ...         self.init_head(8, num_classes)
    ...     def forward_features(self, x):
    ...         return self.conv1(x)
    >>> Tiny()(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 100])
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..errors import InvalidArgumentError

#: CIFAR-100's training-set statistics (those of the paper's code and of the suite's reference repository).
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_POOLS = ("avg", "")


def check_global_pool(global_pool: str, num_classes: int) -> str:
    """``global_pool`` if it is ``"avg"``, or ``""`` (no pooling: the unpooled feature map, without classifier)."""
    if global_pool not in _POOLS:
        raise InvalidArgumentError(f"global_pool={global_pool!r}: the CIFAR models support 'avg' or '' (no pooling)")
    if not global_pool and num_classes:
        raise InvalidArgumentError(
            f"global_pool='' returns the unpooled feature map and has no classifier, but num_classes={num_classes}; "
            "use num_classes=0 with it (or global_pool='avg')"
        )
    return global_pool


class CifarClassifier(nn.Module):
    """Base class: subclasses build their layers, define :meth:`forward_features`, then call :meth:`init_head`."""

    num_classes: int
    num_features: int
    head_hidden_size: int
    global_pool: str

    def init_head(
        self,
        num_features: int,
        num_classes: int,
        *,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        pre_logits: nn.Module | None = None,
        hidden_size: int | None = None,
    ) -> None:
        """Pooling -> ``pre_logits`` (``hidden_size`` wide; identity by default) -> dropout -> ``fc``."""
        self.global_pool = check_global_pool(global_pool, num_classes)
        self.num_classes = num_classes
        self.num_features = num_features
        self.head_hidden_size = hidden_size if hidden_size is not None else num_features
        self.pre_logits = pre_logits if pre_logits is not None else nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Linear(self.head_hidden_size, num_classes) if num_classes else nn.Identity()

    @property
    def in_chans(self) -> int:
        """The input's channels, as timm models record them (timm reads it to describe the input in
        ``config.json``): those of the stem, the first convolution each family registers."""
        stem = next(module for module in self.modules() if isinstance(module, nn.Conv2d))
        return stem.in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every family defines it
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new ``fc`` for ``num_classes`` classes (0: none, the model returns its pre-logit features; with
        ``global_pool=""`` also unpooled, the feature map of :meth:`forward_features`)."""
        self.global_pool = check_global_pool(self.global_pool if global_pool is None else global_pool, num_classes)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.head_hidden_size, num_classes) if num_classes else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not self.global_pool:
            return x
        x = self.drop(self.pre_logits(x.mean((2, 3))))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def cifar_cfg(first_conv: str, **kwargs: Any) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` of a CIFAR-100 model: 32x32 input, CIFAR-100 statistics, the first layer's name."""
    return {
        "num_classes": 100,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR100_MEAN,
        "std": CIFAR100_STD,
        "first_conv": first_conv,
        "classifier": "fc",
        "license": "mit",
        **kwargs,
    }


class ConvBnAct(nn.Sequential):
    """``Conv2d -> BatchNorm2d [-> ReLU]`` as ``conv``, ``bn``, ``act``: the building block of most families."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int],
        *,
        bias: bool = False,
        act: bool = True,
        **conv_kwargs: Any,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(in_chs, out_chs, kernel_size, bias=bias, **conv_kwargs)
        layers["bn"] = nn.BatchNorm2d(out_chs)
        if act:
            layers["act"] = nn.ReLU(inplace=True)
        super().__init__(layers)
