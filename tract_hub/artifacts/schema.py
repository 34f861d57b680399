"""Typed dataclass trees from plain data (YAML/JSON), with errors that name the key and the closest valid key.

:func:`from_data` builds a dataclass (and the dataclasses nested in it) from a mapping: an unknown key is refused
with the closest valid key named (``difflib``), every value is checked against the field's type hint, and the
dataclass's own ``__post_init__`` then checks what types cannot (ranges, combinations). :func:`to_data` is the
inverse. :func:`set_path` applies a ``a.b=value`` override to the plain data before validation. Errors are
:class:`~tract_hub.errors.RecipeError` unless the caller names another type (``error=``): the recipes, the run
summary and the checkpoint metadata share this one reader.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Point:
    ...     x: float
    ...     y: float = 0.0
    >>> from_data(Point, {"x": 1})
    Point(x=1.0, y=0.0)
    >>> try:
    ...     from_data(Point, {"x": 1, "yy": 2})
    ... except RecipeError as error:
    ...     print(error)
    unknown key 'yy'; did you mean 'y'? (valid keys: x, y)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

from ..errors import RecipeError, TrActError

T = TypeVar("T")

_MISSING = object()


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def closest_key_hint(key: str, valid: typing.Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid key, or ``""`` when none is close."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe_type(hint: Any) -> str:
    """A short human name for a type hint (``"float or null"``, ``"one of 'a', 'b'"``)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return "any value"
    if hint is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in typing.get_args(hint))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {describe_type(args[0])}" if args else "a list"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


class _Converter:
    """Checks plain data against type hints; ``error`` is the exception type raised for a mismatch."""

    def __init__(self, error: type[TrActError]) -> None:
        self.error = error

    def mismatch(self, hint: Any, value: Any, path: str) -> TrActError:
        return self.error(f"{path}={value!r} ({type(value).__name__}) is not {describe_type(hint)}")

    def convert(self, hint: Any, value: Any, path: str) -> Any:
        """``value`` checked against ``hint`` (and converted: int -> float, list -> tuple), or ``self.error``."""
        if hint is Any:
            return value
        origin = typing.get_origin(hint)
        if origin in (Union, types.UnionType):
            return self.union(hint, value, path)
        if dataclasses.is_dataclass(hint):
            return from_data(hint, value, path, error=self.error)
        handler = _HANDLERS.get(origin) or _HANDLERS.get(hint)
        if handler is None:  # pragma: no cover - a schema author error
            raise TypeError(f"unsupported type hint {hint!r} for {path}")
        return handler(self, hint, value, path)

    def union(self, hint: Any, value: Any, path: str) -> Any:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        structural = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return self.convert(arg, value, path)
            except self.error as error:
                if _same_container(arg, value):
                    structural.append(error)
        if len(structural) == 1:  # the value has the right shape; the error inside it says more
            raise structural[0]
        raise self.mismatch(hint, value, path)


def _same_container(hint: Any, value: Any) -> bool:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or origin is dict:
        return isinstance(value, Mapping)
    return origin in (list, tuple) and isinstance(value, list | tuple)


def _none(c: _Converter, hint: Any, value: Any, path: str) -> None:
    if value is not None:
        raise c.mismatch(hint, value, path)


def _literal(c: _Converter, hint: Any, value: Any, path: str) -> Any:
    if any(type(value) is type(a) and value == a for a in typing.get_args(hint)):
        return value
    close = closest_key_hint(str(value), [str(a) for a in typing.get_args(hint)])
    raise c.error(f"{path}={value!r} is not {describe_type(hint)}{close}")


def _sequence(c: _Converter, hint: Any, value: Any, path: str) -> list | tuple:
    if not isinstance(value, list | tuple):
        raise c.mismatch(hint, value, path)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise c.error(f"{path}={value!r} must have {len(args)} items, not {len(value)}")
        return tuple(c.convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    item = args[0] if args else Any
    items = [c.convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if typing.get_origin(hint) is tuple else items


def _mapping(c: _Converter, hint: Any, value: Any, path: str) -> dict:
    if not isinstance(value, Mapping):
        raise c.mismatch(hint, value, path)
    key_hint, value_hint = typing.get_args(hint) or (Any, Any)
    return {
        c.convert(key_hint, k, f"{path} key"): c.convert(value_hint, v, _join(path, str(k))) for k, v in value.items()
    }


def _bool(c: _Converter, hint: Any, value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise c.mismatch(hint, value, path)


#: Integers must fit 64 bits (torch stores counts so); a float stands for an integer only up to 2**53, the
#: largest range in which every integer is exact.
_INT64 = 2**63
_EXACT_FLOAT = 2**53


def _int(c: _Converter, hint: Any, value: Any, path: str) -> int:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not -_INT64 <= value < _INT64:
            raise c.error(f"{path}={value!r} does not fit a 64-bit integer")
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        raise c.error(f"{path}={value!r} is too large to be an exact integer; write the integer itself")
    raise c.mismatch(hint, value, path)


def _float(c: _Converter, hint: Any, value: Any, path: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise c.mismatch(hint, value, path)
    if not math.isfinite(value):
        raise c.error(f"{path}={value!r} must be a finite number")
    return float(value)


def _str(c: _Converter, hint: Any, value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise c.mismatch(hint, value, path)


#: Type hint (or its ``typing.get_origin``) -> the function that checks a value against it.
_HANDLERS: dict[Any, Callable[[_Converter, Any, Any, str], Any]] = {
    type(None): _none,
    Literal: _literal,
    list: _sequence,
    tuple: _sequence,
    dict: _mapping,
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
}


def from_data(cls: type[T], data: Any, path: str = "", *, error: type[TrActError] = RecipeError) -> T:
    """Build dataclass ``cls`` from the mapping ``data``; see the module docstring."""
    where = f"section {path!r}" if path else f"the {cls.__name__}"
    if not isinstance(data, Mapping):
        raise error(f"{where} must be a mapping of keys to values, not {type(data).__name__} ({data!r})")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise error(
                f"unknown key {_join(path, str(key))!r}{closest_key_hint(str(key), fields)} "
                f"(valid keys: {', '.join(sorted(fields))})"
            )
    hints, converter = _hints(cls), _Converter(error)
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = converter.convert(hints[name], data[name], _join(path, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise error(f"missing key {_join(path, name)!r} ({describe_type(hints[name])})")
    try:
        return cls(**kwargs)
    except error as raised:
        if path and not str(raised).startswith(path):
            raise error(f"{path}: {raised}") from None
        raise


def to_data(instance: Any) -> Any:
    """Plain data (dicts, lists, scalars) of a dataclass tree; tuples become lists."""
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        return {f.name: to_data(getattr(instance, f.name)) for f in dataclasses.fields(instance)}
    if isinstance(instance, list | tuple):
        return [to_data(v) for v in instance]
    if isinstance(instance, dict):
        return {k: to_data(v) for k, v in instance.items()}
    return instance


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``dotted="a.b"``, creating missing sections. In place."""
    keys = dotted.split(".")
    if not dotted or any(not key for key in keys):
        raise RecipeError(f"override key {dotted!r} is not a dotted key like 'optimizer.lr'")
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key, _MISSING)
        if child is _MISSING or child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise RecipeError(f"override {dotted!r}: {where!r} is a value ({child!r}), not a section")
        node = child
    node[keys[-1]] = value
