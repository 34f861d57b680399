"""Every module's docstring examples run and print what they say; modules are discovered, not listed, so a new
module's examples are checked without anyone remembering to add it."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile
from pathlib import Path

import pytest

import tract_hub

REPOSITORY = Path(__file__).resolve().parents[1]
SUBMODULES = (info.name for info in pkgutil.walk_packages(tract_hub.__path__, "tract_hub."))
MODULES = ["tract_hub", *sorted(name for name in SUBMODULES if not name.endswith("__main__"))]

#: Modules with no example of their own: command-line front ends (tested through the CLI), data-set readers (tested
#: on files in the real formats in tests/training), the built-in rule table, the version, and re-exporting packages.
WITHOUT_EXAMPLES = {
    "tract_hub._version",
    "tract_hub.cli",
    "tract_hub.cli.compare",
    "tract_hub.cli.demo",
    "tract_hub.cli.eval",
    "tract_hub.cli.hub",
    "tract_hub.cli.locate",
    "tract_hub.cli.train",
    "tract_hub.patching",
    "tract_hub.patching.layer",
    "tract_hub.registry.builtin",
    "tract_hub.training.data.cifar",
    "tract_hub.training.data.folders",
    "tract_hub.training.data.voc",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)  # examples name recipes/demo_digits.yaml
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # their mkdtemp() land in tmp_path
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
    if name not in WITHOUT_EXAMPLES:
        assert result.attempted > 0, f"{name} has no docstring example"
