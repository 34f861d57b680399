"""How the project writes a class's name: ``module.QualName``, the form rules match and reports show.

Example:
    >>> import torch
    >>> class_name(torch.nn.Conv2d), class_name(torch.nn.Linear(2, 2))
    ('torch.nn.modules.conv.Conv2d', 'torch.nn.modules.linear.Linear')
"""

from __future__ import annotations


def class_name(obj: object) -> str:
    """``module.QualName`` of ``obj`` if it is a class, else of its class."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
