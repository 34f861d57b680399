"""The registry: which module of a model is its first layer.

:func:`locate` answers with, in order, user rules, built-in rules, timm's ``pretrained_cfg["first_conv"]`` and
discovery by tracing one forward pass. :func:`tract_hub.patch` calls it when no ``target`` is given.

Example:
    >>> import torch
    >>> from tract_hub.registry import locate
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3))
    >>> [(layer.name, layer.rule) for layer in locate(model)]
    [('0', 'trace')]
"""

from .locate import FirstLayer, LocatedLayers, locate
from .rules import Rule, list_rules, register_rule, unregister_rule
from .trace import FirstLayerCall, TraceResult, trace_first_layers

__all__ = [
    "FirstLayer",
    "FirstLayerCall",
    "LocatedLayers",
    "Rule",
    "TraceResult",
    "list_rules",
    "locate",
    "register_rule",
    "trace_first_layers",
    "unregister_rule",
]
