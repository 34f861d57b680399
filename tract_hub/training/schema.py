"""Typed dataclass trees from plain data (YAML/JSON), with errors that name the key and the closest valid key.

:func:`from_data` builds a dataclass (and the dataclasses nested in it) from a mapping: an unknown key is refused
with the closest valid key named (``difflib``), every value is checked against the field's type hint, and the
dataclass's own ``__post_init__`` then checks what types cannot (ranges, combinations). :func:`to_data` is the
inverse. :func:`set_path` applies a ``a.b=value`` override to the plain data before validation.

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
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from ..errors import RecipeError

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
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _same_container(hint: Any, value: Any) -> bool:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or origin is dict:
        return isinstance(value, Mapping)
    return origin in (list, tuple) and isinstance(value, list | tuple)


def _convert(hint: Any, value: Any, path: str) -> Any:
    """``value`` checked against ``hint`` (and converted: int -> float, list -> tuple), or RecipeError."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is type(None):
        if value is None:
            return None
    elif origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        structural = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except RecipeError as error:
                if _same_container(arg, value):
                    structural.append(error)
        if len(structural) == 1:  # the value has the right shape; the error inside it says more
            raise structural[0]
    elif origin is Literal:
        if any(type(value) is type(a) and value == a for a in typing.get_args(hint)):
            return value
        close = closest_key_hint(str(value), [str(a) for a in typing.get_args(hint)])
        raise RecipeError(f"{path}={value!r} is not {describe_type(hint)}{close}")
    elif origin in (list, tuple):
        if isinstance(value, list | tuple):
            args = typing.get_args(hint)
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    raise RecipeError(f"{path}={value!r} must have {len(args)} items, not {len(value)}")
                return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
            item = args[0] if args else Any
            items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else items
    elif origin is dict:
        if isinstance(value, Mapping):
            key_hint, value_hint = typing.get_args(hint) or (Any, Any)
            return {
                _convert(key_hint, k, f"{path} key"): _convert(value_hint, v, _join(path, str(k)))
                for k, v in value.items()
            }
    elif dataclasses.is_dataclass(hint):
        return from_data(hint, value, path)
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise RecipeError(f"{path}={value!r} must be a finite number")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a schema author error
        raise TypeError(f"unsupported type hint {hint!r} for {path}")
    raise RecipeError(f"{path}={value!r} ({type(value).__name__}) is not {describe_type(hint)}")


def from_data(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from the mapping ``data``; see the module docstring."""
    where = f"section {path!r}" if path else "the recipe"
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where} must be a mapping of keys to values, not {type(data).__name__} ({data!r})")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise RecipeError(
                f"unknown key {_join(path, str(key))!r}{closest_key_hint(str(key), fields)} "
                f"(valid keys: {', '.join(sorted(fields))})"
            )
    hints = _hints(cls)
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(path, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise RecipeError(f"missing key {_join(path, name)!r} ({describe_type(hints[name])})")
    try:
        return cls(**kwargs)
    except RecipeError as error:
        if path and not str(error).startswith(path):
            raise RecipeError(f"{path}: {error}") from None
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
