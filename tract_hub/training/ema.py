"""The exponential moving average of a model's weights (``train.ema``, timm's and torchvision's ``--model-ema``).

It is timm's :class:`timm.utils.ModelEmaV3`: a copy of the model whose parameters and floating-point buffers
(BatchNorm statistics included) move towards the trained ones after every optimizer step,
``ema = decay * ema + (1 - decay) * weights``; the first update copies the weights, and with ``warmup`` the
decay grows as ``1 - (1 + step) ** (-2/3)`` up to ``decay``. The copy is not patched (TrAct changes only how
the first layer learns; the EMA copy only evaluates). Its ``state_dict`` has the model's keys, so the EMA
weights load into the same architecture (``strict=True``).

Example:
    >>> import torch
    >>> from tract_hub.training.recipe import EmaConfig
    >>> model = torch.nn.Linear(2, 2)
    >>> ema = WeightEma(model, EmaConfig(decay=0.5))
    >>> ema.update(model, step=1)                      # the first update copies the weights
    >>> with torch.no_grad():
    ...     _ = model.weight.add_(1.0)
    >>> ema.update(model, step=2)                      # then halfway, with decay 0.5
    >>> torch.allclose(ema.module.weight, model.weight - 0.5)
    True
"""

from __future__ import annotations

import torch
from torch import nn

from ..patching import patched_layers, unpatch
from .recipe import EmaConfig


class WeightEma:
    """The EMA of ``model``'s weights (see the module docstring); build it after the model is on its device."""

    def __init__(self, model: nn.Module, config: EmaConfig) -> None:
        from timm.utils import ModelEmaV3

        self.config = config
        self._ema = ModelEmaV3(model, decay=config.decay, use_warmup=config.warmup)
        if patched_layers(self._ema.module):
            unpatch(self._ema.module)

    @property
    def module(self) -> nn.Module:
        """The averaged model (in eval mode)."""
        return self._ema.module

    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model`` after optimizer step ``step`` (1-based: the first copies)."""
        self._ema.update(model, step=step)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._ema.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._ema.module.load_state_dict(state, strict=True)
