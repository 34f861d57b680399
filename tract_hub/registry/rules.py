"""Rules: data that says where the first layer(s) of a family of models are.

A :class:`Rule` names the model classes it applies to (``match``, qualified class names; subclasses match too),
the first layer(s) relative to the model (``layers``: module names, or ``fnmatch`` patterns for a variable number
of parallel branches), and what tracing such a model needs (``inputs``: the shapes of its positional inputs;
``forward_kwargs``: keyword arguments for its forward). A rule applies to a model when the model's class matches
and every entry of ``layers`` names at least one Linear/convolution module; otherwise the next rule is tried.

User rules (:func:`register_rule`) come before the built-in ones, in registration order. Names are unique:
registering a taken name raises :class:`~tract_hub.errors.RuleError`.

Example:
    >>> import torch
    >>> from tract_hub.registry import Rule, register_rule, unregister_rule, locate
    >>> class Net(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.stem, self.head = torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.head(self.stem(x).mean((2, 3)))
    >>> rule = register_rule(Rule(name="my.net", match=(Net,), layers=("stem",)))
    >>> [(layer.name, layer.rule) for layer in locate(Net())]
    [('stem', 'my.net')]
    >>> _ = unregister_rule("my.net")
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from torch import nn

from ..core.layer_ops import SUPPORTED_LAYER_TYPES
from ..core.names import class_name
from ..errors import RuleError

#: Version of the dictionary form of a rule (:meth:`Rule.to_dict`).
RULE_FORMAT_VERSION = 1

#: Names :func:`tract_hub.locate` uses for its other tiers; no rule may take them.
RESERVED_NAMES = frozenset({"target", "trace", "timm.first_conv"})

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*$")


def _shape(value: Any, rule: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not value:
        raise RuleError(f"rule {rule!r}: input shape {value!r} is not a non-empty list of sizes, e.g. (1, 3, 224, 224)")
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value):
        raise RuleError(f"rule {rule!r}: input shape {value!r} must hold positive integers, e.g. (1, 3, 224, 224)")
    return tuple(value)


def _class_names(value: Any, rule: str) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, (str, type)) else value
    if not isinstance(entries, (tuple, list)) or not entries:
        raise RuleError(f"rule {rule!r}: match={value!r} must name at least one model class")
    names = []
    for entry in entries:
        name = class_name(entry) if isinstance(entry, type) else entry
        if not isinstance(name, str) or "." not in name:
            raise RuleError(
                f"rule {rule!r}: match entry {entry!r} is neither a class nor a qualified class name "
                "such as 'torchvision.models.resnet.ResNet'"
            )
        names.append(name)
    return tuple(names)


def _row_mask(value: Any, rule: str) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(isinstance(v, str) and v for v in value):
        raise RuleError(
            f"rule {rule!r}: row_mask={value!r} must be (module name, forward argument), e.g. ('embeds', 'patch_valid')"
        )
    return (value[0], value[1])


def _layer_patterns(value: Any, rule: str) -> tuple[str, ...]:
    patterns = (value,) if isinstance(value, str) else value
    if not isinstance(patterns, (tuple, list)) or not patterns or not all(isinstance(v, str) and v for v in patterns):
        raise RuleError(f"rule {rule!r}: layers={value!r} must be module names or patterns, e.g. ('conv1',)")
    return tuple(patterns)


@dataclass(frozen=True)
class Rule:
    """Where the first layer(s) of the models of some classes are.

    Attributes:
        name: unique name, reported as ``FirstLayer.rule`` (letters, digits, ``_ . : -``).
        match: the model classes the rule applies to, as classes or qualified names
            (``"torchvision.models.resnet.ResNet"``); subclasses match too.
        layers: module names relative to the model, or ``fnmatch`` patterns (``"stem.conv_kxk.*.conv"``); each must
            match at least one Linear/convolution module for the rule to apply. All matches are first layers.
        inputs: shapes of the positional inputs used to trace such a model (``locate(verify=True)``).
        forward_kwargs: keyword arguments for the forward when tracing (e.g. fewer refinement iterations).
        description: one line for ``tract-hub rules``.
        builtin: set by tract_hub for the rules it ships.
    """

    name: str
    match: tuple[str, ...]
    layers: tuple[str, ...]
    inputs: tuple[tuple[int, ...], ...] = ()
    forward_kwargs: Mapping[str, Any] = field(default_factory=dict)
    row_mask: tuple[str, str] | None = None
    description: str = ""
    builtin: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise RuleError(
                f"rule name {self.name!r} must be a non-empty string of letters, digits and _ . : - (e.g. 'mylab.unet')"
            )
        if self.name in RESERVED_NAMES:
            raise RuleError(f"rule name {self.name!r} is reserved for locate's own tiers {sorted(RESERVED_NAMES)}")
        if not isinstance(self.inputs, (tuple, list)):
            raise RuleError(f"rule {self.name!r}: inputs={self.inputs!r} must be a list of shapes")
        if not isinstance(self.forward_kwargs, Mapping) or not all(isinstance(k, str) for k in self.forward_kwargs):
            raise RuleError(f"rule {self.name!r}: forward_kwargs={self.forward_kwargs!r} must map names to values")
        if not isinstance(self.description, str):
            raise RuleError(f"rule {self.name!r}: description must be a string")
        object.__setattr__(self, "match", _class_names(self.match, self.name))
        object.__setattr__(self, "layers", _layer_patterns(self.layers, self.name))
        object.__setattr__(self, "inputs", tuple(_shape(shape, self.name) for shape in self.inputs))
        object.__setattr__(self, "forward_kwargs", dict(self.forward_kwargs))
        object.__setattr__(self, "row_mask", _row_mask(self.row_mask, self.name))
        object.__setattr__(self, "builtin", bool(self.builtin))

    def __hash__(self) -> int:
        return hash(self.name)

    def matches(self, model: nn.Module) -> bool:
        """True when ``model``'s class (or one of its base classes) is in ``match``."""
        return any(class_name(cls) in self.match for cls in type(model).__mro__)

    def resolve(self, model: nn.Module) -> list[str] | None:
        """The Linear/convolution modules ``layers`` names in ``model`` (in the model's order), or ``None`` when
        an entry names none."""
        candidates = [name for name, module in model.named_modules() if isinstance(module, SUPPORTED_LAYER_TYPES)]
        found: dict[str, None] = {}
        for pattern in self.layers:
            hits = [name for name in candidates if fnmatch.fnmatchcase(name, pattern)]
            if not hits:
                return None
            found.update(dict.fromkeys(hits))
        return [name for name in candidates if name in found]

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain data (JSON/YAML-ready, sorted keys); ``builtin`` is not part of it."""
        data = {
            "format_version": RULE_FORMAT_VERSION,
            "name": self.name,
            "match": list(self.match),
            "layers": list(self.layers),
            "inputs": [list(shape) for shape in self.inputs],
            "forward_kwargs": dict(self.forward_kwargs),
            "row_mask": list(self.row_mask) if self.row_mask else None,
            "description": self.description,
        }
        return dict(sorted(data.items()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Build a rule from :meth:`to_dict`'s form; unknown keys are refused with the closest valid key."""
        if not isinstance(data, Mapping):
            raise RuleError(f"a rule must be a mapping of fields, got {type(data).__name__}")
        valid = {f.name for f in fields(cls)} - {"builtin"} | {"format_version"}
        for key in data:
            if key not in valid:
                close = difflib.get_close_matches(str(key), sorted(valid), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise RuleError(f"unknown rule key {key!r}{hint} (valid keys: {', '.join(sorted(valid))})")
        version = data.get("format_version", RULE_FORMAT_VERSION)
        if version != RULE_FORMAT_VERSION:
            raise RuleError(f"rule format_version {version!r} is not supported (this tract_hub reads version 1)")
        missing = [key for key in ("name", "match", "layers") if key not in data]
        if missing:
            raise RuleError(f"rule {data.get('name', '?')!r} is missing {', '.join(missing)}")
        kwargs = {key: value for key, value in data.items() if key != "format_version"}
        return cls(**kwargs)


class _Registry:
    """The registered rules: user rules then built-in rules, each in registration order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._user: list[Rule] = []
        self._builtin: list[Rule] = []

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            taken = next((r for r in self._user + self._builtin if r.name == rule.name), None)
            if taken is not None:
                kind = "built-in" if taken.builtin else "registered"
                raise RuleError(
                    f"a {kind} rule is already named {rule.name!r}; choose another name, or "
                    f"tract_hub.unregister_rule({rule.name!r}) first"
                )
            (self._builtin if rule.builtin else self._user).append(rule)
        return rule

    def remove(self, name: str) -> Rule:
        with self._lock:
            for rules in (self._user, self._builtin):
                for index, rule in enumerate(rules):
                    if rule.name == name:
                        return rules.pop(index)
            names = [r.name for r in self._user + self._builtin]
        close = difflib.get_close_matches(str(name), names, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RuleError(f"no rule is named {name!r}{hint} (tract_hub.list_rules() lists them)")

    def all(self) -> tuple[Rule, ...]:
        with self._lock:
            return (*self._user, *self._builtin)


REGISTRY = _Registry()


def register_rule(rule: Rule | None = None, /, **fields: Any) -> Rule:
    """Add a user rule, tried before the built-in ones; returns it. Refuses a name already taken.

    Pass a :class:`Rule`, or its fields as keywords.

    Example:
        >>> import torch, tract_hub
        >>> rule = tract_hub.register_rule(name="demo.seq", match=torch.nn.Sequential, layers="0")
        >>> [layer.name for layer in tract_hub.locate(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)))]
        ['0']
        >>> _ = tract_hub.unregister_rule("demo.seq")
    """
    if rule is None:
        if fields.get("builtin"):
            raise RuleError("builtin=True is reserved for tract_hub's own rules")
        rule = Rule(**fields)
    elif fields:
        raise RuleError(f"pass a Rule or its fields, not both (got a Rule and {sorted(fields)})")
    elif not isinstance(rule, Rule):
        raise RuleError(f"register_rule expects a tract_hub.Rule, got {type(rule).__name__}")
    elif rule.builtin:
        raise RuleError(f"rule {rule.name!r} has builtin=True, which is reserved for tract_hub's own rules")
    return REGISTRY.add(rule)


def unregister_rule(name: str) -> Rule:
    """Remove the rule called ``name`` (user or built-in) and return it.

    Example:
        >>> import tract_hub
        >>> rule = tract_hub.register_rule(name="demo.tmp", match="torch.nn.modules.container.Sequential", layers="0")
        >>> tract_hub.unregister_rule("demo.tmp").name
        'demo.tmp'
    """
    return REGISTRY.remove(name)


def list_rules() -> tuple[Rule, ...]:
    """Every rule in the order :func:`tract_hub.locate` tries them: user rules, then built-in rules.

    Example:
        >>> import tract_hub
        >>> any(rule.name == "torchvision.resnet" for rule in tract_hub.list_rules())
        True
    """
    return REGISTRY.all()


def register_builtin(rule: Rule) -> Rule:
    """Add one of tract_hub's own rules (used by :mod:`tract_hub.registry.builtin`); returns it with
    ``builtin=True``."""
    return REGISTRY.add(dataclasses.replace(rule, builtin=True))
