"""Values rendered into a model card as inert Markdown: never HTML, a link, an image or a fence that escapes.

A card shows values that come from files and arguments (data set and layer names, metric keys, a recipe). Each
goes through one of these functions, which keep it readable while making it inert on any Markdown renderer:

* :func:`text`: prose; ``< > &`` become HTML entities, the punctuation that starts Markdown syntax is
  backslash-escaped (no emphasis, link, image, heading, table or autolink syntax survives), line breaks become
  spaces;
* :func:`code`: an identifier in a code span (no HTML, no link, no autolink inside), delimited by a run of
  backticks longer than any in the value; ``table=True`` escapes ``|`` for a table cell;
* :func:`word`: a simple word (``top1``) as it is, anything else as code;
* :func:`fenced`: a block in a fence longer than any run of backticks in it, so no line of it closes the fence;
* :func:`repo_link`: a link to ``https://huggingface.co/<repo id>`` when the value is a valid repository id,
  else the value as code: links go nowhere else.

Example:
    >>> print(text("<img src=x onerror=alert(1)>"))
    &lt;img src=x onerror=alert\\(1\\)&gt;
    >>> print(code("a`b"), code("x|y", table=True))
    ``a`b`` `x\\|y`
    >>> repo_link("org/model"), repo_link(") [click](javascript:alert(1))")
    ('[org/model](https://huggingface.co/org/model)', '`) [click](javascript:alert(1))`')
"""

from __future__ import annotations

import re
from typing import Any

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: The punctuation that starts Markdown syntax inline (emphasis, code, links, images, tables, strike-through,
#: headings, list markers, protocol autolinks): escaped with a backslash. The rest (``/ . , = ...``) is inert.
_ESCAPED = {char: "\\" + char for char in "\\`*_{}[]()#+-!|~:"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BACKTICKS = re.compile(r"`+")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}$")
_DATASET_ID = re.compile(r"^(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}$")


def one_line(value: Any) -> str:
    """``str(value)`` on one line: every run of whitespace (line breaks included) a single space, control
    characters replaced by U+FFFD."""
    return _CONTROL.sub("\ufffd", " ".join(str(value).split()))


def text(value: Any) -> str:
    """``value`` as inert inline Markdown text (see the module docstring)."""
    return "".join(_ENTITIES.get(char) or _ESCAPED.get(char) or char for char in one_line(value))


def _longest_backtick_run(value: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(value)), default=0)


def code(value: Any, *, table: bool = False) -> str:
    """``value`` in an inline code span that no backtick inside it can close."""
    content = one_line(value)
    if table:
        content = content.replace("|", "\\|")
    fence = "`" * (_longest_backtick_run(content) + 1)
    padding = " " if content.startswith("`") or content.endswith("`") or not content.strip() else ""
    return f"{fence}{padding}{content}{padding}{fence}"


def word(value: Any, *, table: bool = False) -> str:
    """A simple word (letters, digits, ``_`` and ``-``, such as ``top1`` or ``val_loss``) as it is, which no
    renderer turns into markup; anything else as :func:`code`."""
    if isinstance(value, str) and _WORD.match(value):
        return value
    return code(value, table=table)


def fenced(content: str, info: str = "") -> str:
    """``content`` as a fenced code block whose fence (at least three backticks) is longer than any run in it."""
    fence = "`" * max(3, _longest_backtick_run(content) + 1)
    if not re.fullmatch(r"[A-Za-z0-9_+-]*", info):
        raise ValueError(f"fence info {info!r} is not a language name")
    body = content.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    return f"{fence}{info}\n{body}\n{fence}"


def is_repo_id(value: Any, *, org: bool = True) -> bool:
    """Whether ``value`` is a Hub repository id (as ``huggingface_hub.utils.validate_repo_id`` accepts):
    ``org/name``, or with ``org=False`` also a bare ``name`` (canonical data sets such as ``cifar10``)."""
    pattern = _REPO_ID if org else _DATASET_ID
    if not isinstance(value, str) or not pattern.match(value) or "--" in value or ".." in value:
        return False
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def repo_link(value: Any) -> str:
    """A link to the Hub repository ``value``; a value that is not a repository id is shown as code, unlinked."""
    if is_repo_id(value):
        return f"[{text(value)}](https://huggingface.co/{value})"
    return code(value)
