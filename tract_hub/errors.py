"""The project's exception types.

Every error raised on purpose by tract_hub is a :class:`TrActError`. Each one also subclasses the built-in
exception that fits (``ValueError``, ``TypeError``, ``LookupError``, ``RuntimeError``, ``OSError``), so
``except ValueError`` keeps working for callers that do not know this library. Messages name what was given,
what was expected, and how to fix it.

Example:
    >>> import torch, tract_hub
    >>> try:
    ...     tract_hub.patch(torch.nn.Linear(4, 4), lam=-1.0, target="")
    ... except tract_hub.TrActError as error:
    ...     print(type(error).__name__)
    InvalidArgumentError
"""

from __future__ import annotations


class TrActError(Exception):
    """Base class of every error tract_hub raises on purpose."""


class InvalidArgumentError(TrActError, ValueError):
    """An argument has the wrong value (for example ``lam`` that is not a positive finite number)."""


class TargetNotFoundError(TrActError, LookupError):
    """A module name given as ``target`` does not exist in the model."""


class UnsupportedLayerError(TrActError, TypeError):
    """A layer that TrAct cannot honour exactly (it is refused, never replaced by a plain layer)."""


class FirstLayerNotFoundError(TrActError, LookupError):
    """No rule and no trace could tell which layer of a model consumes its input."""


class RuleError(TrActError, ValueError):
    """A registry rule is malformed or its name is already taken."""


class TrActStateError(TrActError, RuntimeError):
    """TrAct was asked for something its state cannot honour (for example switching between exact and per-backward
    mode while the layer's gradient holds an accumulation)."""


class RecipeError(TrActError, ValueError):
    """A training recipe is malformed: unknown key, wrong type or impossible value."""


class DataError(TrActError, OSError):
    """A data set or a run directory is missing, incomplete or in the wrong format."""


class DiskFullError(TrActError, OSError):
    """A file or checkpoint could not be written for lack of space; what it replaces is left intact."""


class HubError(TrActError, OSError):
    """A checkpoint cannot be saved, found, downloaded, verified or loaded."""


class CheckpointIntegrityError(HubError):
    """A checkpoint's files are truncated, corrupted, or do not match their recorded hash or keys."""


class UnknownArchitectureError(HubError, LookupError):
    """A ``config.json`` names an architecture that is neither a timm model nor a torchvision builder."""


__all__ = [
    "CheckpointIntegrityError",
    "DataError",
    "DiskFullError",
    "FirstLayerNotFoundError",
    "HubError",
    "InvalidArgumentError",
    "RecipeError",
    "RuleError",
    "TargetNotFoundError",
    "TrActError",
    "TrActStateError",
    "UnknownArchitectureError",
    "UnsupportedLayerError",
]
