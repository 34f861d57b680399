"""``import tract_hub`` and ``tract-hub --help`` stay light (no torch, timm, huggingface_hub or matplotlib), the
public names are still there, and tract_hub's CIFAR models are registered with timm once timm is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tract_hub
from tract_hub._timm_registration import _AfterImport, after_import

HEAVY = ("torch", "timm", "huggingface_hub", "matplotlib", "sklearn")
ROOT = Path(tract_hub.__file__).parent.parent


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow  # a subprocess
def test_import_and_help_load_no_heavy_module() -> None:
    code = f"""
import contextlib, io, sys
import tract_hub
after_import = sorted(m for m in {HEAVY!r} if m in sys.modules)
from tract_hub.cli import SUBCOMMAND_MODULES, main
for argv in (["--help"], *([name, "--help"] for name in ("demo", "train", "eval", "compare", "locate", "push"))):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(after_import, sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    assert _python(code) == "[] []"


def test_public_names_are_served() -> None:
    for name in tract_hub.__all__:
        assert getattr(tract_hub, name) is not None, name
    assert tract_hub.patch.__module__ == "tract_hub._api" and "locate" in dir(tract_hub)
    assert tract_hub.training.train.__name__ == "train"  # subpackages are reachable as attributes
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tract_hub.nope


@pytest.mark.slow  # a subprocess
def test_timm_knows_the_cifar_models_after_import_tract_hub() -> None:
    # a fresh interpreter: tract_hub first, timm afterwards (the order the README shows)
    first = "import tract_hub, timm; print(type(timm.create_model('tract_resnet18_cifar')).__name__)"
    assert _python(first) == "CifarResNet"


def test_the_callback_runs_right_after_the_first_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "tract_hub_probe_module"
    (tmp_path / f"{name}.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    seen: list[int] = []
    after_import(name, lambda: seen.append(sys.modules[name].VALUE + 1))
    assert seen == [] and any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path)
    try:
        module = __import__(name)
        assert seen == [42]  # ran after the module's own code, before the import returned
        assert type(module.__loader__).__name__ == "SourceFileLoader" and module.__spec__.loader is module.__loader__
        assert not any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path)  # one shot
        after_import(name, lambda: seen.append(0))  # already imported: at once
        assert seen == [42, 0]
    finally:
        sys.modules.pop(name, None)


def test_a_missing_module_fails_as_without_the_finder(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "tract_hub_module_that_does_not_exist"
    after_import(name, lambda: None)
    try:
        with pytest.raises(ModuleNotFoundError, match=name):
            __import__(name)
    finally:
        for finder in [f for f in sys.meta_path if isinstance(f, _AfterImport) and f.name == name]:
            finder.remove()
