"""The import graph of tract_hub: no cycles, and every import points down the floors.

Read from the source with ``ast`` (no import is executed), counting every ``import`` statement, also those inside
functions: a deferred import is still a dependency. The floors, lowest first; a module may import its own
package and the packages of lower floors only (so two packages of one floor never import each other)::

    errors, _version < engine, artifacts, _torch_internals < core < patching < registry < models
    < _api, _timm_registration < pretrained < training, hub < demo < cli, __init__ < __main__

``artifacts`` (the file formats) and ``_torch_internals`` (every private PyTorch interface, resolved at import)
share the ground floor with ``engine`` (the math): each needs only the exceptions, and the formats import no model
library either (:func:`test_the_file_formats_know_no_model`).
``tract_hub`` itself (the root ``__init__``, the public facade) counts as a top floor: library code imports
the module it needs, never the facade.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import tract_hub

ROOT = Path(tract_hub.__file__).parent

#: Packages (and top-level modules) of tract_hub, by floor, lowest first, each with its one concern.
LAYERS: list[set[str]] = [
    {"errors", "_version"},  # the project's exception types
    {"engine", "artifacts", "_torch_internals"},  # the math | the file formats | PyTorch's private interfaces
    {"core"},  # what patching and the registry share: the layer-op table, handles, class names
    {"patching"},  # install / remove TrAct on one module
    {"registry"},  # which module is a model's first layer
    {"models"},  # architectures by name; the paper's models, registered in timm
    {"_api", "_timm_registration"},  # patch = registry + patching
    {"pretrained"},  # a model from / to a Hub-format checkpoint (build, fetch, heads, strict load, write)
    {"training", "hub"},  # recipes and the trainer | save / push / pull and model cards
    {"demo"},
    {"cli", "__init__"},
    {"__main__"},
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str:
    """The module ``name`` denotes: itself if it is a module, else the module that defines it."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imported(module: str, node: ast.AST) -> Iterator[str]:
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        for alias in node.names:
            yield f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix


def _all_imported(module: str) -> Iterator[str]:
    """Every name ``module`` imports, anywhere in its source, absolute (relative imports resolved)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        yield from _imported(module, node)


def imports_of(module: str) -> set[str]:
    """The tract_hub modules that ``module`` imports (anywhere in its source)."""
    found = {_resolve(name) for name in _all_imported(module) if name == "tract_hub" or name.startswith("tract_hub.")}
    found.discard(module)
    return found


def third_party_imports_of(module: str) -> set[str]:
    """The top-level packages outside tract_hub that ``module`` imports (anywhere in its source)."""
    return {name.split(".")[0] for name in _all_imported(module) if name.split(".")[0] != "tract_hub"}


GRAPH = {module: imports_of(module) for module in MODULES}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one module (each holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_every_package_has_a_layer() -> None:
    unknown = sorted({package_of(module) for module in MODULES} - set(LAYER_OF))
    assert not unknown, f"packages {unknown} have no layer: add each to LAYERS in {__file__}"


def test_no_import_cycles() -> None:
    cycles = strongly_connected(GRAPH)
    assert not cycles, f"import cycles: {[sorted(component) for component in cycles]}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    own = package_of(module)
    upward = sorted(
        target
        for target in GRAPH[module]
        if package_of(target) != own and LAYER_OF.get(package_of(target), -1) >= LAYER_OF.get(own, -1)
    )
    assert not upward, f"{module} ({own}) imports {upward}, which are not in lower layers (see LAYERS)"


#: What the file formats may not know: the project's model code, and the libraries that build or fetch models.
MODEL_PACKAGES = {"core", "patching", "registry", "models", "_api", "_timm_registration", "pretrained"}
MODEL_LIBRARIES = {"timm", "torchvision", "huggingface_hub"}


@pytest.mark.parametrize("module", sorted(name for name in MODULES if package_of(name) == "artifacts"))
def test_the_file_formats_know_no_model(module: str) -> None:
    project = sorted(target for target in GRAPH[module] if package_of(target) in MODEL_PACKAGES)
    libraries = sorted(third_party_imports_of(module) & MODEL_LIBRARIES)
    assert not project and not libraries, (
        f"{module} is a file format but imports {project + libraries}: building, patching or fetching models "
        "belongs in tract_hub.pretrained (or higher)"
    )


def test_the_checker_sees_relative_and_deferred_imports() -> None:
    # modeling imports the registry and the checkpoint reader at the top (relative), cli.train the training
    # package inside a function, cli.demo the demo inside a function; write imports timm inside a function
    assert {"registry", "artifacts"} <= {package_of(name) for name in GRAPH["tract_hub.training.modeling"]}
    assert {"timm", "torch"} <= third_party_imports_of("tract_hub.pretrained.write")
    assert "tract_hub.training" in GRAPH["tract_hub.cli.train"] and "tract_hub.demo" in GRAPH["tract_hub.cli.demo"]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
