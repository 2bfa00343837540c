"""The package's layering as its docstring states it: imports form no cycle, the entry points are imported by no
module, and no module imports another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import whisper_ptq_bench

PACKAGE = Path(whisper_ptq_bench.__file__).parent
ENTRY_POINTS = {"plugin", "cli", "drill", "perf", "upgrade", "worker"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _nodes(tree: ast.AST):
    """Every node, except what sits under ``if TYPE_CHECKING:`` (annotations only, never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _nodes(node)


def imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, imported name)} over every run-time import, lazy ones included (the package
    uses absolute imports only; ``from whisper_ptq_bench import x`` is an import of module ``x``)."""
    graph: dict[str, set[tuple[str, str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        edges = graph.setdefault(_module(path), set())
        for node in _nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: relative import (the package imports absolutely)")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("whisper_ptq_bench"):
                target = node.module.removeprefix("whisper_ptq_bench").lstrip(".")
                edges.update((target, alias.name) if target else (alias.name, "") for alias in node.names)
            elif isinstance(node, ast.Import):
                edges.update(
                    (alias.name.removeprefix("whisper_ptq_bench."), "")
                    for alias in node.names
                    if alias.name.startswith("whisper_ptq_bench.")
                )
    return graph


def _top_graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, edges in imports().items():
        src = _top(module)
        out.setdefault(src, set()).update(_top(t) for t, _ in edges if _top(t) != src)
    return out


def test_imports_between_the_package_modules_form_no_cycle():
    graph = _top_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_entry_points_are_imported_only_by_the_command_line():
    graph = _top_graph()
    for module, targets in graph.items():
        wrong = (targets & ENTRY_POINTS) - ({"drill", "perf", "upgrade"} if module == "cli" else set())
        assert not wrong, f"{module} imports the entry point(s) {sorted(wrong)}"


def test_no_module_imports_another_modules_private_names():
    for module, edges in imports().items():
        private = sorted(
            f"{t}.{n}" for t, n in edges if n.startswith("_") and n != "__version__" and _top(t) != _top(module)
        )
        assert not private, f"{module} imports private names {private}"


def test_the_cycle_check_sees_a_cycle(monkeypatch):
    """The check above fails on a graph with a cycle (so it can fail)."""
    import sys

    monkeypatch.setattr(sys.modules[__name__], "_top_graph", lambda: {"a": {"b"}, "b": {"c"}, "c": {"a"}})
    try:
        test_imports_between_the_package_modules_form_no_cycle()
    except AssertionError as err:
        assert "a -> b -> c -> a" in str(err)
    else:
        raise AssertionError("a cycle went unseen")
