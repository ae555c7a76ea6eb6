"""The package's import graph has no cycles: each module imports only what lies below it.

Every import counts, function-level ones included, so a lazy import cannot hide a loop."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "workflow" / "embrm"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(name: str, modules: set[str]) -> str | None:
    """The most specific module of the package that ``name`` (module or module.attribute) is."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_in(text: str, here: str, is_package: bool, modules: set[str]) -> set[str]:
    """The package's modules that module ``here`` (source ``text``) imports, anywhere in it."""
    package = here if is_package else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = resolve(name, modules)
            if target and target != here:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {
        module_name(p): imports_in(p.read_text(), module_name(p), p.name == "__init__.py", modules)
        for p in paths
    }


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert "embrm.heads" in graph and "embrm.heads.base" in graph["embrm.heads.mlp"]
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None
    assert set(order) == set(graph)


def test_a_lazy_import_back_up_is_found():
    """The check sees an import inside a function (the usual way a cycle is hidden)."""
    graph = import_graph()
    assert "embrm.summary" not in graph["embrm.io"]
    text = (PACKAGE / "io.py").read_text() + "\n\ndef _late():\n    from .summary import html\n"
    graph["embrm.io"] = imports_in(text, "embrm.io", False, set(graph))
    assert "embrm.summary" in graph["embrm.io"]
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError:
        return
    raise AssertionError("a lazy import from io back up to summary was not seen as a cycle")
