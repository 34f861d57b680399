"""Reading files that someone else may have written: confined to their folder, bounded in size and depth.

Every file tract_hub reads from a checkpoint, a run directory or a recipe goes through this module:

* :func:`confined_file` refuses a path that is not a regular file (a FIFO, ``/dev/zero``, a directory) or that
  leaves its folder (a symbolic link, or a ``..`` in the name, to a file outside), so nothing outside a
  checkpoint folder is ever read into it or copied with it;
* :func:`parse_json` and :func:`parse_yaml` refuse documents nested deeper than :data:`MAX_DEPTH` levels (a
  deeply nested document would exhaust the interpreter's recursion) and texts longer than their limit;
  :func:`parse_yaml` is the one YAML reader of the project (recipes, overrides, run directories, card front
  matter): safe tags only, duplicate keys refused, ``1e-3`` read as a float, and aliases (``*name``) refused,
  since a few hundred bytes of nested aliases expand to gigabytes.

Each function takes the project's error type to raise (``error=``), so a recipe reports a
:class:`~tract_hub.errors.RecipeError` and a checkpoint a :class:`~tract_hub.errors.CheckpointIntegrityError`.

Example:
    >>> parse_yaml("lr: 1e-3\\nlayers: [conv1]")
    {'lr': 0.001, 'layers': ['conv1']}
    >>> try:
    ...     parse_yaml("a: &x [1, 2]\\nb: *x", "bomb.yaml")
    ... except RecipeError as error:
    ...     print(error)
    bomb.yaml: YAML alias *x at line 2: aliases are not allowed; write the value out in full
    >>> try:
    ...     parse_json("[" * 100 + "]" * 100, "config.json")
    ... except RecipeError as error:
    ...     print(str(error)[:56])
    config.json is nested more than 64 levels deep; no file
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError, TrActError

#: Deepest nesting of lists and mappings a JSON or YAML document may have (tract_hub's own files use under 8).
MAX_DEPTH = 64

#: Longest JSON or YAML text read by default (configs, recipes and summaries are a few kilobytes).
MAX_TEXT_BYTES = 16 * 2**20

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def confined_file(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    error: type[TrActError] = RecipeError,
) -> Path:
    """The real path of ``path``, a regular file inside ``root`` (default: the folder ``path`` names).

    Symbolic links are followed only while they stay inside ``root`` (a Hugging Face cache links snapshots to
    blobs of the same repository folder); a link or ``..`` that leaves it, a missing file, or anything but a
    regular file raises ``error`` naming the path and what it is.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    real_root = os.path.realpath(root)
    if not os.path.lexists(path):
        raise error(f"{str(path)!r} does not exist")
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as raised:
        raise error(f"{str(path)!r} is a symbolic link to a file that does not exist ({raised})") from None
    mode = os.stat(real).st_mode
    if not stat.S_ISREG(mode):
        raise error(f"{str(path)!r} is {_kind(mode)}, not a regular file; replace it by the file itself")
    if os.path.commonpath([real_root, real]) != real_root:
        raise error(
            f"{str(path)!r} leads to {real!r}, outside its folder {str(root)!r}: tract_hub reads only files inside "
            "the folder. Copy the file itself into the folder (cp -L) if you trust it"
        )
    return Path(real)


def read_confined_text(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    error: type[TrActError] = RecipeError,
    limit: int = MAX_TEXT_BYTES,
) -> str:
    """The UTF-8 text of :func:`confined_file` ``(path, root)``, refused when longer than ``limit`` bytes."""
    real = confined_file(path, root, error=error)
    size = real.stat().st_size
    if size > limit:
        raise error(f"{str(path)!r} is {size:,} bytes, more than the {limit:,} bytes such a file may have")
    try:
        return real.read_bytes().decode("utf-8")
    except UnicodeDecodeError as raised:
        raise error(f"{str(path)!r} is not UTF-8 text ({raised})") from None


def read_regular_text(
    path: str | os.PathLike[str], *, error: type[TrActError] = RecipeError, limit: int = MAX_TEXT_BYTES
) -> str:
    """The UTF-8 text of a regular file that the user named (a link to it is followed wherever it leads), refused
    when it is a device or pipe (``/dev/zero`` would be read forever) or longer than ``limit`` bytes."""
    return read_confined_text(path, Path(os.path.realpath(path)).parent, error=error, limit=limit)


def _check_length(text: str, source: str, limit: int, error: type[TrActError]) -> None:
    if len(text) > limit:
        raise error(f"{source} is {len(text):,} characters long, more than the {limit:,} it may have")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str, stop: int = MAX_DEPTH) -> int:
    """How deeply the lists and objects of a JSON text nest (counting stops just above ``stop``)."""
    depth = deepest = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                break
    return deepest


def parse_json(
    text: str,
    source: str = "<string>",
    *,
    error: type[TrActError] = RecipeError,
    max_depth: int = MAX_DEPTH,
    limit: int = MAX_TEXT_BYTES,
) -> Any:
    """JSON text as plain data; ``error`` names ``source`` for malformed, too long or too deeply nested text."""
    _check_length(text, source, limit, error)
    if json_depth(text, max_depth) > max_depth:
        raise error(f"{source} is nested more than {max_depth} levels deep; no file tract_hub reads nests so deep")
    try:
        return json.loads(text)
    except json.JSONDecodeError as raised:
        raise error(f"{source} is not valid JSON ({raised})") from None


class _Refused(Exception):
    """A YAML construct :func:`parse_yaml` refuses (turned into the caller's error type)."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, with bounded depth, unique keys and ``1e-3`` as a float."""

    max_depth = MAX_DEPTH
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                f"YAML alias *{event.anchor} at line {event.start_mark.line + 1}: aliases are not allowed; write the "
                "value out in full"
            )
        self.depth += 1
        if self.depth > self.max_depth:
            line = self.peek_event().start_mark.line + 1
            raise _Refused(f"nested more than {self.max_depth} levels deep at line {line}")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_BoundedLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping reports it
            break
        if duplicate:
            raise _Refused(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_yaml(
    text: str,
    source: str = "<string>",
    *,
    error: type[TrActError] = RecipeError,
    max_depth: int = MAX_DEPTH,
    limit: int = MAX_TEXT_BYTES,
) -> Any:
    """YAML text as plain data (see the module docstring); ``error`` names ``source`` for what is refused."""
    _check_length(text, source, limit, error)
    loader = _BoundedLoader(text)
    loader.max_depth = max_depth
    try:
        return loader.get_single_data()
    except _Refused as refused:
        raise error(f"{source}: {refused}") from None
    except yaml.YAMLError as raised:
        raise error(f"{source} is not valid YAML: {raised}") from None
    finally:
        loader.dispose()
